"""Failing closed: no verdict says more than the run proved.

Each test here is one way the gate used to sign, or leave behind, a PROMOTE it had not earned.
The faults that need signals and process kills are in test_fault_matrix.py.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from inner_runs import popen_inner_pytest

from pytest_staging.cli import main as cli

pytestmark = pytest.mark.usefixtures("staging_env")

VERDICT = "staging-verdict.intoto.json"

SUITE = """
import pytest

def test_health(staging_http):
    assert staging_http.get("/get").ok

def test_broken(staging_http):
    assert staging_http.get("/status/500").ok, "the release answers 500"

@pytest.mark.slow
@pytest.mark.contract
def test_shape(staging_http):
    assert staging_http.get("/json").json()["slideshow"]
"""

PASSING = """
import pytest

def test_health(staging_http):
    assert staging_http.get("/get").ok

@pytest.mark.contract
def test_shape(staging_http):
    assert staging_http.get("/json").json()["slideshow"]
"""

WITH_SLOW = (
    PASSING
    + """
@pytest.mark.slow
@pytest.mark.contract
def test_slow_shape(staging_http):
    assert staging_http.get("/json").ok
"""
)


def statement_at(path: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))


@pytest.fixture
def run(pytester, httpbin_url, keys):
    """An inner gate run against httpbin, signed; returns (result, predicate or None)."""
    pytester.makeini("[pytest]\nmarkers = slow: slow tests\n")

    def run(*args: str, suite: str = SUITE):
        pytester.makepyfile(test_gate=suite)
        result = pytester.runpytest(f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}", *args)
        path = pytester.path / VERDICT
        return result, statement_at(path)["predicate"] if path.exists() else None

    return run


# -- 1. a stale verdict never survives -------------------------------------------------------


def test_the_incomplete_hold_stands_at_the_path_while_the_run_is_under_way(pytester, httpbin_url, keys):
    """Whatever kills the run from here on leaves this HOLD, never an earlier run's verdict."""
    pytester.makepyfile(
        f"""
        import base64, json, subprocess, sys

        def test_sees_the_verdict_path(staging_http):
            envelope = json.load(open({VERDICT!r}))
            predicate = json.loads(base64.b64decode(envelope["payload"]))["predicate"]
            assert predicate["decision"] == "HOLD"
            assert predicate["reasonCodes"] == ["incomplete"]
            # Signed by the gate's key: release tooling can verify it, and it says HOLD.
            verify = [sys.executable, "-m", "pytest_staging", "verify", {VERDICT!r}, "--key", {str(keys[1])!r}]
            assert subprocess.run(verify + ["--expect", "HOLD", "--max-age", "1h"]).returncode == 0
            assert json.loads(base64.b64decode(envelope["payload"]))["predicate"]["session"]["exitStatus"] is None
            assert subprocess.run(verify).returncode == 1
        """
    )
    result = pytester.runpytest(f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}")
    result.assert_outcomes(passed=1)
    assert statement_at(pytester.path / VERDICT)["predicate"]["decision"] == "PROMOTE"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--staging-tier=bogus"], id="bad-option"),
        pytest.param(["--staging-reruns=-1"], id="bad-number"),
        pytest.param(["--staging-signing-key=missing.pem"], id="unreadable-key"),
        pytest.param(["-n", "1", "--dist=each"], id="dist-mode"),
    ],
)
def test_a_usage_error_removes_an_earlier_verdict(run, pytester, httpbin_url, keys, usage_error, args):
    result, predicate = run(suite=PASSING)
    assert predicate["decision"] == "PROMOTE"
    result = pytester.runpytest(f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}", *args)
    usage_error.check(result)
    assert not (pytester.path / VERDICT).exists()


def test_a_usage_error_leaves_a_file_that_is_no_verdict_alone(pytester, httpbin_url, usage_error):
    notes = pytester.path / VERDICT
    notes.write_text('{"payloadType": "text/plain"}\n')  # JSON, but not a DSSE envelope
    pytester.makepyfile(PASSING)
    usage_error.check(pytester.runpytest(f"--staging-target={httpbin_url}", "--staging-tier=bogus"))
    assert notes.read_text() == '{"payloadType": "text/plain"}\n'


