"""Approvals: `pytest-staging approve` signs off a real HOLD verdict; `verify`, `show` and `report`
read it back. Every refusal of `approve`, every outcome of `verify --approval`, the documentation's
openssl recipe, and the GitHub Actions example's commands."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from approval_files import expired_approval, signed_approval, statement_of
from docs_text import docs_block
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inner_runs import BROKEN, SUITE, popen_inner_pytest

from pytest_staging.cli import build_parser
from pytest_staging.cli import main as cli
from pytest_staging.verdict import dsse
from pytest_staging.verdict.approval import PREDICATE_TYPE, approval_statement
from pytest_staging.verdict.statement import from_iso, iso, payload_bytes

pytestmark = pytest.mark.usefixtures("staging_env")

VERDICT = "staging-verdict.intoto.json"
#: Each real gate run: extra test file, arguments, whether it is signed, the decision it gives.
RUNS = {
    "hold": (None, ["--staging-tier=smoke"], True, "HOLD"),
    "hold-again": (None, ["--staging-tier=smoke"], True, "HOLD"),
    "promote": (None, [], True, "PROMOTE"),
    "reject": (BROKEN, [], True, "REJECT"),
    "unsigned-hold": (None, ["--staging-tier=smoke"], False, "HOLD"),
    "partial": (None, ["--staging-shard=1/2"], True, "HOLD"),
}


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory, httpbin_url, keys) -> dict[str, Path]:
    """The verdict of each of RUNS: real gate runs against httpbin, all started at once."""
    started = {}
    for name, (extra, args, signed, _) in RUNS.items():
        directory = tmp_path_factory.mktemp(name)
        (directory / "test_gate.py").write_text(SUITE)
        if extra:
            (directory / "test_broken.py").write_text(extra)
        argv = [f"--staging-target={httpbin_url}", *args]
        argv += [f"--staging-signing-key={keys[0]}"] if signed else []
        started[name] = (directory, popen_inner_pytest(directory, *argv))
    made = {}
    for name, (directory, process) in started.items():
        try:
            output, _ = process.communicate(timeout=180)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        path = directory / VERDICT
        assert statement_of(path)["predicate"]["decision"] == RUNS[name][3], output
        made[name] = path
    return made


@pytest.fixture(scope="module")
def approvers(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Approvers' key pairs from `pytest-staging keygen`: alice and bob (private, public)."""
    directory = tmp_path_factory.mktemp("approvers")
    pairs = {}
    for name in ("alice", "bob"):
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli(["keygen", "--out", str(directory / name)]) == 0
        pairs[name] = (directory / f"{name}.key", directory / f"{name}.pub")
    return pairs


