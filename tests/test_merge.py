"""``pytest-staging merge``: the shards' partial verdicts become one signed verdict, decided over
the union of their records as the whole run would have been.

Pure first (statements built by the gate's own statement code, merged in process), then the
command against real partials from inner gate runs against httpbin. The faults of a sharded run
(a shard crashed, ran twice, ran another commit, was signed by another key, was interrupted) are
rows of tests/test_fault_matrix.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from pathlib import Path

import pytest
import test_shards
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_staging.cli import main as cli
from pytest_staging.core.decide import Policy, decide
from pytest_staging.core.ledger import OUTCOMES, Attempt, Ledger, TestRecord
from pytest_staging.core.shards import Shard, collection_digest
from pytest_staging.core.tiers import ORDER, TIERS
from pytest_staging.verdict.merge import Given, merge
from pytest_staging.verdict.statement import Subject, build_statement, payload_bytes, policy_digest

pytestmark = pytest.mark.usefixtures("staging_env")

sharded = test_shards.sharded  # the fixture: the suite run as one shard
statement_at = test_shards.statement_at

KEY = Ed25519PrivateKey.generate()
TARGET = {"name": "qa", "url": "https://qa.example", "environment": "staging", "sensitive": False}
RELEASE = {"id": "1.4.2", "deployedVersion": "1.4.2", "probe": "/version"}
SUBJECTS = (Subject("shop", "b" * 64),)
ACTIVE = {"test": "t", "reason": "r", "owner": "pay", "until": "2999-01-01", "status": "active"}


def policy_fields(policy: Policy) -> dict:
    return {
        "allowDeselection": policy.allow_deselection,
        "selection": {"args": [], "keyword": None, "markexpr": None},
        "failFast": policy.fail_fast,
        "flaky": policy.flaky,
        "maxQuarantined": policy.max_quarantined,
        "baseline": None,
    }


def statement_of(ledger: Ledger, policy: Policy, baseline: dict | None = None) -> dict:
    """The statement a gate run of ``ledger`` signs, as a verdict reader reads it back."""
    ledger.baseline = baseline
    required = policy.required(ledger)
    statement = build_statement(
        ledger=ledger,
        decision=decide(ledger, policy),
        policy={**policy_fields(policy), "requiredTiers": list(required)},
        required=required,
        target=TARGET,
        release=RELEASE,
        subjects=SUBJECTS,
        time_verified=1_700_000_000.0,
        quarantine={"expired": [], "stale": [], "maxQuarantined": policy.max_quarantined},
    )
    return json.loads(payload_bytes(statement))


def given_of(name: str, statement: dict) -> Given:
    return Given(name, hashlib.sha256(name.encode()).hexdigest(), statement)


def merged(partials: list[Given]) -> tuple[dict, object]:
    with tempfile.TemporaryDirectory() as directory:
        issued, decision = merge(partials, path=Path(directory) / "merged.json", signing_key=KEY, now=1_700_000_100.0)
        return json.loads(base64.b64decode(json.loads(issued.data)["payload"])), decision


def split(records: list[TestRecord], total: int, policy: Policy, facts: dict | None = None) -> list[Given]:
    """The partial verdicts of ``records`` (in collection order) dealt over ``total`` shards."""
    tiers = [record.tier for record in records]
    collected = {"collected": len(records), "digest": collection_digest(r.nodeid for r in records)}
    partials = []
    for number in range(1, total + 1):
        kept, elsewhere = Shard(number, total).share(tiers)
        ledger = Ledger(collected_tiers=set(tiers))
        for record in sorted((records[i] for i in kept), key=lambda r: ORDER[r.tier]):  # run in tier order
            ledger.records[record.nodeid] = record
        ledger.shard = Shard(number, total, elsewhere=elsewhere, **collected)
        for name, value in ((facts or {}).get(number) or {}).items():
            setattr(ledger.session, name, value)
        partials.append(given_of(f"shard-{number}.json", statement_of(ledger, policy)))
    return partials


records = st.lists(
    st.tuples(
        st.sampled_from(TIERS), st.sampled_from(OUTCOMES), st.sampled_from([None, None, None, ACTIVE]), st.booleans()
    ),
    max_size=14,
).map(
    lambda drawn: [
        TestRecord(
            f"t.py::test_{i}",
            tier,
            outcome=outcome,
            duration=0.25 * i,
            quarantine=quarantine,
            flaky=flaky and outcome == "passed",
        )
        for i, (tier, outcome, quarantine, flaky) in enumerate(drawn)
    ]
)
policies = st.builds(
    lambda flaky, max_quarantined, allow_deselection: Policy(
        flaky=flaky, max_quarantined=max_quarantined, allow_deselection=allow_deselection
    ),
    st.sampled_from(["allow", "hold", "reject"]),
    st.sampled_from([0.0, 0.2, 1.0]),
    st.booleans(),
)


@settings(max_examples=150)
@given(records, st.integers(1, 4), policies, st.sampled_from([None, "interrupted", "crashed_workers"]))
def test_the_merged_verdict_is_the_verdict_of_the_whole_run(collected, total, policy, fact):
    """Dealt over any number of shards and merged: the records in the whole run's order, and its
    decision and reasons, word for word."""
    whole = Ledger(collected_tiers={r.tier for r in collected})
    for record in sorted(collected, key=lambda r: ORDER[r.tier]):
        whole.records[record.nodeid] = record
    facts = {}
    if fact is not None:  # a fact of one shard's session is a fact of the whole run
        setattr(whole.session, fact, True if fact == "interrupted" else 1)
        facts = {total: {fact: True if fact == "interrupted" else 1}}
    expected = statement_of(whole, policy)["predicate"]
    statement, decision = merged(split(collected, total, policy, facts))
    predicate = statement["predicate"]
    assert [t["nodeid"] for t in predicate["tests"]] == [t["nodeid"] for t in expected["tests"]]
    assert predicate["tests"] == expected["tests"]
    assert (predicate["decision"], predicate["reasons"]) == (expected["decision"], expected["reasons"])
    assert predicate["tiers"] == expected["tiers"] and predicate["sli"] == expected["sli"]
    assert predicate["policy"] == expected["policy"]  # the same policy digest as every partial's
    assert [s["index"] for s in predicate["shards"]] == list(range(1, total + 1))
    assert "shard" not in predicate and decision.decision == expected["decision"]


@given(
    st.builds(
        TestRecord,
        st.text(min_size=1),
        st.sampled_from(TIERS),
        st.booleans(),
        st.sampled_from(OUTCOMES),
        st.floats(0, 1e4),
        skip_reason=st.none() | st.text(min_size=1),
        error=st.none() | st.text(min_size=1),
        quarantine=st.sampled_from([None, ACTIVE]),
        flaky=st.booleans(),
        correlation_id_value=st.none() | st.text(min_size=1),
        span_id=st.none() | st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
        validations=st.integers(0, 5),
        validation_failures=st.integers(0, 5),
    ),
    st.lists(st.tuples(st.sampled_from(OUTCOMES), st.floats(0, 1e4), st.none() | st.text(min_size=1)), max_size=3),
)
def test_a_record_reads_back_from_its_verdict_as_it_was_written(record, attempts):
    record.attempts = [Attempt(*attempt) for attempt in attempts]
    written = json.loads(json.dumps(record.to_dict()))
    assert TestRecord.from_dict(written).to_dict() == written


def partial_with(number: int, total: int, policy: Policy, **fields) -> Given:
    """Shard ``number``'s partial, one passing test per tier, with ``fields`` set on its ledger."""
    ledger = Ledger(collected_tiers=set(TIERS))
    for tier in TIERS:
        nodeid = f"t.py::test_{tier}_{number}"
        ledger.records[nodeid] = TestRecord(nodeid, tier, outcome="passed", duration=1.0)
    ledger.shard = Shard(number, total, total * 3, "a" * 64)
    baseline = fields.pop("baseline", None)
    for name, value in fields.items():
        setattr(ledger, name, value)
    return given_of(f"shard-{number}.json", statement_of(ledger, policy, baseline))


