"""One plain record per test, and the session facts around them: what the verdict is decided from.

Records are filled on the controller from pytest reports (under xdist the reports arrive from
the workers; what a worker measured rides along as a plain dict on the report). Nothing here
imports pytest, so the decision and the verdict can be built and tested from plain data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .shards import Shard

#: Outcomes a record can end with. ``crashed``: its worker died running it; ``notrun``: it was
#: selected but no report ever came (an aborted or interrupted run).
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "crashed", "notrun")
#: Evidence that the release is broken, when not quarantined.
FAILING = frozenset({"failed", "error", "crashed"})
#: The test body ran (skips do not count as running).
RAN = frozenset({"passed", "failed", "error", "xfailed", "xpassed", "crashed"})

ERROR_LIMIT = 300


# Named tuples and plain classes, not dataclasses: these classes are made whenever an active gate
# starts, and generating a dataclass's methods costs more than a thousand tests' worth of
# bookkeeping (bench/overhead.py). Slots: thousands of records live through a session and the garbage collector walks each one
# many times; without a __dict__ they cost it (and memory) much less.


class Metric(NamedTuple):
    name: str
    value: float
    unit: str = ""


_tuple_new = tuple.__new__


class Attempt(NamedTuple):
    outcome: str
    duration: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.error:
            return {"outcome": self.outcome, "duration": round(self.duration, 6), "error": self.error}
        return {"outcome": self.outcome, "duration": round(self.duration, 6)}


class TestRecord:
    """One test. On a worker it also collects what the test measured (correlation id, metrics)."""

    __test__ = False  # not a pytest test class, whatever its name
    __slots__ = (
        "nodeid",
        "tier",
        "destructive",
        "outcome",
        "duration",
        "attempts",
        "metrics",
        "skip_reason",
        "error",
        "quarantine",
        "flaky",
        "correlation_id_value",
        "span_id",
        "validations",
        "validation_failures",
        "data_contracts",
        "load_runs",
        "data_expectations",
    )

    def __init__(
        self,
        nodeid: str,
        tier: str,
        destructive: bool = False,
        outcome: str = "notrun",
        duration: float = 0.0,
        attempts: list[Attempt] | None = None,
        metrics: list[Metric] | tuple[()] = (),
        skip_reason: str | None = None,
        error: str | None = None,
        quarantine: dict[str, Any] | None = None,
        flaky: bool = False,
        correlation_id_value: str | None = None,
        span_id: str | None = None,
        validations: int = 0,
        validation_failures: int = 0,
        data_contracts: list[dict[str, Any]] | tuple[()] = (),
        load_runs: list[dict[str, Any]] | tuple[()] = (),
        data_expectations: list[dict[str, Any]] | tuple[()] = (),
    ) -> None:
        self.nodeid = nodeid
        self.tier = tier
        self.destructive = destructive
        self.outcome = outcome
        self.duration = duration
        self.attempts: list[Attempt] = [] if attempts is None else attempts
        #: () until the first metric: most records never get one, and an empty list per test adds up.
        self.metrics = metrics
        self.skip_reason = skip_reason
        self.error = error
        self.quarantine = quarantine
        self.flaky = flaky
        self.correlation_id_value = correlation_id_value
        #: The test's OpenTelemetry span (16 hex digits) when tracing is on.
        self.span_id = span_id
        #: staging_contract.validate calls: how many, and how many found violations.
        self.validations = validations
        self.validation_failures = validation_failures
        #: staging_contract.validate_rows results (plain dicts).
        self.data_contracts = data_contracts
        #: staging_load.run results (plain dicts, the verdict's ``load.runs``).
        self.load_runs = load_runs
        #: staging_data.expect results (plain dicts, the verdict's ``data.expectations``).
        self.data_expectations = data_expectations

    def __repr__(self) -> str:
        return f"TestRecord({self.nodeid!r}, {self.tier!r}, outcome={self.outcome!r})"

    @property
    def correlation_id(self) -> str:
        """One id per test, made the first time the test talks to the target."""
        if self.correlation_id_value is None:
            self.correlation_id_value = uuid.uuid4().hex
        return self.correlation_id_value

    @property
    def quarantined(self) -> bool:
        """An active quarantine entry covers this test (an expired one does not)."""
        return self.quarantine is not None and self.quarantine.get("status") == "active"

    @property
    def blocking(self) -> bool:
        """Evidence against the release: failed, errored or crashed, and not under an active
        quarantine (an expired one blocks). The one notion of blocking: the decision, the tiers'
        results and the reports all use it, so a tier never reads as passed while it blocks."""
        return self.outcome in FAILING and not self.quarantined

    def count_validation(self, valid: bool) -> None:
        self.validations += 1
        if not valid:
            self.validation_failures += 1

    def add_data_contract(self, result: dict[str, Any]) -> None:
        self.data_contracts = [*self.data_contracts, result]

    def add_load_run(self, result: dict[str, Any]) -> None:
        self.load_runs = [*self.load_runs, result]

    def add_data_expectation(self, result: dict[str, Any]) -> None:
        self.data_expectations = [*self.data_expectations, result]

    def add_metric(self, name: str, value: float, unit: str = "") -> None:
        if not self.metrics:
            self.metrics = []
        self.metrics.append(Metric(name, float(value), unit))

    def absorb(self, report: Any, measured: dict[str, Any] | None = None) -> None:
        """Fold one pytest TestReport (setup, call, teardown, or xdist's crash report) in.

        Runs three times per test on the hot path: plain string compares, no attribute misses.
        """
        when, outcome = report.when, report.outcome
        self.duration += report.duration or 0.0
        if outcome == "passed":
            if when == "setup":
                self.outcome = "running"
            elif when == "call":
                self.outcome = "xpassed" if "wasxfail" in report.__dict__ else "passed"
            elif self.outcome == "running":  # teardown after a setup but no call: never "passed"
                self.outcome = "error"
        elif outcome == "failed":
            if when == "call":
                self.outcome = "failed"
            elif when == "setup" or (when == "teardown" and self.outcome not in FAILING):
                self.outcome = "error"
            elif when == "???":  # xdist reports a test whose worker died with when="???"
                self.outcome = "crashed"
            if self.error is None:
                self.error = short_error(report)
        else:  # skipped, or an xfail (pytest reports those as skipped with wasxfail)
            self.outcome = "xfailed" if "wasxfail" in report.__dict__ else "skipped"
            if isinstance(report.longrepr, tuple):
                self.skip_reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        if when == "teardown" or when == "???":
            if measured:
                self.correlation_id_value = measured["correlationId"]
                self.span_id = measured.get("spanId")
                self.destructive = measured["destructive"]
                self.metrics = [Metric(*item) for item in measured["metrics"]]
                self.quarantine = measured.get("quarantine")
                self.attempts = [Attempt(*item) for item in measured.get("attempts", ())]
                self.validations, self.validation_failures = measured.get("validations", (0, 0))
                self.data_contracts = measured.get("dataContracts", ())
                self.load_runs = measured.get("loadRuns", ())
                self.data_expectations = measured.get("dataExpectations", ())
            if self.attempts:  # earlier attempts of a re-run test: a pass now means flaky
                self.flaky = self.outcome == "passed"
            # tuple.__new__ directly: a named tuple's own __new__ is a Python function, and this
            # runs once per test (bench/overhead.py).
            self.attempts.append(_tuple_new(Attempt, (self.outcome, self.duration, self.error)))

    def measured(self) -> dict[str, Any]:
        """What the worker measured, as plain data for the report (crosses xdist)."""
        data: dict[str, Any] = {
            "correlationId": self.correlation_id_value,
            "destructive": self.destructive,
            "metrics": [[m.name, m.value, m.unit] for m in self.metrics],
        }
        if self.quarantine is not None:
            data["quarantine"] = self.quarantine
        if self.span_id is not None:
            data["spanId"] = self.span_id
        if self.attempts:
            data["attempts"] = [[a.outcome, a.duration, a.error] for a in self.attempts]
        if self.validations:
            data["validations"] = [self.validations, self.validation_failures]
        if self.data_contracts:
            data["dataContracts"] = list(self.data_contracts)
        if self.load_runs:
            data["loadRuns"] = list(self.load_runs)
        if self.data_expectations:
            data["dataExpectations"] = list(self.data_expectations)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TestRecord:
        """A record from the verdict's record of a test (:meth:`to_dict`; a merge reads shards'
        verdicts back). What a verdict does not keep per test stays empty (metrics; load runs and
        data expectations, which the verdict lists apart)."""
        validations = data.get("validations")
        return cls(
            data["nodeid"],
            data["tier"],
            data.get("destructive", False),
            data["outcome"],
            data["duration"],
            # tuple.__new__: a named tuple's own __new__ is a Python function, and a merge reads
            # back 100,000 records (bench/merge.py: 0.5 of its 4.3 s).
            [_tuple_new(Attempt, (a["outcome"], a["duration"], a.get("error"))) for a in data["attempts"]],
            (),
            data.get("skipReason"),
            data.get("error"),
            data.get("quarantine"),
            data.get("flaky", False),
            data.get("correlationId"),
            data.get("spanId"),
            validations["passed"] + validations["failed"] if validations else 0,
            validations["failed"] if validations else 0,
            data.get("dataContracts", ()),
        )

    def to_dict(self) -> dict[str, Any]:
        """The verdict's record of this test. Optional fields appear only when they say something:
        a verdict of 10,000 tests stays small and quick to write."""
        # round(x * 1e6) / 1e6, not round(x, 6): the same six decimals (ties aside) without a
        # decimal conversion, once per test (bench/overhead.py).
        duration = round(self.duration * 1e6) / 1e6
        attempts = self.attempts
        if len(attempts) == 1 and attempts[0].error is None and attempts[0].duration == self.duration:
            # The common test ran once: its attempt is the whole test, rounded once (bench/verdict.py).
            attempt_list = [{"outcome": attempts[0].outcome, "duration": duration}]
        else:
            attempt_list = [a.to_dict() for a in attempts]
        data: dict[str, Any] = {
            "nodeid": self.nodeid,
            "tier": self.tier,
            "outcome": self.outcome,
            "duration": duration,
            "attempts": attempt_list,
        }
        if self.correlation_id_value:
            data["correlationId"] = self.correlation_id_value
        if self.destructive:
            data["destructive"] = True
        if self.skip_reason:
            data["skipReason"] = self.skip_reason
        if self.error:
            data["error"] = self.error
        if self.quarantine is not None:
            data["quarantine"] = self.quarantine
        if self.flaky:
            data["flaky"] = True
        if self.span_id:
            data["spanId"] = self.span_id
        if self.validations:
            data["validations"] = {
                "passed": self.validations - self.validation_failures,
                "failed": self.validation_failures,
            }
        if self.data_contracts:
            data["dataContracts"] = list(self.data_contracts)
        return data


class SessionFacts:
    __slots__ = (
        "started",
        "finished",
        "exit_status",
        "interrupted",
        "usage_error",
        "internal_error",
        "collection_errors",
        "xdist_workers",
        "crashed_workers",
    )

    def __init__(
        self,
        started: float = 0.0,
        finished: float = 0.0,
        exit_status: int | None = 0,
        interrupted: bool = False,
        usage_error: bool = False,
        internal_error: bool = False,
        collection_errors: int = 0,
        xdist_workers: int = 0,
        crashed_workers: int = 0,
    ) -> None:
        self.started = started
        self.finished = finished
        self.exit_status = exit_status
        self.interrupted = interrupted
        #: The run stopped with a usage error (exit 4) after the gate had started.
        self.usage_error = usage_error
        self.internal_error = internal_error
        self.collection_errors = collection_errors
        self.xdist_workers = xdist_workers
        #: Workers that went down with an error (crash, lost connection).
        self.crashed_workers = crashed_workers


class Ledger:
    def __init__(
        self,
        records: dict[str, TestRecord] | None = None,
        collected_tiers: set[str] | None = None,
        deselected: dict[str, int] | None = None,
        session: SessionFacts | None = None,
    ) -> None:
        self.records: dict[str, TestRecord] = {} if records is None else records
        #: Tiers with at least one collected test before any deselection (the default required tiers).
        self.collected_tiers: set[str] = set() if collected_tiers is None else collected_tiers
        #: Collected tests deselected (--staging-tier, -m, -k, --deselect, --lf, --sw, any plugin), per tier.
        self.deselected: dict[str, int] = {} if deselected is None else deselected
        #: Deselection no policy can pin, in words (``--lf``, ``--sw``, tests a plugin dropped
        #: without telling pytest): it holds the release even with staging_allow_deselection.
        self.unpinned: list[str] = []
        self.session = SessionFacts() if session is None else session
        #: Release identity problem found by the pre-flight (``release-mismatch``), else None.
        self.preflight_kind: str | None = None
        self.preflight_error: str | None = None
        #: The baseline comparison (the verdict's ``baseline`` section) when one was made.
        self.baseline: dict[str, Any] | None = None
        #: ``--staging-shard=K/N``: this ledger holds that shard's share of the tests (a partial verdict).
        self.shard: Shard | None = None
        #: Evidence missing outside the records, as (reason code, text): a merge's shards that are
        #: absent, given twice or disagree.
        self.gaps: list[tuple[str, str]] = []

    def expect(self, tests: Iterable[tuple[str, str, bool, dict[str, Any] | None]]) -> None:
        """Register the selected tests (node id, tier, destructive, quarantine entry), so one that
        never reports stays ``notrun``."""
        records = self.records
        for nodeid, tier, destructive, quarantine in tests:
            if nodeid not in records:
                # Positional arguments only: a keyword makes the 20-field __init__ twice as slow,
                # and this runs once per collected test.
                record = records[nodeid] = TestRecord(nodeid, tier, destructive)
                if quarantine is not None:
                    record.quarantine = quarantine

    def add_report(
        self, report: Any, nodeid: str, tier: str | None = None, measured: dict[str, Any] | None = None
    ) -> None:
        """Fold in a report that came from an xdist worker, with the tier and measurements it carried."""
        record = self.records.get(nodeid)
        if record is None:
            record = self.records[nodeid] = TestRecord(nodeid, tier or "smoke")
        elif tier is not None:
            record.tier = tier
        record.absorb(report, measured)

    def close(self) -> None:
        """At session end: a test whose protocol never completed (Ctrl-C mid-test) did not run."""
        for record in self.records.values():
            if record.outcome == "running":
                record.outcome = "notrun"
                record.error = record.error or "interrupted before it finished"

    def by_tier(self) -> dict[str, list[TestRecord]]:
        tiers: dict[str, list[TestRecord]] = {}
        for record in self.records.values():
            tiers.setdefault(record.tier, []).append(record)
        return tiers


class TierTally:
    """What one tier's records add up to (see :class:`Tally`)."""

    __slots__ = ("total", "counts", "duration", "ran", "blocking", "quarantined", "skip_reasons", "destructive_skipped")

    def __init__(self) -> None:
        self.total = self.ran = self.blocking = self.quarantined = self.destructive_skipped = 0
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.duration = 0.0
        self.skip_reasons: set[str] = set()


