"""Accounting: each test as it runs — its reports made safe to show and folded into its ledger
record, the tier gate before it when it has something to say. Registered in a plain run; an xdist
worker's variant is :class:`.worker.Worker`.

Per test, one hook: logreport, which runs three times per test. The setup report, first of each
test, names the test under way (before it, while fixtures are set up, the fixtures find the test
through pytest's ``PYTEST_CURRENT_TEST``: :meth:`.state.Gate.current_test`). The tier gate's
setup hook (:class:`TierGuard`, which may skip a test) is registered only once it can skip one:
on an xdist worker (the barrier), on a sensitive target (destructive tests), or when a tier has
failed under fail-fast. Speed: each hook implementation per test costs some 25M instructions of
a gate of 5,000 tests (bench/overhead.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ..core.ledger import Attempt, TestRecord, _tuple_new
from ..core.tiers import TIERS, TierGate

if TYPE_CHECKING:
    from .barrier import SharedTierGate
    from .state import Gate

_TIER_PROPERTY = {tier: ("tier", tier) for tier in TIERS}  # one tuple per tier, not per test


class Accounting:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.records = gate.records
        #: Fail-fast between tiers (an xdist worker's is a barrier across processes).
        self.tiers: TierGate = TierGate(gate.settings.fail_fast)
        #: An xdist worker's barrier across workers (consulted before every test), else None.
        self.barrier: SharedTierGate | None = None
        #: Tests with a failed report (setup, call or teardown).
        self.failed: set[str] = set()
        self._scrubbing = bool(gate.scrub)
        self._guarded = False

    def guard(self) -> None:
        """From now on the tier gate looks at every test before it runs (and may skip it)."""
        if not self._guarded:
            self._guarded = True
            self.gate.config.pluginmanager.register(TierGuard(self), "staging-tier-guard")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.gate.session = session
        if self.gate.target.sensitive:  # as the pre-flight found it (a redirect can make it so)
            self.guard()

    def _finished(self, record: TestRecord, failed: bool) -> None:
        self.tiers.finished(record.nodeid, record.tier, failed)
        if failed and self.tiers.fail_fast:
            self.guard()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """First to see each report: make it safe to show (scrub, skip location, properties),
        then account for it (ledger, tier gate). Every later consumer — terminal, JUnit XML,
        xdist's channel to the controller — sees the finished report."""
        record, when = self.gate.current, report.when
        if when == "setup":  # the first report of each test: the test under way from now on
            # The dict first, inline: record_for is a call per test (it makes late tests' records).
            record = self.records.get(report.nodeid) or self.gate.record_for(report.nodeid)
            self.gate.current = record
        if record is None or report.outcome != "passed" or self._scrubbing:
            record = self._prepare(report)
            if record is None:
                return
        if when != "teardown":
            if report.outcome == "passed" and "wasxfail" not in report.__dict__:  # the common case, inline
                record.duration += report.duration
                record.outcome = "running" if when == "setup" else "passed"
            else:
                record.absorb(report)
            return
        # Speed: _annotate and record.absorb inline for the common test (passed, ran once, nothing
        # measured): 2 calls fewer per test, 12M instructions of 5,000 tests (bench/overhead.py).
        properties = report.user_properties
        properties.append(_TIER_PROPERTY[record.tier])
        if record.correlation_id_value is not None or record.quarantine is not None or record.attempts:
            _more_properties(properties, record)
        if report.outcome == "passed" and record.outcome == "passed" and not record.attempts:
            record.duration += report.duration
            record.attempts.append(_tuple_new(Attempt, ("passed", record.duration, record.error)))
        else:
            record.absorb(report)
        self.gate.current = None
        if record.nodeid in self.failed:
            self._finished(record, True)

    def _prepare(self, report: pytest.TestReport) -> TestRecord | None:
        """The report's record; the report scrubbed, a gate skip pointed at the test."""
        # The test under way (named by its setup report): no node-id lookup on the hot path.
        record = self.gate.current
        if record is None:
            record = self.gate.record_for(report.nodeid)
            if record is None:
                return None
        outcome = report.outcome
        if outcome == "failed":
            self.failed.add(record.nodeid)
        elif (
            outcome == "skipped"
            and isinstance(report.longrepr, tuple)
            and report.longrepr[2].startswith("Skipped: staging:")
        ):
            # Point at the test, not at this plugin, as pytest does for skip markers.
            report.longrepr = (report.location[0], (report.location[1] or 0) + 1, report.longrepr[2])
        if self._scrubbing:
            self.gate.scrub.report(report)
        return record

    @staticmethod
    def _annotate(report: pytest.TestReport, record: TestRecord) -> None:
        """The test's JUnit XML properties, on its last report."""
        report.user_properties.append(_TIER_PROPERTY[record.tier])
        _more_properties(report.user_properties, record)


def _more_properties(properties: list[tuple[str, object]], record: TestRecord) -> None:
    """A test's JUnit XML properties after its tier: correlation id, quarantine, attempts."""
    if record.correlation_id_value is not None:
        properties.append(("correlation_id", record.correlation_id_value))
    if record.quarantine is not None:
        properties += [
            ("quarantine_owner", record.quarantine["owner"]),
            ("quarantine_until", record.quarantine["until"]),
        ]
    if record.attempts:  # earlier attempts of a re-run: this is attempt len + 1
        properties.append(("flaky_attempts", len(record.attempts) + 1))


class TierGuard:
    """The tier gate before each test (a skip when an earlier tier failed, or when the barrier
    across xdist workers says so) and the sensitive target's refusal of destructive tests."""

    def __init__(self, accounting: Accounting) -> None:
        self.accounting = accounting
        self.gate = accounting.gate

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        record = self.gate.record_for(item.nodeid)
        if record is None:
            return
        accounting = self.accounting
        if accounting.barrier is not None:
            accounting.barrier.starting(record.nodeid)
        reason = accounting.tiers.before(record.tier)
        if reason is not None:
            pytest.skip(reason)
        if record.destructive and self.gate.target.sensitive:
            pytest.skip(f"staging: destructive test not run on sensitive target {self.gate.target.name}")


class PreflightFailed:
    """Registered only when the pre-flight failed: every test that gets to run fails with its line."""

    def __init__(self, line: str) -> None:
        self.line = line

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self) -> None:
        pytest.fail(self.line, pytrace=False)
