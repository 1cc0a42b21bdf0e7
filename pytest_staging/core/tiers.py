"""Tiers: which tier a test is in, the run order, and the fail-fast gate between tiers.

Under pytest-xdist the workers share no memory, so the gate works through a directory the
controller makes: each worker appends one line per finished test to its own file, and a
worker about to start a later tier reads everyone's files until every earlier-tier test is
done (or one of them failed, which skips the later tier at once). The controller adds the
tests of crashed workers, so a crash never leaves the others waiting.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

from .errors import ConfigError

TIERS = ("smoke", "contract", "load")
ORDER = {tier: index for index, tier in enumerate(TIERS)}

#: How long the xdist barrier waits with no test running anywhere before it gives up.
STALL_SECONDS = 60.0


def parse_tiers(text: str, where: str, field: str = "") -> tuple[str, ...]:
    """Tier names separated by commas or spaces (``--staging-tier``, ini ``staging_required_tiers``)."""
    names = tuple(t.strip() for t in text.replace(",", " ").split() if t.strip())
    for name in names:
        check_tier(name, where, field)
    if not names:
        raise ConfigError(where, field, f"no tier given; choose from {', '.join(TIERS)}")
    return names


def check_tier(name: str, where: str, field: str = "") -> str:
    if name not in TIERS:
        raise ConfigError(where, field, f"unknown tier {name!r}; choose from {', '.join(TIERS)}")
    return name


def tier_markers(marker_names: Iterable[str]) -> list[str]:
    return [name for name in TIERS if name in marker_names]


def skip_reason(failed_tier: str) -> str:
    return f"staging: {failed_tier} tier failed"


class TierGate:
    """Serial fail-fast: a blocking failure in a tier skips every later tier."""

    def __init__(self, fail_fast: bool) -> None:
        self.fail_fast = fail_fast
        self.failed_tiers: set[str] = set()

    def finished(self, nodeid: str, tier: str, failed: bool) -> None:
        if failed:
            self.failed_tiers.add(tier)

    def before(self, tier: str) -> str | None:
        """A skip reason when an earlier tier failed, else None."""
        if not self.fail_fast or not self.failed_tiers:
            return None
        for earlier in TIERS[: ORDER[tier]]:
            if earlier in self.failed_tiers:
                return skip_reason(earlier)
        return None


class SharedLog:
    """Append-only line files in one directory, one writer per file, read by everyone."""

    def __init__(self, directory: Path, writer: str) -> None:
        self.directory = directory
        self._out = open(directory / f"{writer}.log", "a", buffering=1, encoding="utf-8")
        self._offsets: dict[str, int] = {}

    def append(self, kind: str, nodeid: str, failed: bool = False) -> None:
        self._out.write(json.dumps([kind, nodeid, failed]) + "\n")

    def read_new(self) -> list[tuple[str, str, bool]]:
        lines = []
        for name in sorted(os.listdir(self.directory)):
            if not name.endswith(".log"):
                continue
            offset = self._offsets.get(name, 0)
            with open(self.directory / name, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            end = chunk.rfind(b"\n") + 1  # only whole lines; a writer may be mid-line
            self._offsets[name] = offset + end
            for raw in chunk[:end].splitlines():
                kind, nodeid, failed = json.loads(raw)
                lines.append((kind, nodeid, failed))
        return lines

    def close(self) -> None:
        self._out.close()


class SharedTierGate(TierGate):
    """The xdist worker's gate: fail-fast plus a barrier so tiers never overlap across workers."""

    def __init__(self, fail_fast: bool, log: SharedLog, tier_of: dict[str, str], poll: float = 0.01) -> None:
        super().__init__(fail_fast)
        self.log = log
        self.tier_of = tier_of
        self.poll = poll
        self.done: set[str] = set()
        self.started: set[str] = set()
        self._open_tiers: set[str] = set()
        self._stalled: dict[str, str] = {}
        # How many tests of each tier must finish before the next tier may start.
        self._pending = {tier: 0 for tier in TIERS}
        for tier in tier_of.values():
            self._pending[tier] += 1

    def starting(self, nodeid: str) -> None:
        self.log.append("start", nodeid)

    def finished(self, nodeid: str, tier: str, failed: bool) -> None:
        self.log.append("done", nodeid, failed)

    def _absorb(self) -> bool:
        lines = self.log.read_new()
        for kind, nodeid, failed in lines:
            if kind == "start":
                self.started.add(nodeid)
                continue
            if nodeid in self.done or nodeid not in self.tier_of:
                continue
            self.done.add(nodeid)
            tier = self.tier_of[nodeid]
            self._pending[tier] -= 1
            if failed:
                self.failed_tiers.add(tier)
        return bool(lines)

    def before(self, tier: str) -> str | None:
        if tier in self._open_tiers:
            return super().before(tier)
        if tier in self._stalled:
            return self._stalled[tier]
        earlier = TIERS[: ORDER[tier]]
        quiet_since = time.monotonic()
        while True:
            if self._absorb():
                quiet_since = time.monotonic()
            reason = super().before(tier)
            if reason is not None:
                return reason
            if all(self._pending[t] <= 0 for t in earlier):
                self._open_tiers.add(tier)
                return None
            running = self.started - self.done
            if not running and time.monotonic() - quiet_since > STALL_SECONDS:
                missing = sum(max(self._pending[t], 0) for t in earlier)
                reason = f"staging: {missing} earlier-tier test(s) never finished (a crashed worker?); {tier} tier not started"
                self._stalled[tier] = reason
                return reason
            time.sleep(self.poll)
