"""Resource principal 2.1, 2.1.1 and 2.1.2 through Oracle's own signer: the SDK exchanges the
resource's key for a session token at the emulator (run.py trusts the key under the key ids the
SDK signs the exchange with), then signs Object Storage calls with it as the web app."""

import os

import oci

from checks import expect_equal, fresh_name
from run import RP_RESOURCE_ID, RP_TENANCY, RP_VERSIONS


def rp_environment(s, version):
    # The SDK's 2.1.2 signer reads its security context unconditionally (2.189 fails without
    # one), so 2.1.2 is given one; the emulator accepts the header and ignores its value.
    context = {"OCI_RESOURCE_PRINCIPAL_SECURITY_CONTEXT": "sdk-suite"} if version == "2.1.2" else {}
    return {
        **context,
        "OCI_RESOURCE_PRINCIPAL_VERSION": version,
        "OCI_RESOURCE_PRINCIPAL_RPT_ENDPOINT": s.base,
        "OCI_RESOURCE_PRINCIPAL_RPST_ENDPOINT": s.base,
        "OCI_RESOURCE_PRINCIPAL_RESOURCE_ID": RP_RESOURCE_ID,
        "OCI_RESOURCE_PRINCIPAL_TENANCY_ID": RP_TENANCY,
        "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM": os.path.join(s.work, "key.pem"),
        "OCI_RESOURCE_PRINCIPAL_REGION": "us-ashburn-1",
    }


def test_resource_principal_2_1_x_exchange_with_oracles_signer(s):
    for version in RP_VERSIONS:
        saved = dict(os.environ)
        os.environ.update(rp_environment(s, version))
        try:
            signer = oci.auth.signers.get_resource_principals_signer()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        expect_equal(type(signer).__name__, "EphemeralResourcePrincipalV21Signer", version)
        first = signer.get_security_token()
        client = oci.object_storage.ObjectStorageClient(
            {"region": "us-ashburn-1"}, signer=signer, service_endpoint=s.base
        )
        name = fresh_name(f"rp{version}/a.txt")
        client.put_object(s.namespace, s.bucket, name, b"rp")
        expect_equal(client.get_object(s.namespace, s.bucket, name).data.content, b"rp", version)
        client.delete_object(s.namespace, s.bucket, name)
        # A forced refresh exchanges again; the new token works too.
        second = signer.refresh_security_token()
        assert first != second, f"{version}: the refresh gave the same token"
        client.list_objects(s.namespace, s.bucket, prefix=name)
