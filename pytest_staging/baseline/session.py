"""A gate session's side of the baseline: compare its series at the end, save them. No pytest.

The gate calls :func:`compare` before deciding (the result is the verdict's ``baseline``
section and feeds the decision) and :func:`save` after the verdict is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .store import build, collect, load_profiles, mismatches


def series(records: Sequence[Any], scrub: Callable[[str], str] | None) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Every metric series of the run, names scrubbed (a request path may hold a secret)."""
    found, units = collect(records)
    if scrub:
        found = {scrub(name): values for name, values in found.items()}
        units = {scrub(name): unit for name, unit in units.items()}
    return found, units


def compare(
    records: Sequence[Any], settings: Any, scrub: Callable[[str], str] | None, target: dict[str, Any]
) -> dict[str, Any]:
    """This run's series judged against the baseline's: the verdict's ``baseline`` section.
    ``settings`` is the run's BaselineSettings; ``target`` the public (scrubbed) target."""
    from .judge import Scores, judge  # numpy: only when comparing

    current, units = series(records, scrub)
    baseline = settings.compare
    result = judge(
        current,
        baseline.series,
        settings.rules,
        confidence=settings.confidence,
        scores=Scores(settings.pass_score, settings.marginal_score),
        units={**baseline.units, **units},
    )
    return {
        "file": settings.shown,
        "digest": baseline.digest,
        "created": baseline.created,
        "release": baseline.release,
        "target": baseline.target,
        "result": result["result"],
        "score": result["score"],
        "reason": result["reason"],
        "confidence": settings.confidence,
        "scores": {"pass": settings.pass_score, "marginal": settings.marginal_score},
        "strict": settings.strict,
        "mismatches": mismatches(baseline, target, load_profiles(records)),
        "metrics": result["metrics"],
    }


def save(
    records: Sequence[Any],
    settings: Any,
    scrub: Callable[[str], str] | None,
    *,
    target: dict[str, Any],
    release: str | None,
    decision: str,
) -> tuple[Path, int, str | None]:
    """--staging-save-baseline: (path, metrics written, problem or None). Rolling a baseline
    forward (the same file compared and saved) takes a PROMOTE: a regressed run must not become
    the next run's yardstick."""
    from ..verdict.files import write_atomic
    from ..verdict.statement import iso, tool_versions

    path = settings.save_path
    if settings.compare is not None and decision != "PROMOTE" and path.resolve() == settings.compare.path.resolve():
        return (
            path,
            0,
            f"not saved: the run decided {decision}; only a PROMOTE replaces the baseline it was compared with",
        )
    found, units = series(records, scrub)
    data = build(
        series=found,
        units=units,
        target=target,
        release=release,
        decision=decision,
        profiles=load_profiles(records),
        tools=tool_versions(),
        created=iso(time.time()),
    )
    try:
        write_atomic(path, data)
    except OSError as exc:
        return path, 0, f"could not write it: {exc.strerror or exc}"
    return path, len(found), None
