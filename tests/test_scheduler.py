"""The tier-aware xdist scheduler, driven by a simulation of xdist workers and the tier barrier.

The simulation keeps the two rules that make a tier boundary cost time: an xdist worker starts a
test only once it holds the next one too (pytest's ``nextitem``; at shutdown it runs what it
has), and a test of a later tier starts only when every test of the earlier tiers has finished
(the gate's barrier); and xdist's controller shuts every worker down once nothing is left
to hand out. The real thing, end to end, is in test_tiers.py and bench/barrier.py.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdist.scheduler import LoadScheduling

from pytest_staging.core.tiers import ORDER, TIERS
from pytest_staging.gate.scheduler import (
    TierLoadFileScheduling,
    TierLoadScheduling,
    TierLoadScopeScheduling,
    TierWorkStealing,
)


class FakeNode:
    def __init__(self, name: str) -> None:
        self.gateway = type("Gateway", (), {"id": name})()
        self.shutting_down = False
        self.queue: list[int] = []  # sent, not finished, in the order sent
        self.running: tuple[int, float] | None = None

    def send_runtest_some(self, indices: list[int]) -> None:
        self.queue.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True

    def send_steal(self, indices: list[int]) -> None:
        """As an xdist worker: all of them or none, never the test it runs."""
        waiting = self.queue[1:] if self.running is not None else self.queue
        stolen = list(indices) if set(indices) <= set(waiting) else []
        self.queue = [index for index in self.queue if index not in stolen]
        self.scheduler.remove_pending_tests_from_node(self, stolen)


def simulate(scheduler, tiers: list[str], durations: list[float], workers: int, per_file: int = 1) -> dict:
    """Run the collection through ``scheduler``; the makespan and when each test ran. Tests are
    ``per_file`` to a file (what loadfile and loadscope hand out whole)."""
    collection = [f"test_{i // per_file}.py::test_{i}_{tier}" for i, tier in enumerate(tiers)]
    nodes = [FakeNode(f"gw{i}") for i in range(workers)]
    for node in nodes:
        node.scheduler = scheduler
        scheduler.add_node(node)
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()

    def dsession_rule() -> None:  # xdist's DSession: nothing left to hand out, all shut down
        if scheduler.tests_finished:
            for node in nodes:
                node.shutdown()

    dsession_rule()
    unfinished = [sum(1 for tier in tiers if ORDER[tier] == rank) for rank in range(len(TIERS))]
    started: dict[int, float] = {}
    ran_on: dict[int, str] = {}
    ended: dict[int, float] = {}
    now = 0.0
    while len(ended) < len(collection):
        for node in nodes:
            if node.running is None and node.queue and (len(node.queue) >= 2 or node.shutting_down):
                index = node.queue[0]
                rank = ORDER[tiers[index]]
                if all(unfinished[earlier] == 0 for earlier in range(rank)):  # the barrier
                    assert index not in started, "a test was sent twice"
                    started[index] = now
                    ran_on[index] = node.gateway.id
                    node.running = (index, now + durations[index])
        running = [node for node in nodes if node.running is not None]
        assert running, f"deadlock: nothing runs, {len(collection) - len(ended)} tests left"
        node = min(running, key=lambda n: n.running[1])
        index, now = node.running
        node.running = None
        node.queue.remove(index)
        ended[index] = now
        unfinished[ORDER[tiers[index]]] -= 1
        scheduler.mark_test_complete(node, index, durations[index])
        dsession_rule()
    return {"makespan": now, "started": started, "ended": ended, "ran_on": ran_on}


def assert_every_test_once_in_tier_order(result: dict, tiers: list[str]) -> None:
    assert sorted(result["ended"]) == list(range(len(tiers)))
    for earlier, later in zip(TIERS, TIERS[1:], strict=False):
        ends = [result["ended"][i] for i, tier in enumerate(tiers) if tier == earlier]
        starts = [result["started"][i] for i, tier in enumerate(tiers) if tier == later]
        if ends and starts:
            assert max(ends) <= min(starts)


def ideal(tiers: list[str], seconds: float, workers: int) -> float:
    """Equal durations: each tier takes its tests' rounds over the workers, one tier after another."""
    return sum(math.ceil(tiers.count(tier) / workers) * seconds for tier in set(tiers))


class FakeConfig:
    """What xdist's schedulers read of the config: the workers (--tx) and --maxschedchunk."""

    def __init__(self, workers: int, dist: str = "load") -> None:
        self.options = {"tx": [f"{workers}*popen"], "maxschedchunk": None, "dist": dist}
        self.option = type("Option", (), {"loadscopereorder": True})()
        self.pluginmanager = type("PluginManager", (), {"get_plugin": staticmethod(lambda name: None)})()

    def getvalue(self, name: str):
        return self.options[name]

    getoption = getvalue


def tier_of(nodeid: str) -> str:
    return nodeid.rsplit("_", 1)[1]  # the simulation's node ids end in their tier


def make(cls, workers: int):
    config = FakeConfig(workers)
    return cls(config, tier_of=tier_of) if cls.__module__.startswith("pytest_staging") else cls(config)


def test_three_tiers_of_twenty_on_four_workers_lose_nothing_at_the_boundaries():
    tiers = ["smoke"] * 20 + ["contract"] * 20 + ["load"] * 20
    result = simulate(make(TierLoadScheduling, 4), tiers, [0.3] * 60, 4)
    assert result["makespan"] == pytest.approx(ideal(tiers, 0.3, 4))  # 3 tiers x 5 rounds x 0.3 s