def run(*argv: str) -> tuple[int, str, list[str]]:
    """The CLI in this process: (exit status, stdout, stderr lines); argparse's exits included."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue().splitlines()


def copy(path: Path, directory: Path, name: str = VERDICT) -> Path:
    target = directory / name
    target.write_bytes(path.read_bytes())
    return target


def approve(verdict: Path, key: Path, *extra: str, by: str = "Alice Example", reason: str = "checked by hand") -> Path:
    code, out, err = run("approve", str(verdict), "--key", str(key), "--by", by, "--reason", reason, *extra)
    assert code == 0, err
    return verdict.with_name(verdict.name.removesuffix(".json") + ".approval.json")


def verify(verdict: Path, approval: Path | None, approver_pub: Path | None, gate_pub: Path, *extra: str):
    argv = ["verify", str(verdict), "--key", str(gate_pub), *extra]
    argv += ["--approval", str(approval)] if approval else []
    argv += ["--approver-key", str(approver_pub)] if approver_pub else []
    return run(*argv)


# -- approve ---------------------------------------------------------------------------------


def test_an_approval_is_bound_to_the_verdict_file_and_its_subjects(verdicts, approvers, keys, tmp_path):
    verdict = copy(verdicts["hold"], tmp_path)
    before = time.time()
    code, out, err = run(
        "approve", str(verdict), "--key", str(approvers["alice"][0]), "--by", "Alice Example",
        "--reason", "contract tier run by hand (INC-1234)", "--expires", "24h",
    )  # fmt: skip
    assert (code, err) == (0, [])
    path = tmp_path / "staging-verdict.intoto.approval.json"  # the verdict's name, .approval.json for .json
    assert f"approval: {path}" in out and "Alice Example" in out

    envelope = dsse.parse(path.read_bytes())
    assert envelope.payload_type == "application/vnd.in-toto+json"
    assert dsse.verify(envelope, [dsse.load_public_key(approvers["alice"][1].read_bytes(), "alice")])
    statement = json.loads(envelope.payload)
    held = statement_of(verdict)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == PREDICATE_TYPE == "https://pytest-staging.dev/approval/v1"
    assert statement["subject"] == [
        {"name": VERDICT, "digest": {"sha256": hashlib.sha256(verdict.read_bytes()).hexdigest()}},
        *held["subject"],
    ]
    predicate = statement["predicate"]
    assert predicate["approver"] == "Alice Example"
    assert predicate["reason"] == "contract tier run by hand (INC-1234)"
    assert predicate["verdictDecision"] == "HOLD"
    assert predicate["verdictReasons"] == held["predicate"]["reasons"]
    approved = from_iso(predicate["timeApproved"])
    assert before - 1 <= approved.timestamp() <= time.time() + 1
    assert from_iso(predicate["expires"]) - approved == dt.timedelta(hours=24)


def test_without_expires_it_does_not_expire_and_out_names_the_file(verdicts, approvers, tmp_path):
    verdict = copy(verdicts["hold"], tmp_path, "verdict")  # no .json: .approval.json is appended
    assert approve(verdict, approvers["alice"][0]).name == "verdict.approval.json"
    assert statement_of(tmp_path / "verdict.approval.json")["predicate"]["expires"] is None
    elsewhere = tmp_path / "approvals" / "hold-1.json"
    approve(verdict, approvers["alice"][0], "--out", str(elsewhere))
    assert statement_of(elsewhere)["predicate"]["expires"] is None


def refusal(verdicts: dict[str, Path], directory: Path, case: str, approvers, keys) -> tuple[Path, Path]:
    """The file to approve in ``case``, and the key approve is given."""
    key = approvers["alice"][0]
    if case in ("reject", "promote", "unsigned-hold", "partial"):
        return copy(verdicts[case], directory), key
    if case == "gate-key":
        return copy(verdicts["hold"], directory), keys[0]
    path = directory / VERDICT
    if case == "not-json":
        path.write_text("PROMOTE\n")
    elif case == "not-an-envelope":
        path.write_text('{"decision": "HOLD"}')
    elif case == "an-approval":  # an approval of a HOLD is a DSSE envelope, not a verdict
        approval = approve(copy(verdicts["hold"], directory, "other.json"), key)
        path.write_bytes(approval.read_bytes())
    elif case == "a-hold-reshaped":  # a HOLD whose payload is no longer a promotion verdict
        envelope = json.loads(verdicts["hold"].read_bytes())
        statement = statement_of(verdicts["hold"])
        del statement["predicate"]["tiers"]
        envelope["payload"] = base64.b64encode(payload_bytes(statement)).decode()
        path.write_text(json.dumps(envelope))
    return path, key


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("reject", "is a REJECT"),
        ("promote", "is a PROMOTE: only a HOLD needs an approval"),
        ("unsigned-hold", "is unsigned"),
        ("partial", "is shard 1/2's partial verdict, a share of the tests; merge the shards' partials"),
        ("gate-key", "signed with this very key"),
        ("not-json", "not a promotion verdict (the file is not JSON)"),
        ("not-an-envelope", "not a promotion verdict (not a DSSE envelope"),
        ("an-approval", "not a promotion verdict (the payload is not a promotion verdict: predicateType"),
        ("a-hold-reshaped", "not a promotion verdict (the payload is not a promotion verdict"),
    ],
)
def test_approve_refuses_all_but_a_signed_hold_and_writes_nothing(case, words, verdicts, approvers, keys, tmp_path):
    path, key = refusal(verdicts, tmp_path, case, approvers, keys)
    files = sorted(tmp_path.rglob("*"))
    code, out, err = run("approve", str(path), "--key", str(key), "--by", "Alice", "--reason", "why not")
    assert code == 1, (out, err)
    assert len(err) == 1 and err[0].startswith(f"FAILED: {path}: ") and words in err[0], err
    assert out == ""
    assert sorted(tmp_path.rglob("*")) == files  # nothing written


def test_approve_usage_mistakes_exit_2_in_one_line_without_the_key(verdicts, approvers, tmp_path, monkeypatch):
    verdict = copy(verdicts["hold"], tmp_path)
    secret_pem = approvers["alice"][0].read_text()
    (tmp_path / "mangled.key").write_text(secret_pem.replace("A", "B", 3)[:-20])
    cases = {
        "missing verdict": (
            ["approve", str(tmp_path / "nope.json"), "--key", str(approvers["alice"][0])],
            "cannot read",
        ),
        "missing key": (["approve", str(verdict), "--key", str(tmp_path / "nope.key")], "cannot read"),
        "mangled key": (["approve", str(verdict), "--key", str(tmp_path / "mangled.key")], "not a PEM private key"),
        "public key": (["approve", str(verdict), "--key", str(approvers["alice"][1])], "not a PEM private key"),
        "no key": (["approve", str(verdict)], "no approver's key"),
        "out is the verdict": (
            ["approve", str(verdict), "--key", str(approvers["alice"][0]), "--out", str(verdict)],
            "is the verdict itself",
        ),
    }
    for name, (argv, words) in cases.items():
        code, out, err = run(*argv, "--by", "Alice", "--reason", "why")
        assert code == 2, name
        assert len(err) == 1 and words in err[0], (name, err)
        assert "PRIVATE KEY" not in out + err[0] and secret_pem[40:80] not in err[0]
    for flag, value, words in [
        ("--by", "  ", "is blank"),
        ("--reason", "", "is blank"),
        ("--reason", "line one\nline two", "one line of text"),
        ("--by", "Alice\x1b[31m", "control character"),
        ("--expires", "0s", "longer than zero"),
        ("--expires", "tomorrow", "not a duration"),
        ("--expires", "367d", "longer than 366d, the longest an approval lasts"),
        ("--expires", "9" * 400 + "d", "longer than any date can say"),
    ]:
        given = {"--by": "Alice", "--reason": "why", flag: value}
        argv = ["approve", str(verdict), "--key", str(approvers["alice"][0])]
        code, _, err = run(*argv, *(word for pair in given.items() for word in pair))
        assert code == 2 and words in err[-1], (flag, value, err)
    assert not (tmp_path / "staging-verdict.intoto.approval.json").exists()


def test_approve_takes_keys_from_openssl_and_from_the_environment(verdicts, keys, tmp_path, monkeypatch):
    verdict = copy(verdicts["hold"], tmp_path)
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", tmp_path / "ops.key"], check=True)
    subprocess.run(
        ["openssl", "pkey", "-in", tmp_path / "ops.key", "-pubout", "-out", tmp_path / "ops.pub"], check=True
    )
    approval = approve(verdict, tmp_path / "ops.key")
    assert verify(verdict, approval, tmp_path / "ops.pub", keys[1])[0] == 0

    approval.unlink()
    monkeypatch.setenv("STAGING_APPROVER_KEY", (tmp_path / "ops.key").read_text())
    code, out, err = run("approve", str(verdict), "--by", "Ops", "--reason", "from the environment")
    assert code == 0, err
    assert "PRIVATE KEY" not in out
    assert verify(verdict, approval, tmp_path / "ops.pub", keys[1])[0] == 0


# -- verify --approval -----------------------------------------------------------------------


def test_a_valid_approval_makes_the_hold_meet_an_expected_promote(verdicts, approvers, keys, tmp_path):
    verdict = copy(verdicts["hold"], tmp_path)
    assert verify(verdict, None, None, keys[1])[0] == 1  # the HOLD alone: refused
    approval = approve(verdict, approvers["alice"][0], "--expires", "1h", reason="load run by hand (INC-7)")

    code, out, err = verify(verdict, approval, approvers["alice"][1], keys[1])
    assert (code, err) == (0, [])
    assert out.startswith("OK: HOLD for ") and out.count("\n") == 1
    assert "approved by Alice Example at " in out and ": load run by hand (INC-7); approval signed by " in out
    # Several approver keys: any one will do. --expect HOLD holds too; other expectations still apply.
    assert run("verify", str(verdict), "--key", str(keys[1]), "--approval", str(approval),
               "--approver-key", str(approvers["bob"][1]), "--approver-key", str(approvers["alice"][1]))[0] == 0  # fmt: skip
    assert verify(verdict, approval, approvers["alice"][1], keys[1], "--expect", "HOLD")[0] == 0
    code, _, err = verify(verdict, approval, approvers["alice"][1], keys[1], "--require-tier", "contract")
    assert code == 1 and err == ["FAILED: tier contract is required and deselected, expected required and passed"]
    code, _, err = verify(verdict, approval, approvers["alice"][1], keys[1], "--expect", "REJECT")
    assert code == 1 and err[0].startswith("FAILED: decision is HOLD, expected REJECT")


def test_format_json_holds_both_statements_exactly_as_signed(verdicts, approvers, keys, tmp_path):
    verdict = copy(verdicts["hold"], tmp_path)
    approval = approve(verdict, approvers["alice"][0])
    command = [sys.executable, "-m", "pytest_staging", "verify", str(verdict), "--key", str(keys[1])]
    command += ["--approval", str(approval), "--approver-key", str(approvers["alice"][1]), "--format", "json"]
    done = subprocess.run(command, capture_output=True)
    assert (done.returncode, done.stderr) == (0, b"")
    approval_payload = dsse.parse(approval.read_bytes()).payload
    verdict_payload = dsse.parse(verdict.read_bytes()).payload
    assert done.stdout == b'{"approval":' + approval_payload + b',"verdict":' + verdict_payload + b"}\n"
    document = json.loads(done.stdout)
    assert document["approval"]["predicate"]["approver"] == "Alice Example"
    assert document["verdict"] == statement_of(verdict)
    refused = subprocess.run(
        [*command[:-4], "--approver-key", str(approvers["bob"][1]), "--format", "json"], capture_output=True
    )
    assert (refused.returncode, refused.stdout) == (1, b"")


def approval_faults(verdicts, approvers, keys, directory: Path) -> dict[str, tuple[Path, Path, Path, Path]]:
    """name -> (verdict, approval, approver key given, gate key given) for each way an approval fails."""
    alice, bob = approvers["alice"], approvers["bob"]
    verdict = copy(verdicts["hold"], directory)
    good = approve(verdict, alice[0])
    faults = {}

    def place(name: str, data: bytes) -> Path:
        path = directory / f"{name}.approval.json"
        path.write_bytes(data)
        return path

    other_dir = directory / "again"
    other_dir.mkdir()
    other = approve(copy(verdicts["hold-again"], other_dir), alice[0])
    faults["another verdict"] = (verdict, other, alice[1], keys[1])
    faults["untrusted key"] = (verdict, good, bob[1], keys[1])
    statement = statement_of(good)
    time_verified = from_iso(statement_of(verdict)["predicate"]["timeVerified"]).timestamp()
    faults["expired"] = (verdict, place("expired", expired_approval(verdict, alice[0])), alice[1], keys[1])
    future = {**statement, "predicate": {**statement["predicate"], "timeApproved": iso(time.time() + 3600)}}
    faults["dated in the future"] = (verdict, place("future", signed_approval(future, alice[0])), alice[1], keys[1])
    early = {**statement, "predicate": {**statement["predicate"], "timeApproved": iso(time_verified - 3600)}}
    faults["dated before the verdict"] = (verdict, place("early", signed_approval(early, alice[0])), alice[1], keys[1])
    envelope = json.loads(good.read_bytes())
    edited = {**statement, "predicate": {**statement["predicate"], "reason": "nothing to see here"}}
    envelope["payload"] = base64.b64encode(payload_bytes(edited)).decode()
    faults["edited"] = (verdict, place("edited", json.dumps(envelope).encode()), alice[1], keys[1])
    faults["unsigned"] = (verdict, place("unsigned", json.dumps({**json.loads(good.read_bytes()), "signatures": []}).encode()), alice[1], keys[1])  # fmt: skip
    other_subjects = {**statement, "subject": [statement["subject"][0], {"name": "x", "digest": {"sha256": "0" * 64}}]}
    faults["other subjects"] = (
        verdict,
        place("subjects", signed_approval(other_subjects, alice[0])),
        alice[1],
        keys[1],
    )
    reject = copy(verdicts["reject"], directory, "reject.json")
    of_reject = {**statement, "subject": [{"name": "reject.json", "digest": {"sha256": hashlib.sha256(reject.read_bytes()).hexdigest()}}, *statement_of(reject)["subject"]]}  # fmt: skip
    faults["a REJECT"] = (reject, place("reject", signed_approval(of_reject, alice[0])), alice[1], keys[1])
    promote = copy(verdicts["promote"], directory, "promote.json")
    of_promote = {**statement, "subject": [{"name": "promote.json", "digest": {"sha256": hashlib.sha256(promote.read_bytes()).hexdigest()}}, *statement_of(promote)["subject"]]}  # fmt: skip
    faults["a PROMOTE"] = (promote, place("promote", signed_approval(of_promote, alice[0])), alice[1], keys[1])
    partial = copy(verdicts["partial"], directory, "partial.json")
    of_partial = {**statement, "subject": [{"name": "partial.json", "digest": {"sha256": hashlib.sha256(partial.read_bytes()).hexdigest()}}, *statement_of(partial)["subject"]]}  # fmt: skip
    faults["a shard's partial"] = (partial, place("partial", signed_approval(of_partial, alice[0])), alice[1], keys[1])
    not_approval = {**statement, "predicateType": "https://pytest-staging.dev/promotion-verdict/v1"}
    faults["not an approval"] = (verdict, place("notone", signed_approval(not_approval, alice[0])), alice[1], keys[1])
    faults["the verdict itself"] = (verdict, verdict, alice[1], keys[1])
    return faults


APPROVAL_REFUSALS = {
    "another verdict": "NOT AN APPROVAL OF THIS VERDICT: it approves another verdict (sha256:",
    "untrusted key": "NOT VERIFIED: no signature by key ",
    "expired": "EXPIRED at ",
    "dated in the future": "NOT VALID: it is dated in the future",
    "dated before the verdict": "NOT VALID: it is dated before the verdict it approves",
    "edited": "NOT VERIFIED: no signature by key ",
    "unsigned": "NOT VERIFIED: the verdict is unsigned",
    "other subjects": "its subjects after the verdict file are not the verdict's subjects",
    "a REJECT": "the verdict is a REJECT: an approval never turns a REJECT into anything else",
    "a PROMOTE": "it approves a HOLD, and the verdict is a PROMOTE",
    "a shard's partial": "the verdict is shard 1/2's partial verdict, a share of the tests, which only a merge completes",
    "not an approval": "not a pytest-staging approval: predicateType",
    "the verdict itself": "no signature by key ",
}


def test_every_approval_that_does_not_hold_is_refused_with_its_reason(verdicts, approvers, keys, tmp_path):
    faults = approval_faults(verdicts, approvers, keys, tmp_path)
    assert set(faults) == set(APPROVAL_REFUSALS)
    for name, (verdict, approval, approver, gate) in faults.items():
        for expect in (["--expect", "PROMOTE"], ["--expect", "HOLD"], ["--expect", "any"], ["--expect", "REJECT"]):
            code, out, err = verify(verdict, approval, approver, gate, *expect)
            assert (code, out) == (1, ""), (name, expect, out, err)
            assert len(err) == 1 and err[0].startswith(f"FAILED: approval {approval}: "), (name, err)
            assert APPROVAL_REFUSALS[name] in err[0], (name, err)


def test_approver_keys_are_not_the_gates_and_go_with_an_approval(verdicts, approvers, keys, tmp_path):
    verdict = copy(verdicts["hold"], tmp_path)
    approval = approve(verdict, approvers["alice"][0])
    code, _, err = verify(verdict, approval, keys[1], keys[1])
    assert code == 2 and len(err) == 1 and "is the gate's key (a --key, or it signed this verdict)" in err[0]
    code, _, err = verify(verdict, approval, None, keys[1])
    assert code == 2 and len(err) == 1 and "--approval FILE and --approver-key PUB go together" in err[0]
    code, _, err = verify(verdict, None, approvers["alice"][1], keys[1])
    assert code == 2 and len(err) == 1 and "--approval FILE and --approver-key PUB go together" in err[0]
    code, _, err = verify(verdict, tmp_path / "missing.json", approvers["alice"][1], keys[1])
    assert code == 2 and "cannot read the approval" in err[0]


def test_show_and_report_refuse_the_gates_key_as_an_approvers_without_its_key(verdicts, approvers, keys, tmp_path):
    """Without --key, the gate's key given as --approver-key is found by the verdict it signed."""
    verdict = copy(verdicts["hold"], tmp_path)
    statement = approval_statement(verdict.read_bytes(), VERDICT, approver="Gate", reason="self", now=time.time())
    approval = tmp_path / "self.json"
    approval.write_bytes(signed_approval(statement, keys[0]))
    for command in (["show", str(verdict)], ["report", str(verdict), "--html", str(tmp_path / "r.html")]):
        code, out, err = run(*command, "--approval", str(approval), "--approver-key", str(keys[1]))
        assert code == 2 and len(err) == 1 and "it signed this verdict" in err[0], (command, out, err)
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("command", ["verify", "show", "report"])
def test_the_verdict_file_is_read_once(command, verdicts, approvers, keys, tmp_path, monkeypatch):
    """The approval is checked against the very bytes whose signature was checked: a file
    swapped between two reads cannot pair one verdict's signature with another's approval."""
    import pytest_staging.cli as cli_module

    verdict = copy(verdicts["hold"], tmp_path)
    approval = approve(verdict, approvers["alice"][0])
    reads = []
    real_read = cli_module._read
    monkeypatch.setattr(cli_module, "_read", lambda path, what: reads.append(path) or real_read(path, what))
    argv = [command, str(verdict), "--key", str(keys[1]), "--approval", str(approval)]
    argv += ["--approver-key", str(approvers["alice"][1])]
    argv += ["--html", str(tmp_path / "r.html")] if command == "report" else []
    assert run(*argv)[0] == 0
    assert reads.count(str(verdict)) == 1, reads


