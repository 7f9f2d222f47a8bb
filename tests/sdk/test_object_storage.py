"""Object Storage through Oracle's SDK: every call the product makes, and the awkward cases."""

import base64
import hashlib

import oci

from checks import expect_error, expect_equal, fresh_name


def test_namespace_and_bucket_shape(s):
    client = s.client("os")
    expect_equal(client.get_namespace().data, s.namespace, "namespace")
    bucket = client.get_bucket(s.namespace, s.bucket).data
    expect_equal(bucket.name, s.bucket, "name")
    expect_equal(bucket.namespace, s.namespace, "namespace")
    expect_equal(bucket.compartment_id, s.compartment_id, "compartment")
    assert bucket.id and bucket.id.startswith("ocid1.bucket."), bucket.id
    assert bucket.time_created is not None, "time created"
    assert bucket.etag, "etag"
    expect_equal(bucket.storage_tier, "Standard", "tier")
    expect_equal(bucket.public_access_type, "NoPublicAccess", "access type")
    expect_equal(bucket.object_events_enabled, True, "object events")
    counted = client.get_bucket(
        s.namespace, s.bucket, fields=["approximateCount", "approximateSize"]
    ).data
    assert counted.approximate_count is not None, "approximateCount asked for"
    head = client.head_bucket(s.namespace, s.bucket)
    expect_equal(head.status, 200, "head bucket")
    expect_error(lambda: client.get_bucket(s.namespace, "no-such-bucket"), 404, "BucketNotFound")


def test_put_head_get_delete_round_trip(s):
    client = s.client("os")
    name = fresh_name("round/trip.jpg")
    body = s.photo("dog.jpg")
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    put = client.put_object(
        s.namespace,
        s.bucket,
        name,
        body,
        content_type="image/jpeg",
        content_md5=md5,
        opc_meta={"original-name": "Dog.JPG"},
    )
    etag = put.headers["etag"]
    expect_equal(put.headers["opc-content-md5"], md5, "md5")
    head = client.head_object(s.namespace, s.bucket, name)
    expect_equal(head.headers["etag"], etag, "etag")
    expect_equal(int(head.headers["content-length"]), len(body), "length")
    expect_equal(head.headers["content-type"], "image/jpeg", "type")
    expect_equal(head.headers["opc-meta-original-name"], "Dog.JPG", "metadata")
    got = client.get_object(s.namespace, s.bucket, name)
    expect_equal(got.data.content, body, "body")
    deleted = client.delete_object(s.namespace, s.bucket, name)
    expect_equal(deleted.status, 204, "delete")
    expect_error(lambda: client.get_object(s.namespace, s.bucket, name), 404, "ObjectNotFound")
    expect_error(lambda: client.delete_object(s.namespace, s.bucket, name), 404, "ObjectNotFound")
    # A HEAD error has no body: the SDK classifies it by status alone.
    expect_error(lambda: client.head_object(s.namespace, s.bucket, name), 404, None)


def test_md5_mismatch_is_refused(s):
    client = s.client("os")
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    expect_error(
        lambda: client.put_object(s.namespace, s.bucket, fresh_name("md5"), b"data", content_md5=wrong),
        400,
        "UnmatchedContentMD5",
    )


def test_conditionals(s):
    client = s.client("os")
    name = fresh_name("cond.txt")
    first = client.put_object(s.namespace, s.bucket, name, b"one", if_none_match="*")
    etag = first.headers["etag"]
    expect_error(
        lambda: client.put_object(s.namespace, s.bucket, name, b"two", if_none_match="*"),
        412,
        "IfNoneMatchFailed",
    )
    stale = "00000000-0000-4000-8000-000000000000"
    expect_error(
        lambda: client.put_object(s.namespace, s.bucket, name, b"two", if_match=stale),
        412,
        "IfMatchFailed",
    )
    expect_error(lambda: client.get_object(s.namespace, s.bucket, name, if_none_match=etag), 304, None)
    expect_error(lambda: client.head_object(s.namespace, s.bucket, name, if_none_match=etag), 304, None)
    expect_equal(client.get_object(s.namespace, s.bucket, name, if_match=etag).data.content, b"one", "if-match get")
    second = client.put_object(s.namespace, s.bucket, name, b"two", if_match=etag)
    assert second.headers["etag"] != etag, "a new etag"
    expect_error(
        lambda: client.delete_object(s.namespace, s.bucket, name, if_match=etag),
        412,
        "IfMatchFailed",
    )
    client.delete_object(s.namespace, s.bucket, name, if_match=second.headers["etag"])


def test_ranges(s):
    client = s.client("os")
    name = fresh_name("range.bin")
    client.put_object(s.namespace, s.bucket, name, b"0123456789")
    for range_header, body, content_range in [
        ("bytes=2-4", b"234", "bytes 2-4/10"),
        ("bytes=7-", b"789", "bytes 7-9/10"),
        ("bytes=-3", b"789", "bytes 7-9/10"),
    ]:
        got = client.get_object(s.namespace, s.bucket, name, range=range_header)
        expect_equal(got.status, 206, range_header)
        expect_equal(got.data.content, body, range_header)
        expect_equal(got.headers["content-range"], content_range, range_header)
    expect_error(lambda: client.get_object(s.namespace, s.bucket, name, range="bytes=10-"), 416, None)


