"""The scheduler the gate gives xdist for ``--dist load``: tier by tier, no worker idle at a boundary.

xdist's own load scheduling hands out chunks of the whole collection. With a tier barrier that
costs time at every tier boundary: a worker whose chunk crosses into the next tier waits at the
barrier, while another still holds several tests of the tier everyone is waiting for
(bench/barrier.py measured 1.14x bare for three tiers of 20 I/O-bound tests under ``-n 4``).

:class:`TierLoadScheduling` sizes its chunks as xdist does, but from the tests of the *current
tier* that are still unsent (the earliest tier with unfinished tests), so the last tests of a
tier go out one at a time to whichever worker is free, and a chunk never runs on into the next
tier. An xdist worker runs a test only once it holds the one after it (pytest's ``nextitem``),
so a worker that has finished its share while others still run the tier gets just enough of the
next tier to wait at the barrier with, and more once the tier is done.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pytest
from xdist.scheduler import (
    LoadFileScheduling,
    LoadGroupScheduling,
    LoadScheduling,
    LoadScopeScheduling,
    WorkStealingScheduling,
)

from ..core.tiers import ORDER, TIERS


def _no_tier(nodeid: str) -> str | None:
    return None


class _TierOrder:
    """What the tier-aware ``load`` and ``worksteal`` schedulers share: each test's tier (by
    place), how many tests of each tier are unfinished, and the queue of unsent tests in tier order.
    Mixed in before xdist's scheduler, whose ``collection``, ``pending`` and checks it uses."""

    collection: list[str] | None  # xdist's, None until scheduled
    pending: list[int]
    node2collection: dict[Any, list[str]]

    def __init__(self, config: pytest.Config, log: Any = None, tier_of: Callable[[str], str | None] = _no_tier) -> None:
        super().__init__(config, log)  # type: ignore[call-arg]
        self._tier_of = tier_of
        #: Per collection index: the place of the test's tier in the run order.
        self._rank: list[int] = []
        #: Per tier (by place): tests not finished yet, sent or not.
        self._unfinished = [0] * len(TIERS)

    def _take_collection(self) -> bool:
        """The first schedule(): the collection, its tiers, and every test pending in tier order.
        False when the workers collected different tests (xdist's own check and message)."""
        if not self._check_nodes_have_same_collection():  # type: ignore[attr-defined]
            self.log("**Different tests collected, aborting run**")  # type: ignore[attr-defined]
            return False
        collection: list[str] = next(iter(self.node2collection.values()))
        self.collection = collection
        self._rank = [ORDER.get(self._tier_of(nodeid) or "", 0) for nodeid in collection]
        for rank in self._rank:
            self._unfinished[rank] += 1
        self.pending[:] = range(len(collection))
        self._sort_pending()
        return True

    def _sort_pending(self) -> None:
        rank = self._rank
        self.pending.sort(key=lambda index: (rank[index], index))

    def _current(self) -> int:
        """The earliest tier (by place) with a test not finished: the one the barrier holds for."""
        return next((rank for rank, left in enumerate(self._unfinished) if left > 0), len(TIERS))

    def _requeue(self, item: str) -> None:
        """A crashed test to run again (pytest-rerunfailures): unfinished once more, in tier order."""
        assert self.collection is not None
        index = self.collection.index(item)
        self._unfinished[self._rank[index]] += 1
        self.pending.append(index)
        self._sort_pending()