def test_approvals_with_impossible_dates_or_text_are_refused_in_one_line(verdicts, approvers, keys, tmp_path):
    verdict = copy(verdicts["hold"], tmp_path)
    good = statement_of(approve(verdict, approvers["alice"][0]))
    cases = {
        # The schema's format: date-time refuses it (rfc3339-validator, a dependency, checks the day).
        "feb-31": ("timeApproved", "2026-02-31T10:00:00Z", "not a pytest-staging approval: predicate/timeApproved"),
        "newline": ("timeApproved", good["predicate"]["timeApproved"] + "\n", "NOT VALID: its timeApproved"),
        "7-digits": ("expires", "2099-01-01T00:00:00.1234567Z", "not a pytest-staging approval: predicate/expires"),
        "month-13": ("expires", "2099-13-01T00:00:00Z", "not a pytest-staging approval: predicate/expires"),
        "approver-newline": ("approver", "Alice\n", "predicate/approver holds a line break or control character"),
        "reason-escape": ("reason", "ok\x1b[2J", "not a pytest-staging approval: predicate/reason"),
    }  # fmt: skip
    for name, (field, value, words) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(
            signed_approval({**good, "predicate": {**good["predicate"], field: value}}, approvers["alice"][0])
        )
        for command in (["verify", str(verdict), "--key", str(keys[1])], ["show", str(verdict)]):
            code, out, err = run(*command, "--approval", str(path), "--approver-key", str(approvers["alice"][1]))
            shown = out + "\n".join(err)
            assert code == 1 and "Traceback" not in shown and words in shown, (name, command, out, err)
            assert "\x1b" not in shown