def test_xdist_load_scheduling_loses_time_at_the_boundaries():
    """What the tier-aware scheduler fixes (and proof this simulation can tell them apart)."""
    tiers = ["smoke"] * 20 + ["contract"] * 20 + ["load"] * 20
    result = simulate(make(LoadScheduling, 4), tiers, [0.3] * 60, 4)
    assert result["makespan"] > ideal(tiers, 0.3, 4) + 0.29


def test_the_last_tests_of_a_tier_go_to_whichever_worker_is_free():
    """Uneven durations: one long test must not hold short ones of its tier queued behind it."""
    tiers = ["smoke"] * 8 + ["contract"] * 8
    durations = [2.0] + [0.1] * 15
    result = simulate(make(TierLoadScheduling, 2), tiers, durations, 2)
    # smoke: the long test and the one queued with it (xdist's nextitem) on one worker, 2.1 s;
    # the six other short ones on the other worker meanwhile; then contract, 4 rounds of 0.1 s.
    assert result["makespan"] == pytest.approx(2.5)


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=25), min_size=3, max_size=3),
    workers=st.integers(min_value=1, max_value=8),
    durations=st.lists(st.sampled_from([0.05, 0.1, 0.3, 0.5, 1.0]), min_size=1, max_size=7),
)
def test_any_suite_runs_every_test_once_in_tier_order(sizes, workers, durations):
    tiers = [tier for tier, size in zip(TIERS, sizes, strict=True) for _ in range(size)]
    if not tiers:
        return
    scheduler = make(TierLoadScheduling, workers)
    times = [durations[i % len(durations)] for i in range(len(tiers))]
    result = simulate(scheduler, tiers, times, workers)
    assert_every_test_once_in_tier_order(result, tiers)
    # Never worse than xdist's own scheduling by more than one test per tier (the barrier lets no
    # tier fill the gap at another's end, and a worker never holds a later tier's test before an
    # earlier one's, which xdist's cycling of very small suites can do).
    baseline = simulate(make(LoadScheduling, workers), tiers, times, workers)
    assert result["makespan"] <= baseline["makespan"] + len(set(tiers)) * max(times) + 1e-9


def test_tests_of_a_crashed_worker_go_back_in_tier_order():
    tiers = ["smoke"] * 6 + ["contract"] * 6
    scheduler = make(TierLoadScheduling, 2)
    collection = [f"test_{i}.py::test_{tier}" for i, tier in enumerate(tiers)]
    nodes = [FakeNode("gw0"), FakeNode("gw1")]
    for node in nodes:
        scheduler.add_node(node)
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()
    held = list(nodes[0].queue)
    crashed = scheduler.remove_node(nodes[0])
    assert crashed == collection[held[0]]
    assert scheduler.pending == sorted(scheduler.pending, key=lambda i: (ORDER[tiers[i]], i))
    assert set(held[1:]) <= set(scheduler.pending) | set(nodes[1].queue)


@pytest.mark.parametrize(("sizes", "workers"), [((3, 0, 0), 4), ((1, 1, 1), 8), ((0, 0, 1), 2), ((5, 1, 0), 3)])
def test_fewer_tests_than_workers(sizes, workers):
    tiers = [tier for tier, size in zip(TIERS, sizes, strict=True) for _ in range(size)]
    result = simulate(make(TierLoadScheduling, workers), tiers, [0.1] * len(tiers), workers)
    assert len(result["ended"]) == len(tiers)


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=20), min_size=3, max_size=3),
    workers=st.integers(min_value=1, max_value=6),
    per_file=st.integers(min_value=1, max_value=5),
    order=st.permutations(range(60)),
    cls=st.sampled_from([TierLoadScopeScheduling, TierLoadFileScheduling, TierWorkStealing]),
)
def test_scope_modes_run_every_test_once_in_tier_order(sizes, workers, per_file, order, cls):
    """Files mixing tiers (in any order), whole files to one worker: every test once, tiers in
    order, no deadlock, and each file's tests of one tier on one worker."""
    tiers = [TIERS[i % 3] for i in order if sizes[i % 3] > i // 3]
    if not tiers:
        return
    scheduler = make(cls, workers)
    result = simulate(scheduler, tiers, [0.1] * len(tiers), workers, per_file)
    assert_every_test_once_in_tier_order(result, tiers)
    by_scope = {}
    for index, node in result["ran_on"].items():
        by_scope.setdefault((index // per_file, tiers[index]), set()).add(node)
    if cls is not TierWorkStealing:
        assert all(len(nodes) == 1 for nodes in by_scope.values()), by_scope


def test_worksteal_lets_an_idle_worker_steal_the_tiers_tail():
    """One long test: the other worker steals the rest of its block instead of waiting."""
    tiers = ["smoke"] * 8 + ["contract"] * 4
    durations = [2.0] + [0.1] * 11
    result = simulate(make(TierWorkStealing, 2), tiers, durations, 2)
    # Without stealing, the long test's block (4 smoke tests) would end at 2.3 s; with it the other
    # worker takes the two it can (the one after the long test stays: its nextitem).
    assert result["makespan"] <= 2.0 + 0.1 + 0.2 + 1e-9


def test_worksteal_survives_refused_steals(monkeypatch):
    """A worker refuses a steal when a requested test has started meanwhile: the scheduler must not
    ask again at once (a message storm), and every test still runs, in tier order."""
    monkeypatch.setattr(
        FakeNode, "send_steal", lambda self, indices: self.scheduler.remove_pending_tests_from_node(self, [])
    )
    tiers = ["smoke"] * 8 + ["contract"] * 4
    result = simulate(make(TierWorkStealing, 2), tiers, [2.0] + [0.1] * 11, 2)
    assert len(result["ended"]) == len(tiers)
    assert max(result["ended"][i] for i in range(8)) <= min(result["started"][i] for i in range(8, 12))
