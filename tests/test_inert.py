"""Without a target the plugin is inert: same outcomes, same output, markers still registered."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.usefixtures("staging_env")

USER_SUITE = """
import logging
import pytest

@pytest.mark.smoke
def test_own_smoke_marker():
    logging.getLogger("x").warning("hello")

@pytest.mark.smoke
@pytest.mark.load
def test_two_of_our_tier_markers_mean_nothing_here():
    pass

def test_fails():
    assert 1 == 2

@pytest.mark.destructive
def test_destructive_runs():
    pass

@pytest.mark.contract
def test_first_in_file_stays_last():
    pass
"""


def normalised(result: pytest.RunResult) -> list[str]:
    lines = []
    for line in result.stdout.lines:
        if line.startswith(("plugins:", "rootdir:", "platform ", "cachedir:", "hypothesis profile")):
            continue
        # The duration is the clock's, and so is the '=' padding that centres the summary line.
        lines.append(re.sub(r"^=+ (.*) in \d+\.\d+s(?: \([\d:]+\))? =+$", r"= \1 in Xs =", line))
    return lines


def test_output_is_identical_to_pytest_without_the_plugin(pytester):
    pytester.makepyfile(USER_SUITE)
    pytester.makeini(
        "[pytest]\nmarkers =\n    smoke: the user's own smoke marker\n    load: theirs\n    contract: theirs\n    destructive: theirs\n"
    )
    with_plugin = pytester.runpytest_subprocess("-v", "-rA", "--strict-markers")
    without = pytester.runpytest_subprocess("-v", "-rA", "--strict-markers", "-p", "no:staging")
    assert with_plugin.ret == without.ret == pytest.ExitCode.TESTS_FAILED
    assert normalised(with_plugin) == normalised(without)
    assert not any("staging" in line for line in normalised(with_plugin))


def test_markers_are_registered_without_a_target(pytester):
    pytester.makepyfile(USER_SUITE)
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=4, failed=1)
    markers = pytester.runpytest("--markers").stdout.str()
    for name in ("smoke:", "contract:", "load:", "destructive:", "quarantine(reason, owner, until"):
        assert f"@pytest.mark.{name}" in markers


def test_no_verdict_or_files_written_when_inert(pytester):
    pytester.makepyfile("def test_ok():\n    pass\n")
    before = {p.name for p in pytester.path.iterdir()}
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    # __pycache__ is pytest's own (assertion rewriting), unless PYTHONDONTWRITEBYTECODE is set.
    assert {p.name for p in pytester.path.iterdir()} - {"__pycache__"} == before


def test_disabling_the_plugin_removes_the_fixtures(pytester, httpbin_url):
    pytester.makepyfile("def test_x(staging_http):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:staging")
    result.stdout.fnmatch_lines(["*fixture 'staging_http' not found*"])
