"""Flip rates over past verdicts, for ``pytest-staging quarantine suggest``. Pure.

A test's state in one run is ``fail`` when any attempt failed (so a flaky pass counts as a
failure: it failed first), ``pass`` when it passed, and nothing when it did not run. Its flip
rate is flips / (runs - 1): 0 for a test that always passes or always fails, 1 for one that
alternates every run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any

from .ledger import FAILING as FAILED


@dataclasses.dataclass
class History:
    nodeid: str
    states: list[str] = dataclasses.field(default_factory=list)

    @property
    def runs(self) -> int:
        return len(self.states)

    @property
    def flips(self) -> int:
        return sum(1 for before, after in zip(self.states, self.states[1:], strict=False) if before != after)

    @property
    def flip_rate(self) -> float:
        return self.flips / (self.runs - 1) if self.runs > 1 else 0.0

    @property
    def failure_rate(self) -> float:
        return self.states.count("fail") / self.runs if self.runs else 0.0


def state(test: dict[str, Any]) -> str | None:
    outcome = test["outcome"]
    if outcome in FAILED or any(a["outcome"] in FAILED for a in test.get("attempts", [])):
        return "fail"
    quarantined = test.get("quarantine") is not None
    if outcome == "xfailed" and quarantined:  # quarantine runs a test as xfail: it failed
        return "fail"
    if outcome == "passed" or (outcome == "xpassed" and quarantined):
        return "pass"
    return None


def histories(ordered: Sequence[dict[str, Any]]) -> dict[str, History]:
    """Each test's states, from statements already sorted oldest first."""
    result: dict[str, History] = {}
    for statement in ordered:
        for test in statement["predicate"]["tests"]:
            found = state(test)
            if found is not None:
                result.setdefault(test["nodeid"], History(test["nodeid"])).states.append(found)
    return result


def _toml(text: str) -> str:
    # A JSON string is a TOML basic string (same escapes), except that TOML refuses a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


#: What a TOML comment may not hold: a line break would end it (and the rest would be read as
#: entries), other control characters make the file invalid.
_NOT_IN_COMMENT = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _comment(text: Any) -> str:
    """Text from a verdict (a node id, an owner, a reason) fit for a ``#`` line."""
    return _NOT_IN_COMMENT.sub(lambda match: f"\\u{ord(match[0]):04x}", str(text))


def suggest(
    statements: Sequence[dict[str, Any]],
    *,
    threshold: float,
    min_runs: int,
    retire_after: int,
    owner: str,
    until: dt.date,
    verified: bool,
) -> str:
    ordered = sorted(statements, key=lambda s: s["predicate"]["timeVerified"])
    latest = ordered[-1]["predicate"]
    quarantined = {
        t["nodeid"]: t["quarantine"] for t in latest["quarantine"]["tests"] if t["quarantine"]["status"] == "active"
    }
    found = histories(ordered)
    lines = [
        f"# pytest-staging quarantine suggest: {len(ordered)} verdicts, "
        f"{_comment(ordered[0]['predicate']['timeVerified'])} to {_comment(latest['timeVerified'])}"
        + ("" if verified else " (signatures NOT checked: pass --key)"),
        "",
        f"# Add: flip rate >= {threshold:.2f} over at least {min_runs} runs.",
    ]
    flaky = sorted(
        (h for h in found.values() if h.runs >= min_runs and h.flip_rate >= threshold and h.nodeid not in quarantined),
        key=lambda h: (-h.flip_rate, h.nodeid),
    )
    for history in flaky:
        lines += [
            "[[quarantine]]",
            f"test = {_toml(history.nodeid)}",
            f"reason = {_toml(f'flaky: flip rate {history.flip_rate:.2f} over {history.runs} runs (failure rate {history.failure_rate:.2f})')}",
            f"owner = {_toml(owner)}",
            f"until = {until.isoformat()}",
            '# ticket = ""',
            "",
        ]
    if not flaky:
        lines += ["# (none)", ""]
    lines.append(f"# Retire: quarantined, and passed in each of the last {retire_after} runs.")
    retire = [
        (nodeid, entry)
        for nodeid, entry in sorted(quarantined.items())
        if nodeid in found
        and found[nodeid].runs >= retire_after
        and set(found[nodeid].states[-retire_after:]) == {"pass"}
    ]
    lines += [
        _comment(f"#   {nodeid}  (owner {entry['owner']}, until {entry['until']})") for nodeid, entry in retire
    ] or ["#   (none)"]
    lines += ["", "# Expired: blocking again; fix the test or renew the entry with a new until."]
    expired = latest["quarantine"]["expired"]
    lines += [
        _comment(f"#   {e['test']}  (owner {e['owner']}, until {e['until']}: {e['reason']})") for e in expired
    ] or ["#   (none)"]
    return "\n".join(lines) + "\n"