def test_approve_refuses_the_placeholder_of_an_unfinished_run(verdicts, approvers, keys, tmp_path):
    """The ``incomplete`` HOLD a run leaves until it finishes proves no test: rerun, not approve."""
    statement = statement_of(verdicts["hold"])
    statement["predicate"]["reasons"] = [{"code": "incomplete", "text": "the gate run did not finish"}]
    statement["predicate"]["reasonCodes"] = ["incomplete"]
    verdict = tmp_path / VERDICT
    verdict.write_bytes(signed_approval(statement, keys[0]))  # the gate's key signs it, as a run would
    code, out, err = run("approve", str(verdict), "--key", str(approvers["alice"][0]), "--by", "A", "--reason", "r")
    assert code == 1 and "the placeholder of a run that did not finish" in err[0] and out == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == [VERDICT]


def test_the_verdict_is_checked_before_its_approval(verdicts, approvers, keys, other_keys, tmp_path):
    verdict = copy(verdicts["hold"], tmp_path)
    approval = approve(verdict, approvers["alice"][0])
    code, _, err = verify(verdict, approval, approvers["alice"][1], other_keys[1])
    assert code == 1 and err[0].startswith("FAILED: no signature by key ")
    envelope = json.loads(verdict.read_bytes())
    statement = statement_of(verdict)
    statement["predicate"]["decision"] = "PROMOTE"
    envelope["payload"] = base64.b64encode(payload_bytes(statement)).decode()
    verdict.write_text(json.dumps(envelope))
    assert verify(verdict, approval, approvers["alice"][1], keys[1])[0] == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_byte_changed_in_the_signed_parts_of_an_approval_verifies(data, verdicts, approvers, keys, tmp_path):
    """Flip any one byte of the approval file: verify accepts it only when the signed payload is
    the same (a changed keyid, which is a hint, is the one such part)."""
    directory = tmp_path / "tamper"
    if not directory.exists():
        directory.mkdir()
        approve(copy(verdicts["hold"], directory), approvers["alice"][0])
    verdict, approval = directory / VERDICT, directory / "staging-verdict.intoto.approval.json"
    original = approval.read_bytes()
    index = data.draw(st.integers(0, len(original) - 2))  # the last byte is the final newline
    value = data.draw(st.integers(0, 255).filter(lambda v: v != original[index]))
    tampered = directory / "tampered.json"
    tampered.write_bytes(original[:index] + bytes([value]) + original[index + 1 :])
    code, _, _ = verify(verdict, tampered, approvers["alice"][1], keys[1])
    if code == 0:
        assert dsse.parse(tampered.read_bytes()).payload == dsse.parse(original).payload
        assert dsse.verify(
            dsse.parse(tampered.read_bytes()), [dsse.load_public_key(approvers["alice"][1].read_bytes(), "a")]
        )


