"""The decision is a pure function of the ledger and the policy: property-tested."""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_staging.core.decide import HOLD, PROMOTE, REJECT, SHARD_PARTIAL, Policy, Reason, decide
from pytest_staging.core.ledger import FAILING, OUTCOMES, RAN, Ledger, SessionFacts, TestRecord
from pytest_staging.core.shards import Shard
from pytest_staging.verdict.statement import tiers_section

TIERS = ("smoke", "contract", "load")

ACTIVE = {"test": "t", "reason": "r", "owner": "pay", "until": "2999-01-01", "status": "active"}
EXPIRED = {**ACTIVE, "until": "2001-01-01", "status": "expired"}

record = st.builds(
    lambda i, tier, outcome, quarantine, flaky: TestRecord(
        f"t.py::test_{i}", tier, outcome=outcome, quarantine=quarantine, flaky=flaky and outcome == "passed"
    ),
    st.integers(0, 10_000),
    st.sampled_from(TIERS),
    st.sampled_from(OUTCOMES),
    st.sampled_from([None, None, ACTIVE, EXPIRED]),
    st.booleans(),
)
facts = st.builds(
    SessionFacts,
    interrupted=st.booleans(),
    usage_error=st.booleans(),
    internal_error=st.booleans(),
    collection_errors=st.integers(0, 2),
    crashed_workers=st.integers(0, 1),
)


@st.composite
def ledgers(draw) -> Ledger:
    ledger = Ledger(session=draw(facts))
    for rec in draw(st.lists(record, max_size=12)):
        ledger.records[rec.nodeid] = rec
    ledger.collected_tiers = set(draw(st.lists(st.sampled_from(TIERS)))) | {r.tier for r in ledger.records.values()}
    ledger.deselected = draw(st.dictionaries(st.sampled_from(TIERS), st.integers(0, 3)))
    ledger.unpinned = draw(st.sampled_from([[], [], [], ["--lf: 2 test files not collected"]]))
    kind = draw(st.sampled_from([None, None, "release-mismatch", "unreachable", "version-probe"]))
    if kind is not None:
        ledger.preflight_kind, ledger.preflight_error = kind, f"pre-flight: {kind}"
    return ledger


policies = st.builds(
    Policy,
    required_tiers=st.none() | st.lists(st.sampled_from(TIERS), min_size=1, unique=True).map(tuple),
    target_configured=st.booleans(),
    flaky=st.sampled_from(["allow", "hold", "reject"]),
    max_quarantined=st.floats(0, 1),
    allow_deselection=st.booleans(),
)


def flaky(ledger: Ledger) -> bool:
    return any(r.flaky and not r.quarantined for r in ledger.records.values())


def has_failure(ledger: Ledger, policy: Policy) -> bool:
    return (
        ledger.preflight_kind is not None
        or any(r.blocking for r in ledger.records.values())
        or (policy.flaky == "reject" and flaky(ledger))
    )


def over_budget(ledger: Ledger, policy: Policy) -> bool:
    for records in ledger.by_tier().values():
        held = sum(1 for r in records if r.quarantined)
        if held and held / len(records) > policy.max_quarantined:
            return True
    return False


def missing_evidence(ledger: Ledger, policy: Policy) -> bool:
    facts = ledger.session
    records = list(ledger.records.values())
    by_tier = ledger.by_tier()
    return (
        (policy.flaky == "hold" and flaky(ledger))
        or over_budget(ledger, policy)
        or not policy.target_configured
        or facts.interrupted
        or facts.usage_error
        or facts.internal_error
        or facts.collection_errors > 0
        or facts.crashed_workers > 0
        or not any(r.outcome in RAN for r in records)
        or any(r.outcome in ("notrun", "running") for r in records)
        or any(not any(r.outcome in RAN for r in by_tier.get(t, [])) for t in policy.required(ledger))
        or bool(ledger.unpinned)
        or (not policy.allow_deselection and any(ledger.deselected.values()))
    )