def test_awkward_names_round_trip_and_list_by_prefix(s):
    client = s.client("os")
    folder = fresh_name("sp ace") + "/"
    names = [
        folder + "my photo #1.jpg",
        folder + "plus+sign.png",
        folder + "caf\u00e9/\U0001F600 ?&=.png",
        folder + "100% real.png",
        folder + "deep/er/slashes//x",
    ]
    for name in names:
        client.put_object(s.namespace, s.bucket, name, name.encode())
        expect_equal(client.get_object(s.namespace, s.bucket, name).data.content, name.encode(), name)
        expect_equal(client.head_object(s.namespace, s.bucket, name).status, 200, name)
    # The SDK sends the prefix's space as `+`: OCI reads it as a space.
    listed = client.list_objects(s.namespace, s.bucket, prefix=folder).data
    expect_equal(sorted(o.name for o in listed.objects), sorted(names), "listed by prefix")
    plus = client.list_objects(s.namespace, s.bucket, prefix=folder + "plus+").data
    expect_equal([o.name for o in plus.objects], [folder + "plus+sign.png"], "a literal plus")
    for name in names:
        client.delete_object(s.namespace, s.bucket, name)
    expect_equal(client.list_objects(s.namespace, s.bucket, prefix=folder).data.objects, [], "all gone")


def test_list_fields_any_case_delimiter_and_bounds(s):
    client = s.client("os")
    folder = fresh_name("fields") + "/"
    for name in ["a.txt", "b.txt", "sub/c.txt", "sub/d.txt", "z.txt"]:
        client.put_object(s.namespace, s.bucket, folder + name, b"abc")
    listed = client.list_objects(s.namespace, s.bucket, prefix=folder + "a", fields="Size,ETag,timeCreated,MD5").data
    first = listed.objects[0]
    expect_equal(first.size, 3, "size")
    assert first.etag and first.time_created and first.md5, first
    plain = client.list_objects(s.namespace, s.bucket, prefix=folder + "a").data.objects[0]
    expect_equal((plain.size, plain.etag), (None, None), "only the name without fields")
    folders = client.list_objects(s.namespace, s.bucket, prefix=folder, delimiter="/").data
    expect_equal(folders.prefixes, [folder + "sub/"], "prefixes")
    expect_equal([o.name for o in folders.objects], [folder + n for n in ["a.txt", "b.txt", "z.txt"]], "top level")
    window = client.list_objects(s.namespace, s.bucket, prefix=folder, start=folder + "b.txt", end=folder + "z.txt").data
    expect_equal([o.name for o in window.objects], [folder + n for n in ["b.txt", "sub/c.txt", "sub/d.txt"]], "start/end")
    after = client.list_objects(s.namespace, s.bucket, prefix=folder, start_after=folder + "sub/d.txt").data
    expect_equal([o.name for o in after.objects], [folder + "z.txt"], "startAfter")
    expect_error(lambda: client.list_objects(s.namespace, s.bucket, limit=1001), 400, "InvalidParameter")


def test_paging_with_the_sdk_helpers(s):
    client = s.client("os")
    folder = fresh_name("page") + "/"
    names = [f"{folder}{i:04}.txt" for i in range(7)]
    for name in names:
        client.put_object(s.namespace, s.bucket, name, b"x")
    first = client.list_objects(s.namespace, s.bucket, prefix=folder, limit=3).data
    expect_equal(len(first.objects), 3, "page size")
    expect_equal(first.next_start_with, names[3], "nextStartWith")
    everything = oci.pagination.list_call_get_all_results(
        client.list_objects, s.namespace, s.bucket, prefix=folder, limit=3
    ).data
    expect_equal([o.name for o in everything.objects], names, "all pages")


def test_a_thousand_and_one_objects_take_two_default_pages(s):
    client = s.client("os")
    folder = fresh_name("many") + "/"
    for i in range(1001):
        client.put_object(s.namespace, s.bucket, f"{folder}{i:05}", b"")
    page = client.list_objects(s.namespace, s.bucket, prefix=folder).data
    expect_equal(len(page.objects), 1000, "the service's page ceiling")
    expect_equal(page.next_start_with, f"{folder}01000", "next")
    rest = client.list_objects(s.namespace, s.bucket, prefix=folder, start=page.next_start_with).data
    expect_equal([o.name for o in rest.objects], [f"{folder}01000"], "second page")


def test_error_shape(s):
    client = s.client("os")
    try:
        client.list_objects(s.namespace, "no-such-bucket")
    except oci.exceptions.ServiceError as e:
        expect_equal(e.status, 404, "status")
        expect_equal(e.code, "BucketNotFound", "code")
        assert "no-such-bucket" in e.message, e.message
        assert e.request_id, "opc-request-id is set"
    else:
        raise AssertionError("listing a missing bucket succeeded")
    expect_error(lambda: client.get_object("other-namespace", s.bucket, "x"), 404, "NamespaceNotFound")
