"""``decide(ledger, policy) -> Decision``: the promotion decision, with its reasons in words. Pure.

The decision rules, in this order:
1. any evidence of failure → REJECT (the target is unreachable; a blocking test failed, errored
   or crashed; the deployed release is not the one under test; the baseline comparison failed),
   even if the session was also interrupted;
2. otherwise any missing evidence → HOLD (the run has not finished, was interrupted or stopped
   with a usage error; internal or collection error; nothing ran; tests were deselected;
   a required tier ran nothing; tests that never reported; no target; a baseline comparison that
   is marginal, inconclusive or without data, or from another target with strict on; a merge's
   shards that are missing, given twice or disagree);
3. otherwise PROMOTE.

A shard's ledger (``--staging-shard=K/N``) holds its share of the tests only: its decision is at
most HOLD (reason ``shard-partial``), and :attr:`Decision.shard_decision` says what the shard alone
would have decided. A required tier whose tests all run on other shards is not missing from it.

Every reason has a stable ``code`` (kebab-case) next to its text: release tooling and the
history count reasons by code, so a code never changes once released.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from .ledger import Ledger, Tally, TestRecord, TierTally
from .tiers import TIERS

PROMOTE, HOLD, REJECT = "PROMOTE", "HOLD", "REJECT"
#: HOLD reasons the user's own deselection (-k, -m, --staging-tier...) gives.
DESELECTION = frozenset({"tests-deselected", "required-tier-deselected"})
#: HOLD reasons a deliberately partial run is expected to give: its deselection, and a baseline
#: the partial run could not fill.
PARTIAL_RUN = DESELECTION | {"baseline-inconclusive", "baseline-nodata"}
#: The one reason of the verdict that stands at the verdict path while a run is under way.
INCOMPLETE = "incomplete"
#: The reason of every shard's partial verdict: evidence of its share of the tests only.
SHARD_PARTIAL = "shard-partial"
#: The pre-flight's findings (``Ledger.preflight_kind``): evidence of failure, with its reason
#: code and the words used when the pre-flight gave none.
PREFLIGHT_CODES = {
    "unreachable": ("target-unreachable", "the target is unreachable"),
    "version-probe": ("version-probe-failed", "the version probe failed"),
    "release-mismatch": ("release-mismatch", "deployed release differs"),
}
#: Baseline results, worst first.
BASELINE_WORST_FIRST = ("FAIL", "MARGINAL", "INCONCLUSIVE", "NODATA", "PASS")
#: How many node ids a reason names before it says "and N more".
NAMED = 3


# Named tuples: immutable like frozen dataclasses, and far cheaper to define (see ledger.py).
class Policy(NamedTuple):
    #: Tiers that must run at least one test; None = every tier with a collected test.
    required_tiers: tuple[str, ...] | None = None
    fail_fast: bool = True
    target_configured: bool = True
    #: What a flaky test (failed, then passed on a re-run) does: allow | hold | reject.
    flaky: str = "allow"
    #: Most quarantined tests a tier may have, as a fraction of its tests.
    max_quarantined: float = 0.2
    #: What a MARGINAL baseline comparison does (hold | allow | reject), an INCONCLUSIVE one
    #: (hold | allow), and whether a baseline from another target or load profile holds.
    baseline_marginal: str = "hold"
    baseline_inconclusive: str = "hold"
    baseline_strict: bool = False
    #: ini staging_allow_deselection: a gate that deselects on purpose records it instead of holding.
    allow_deselection: bool = False

    def required(self, ledger: Ledger) -> tuple[str, ...]:
        if self.required_tiers is not None:
            return self.required_tiers
        return tuple(t for t in TIERS if t in ledger.collected_tiers)


class Reason(NamedTuple):
    #: Stable machine-readable code, e.g. ``test-failed``, ``required-tier-deselected``.
    code: str
    text: str


class Decision(NamedTuple):
    decision: str
    reasons: tuple[Reason, ...]
    #: The records as counted for this decision; the verdict's tiers reuse it (no second pass).
    tally: Tally | None = None
    #: A shard's: what it alone would have decided (its exit status follows it); else None.
    shard_decision: str | None = None

    @property
    def only_user_deselection(self) -> bool:
        """A HOLD that comes only from the user's own deselection (--staging-tier, -m, -k...) and a
        baseline that a partial run could not fill: local partial runs stay green (exit 0)."""
        codes = {r.code for r in self.reasons} - {SHARD_PARTIAL}
        return self.decision == HOLD and bool(codes & DESELECTION) and codes <= PARTIAL_RUN


def incomplete() -> Decision:
    """The verdict that holds the path while a run is under way: a killed run leaves this HOLD."""
    text = "the gate run writing this verdict has not finished; if it stays, that run was killed or crashed"
    return Decision(HOLD, (Reason(INCOMPLETE, text),))


def _names(nodeids: Sequence[str]) -> str:
    shown = ", ".join(nodeids[:NAMED])
    return shown + (f" and {len(nodeids) - NAMED} more" if len(nodeids) > NAMED else "")


def _named(record: TestRecord) -> str:
    """A failing test's id, with the owner of its expired quarantine: who has to act."""
    entry = record.quarantine
    if entry is None:
        return record.nodeid
    return f"{record.nodeid} (quarantine expired {entry['until']}, owner {entry['owner']})"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def decide(ledger: Ledger, policy: Policy) -> Decision:
    failures: list[Reason] = []
    missing: list[Reason] = []
    tally = Tally(ledger.records.values())

    # The target itself is the first thing wrong: its tests' failures follow from it.
    if ledger.preflight_kind in PREFLIGHT_CODES:
        code, text = PREFLIGHT_CODES[ledger.preflight_kind]
        failures.append(Reason(code, ledger.preflight_error or text))
    for outcome, code, verb in (
        ("failed", "test-failed", "failed"),
        ("error", "test-error", "errored"),
        ("crashed", "test-crashed", "crashed"),
    ):
        hit = [_named(r) for r in tally.blocking[outcome]]
        if hit:
            failures.append(Reason(code, f"{_plural(len(hit), 'test')} {verb}: {_names(hit)}"))
    if tally.flaky and policy.flaky != "allow":
        flaky = tally.flaky
        reason = Reason(
            "flaky",
            f"{_plural(len(flaky), 'test')} passed only on a re-run (--staging-flaky={policy.flaky}): {_names(flaky)}",
        )
        (failures if policy.flaky == "reject" else missing).append(reason)

    facts, shard = ledger.session, ledger.shard
    for tier in TIERS:
        counted = tally.tier(tier)
        if counted.quarantined and counted.quarantined / counted.total > policy.max_quarantined:
            missing.append(
                Reason(
                    "quarantine-over-budget",
                    f"{counted.quarantined} of {counted.total} {tier} tests are quarantined, over the budget of "
                    f"{policy.max_quarantined:.0%} (staging_max_quarantined)",
                )
            )
    _baseline(ledger.baseline, policy, failures, missing)
    # Evidence missing outside the records (a merge's shards), before what the records show.
    missing[:0] = [Reason(code, text) for code, text in ledger.gaps]
    if not policy.target_configured:
        missing.append(Reason("no-target", "no staging target was configured"))
    if facts.interrupted:
        missing.append(Reason("interrupted", "the run was interrupted before it finished"))
    if facts.usage_error:
        missing.append(Reason("usage-error", "the run stopped with a usage error"))
    if facts.internal_error:
        missing.append(Reason("internal-error", "pytest hit an internal error"))
    if facts.collection_errors:
        missing.append(Reason("collection-error", f"{_plural(facts.collection_errors, 'collection error')}"))
    # A worker that went down is missing evidence unless a blocking crash already says it.
    if facts.crashed_workers and not tally.blocking["crashed"]:
        missing.append(Reason("worker-crashed", f"{_plural(facts.crashed_workers, 'xdist worker')} went down"))
    if not tally.ran:
        missing.append(Reason("nothing-ran", "no test ran"))
    if tally.notrun:
        missing.append(
            Reason("not-run", f"{_plural(len(tally.notrun), 'selected test')} never reported: {_names(tally.notrun)}")
        )

    for tier in policy.required(ledger):
        counted = tally.tier(tier)
        if counted.ran:
            continue
        if not counted.total and ledger.deselected.get(tier):
            missing.append(
                Reason("required-tier-deselected", f"required tier {tier} ran no test: all its tests were deselected")
            )
        elif not counted.total and shard is not None and shard.elsewhere.get(tier):
            continue  # this shard's share of the tier is empty: the other shards run its tests
        elif not counted.total:
            missing.append(Reason("required-tier-empty", f"required tier {tier} has no test"))
        else:
            skipped = counted.skip_reasons
            why = f" ({sorted(skipped)[0]})" if len(skipped) == 1 else ""
            missing.append(Reason("required-tier-empty", f"required tier {tier} ran no test{why}"))

    if ledger.unpinned or (any(ledger.deselected.values()) and not policy.allow_deselection):
        missing.append(Reason("tests-deselected", _deselected_text(ledger, policy)))

    alone = None
    if shard is not None:
        alone = REJECT if failures else HOLD if missing else PROMOTE
        missing.insert(
            0,
            Reason(
                SHARD_PARTIAL,
                f"shard {shard.number} of {shard.total}: a partial verdict, evidence of this shard's tests only "
                f"(on its own: {alone}); merge every shard's verdict with pytest-staging merge",
            ),
        )
    if failures:
        return Decision(REJECT, tuple(failures + missing), tally, alone)
    if missing:
        return Decision(HOLD, tuple(missing), tally, alone)
    return Decision(
        PROMOTE,
        (Reason("complete", f"all required tiers ran; {_plural(tally.ran, 'test')} ran, none blocking"),),
        tally,
    )


