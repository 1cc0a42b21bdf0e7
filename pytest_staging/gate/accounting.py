"""Accounting: each test as it runs — the tier gate before it, its reports made safe to show and
folded into its ledger record after. Registered in a plain run; an xdist worker's variant is
:class:`.worker.Worker`. Per-test work is kept to two hooks (setup, logreport): they run
thousands of times.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ..core.ledger import Attempt, TestRecord, _tuple_new
from ..core.tiers import TIERS, TierGate
from .collection import CLASS_KEY, entry_dict

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

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        record = self.records.get(item.nodeid)
        if record is None:  # an item added after collection finished (by another plugin)
            tier, destructive, entry = item.stash[CLASS_KEY]
            record = self.records[item.nodeid] = TestRecord(
                item.nodeid, tier, destructive, quarantine=entry_dict(entry)
            )
        self.gate.current = record
        if self.barrier is not None or self.tiers.failed_tiers:  # else the gate has nothing to say
            self._check_tier(record)
        if record.destructive and self.gate.target.sensitive:
            pytest.skip(f"staging: destructive test not run on sensitive target {self.gate.target.name}")

    def _check_tier(self, record: TestRecord) -> None:
        if self.barrier is not None:
            self.barrier.starting(record.nodeid)
        reason = self.tiers.before(record.tier)
        if reason is not None:
            pytest.skip(reason)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """First to see each report: make it safe to show (scrub, skip location, properties),
        then account for it (ledger, tier gate). Every later consumer — terminal, JUnit XML,
        xdist's channel to the controller — sees the finished report."""
        record, when = self.gate.current, report.when
        if (
            record is None
            or report.outcome != "passed"
            or self._scrubbing
            or (when == "setup" and record.nodeid != report.nodeid)
        ):
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
            self.tiers.finished(record.nodeid, record.tier, True)

    def _prepare(self, report: pytest.TestReport) -> TestRecord | None:
        """The report's record; the report scrubbed, a gate skip pointed at the test."""
        # The test under way (set by our setup hook): no node-id lookup on the hot path. The
        # setup report, first of each test, checks it is really that test's.
        record = self.gate.current
        if record is None or (report.when == "setup" and record.nodeid != report.nodeid):
            record = self.records.get(report.nodeid)
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


class PreflightFailed:
    """Registered only when the pre-flight failed: every test that gets to run fails with its line."""

    def __init__(self, line: str) -> None:
        self.line = line

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self) -> None:
        pytest.fail(self.line, pytrace=False)
