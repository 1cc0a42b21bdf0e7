"""The xdist controller's role: it collects and runs nothing. It hands the pre-flight, the gate
directory and the trace to the workers, learns each worker's collection as soon as the worker
reports it, folds the workers' reports into the ledger, counts crashed tests as failed (but not
tests a Ctrl-C interrupted), and keeps the scheduler's queue in tier order. The verdict is the
:class:`.issuer.Issuer`'s, as on a plain run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .barrier import SharedLog
from .worker import COLLECTION_FILE, workerinput

if TYPE_CHECKING:
    from .state import Gate


class Controller:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        gate.gate_dir = Path(tempfile.mkdtemp(prefix="pytest-staging-"))
        #: Tests of crashed workers, for the barrier: counted as finished and failed.
        self.crash_log = SharedLog(gate.gate_dir, "controller")
        self.workers: set[str] = set()
        #: Collection files already merged into the ledger.
        self._merged: set[str] = set()
        #: Under --dist loadgroup: each grouped test's xdist_group, from the workers' collections.
        self.groups: dict[str, str] = {}
        #: Workers that went down interrupted: the test each was running did not crash.
        self._interrupted: set[str] = set()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput.update(workerinput(self.gate))

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        from .scheduler import SCHEDULERS

        scheduler = SCHEDULERS.get(config.getoption("dist"))
        if scheduler is None:
            return None

        records = self.gate.records  # the workers' collections are merged before xdist schedules

        def tier_of(nodeid: str) -> str | None:
            record = records.get(nodeid)
            return record.tier if record is not None else None

        if config.getoption("dist") == "loadgroup":
            return scheduler(config, log, tier_of, self.groups.get)
        return scheduler(config, log, tier_of)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodeready(self, node: Any) -> None:
        self.workers.add(node.gateway.id)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """A worker finished; one that went down with an error crashed, unless it was interrupted
        (Ctrl-C reaches the workers too): then the run was interrupted, and the test the worker
        was running did not crash."""
        if error == "keyboard-interrupt":
            self._interrupted.add(node.gateway.id)
            self.gate.ledger.session.interrupted = True
        elif error is not None:
            self.gate.ledger.session.crashed_workers += 1

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        """A worker died running ``crashitem``: count it as finished and failed for the barrier."""
        self.crash_log.append("done", crashitem, True)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Any) -> None:
        """A worker reported its collection: merge the file it wrote just before."""
        assert self.gate.gate_dir is not None
        self._merge(self.gate.gate_dir / COLLECTION_FILE.format(node.gateway.id))

    def merge_collections(self) -> None:
        """Collections not merged yet (the run stopped before the controller read them)."""
        assert self.gate.gate_dir is not None
        for path in sorted(self.gate.gate_dir.glob(COLLECTION_FILE.format("*"))):
            self._merge(path)

    def _merge(self, path: Path) -> None:
        if path.name in self._merged:
            return
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):  # never written (the worker died first), or cut short
            return
        self._merged.add(path.name)
        self.groups.update(data.get("groups", {}))
        ledger = self.gate.ledger
        ledger.collected_tiers |= set(data["collectedTiers"])
        for tier, count in data["deselected"].items():
            # Every worker collects and deselects the same tests: take the count, do not add.
            ledger.deselected[tier] = max(ledger.deselected.get(tier, 0), count)
        ledger.unpinned = ledger.unpinned or data["unpinned"]  # the same on every worker
        ledger.expect(tuple(test) for test in data["tests"])
        if "shard" in data:  # every worker kept the same share of the same collection
            from ..core.shards import Shard

            ledger.shard = Shard(*data["shard"])
        self.gate.expired.update(data["expired"])
        self.gate.stale = data["stale"]  # every worker collects the same tests: any one's list will do

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        extra = report.__dict__
        if report.when == "???" and self._interrupted:
            node = extra.get("node")
            if node is not None and node.gateway.id in self._interrupted:
                return  # "crashed" by Ctrl-C: the test was interrupted and stays notrun
        self.gate.ledger.add_report(report, report.nodeid, extra.get("staging_tier"), extra.get("staging_measured"))

    # trylast: after the issuer's last chance to read the workers' collection files.
    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        self.crash_log.close()
        assert self.gate.gate_dir is not None
        shutil.rmtree(self.gate.gate_dir, ignore_errors=True)