# -- show and report -------------------------------------------------------------------------


def test_show_names_who_approved_when_why_and_until_when(verdicts, approvers, keys, tmp_path):
    verdict = copy(verdicts["hold"], tmp_path)
    approval = approve(verdict, approvers["alice"][0], "--expires", "2h", reason="the *load* run <by hand>")
    predicate = statement_of(approval)["predicate"]
    code, out, err = run("show", str(verdict), "--key", str(keys[1]), "--approval", str(approval),
                         "--approver-key", str(approvers["alice"][1]))  # fmt: skip
    assert (code, err) == (0, [])
    line = next(line for line in out.splitlines() if line.startswith("approval:"))
    assert line == (
        f"approval:  HOLD approved by Alice Example at {predicate['timeApproved']} (until {predicate['expires']}): "
        f"the *load* run <by hand> [verified with approver key {line.split('approver key ')[1][:16]}…]"
    )
    assert "decision: HOLD" in out  # the verdict still says what it says
    code, out, _ = run("show", str(verdict), "--approval", str(approval))
    assert code == 0 and "[signature not checked (pass --approver-key)]" in out
    code, out, _ = run("show", str(verdict), "--approval", str(approval), "--format", "markdown")
    assert code == 0
    assert "- **Approval** HOLD approved by Alice Example at " in out
    assert "the \\*load\\* run &lt;by hand&gt;" in out and "<by hand>" not in out

    other = approve(copy(verdicts["hold-again"], tmp_path, "other.json"), approvers["alice"][0])
    code, out, _ = run("show", str(verdict), "--approval", str(other))
    assert code == 1 and "[NOT AN APPROVAL OF THIS VERDICT: it approves another verdict" in out
    code, out, _ = run("show", str(verdict), "--approval", str(approval), "--approver-key", str(approvers["bob"][1]))
    assert code == 1 and "[NOT VERIFIED: no signature by key " in out
    code, _, err = run("show", str(verdict), "--approver-key", str(approvers["bob"][1]))
    assert code == 2 and "give the approval too" in err[0]