def baseline(result: str) -> dict:
    return {"result": result, "reason": f"shard says {result}", "mismatches": [], "metrics": []}


@pytest.mark.parametrize(
    "results, worst",
    [
        (["PASS", "MARGINAL", "NODATA"], "MARGINAL"),
        (["INCONCLUSIVE", "FAIL", "MARGINAL"], "FAIL"),
        (["NODATA", "PASS", "INCONCLUSIVE"], "INCONCLUSIVE"),
        (["PASS", None, "NODATA"], "NODATA"),
        (["PASS", "PASS", "PASS"], "PASS"),
    ],
)
def test_the_merged_baseline_is_the_worst_shards(results, worst):
    policy = Policy(required_tiers=TIERS)
    partials = [
        partial_with(number, 3, policy, baseline=baseline(result) if result else None)
        for number, result in enumerate(results, 1)
    ]
    predicate = merged(partials)[0]["predicate"]
    assert predicate["baseline"]["result"] == worst
    assert predicate["baseline"]["reason"] == f"shard says {worst}"
    assert predicate["decision"] == {"PASS": "PROMOTE", "FAIL": "REJECT"}.get(worst, "HOLD")


def test_every_shards_load_runs_are_kept_with_their_tests():
    policy = Policy(required_tiers=TIERS)
    partials = []
    for number in (1, 2):
        given = partial_with(number, 2, policy)
        run = {"test": f"t.py::test_load_{number}", "ok": True, "total": {"requests": 10 * number}}
        given.statement["predicate"]["load"] = {"runs": [run]}
        partials.append(given)
    predicate = merged(partials)[0]["predicate"]
    assert predicate["load"]["runs"] == [
        {"test": "t.py::test_load_1", "ok": True, "total": {"requests": 10}},
        {"test": "t.py::test_load_2", "ok": True, "total": {"requests": 20}},
    ]


