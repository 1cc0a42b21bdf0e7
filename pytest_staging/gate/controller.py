"""pytest-xdist wiring: hand the pre-flight and the tier-gate directory to workers, learn each
worker's collection as soon as it reports it, count crashed tests as failed (but not tests a
Ctrl-C interrupted), and keep the scheduler's queue in tier order.

Registered only when xdist is installed; imported lazily so a plain run never loads xdist.
"""

from __future__ import annotations

from typing import Any

import pytest

from .state import Gate


class XdistHooks:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput.update(self.gate.workerinput())

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        self.gate.crashed(crashitem)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodeready(self, node: Any) -> None:
        self.gate.worker_up(node.gateway.id)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.gate.worker_down(node.gateway.id, error)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Any) -> None:
        self.gate.worker_collected(node.gateway.id)

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getoption("dist") != "load":
            return None
        return make_tier_scheduling(config, log)


def make_tier_scheduling(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScheduling

    class TierLoadScheduling(LoadScheduling):
        """xdist's load scheduling, except that tests a crashed worker left behind go back into
        the queue in collection (tier) order instead of at its end, so no worker ever waits at
        the tier barrier for a test that sits behind it in the queue."""

        _put_back = False

        def remove_node(self, node: Any) -> str | None:
            self._put_back = True
            return super().remove_node(node)

        def mark_test_pending(self, item: str) -> None:
            self._put_back = True
            super().mark_test_pending(item)

        def check_schedule(self, node: Any, duration: float = 0) -> None:
            if self._put_back:
                self.pending.sort()
                self._put_back = False
            super().check_schedule(node, duration)

    return TierLoadScheduling(config, log)
