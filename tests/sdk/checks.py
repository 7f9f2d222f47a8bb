"""Small assertions shared by the SDK suite's tests."""

import itertools
import os

import oci

_counter = itertools.count()


def fresh_name(stem):
    """A name no other test uses (tests share one emulator)."""
    return f"sdk-{os.getpid()}-{next(_counter)}-{stem}"


def expect_equal(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def expect_error(call, status, code):
    """`call()` must raise the SDK's ServiceError with `status` and, unless None, `code`."""
    try:
        result = call()
    except oci.exceptions.ServiceError as e:
        if e.status != status or (code is not None and e.code != code):
            raise AssertionError(
                f"expected {status} {code}, got {e.status} {e.code}: {e.message}"
            ) from e
        return e
    raise AssertionError(f"expected {status} {code}, the call succeeded: {result.status}")


HTTP_CALLS = [0]


def http(method, url, body=None, auth=None, headers=None):
    """One plain HTTP request (SODA has no SDK): (status, headers, body bytes)."""
    import base64
    import urllib.error
    import urllib.request

    HTTP_CALLS[0] += 1
    request = urllib.request.Request(url, data=body, method=method)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