def test_a_usage_error_pytest_raises_after_the_gate_started_leaves_a_hold(run, pytester, httpbin_url, keys):
    run(suite=PASSING)
    result = pytester.runpytest(f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}", "no_such_dir/")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    predicate = statement_at(pytester.path / VERDICT)["predicate"]
    assert predicate["decision"] == "HOLD" and "usage-error" in predicate["reasonCodes"]


def test_an_unwritable_verdict_path_stops_the_run_before_any_test(pytester, httpbin_url, usage_error):
    pytester.makepyfile(PASSING)
    (pytester.path / "taken").write_text("a file, not a directory")
    result = pytester.runpytest(f"--staging-target={httpbin_url}", "--staging-verdict=taken/verdict.json")
    line = usage_error.check(result, "--staging-verdict", "taken/verdict.json")
    assert "writable" in line


# -- 2. deselection inside a tier never promotes -----------------------------------------------


@pytest.mark.parametrize(
    "args, suite, deselected",
    [
        pytest.param(["-k", "not broken"], SUITE, {"smoke": 1}, id="keyword"),
        pytest.param(["-m", "not slow"], WITH_SLOW, {"contract": 1}, id="markexpr"),
        pytest.param(["--deselect", "test_gate.py::test_broken"], SUITE, {"smoke": 1}, id="deselect"),
    ],
)
def test_a_deselection_holds_the_release(run, args, suite, deselected):
    """`-k "not broken"` dropped the failing test and signed PROMOTE (issue 14)."""
    result, predicate = run(*args, suite=suite)
    assert predicate["decision"] == "HOLD"
    assert "tests-deselected" in predicate["reasonCodes"]
    assert predicate["policy"]["selection"]["deselected"] == deselected
    assert result.ret == 0  # the user's own partial run stays green locally


def test_the_selection_is_recorded_and_pinned_by_the_policy_digest(run, pytester):
    _, plain = run(suite=PASSING)
    assert plain["policy"]["selection"] == {"args": [], "keyword": None, "markexpr": None, "deselected": {}}
    _, keyword = run("-k", "health or shape", suite=PASSING)  # deselects nothing, but was asked for
    assert keyword["policy"]["selection"]["keyword"] == "health or shape"
    assert keyword["decision"] == "PROMOTE"
    assert keyword["policy"]["digest"] != plain["policy"]["digest"]
    sub = pytester.mkdir("sub")
    (sub / "test_sub.py").write_text(PASSING)
    _, args = run("sub/test_sub.py::test_health", "sub", suite=PASSING)
    assert args["policy"]["selection"]["args"] == ["sub/test_sub.py::test_health", "sub"]


def test_the_policy_digest_covers_what_was_asked_not_how_many_it_deselected(run, pytester):
    pytester.makepyfile(test_more="def test_extra(staging_http):\n    pass\n")
    _, first = run("-k", "not broken", suite=SUITE)
    (pytester.path / "test_more.py").write_text(
        "def test_extra(staging_http):\n    pass\n\ndef test_broken_too():\n    pass\n"
    )
    _, second = run("-k", "not broken", suite=SUITE)
    assert first["policy"]["selection"]["deselected"] != second["policy"]["selection"]["deselected"]
    assert first["policy"]["digest"] == second["policy"]["digest"]


