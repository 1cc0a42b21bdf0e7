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
        **{
            "staging-targets": f'[targets.qa]\nurl = "{httpbin_url}"\nheaders = {{ Authorization = "Bearer ${{STAGING_TOKEN}}" }}\n'
        },
    )
    pytester.makepyfile(SUITE)
    return pytester


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_secret_is_scrubbed_everywhere(secret_suite, xdist):
    pytester = secret_suite
    args = [
        "--staging-target=qa",
        "--staging-no-fail-fast",
        "-rA",
        "--junitxml=junit.xml",
        "-o",
        "log_cli=true",
        "--log-file=run.log",
        *xdist,
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
        **{
            "staging-targets": f'[targets.qa]\nurl = "{httpbin_url}"\nheaders = {{ Authorization = "Bearer ${{STAGING_TOKEN}}" }}\n'
        },
    )
    pytester.makepyfile(
        f"""
        def test_sent(staging_http):
            assert staging_http.get("/bearer").json() == {{"authenticated": True, "token": "{SECRET}"}}
        """
    )
    pytester.runpytest("--staging-target=qa").assert_outcomes(passed=1)


# -- a URL's user info: the password is a secret, the credentials go as HTTP Basic -------

LONG_PASSWORD = "Op3n-S3same-91"
SHORT_PASSWORD = "Pw"  # shorter than MIN_SECRET_LENGTH: never scrubbed by value, so never shown at all

USERINFO_SUITE = """
import os

def test_credentials_arrive(staging_http):
    answer = staging_http.get("/basic-auth/deploy/" + os.environ["DEPLOY_PASSWORD"])
    assert answer.status_code == 200
    assert answer.json() == {"authenticated": True, "user": "deploy"}
    # The target's Basic header; the URL requests got has no user info to take another from.
    assert answer.request.headers["Authorization"].startswith("Basic ")
    assert "@" not in answer.request.url and "@" not in answer.url

def test_shows_the_target(staging_target, staging_http):
    print("target:", staging_target.name, staging_target.url, staging_target, dict(staging_http.headers))

def test_fails_naming_the_target(staging_target, staging_http):
    assert staging_http.url_for("/x") == staging_target.name
"""


def assert_no_userinfo(text: str, password: str) -> None:
    assert f":{password}@" not in text and "deploy:" not in text and "deploy@" not in text
    token = base64.b64encode(f"deploy:{password}".encode()).decode()
    assert token not in text
    if len(password) >= 4:
        assert password not in text


def userinfo_run(pytester, *args):
    return pytester.runpytest_subprocess(
        "-v",
        "-rA",
        "--staging-no-fail-fast",
        "--junitxml=junit.xml",
        "--staging-report=report.html",
        "--staging-summary=summary.md",
        *args,
    )


def userinfo_outputs(pytester, result) -> tuple[str, dict]:
    """Everything the run showed or wrote, as one text, and the verdict's predicate."""
    envelope = json.loads((pytester.path / "staging-verdict.intoto.json").read_text())
    payload = base64.b64decode(envelope["payload"]).decode()
    texts = [result.stdout.str(), result.stderr.str(), payload]
    texts += [(pytester.path / name).read_text() for name in ("junit.xml", "report.html", "summary.md")]
    return "\n".join(texts), json.loads(payload)["predicate"]


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.parametrize("password", [LONG_PASSWORD, SHORT_PASSWORD], ids=["long", "short"])
def test_url_target_credentials_reach_the_target_and_show_nowhere(pytester, httpbin_url, staging_env, password, xdist):
    host = httpbin_url.removeprefix("http://")
    staging_env.setenv("STAGING_TARGET", f"http://deploy:{password}@{host}")
    staging_env.setenv("DEPLOY_PASSWORD", password)
    pytester.makepyfile(USERINFO_SUITE)
    result = userinfo_run(pytester, *xdist)
    result.assert_outcomes(passed=2, failed=1)
    output, predicate = userinfo_outputs(pytester, result)
    assert_no_userinfo(output, password)
    assert f"staging: target {host} ({httpbin_url})" in result.stdout.str()
    assert "Basic ***" in result.stdout.str()  # the header printed by the test, masked
    assert {key: predicate["target"][key] for key in ("name", "url")} == {"name": host, "url": httpbin_url}


VERSION_PROBES = {
    # the probe is on the target: it gets the target's credentials
    "relative": "/basic-auth/deploy/${DEPLOY_PASSWORD}",
    # an absolute probe URL with user info of its own: those are its credentials
    "absolute": "http://probe:${PROBE_PASSWORD}@{host}/basic-auth/probe/${PROBE_PASSWORD}",
}


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.parametrize("probe", sorted(VERSION_PROBES))
def test_targets_file_url_credentials_reach_target_and_probe_and_show_nowhere(
    pytester, httpbin_url, staging_env, probe, xdist
):
    host = httpbin_url.removeprefix("http://")
    staging_env.setenv("DEPLOY_PASSWORD", LONG_PASSWORD)
    staging_env.setenv("PROBE_PASSWORD", "Pr0be-Secret-77")
    pytester.makefile(
        ".toml",
        **{
            "staging-targets": f"""
[targets.stage]
url = "http://deploy:${{DEPLOY_PASSWORD}}@{host}"
version_url = "{VERSION_PROBES[probe].replace("{host}", host)}"
version_pointer = "/authenticated"
"""
        },
    )
    pytester.makepyfile(USERINFO_SUITE)
    # httpbin answers {"authenticated": true} only to the right Basic credentials: the probed
    # version is "True" only when they reached the probe.
    result = userinfo_run(pytester, "--staging-target=stage", "--staging-release=True", *xdist)
    result.assert_outcomes(passed=2, failed=1)
    output, predicate = userinfo_outputs(pytester, result)
    assert_no_userinfo(output, LONG_PASSWORD)
    assert "Pr0be-Secret-77" not in output and "probe:" not in output
    assert predicate["release"]["deployedVersion"] == "True"
    assert "@" not in predicate["release"]["probe"]
    assert {key: predicate["target"][key] for key in ("name", "url")} == {"name": "stage", "url": httpbin_url}


def test_preflight_messages_name_urls_without_user_info(pytester, httpbin_url, staging_env):
    host = httpbin_url.removeprefix("http://")
    staging_env.setenv("DEPLOY_PASSWORD", SHORT_PASSWORD)
    pytester.makefile(
        ".toml",
        **{
            "staging-targets": f"""
[targets.stage]
url = "http://deploy:${{DEPLOY_PASSWORD}}@{host}"
version_url = "http://deploy:${{DEPLOY_PASSWORD}}@{host}/status/503"
"""
        },
    )
    pytester.makepyfile("def test_smoke(): pass")
    result = pytester.runpytest_subprocess("--staging-target=stage", "-rA")
    result.assert_outcomes(failed=1)
    output = result.stdout.str() + result.stderr.str()
    assert f"version probe {httpbin_url}/status/503 answered HTTP 503" in output
    assert_no_userinfo(output, SHORT_PASSWORD)
