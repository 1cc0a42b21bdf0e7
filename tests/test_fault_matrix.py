"""The fault matrix: a small real gate against httpbin under each fault, serial and under -n 2.

Before each run an earlier run's PROMOTE (signed by the same key) lies at the verdict path, as
it would in a CI workspace that is reused. Whatever the fault, afterwards the path holds a
verdict that verifies and is not PROMOTE (SIGKILL: the ``incomplete`` HOLD), or, after a usage
error, nothing at all; the exit status is the one SPEC.md gives, and no traceback is printed.
The faults of a sharded run are checked the same way on the verdict ``pytest-staging merge``
writes from the shards' partial verdicts.

`FAULTS` is also the "What the gate guarantees" table of docs/verdict.md:
``python tests/test_fault_matrix.py`` prints it, and a test checks the page holds it as printed.

Inner runs are started in a session of their own (``start_new_session``): a Ctrl-C sent to the
inner run's process group must never reach the outer test run.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from approval_files import approval_of_any, expired_approval
from docs_text import docs_text
from inner_runs import BROKEN, SUITE, popen_inner_pytest

VERDICT = "staging-verdict.intoto.json"
#: Longest an inner run may take; far above the few seconds each one needs.
RUN_TIMEOUT = 180


class Fault(NamedTuple):
    id: str
    #: The fault, in the documentation's words.
    fault: str
    #: The decision left at the verdict path; None: no verdict at all (a usage error removed it).
    decision: str | None
    #: A reason code the verdict carries (None when there is no verdict).
    code: str | None
    #: Exit status (a signal's negative number when the run is killed).
    exit: int
    serial: bool = True
    xdist: bool = True
    #: The exit status under -n 2 where xdist's differs from pytest's.
    xdist_exit: int | None = None
    #: A sharded run's fault: the shards run (serially, or each under -n 2), then
    #: ``pytest-staging merge``; the verdict and the exit status are the merge's.
    shards: bool = False

    def exit_status(self, mode: str) -> int:
        return self.xdist_exit if mode == "xdist" and self.xdist_exit is not None else self.exit


FAULTS = (
    Fault(
        "sigint-start", "Ctrl-C while the gate starts (pre-flight; xdist workers starting)", "HOLD", "interrupted", 2
    ),
    Fault("sigint-test", "Ctrl-C during a test", "HOLD", "interrupted", 2),
    Fault("sigint-teardown", "Ctrl-C during session teardown (xdist: workers shutting down)", "HOLD", "interrupted", 2),
    Fault("sigterm", "SIGTERM (a CI time-out) during a test", "HOLD", "interrupted", 2),
    Fault("sigterm-group", "SIGTERM to the whole process group (xdist workers too)", "HOLD", "interrupted", 2),
    Fault("sigkill-run", "SIGKILL of the whole run (OOM killer, CI time-out)", "HOLD", "incomplete", -signal.SIGKILL),
    Fault("sigkill-worker", "SIGKILL of one xdist worker", "REJECT", "test-crashed", 1, serial=False),
    Fault("hook-error", "an exception in a plugin's hook (internal error)", "HOLD", "internal-error", 3),
    Fault("collection-error", "a test module that does not import", "HOLD", "collection-error", 2, xdist_exit=1),
    Fault("empty-selection", "`-k` that selects nothing", "HOLD", "tests-deselected", 5),
    Fault("k-deselection", '`-k "not broken"` dropping a failing test', "HOLD", "tests-deselected", 0),
    Fault("target-down", "the target is down", "REJECT", "target-unreachable", 1),
    Fault("release-mismatch", "another release is deployed than the one under test", "REJECT", "release-mismatch", 1),
    Fault("expired-quarantine", "a failing test whose quarantine expired", "REJECT", "test-failed", 1),
    Fault("baseline-regression", "a metric regressed against the baseline", "REJECT", "baseline-failed", 6),
    Fault("corrupt-quarantine", "a corrupted quarantine file", None, None, 4),
    Fault("unwritable-verdict", "the verdict's directory cannot be written", None, None, 4),
    Fault("data-contract", "the staged data breaks its contract (`staging_data.expect`)", "REJECT", "test-failed", 1),
    Fault("database-down", "a staged database cannot be reached", "REJECT", "test-failed", 1),
    Fault("bad-database-url", "a malformed database URL in the targets file", None, None, 4),
    Fault(
        "shard-crashed",
        "shards: one shard's job crashed (no partial verdict to merge)",
        "HOLD",
        "shard-missing",
        6,
        shards=True,
    ),
    Fault(
        "shard-twice", "shards: one shard ran twice (both partials merged)", "HOLD", "shard-duplicated", 6, shards=True
    ),
    Fault(
        "shard-other-commit",
        "shards: one shard ran another commit (its collection differs)",
        "HOLD",
        "shard-mismatch",
        6,
        shards=True,
    ),
    Fault("shard-unknown-key", "shards: one partial is signed by an unknown key", None, None, 1, shards=True),
    Fault(
        "shard-interrupted",
        "shards: one shard was interrupted (Ctrl-C: its partial is an interrupted HOLD)",
        "HOLD",
        "interrupted",
        6,
        shards=True,
    ),
)

#: A data test over the target's staged database (the data faults).
DATA = """
import pytest