class Sections(HTMLParser):
    """The text of the report's Approval section."""

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.inside, self.text = 0, False, []

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.depth += 1
            if ("aria-labelledby", "approval") in attrs:
                self.inside = True
        elif self.inside and tag in ("dt", "dd", "p"):
            self.text.append("|")

    def handle_endtag(self, tag):
        if tag == "section":
            self.depth -= 1
            self.inside = False

    def handle_data(self, data):
        if self.inside:
            self.text.append(data)


def test_the_html_report_shows_the_approval(verdicts, approvers, keys, tmp_path):
    verdict = copy(verdicts["hold"], tmp_path)
    approval = approve(verdict, approvers["alice"][0], "--expires", "30m", by="Alice <script>x</script>")
    predicate = statement_of(approval)["predicate"]
    html = tmp_path / "report.html"
    code, out, err = run("report", str(verdict), "--html", str(html), "--key", str(keys[1]), "--approval",
                         str(approval), "--approver-key", str(approvers["alice"][1]))  # fmt: skip
    assert (code, err) == (0, []) and "approval: valid: verified with approver key" in out
    page = html.read_text()
    assert "<script>" not in page
    parser = Sections()
    parser.feed(page)
    text = "".join(parser.text)
    assert f"|Approved|HOLD approved by Alice <script>x</script>|When|{predicate['timeApproved']}" in text
    assert f"|Why|checked by hand|Until|{predicate['expires']}|Approval: verified with approver key" in text

    expired_dir = tmp_path / "expired"
    expired_dir.mkdir()
    verdict = copy(verdicts["hold"], expired_dir)
    (expired_dir / "a.json").write_bytes(expired_approval(verdict, approvers["bob"][0], approver="Bob"))
    code, out, _ = run("report", str(verdict), "--html", str(html), "--approval", str(expired_dir / "a.json"))
    assert code == 0 and "approval: expired: EXPIRED at " in out  # shown for the record, not a failure
    parser = Sections()
    parser.feed(html.read_text())
    assert "Approval: EXPIRED at " in "".join(parser.text)