def _deselected_text(ledger: Ledger, policy: Policy) -> str:
    per_tier = ", ".join(f"{tier} {ledger.deselected[tier]}" for tier in TIERS if ledger.deselected.get(tier))
    parts = []
    if per_tier:
        total = sum(ledger.deselected.values())
        parts.append(f"{_plural(total, 'collected test')} deselected ({per_tier})")
    parts += ledger.unpinned
    text = "; ".join(parts) + ": a partial run proves nothing about the rest"
    if ledger.unpinned:
        return text + " (and no policy can pin what was left out)"
    return text + " (ini staging_allow_deselection = true records it instead)"


def _baseline(baseline: dict[str, Any] | None, policy: Policy, failures: list[Reason], missing: list[Reason]) -> None:
    """FAIL rejects; MARGINAL and INCONCLUSIVE hold (unless the policy says otherwise); NODATA holds."""
    if baseline is None:
        return
    result, why = baseline["result"], baseline["reason"]
    if result == "FAIL":
        failures.append(Reason("baseline-failed", f"baseline comparison failed: {why}"))
    elif result == "MARGINAL" and policy.baseline_marginal != "allow":
        reason = Reason(
            "baseline-marginal",
            f"baseline comparison is marginal: {why} (staging_baseline_marginal={policy.baseline_marginal})",
        )
        (failures if policy.baseline_marginal == "reject" else missing).append(reason)
    elif result == "INCONCLUSIVE" and policy.baseline_inconclusive != "allow":
        missing.append(Reason("baseline-inconclusive", f"baseline comparison is inconclusive: {why}"))
    elif result == "NODATA":
        missing.append(Reason("baseline-nodata", f"baseline comparison has no data: {why}"))
    if baseline["mismatches"] and policy.baseline_strict:
        missing.append(
            Reason(
                "baseline-mismatch",
                f"baseline does not match this run (staging_baseline_strict): {'; '.join(baseline['mismatches'])}",
            )
        )


def tier_result(counted: TierTally, deselected: int) -> str:
    """``failed`` | ``passed`` | ``skipped`` | ``deselected`` | ``notrun`` for one tier.

    ``failed`` exactly when a record of the tier is blocking (:attr:`TestRecord.blocking`, the
    same notion the decision uses)."""
    if counted.blocking:
        return "failed"
    if counted.ran:
        return "passed"
    if not counted.total and deselected:
        return "deselected"
    return "skipped" if counted.total else "notrun"