@settings(max_examples=600)
@given(ledgers(), policies)
def test_never_promote_with_failure_or_missing_evidence(ledger, policy):
    result = decide(ledger, policy)
    if has_failure(ledger, policy):
        assert result.decision == REJECT
    elif missing_evidence(ledger, policy):
        assert result.decision == HOLD
    else:
        assert result.decision == PROMOTE
    assert result.reasons and all(reason.text for reason in result.reasons)


@given(ledgers(), policies)
def test_a_tier_failed_exactly_when_it_holds_a_blocking_record(ledger, policy):
    """One notion of blocking: the tier results in the verdict agree with the decision."""
    decision = decide(ledger, policy)
    section = tiers_section(ledger, policy.required(ledger))
    for tier in TIERS:
        blocking = any(r.blocking for r in ledger.by_tier().get(tier, []))
        assert (section[tier]["result"] == "failed") == blocking
        if section[tier]["result"] == "failed":
            assert decision.decision == REJECT


@given(ledgers(), policies)
def test_deselection_never_promotes_unless_the_policy_allows_it(ledger, policy):
    result = decide(ledger, policy)
    held = bool(ledger.unpinned) or (any(ledger.deselected.values()) and not policy.allow_deselection)
    codes = [reason.code for reason in result.reasons]
    assert ("tests-deselected" in codes) == held
    if held:
        assert result.decision != PROMOTE


@given(ledgers(), policies)
def test_an_unreachable_target_is_the_first_reason(ledger, policy):
    ledger.preflight_kind, ledger.preflight_error = (
        "unreachable",
        "staging target 't' is unreachable: connection refused",
    )
    result = decide(ledger, policy)
    assert result.decision == REJECT
    assert result.reasons[0] == Reason("target-unreachable", ledger.preflight_error)


def test_expired_quarantine_fails_its_tier_and_rejects():
    """The contradiction of issue 14: REJECT while the tier said passed."""
    ledger = passing("smoke")
    ledger.records["t::x"] = TestRecord("t::x", "smoke", outcome="failed", quarantine=EXPIRED)
    result = decide(ledger, Policy())
    assert result.decision == REJECT and result.reasons[0].code == "test-failed"
    assert "quarantine expired 2001-01-01, owner pay" in result.reasons[0].text
    assert tiers_section(ledger, ("smoke",))["smoke"]["result"] == "failed"


def test_every_reason_code_is_kebab_case():
    ledger = passing("smoke")
    ledger.session.interrupted = ledger.session.usage_error = ledger.session.internal_error = True
    ledger.deselected = {"contract": 2}
    ledger.unpinned = ["--sw"]
    ledger.preflight_kind, ledger.preflight_error = "unreachable", "down"
    for policy in (Policy(), Policy(flaky="hold", required_tiers=("load",))):
        for reason in decide(ledger, policy).reasons:
            assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", reason.code), reason


@given(ledgers(), policies)
def test_promote_needs_every_required_tier_to_have_run(ledger, policy):
    if decide(ledger, policy).decision == PROMOTE:
        for tier in policy.required(ledger):
            assert any(r.outcome in RAN for r in ledger.by_tier()[tier])
        assert not any(r.outcome in FAILING and not r.quarantined for r in ledger.records.values())


def passing(*tiers: str) -> Ledger:
    ledger = Ledger(collected_tiers=set(tiers))
    for i, tier in enumerate(tiers):
        ledger.records[f"t::{i}"] = TestRecord(f"t::{i}", tier, outcome="passed")
    return ledger


def test_all_passed_promotes():
    result = decide(passing("smoke", "contract"), Policy())
    assert result.decision == PROMOTE
    assert result.reasons[0].text == "all required tiers ran; 2 tests ran, none blocking"


def test_failure_rejects_even_when_interrupted():
    ledger = passing("smoke")
    ledger.records["t::x"] = TestRecord("t::x", "smoke", outcome="failed")
    ledger.session.interrupted = True
    result = decide(ledger, Policy())
    assert result.decision == REJECT
    assert [r.code for r in result.reasons] == ["test-failed", "interrupted"]
    assert result.reasons[0].text == "1 test failed: t::x"


