"""Re-running failing tests (``--staging-reruns=N``), registered only when N > 0.

One test protocol per test, whatever the attempts: pytest, JUnit XML and xdist see one set of
reports (the last attempt's), so nothing is counted twice; every earlier attempt goes into the
test's ledger record (outcome, duration, short error) and a later pass makes the test flaky.

Between attempts only the test's own (function-scoped) fixtures are torn down and set up again:
the teardown is told the "next item" is the test's parent, so class, module and session fixtures
stay up, as they would for the next test in the same module. Setup or call failures are re-run;
a failing teardown is not (its fixtures are already gone). Quarantined tests are never re-run.
"""

from __future__ import annotations

from typing import Any

import pytest
from _pytest.runner import call_and_report

from ..core.ledger import Attempt, TestRecord, short_error


class _SameParent:
    """Stands in for "the next item" during a re-run's teardown: its chain is the test's chain
    without the test itself, so pytest tears down the function level only."""

    def __init__(self, item: pytest.Item) -> None:
        self._chain = item.listchain()[:-1]

    def listchain(self) -> list[Any]:
        return self._chain


class Reruns:
    def __init__(self, reruns: int, records: dict[str, TestRecord], quarantined: Any) -> None:
        self.reruns = reruns
        self.records = records
        self.quarantined = quarantined

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        if self.quarantined(item):
            return None  # pytest's own protocol: quarantined tests are not re-run
        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        earlier: list[Attempt] = []
        for attempt in range(self.reruns + 1):
            if attempt:
                self._forget_attempt(item)
            reports = self._setup_and_call(item)
            again = attempt < self.reruns and any(report.failed for report in reports)
            session = item.session
            if again:
                teardown_to: Any = _SameParent(item)
            else:
                teardown_to = None if session.shouldfail or session.shouldstop else nextitem
            reports.append(call_and_report(item, "teardown", log=False, nextitem=teardown_to))
            if hasattr(item, "_request"):
                item._request = False
                item.funcargs = None  # type: ignore[attr-defined]
            if not again:
                break
            failed = next(report for report in reports if report.failed)
            earlier.append(
                Attempt(
                    "failed" if failed.when == "call" else "error",
                    sum(r.duration for r in reports),
                    short_error(failed),
                )
            )
        record = self.records.get(item.nodeid)
        if record is not None:
            record.attempts[:0] = earlier
        for report in reports:
            ihook.pytest_runtest_logreport(report=report)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def _forget_attempt(self, item: pytest.Item) -> None:
        # The verdict's data section counts the staging_data expectations of the attempt that
        # stands only: a failed attempt's rows would otherwise count twice in the failure rate.
        record = self.records.get(item.nodeid)
        if record is not None:
            record.data_expectations = ()

    @staticmethod
    def _setup_and_call(item: pytest.Item) -> list[pytest.TestReport]:
        # What pytest's runtestprotocol does before the teardown, without logging: only the
        # attempt that stands is logged, after the loop.
        if hasattr(item, "_request") and not item._request:
            item._initrequest()  # type: ignore[attr-defined]
        reports = [call_and_report(item, "setup", log=False)]
        if reports[0].passed and not item.config.getoption("setuponly", False):
            reports.append(call_and_report(item, "call", log=False))
        return reports
