#!/usr/bin/env python3
"""Conformance suite: Oracle's own Python SDK (PyPI `oci`) against the standalone emulator.

A client nobody here wrote checks that the emulator answers as OCI would: every call the
product makes, plus paging, conditionals, ranges, awkward object names, error shapes, tampered
signatures, the IAM policy (terraform/policies.tpl) per principal, and SODA over plain HTTP.
It is a test client only, never part of the product.

Usage: run.py EMULATOR_BINARY
  Starts the binary on 127.0.0.1 (a free port, a temp data dir), trusts a key generated here
  under four key ids (an administrator, the web app's container instance, the function, and a
  user in no group), serves an echo function on a unix socket (the Fn contract) for invoke
  tests, runs every test_* function of the tests/sdk/test_*.py modules, and prints one line
  per test, then the number of SDK and HTTP calls made and `N passed, M failed`. Exits 1 when a
  test failed, 2 when the set-up did.
"""

import base64
import glob
import hashlib
import http.server
import importlib.util
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import oci
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.dirname(os.path.dirname(HERE))
TENANCY = "ocid1.tenancy.oc1..sdksuite"
FUNCTION_ID = "ocid1.fnfunc.oc1..sdkecho"
# The roles the emulator's --principal flag knows; one config profile each.
ROLES = ["admin", "webapp", "function", "user"]


class Counter:
    """How many SDK operations went out (each retry counted); checks.py counts plain HTTP."""

    sdk = 0


def count_sdk_calls():
    original = oci.base_client.BaseClient.call_api

    def counted(self, *args, **kwargs):
        Counter.sdk += 1
        return original(self, *args, **kwargs)

    oci.base_client.BaseClient.call_api = counted


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """The Fn contract's `POST /call`: answers 200 with the body it got, prefixed."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            # The Fn agent streams bodies chunked, as OCI's does.
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = b"echo:" + body
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        # BaseHTTPRequestHandler wants a (host, port) client address.
        return request, ("local", 0)


class Suite:
    """What the tests get: endpoints, configs per role, the emulator's names."""

    def __init__(self, base, work, configs, ords_password):
        self.base = base
        self.work = work
        self.configs = configs
        self.namespace = None
        self.bucket = "images"
        self.other_bucket = "other"
        self.compartment_id = "ocid1.compartment.oc1..emulator"
        self.function_id = FUNCTION_ID
        self.ords_password = ords_password
        self.db_secret_id = "ocid1.vaultsecret.oc1..emulator-db-password"
        self.app_secret_id = "ocid1.vaultsecret.oc1..emulator-app-password"
        self.vault_id = "ocid1.vault.oc1..emulator"
        self.photos = os.path.join(ROOT, "tests", "fixtures", "photos")

    def client(self, kind, role="admin", **kwargs):
        classes = {
            "os": oci.object_storage.ObjectStorageClient,
            "vision": oci.ai_vision.AIServiceVisionClient,
            "secrets": oci.secrets.SecretsClient,
            "fn": oci.functions.FunctionsInvokeClient,
        }
        return classes[kind](self.configs[role], service_endpoint=self.base, **kwargs)

    def photo(self, name):
        with open(os.path.join(self.photos, name), "rb") as f:
            return f.read()


def generate_key(path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with open(path, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.md5(der).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def start_emulator(binary, work, key_file, fingerprint, socket_path):
    app_password = os.path.join(work, "app-password")
    with open(app_password, "w") as f:
        f.write("app-secret-value\n")
    args = [binary, "--data", os.path.join(work, "data"), "--port", "0"]
    args += ["--bucket", "images", "--bucket", "other"]
    for role in ROLES:
        key_id = f"{TENANCY}/ocid1.user.oc1..{role}/{fingerprint}"
        args += ["--trust", f"{key_id}={key_file}", "--principal", f"{key_id}={role}"]
    args += ["--secret", f"app-password={app_password}"]
    args += ["--function", f"{FUNCTION_ID}={socket_path}"]
    args += resource_principal_args(key_file)
    log = open(os.path.join(work, "emulator.log"), "w")
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "LOG_LEVEL": "info"},
    )
    banner = []
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line.rstrip())
        if "IAM policy" in line:
            break
    base = next(
        (l.split("listening on ")[1].strip() for l in banner if "listening on " in l), None
    )
    password = next(
        (l.split("password ")[1].strip() for l in banner if "ORDS (SODA)" in l), None
    )
    if not base or not password:
        process.kill()
        raise RuntimeError("the emulator did not start:\n" + "\n".join(banner))
    # Keep draining stdout so the emulator can never block on it.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return process, base, password, banner