@pytest.mark.contract
def test_staged(staging_data):
    staging_data.expect("orders", "orders", schema={"properties": {"total": {"type": "number"}}})
"""

#: The faults themselves, injected from inside the inner run where they happen (FAULT=<id>).
CONFTEST = """
import os, signal, time
from pathlib import Path

import pytest

FAULT = os.environ.get("FAULT", "")
WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def once(name):
    # One signal per run: a replacement xdist worker must not send it again.
    try:
        os.close(os.open(f"fault-{name}", os.O_CREAT | os.O_EXCL))
        return True
    except FileExistsError:
        return False


def ctrl_c():
    # A terminal's Ctrl-C reaches every process of the foreground group: controller and workers.
    os.killpg(os.getpgrp(), signal.SIGINT)


def pytest_sessionstart(session):
    if FAULT == "sigint-start" and (WORKER or not os.environ.get("XDIST")) and once("start"):
        ctrl_c()


def pytest_collection_modifyitems(items):
    if FAULT == "hook-error":
        raise RuntimeError("a plugin's hook is broken")


@pytest.fixture(autouse=True)
def fault_in_test(request, staging_metrics):
    if FAULT == "baseline-regression":
        for i in range(60):
            staging_metrics.record("checkout", float(os.environ["CHECKOUT_MS"]) + i % 7, "ms")
    if request.node.name == "test_health":
        if FAULT == "sigint-test":
            ctrl_c()
        elif FAULT == "sigterm":
            os.kill(os.getpgrp(), signal.SIGTERM)  # the session leader: the run's main process
        elif FAULT == "sigterm-group":
            os.killpg(os.getpgrp(), signal.SIGTERM)
        elif FAULT == "sigkill-worker":
            os.kill(os.getpid(), signal.SIGKILL)
        elif FAULT == "sigkill-run":
            Path("test-started").touch()
            deadline = time.monotonic() + 120  # the harness kills the run long before this
            while time.monotonic() < deadline and not Path("never").exists():
                time.sleep(0.05)
    yield


@pytest.fixture(scope="session", autouse=True)
def fault_at_teardown():
    yield
    if FAULT == "sigint-teardown" and once("teardown"):
        ctrl_c()
