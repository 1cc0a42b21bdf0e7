"""Quarantine and re-runs end to end: real inner pytest runs, serial and under xdist."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

pytestmark = pytest.mark.usefixtures("staging_env")

XDIST = pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
FUTURE = (dt.date.today() + dt.timedelta(days=30)).isoformat()
PAST = (dt.date.today() - dt.timedelta(days=2)).isoformat()

# Five smoke tests, so one quarantined test (20%) is within the default budget.
SUITE = """
import pathlib
import pytest

HERE = pathlib.Path(__file__).parent

def test_a(): pass
def test_b(): pass
def test_c(): pass
def test_d(): pass

def test_payments_refund():
    assert False, "sandbox flapped"
"""

QUARANTINE = """
[[quarantine]]
test = "test_suite.py::test_payments_refund"
reason = "sandbox flaps"
owner = "payments"
until = "{until}"
ticket = "PAY-123"
"""


def predicate(pytester) -> dict:
    envelope = json.loads((pytester.path / "staging-verdict.intoto.json").read_text())
    return json.loads(base64.b64decode(envelope["payload"]))["predicate"]


def run(pytester, httpbin_url, *args):
    return pytester.runpytest_subprocess(f"--staging-target={httpbin_url}", "-p", "no:randomly", *args)


@XDIST
def test_quarantined_failure_does_not_block(pytester, httpbin_url, xdist):
    pytester.makepyfile(test_suite=SUITE)
    pytester.makefile(".toml", **{"staging-quarantine": QUARANTINE.format(until=FUTURE)})
    result = run(pytester, httpbin_url, *xdist)
    assert result.ret == 0
    result.assert_outcomes(passed=4, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*= staging: flaky and quarantined =*",
            f"  test_suite.py::test_payments_refund  xfailed  owner payments, until {FUTURE}, PAY-123: sandbox flaps",
            "decision: PROMOTE",
        ]
    )
    verdict = predicate(pytester)
    assert verdict["decision"] == "PROMOTE"
    [listed] = verdict["quarantine"]["tests"]
    assert listed["nodeid"] == "test_suite.py::test_payments_refund"
    assert listed["outcome"] == "xfailed"
    assert listed["quarantine"] == {
        "test": "test_suite.py::test_payments_refund",
        "reason": "sandbox flaps",
        "owner": "payments",
        "until": FUTURE,
        "ticket": "PAY-123",
        "status": "active",
        "source": "staging-quarantine.toml entry 1 (line 1)",
    }


@XDIST
def test_quarantined_pass_is_recorded_and_the_marker_works(pytester, httpbin_url, xdist):
    pytester.makepyfile(
        test_suite=SUITE.replace('assert False, "sandbox flapped"', "pass")
        + f'\n@pytest.mark.quarantine(reason="slow", owner="web", until="{FUTURE}")\ndef test_marked():\n    assert False\n'
    )
    pytester.makefile(".toml", **{"staging-quarantine": QUARANTINE.format(until=FUTURE)})
    pytester.makeini("[pytest]\nstaging_max_quarantined = 0.5\nxfail_strict = true\n")
    result = run(pytester, httpbin_url, *xdist)
    # xfail_strict would turn a passing quarantined test into a failure: quarantine is never strict.
    result.assert_outcomes(passed=4, xpassed=1, xfailed=1)
    outcomes = {t["nodeid"].split("::")[1]: t["outcome"] for t in predicate(pytester)["quarantine"]["tests"]}
    assert outcomes == {"test_payments_refund": "xpassed", "test_marked": "xfailed"}
    assert predicate(pytester)["decision"] == "PROMOTE"


@XDIST
def test_expired_entry_blocks_again_and_names_the_owner(pytester, httpbin_url, xdist):
    pytester.makepyfile(test_suite=SUITE)
    pytester.makefile(".toml", **{"staging-quarantine": QUARANTINE.format(until=PAST)})
    result = run(pytester, httpbin_url, *xdist)
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"WARNING: quarantine expired, the test blocks again: test_suite.py::test_payments_refund (owner payments, until {PAST}; *"
        ]
    )
    verdict = predicate(pytester)
    assert verdict["decision"] == "REJECT"
    assert (
        verdict["reasons"][0]["text"]
        == f"1 test failed: test_suite.py::test_payments_refund (quarantine expired {PAST}, owner payments)"
    )
    assert verdict["quarantine"]["expired"][0]["owner"] == "payments"


@XDIST
def test_stale_entry_is_reported(pytester, httpbin_url, xdist):
    pytester.makepyfile(test_suite=SUITE.replace('assert False, "sandbox flapped"', "pass"))
    pytester.makefile(
        ".toml",
        **{
            "staging-quarantine": QUARANTINE.format(until=FUTURE).replace(
                "test_payments_refund", "test_removed_long_ago"
            )
        },
    )
    result = run(pytester, httpbin_url, *xdist)
    result.stdout.fnmatch_lines(
        ["stale quarantine entry, matches no collected test: test_suite.py::test_removed_long_ago (owner payments; *"]
    )
    assert [e["test"] for e in predicate(pytester)["quarantine"]["stale"]] == ["test_suite.py::test_removed_long_ago"]


@XDIST
def test_prefix_entry_and_over_budget_holds(pytester, httpbin_url, xdist):
    pytester.makepyfile(test_suite=SUITE)
    pytester.makefile(
        ".toml", **{"staging-quarantine": QUARANTINE.format(until=FUTURE).replace("test_payments_refund", "test_*")}
    )
    result = run(pytester, httpbin_url, *xdist)
    assert result.ret == 6  # every test "passed" as far as pytest goes, but the gate holds
    verdict = predicate(pytester)
    assert verdict["decision"] == "HOLD"
    assert verdict["reasons"] == [
        {
            "code": "quarantine-over-budget",
            "text": "5 of 5 smoke tests are quarantined, over the budget of 20% (staging_max_quarantined)",
        }
    ]


FLAKY = """
import os, pathlib
import pytest