def test_smoke_only_local_run_holds_without_failing_the_exit_status():
    ledger = passing("smoke")
    ledger.collected_tiers = {"smoke", "contract"}
    ledger.deselected = {"contract": 4}
    result = decide(ledger, Policy())
    assert result.decision == HOLD
    assert result.only_user_deselection
    assert result.reasons[0].text == "required tier contract ran no test: all its tests were deselected"


def test_required_tier_from_policy_without_tests_holds():
    result = decide(passing("smoke"), Policy(required_tiers=("smoke", "load")))
    assert result.decision == HOLD and not result.only_user_deselection
    assert [r.code for r in result.reasons] == ["required-tier-empty"]


def test_quarantined_failure_does_not_block():
    ledger = passing("smoke")
    for i in range(4):  # 1 of 5 quarantined: within the default budget of 20%
        ledger.records[f"t::{i + 10}"] = TestRecord(f"t::{i + 10}", "smoke", outcome="passed")
    ledger.records["t::q"] = TestRecord("t::q", "smoke", outcome="failed", quarantine=ACTIVE)
    assert decide(ledger, Policy()).decision == PROMOTE


def test_crash_names_the_test():
    ledger = passing("smoke")
    ledger.records["t::boom"] = TestRecord("t::boom", "smoke", outcome="crashed")
    ledger.session.crashed_workers = 1
    result = decide(ledger, Policy())
    assert result.decision == REJECT
    assert result.reasons[0].text == "1 test crashed: t::boom"


def test_many_failures_are_summarised():
    ledger = passing("smoke")
    for i in range(5):
        ledger.records[f"t::f{i}"] = TestRecord(f"t::f{i}", "smoke", outcome="failed")
    assert decide(ledger, Policy()).reasons[0].text == "5 tests failed: t::f0, t::f1, t::f2 and 2 more"


def test_a_crashed_worker_holds_even_when_its_test_was_quarantined():
    ledger = passing("smoke")
    ledger.records["t::q"] = TestRecord("t::q", "smoke", outcome="crashed", quarantine=ACTIVE)
    ledger.session.crashed_workers = 1
    result = decide(ledger, Policy(max_quarantined=1.0))
    assert result.decision == HOLD
    assert [r.code for r in result.reasons] == ["worker-crashed"]


def test_expired_quarantine_rejects_and_names_the_owner():
    ledger = passing("smoke")
    ledger.records["t::old"] = TestRecord("t::old", "smoke", outcome="failed", quarantine=EXPIRED)
    result = decide(ledger, Policy())
    assert result.decision == REJECT
    assert result.reasons[0].text == "1 test failed: t::old (quarantine expired 2001-01-01, owner pay)"


def test_over_budget_holds():
    ledger = passing("smoke", "smoke")
    ledger.records["t::q"] = TestRecord("t::q", "smoke", outcome="xfailed", quarantine=ACTIVE)
    result = decide(ledger, Policy())
    assert result.decision == HOLD
    assert (
        result.reasons[0].text == "1 of 3 smoke tests are quarantined, over the budget of 20% (staging_max_quarantined)"
    )


def test_flaky_policies():
    ledger = passing("smoke")
    ledger.records["t::f"] = TestRecord("t::f", "smoke", outcome="passed", flaky=True)
    assert decide(ledger, Policy(flaky="allow")).decision == PROMOTE
    assert decide(ledger, Policy(flaky="hold")).decision == HOLD
    rejected = decide(ledger, Policy(flaky="reject"))
    assert rejected.decision == REJECT
    assert rejected.reasons[0].text == "1 test passed only on a re-run (--staging-flaky=reject): t::f"


BASELINE_RESULTS = ("PASS", "MARGINAL", "FAIL", "INCONCLUSIVE", "NODATA")