"""


def statement_at(path: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))


def verify(path: Path, pub: Path, *expect: str) -> int:
    command = [sys.executable, "-m", "pytest_staging", "verify", str(path), "--key", str(pub)]
    for decision in expect:
        command += ["--expect", decision]
    return subprocess.run(command, capture_output=True).returncode


def decided(path: Path, fault: Fault, pub: Path, output: str) -> dict:
    """The predicate of the verdict a fault left: the fault's decision and reason code, signed,
    and refused by release tooling's check (PROMOTE is expected)."""
    predicate = statement_at(path)["predicate"]
    assert predicate["decision"] == fault.decision, (predicate["reasons"], output)
    assert fault.code in predicate["reasonCodes"], (predicate["reasons"], output)
    assert verify(path, pub, fault.decision) == 0
    assert verify(path, pub) == 1
    return predicate


class Run(NamedTuple):
    returncode: int
    output: str


def gate(
    directory: Path,
    target: str,
    key: Path,
    *args: str,
    env: dict | None = None,
    kill_when: Callable[[], bool] | None = None,
) -> Run:
    """An inner gate run in its own session; with ``kill_when``, SIGKILLed once it holds."""
    process = popen_inner_pytest(
        directory, f"--staging-target={target}", f"--staging-signing-key={key}", *args, env=env
    )
    try:
        if kill_when is not None:
            deadline = time.monotonic() + RUN_TIMEOUT
            while not kill_when():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the run ended (or hung) before the moment to kill it")
                time.sleep(0.05)
            os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return Run(process.returncode, output)


@pytest.fixture(scope="module")
def earlier_promote(tmp_path_factory, httpbin_url, keys) -> bytes:
    """An earlier run's signed PROMOTE: what a reused CI workspace would still hold."""
    directory = tmp_path_factory.mktemp("earlier")
    (directory / "test_gate.py").write_text(SUITE)
    run = gate(directory, httpbin_url, keys[0])
    assert run.returncode == 0, run.output
    assert statement_at(directory / VERDICT)["predicate"]["decision"] == "PROMOTE"
    return (directory / VERDICT).read_bytes()


def prepare(fault: Fault, directory: Path, httpbin_url: str) -> tuple[list[str], dict[str, str], str, Path]:
    """Files, arguments and environment that bring the fault about; the target; the verdict path."""
    args: list[str] = []
    path = directory / VERDICT
    env = {"FAULT": fault.id}
    target = httpbin_url
    if fault.id in ("k-deselection", "expired-quarantine"):
        (directory / "test_broken.py").write_text(BROKEN)
    if fault.id == "k-deselection":
        args += ["-k", "not broken"]
    elif fault.id == "empty-selection":
        args += ["-k", "no_such_test"]
    elif fault.id == "collection-error":
        (directory / "test_syntax.py").write_text("def test_unfinished(:\n    pass\n")
    elif fault.id == "target-down":
        target = f"http://127.0.0.1:{closed_port()}"
    elif fault.id == "release-mismatch":
        (directory / "staging-targets.toml").write_text(
            f'[targets.qa]\nurl = "{httpbin_url}"\nversion_url = "/response-headers?v=2"\nversion_pointer = "/v"\n'
        )
        target = "qa"
        args.append("--staging-release=1")
    elif fault.id == "expired-quarantine":
        (directory / "staging-quarantine.toml").write_text(
            '[[quarantine]]\ntest = "test_broken.py::test_broken"\nreason = "flaps"\nowner = "payments"\nuntil = "2020-01-01"\n'
        )
    elif fault.id == "baseline-regression":
        from pytest_staging.baseline.store import build

        (directory / "baseline.json").write_bytes(
            build(
                series={"checkout": [10.0 + i % 7 for i in range(60)]},
                units={"checkout": "ms"},
                target={"name": "x", "url": httpbin_url, "environment": "unspecified"},
                release=None,
                decision="PROMOTE",
                profiles=[],
                tools={},
                created="2026-01-01T00:00:00.000000Z",
            )
        )
        args.append("--staging-baseline=baseline.json")
        env["CHECKOUT_MS"] = "100"  # ten times the baseline
    elif fault.id in ("data-contract", "database-down", "bad-database-url"):
        import sqlite3

        with sqlite3.connect(directory / "staged.db") as db:
            db.execute("CREATE TABLE orders (order_id INTEGER PRIMARY KEY, total)")
            db.executemany("INSERT INTO orders VALUES (?, ?)", [(1, 9.5), (2, "nine")])
        database = {"data-contract": "sqlite:///staged.db", "database-down": "sqlite:///gone.db"}.get(fault.id, "nope")
        (directory / "staging-targets.toml").write_text(
            f'[targets.qa]\nurl = "{httpbin_url}"\n[targets.qa.databases]\norders = "{database}"\n'
        )
        (directory / "test_data.py").write_text(DATA)
        target = "qa"
    elif fault.id == "corrupt-quarantine":
        (directory / "staging-quarantine.toml").write_text("[[quarantine]\ntest = \n")
    elif fault.id == "unwritable-verdict":
        (directory / "taken").write_text("a file where the verdict's directory should be")
        args.append("--staging-verdict=taken/staging-verdict.intoto.json")
        path = directory / "taken" / VERDICT
    return args, env, target, path


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CASES = [
    pytest.param(fault, mode, id=f"{fault.id}-{mode}")
    for fault in FAULTS
    for mode in ("serial", "xdist")
    if (fault.serial if mode == "serial" else fault.xdist) and not fault.shards
]
SHARD_CASES = [
    pytest.param(fault, mode, id=f"{fault.id}-{mode}")
    for fault in FAULTS
    for mode in ("serial", "xdist")
    if fault.shards and (fault.serial if mode == "serial" else fault.xdist)
]