def write_config(work, key_file, fingerprint):
    path = os.path.join(work, "config")
    with open(path, "w") as f:
        for role in ROLES:
            f.write(
                f"[{role.upper()}]\nuser=ocid1.user.oc1..{role}\ntenancy={TENANCY}\n"
                f"fingerprint={fingerprint}\nkey_file={key_file}\nregion=us-ashburn-1\n\n"
            )
    return {role: oci.config.from_file(path, role.upper()) for role in ROLES}


def load_tests():
    tests = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for attr in sorted(vars(module)):
            if attr.startswith("test_") and callable(getattr(module, attr)):
                tests.append((f"{name}.{attr}", getattr(module, attr)))
    return tests


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    count_sdk_calls()
    work = tempfile.mkdtemp(prefix="ocivision-sdk-")
    process = None
    server = None
    try:
        key_file = os.path.join(work, "key.pem")
        fingerprint = generate_key(key_file)
        socket_path = os.path.join(work, "echo.sock")
        server = UnixHTTPServer(socket_path, EchoHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            process, base, password, banner = start_emulator(
                binary, work, key_file, fingerprint, socket_path
            )
        except Exception as e:  # noqa: BLE001 - any set-up failure ends the run
            print(f"sdk suite: set-up failed: {e}")
            return 2
        print(f"sdk suite: oci {oci.__version__} against {base}")
        for line in banner:
            print(f"  | {line}")
        suite = Suite(base, work, write_config(work, key_file, fingerprint), password)
        suite.namespace = suite.client("os").get_namespace().data
        passed, failed = 0, 0
        for name, test in load_tests():
            started = time.time()
            try:
                test(suite)
                passed += 1
                print(f"PASS {name} ({time.time() - started:.2f} s)")
            except Exception:  # noqa: BLE001 - a test failure of any kind is reported
                failed += 1
                print(f"FAIL {name}")
                print("     " + traceback.format_exc().replace("\n", "\n     "))
        if process.poll() is not None:
            print(f"FAIL the emulator exited during the run ({process.returncode})")
            failed += 1
        import checks

        print(
            f"sdk suite: {Counter.sdk} SDK calls and {checks.HTTP_CALLS[0]} plain HTTP calls made"
        )
        if failed:
            with open(os.path.join(work, "emulator.log")) as f:
                tail = f.read().splitlines()[-30:]
            print("sdk suite: last lines of the emulator's log:\n  " + "\n  ".join(tail))
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0
    finally:
        if process is not None:
            process.kill()
            process.wait()
        if server is not None:
            server.shutdown()
        shutil.rmtree(work, ignore_errors=True)


# Resource principal 2.1.x (test_resource_principal.py): the generated key is also the web app's
# container instance's resource key, under the key ids Oracle's SDK signs the exchange with.
RP_RESOURCE_ID = "ocid1.computecontainerinstance.oc1..emulator"
RP_TENANCY = "ocid1.tenancy.oc1..emulator"
RP_VERSIONS = ["2.1", "2.1.1", "2.1.2"]


def resource_principal_args(key_file):
    args = []
    for version in RP_VERSIONS:
        if version == "2.1":
            key_id = f"resource/v2.1/{RP_RESOURCE_ID}"
        else:
            key_id = f"resource/v{version}/{RP_TENANCY}/{RP_RESOURCE_ID}"
        args += ["--trust", f"{key_id}={key_file}", "--principal", f"{key_id}=webapp"]
    return args


if __name__ == "__main__":
    sys.exit(main())