class Tally:
    """The records counted in one pass: what the decision and the verdict's tiers are made of.

    One pass rather than one per question: a gate of 10,000 tests asks a dozen of them, twice
    (the decision, then the verdict), at the end of every run (bench/overhead.py).
    """

    __slots__ = ("tiers", "blocking", "flaky", "notrun", "ran")

    def __init__(self, records: Iterable[TestRecord]) -> None:
        self.tiers: dict[str, TierTally] = {}
        #: Blocking records by outcome (failed, error, crashed), in collection order.
        self.blocking: dict[str, list[TestRecord]] = {outcome: [] for outcome in FAILING}
        #: Flaky tests outside an active quarantine, and tests that never reported.
        self.flaky: list[str] = []
        self.notrun: list[str] = []
        self.ran = 0
        tiers = self.tiers
        for record in records:
            tier = tiers.get(record.tier)
            if tier is None:
                tier = tiers[record.tier] = TierTally()
            tier.duration += record.duration
            outcome = record.outcome
            if outcome == "passed" and record.quarantine is None and not record.skip_reason and not record.flaky:
                # Speed: most records; total and ran are summed from the counts below.
                tier.counts["passed"] += 1
                continue
            self._count(tier, record, outcome)
        for tier in tiers.values():
            counts = tier.counts
            tier.total = sum(counts.values())
            tier.ran = sum(counts[outcome] for outcome in RAN)
            self.ran += tier.ran

    def _count(self, tier: TierTally, record: TestRecord, outcome: str) -> None:
        counts = tier.counts
        if outcome in counts:
            counts[outcome] += 1
        else:  # "running": its protocol never completed
            counts["notrun"] += 1
        quarantined = record.quarantine is not None and record.quarantined
        if quarantined:
            tier.quarantined += 1
        if outcome in FAILING:
            if record.blocking:
                tier.blocking += 1
                self.blocking[outcome].append(record)
        elif outcome == "notrun" or outcome == "running":
            self.notrun.append(record.nodeid)
        if record.skip_reason:
            tier.skip_reasons.add(record.skip_reason)
            if outcome == "skipped" and record.skip_reason.startswith("staging: destructive"):
                tier.destructive_skipped += 1
        if record.flaky and not quarantined:
            self.flaky.append(record.nodeid)

    def tier(self, name: str) -> TierTally:
        return self.tiers.get(name) or TierTally()


def short_error(report: Any) -> str:
    """The crash line of a failure (``AssertionError: ...``), not the whole traceback."""
    longrepr = report.longrepr
    message = getattr(getattr(longrepr, "reprcrash", None), "message", None)
    if message is None:
        text = str(longrepr) if longrepr is not None else ""
        lines = [line for line in text.strip().splitlines() if line.strip()]
        explained = [line[1:].strip() for line in lines if line.startswith("E ")]
        message = explained[-1] if explained else lines[-1] if lines else ""
    return clip(" ".join(message.split()), ERROR_LIMIT)


def clip(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: cut at the last space of the part that fits (a
    word is never cut, unless it alone is longer than half the limit), then "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"
