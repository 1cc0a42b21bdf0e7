"""The check before the first test: an unreachable target, the version probe, a release mismatch."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_staging.core.http11 import BadResponse, parse_response
from pytest_staging.core.preflight import Preflight, run_preflight
from pytest_staging.core.targets import Target

pytestmark = pytest.mark.usefixtures("staging_env")

SUITE = """
import pytest

def test_s1(staging_http):
    staging_http.get("/get")

def test_s2():
    pass

@pytest.mark.contract
def test_c():
    pass

def test_release(staging_target):
    print("RELEASE", staging_target.release)
"""


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_unreachable_target_fails_smoke_with_one_line_each(pytester, xdist):
    url = closed_port_url()
    pytester.makepyfile(SUITE)
    result = pytester.runpytest_subprocess(f"--staging-target={url}", "-rs", *xdist)
    result.assert_outcomes(failed=3, skipped=1)
    line = f"staging target '{url.removeprefix('http://')}' ({url}) is unreachable: connection refused"
    output = result.stdout.str()
    assert output.count(line) >= 4  # one per failing test, plus the summary
    assert "Traceback" not in output and "NewConnectionError" not in output and "Max retries" not in output
    result.stdout.fnmatch_lines(["*staging: smoke tier failed*"])


def version_target(pytester, httpbin_url, version_url: str, pointer: str = "/version") -> None:
    pytester.makefile(
        ".toml",
        **{
            "staging-targets": f"""
[targets.qa]
url = "{httpbin_url}"
version_url = "{version_url}"
version_pointer = "{pointer}"
"""
        },
    )
    pytester.makepyfile(SUITE)


def test_matching_release_passes(pytester, httpbin_url):
    version_target(pytester, httpbin_url, "/response-headers?version=1.2.3")
    result = pytester.runpytest("-s", "--staging-target=qa", "--staging-release=1.2.3")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*RELEASE 1.2.3*"])


def test_probed_version_is_the_release_when_none_is_given(pytester, httpbin_url):
    version_target(pytester, httpbin_url, "/response-headers?version=7.0.1")
    result = pytester.runpytest("-s", "--staging-target=qa")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*RELEASE 7.0.1*"])


def test_the_probed_release_is_named_alike_in_every_output(pytester, httpbin_url):
    # Terminal, HTML report and the saved baseline all name 7.0.1 (they said "unknown" here and there).
    version_target(pytester, httpbin_url, "/response-headers?version=7.0.1")
    result = pytester.runpytest("--staging-target=qa", "--staging-report=report.html", "--staging-save-baseline=b.json")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*release 7.0.1*"])
    assert "<code>7.0.1</code> (reported by the target)" in (pytester.path / "report.html").read_text()
    assert json.loads((pytester.path / "b.json").read_text())["release"] == "7.0.1"


def test_release_mismatch_fails_every_smoke_test(pytester, httpbin_url):
    version_target(pytester, httpbin_url, "/response-headers?version=1.2.3")
    result = pytester.runpytest("--staging-target=qa", "--staging-release=1.2.4")
    result.assert_outcomes(failed=3, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*deployed version '1.2.3' (from */response-headers?version=1.2.3) is not --staging-release '1.2.4'; no result can be trusted*"
        ]
    )


@pytest.mark.parametrize(
    ("version_url", "pointer", "message"),
    [
        ("/status/500", "/version", "answered HTTP 500"),
        ("/response-headers?version=1", "/build/sha", "no JSON value at version_pointer '/build/sha'"),
    ],
)
def test_broken_version_probe_fails_tests(pytester, httpbin_url, version_url, pointer, message):
    version_target(pytester, httpbin_url, version_url, pointer)
    result = pytester.runpytest("--staging-target=qa", "--staging-release=1")
    result.assert_outcomes(failed=3, skipped=1)
    result.stdout.fnmatch_lines([f"*version probe *{message}*"])


# -- the plain-HTTP reader (http:// targets do not load http.client) ---------------------------


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=5), st.booleans())
def test_parse_response_reads_chunked_and_sized_bodies(chunks, chunked):
    body = b"".join(chunks)
    if chunked:
        encoded = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Version: 1.2\r\n\r\n" + encoded
    else:
        raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Version: 1.2\r\n\r\n%s" % (len(body), body)
    status, headers, parsed = parse_response(raw)
    assert (status, headers["x-version"], parsed) == (200, "1.2", body)


def test_parse_response_redirect_and_errors():
    assert parse_response(b"HTTP/1.0 302 Found\r\nLocation: /next\r\n\r\n")[:2] == (302, {"location": "/next"})
    for raw, reason in [
        (b"", "closed without an answer"),
        (b"SSH-2.0-OpenSSH\r\n", "not an HTTP response"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "ended early"),
    ]:
        with pytest.raises(BadResponse, match=reason):
            parse_response(raw)


def test_an_answer_that_is_not_http_makes_the_target_unreachable():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"

        def answer() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"SSH-2.0-OpenSSH\r\n")

        thread = threading.Thread(target=answer)
        thread.start()
        result = run_preflight(Target(name="t", url=url), None, None)
        thread.join()
    assert result == Preflight(
        error=f"staging target 't' ({url}) is unreachable: not an HTTP response", kind="unreachable"
    )


def test_a_plain_http_target_does_not_load_http_client(pytester, httpbin_url):
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            with open("loaded.txt", "w") as handle:
                handle.write(" ".join(name for name in ("http.client", "ssl") if name in sys.modules))
        """
    )
    pytester.makepyfile(test_ok="def test_ok(): pass")
    result = pytester.runpytest_subprocess(f"--staging-target={httpbin_url}", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "loaded.txt").read_text() == ""
