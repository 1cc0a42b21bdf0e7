"""The tier barrier under pytest-xdist: tiers never overlap across workers.

The workers share no memory, so the barrier works through a directory the controller makes:
each worker appends one line per started and finished test to its own file, and a worker about
to start a later tier reads everyone's files until every earlier-tier test is done (or one of
them failed, which skips the later tier at once). The controller adds the tests of crashed
workers, so a crash never leaves the others waiting.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..core.tiers import ORDER, TIERS, TierGate

#: How long the barrier waits with no test running anywhere before it gives up.
STALL_SECONDS = 60.0


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
            # Only an earlier-tier test can be running now: a started test of this tier or a later
            # one is waiting at a barrier (this worker's own among them), and counting those would
            # keep every waiting worker from ever giving up on a lost test.
            running = any(self.tier_of.get(nodeid) in earlier for nodeid in self.started - self.done)
            if not running and time.monotonic() - quiet_since > STALL_SECONDS:
                missing = sum(max(self._pending[t], 0) for t in earlier)
                reason = f"staging: {missing} earlier-tier test(s) never finished (a crashed worker?); {tier} tier not started"
                self._stalled[tier] = reason
                return reason
            time.sleep(self.poll)
