"""Vision, Secrets and Functions through Oracle's SDK, and tampered signatures."""

import base64
import email.utils
import struct
import time
import zlib

import oci
from oci.ai_vision.models import (
    AnalyzeImageDetails,
    ImageObjectDetectionFeature,
    InlineImageDetails,
    ObjectStorageImageDetails,
)

from checks import expect_error, expect_equal, fresh_name


def png(width, height):
    """A real, decodable grey PNG of the given size."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def detection(image, compartment_id):
    return AnalyzeImageDetails(
        features=[ImageObjectDetectionFeature(max_results=5)],
        image=image,
        compartment_id=compartment_id,
    )


def inline(data):
    return InlineImageDetails(data=base64.b64encode(data).decode())


def test_vision_analyzes_inline_and_object_storage_images(s):
    vision = s.client("vision")
    # The standalone emulator answers from the local model (models/), which finds objects in
    # dog.jpg; the same bytes stored in a bucket give the same objects.
    result = vision.analyze_image(detection(inline(s.photo("dog.jpg")), s.compartment_id)).data
    expect_equal(result.errors, [], "errors")
    found = [(o.name, o.confidence) for o in result.image_objects or []]
    assert found, f"nothing found in dog.jpg: {result}"
    assert all(name and 0 < confidence <= 1 for name, confidence in found), found
    assert result.object_detection_model_version, "model version"
    name = fresh_name("vision/dog.jpg")
    s.client("os").put_object(s.namespace, s.bucket, name, s.photo("dog.jpg"))
    stored = ObjectStorageImageDetails(namespace_name=s.namespace, bucket_name=s.bucket, object_name=name)
    result = vision.analyze_image(detection(stored, s.compartment_id)).data
    expect_equal(result.errors, [], "errors")
    expect_equal([(o.name, o.confidence) for o in result.image_objects or []], found, "stored")
    missing = ObjectStorageImageDetails(namespace_name=s.namespace, bucket_name=s.bucket, object_name=name + ".gone")
    expect_error(lambda: vision.analyze_image(detection(missing, s.compartment_id)), 404, "NotAuthorizedOrNotFound")


def test_vision_refuses_what_oci_refuses(s):
    vision = s.client("vision")
    for width, height in [(1, 1), (31, 64), (64, 31)]:
        expect_error(
            lambda: vision.analyze_image(detection(inline(png(width, height)), s.compartment_id)),
            400,
            "InvalidParameter",
        )
    expect_error(
        lambda: vision.analyze_image(detection(inline(b"GIF89a not an image"), s.compartment_id)),
        400,
        "InvalidParameter",
    )
    vision.analyze_image(detection(inline(png(32, 32)), s.compartment_id))


def test_secrets_by_id_by_name_versions_and_stages(s):
    secrets = s.client("secrets")
    bundle = secrets.get_secret_bundle(s.db_secret_id).data
    expect_equal(bundle.secret_id, s.db_secret_id, "id")
    expect_equal(bundle.version_number, 1, "version")
    expect_equal(bundle.secret_bundle_content.content_type, "BASE64", "content type")
    expect_equal(base64.b64decode(bundle.secret_bundle_content.content).decode(), s.ords_password, "value")
    by_name = secrets.get_secret_bundle_by_name(secret_name="db-password", vault_id=s.vault_id).data
    expect_equal(by_name.secret_id, s.db_secret_id, "by name")
    expect_equal(secrets.get_secret_bundle(s.db_secret_id, version_number=1).data.version_number, 1, "v1")
    expect_equal(secrets.get_secret_bundle(s.db_secret_id, stage="LATEST").data.version_number, 1, "latest")
    expect_error(lambda: secrets.get_secret_bundle(s.db_secret_id, version_number=7), 404, "NotAuthorizedOrNotFound")
    expect_error(lambda: secrets.get_secret_bundle(s.db_secret_id, stage="PREVIOUS"), 404, "NotAuthorizedOrNotFound")
    expect_error(
        lambda: secrets.get_secret_bundle_by_name(secret_name="db-password", vault_id=s.vault_id, version_number=2),
        404,
        "NotAuthorizedOrNotFound",
    )
    expect_error(lambda: secrets.get_secret_bundle("ocid1.vaultsecret.oc1..nope"), 404, "NotAuthorizedOrNotFound")
    extra = secrets.get_secret_bundle(s.app_secret_id).data
    expect_equal(base64.b64decode(extra.secret_bundle_content.content), b"app-secret-value", "--secret file")


def test_functions_invoke_on_the_sdks_api_version(s):
    functions = s.client("fn", "webapp")
    reply = functions.invoke_function(s.function_id, invoke_function_body='{"ping": 1}')
    expect_equal(reply.status, 200, "status")
    expect_equal(reply.data.content, b'echo:{"ping": 1}', "the function's answer")
    detached = functions.invoke_function(s.function_id, invoke_function_body="{}", fn_invoke_type="detached")
    expect_equal(detached.status, 202, "detached")
    expect_error(
        lambda: functions.invoke_function("ocid1.fnfunc.oc1..missing", invoke_function_body="{}"),
        404,
        "NotAuthorizedOrNotFound",
    )


class TamperingSigner(oci.signer.Signer):
    """Signs as the SDK does, then spoils one thing the signature covers."""

    def __init__(self, config, spoil):
        super().__init__(
            tenancy=config["tenancy"],
            user=config["user"],
            fingerprint=config["fingerprint"],
            private_key_file_location=config["key_file"],
        )
        self.spoil = spoil

    def __call__(self, request, enforce_content_headers=True):
        if self.spoil == "date":
            stale = email.utils.formatdate(time.time() - 600, usegmt=True)
            request.headers["date"] = stale
        request = super().__call__(request, enforce_content_headers)
        if self.spoil == "signature":
            auth = request.headers["authorization"]
            head, _, sig = auth.rpartition('signature="')
            flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
            request.headers["authorization"] = head + 'signature="' + flipped
        elif self.spoil == "keyid":
            request.headers["authorization"] = request.headers["authorization"].replace(
                "ocid1.user.oc1..admin", "ocid1.user.oc1..stranger"
            )
        elif self.spoil == "body":
            body = request.body or b""
            request.body = body + (" " if isinstance(body, str) else b" ")
        return request


def test_tampered_signatures_are_not_authenticated(s):
    for spoil in ["signature", "keyid", "date"]:
        client = oci.object_storage.ObjectStorageClient(
            s.configs["admin"], service_endpoint=s.base, signer=TamperingSigner(s.configs["admin"], spoil)
        )
        error = expect_error(lambda: client.get_bucket(s.namespace, s.bucket), 401, "NotAuthenticated")
        assert error.request_id, "401s carry opc-request-id"
    vision = oci.ai_vision.AIServiceVisionClient(
        s.configs["admin"], service_endpoint=s.base, signer=TamperingSigner(s.configs["admin"], "body")
    )
    expect_error(
        lambda: vision.analyze_image(detection(inline(png(32, 32)), s.compartment_id)),
        401,
        "NotAuthenticated",
    )