HERE = pathlib.Path(__file__).parent
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")  # each xdist worker has its own fixtures

def note(name):
    (HERE / name).open("a").write(WORKER + "\\n")

@pytest.fixture(scope="session")
def session_thing():
    note("session-setups")
    yield
    note("session-teardowns")

@pytest.fixture(scope="module")
def module_thing():
    note("module-setups")

@pytest.fixture
def function_thing():
    note("function-setups")

def test_fails_once(session_thing, module_thing, function_thing):
    state = HERE / "attempts"
    count = int(state.read_text()) if state.exists() else 0
    state.write_text(str(count + 1))
    assert count > 0, "first attempt fails"

def test_after(session_thing, module_thing):
    pass
"""


@XDIST
@pytest.mark.parametrize(
    ("policy", "decision", "ret"), [("allow", "PROMOTE", 0), ("hold", "HOLD", 6), ("reject", "REJECT", 6)]
)
def test_flaky_test_and_the_three_policies(pytester, httpbin_url, xdist, policy, decision, ret):
    pytester.makepyfile(test_flaky=FLAKY)
    result = run(
        pytester, httpbin_url, "--staging-reruns=2", f"--staging-flaky={policy}", "--junitxml=junit.xml", *xdist
    )
    assert result.ret == ret
    result.assert_outcomes(passed=2)
    verdict = predicate(pytester)
    assert verdict["decision"] == decision
    [flaky] = verdict["flaky"]
    assert flaky["nodeid"] == "test_flaky.py::test_fails_once"
    assert [a["outcome"] for a in flaky["attempts"]] == ["failed", "passed"]
    assert flaky["attempts"][0]["error"].startswith("AssertionError: first attempt fails")

    # A re-run rebuilds the test's own fixtures, never the module's or the session's.
    def lines(name: str) -> list[str]:
        return (pytester.path / name).read_text().splitlines()

    assert len(lines("function-setups")) == 2 and len(set(lines("function-setups"))) == 1
    for name in ("module-setups", "session-setups", "session-teardowns"):
        assert len(lines(name)) == len(set(lines(name))), (name, lines(name))
    junit = (pytester.path / "junit.xml").read_text()
    assert junit.count("<testcase ") == 2
    assert '<property name="flaky_attempts" value="2" />' in junit


def test_a_test_failing_every_attempt_fails_with_all_attempts(pytester, httpbin_url):
    pytester.makepyfile("def test_always():\n    assert False, 'always'\n")
    result = run(pytester, httpbin_url, "--staging-reruns=2")
    result.assert_outcomes(failed=1)
    verdict = predicate(pytester)
    [test] = verdict["tests"]
    assert [a["outcome"] for a in test["attempts"]] == ["failed", "failed", "failed"]
    assert not test.get("flaky") and verdict["decision"] == "REJECT"


@XDIST
def test_quarantined_tests_are_not_rerun(pytester, httpbin_url, xdist):
    pytester.makepyfile(
        test_suite=SUITE.replace(
            'assert False, "sandbox flapped"',
            '(HERE / "runs").open("a").write("x")\n    assert False',
        )
    )
    pytester.makefile(".toml", **{"staging-quarantine": QUARANTINE.format(until=FUTURE)})
    run(pytester, httpbin_url, "--staging-reruns=3", *xdist).assert_outcomes(passed=4, xfailed=1)
    assert (pytester.path / "runs").read_text() == "x"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            '# ours\n\n[[quarantine]]\ntest = "t"\nreason = "r"\nuntil = "2030-01-01"\n',
            ["quarantine[1] (line 3).owner", "missing"],
        ),
        (
            '[[quarantine]]\ntest = "t"\nreason = "r"\nowner = "o"\nuntil = "soon"\n',
            ["quarantine[1] (line 1).until", "YYYY-MM-DD"],
        ),
        (
            '[[quarantine]]\ntest = "t"\nreason = "r"\nowner = "o"\nuntil = 2030-01-01\nexpires = 1\n',
            ["quarantine[1] (line 1).expires", "unknown field"],
        ),
        ("[quarantine]\ntest = 1\n", ["staging-quarantine.toml: quarantine", "[[quarantine]]"]),
        ("[[quarantine]\n", ["not valid TOML"]),
    ],
)
def test_bad_quarantine_file_is_a_usage_error(pytester, usage_error, httpbin_url, text, fragments):
    pytester.makefile(".toml", **{"staging-quarantine": text})
    pytester.makepyfile("def test_never():\n    raise AssertionError\n")
    usage_error.check(run(pytester, httpbin_url), *fragments)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--staging-reruns=-1"], ["--staging-reruns", "whole number"]),
        (["--staging-flaky=maybe"], ["--staging-flaky", "allow, hold, reject"]),
        (["--staging-quarantine=nope.toml"], ["--staging-quarantine", "does not exist"]),
        (["-o", "staging_max_quarantined=2"], ["staging_max_quarantined", "between 0 and 1"]),
    ],
)
def test_bad_options_are_usage_errors(pytester, usage_error, httpbin_url, args, fragments):
    pytester.makepyfile("def test_never():\n    raise AssertionError\n")
    usage_error.check(run(pytester, httpbin_url, *args), *fragments)


def test_incomplete_marker_is_a_collection_error(pytester, httpbin_url):
    pytester.makepyfile("import pytest\n@pytest.mark.quarantine(reason='x', owner='y')\ndef test_q():\n    pass\n")
    result = run(pytester, httpbin_url)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*test_q: @pytest.mark.quarantine: until: missing; every quarantine needs until*"])


def test_a_run_of_one_directory_reports_only_its_own_stale_entries(pytester, httpbin_url):
    """`pytest tests/smoke/` says nothing of quarantine entries for tests elsewhere."""
    pytester.makepyfile(
        **{"tests/smoke/test_up": "def test_up(): pass", "tests/contract/test_api": "def test_api(): pass"}
    )
    entries = "".join(
        f'[[quarantine]]\ntest = "{test}"\nreason = "r"\nowner = "o"\nuntil = "{FUTURE}"\n\n'
        for test in ("tests/smoke/test_up.py::test_gone", "tests/contract/test_api.py::test_gone", "tests/contract/*")
    )
    pytester.makefile(".toml", **{"staging-quarantine": entries})
    run(pytester, httpbin_url, "tests/smoke")
    assert [e["test"] for e in predicate(pytester)["quarantine"]["stale"]] == ["tests/smoke/test_up.py::test_gone"]
    run(pytester, httpbin_url)  # the whole suite: every entry that matches nothing is stale
    assert [e["test"] for e in predicate(pytester)["quarantine"]["stale"]] == [
        "tests/smoke/test_up.py::test_gone",
        "tests/contract/test_api.py::test_gone",
    ]
