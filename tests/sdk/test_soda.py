"""ORDS SODA over plain HTTP (there is no SDK for it), as the product's client calls it."""

import json
import urllib.parse

from checks import expect_equal, fresh_name, http


def soda(s, schema="admin"):
    return f"{s.base}/ords/{schema}/soda/latest"


def test_collection_documents_paging_and_queries(s):
    auth = ("ADMIN", s.ords_password)
    json_type = {"Content-Type": "application/json"}
    collection = fresh_name("C").upper().replace("-", "_")
    metadata = json.dumps({"keyColumn": {"assignmentMethod": "CLIENT"}}).encode()
    status, headers, _ = http("PUT", f"{soda(s)}/{collection}", metadata, auth, json_type)
    expect_equal(status, 201, "create")
    assert headers["Location"].endswith(f"/{collection}/"), headers["Location"]
    status, _, _ = http("PUT", f"{soda(s)}/{collection}", metadata, auth, json_type)
    expect_equal(status, 200, "create again")
    for i in range(5):
        doc = json.dumps({"image_name": f"sp ace {i}.jpg", "n": i}).encode()
        status, headers, _ = http("PUT", f"{soda(s)}/{collection}/K{i}", doc, auth, json_type)
        expect_equal(status, 201, f"insert K{i}")
        assert headers["Location"].endswith(f"/{collection}/K{i}"), headers["Location"]
    status, headers, body = http("GET", f"{soda(s)}/{collection}/K3", auth=auth)
    expect_equal((status, json.loads(body)["n"]), (200, 3), "get")
    etag = headers["ETag"]
    status, _, _ = http("PUT", f"{soda(s)}/{collection}/K3", b'{"n": 33}', auth, {**json_type, "If-Match": '"stale"'})
    expect_equal(status, 412, "stale If-Match")
    status, _, _ = http("PUT", f"{soda(s)}/{collection}/K3", b'{"n": 33}', auth, {**json_type, "If-Match": etag})
    expect_equal(status, 200, "current If-Match")
    status, _, body = http("GET", f"{soda(s)}/{collection}?limit=2&offset=0", auth=auth)
    page = json.loads(body)
    expect_equal((status, page["count"], page["hasMore"]), (200, 2, True), "first page")
    status, _, body = http("GET", f"{soda(s)}/{collection}?limit=2&offset=4", auth=auth)
    expect_equal(json.loads(body)["hasMore"], False, "last page")
    # `q=` with spaces sent as `+`, as every form encoder does.
    q = urllib.parse.urlencode({"q": json.dumps({"image_name": "sp ace 2.jpg"})})
    assert "+" in q, q
    status, _, body = http("GET", f"{soda(s)}/{collection}?{q}", auth=auth)
    expect_equal([i["id"] for i in json.loads(body)["items"]], ["K2"], "q= with + for spaces")
    # The QBE forms the product sends: `$id` lists, and equality (an array matches by any element).
    status, _, body = http(
        "POST", f"{soda(s)}/{collection}?action=query", json.dumps({"$id": ["K4", "K3"]}).encode(), auth, json_type
    )
    expect_equal([i["id"] for i in json.loads(body)["items"]], ["K3", "K4"], "query action by $id")
    status, _, body = http(
        "POST", f"{soda(s)}/{collection}?action=query", json.dumps({"n": 33}).encode(), auth, json_type
    )
    expect_equal([i["id"] for i in json.loads(body)["items"]], ["K3"], "query action by equality (K3 is now 33)")
    # Operators the product never sends are refused with a 400 naming them (docs/EMULATOR.md).
    status, _, body = http(
        "POST", f"{soda(s)}/{collection}?action=query", json.dumps({"n": {"$gte": 4}}).encode(), auth, json_type
    )
    expect_equal((status, "$gte" in body.decode()), (400, True), "an unsupported operator is named")
    status, _, _ = http("DELETE", f"{soda(s)}/{collection}/K1", auth=auth)
    expect_equal(status, 200, "delete")
    status, _, _ = http("DELETE", f"{soda(s)}/{collection}/K1", auth=auth)
    expect_equal(status, 404, "delete again")
    status, _, _ = http("DELETE", f"{soda(s)}/{collection}", auth=auth)
    expect_equal(status, 200, "drop")


def test_credentials_and_the_schema_alias_are_checked(s):
    status, headers, body = http("GET", f"{soda(s)}/", auth=("ADMIN", "wrong"))
    expect_equal(status, 401, "wrong password")
    expect_equal(json.loads(body)["code"], "Unauthorized", "ORDS's problem body")
    status, _, _ = http("GET", f"{soda(s)}/", auth=None)
    expect_equal(status, 401, "no credentials")
    # A schema alias ORDS does not map is a 404, whoever asks (a wrong DB_SCHEMA).
    status, _, body = http("GET", f"{soda(s, 'hr')}/", auth=("ADMIN", s.ords_password))
    expect_equal(status, 404, "unmapped alias")
    assert "could not be mapped" in json.loads(body)["message"], body
    status, _, _ = http("GET", f"{soda(s, 'ADMIN')}/", auth=("ADMIN", s.ords_password))
    expect_equal(status, 200, "aliases are case-insensitive")