def test_the_policy_digest_is_the_same_in_another_checkout(run, pytester, tmp_path, httpbin_url, keys):
    # A pinned digest must hold in every CI workspace: no absolute path of the checkout in the policy.
    pytester.makefile(
        ".toml",
        **{
            "staging-quarantine": '[[quarantine]]\ntest = "test_gate.py::test_broken"\nreason = "r"\n'
            'owner = "o"\nuntil = "2999-01-01"\n'
        },
    )
    _, here = run(suite=SUITE)
    assert here["policy"]["quarantineFile"] == "staging-quarantine.toml"
    elsewhere = tmp_path / "another" / "workspace"
    shutil.copytree(pytester.path, elsewhere)
    (elsewhere / VERDICT).unlink()
    popen_inner_pytest(elsewhere, f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}").communicate()
    assert statement_at(elsewhere / VERDICT)["predicate"]["policy"]["digest"] == here["policy"]["digest"]


def test_a_gate_that_deselects_on_purpose_records_it(run, pytester):
    pytester.makeini("[pytest]\nmarkers = slow: slow tests\nstaging_allow_deselection = true\n")
    _, allowed = run("-m", "not slow", suite=WITH_SLOW)
    assert allowed["decision"] == "PROMOTE"
    assert allowed["policy"]["allowDeselection"] is True
    assert allowed["policy"]["selection"]["deselected"] == {"contract": 1}


def test_the_allowance_is_part_of_the_policy_digest(run, pytester):
    _, strict = run(suite=PASSING)
    pytester.makeini("[pytest]\nmarkers = slow: slow tests\nstaging_allow_deselection = true\n")
    _, allowing = run(suite=PASSING)
    assert (strict["policy"]["allowDeselection"], allowing["policy"]["allowDeselection"]) == (False, True)
    assert strict["policy"]["digest"] != allowing["policy"]["digest"]


def test_last_failed_and_stepwise_hold(run, pytester):
    """--lf reruns only the failures (and skips whole files without one); --sw skips what passed."""
    pytester.makepyfile(test_other="def test_elsewhere(staging_http):\n    pass\n")
    first, _ = run("--staging-no-fail-fast")
    first.assert_outcomes(passed=3, failed=1)
    _, last_failed = run("--lf", "--staging-no-fail-fast")
    assert last_failed["decision"] == "REJECT"  # the failure is still there, and...
    assert "tests-deselected" in last_failed["reasonCodes"]  # ...the rest was not run
    assert "--lf ran only the last failures (1 test file not collected)" in json.dumps(last_failed["reasons"])
    run("--sw")  # stops at the failure and remembers it...
    _, stepwise = run("--sw")  # ...so the next run starts there, deselecting what came before
    assert "tests-deselected" in stepwise["reasonCodes"]


def test_another_plugins_deselection_holds(run, pytester):
    pytester.makeconftest(
        """
        def pytest_collection_modifyitems(config, items):
            dropped = [item for item in items if "broken" in item.name]
            items[:] = [item for item in items if item not in dropped]
            config.hook.pytest_deselected(items=dropped)
        """
    )
    _, predicate = run()
    assert predicate["decision"] == "HOLD" and "tests-deselected" in predicate["reasonCodes"]


def test_staging_tier_deselection_holds_with_the_count_per_tier(run):
    result, predicate = run("--staging-tier=contract")
    assert predicate["decision"] == "HOLD"
    assert predicate["reasonCodes"] == ["required-tier-deselected", "tests-deselected"]
    assert predicate["policy"]["selection"]["deselected"] == {"smoke": 2}
    assert result.ret == 0


# -- 3. verify expects PROMOTE unless told otherwise -------------------------------------------


def test_verify_refuses_a_reject_unless_asked_for_one(run, pytester, keys, capsys):
    _, predicate = run()
    assert predicate["decision"] == "REJECT"
    path, pub = str(pytester.path / VERDICT), str(keys[1])
    assert cli(["verify", path, "--key", pub]) == 1
    assert "decision is REJECT, expected PROMOTE" in capsys.readouterr().err
    assert cli(["verify", path, "--key", pub, "--expect", "REJECT"]) == 0
    assert cli(["verify", path, "--key", pub, "--expect", "any"]) == 0
    assert cli(["verify", path, "--key", pub, "--expect", "PROMOTE", "--expect", "HOLD"]) == 1
    assert cli(["verify", path, "--key", pub, "--expect", "hold", "--expect", "reject"]) == 0


