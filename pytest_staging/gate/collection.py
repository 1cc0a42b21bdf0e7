"""Collection: each test's tier, destructive flag and quarantine entry; tiers in run order;
deselection noticed, whoever made it. Registered in every process that collects (a plain run,
each xdist worker); the ledger learns the collection from here.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Final

import pytest

from ..core import tiers

if TYPE_CHECKING:
    from .state import Gate

#: What the gate knows of an item, its class: ``(tier, destructive, quarantine entry or None)``.
#: A tuple, shared by every plain test of a tier: no object per test for the collector to track.
TIER: Final = 0  # the index of the tier in an item's class
_GATE_MARKS = frozenset((*tiers.TIERS, "destructive", "quarantine"))


class Collection:
    def __init__(self, gate: Gate, finished: Callable[[pytest.Session], None] | None = None) -> None:
        self.gate = gate
        self.settings = gate.settings
        #: Called once the ledger knows the collection (an xdist worker publishes it then).
        self.finished = finished
        self.collected_tiers: set[str] = set()
        self._marks_cache: dict[int, tuple[str, ...]] = {}
        #: Each collected item's class by id(item), from its collector's report until the ledger
        #: knows the collection. Speed: not in the item's stash, where every access is two Python
        #: calls, three per test: 7M instructions of 5,000 tests (bench/overhead.py).
        self._classes: dict[int, tuple[str, bool, Any]] = {}
        #: The items classified: alive while their ids are keys of _classes.
        self._classified: list[pytest.Item] = []
        self._plain = (self.settings.default_tier, False, None)  # the class of most tests
        self._quarantine_marked = False  # some test has @pytest.mark.quarantine
        #: Every collected item before any deselection, and the ids of those reported deselected.
        self._collected: list[pytest.Item] = []
        self._deselected: set[int] = set()

    # -- each item's class ------------------------------------------------------------------

    def _marks(self, node: Any) -> tuple[str, ...]:
        """Tier and destructive marker names on a node and its parents; parents' answers cached,
        so collecting thousands of tests walks each module's markers once. Keyed by id: a node's
        hash is a Python call, and the parents stay alive until the cache is cleared."""
        cache = self._marks_cache
        parent = node.parent
        inherited = cache.get(id(parent)) if parent is not None else ()
        if inherited is None:
            inherited = cache[id(parent)] = self._marks(parent)
        if not node.own_markers:  # most tests: nothing of their own
            return inherited
        own = tuple(mark.name for mark in node.own_markers if mark.name in _GATE_MARKS)
        return inherited + own if own else inherited

    def _classify(self, item: pytest.Item) -> str | None:
        """Record the item's tier, destructive flag and quarantine entry; a problem with its
        markers comes back as one line (for a collection error)."""
        marks = self._marks(item)
        self._classified.append(item)
        if not marks:  # most tests: the default tier, nothing else to look at
            self._classes[id(item)] = self._plain
            return None
        found = tiers.tier_markers(marks)
        tier = found[0] if found else self.settings.default_tier
        self._classes[id(item)] = (tier, "destructive" in marks, None)
        if len(found) > 1:
            return (
                f"staging: {item.nodeid} has tier markers {' and '.join(found)}; "
                "a test belongs to exactly one tier, keep one marker"
            )
        if "quarantine" in marks:
            from ..core.errors import ConfigError
            from ..core.quarantine import entry_from

            mark = item.get_closest_marker("quarantine")
            assert mark is not None
            try:
                if mark.args:
                    raise ConfigError("", "", "give reason=, owner=, until= (and ticket=) as keyword arguments")
                entry = entry_from({"test": item.nodeid, **mark.kwargs}, "", "quarantine", "marker")
                self._classes[id(item)] = (tier, "destructive" in marks, entry)
                self._quarantine_marked = True
            except ConfigError as exc:
                field = exc.field.removeprefix("quarantine.")
                return f"staging: {item.nodeid}: @pytest.mark.quarantine{': ' + field if field else ''}: {exc.problem}"
        return None

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, Any]:
        report = yield
        if report.passed and report.result:
            cache, plain, classes, classified = self._marks_cache, self._plain, self._classes, self._classified
            for node in report.result:
                if not isinstance(node, pytest.Item):
                    continue
                if not node.own_markers and cache.get(id(node.parent)) == ():
                    # Speed: most tests (no marker of their own nor inherited), without the two
                    # calls of _classify: 5M instructions of 5,000 tests (bench/overhead.py).
                    classes[id(node)] = plain
                    classified.append(node)
                elif (problem := self._classify(node)) is not None:
                    report.outcome = "failed"
                    report.longrepr = problem
                    report.result = []
                    break
        self.gate.scrub.report(report)
        return report

    def _quarantine(self, items: list[pytest.Item]) -> None:
        """Match quarantine entries to the collected tests; active ones run as non-strict xfail,
        so a failure does not block (pytest counts it xfailed) and a pass is an xpass."""
        from ..core.quarantine import find, today_utc

        entries = self.settings.quarantine
        today = today_utc()
        matched: set[Any] = set()
        classes = self._classes
        for item in items:
            tier, destructive, entry = classes[id(item)]
            if entry is None and entries:
                entry = find(entries, item.nodeid)
                if entry is not None:
                    classes[id(item)] = (tier, destructive, entry)
            if entry is None:
                continue
            matched.add(entry)
            if entry.active(today):
                reason = f"quarantined: {entry.reason} (owner {entry.owner}, until {entry.until.isoformat()})"
                item.add_marker(pytest.mark.xfail(reason=reason, strict=False, run=True))
            else:
                self.gate.expired.setdefault(entry.describe(), entry.to_dict(today))
        # Stale: matches no collected test, though the run collected where the entry points
        # (`pytest tests/smoke/` says nothing of entries for tests elsewhere).
        scope = collected_scope(self.gate.config)
        self.gate.stale = [
            entry.to_dict(today) for entry in entries if entry not in matched and in_scope(entry.test, scope)
        ]

    # -- order and selection ----------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None, None, None]:
        # Before -k/-m and other plugins deselect: which tiers exist at all (required tiers).
        collected_tiers, classes = set(), self._classes
        for item in items:
            classified = classes.get(id(item))
            if classified is None:  # made by a collector whose report we did not see
                self._classify(item)
                classified = classes[id(item)]
            collected_tiers.add(classified[TIER])
        self._marks_cache.clear()
        if self.settings.quarantine or self._quarantine_marked:
            self._quarantine(items)
        self.collected_tiers = collected_tiers
        if self.settings.shard is not None:
            self._take_share(items)
        self._collected = list(items)  # to find, later, tests dropped without pytest_deselected
        result = yield
        selected = self.settings.selected_tiers
        if selected is not None:
            keep = [item for item in items if classes[id(item)][TIER] in selected]
            dropped = [item for item in items if classes[id(item)][TIER] not in selected]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
                items[:] = keep
        # Stable: within a tier, the order pytest (or another plugin) chose is kept.
        if len(self.collected_tiers) > 1:
            items.sort(key=lambda item: tiers.ORDER[classes[id(item)][TIER]])
        return result

    def _take_share(self, items: list[pytest.Item]) -> None:
        """--staging-shard=K/N: keep this shard's share of the collection, before -k, -m or any
        plugin deselects (the share is the same whatever else is selected). The other shards'
        tests are not deselected: they run elsewhere, so pytest_deselected is not called."""
        from ..core.shards import collection_digest

        shard, classes = self.settings.shard, self._classes
        assert shard is not None
        kept, elsewhere = shard.share([classes[id(item)][TIER] for item in items])
        self.gate.ledger.shard = shard._replace(
            collected=len(items), digest=collection_digest(item.nodeid for item in items), elsewhere=elsewhere
        )
        items[:] = [items[position] for position in kept]

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self._count_deselected(items)
        self._deselected.update(map(id, items))

    def _count_deselected(self, items: list[pytest.Item]) -> None:
        deselected = self.gate.ledger.deselected
        for item in items:
            classified = self._classes.get(id(item))
            tier = classified[TIER] if classified else self.settings.default_tier
            deselected[tier] = deselected.get(tier, 0) + 1

    def _unpinned_deselection(self, session: pytest.Session) -> list[str]:
        """Deselection no policy can pin: tests a plugin dropped without telling pytest (counted
        as deselected here), and --lf/--sw, whose choice depends on the cache, not the command."""
        kept = set(map(id, session.items))
        dropped = [item for item in self._collected if id(item) not in kept and id(item) not in self._deselected]
        self._collected = []
        unpinned = []
        if dropped:
            self._count_deselected(dropped)
            unpinned.append(f"{len(dropped)} dropped by a plugin without pytest_deselected")
        config = session.config
        last_failed = config.pluginmanager.get_plugin("lfplugin")
        if config.getoption("lf", False) and getattr(last_failed, "lastfailed", None):
            # With failures on record, --lf collects only them: the rest of their files is never
            # collected, nor are files without one; neither is reported as deselected.
            skipped = getattr(last_failed, "_skipped_files", 0)
            files = f" ({skipped} test file{'' if skipped == 1 else 's'} not collected)" if skipped else ""
            unpinned.append(f"--lf ran only the last failures{files}")
        if (
            config.getoption("stepwise", False) or config.getoption("stepwise_skip", False)
        ) and self.gate.ledger.deselected:
            unpinned.append("--sw started after the tests that passed last time")
        return unpinned

    # tryfirst: an xdist worker's collection is published before xdist tells the controller it collected.
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        ledger = self.gate.ledger
        ledger.collected_tiers = set(self.collected_tiers)
        ledger.unpinned = self._unpinned_deselection(session)
        ledger.expect(self._expected(session.items))
        self._classes, self._classified = {}, []
        if self.finished is not None:
            self.finished(session)

    def _expected(self, items: list[pytest.Item]) -> list[tuple[str, str, bool, dict[str, Any] | None]]:
        """What the ledger expects of the collected items: node id, tier, destructive, quarantine entry."""
        tests, classes = [], self._classes
        for item in items:  # a loop, not a call per item: it runs for every collected test
            classified = classes.get(id(item))
            if classified is None:  # added to the session after collection (by another plugin)
                classified = classify_late(item, self.settings.default_tier)
            tier, destructive, entry = classified
            tests.append((item.nodeid, tier, destructive, None if entry is None else entry_dict(entry)))
        return tests


def classify_late(item: pytest.Item, default_tier: str) -> tuple[str, bool, None]:
    """The class of an item the gate did not see collected: its markers say its tier; no
    quarantine entry applies (it blocks)."""
    names = {mark.name for mark in item.iter_markers()}
    found = tiers.tier_markers(names)
    return found[0] if found else default_tier, "destructive" in names, None


def entry_dict(entry: Any) -> dict[str, Any] | None:
    if entry is None:
        return None
    from ..core.quarantine import today_utc

    return entry.to_dict(today_utc())


def collected_scope(config: pytest.Config) -> list[str]:
    """Where this run collected, as rootdir-relative paths or node ids ("" for everywhere)."""
    rootdir, here = config.rootpath, config.invocation_params.dir
    scope = []
    for arg in config.args:
        path, sep, rest = arg.partition("::")
        try:
            relative = (here / path).resolve().relative_to(rootdir.resolve()).as_posix()
        except ValueError:  # outside the rootdir: node ids are not paths under it; claim nothing
            return [""]
        relative = "" if relative == "." else relative
        scope.append(f"{relative}{sep}{rest}" if sep else relative)
    return scope or [""]


def in_scope(test: str, scope: list[str]) -> bool:
    """A quarantine entry's test (a node id, or a prefix ending in ``*``) lies where the run collected."""
    test = test.removesuffix("*")
    for where in scope:
        if where == "" or test == where:
            return True
        if "::" in where:  # one test (or class) selected: entries at or under it
            if test.startswith((where + "::", where + "[")):
                return True
        elif test.startswith(where.rstrip("/") + "/") or test.startswith(where + "::"):
            return True
    return False