@pytest.mark.parametrize(
    "fields, codes",
    [
        ({"preflight_kind": "release-mismatch", "preflight_error": "1.4.3 is deployed"}, ["release-mismatch"]),
        ({"preflight_kind": "unreachable", "preflight_error": "refused"}, ["target-unreachable"]),
        ({"unpinned": ["--lf ran only the last failures"]}, ["tests-deselected"]),
    ],
)
def test_what_one_shard_found_before_or_beside_its_tests_reaches_the_merge(fields, codes):
    policy = Policy(required_tiers=TIERS, allow_deselection=True)
    predicate = merged([partial_with(1, 2, policy), partial_with(2, 2, policy, **fields)])[0]["predicate"]
    assert predicate["reasonCodes"] == codes
    if "unpinned" in fields:
        assert "shard 2: --lf ran only the last failures" in predicate["reasons"][0]["text"]
    else:
        assert predicate["reasons"][0]["text"] == fields["preflight_error"]


def test_a_usage_error_in_one_shard_holds_the_merge():
    policy = Policy(required_tiers=TIERS)
    second = partial_with(2, 2, policy)
    second.statement["predicate"]["reasons"].append({"code": "usage-error", "text": "stopped"})
    assert merged([partial_with(1, 2, policy), second])[0]["predicate"]["reasonCodes"] == ["usage-error"]


def test_a_test_in_two_partials_counts_its_failure():
    policy = Policy(required_tiers=TIERS)
    first, again = partial_with(1, 2, policy), partial_with(1, 2, policy)
    again.statement["predicate"]["tests"][0]["outcome"] = "failed"
    predicate = merged([first, partial_with(2, 2, policy), again._replace(name="again.json")])[0]["predicate"]
    assert predicate["decision"] == "REJECT"
    assert predicate["reasonCodes"] == ["test-failed", "shard-duplicated"]


def test_the_schema_refuses_a_partial_that_claims_promote():
    from pytest_staging.verdict.dsse import VerificationError
    from pytest_staging.verdict.files import load_statement

    statement = partial_with(1, 2, Policy(required_tiers=TIERS)).statement
    assert load_statement(json.dumps(statement).encode())["predicate"]["decision"] == "HOLD"
    statement["predicate"].update(decision="PROMOTE", verificationResult="PASSED")
    with pytest.raises(VerificationError, match="the payload is not a promotion verdict: predicate/decision"):
        load_statement(json.dumps(statement).encode())
    del statement["predicate"]["shard"]  # the same claim without the shard is a verdict like any
    assert load_statement(json.dumps(statement).encode())["predicate"]["decision"] == "PROMOTE"


# -- the command, on real partials -----------------------------------------------------------


def run_merge(*args: str) -> int:
    return cli(["merge", *map(str, args)])


@pytest.fixture
def partials(sharded):
    """The three shards' partial verdicts of the suite, and the whole run's verdict."""
    paths = []
    for number in (1, 2, 3):
        result, _, path, _ = sharded(f"{number}/3")
        assert result.ret == 0, result.stdout.str()
        paths.append(path)
    result, _, whole, _ = sharded(None)
    assert result.ret == 0
    return paths, whole


