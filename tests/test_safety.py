"""Destructive tests never run on a sensitive target: by flag, by URL regex, or by redirect."""

from __future__ import annotations

import pytest
from docs_text import docs_block

pytestmark = pytest.mark.usefixtures("staging_env")

SUITE = """
import pytest

def test_read(staging_http):
    assert staging_http.get("/get").ok

@pytest.mark.destructive
def test_wipe(staging_http):
    print("WIPED")
"""


def assert_destructive_skipped(result: pytest.RunResult, target_name: str) -> None:
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*= staging verdict =*",
            "  smoke     passed     required  1 passed, 1 skipped, 1 destructive skipped (sensitive target)",
            f"SKIPPED [[]1[]] *:6: staging: destructive test not run on sensitive target {target_name}",
        ]
    )
    assert "WIPED" not in result.stdout.str()


def test_runs_on_a_non_sensitive_target(pytester, httpbin_url):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("-s", f"--staging-target={httpbin_url}")
    result.assert_outcomes(passed=2)
    assert "WIPED" in result.stdout.str()


def test_sensitive_flag_in_targets_file(pytester, httpbin_url):
    pytester.makefile(".toml", **{"staging-targets": f'[targets.prod-like]\nurl = "{httpbin_url}"\nsensitive = true\n'})
    pytester.makepyfile(SUITE)
    assert_destructive_skipped(pytester.runpytest("-s", "-rs", "--staging-target=prod-like"), "prod-like")


def test_sensitive_url_regex(pytester, httpbin_url):
    pytester.makepyfile(SUITE)
    host = httpbin_url.removeprefix("http://")
    result = pytester.runpytest(
        "-s", "-rs", f"--staging-target={httpbin_url}", "--staging-sensitive-url=127\\.0\\.0\\.1"
    )
    assert_destructive_skipped(result, host)


def test_sensitive_url_from_ini_under_xdist(pytester, httpbin_url):
    pytester.makeini("[pytest]\nstaging_sensitive_url = ^http://127\n")
    pytester.makepyfile(SUITE)
    host = httpbin_url.removeprefix("http://")
    assert_destructive_skipped(pytester.runpytest_subprocess("-n", "2", "-rs", f"--staging-target={httpbin_url}"), host)


def test_target_redirecting_to_a_sensitive_url_is_sensitive(pytester, httpbin_url):
    """The target's URL looks harmless, but it redirects to one that matches the regex."""
    target = f"{httpbin_url}/redirect-to?url=/anything/production"
    pytester.makepyfile(SUITE.replace('"/get"', f'"{httpbin_url}/get"'))
    result = pytester.runpytest("-s", "-rs", f"--staging-target={target}", "--staging-sensitive-url=/production")
    assert_destructive_skipped(result, httpbin_url.removeprefix("http://"))
    result.stdout.fnmatch_lines(["staging: target is sensitive: destructive tests will be skipped"])


def test_destructive_request_redirected_to_sensitive_url_is_refused(pytester, httpbin_url):
    pytester.makepyfile(
        """
        import pytest
        from pytest_staging.fixtures.http import SensitiveRedirectError

        @pytest.mark.destructive
        def test_wipe(staging_http):
            with pytest.raises(SensitiveRedirectError, match="matches --staging-sensitive-url"):
                staging_http.post("/redirect-to?url=/anything/production&status_code=307")

        def test_read_may_follow(staging_http):
            assert staging_http.get("/redirect-to?url=/anything/production").url.endswith("/anything/production")
        """
    )
    result = pytester.runpytest(f"--staging-target={httpbin_url}", "--staging-sensitive-url=/production")
    result.assert_outcomes(passed=2)


def test_the_docs_show_what_a_skipped_destructive_test_prints(pytester, httpbin_url):
    """The documentation's example (docs/tiers.md) is the gate's real output, not a section that never prints."""
    shown = [line for line in docs_block("destructive-skipped").splitlines() if line and line != "..."]
    pytester.makepyfile(SUITE)
    pytester.makefile(".toml", **{"staging-targets": f'[targets.prod-eu]\nurl = "{httpbin_url}"\nsensitive = true\n'})
    result = pytester.runpytest("-rs", "--staging-target=prod-eu")
    # Every line of the example, with this run's own path, URL, environment and line number.
    result.stdout.fnmatch_lines([_pattern(line) for line in shown])


def _pattern(line: str) -> str:
    import re

    rule = re.fullmatch(r"=+ (.+?) =+", line)
    if rule:  # the terminal's width sets the rule's length
        return f"*= {rule.group(1)} =*"
    line = re.sub(r"\(https://[^)]*\), environment \w+", "(*), environment *", line)
    return line.replace("tests/test_orders.py:12", "*").replace("[", "[[]")