# -- the documentation -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def approval_recipe():
    script = docs_block("approval-recipe")

    def run_recipe(directory: Path, verdict: Path, approval: Path, pub: Path) -> subprocess.CompletedProcess[str]:
        path = directory / "check-approval.sh"
        path.write_text(script)
        env = {**os.environ, "VERDICT": str(verdict), "APPROVAL": str(approval), "APPROVER_KEY": str(pub)}
        return subprocess.run(["bash", str(path)], cwd=directory, env=env, capture_output=True, text=True)

    return run_recipe


def test_openssl_checks_an_approval_as_verify_does(verdicts, approvers, keys, tmp_path, approval_recipe):
    """The documentation's jq/sha256sum/openssl recipe, as printed: it accepts the valid approval
    and refuses each fault that a standard-tools check can see."""
    work = tmp_path / "work"
    work.mkdir()
    faults = approval_faults(verdicts, approvers, keys, tmp_path)
    verdict = tmp_path / VERDICT
    good = tmp_path / "staging-verdict.intoto.approval.json"
    done = approval_recipe(work, verdict, good, approvers["alice"][1])
    assert (done.returncode, done.stdout, done.stderr) == (0, "approved by Alice Example: checked by hand\n", "")
    # What the recipe leaves out (dates against the verdict's, the other subjects) verify checks.
    for name in ("another verdict", "untrusted key", "expired", "edited", "unsigned", "a REJECT", "a PROMOTE",
                 "not an approval", "the verdict itself", "a shard's partial"):  # fmt: skip
        verdict_of, approval, approver, _ = faults[name]
        done = approval_recipe(work, verdict_of, approval, approver)
        assert done.returncode != 0 and done.stderr.startswith("FAILED: "), (name, done.stdout, done.stderr)


