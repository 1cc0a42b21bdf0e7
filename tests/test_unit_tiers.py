"""The tier gate as plain objects: serial fail-fast, and the xdist barrier over real log files.

Several ``SharedTierGate`` objects over one directory stand for the workers. The barrier's clock
and sleep are replaced by a fake whose ``sleep`` moves time on and lets the other "workers" act,
so waiting, the 60-second stall and every interleaving run deterministically and at once.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_staging.core.tiers import ORDER, TIERS, TierGate, skip_reason
from pytest_staging.gate import barrier
from pytest_staging.gate.barrier import SharedLog, SharedTierGate


class Waiting(Exception):
    """Raised by the fake sleep when the barrier would wait and the test says it must not."""


class Clock:
    """Stands in for the barrier module's ``time``: monotonic time moves only when the barrier
    sleeps, and each sleep first runs ``on_sleep`` (what the other workers do meanwhile)."""

    def __init__(self, on_sleep: Callable[[Clock], None] | None = None) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep = on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(self)


def never_wait(clock: Clock) -> None:
    raise Waiting(f"the barrier waited (t={clock.now})")


def script(*steps: Callable[[], object], limit: float = 1e6) -> Callable[[Clock], None]:
    """One step per sleep, in order; past the last step, time runs on until ``limit``."""
    pending = list(steps)

    def on_sleep(clock: Clock) -> None:
        if pending:
            pending.pop(0)()
        elif clock.now > limit:
            raise Waiting(f"still waiting at t={clock.now} after every step ran")

    return on_sleep


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock(never_wait)
    monkeypatch.setattr(barrier, "time", fake)
    return fake


SUITE = {"s1": "smoke", "s2": "smoke", "s3": "smoke", "c1": "contract", "c2": "contract", "l1": "load"}


class Workers:
    """One log writer per worker name, and a gate per worker, all over one directory."""

    def __init__(self, directory: Path, tier_of: dict[str, str], fail_fast: bool = True, poll: float = 0.01) -> None:
        self.directory = directory
        self.tier_of = tier_of
        self.fail_fast = fail_fast
        self.poll = poll
        self.logs: dict[str, SharedLog] = {}
        self.gates: dict[str, SharedTierGate] = {}

    def log(self, name: str) -> SharedLog:
        if name not in self.logs:
            self.logs[name] = SharedLog(self.directory, name)
        return self.logs[name]

    def gate(self, name: str) -> SharedTierGate:
        if name not in self.gates:
            self.gates[name] = SharedTierGate(self.fail_fast, self.log(name), dict(self.tier_of), poll=self.poll)
        return self.gates[name]

    def start(self, worker: str, nodeid: str) -> None:
        self.gate(worker).starting(nodeid)

    def done(self, worker: str, nodeid: str, failed: bool = False) -> None:
        self.gate(worker).finished(nodeid, self.tier_of[nodeid], failed)

    def crash(self, nodeid: str) -> None:
        """What the controller logs for a test whose worker died (Gate.crashed)."""
        self.log("controller").append("done", nodeid, True)

    def close(self) -> None:
        for log in self.logs.values():
            log.close()


@pytest.fixture
def workers(tmp_path):
    made: list[Workers] = []

    def make(tier_of: dict[str, str] = SUITE, **options) -> Workers:
        made.append(Workers(tmp_path, tier_of, **options))
        return made[-1]

    yield make
    for group in made:
        group.close()


# -- serial fail-fast -------------------------------------------------------------------------


def test_serial_gate_skips_every_later_tier_after_a_failure():
    gate = TierGate(fail_fast=True)
    gate.finished("s1", "smoke", False)
    assert [gate.before(tier) for tier in TIERS] == [None, None, None]
    gate.finished("c1", "contract", True)
    assert gate.before("smoke") is None
    assert gate.before("contract") is None  # a failure never skips its own tier
    assert gate.before("load") == "staging: contract tier failed"


def test_serial_gate_without_fail_fast_never_skips():
    gate = TierGate(fail_fast=False)
    gate.finished("s1", "smoke", True)
    assert [gate.before(tier) for tier in TIERS] == [None, None, None]


@given(
    fail_fast=st.booleans(),
    finished=st.lists(st.tuples(st.sampled_from(TIERS), st.booleans()), max_size=12),
    tier=st.sampled_from(TIERS),
)
def test_serial_gate_names_the_earliest_failed_earlier_tier(fail_fast, finished, tier):
    gate = TierGate(fail_fast)
    for index, (finished_tier, failed) in enumerate(finished):
        gate.finished(f"t{index}", finished_tier, failed)
    failed_earlier = [t for t in TIERS[: ORDER[tier]] if any(f and ft == t for ft, f in finished)]
    expected = skip_reason(failed_earlier[0]) if fail_fast and failed_earlier else None
    assert gate.before(tier) == expected


# -- the shared log ---------------------------------------------------------------------------


def test_every_reader_sees_every_writer_once(tmp_path):
    first, second = SharedLog(tmp_path, "gw0"), SharedLog(tmp_path, "gw1")
    reader = SharedLog(tmp_path, "gw2")
    try:
        first.append("start", "a")
        second.append("done", "b", True)
        assert sorted(reader.read_new()) == [("done", "b", True), ("start", "a", False)]
        assert reader.read_new() == []
        first.append("done", "a")
        assert reader.read_new() == [("done", "a", False)]
        # Each reader keeps its own offsets: the writer reads everything too.
        assert sorted(first.read_new()) == [("done", "a", False), ("done", "b", True), ("start", "a", False)]
    finally:
        for log in (first, second, reader):
            log.close()


def test_a_line_still_being_written_is_not_read(tmp_path):
    reader = SharedLog(tmp_path, "reader")
    line = json.dumps(["done", "tests/test_a.py::test_ü[x]", True]).encode() + b"\n"
    try:
        with open(tmp_path / "gw0.log", "ab", buffering=0) as writer:
            for cut in (1, len(line) // 2, len(line) - 1):  # a writer mid-line, cut anywhere
                writer.write(line[:cut])
                assert reader.read_new() == []
                writer.write(line[cut:])
                assert reader.read_new() == [("done", "tests/test_a.py::test_ü[x]", True)]
            (tmp_path / "notes.txt").write_text("not a log\n")
            assert reader.read_new() == []
    finally:
        reader.close()


def test_an_appended_line_is_readable_at_once(tmp_path):
    # Line-buffered: a reader polling the directory never waits for a writer's flush.
    writer, reader = SharedLog(tmp_path, "gw0"), SharedLog(tmp_path, "gw1")
    try:
        writer.append("start", "a")
        assert (tmp_path / "gw0.log").read_text() == '["start", "a", false]\n'
        assert reader.read_new() == [("start", "a", False)]
    finally:
        writer.close()
        reader.close()


# -- the barrier ------------------------------------------------------------------------------


def test_a_later_tier_waits_for_every_earlier_tier_test(workers, clock):
    group = workers()
    group.start("gw0", "s1")
    group.start("gw1", "s2")
    group.done("gw0", "s1")
    steps = [
        lambda: group.done("gw1", "s2"),
        lambda: group.start("gw0", "s3"),
        lambda: None,  # nothing happens for a while: still waiting
        lambda: group.done("gw0", "s3"),
    ]
    clock.on_sleep = script(*steps, limit=0)
    assert group.gate("gw2").before("contract") is None
    assert clock.sleeps == len(steps)  # opened right after the last smoke test, not before
    # Once open, a tier stays open without reading or waiting again.
    clock.on_sleep = never_wait
    assert group.gate("gw2").before("contract") is None


def test_load_waits_for_contract_too(workers, clock):
    group = workers()
    for nodeid in ("s1", "s2", "s3"):
        group.done("gw0", nodeid)
    group.start("gw1", "c1")
    steps = [lambda: group.done("gw1", "c1"), lambda: group.done("gw0", "c2")]
    clock.on_sleep = script(*steps, limit=0)
    gate = group.gate("gw2")
    assert gate.before("smoke") is None  # nothing comes before smoke
    assert clock.sleeps == 0
    assert gate.before("contract") is None
    assert clock.sleeps == 0
    assert gate.before("load") is None
    assert clock.sleeps == 2


def test_a_failure_in_an_earlier_tier_skips_at_once(workers, clock):
    group = workers()
    group.start("gw0", "s1")
    group.start("gw1", "s2")  # still running: the failure does not wait for it
    group.done("gw0", "s1", failed=True)
    gate = group.gate("gw2")
    assert gate.before("contract") == "staging: smoke tier failed"
    assert gate.before("load") == "staging: smoke tier failed"
    assert clock.sleeps == 0


def test_a_failure_while_waiting_skips_at_once(workers, clock):
    group = workers()
    group.start("gw0", "s1")
    clock.on_sleep = script(lambda: group.done("gw0", "s1", failed=True), limit=0)
    assert group.gate("gw1").before("contract") == "staging: smoke tier failed"
    assert clock.sleeps == 1


def test_without_fail_fast_a_failure_counts_as_done(workers, clock):
    group = workers(fail_fast=False)
    for nodeid in ("s1", "s2"):
        group.done("gw0", nodeid, failed=True)
    clock.on_sleep = script(lambda: group.done("gw1", "s3"), limit=0)
    assert group.gate("gw2").before("contract") is None
    assert clock.sleeps == 1


def test_a_crashed_test_logged_by_the_controller_is_done_and_failed(workers, clock):
    group = workers()
    group.done("gw0", "s1")
    group.done("gw0", "s2")
    group.start("gw1", "s3")  # gw1 dies running s3
    clock.on_sleep = script(lambda: group.crash("s3"), limit=0)
    assert group.gate("gw0").before("contract") == "staging: smoke tier failed"

    clock.on_sleep = never_wait
    relaxed = workers(fail_fast=False)
    assert relaxed.gate("gw3").before("contract") is None  # the crash line counts as done


def test_a_test_ended_twice_is_counted_once(workers, clock):
    # The controller may log a crash for a test whose own "done" line is already there.
    group = workers(fail_fast=False)
    group.done("gw0", "s1")
    group.crash("s1")
    group.done("gw0", "s2")
    with pytest.raises(Waiting):
        group.gate("gw1").before("contract")  # s3 has not finished: s1 twice is not s3


def test_lines_of_tests_outside_the_collection_are_ignored(workers, clock):
    group = workers({"s1": "smoke", "c1": "contract"})
    group.log("gw0").append("done", "other::test", True)
    with pytest.raises(Waiting):
        group.gate("gw1").before("contract")
    clock.on_sleep = script(lambda: group.done("gw0", "s1"), limit=0)
    assert group.gate("gw1").before("contract") is None


def test_a_partial_done_line_does_not_open_the_barrier(workers, clock):
    group = workers({"s1": "smoke", "c1": "contract"})
    line = json.dumps(["done", "s1", False]) + "\n"
    with open(group.directory / "gw0.log", "a", encoding="utf-8") as writer:
        writer.write(line[:-3])
        writer.flush()
        with pytest.raises(Waiting):
            group.gate("gw1").before("contract")
        writer.write(line[-3:])
    assert group.gate("gw1").before("contract") is None


# -- the stall path: no test running anywhere for STALL_SECONDS ---------------------------------


@pytest.fixture
def stall(monkeypatch):
    monkeypatch.setattr(barrier, "STALL_SECONDS", 3.0)
    return 3.0


def test_the_barrier_gives_up_when_nothing_runs_for_the_stall_time(workers, clock, stall):
    group = workers(poll=0.5)
    group.done("gw0", "s1")
    group.done("gw0", "s2")  # s3 never starts: its worker went away unnoticed
    clock.on_sleep = script(limit=10 * stall)
    gate = group.gate("gw1")
    reason = gate.before("contract")
    assert reason == "staging: 1 earlier-tier test(s) never finished (a crashed worker?); contract tier not started"
    assert stall < clock.now <= stall + 0.5  # gave up at the first poll past the stall time
    # Given up once, the tier is never waited for again.
    clock.on_sleep = never_wait
    assert gate.before("contract") == reason


def test_the_stall_reason_counts_every_missing_earlier_test(workers, clock, stall):
    group = workers(fail_fast=False, poll=1.0)
    group.done("gw0", "s1")
    clock.on_sleep = script(limit=10 * stall)
    reason = group.gate("gw1").before("load")
    assert reason == "staging: 4 earlier-tier test(s) never finished (a crashed worker?); load tier not started"


def test_any_new_line_restarts_the_stall_time(workers, clock, stall):
    group = workers(poll=0.5)
    group.done("gw0", "s1")
    group.done("gw0", "s2")
    quiet = [lambda: None] * 4  # two seconds: less than the stall time
    clock.on_sleep = script(
        *quiet, lambda: group.log("gw0").append("start", "c1"), lambda: group.done("gw0", "c1"), limit=10 * stall
    )
    reason = group.gate("gw1").before("contract")
    assert reason is not None and "never finished" in reason
    assert clock.now > 3.0 + stall  # counted from the last line (t=3), not from the start


def test_a_test_still_running_somewhere_is_waited_for_past_the_stall_time(workers, clock, stall):
    group = workers(poll=1.0)
    group.done("gw0", "s1")
    group.done("gw0", "s2")
    group.start("gw0", "s3")  # a slow smoke test: running, so this is no stall
    quiet = [lambda: None] * int(5 * stall)
    clock.on_sleep = script(*quiet, lambda: group.done("gw0", "s3"), limit=0)
    assert group.gate("gw1").before("contract") is None
    assert clock.now > 5 * stall


def test_a_worker_waiting_at_the_barrier_is_not_a_running_test(workers, clock, stall):
    group = workers(poll=0.5)
    group.done("gw0", "s1")
    group.done("gw0", "s2")  # s3 is lost
    clock.on_sleep = script(limit=10 * stall)
    # The order the gate uses: the test's start is logged, then the barrier is asked; another
    # worker's test waits at the same barrier, and one at the load barrier.
    group.start("gw2", "c2")
    group.start("gw3", "l1")
    group.start("gw1", "c1")
    reason = group.gate("gw1").before("contract")
    assert reason is not None and "never finished" in reason


# -- any interleaving -------------------------------------------------------------------------


@st.composite
def runs(draw):
    """A collection, which worker runs each test, how each test ends (or not yet), and the
    order the events reach the files, cut at a random point."""
    count = draw(st.integers(1, 7))
    tier_of = {f"t{i}": draw(st.sampled_from(TIERS)) for i in range(count)}
    worker_count = draw(st.integers(1, 4))
    ends = {nodeid: draw(st.sampled_from(["pass", "fail", "crash", "running", "unstarted"])) for nodeid in tier_of}
    tokens = []
    for nodeid, end in ends.items():
        worker = f"gw{draw(st.integers(0, worker_count - 1))}"
        if end == "unstarted":
            continue
        tokens.append((worker, nodeid))
        if end != "running":
            tokens.append((worker, nodeid))
    order = draw(st.permutations(tokens))
    events, seen = [], set()
    for worker, nodeid in order:  # a test's first token is its start, the second its end
        if nodeid not in seen:
            seen.add(nodeid)
            events.append(("start", worker, nodeid))
        elif ends[nodeid] == "crash":
            events.append(("crash", "controller", nodeid))
        else:
            events.append(("done", worker, nodeid, ends[nodeid] == "fail"))
    probes = draw(st.lists(st.tuples(st.integers(0, len(events)), st.sampled_from(TIERS)), min_size=1, max_size=6))
    return tier_of, events, sorted(probes)


def expected_before(tier_of: dict[str, str], events: list[tuple], tier: str) -> str | None:
    """What the barrier must say given the events so far, or ``Waiting`` when it must wait."""
    earlier = TIERS[: ORDER[tier]]
    done: dict[str, bool] = {}
    for event in events:
        if event[0] == "done":
            done.setdefault(event[2], event[3])
        elif event[0] == "crash":
            done.setdefault(event[2], True)
    failed = [t for t in earlier if any(tier_of[n] == t and f for n, f in done.items())]
    if failed:
        return skip_reason(failed[0])
    if all(n in done for n, t in tier_of.items() if t in earlier):
        return None
    return "Waiting"


@given(runs())
def test_the_barrier_opens_only_when_every_earlier_test_is_done_and_none_failed(run):
    tier_of, events, probes = run
    with tempfile.TemporaryDirectory() as directory, pytest.MonkeyPatch.context() as patch:
        patch.setattr(barrier, "time", Clock(never_wait))
        group = Workers(Path(directory), tier_of)
        observer = group.gate("observer")  # a worker asking at several moments
        try:
            written = 0
            for probe, (at, tier) in enumerate(probes):
                for event in events[written:at]:
                    if event[0] == "start":
                        group.start(event[1], event[2])
                    elif event[0] == "done":
                        group.done(event[1], event[2], event[3])
                    else:
                        group.crash(event[2])
                written = max(written, at)
                fresh = group.gate(f"fresh{probe}")  # one asking for the first time (its own read offsets)
                for gate in (observer, fresh):
                    try:
                        said = gate.before(tier)
                    except Waiting:
                        said = "Waiting"
                    assert said == expected_before(tier_of, events[:written], tier), (tier, events[:written])
        finally:
            group.close()