def test_the_baseline_result_under_every_policy():
    """Every combination, on a run that would otherwise promote: FAIL rejects; MARGINAL does what
    staging_baseline_marginal says; INCONCLUSIVE holds unless allowed; NODATA always holds; a
    baseline from another target or load profile holds only under staging_baseline_strict."""
    policies = itertools.product(("hold", "allow", "reject"), ("hold", "allow"), (False, True))
    for case in itertools.product(BASELINE_RESULTS, (False, True), policies):
        result, mismatched, (marginal, inconclusive, strict) = case
        ledger = passing("smoke")
        mismatches = ["target differs: prod"] if mismatched else []
        ledger.baseline = {"result": result, "reason": "p95 +40%", "mismatches": mismatches}
        policy = Policy(baseline_marginal=marginal, baseline_inconclusive=inconclusive, baseline_strict=strict)
        expected = {
            "PASS": [],
            "MARGINAL": [] if marginal == "allow" else ["baseline-marginal"],
            "FAIL": ["baseline-failed"],
            "INCONCLUSIVE": [] if inconclusive == "allow" else ["baseline-inconclusive"],
            "NODATA": ["baseline-nodata"],
        }[result] + (["baseline-mismatch"] if mismatched and strict else [])
        rejects = result == "FAIL" or (result == "MARGINAL" and marginal == "reject")
        decision = decide(ledger, policy)
        assert decision.decision == (REJECT if rejects else HOLD if expected else PROMOTE), case
        if expected:
            assert [r.code for r in decision.reasons] == expected, case
            assert all("p95 +40%" in r.text or "target differs: prod" in r.text for r in decision.reasons), case


# -- shards and merges ---------------------------------------------------------------------

shards = st.integers(1, 5).flatmap(lambda total: st.tuples(st.integers(1, total), st.just(total)))


@given(ledgers(), policies, shards)
def test_a_shard_never_promotes_and_says_what_it_alone_decided(ledger, policy, shard):
    alone = decide(ledger, policy)
    ledger.shard = Shard(*shard)
    partial = decide(ledger, policy)
    assert partial.decision == (REJECT if alone.decision == REJECT else HOLD)
    assert partial.shard_decision == alone.decision
    assert [r.code for r in partial.reasons].count(SHARD_PARTIAL) == 1
    assert f"shard {shard[0]} of {shard[1]}" in next(r.text for r in partial.reasons if r.code == SHARD_PARTIAL)
    others = [r for r in partial.reasons if r.code != SHARD_PARTIAL]
    assert others == [r for r in alone.reasons if r.code != "complete"]
    # Its exit status: green exactly when the shard alone would be.
    assert partial.only_user_deselection == alone.only_user_deselection


def test_a_required_tier_whose_tests_all_run_on_other_shards_is_not_missing_from_a_shard():
    ledger = passing("smoke")
    ledger.collected_tiers = {"smoke", "load"}
    ledger.shard = Shard(2, 3, 4, "0" * 64, {"smoke": 2, "load": 1})
    result = decide(ledger, Policy())
    assert (result.decision, result.shard_decision) == (HOLD, PROMOTE)
    assert [r.code for r in result.reasons] == [SHARD_PARTIAL]
    # A required tier with no test in any shard is missing, sharded or not.
    ledger.shard = Shard(2, 3, 4, "0" * 64, {"smoke": 2})
    result = decide(ledger, Policy())
    assert (result.decision, result.shard_decision) == (HOLD, HOLD)
    assert [r.code for r in result.reasons] == [SHARD_PARTIAL, "required-tier-empty"]


@given(
    ledgers(), policies, st.lists(st.sampled_from(["shard-missing", "shard-duplicated", "shard-mismatch"]), min_size=1)
)
def test_evidence_missing_outside_the_records_never_promotes(ledger, policy, codes):
    """A merge's shards that do not add up: HOLD, or REJECT when the records show a failure."""
    before = decide(ledger, policy)
    ledger.gaps = [(code, f"{code}: shard {i}") for i, code in enumerate(codes)]
    after = decide(ledger, policy)
    assert after.decision == (REJECT if before.decision == REJECT else HOLD)
    gaps = [Reason(code, text) for code, text in ledger.gaps]
    # Together, first of the missing evidence: after the failures only.
    first = after.reasons.index(gaps[0])
    assert list(after.reasons[first : first + len(gaps)]) == gaps
    assert first == 0 or after.decision == REJECT