# -- 7. one notion of blocking ------------------------------------------------------------------


def test_an_expired_quarantine_fails_its_tier_as_it_fails_the_release(run, pytester):
    pytester.makefile(
        ".toml",
        **{
            "staging-quarantine": '[[quarantine]]\ntest = "test_gate.py::test_broken"\n'
            'reason = "flaps"\nowner = "payments"\nuntil = "2020-01-01"\n'
        },
    )
    _, predicate = run()
    assert predicate["decision"] == "REJECT"
    assert predicate["tiers"]["smoke"]["result"] == "failed"
    assert "owner payments" in json.dumps(predicate["reasons"][0])


# -- 5. under xdist the controller knows the collection early ----------------------------------


def test_an_early_interrupt_under_xdist_still_knows_every_test_and_tier(pytester, httpbin_url, keys):
    """Collection facts used to arrive with workeroutput at the very end: an interrupt lost the
    collected-but-unrun tests and the required tiers became []."""
    pytester.makepyfile(
        """
        import os, signal, pytest

        def test_stop(staging_http):
            os.kill(os.getppid(), signal.SIGTERM)  # the controller, as a CI time-out would

        @pytest.mark.contract
        def test_shape(staging_http):
            pass

        @pytest.mark.load
        def test_load(staging_http):
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}", "-n", "2"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    predicate = statement_at(pytester.path / VERDICT)["predicate"]
    assert predicate["decision"] == "HOLD" and "interrupted" in predicate["reasonCodes"]
    assert predicate["policy"]["requiredTiers"] == ["smoke", "contract", "load"]
    outcomes = {test["nodeid"].split("::")[1]: test["outcome"] for test in predicate["tests"]}
    assert set(outcomes) == {"test_stop", "test_shape", "test_load"}
    assert outcomes["test_load"] == "notrun"


def test_an_interrupt_pytest_cannot_show_still_ends_the_run_as_interrupted(pytester, httpbin_url, keys):
    """A signal can land on an instruction without a line number (Python 3.11+): pytest's own
    report of the interrupt then raised TypeError, and the run ended with exit 1 and a traceback."""
    pytester.makepyfile(
        """
        import dis, sys, types

        def _frame():
            try:
                return sys._getframe()
            finally:
                pass

        def test_health(staging_http):
            assert staging_http.get("/get").ok

        def test_stopped():
            lasti = next(ins.offset for ins in dis.get_instructions(_frame) if ins.positions.lineno is None)
            where = types.TracebackType(None, _frame(), lasti, -1)
            assert where.tb_lineno is None
            raise KeyboardInterrupt("SIGTERM received").with_traceback(where)

        def test_later():
            pass
        """
    )
    result = pytester.runpytest_subprocess(f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output and "TypeError" not in output
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*SIGTERM received*"])
    predicate = statement_at(pytester.path / VERDICT)["predicate"]
    assert predicate["decision"] == "HOLD" and "interrupted" in predicate["reasonCodes"]
    assert predicate["session"]["exitStatus"] == 2


# -- review: the edges of failing closed --------------------------------------------------------


@pytest.fixture
def outside_xdist(staging_env):
    """Our own suite may run under xdist: the inner run must not take itself for a worker."""
    staging_env.delenv("PYTEST_XDIST_WORKER", raising=False)


@pytest.mark.parametrize(
    "args, conftest",
    [
        pytest.param(["--no-such-option"], None, id="unknown-option"),
        pytest.param([], "import no_such_module\n", id="conftest-import-error"),
    ],
)
def test_a_usage_error_pytest_raises_before_the_gate_starts_removes_an_earlier_verdict(
    run, pytester, httpbin_url, keys, outside_xdist, args, conftest
):
    run(suite=PASSING)
    assert (pytester.path / VERDICT).exists()
    if conftest:
        pytester.makeconftest(conftest)
    result = pytester.runpytest_subprocess(f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}", *args)
    assert result.ret in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERRUPTED), result.stderr.str()
    assert not (pytester.path / VERDICT).exists()


def test_a_large_earlier_verdict_is_removed_too(pytester, httpbin_url, usage_error, outside_xdist):
    envelope = {"payloadType": "application/vnd.in-toto+json", "payload": "A" * (3 << 20), "signatures": []}
    (pytester.path / VERDICT).write_text(json.dumps(envelope))
    pytester.makepyfile(PASSING)
    usage_error.check(pytester.runpytest(f"--staging-target={httpbin_url}", "--staging-tier=bogus"))
    assert not (pytester.path / VERDICT).exists()


def test_tests_a_plugin_drops_without_telling_pytest_hold_even_when_deselection_is_allowed(run, pytester):
    pytester.makeini("[pytest]\nmarkers = slow: slow tests\nstaging_allow_deselection = true\n")
    pytester.makeconftest(
        """
        def pytest_collection_modifyitems(items):
            items[:] = [item for item in items if "broken" not in item.name]
        """
    )
    _, predicate = run()
    assert predicate["decision"] == "HOLD" and "tests-deselected" in predicate["reasonCodes"]
    assert "1 dropped by a plugin without pytest_deselected" in json.dumps(predicate["reasons"])
    assert predicate["policy"]["selection"]["deselected"] == {"smoke": 1}


def test_deselect_and_ignore_are_pinned_by_the_policy_digest(run, pytester):
    pytester.makeini("[pytest]\nmarkers = slow: slow tests\nstaging_allow_deselection = true\n")
    pytester.makepyfile(test_other="def test_elsewhere(staging_http):\n    pass\n")
    _, plain = run("-m", "not slow", suite=WITH_SLOW)
    _, deselect = run("-m", "not slow", "--deselect", "test_gate.py::test_shape", suite=WITH_SLOW)
    _, ignore = run("-m", "not slow", "--ignore=test_other.py", suite=WITH_SLOW)
    assert plain["decision"] == "PROMOTE"
    assert deselect["policy"]["selection"]["deselect"] == ["test_gate.py::test_shape"]
    assert ignore["policy"]["selection"]["ignore"] == ["test_other.py"]
    digests = {
        plain["policy"]["digest"]["sha256"],
        deselect["policy"]["digest"]["sha256"],
        ignore["policy"]["digest"]["sha256"],
    }
    assert len(digests) == 3


def test_last_failed_holds_even_when_deselection_is_allowed(run, pytester):
    pytester.makeini("[pytest]\nmarkers = slow: slow tests\nstaging_allow_deselection = true\n")
    run("--staging-no-fail-fast")
    _, predicate = run("--lf", "--staging-no-fail-fast")
    assert "tests-deselected" in predicate["reasonCodes"]
    assert "no policy can pin" in json.dumps(predicate["reasons"])


@pytest.mark.parametrize("mode", ["--setup-plan", "--setup-only", "--fixtures", "--markers", "--cache-show"])
def test_modes_that_run_no_test_leave_the_verdict_alone(run, pytester, httpbin_url, keys, mode):
    run(suite=PASSING)
    before = (pytester.path / VERDICT).read_bytes()
    result = pytester.runpytest(f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}", mode)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert (pytester.path / VERDICT).read_bytes() == before


def test_a_collection_error_is_not_an_interrupt(run, pytester):
    pytester.makepyfile(test_syntax="def test_unfinished(:\n    pass\n")
    result, predicate = run(suite=PASSING)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert predicate["decision"] == "HOLD"
    assert "collection-error" in predicate["reasonCodes"] and "interrupted" not in predicate["reasonCodes"]


def test_a_verdict_that_cannot_be_written_at_the_end_is_one_line_and_no_green_exit(pytester, httpbin_url, keys):
    pytester.makepyfile(
        """
        import shutil
        from pathlib import Path

        def test_takes_the_directory(staging_http):
            shutil.rmtree("out")
            Path("out").write_text("a file now")
        """
    )
    result = pytester.runpytest(
        f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}", "--staging-verdict=out/v.json"
    )
    assert result.ret == 6
    result.stdout.fnmatch_lines(["ERROR: could not write the verdict*out*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


_popen_gate = popen_inner_pytest


def _wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.05)


def test_the_checkpoint_after_an_interrupt_is_a_valid_verdict(pytester, httpbin_url, keys):
    """What a CI job that sends SIGTERM, then SIGKILL a few seconds later, leaves behind while a
    slow teardown runs: the checkpoint, which must verify as a HOLD."""
    pytester.makeconftest(
        """
        import time
        from pathlib import Path
        import pytest

        @pytest.fixture(scope="session", autouse=True)
        def slow_teardown():
            yield
            Path("in-teardown").touch()
            deadline = time.monotonic() + 120
            while not Path("release").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        """
    )
    pytester.makepyfile(
        """
        import os, signal, pytest

        def test_stop(staging_http):
            os.kill(os.getpid(), signal.SIGTERM)

        @pytest.mark.contract
        def test_later(staging_http):
            pass
        """
    )
    process = _popen_gate(pytester.path, f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}")
    try:
        _wait_for(pytester.path / "in-teardown", process)
        assert (
            cli(["verify", str(pytester.path / VERDICT), "--key", str(keys[1]), "--expect", "HOLD", "--max-age", "1h"])
            == 0
        )
        predicate = statement_at(pytester.path / VERDICT)["predicate"]
        assert "interrupted" in predicate["reasonCodes"] and predicate["session"]["exitStatus"] == 2
        (pytester.path / "release").touch()
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "Traceback" not in output


def test_a_run_started_under_nohup_keeps_ignoring_sighup(pytester, httpbin_url, keys):
    pytester.makepyfile(
        """
        import os, signal

        def test_hangup(staging_http):
            os.kill(os.getpid(), signal.SIGHUP)  # ignored, as nohup asked
        """
    )
    process = _popen_gate(
        pytester.path,
        f"--staging-target={httpbin_url}",
        f"--staging-signing-key={keys[0]}",
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert statement_at(pytester.path / VERDICT)["predicate"]["decision"] == "PROMOTE"


def test_a_test_a_plugin_adds_after_collection_is_accounted_for(run, pytester):
    # Made after the gate saw the collection: its failure must still count, in its marked tier.
    pytester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_collection_finish(session):
            module = session.items[0].parent
            late = pytest.Function.from_parent(module, name="test_late", callobj=module.obj.test_broken)
            late_shape = pytest.Function.from_parent(module, name="test_late_shape", callobj=module.obj.test_shape)
            late_shape.add_marker(pytest.mark.contract)
            session.items[1:1] = [late, late_shape]
        """
    )
    result, predicate = run()
    result.assert_outcomes(passed=1, failed=2, skipped=2)
    tests = {test["nodeid"].split("::")[1]: (test["tier"], test["outcome"]) for test in predicate["tests"]}
    assert tests["test_late"] == ("smoke", "failed")
    assert tests["test_late_shape"] == ("contract", "skipped")  # its tier, so fail-fast skipped it
    assert predicate["decision"] == "REJECT"


def test_reports_of_a_test_whose_start_was_not_logged_go_to_that_test(run, pytester):
    # A plugin's own protocol that logs the reports but not the start (nor the finish): each
    # report must still land on its own test, never on the test before it.
    pytester.makeconftest(
        """
        import pytest
        from _pytest.runner import runtestprotocol

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtest_protocol(item, nextitem):
            for report in runtestprotocol(item, nextitem=nextitem, log=False):
                item.ihook.pytest_runtest_logreport(report=report)
            return True
        """
    )
    result, predicate = run()
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    outcomes = {test["nodeid"].split("::")[1]: test["outcome"] for test in predicate["tests"]}
    assert outcomes == {"test_health": "passed", "test_broken": "failed", "test_shape": "skipped"}
    assert predicate["decision"] == "REJECT"
