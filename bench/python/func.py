"""The seed's function stack (run as `fdk func.py handler`, the Fn image's entry point), for `cargo run --release --example bench` to compare against.

Python 3.11, the `fdk` and `oci` packages from PyPI. As the seed did, every call builds a
resource-principal signer and the Object Storage, Vision and Secrets clients, then: HEAD the
object, ask Vision to detect objects in it (OBJECT_STORAGE source), read the database password
from the vault, and PUT one document into the SODA collection. The clients are pointed at the
emulator with `service_endpoint=` (the same OCIVISION_*_URL settings the Rust function reads),
so every request is really sent, signed, and verified by the emulator. `COMPARTMENT_ID` is
the function's configuration, as Terraform writes it (terraform/functions.tf).
"""

import base64
import hashlib
import io
import json
import os
import urllib.error
import urllib.request

import oci
from fdk import response


def handler(ctx, data: io.BytesIO = None):
    # Per call, as the seed did: signer and clients are not kept between invocations.
    signer = oci.auth.signers.get_resource_principals_signer()
    storage = oci.object_storage.ObjectStorageClient(
        config={}, signer=signer, service_endpoint=os.environ["OCIVISION_OBJECTSTORAGE_URL"])
    vision = oci.ai_vision.AIServiceVisionClient(
        config={}, signer=signer, service_endpoint=os.environ["OCIVISION_VISION_URL"])
    secrets = oci.secrets.SecretsClient(
        config={}, signer=signer, service_endpoint=os.environ["OCIVISION_SECRETS_URL"])

    event = json.loads(data.getvalue())
    details = event["data"]["additionalDetails"]
    namespace, bucket = details["namespace"], details["bucketName"]
    name = event["data"]["resourceName"]

    head = storage.head_object(namespace, bucket, name)
    analysis = vision.analyze_image(oci.ai_vision.models.AnalyzeImageDetails(
        compartment_id=os.environ["COMPARTMENT_ID"],
        features=[oci.ai_vision.models.ImageObjectDetectionFeature(max_results=50)],
        image=oci.ai_vision.models.ObjectStorageImageDetails(
            namespace_name=namespace, bucket_name=bucket, object_name=name),
    )).data
    bundle = secrets.get_secret_bundle(os.environ["DB_PASSWORD_SECRET_OCID"]).data
    password = base64.b64decode(bundle.secret_bundle_content.content).decode()

    document = {
        "image_name": name,
        "bucket_name": bucket,
        "namespace": namespace,
        "etag": head.headers.get("etag", ""),
        "status": "done",
        "objects": [
            {"name": o.name, "confidence": o.confidence}
            for o in (analysis.image_objects or [])
        ],
    }
    key = hashlib.sha256(f"{namespace}/{bucket}/{name}".encode()).hexdigest().upper()
    url = f"{os.environ['DB_ORDS_BASE_URL']}admin/soda/latest/IMAGE_ANALYSIS/{key}"
    request = urllib.request.Request(
        url, data=json.dumps(document).encode(), method="PUT",
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"ADMIN:{password}".encode()).decode(),
        })
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
        # No collection yet (a fresh database): create it with client-assigned keys (the
        # same metadata the Rust side uses), then write again.
        metadata = {"keyColumn": {"name": "ID", "sqlType": "VARCHAR2", "maxLength": 255,
                                  "assignmentMethod": "CLIENT"}}
        create = urllib.request.Request(
            url.rsplit("/", 1)[0], data=json.dumps(metadata).encode(), method="PUT",
            headers={"Content-Type": "application/json",
                     "Authorization": request.get_header("Authorization")})
        urllib.request.urlopen(create, timeout=30).read()
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
    return response.Response(
        ctx, response_data=json.dumps({"ok": True, "objects": len(document["objects"])}),
        headers={"Content-Type": "application/json"})