def test_the_github_actions_example_runs_our_commands_as_they_are(verdicts, approvers, keys, tmp_path, monkeypatch):
    """The workflow is valid YAML, its jobs hang together, and each pytest-staging command in it
    parses with today's options; its approve and verify steps, run on a real HOLD, promote it."""
    workflow = yaml.safe_load(docs_block("approval-workflow"))
    jobs = workflow["jobs"]
    assert jobs["approve-hold"]["environment"] == "staging-hold-approval"
    assert jobs["approve-hold"]["if"] == "needs.gate.outputs.decision == 'HOLD'"
    assert jobs["promote"]["needs"] == ["gate", "approve-hold"]
    for job in jobs.values():  # no expression is pasted into a script: values reach it through env
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step["run"]
    commands = []
    for job in jobs.values():
        for step in job["steps"]:
            script = step.get("run", "").replace("\\\n", " ")
            commands += [line.strip() for line in script.splitlines() if line.strip().startswith("pytest-staging ")]
    subcommands = {command.split()[1] for command in commands}
    assert subcommands == {"verify", "approve"}
    # What the runner puts in place of the expressions and the shell's array of approval options.
    values = {
        '"$IMAGE"': "registry.example.com/shop@sha256:" + "9f86d0" * 10 + "abcd",
        '"${approval[@]}"': "--approval a.json --approver-key keys/approvers.pub",
    }
    parser = build_parser()
    for command in commands:
        for expression, value in values.items():
            command = command.replace(expression, value)
        command = re.sub(r"\$\{\{[^}]*\}\}", "x", command)
        parser.parse_args(shlex.split(command.split(" |")[0])[1:])

    # The approve step, then the promote step's verify, as the workflow runs them.
    verdict = copy(verdicts["hold"], tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STAGING_APPROVER_KEY", approvers["alice"][0].read_text())
    code, _, err = run("approve", VERDICT, "--by", "octocat", "--reason", "p95 checked on the dashboard (run 42)", "--expires", "24h")  # fmt: skip
    assert code == 0, err
    subject = statement_of(verdict)["subject"][0]
    code, out, err = run("verify", VERDICT, "--key", str(keys[1]), "--approval", "staging-verdict.intoto.approval.json",
                         "--approver-key", str(approvers["alice"][1]), "--subject",
                         f"{subject['name']}@sha256:{subject['digest']['sha256']}", "--max-age", "36h")  # fmt: skip
    assert code == 0, err
    assert "approved by octocat at " in out and "p95 checked on the dashboard (run 42)" in out


def test_the_review_step_signs_only_an_approved_review_with_its_comment_as_text(approvers, verdicts, tmp_path):
    """The workflow's review and approve steps, run by bash as the runner would (``bash -e``),
    with a stand-in ``gh`` printing the review history GitHub would return."""
    steps = {step.get("id") or step.get("name"): step for step in yaml.safe_load(docs_block("approval-workflow"))["jobs"]["approve-hold"]["steps"]}  # fmt: skip
    review, sign = steps["review"], steps["Approve the HOLD"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text('#!/bin/sh\ncat "$FAKE_REVIEWS"\n')
    (bin_dir / "gh").chmod(0o755)
    path = f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}"

    def run_step(step: dict, env: dict, workdir: Path) -> subprocess.CompletedProcess[str]:
        (workdir / "step.sh").write_text(step["run"])
        return subprocess.run(["bash", "-e", "step.sh"], cwd=workdir, capture_output=True, text=True,
                              env={**os.environ, "PATH": path, **env})  # fmt: skip

    def reviewed(history: list, name: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
        workdir = tmp_path / name
        workdir.mkdir()
        (workdir / "reviews.in").write_text(json.dumps(history))
        (workdir / "out").write_text("")
        env = {"FAKE_REVIEWS": str(workdir / "reviews.in"), "GITHUB_OUTPUT": str(workdir / "out"), "RUNS": "repos/o/r/actions/runs/42", "GH_TOKEN": "t"}  # fmt: skip
        done = run_step(review, env, workdir)
        outputs = dict(line.split("=", 1) for line in (workdir / "out").read_text().splitlines())
        return done, outputs

    user = {"login": "octocat"}
    for name, history in {
        "none": [],
        "rejected": [{"state": "rejected", "user": user, "comment": "no"}],
        "no comment": [{"state": "approved", "user": user, "comment": ""}],
        "blank comment": [{"state": "approved", "user": user, "comment": "  \n "}],
    }.items():
        done, outputs = reviewed(history, name.replace(" ", "-"))
        assert done.returncode != 0 and outputs == {}, (name, done.stdout, done.stderr)

    comment = 'p95 "fine" $(touch pwned) `touch pwned2`\non the dashboard'
    done, outputs = reviewed([{"state": "approved", "user": user, "comment": comment}], "approved")
    assert done.returncode == 0, done.stderr
    assert outputs == {"by": "octocat", "reason": 'p95 "fine" $(touch pwned) `touch pwned2` on the dashboard'}

    workdir = tmp_path / "approved"
    copy(verdicts["hold"], workdir)
    env = {"STAGING_APPROVER_KEY": approvers["alice"][0].read_text(), "BY": outputs["by"], "REASON": outputs["reason"], "RUN_ID": "42"}  # fmt: skip
    done = run_step(sign, env, workdir)
    assert done.returncode == 0, done.stderr
    predicate = statement_of(workdir / "staging-verdict.intoto.approval.json")["predicate"]
    assert (predicate["approver"], predicate["reason"]) == ("octocat", outputs["reason"] + " (run 42)")
    assert not list(tmp_path.rglob("pwned*"))  # the comment stayed text