@pytest.mark.parametrize("fault, mode", CASES)
def test_no_fault_leaves_a_promote(fault, mode, tmp_path, httpbin_url, keys, earlier_promote):
    (tmp_path / "test_gate.py").write_text(SUITE)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / VERDICT).write_bytes(earlier_promote)
    args, env, target, path = prepare(fault, tmp_path, httpbin_url)
    if mode == "xdist":
        args += ["-n", "2"]
        env["XDIST"] = "1"
    kill_when = (lambda: (tmp_path / "test-started").exists()) if fault.id == "sigkill-run" else None
    run = gate(tmp_path, target, keys[0], *args, env=env, kill_when=kill_when)

    assert run.returncode == fault.exit_status(mode), run.output
    # pytest itself reports a broken hook as INTERNALERROR with its traceback: that is the report.
    shown = "\n".join(line for line in run.output.splitlines() if not line.startswith("INTERNALERROR>"))
    assert "Traceback" not in shown, run.output
    if fault.decision is None:
        assert not path.exists(), "an earlier verdict outlived a usage error"
        return
    predicate = decided(path, fault, keys[1], run.output)
    if fault.id in ("sigint-test", "sigterm", "sigterm-group"):
        # Interrupted in the first tier: the later tiers' tests are known, and not run.
        assert predicate["policy"]["requiredTiers"] == ["smoke", "contract", "load"]
        outcomes = {test["nodeid"]: test["outcome"] for test in predicate["tests"]}
        assert outcomes["test_gate.py::test_capacity"] == "notrun"


# -- shards: the faults of a suite split across machines ---------------------------------------

#: With SUITE, a second file: three tests of each tier, so each of three shards runs one of each.
MORE = """
import pytest

def test_home(staging_http):
    assert staging_http.get("/get").ok

def test_status(staging_http):
    assert staging_http.get("/status/200").ok

@pytest.mark.contract
def test_headers(staging_http):
    assert staging_http.get("/headers").json()["headers"]

@pytest.mark.contract
def test_uuid(staging_http):
    assert staging_http.get("/uuid").json()["uuid"]

@pytest.mark.load
def test_burst(staging_http):
    assert staging_http.get("/get").ok

@pytest.mark.load
def test_ip(staging_http):
    assert staging_http.get("/ip").ok
"""

