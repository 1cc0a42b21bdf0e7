"""``pytest-staging history`` for people: the SLIs of many verdicts as text or Markdown. Pure."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ..core.history import DECISIONS

if TYPE_CHECKING:
    from ..core.history import Runs
    from ..verdict.history import Read


def seconds(value: float | None) -> str:
    """``42.1 s``, ``3 min 20 s``, ``2 h 5 min``, ``3 d 4 h``; ``–`` for none."""
    if value is None:
        return "–"
    if value < 60:
        return f"{value:.3g} s"
    whole = round(value)
    for unit, size, smaller, small in (("d", 86400, "h", 3600), ("h", 3600, "min", 60), ("min", 60, "s", 1)):
        if whole >= size:
            rest = (whole % size) // small
            return f"{whole // size} {unit}" + (f" {rest} {smaller}" if rest else "")
    return f"{whole} s"  # pragma: no cover - whole >= 60 here


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _rows(runs: Runs) -> list[tuple[str, str]]:
    data = runs.to_dict()
    latency, duration = data["promotionLatencySeconds"], data["gateDurationSeconds"]
    rows = [
        ("runs", f"{runs.runs}: " + ", ".join(f"{runs.decisions[d]} {d}" for d in DECISIONS)),
        ("promotion success rate", percent(runs.promotion_success)),
        (
            "validation pass rate",
            percent(runs.validation_pass) + (f" (mean of {runs.validation_runs} runs with validations)"),
        ),
        (
            "promotion latency",
            f"p50 {seconds(latency['p50'])}, p95 {seconds(latency['p95'])} "
            f"({latency['count']} PROMOTE verdicts with a build time)",
        ),
        ("flakiness rate", percent(runs.flakiness)),
        (
            "gate duration",
            f"p50 {seconds(duration['p50'])}, p95 {seconds(duration['p95'])} ({duration['count']} finished runs)",
        ),
    ]
    for decision in ("HOLD", "REJECT"):
        reasons = data["reasons"][decision]
        if reasons:
            rows.append((f"{decision} reasons", ", ".join(f"{code} {count}" for code, count in reasons.items())))
    return rows


def _counted(read: Read, since: dt.timedelta | None, verified: bool) -> str:
    history = read.history
    notes = []
    if history.partials:
        notes.append(f"{history.partials} partial shard verdicts not counted (a shard is not a run)")
    if since is not None:
        notes.append(f"{history.older} older than {since}")
    if verified:
        notes.append(f"{len(read.unverified)} did not verify")
    if read.unreadable:
        notes.append(f"{len(read.unreadable)} unreadable")
    if read.others:
        notes.append(f"{read.others} other attestations left out")
    counted = f"{history.overall.runs} runs counted of {read.verdicts} verdicts read"
    return counted + (f" ({'; '.join(notes)})" if notes else "") + ("" if verified else "; signatures not checked")


def text(read: Read, *, top: int = 10, since: dt.timedelta | None = None, verified: bool = False) -> str:
    history = read.history
    lines = [f"history: {_counted(read, since, verified)}"]
    sections: list[tuple[str, Any]] = [("all environments", history.overall)]
    sections += [(f"environment {name}", runs) for name, runs in sorted(history.environments.items())]
    for title, runs in sections:
        lines.append("")
        lines.append(f"{title}:")
        width = max(len(name) for name, _ in _rows(runs))
        lines += [f"  {name.ljust(width)}  {value}" for name, value in _rows(runs)]
    flakiest = history.flakiest(top)
    if flakiest:
        lines += ["", "flakiest tests:"]
        for test in flakiest:
            owner = f", owner {test.owner}" if test.owner else ""
            lines.append(
                f"  {test.nodeid}: flaky in {test.flaky} of {test.ran} runs ({percent(test.flaky / test.ran)}){owner}"
            )
    return "\n".join(lines) + "\n"


def _cell(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown(read: Read, *, top: int = 10, since: dt.timedelta | None = None, verified: bool = False) -> str:
    history = read.history
    names = sorted(history.environments)
    columns = [("all environments", history.overall)] + [(name, history.environments[name]) for name in names]
    table = {title: dict(_rows(runs)) for title, runs in columns}
    metrics = list(dict.fromkeys(name for title, _ in columns for name in table[title]))
    out = ["## Promotion history", "", _counted(read, since, verified), ""]
    out.append("| | " + " | ".join(_cell(title) for title, _ in columns) + " |")
    out.append("|---|" + "---|" * len(columns))
    for metric in metrics:
        out.append(f"| {metric} | " + " | ".join(_cell(table[title].get(metric, "–")) for title, _ in columns) + " |")
    flakiest = history.flakiest(top)
    if flakiest:
        out += ["", "### Flakiest tests", "", "| test | flaky runs | runs | rate | owner |", "|---|---|---|---|---|"]
        for test in flakiest:
            out.append(
                f"| `{_cell(test.nodeid)}` | {test.flaky} | {test.ran} | {percent(test.flaky / test.ran)} | "
                f"{_cell(test.owner or '–')} |"
            )
    return "\n".join(out) + "\n"
