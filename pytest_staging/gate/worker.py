"""The xdist worker's role: it collects and runs tests as a plain run does, but decides nothing.
Its collection goes to the shared gate directory (the controller reads it at once), the tier gate
is a barrier across workers, and each test's measurements travel on its reports to the
controller's ledger.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..core.preflight import Preflight
from .accounting import Accounting
from .barrier import SharedLog, SharedTierGate
from .state import drop_lineless_entries

if TYPE_CHECKING:
    from .state import Gate

GATE_DIR_KEY = "staging_gate_dir"
PREFLIGHT_KEY = "staging_preflight"
TRACE_KEY = "staging_trace"
#: A worker's collection, in the shared gate directory: the controller reads it as soon as the
#: worker reports its collection, so an interrupted run still knows every test and its tier.
COLLECTION_FILE = "collection-{}.json"


def workerinput(gate: Gate) -> dict[str, Any]:
    """What the controller hands each worker: the pre-flight, the gate directory, the trace."""
    assert gate.preflight is not None
    return {
        PREFLIGHT_KEY: gate.preflight.to_dict(),
        GATE_DIR_KEY: str(gate.gate_dir or ""),
        TRACE_KEY: gate.telemetry.carrier() if gate.telemetry is not None else None,
    }


class Worker(Accounting):
    def __init__(self, gate: Gate) -> None:
        super().__init__(gate)
        self.workerinput: dict[str, Any] = gate.config.workerinput  # type: ignore[attr-defined]
        gate.preflight = Preflight.from_dict(self.workerinput[PREFLIGHT_KEY])
        if self.workerinput.get(GATE_DIR_KEY):
            gate.gate_dir = Path(self.workerinput[GATE_DIR_KEY])
        gate.fail_tests_if_preflight_failed()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.gate.start_telemetry(self.workerinput.get(TRACE_KEY), worker=True)

    def collected(self, session: pytest.Session) -> None:
        """The ledger knows the collection: publish it, and put the barrier up with every test's tier."""
        gate = self.gate
        if gate.gate_dir is None:
            return
        from ..verdict.files import write_atomic

        worker_id = str(self.workerinput["workerid"])
        data = {
            "tests": [(r.nodeid, r.tier, r.destructive, r.quarantine) for r in self.records.values()],
            "collectedTiers": sorted(gate.ledger.collected_tiers),
            "deselected": gate.ledger.deselected,
            "unpinned": gate.ledger.unpinned,
            "expired": gate.expired,
            "stale": gate.stale,
        }
        if gate.ledger.shard is not None:  # the same on every worker: the controller takes it
            data["shard"] = gate.ledger.shard
        if getattr(session.config.option, "loadgroup", False):  # xdist's worker: --dist loadgroup
            # The controller's scheduler groups by them. (xdist marks them on the node id, which
            # pytest 9 no longer lets a plugin change.)
            data["groups"] = {item.nodeid: group for item in session.items if (group := xdist_group(item))}
        write_atomic(gate.gate_dir / COLLECTION_FILE.format(worker_id), json.dumps(data).encode("utf-8"))
        tier_of = {nodeid: record.tier for nodeid, record in self.records.items()}
        self.tiers = self.barrier = SharedTierGate(
            gate.settings.fail_fast, SharedLog(gate.gate_dir, worker_id), tier_of
        )
        self.guard()  # the barrier is consulted before every test

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """As a plain run's, except that the record is not the ledger's: the report carries the
        test's tier and, on its last report, the record's measurements to the controller."""
        if report.when == "setup":
            self.gate.current = self.gate.record_for(report.nodeid)
        record = self._prepare(report)
        if record is None:
            return
        report.staging_tier = record.tier  # type: ignore[attr-defined]
        if report.when != "teardown":
            return
        self._annotate(report, record)
        report.staging_measured = record.measured()  # type: ignore[attr-defined]
        self.gate.current = None
        self._finished(record, record.nodeid in self.failed)

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        drop_lineless_entries(excinfo)

    def pytest_unconfigure(self) -> None:
        if self.barrier is not None:
            self.barrier.log.close()


def xdist_group(item: pytest.Item) -> str | None:
    """The item's ``xdist_group`` name(s), as ``--dist loadgroup`` groups them (several: joined)."""
    names = {
        mark.args[0] if mark.args else mark.kwargs.get("name", "default") for mark in item.iter_markers("xdist_group")
    }
    return "_".join(sorted(names)) or None