#: Each shard run: (shard, key, FAULT, a test file the other commit adds, expected exit status).
SHARD_RUNS = {
    "1": ("1/3", "keys", "", None, 0),
    "2": ("2/3", "keys", "", None, 0),
    "3": ("3/3", "keys", "", None, 0),
    "2-again": ("2/3", "keys", "", None, 0),
    "3-other-commit": ("3/3", "keys", "", "def test_new(staging_http):\n    assert staging_http.get('/get').ok\n", 0),
    "3-unknown-key": ("3/3", "other_keys", "", None, 0),
    "1-interrupted": ("1/3", "keys", "sigint-test", None, 2),
}
#: The partials each fault merges.
MERGED = {
    "shard-crashed": ["1", "2"],
    "shard-twice": ["1", "2", "3", "2-again"],
    "shard-other-commit": ["1", "2", "3-other-commit"],
    "shard-unknown-key": ["1", "2", "3-unknown-key"],
    "shard-interrupted": ["1-interrupted", "2", "3"],
}


@pytest.fixture(scope="module")
def shard_partials(tmp_path_factory, httpbin_url, keys, other_keys) -> Callable[[str], dict[str, Path]]:
    """``shard_partials(mode)``: the partial verdict of each shard run of SHARD_RUNS, all run at
    once (as CI jobs would), each in a workspace of its own; made once per mode."""
    made: dict[str, dict[str, Path]] = {}

    def partials(mode: str) -> dict[str, Path]:
        if mode in made:
            return made[mode]
        started = {}
        for name, (shard, key, fault, added, _) in SHARD_RUNS.items():
            directory = tmp_path_factory.mktemp(f"shard-{name}-{mode}")
            (directory / "test_gate.py").write_text(SUITE)
            (directory / "test_more.py").write_text(MORE)
            (directory / "conftest.py").write_text(CONFTEST)
            (directory / "pytest.ini").write_text("[pytest]\n")
            if added:
                (directory / "test_new.py").write_text(added)
            signing = (keys if key == "keys" else other_keys)[0]
            args = [f"--staging-target={httpbin_url}", f"--staging-signing-key={signing}", f"--staging-shard={shard}"]
            args += ["-n", "2"] if mode == "xdist" else []
            env = {"FAULT": fault, **({"XDIST": "1"} if mode == "xdist" else {})}
            started[name] = (directory, popen_inner_pytest(directory, *args, env=env))
        made[mode] = {}
        for name, (directory, process) in started.items():
            try:
                output, _ = process.communicate(timeout=RUN_TIMEOUT)
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            assert process.returncode == SHARD_RUNS[name][4], (name, output)
            assert "Traceback" not in output, output
            made[mode][name] = directory / VERDICT
        return made[mode]

    return partials


@pytest.mark.parametrize("fault, mode", SHARD_CASES)
def test_no_shard_fault_merges_into_a_promote(fault, mode, tmp_path, keys, shard_partials, earlier_promote):
    out = tmp_path / VERDICT
    out.write_bytes(earlier_promote)
    partials = shard_partials(mode)
    command = [sys.executable, "-m", "pytest_staging", "merge", *(str(partials[name]) for name in MERGED[fault.id])]
    command += ["--key", str(keys[1]), "--signing-key", str(keys[0]), "--out", str(out)]
    merged = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT)

    assert merged.returncode == fault.exit, merged.stdout + merged.stderr
    assert "Traceback" not in merged.stdout + merged.stderr
    if fault.decision is None:
        assert not out.exists(), "an earlier verdict outlived a merge that failed"
        assert len(merged.stderr.splitlines()) == 1, merged.stderr
        return
    decided(out, fault, keys[1], merged.stdout)


# -- approvals: a person's sign-off of a HOLD, the input release tooling adds -----------------


