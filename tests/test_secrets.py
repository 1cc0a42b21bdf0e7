"""Values read through ${VAR} never show up in reports, logs, JUnit XML or the terminal."""

from __future__ import annotations

import base64
import json

import pytest

SECRET = "s3cr3t-t0ken-4242"

SUITE = """
import logging, warnings
import pytest

def token(staging_http):
    return staging_http.headers["Authorization"]

def test_assertion_shows_the_value(staging_http):
    assert token(staging_http) == "Bearer something-else"

def test_prints_and_logs_then_fails(staging_http):
    print("stdout:", token(staging_http))
    logging.getLogger("app").warning("logged: %s", token(staging_http))
    raise RuntimeError("exception: " + token(staging_http))

def test_passes_but_prints(staging_http):
    print("passing stdout:", token(staging_http))
    warnings.warn(UserWarning("warned: " + token(staging_http)))

@pytest.mark.contract
def test_skipped_with_secret_reason(staging_http):
    pytest.skip("reason: " + token(staging_http))
"""


@pytest.fixture
def secret_suite(pytester, httpbin_url, staging_env):
    staging_env.setenv("STAGING_TOKEN", SECRET)
    pytester.makefile(
        ".toml",
        **{"staging-targets": f'[targets.qa]\nurl = "{httpbin_url}"\nheaders = {{ Authorization = "Bearer ${{STAGING_TOKEN}}" }}\n'},
    )
    pytester.makepyfile(SUITE)
    return pytester


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_secret_is_scrubbed_everywhere(secret_suite, xdist):
    pytester = secret_suite
    args = [
        "--staging-target=qa", "--staging-no-fail-fast", "-rA", "--junitxml=junit.xml",
        "-o", "log_cli=true", "--log-file=run.log", *xdist,
    ]
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(failed=2, passed=1, skipped=1)
    output = result.stdout.str() + result.stderr.str()
    assert SECRET not in output
    # The scrubbed text is still there, readable.
    assert "Bearer ***" in output
    assert "stdout: Bearer ***" in output
    assert "exception: Bearer ***" in output
    assert "warned: Bearer ***" in output
    assert "reason: Bearer ***" in output
    junit = (pytester.path / "junit.xml").read_text()
    assert SECRET not in junit and "Bearer ***" in junit
    log = (pytester.path / "run.log").read_text()
    assert SECRET not in log and "logged: Bearer ***" in log
    envelope = json.loads((pytester.path / "staging-verdict.intoto.json").read_text())
    payload = base64.b64decode(envelope["payload"]).decode()
    assert SECRET not in payload and "exception: Bearer ***" in payload


def test_the_secret_still_reaches_the_target(pytester, httpbin_url, staging_env):
    """Scrubbing is about output only: the header the target receives is the real one."""
    staging_env.setenv("STAGING_TOKEN", SECRET)
    pytester.makefile(
        ".toml",
        **{"staging-targets": f'[targets.qa]\nurl = "{httpbin_url}"\nheaders = {{ Authorization = "Bearer ${{STAGING_TOKEN}}" }}\n'},
    )
    pytester.makepyfile(
        f"""
        def test_sent(staging_http):
            assert staging_http.get("/bearer").json() == {{"authenticated": True, "token": "{SECRET}"}}
        """
    )
    pytester.runpytest("--staging-target=qa").assert_outcomes(passed=1)