def test_three_shards_merge_into_the_verdict_of_the_whole_run(partials, keys, tmp_path, capsys, openssl_recipe):
    paths, whole = partials
    out = tmp_path / "merged.json"
    assert run_merge(*reversed(paths), "--key", keys[1], "--signing-key", keys[0], "--out", out) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("merged 3 partial verdicts (shards 1, 2, 3):\ndecision: PROMOTE\n")
    predicate, expected = statement_at(out)["predicate"], statement_at(whole)["predicate"]
    assert predicate["decision"] == "PROMOTE" and predicate["reasonCodes"] == ["complete"]
    # The tests in the whole run's order, with its outcomes; the same tiers and policy.
    strip = ("duration", "attempts", "correlationId")
    assert [{k: v for k, v in t.items() if k not in strip} for t in predicate["tests"]] == [
        {k: v for k, v in t.items() if k not in strip} for t in expected["tests"]
    ]
    assert {tier: entry["counts"] for tier, entry in predicate["tiers"].items()} == {
        tier: entry["counts"] for tier, entry in expected["tiers"].items()
    }
    assert predicate["policy"] == expected["policy"]
    assert predicate["shards"] == [
        {
            "index": number,
            "file": str(path),
            "digest": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
            "decision": "PROMOTE",
        }
        for number, path in zip((1, 2, 3), paths, strict=True)
    ]
    policy = {k: v for k, v in predicate["policy"].items() if k != "digest"}
    policy["selection"] = {k: v for k, v in policy["selection"].items() if k != "deselected"}
    assert predicate["policy"]["digest"] == policy_digest(policy)

    # What release tooling runs on it, unchanged: verify, show, report, and the openssl recipe.
    assert cli(["verify", str(out), "--key", str(keys[1]), "--require-tier", "smoke", "--max-age", "1h"]) == 0
    capsys.readouterr()
    assert cli(["show", str(out), "--key", str(keys[1])]) == 0
    shown = capsys.readouterr().out
    assert "decision: PROMOTE\n" in shown and "  smoke     passed     required  4 passed" in shown
    html = tmp_path / "report.html"
    assert cli(["report", str(out), "--html", str(html), "--key", str(keys[1])]) == 0
    assert "PROMOTE" in html.read_text() and "verified with key" in html.read_text()
    check = openssl_recipe(tmp_path, out, keys[1])
    assert check.returncode == 0 and check.stdout.strip() == "verified: PROMOTE", check.stderr


def test_a_failure_in_one_shard_rejects_the_merge(sharded, keys, tmp_path, staging_env, capsys):
    paths = []
    for number in (1, 2, 3):
        if number == 3:
            staging_env.setenv("FAIL_TEST", "test_c2")
        result, _, path, _ = sharded(f"{number}/3")
        paths.append(path)
    assert result.ret == 1
    out = tmp_path / "merged.json"
    assert run_merge(*paths, "--key", keys[1], "--signing-key", keys[0], "--out", out) == 6
    predicate = statement_at(out)["predicate"]
    assert predicate["decision"] == "REJECT" and predicate["reasonCodes"] == ["test-failed"]
    assert predicate["reasons"][0]["text"] == "1 test failed: test_suite.py::test_c2"
    assert [s["decision"] for s in predicate["shards"]] == ["PROMOTE", "PROMOTE", "REJECT"]
    assert cli(["verify", str(out), "--key", str(keys[1])]) == 1


def test_a_partial_that_does_not_verify_merges_nothing(partials, keys, other_keys, tmp_path, capsys):
    paths, _ = partials
    out = tmp_path / "merged.json"
    assert run_merge(*paths, "--key", keys[1], "--signing-key", keys[0], "--out", out) == 0
    capsys.readouterr()
    # Signed by the gate's key, checked against another: exit 1, one line, and the earlier
    # merged verdict at --out is gone (it is not this merge's).
    assert run_merge(*paths, "--key", other_keys[1], "--signing-key", keys[0], "--out", out) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"FAILED: {paths[0]}: ") and line.endswith("; nothing merged")
    assert not out.exists()


def test_usage_mistakes_exit_2_and_write_nothing(partials, keys, tmp_path, capsys, staging_env):
    paths, _ = partials
    out = tmp_path / "merged.json"
    before = paths[0].read_bytes()
    cases = [
        ([*paths, "--key", keys[1], "--out", out], "--signing-key: no signing key"),
        ([*paths, tmp_path / "absent.json", "--key", keys[1], "--signing-key", keys[0], "--out", out], "absent.json"),
        ([*paths, "--key", keys[1], "--signing-key", keys[0], "--out", paths[0]], "--out: "),
        ([*paths, "--key", keys[0], "--signing-key", keys[0], "--out", out], "a private key, not a public one"),
        ([*paths, "--key", keys[1], "--signing-key", keys[1], "--out", out], "not a PEM private key"),
        ([*paths, "--key", keys[1], "--signing-key", keys[0], "--out", tmp_path / "taken" / "v.json"], "cannot write"),
    ]
    (tmp_path / "taken").write_text("a file where the verdict's directory should be")
    for args, fragment in cases:
        assert run_merge(*args) == 2, args
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith("pytest-staging merge: ") and fragment in line, line
        assert not out.exists()
    assert paths[0].read_bytes() == before  # --out naming a partial never touches it
    with pytest.raises(SystemExit) as raised:  # argparse: --key is required
        run_merge(*paths, "--signing-key", keys[0])
    assert raised.value.code == 2
    # The signing key may come from the environment, as for the gate.
    staging_env.setenv("STAGING_SIGNING_KEY", keys[0].read_text())
    assert run_merge(*paths, "--key", keys[1], "--out", out) == 0