class ApprovalFault(NamedTuple):
    id: str
    #: The approval, in the documentation's words.
    fault: str
    #: Exit status of `verify --approval ... --approver-key ...` (expecting PROMOTE).
    exit: int


APPROVAL_FAULTS = (
    ApprovalFault("approved", "a valid approval of that HOLD, by a given approver key", 0),
    ApprovalFault("none", "no approval at all (the HOLD alone)", 1),
    ApprovalFault("rerun", "an approval of an earlier run's HOLD (the verdict at the path was replaced)", 1),
    ApprovalFault("untrusted", "signed by a key that is not an `--approver-key`", 1),
    ApprovalFault("expired", "expired", 1),
    ApprovalFault("edited", "edited after it was signed (the reason changed)", 1),
    ApprovalFault("verdict-edited", "the verdict edited after it was approved", 1),
    ApprovalFault("reject", "a hand-made approval of a REJECT, signed by an approver", 1),
    ApprovalFault("partial", "a hand-made approval of a shard's partial HOLD, signed by an approver", 1),
    ApprovalFault("gate-key", "the gate's own key given as `--approver-key`", 2),
)


@pytest.fixture(scope="module")
def gated_holds(tmp_path_factory, httpbin_url, keys) -> Callable[[str], dict[str, bytes]]:
    """``gated_holds(mode)``: the verdicts of real gate runs in one workspace, as bytes: a HOLD
    (``-k "not broken"``), then another HOLD at the same path, a REJECT, and shard 1/2's partial
    HOLD; made once per mode."""
    made: dict[str, dict[str, bytes]] = {}

    def holds(mode: str) -> dict[str, bytes]:
        if mode not in made:
            directory = tmp_path_factory.mktemp(f"approvals-{mode}")
            (directory / "test_gate.py").write_text(SUITE)
            (directory / "test_broken.py").write_text(BROKEN)
            (directory / "pytest.ini").write_text("[pytest]\n")
            xdist = ["-n", "2"] if mode == "xdist" else []
            made[mode] = {}
            runs = {
                "earlier": ["-k", "not broken"],
                "hold": ["-k", "not broken"],
                "reject": [],
                "partial": ["-k", "not broken", "--staging-shard=1/2"],
            }
            for name, args in runs.items():
                run = gate(directory, httpbin_url, keys[0], *xdist, *args)
                made[mode][name] = (directory / VERDICT).read_bytes()
                decision = statement_at(directory / VERDICT)["predicate"]["decision"]
                assert decision == ("REJECT" if name == "reject" else "HOLD"), run.output
        return made[mode]

    return holds


def pytest_staging(*args: str | Path) -> int:
    return subprocess.run([sys.executable, "-m", "pytest_staging", *map(str, args)], capture_output=True).returncode