class TierLoadScheduling(_TierOrder, LoadScheduling):
    """xdist's load scheduling, one tier at a time (see the module's docstring).

    ``tier_of`` names a collected test's tier (None: not known, the first tier). Tests a crashed
    worker left behind go back into the queue in tier order, not at its end, so no worker ever
    waits at the barrier for a test queued behind it.
    """

    # -- the collection, in tier order ------------------------------------------------------

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is None:
            if not self._take_collection() or not self.collection:
                return
            # The first chunks as xdist's: a quarter of each worker's share of the first tier.
            unsent, nodes = self._unsent(self._current()), self.nodes
            if unsent >= 2 * len(nodes):
                chunk = max(2, min(unsent // len(nodes) // 4, self.maxschedchunk or unsent))
                for node in nodes:
                    self._send_tests(node, chunk)
        for node in self.nodes:
            self.check_schedule(node)

    def _unsent(self, current: int) -> int:
        """Tests of the current tier not handed out yet (pending is in tier order)."""
        unsent = 0
        for index in self.pending:
            if self._rank[index] != current:
                break
            unsent += 1
        return unsent

    # -- handing out tests ------------------------------------------------------------------

    def check_schedule(self, node: Any, duration: float = 0) -> None:
        if node.shutting_down:
            return
        if not self.pending:
            node.shutdown()
            return
        queued = len(self.node2pending[node])
        current = self._current()
        if self._rank[self.pending[0]] > current:
            # Every test of the current tier is out and some still run: the barrier is closed.
            # Just enough of the next tier for this worker to wait at it (xdist's nextitem).
            if queued < 2:
                self._send_tests(node, 2 - queued)
            return
        unsent = self._unsent(current)
        nodes = len(self.node2pending)
        if unsent < 2 * nodes:
            # The tier's last tests, one at a time to whichever worker is free. Never behind a
            # test of a later tier: that one would wait at the barrier for this one, queued
            # behind it on the same worker. A worker with nothing queued needs two (xdist's
            # nextitem): with the tier's very last test, the second is the next tier's first.
            held = self.node2pending[node]
            if queued >= 2 or any(self._rank[index] > current for index in held):
                return
            picks = self.pending[: 2 - queued] if unsent >= 2 - queued else self.pending[:1]
            if len(picks) + queued < 2 and len(self.pending) > unsent:
                picks = [picks[0], self.pending[unsent]]
            for index in picks:
                self.pending.remove(index)
            held.extend(picks)
            node.send_runtest_some(picks)
            return
        # xdist's chunk sizes, from the current tier's unsent tests rather than the whole queue:
        # at most about half of a worker's share at a time, down to one at a time at the tier's end.
        least = max(2, unsent // nodes // 4)
        most = max(2, unsent // nodes // 2)
        if queued >= least or (duration >= 0.1 and queued >= 2):
            return
        chunk: int | None = self.maxschedchunk  # --maxschedchunk, if given
        self._send_tests(node, min(most - queued, max(2 - queued, chunk or most)))

    # -- tests finished, put back -----------------------------------------------------------

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        self._unfinished[self._rank[item_index]] -= 1
        opens = self._unfinished[self._rank[item_index]] == 0
        super().mark_test_complete(node, item_index, duration)
        if opens:  # the tier is done, the barrier opens: every worker may take more now
            for other in self.nodes:
                if other is not node:
                    self.check_schedule(other)

    def mark_test_pending(self, item: str) -> None:
        self._requeue(item)
        for node in self.nodes:
            self.check_schedule(node)

    def remove_node(self, node: Any) -> str | None:
        pending = self.node2pending.pop(node)
        if not pending:
            return None
        assert self.collection is not None
        crashed = pending.pop(0)
        self._unfinished[self._rank[crashed]] -= 1  # it ends as a crash report: finished, failed
        self.pending.extend(pending)
        self._sort_pending()
        for other in self.nodes:
            self.check_schedule(other)
        return self.collection[crashed]


# -- loadscope, loadfile, loadgroup: whole scopes, tier by tier ------------------------------


class _TierQueue(OrderedDict[str, Any]):
    """xdist's work queue of scopes, handing out the earliest tier's first: ``popitem(last=False)``
    returns the first-inserted scope of the lowest tier (the key starts with the tier's place), so
    xdist's own order (collection order, or largest scope first) holds within a tier."""

    def popitem(self, last: bool = True) -> tuple[str, Any]:
        if last or not self:
            return super().popitem(last)
        key = min(self, key=_place)
        return key, self.pop(key)


def _place(key: str) -> int:
    return int(key.split(" ", 1)[0])


class TierScopes:
    """Over one of xdist's scope schedulers (loadscope, loadfile, loadgroup): its scopes, split by
    tier (a class or file whose tests span two tiers becomes one scope per tier), handed out in
    tier order. A worker holding a later tier's scope never gets an earlier tier's one (a crashed
    worker's scopes go back to the queue): it would wait at the barrier for tests queued behind."""

    workqueue: OrderedDict[str, dict[str, bool]]
    assigned_work: dict[Any, dict[str, dict[str, bool]]]

    def __init__(self, config: pytest.Config, log: Any = None, tier_of: Callable[[str], str | None] = _no_tier) -> None:
        super().__init__(config, log)  # type: ignore[call-arg]
        self.workqueue = _TierQueue()
        self._tier_of = tier_of
        #: Each plain scope and the tiers its tests belong to (to say which scopes were split).
        self._tiers_of_scope: dict[str, set[str]] = {}

    def _plain_scope(self, nodeid: str) -> str:
        """The scope xdist's mode gives the test."""
        return super()._split_scope(nodeid)  # type: ignore[misc]

    def _split_scope(self, nodeid: str) -> str:
        scope = self._plain_scope(nodeid)
        tier = self._tier_of(nodeid) or TIERS[0]
        self._tiers_of_scope.setdefault(scope, set()).add(tier)
        return f"{ORDER.get(tier, 0)} {scope}"

    def schedule(self) -> None:
        first = getattr(self, "collection", None) is None
        super().schedule()  # type: ignore[misc]
        if first and getattr(self, "collection", None):
            self._say_split()

    def _say_split(self) -> None:
        split = {scope: tiers for scope, tiers in self._tiers_of_scope.items() if len(tiers) > 1}
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")  # type: ignore[attr-defined]
        if split and reporter is not None:
            names = sorted(split)
            listed = ", ".join(f"{name} ({', '.join(t for t in TIERS if t in split[name])})" for name in names[:3]) + (
                f" and {len(names) - 3} more" if len(names) > 3 else ""
            )
            dist = self.config.getoption("dist")  # type: ignore[attr-defined]
            reporter.write_line(
                f"pytest-staging: --dist={dist}: {len(names)} scope(s) span tiers and run split by tier: {listed}"
            )

    def _reschedule(self, node: Any) -> None:
        if node.shutting_down or not self.workqueue:
            super()._reschedule(node)  # type: ignore[misc]
            return
        held = [_place(scope) for scope, unit in self.assigned_work[node].items() if not all(unit.values())]
        if held and min(map(_place, self.workqueue)) < max(held):
            return  # the earliest scope waiting would queue behind this worker's later-tier tests
        super()._reschedule(node)  # type: ignore[misc]


class TierLoadScopeScheduling(TierScopes, LoadScopeScheduling):
    """``--dist loadscope`` in tier order: each module or class whole to one worker, per tier."""


class TierLoadFileScheduling(TierScopes, LoadFileScheduling):
    """``--dist loadfile`` in tier order: each file whole to one worker, per tier."""


class TierLoadGroupScheduling(TierScopes, LoadGroupScheduling):
    """``--dist loadgroup`` in tier order: each ``xdist_group`` whole to one worker, per tier.

    ``group_of`` names a test's group from the workers' collections: xdist marks it on the node id
    (``test_x@billing``), which pytest 9 no longer lets a plugin change."""

    def __init__(
        self,
        config: pytest.Config,
        log: Any = None,
        tier_of: Callable[[str], str | None] = _no_tier,
        group_of: Callable[[str], str | None] = _no_tier,
    ) -> None:
        super().__init__(config, log, tier_of)
        self._group_of = group_of

    def _plain_scope(self, nodeid: str) -> str:
        return self._group_of(nodeid) or super()._plain_scope(nodeid)


# -- worksteal: blocks per worker, stealing, tier by tier ------------------------------------


class TierWorkStealing(_TierOrder, WorkStealingScheduling):
    """``--dist worksteal`` in tier order: the current tier's tests split into one block per free
    worker (xdist's even split), a worker that runs dry steals the tail of the fullest worker's
    block of that tier, and a later tier's tests go out only as the one test a worker holds to
    wait at the barrier with (xdist's nextitem) until the tier is done. A worker holding a later
    tier's test never gets, nor steals, an earlier tier's: it would wait at the barrier for a
    test queued behind it. No worker is shut down while any tier has tests to hand out."""

    steal_requested_from_node: Any

    def __init__(self, config: pytest.Config, log: Any = None, tier_of: Callable[[str], str | None] = _no_tier) -> None:
        super().__init__(config, log, tier_of)
        #: A steal came back empty (the tests had started): none again until a test finishes.
        self._refused = False

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is None and (not self._take_collection() or not self.collection):
            return
        self.check_schedule()

    def _holds_later(self, pending: list[int], current: int) -> bool:
        return any(self._rank[index] > current for index in pending)

    def check_schedule(self) -> None:
        up = {node: pending for node, pending in self.node2pending.items() if not node.shutting_down}
        idle = [node for node, pending in up.items() if len(pending) < 2]
        if not idle or self.collection is None:
            return
        current = self._current()
        rank = self._rank
        # The current tier's unsent tests: an even block to each free worker (none behind a later tier's).
        takers = [node for node in idle if not self._holds_later(up[node], current)]
        unsent = [index for index in self.pending if rank[index] == current]
        for i, node in enumerate(takers):
            share = unsent[: max(1, len(unsent) // (len(takers) - i))] if unsent else []
            del unsent[: len(share)]
            self._send(node, share)
        idle = [node for node, pending in up.items() if len(pending) < 2]
        if not idle:
            return
        # Steal the current tier's tests from the fullest worker, for a worker that can take them.
        if (
            not self._refused
            and self.steal_requested_from_node is None
            and any(not self._holds_later(up[n], current) for n in idle)
        ):
            victim = max(up, key=lambda n: sum(1 for i in up[n][2:] if rank[i] == current), default=None)
            if victim is not None:
                stealable = [i for i in up[victim][2:] if rank[i] == current]
                if stealable:  # never the test it runs nor the one after it (its nextitem)
                    steal = stealable[-max(1, len(stealable) // 2) :]
                    self.steal_requested_from_node = victim
                    victim.send_steal(steal)
                    return
        if self.steal_requested_from_node is not None:
            return
        if not self.pending:  # nothing left to hand out, nor worth stealing: as xdist, finish
            for node in idle:
                node.shutdown()
            return
        # The barrier is closed (the tier's tests are all out): the next tier's first tests, one
        # worker's nextitem at a time, while the tier runs out elsewhere.
        for node in idle:
            self._send(node, [index for index in self.pending if rank[index] > current][: 2 - len(up[node])])

    def _send(self, node: Any, indices: list[int]) -> None:
        if indices:
            chosen = set(indices)
            self.pending[:] = [index for index in self.pending if index not in chosen]
            self.node2pending[node].extend(indices)
            node.send_runtest_some(indices)

    def mark_test_complete(self, node: Any, item_index: int, duration: float | None = None) -> None:
        self._unfinished[self._rank[item_index]] -= 1
        self._refused = False
        super().mark_test_complete(node, item_index, duration)

    def remove_pending_tests_from_node(self, node: Any, indices: Any) -> None:
        self._refused = not indices
        super().remove_pending_tests_from_node(node, indices)  # puts them in pending, reschedules

    def mark_test_pending(self, item: str) -> None:
        self._requeue(item)
        self.check_schedule()

    def remove_node(self, node: Any) -> str | None:
        pending = self.node2pending.get(node) or []
        if pending:
            self._unfinished[self._rank[pending[0]]] -= 1  # it ends as a crash report
        crashed = super().remove_node(node)
        self._sort_pending()
        self.check_schedule()
        return crashed


#: The gate's scheduler for each --dist mode it keeps in tier order.
SCHEDULERS: dict[str, type] = {
    "load": TierLoadScheduling,
    "loadscope": TierLoadScopeScheduling,
    "loadfile": TierLoadFileScheduling,
    "loadgroup": TierLoadGroupScheduling,
    "worksteal": TierWorkStealing,
}