@pytest.mark.parametrize("mode", ["serial", "xdist"])
@pytest.mark.parametrize("fault", APPROVAL_FAULTS, ids=[fault.id for fault in APPROVAL_FAULTS])
def test_only_a_valid_approval_lets_a_hold_through(fault, mode, tmp_path, keys, other_keys, gated_holds):
    from pytest_staging.verdict.statement import payload_bytes

    verdicts = gated_holds(mode)
    verdict, approval = tmp_path / VERDICT, tmp_path / "approval.json"
    approver, approver_pub = other_keys
    verdict.write_bytes(verdicts[fault.id if fault.id in ("reject", "partial") else "hold"])

    def approve() -> None:
        status = pytest_staging(
            "approve", verdict, "--key", approver, "--by", "Alice", "--reason", "r", "--out", approval
        )
        assert status == 0

    def edited(data: bytes, change: Callable[[dict], None]) -> bytes:
        envelope = json.loads(data)
        statement = json.loads(base64.b64decode(envelope["payload"]))
        change(statement)
        return json.dumps({**envelope, "payload": base64.b64encode(payload_bytes(statement)).decode()}).encode()

    given_key = approver_pub
    if fault.id == "rerun":
        verdict.write_bytes(verdicts["earlier"])
        approve()
        verdict.write_bytes(verdicts["hold"])
    elif fault.id == "expired":
        approval.write_bytes(expired_approval(verdict, approver))
    elif fault.id in ("reject", "partial"):  # what approve refuses to make, made by hand
        hold = tmp_path / "hold.json"
        hold.write_bytes(verdicts["hold"])
        approval.write_bytes(approval_of_any(verdict, hold, approver))
    elif fault.id != "none":
        approve()
    if fault.id == "untrusted":
        assert pytest_staging("keygen", "--out", tmp_path / "bob") == 0
        given_key = tmp_path / "bob.pub"
    elif fault.id == "edited":
        approval.write_bytes(edited(approval.read_bytes(), lambda s: s["predicate"].update(reason="nothing to see")))
    elif fault.id == "verdict-edited":
        verdict.write_bytes(edited(verdict.read_bytes(), lambda s: s["predicate"].update(decision="PROMOTE")))
    elif fault.id == "gate-key":
        given_key = keys[1]

    command: list[str | Path] = ["verify", verdict, "--key", keys[1]]
    if fault.id != "none":
        command += ["--approval", approval, "--approver-key", given_key]
    assert pytest_staging(*command) == fault.exit
    if fault.exit == 0:  # the approval only ever adds PROMOTE to what a HOLD meets
        assert pytest_staging(*command, "--expect", "REJECT") == 1


def approval_faults_table() -> str:
    rows = ["| Approval | Exit status of `verify` |\n| --- | --- |\n"]
    rows += [f"| {fault.fault} | {fault.exit} |\n" for fault in APPROVAL_FAULTS]
    return "".join(rows)


def test_the_approvals_doc_shows_the_approval_faults_as_tested():
    assert approval_faults_table() in docs_text("approvals.md"), approval_faults_table()


# -- the documentation's table (docs/verdict.md) ------------------------------------------------

HEADER = "| Fault | Verdict at the path | Reason code | Exit status |\n| --- | --- | --- | --- |\n"


def guarantees_table() -> str:
    rows = []
    for fault in FAULTS:
        if fault.decision:
            verdict = f"`{fault.decision}`"
        else:
            verdict = "none: nothing merged, nothing written" if fault.shards else "none: the run stops before any test"
        code = f"`{fault.code}`" if fault.code else "—"
        status = f"killed ({signal.Signals(-fault.exit).name})" if fault.exit < 0 else str(fault.exit)
        if fault.xdist_exit is not None:
            status += f" ({fault.xdist_exit} under xdist)"
        rows.append(f"| {fault.fault} | {verdict} | {code} | {status} |\n")
    return HEADER + "".join(rows)


def test_the_docs_show_the_matrix_as_tested():
    assert guarantees_table() in docs_text("verdict.md"), (
        "run `python tests/test_fault_matrix.py` and paste the table into docs/verdict.md"
    )


SHARDS_DOC = Path(__file__).parents[1] / "docs" / "shards.md"


def shard_faults_table() -> str:
    rows = ["| Fault | Merged verdict | Reason code | Exit status of `merge` |\n| --- | --- | --- | --- |\n"]
    for fault in FAULTS:
        if fault.shards:
            verdict = f"`{fault.decision}`" if fault.decision else "none: nothing merged, nothing written"
            code = f"`{fault.code}`" if fault.code else "—"
            rows.append(f"| {fault.fault.removeprefix('shards: ')} | {verdict} | {code} | {fault.exit} |\n")
    return "".join(rows)


def test_the_shards_doc_shows_the_shard_faults_as_tested():
    assert shard_faults_table() in SHARDS_DOC.read_text(), shard_faults_table()


if __name__ == "__main__":
    sys.stdout.write(guarantees_table())
