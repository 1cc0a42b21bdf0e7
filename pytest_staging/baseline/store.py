"""The baseline file: the series a run measured, with what they were measured against. Pure.

``--staging-save-baseline=PATH`` writes it (JSON, versioned); ``--staging-baseline=PATH`` reads
it back. A file that is not one stops the run with a :class:`ConfigError` naming the field.

    {"format": "pytest-staging-baseline", "version": 1, "created": "...Z",
     "target": {"name", "url", "environment"}, "release": "1.4.2", "decision": "PROMOTE",
     "loadProfiles": [{"users", "spawnRate", "duration", "locustfileSha256", ...}],
     "tools": {"python": ..., "pytest": ...},
     "metrics": {"GET /json": {"unit": "ms", "values": [12.1, 11.8, ...]}},
     "rules": {"GET /*": {"allowed": 1.3}}}            # optional, as in pyproject.toml
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..core.errors import ConfigError
from .rules import Table, parse_tables

FORMAT = "pytest-staging-baseline"
VERSION = 1
#: What a baseline says about the load: the profile fields that change what is measured.
PROFILE_FIELDS = ("locustfileSha256", "users", "spawnRate", "duration", "userClasses", "tags", "processes", "workers")
_REGENERATE = "write a new one with --staging-save-baseline=PATH"


class Baseline(NamedTuple):
    path: Path
    #: ``sha256:HEX`` of the file's bytes (recorded in the verdict's policy).
    digest: str
    created: str | None
    target: dict[str, Any]
    release: str | None
    decision: str | None
    load_profiles: list[dict[str, Any]]
    series: dict[str, list[float]]
    units: dict[str, str]
    tables: list[Table]


def collect(records: Iterable[Any]) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Every series the run measured: staging_http and staging_metrics values per metric name,
    and from each load run, per endpoint and second: ``load NAME rps``, ``load NAME p50``,
    ``load NAME p95`` and ``load NAME fail_ratio`` (the first and last second, partial, left out).
    """
    series: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    for record in records:
        for metric in record.metrics:
            values = series.get(metric.name)
            if values is None:
                values = series[metric.name] = []
                units[metric.name] = metric.unit
            values.append(metric.value)
        for run in record.load_runs:
            seconds = run.get("series") or []
            if len(seconds) > 2:
                seconds = seconds[1:-1]
            for second in seconds:
                for name, stats in second["endpoints"].items():
                    requests = stats.get("requests") or 0
                    points = {
                        "rps": (requests, "1/s"),
                        "p50": (stats.get("p50"), "ms"),
                        "p95": (stats.get("p95"), "ms"),
                        "fail_ratio": ((stats.get("failures") or 0) / requests if requests else None, ""),
                    }
                    for statistic, (value, unit) in points.items():
                        if value is None:
                            continue
                        key = f"load {name} {statistic}"
                        series.setdefault(key, []).append(float(value))
                        units.setdefault(key, unit)
    return series, units


def load_profiles(records: Iterable[Any]) -> list[dict[str, Any]]:
    """The profile of each load run, in test order, reduced to what changes the measurements."""
    return [
        {field: run["profile"].get(field) for field in PROFILE_FIELDS}
        for record in records
        for run in record.load_runs
        if run.get("profile")
    ]


def build(
    *,
    series: Mapping[str, Sequence[float]],
    units: Mapping[str, str],
    target: Mapping[str, Any],
    release: str | None,
    decision: str | None,
    profiles: Sequence[Mapping[str, Any]],
    tools: Mapping[str, str],
    created: str,
) -> bytes:
    """The file's bytes: indented JSON, non-finite values as null."""
    data = {
        "format": FORMAT,
        "version": VERSION,
        "created": created,
        "target": {key: target.get(key) for key in ("name", "url", "environment")},
        "release": release,
        "decision": decision,
        "loadProfiles": list(profiles),
        "tools": dict(tools),
        "metrics": {
            name: {"unit": units.get(name, ""), "values": [v if math.isfinite(v) else None for v in values]}
            for name, values in sorted(series.items())
        },
    }
    return (json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")


def load(path: Path, shown: str | None = None) -> Baseline:
    """Read and check a baseline file; ``shown`` is the path as the user gave it (for messages)."""
    where = shown or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(where, "", f"cannot read the baseline file ({exc.strerror or exc}); check the path") from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: JSONDecodeError, huge integers
        raise ConfigError(where, "", f"not a baseline file: invalid JSON ({exc}); {_REGENERATE}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(where, "format", f"not a baseline file (expected format {FORMAT!r}); {_REGENERATE}")
    if data.get("version") != VERSION:
        raise ConfigError(
            where, "version", f"version {data.get('version')!r} is not supported (expected {VERSION}); {_REGENERATE}"
        )
    metrics = data.get("metrics")
    if not isinstance(metrics, dict):
        raise ConfigError(where, "metrics", f"expected an object of metric name -> {{unit, values}}; {_REGENERATE}")
    series: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    for name, entry in metrics.items():
        values = entry.get("values") if isinstance(entry, dict) else None
        if not isinstance(values, list) or not all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values
        ):
            raise ConfigError(
                where, f'metrics."{name}".values', "expected a list of numbers (null for a missing value)"
            )
        try:
            series[name] = [math.nan if v is None else float(v) for v in values]
        except OverflowError:
            raise ConfigError(where, f'metrics."{name}".values', "a value is too large for a float") from None
        unit = entry.get("unit", "")
        units[name] = unit if isinstance(unit, str) else ""
    profiles = data.get("loadProfiles") or []
    if not isinstance(profiles, list) or not all(isinstance(p, dict) for p in profiles):
        raise ConfigError(where, "loadProfiles", "expected a list of load profiles")
    target = data.get("target") or {}
    if not isinstance(target, dict) or not all(v is None or isinstance(v, str) for v in target.values()):
        raise ConfigError(where, "target", "expected an object with name, url, environment (strings)")
    for field in ("created", "release", "decision"):
        if not (data.get(field) is None or isinstance(data[field], str)):
            raise ConfigError(where, field, f"expected a string or null, got {data[field]!r}")
    tables = parse_tables(data["rules"], where, "rules") if data.get("rules") is not None else []
    return Baseline(
        path=path,
        digest="sha256:" + hashlib.sha256(raw).hexdigest(),
        created=data.get("created"),
        target=target,
        release=data.get("release"),
        decision=data.get("decision"),
        load_profiles=profiles,
        series=series,
        units=units,
        tables=tables,
    )


def mismatches(baseline: Baseline, target: Mapping[str, Any], profiles: Sequence[Mapping[str, Any]]) -> list[str]:
    """How the baseline's conditions differ from this run's (target, load profile), in words."""
    found = []
    then = (baseline.target.get("name"), baseline.target.get("url"))
    now = (target.get("name"), target.get("url"))
    if then != now:
        found.append(f"target differs: the baseline measured {then[0]} ({then[1]}), this run {now[0]} ({now[1]})")
    if profiles and baseline.load_profiles != list(profiles):
        found.append(
            "load profile differs: the baseline's load runs used other users, spawn rate, duration or locustfile"
        )
    if baseline.decision not in (None, "PROMOTE"):
        found.append(f"the baseline comes from a run that decided {baseline.decision}, not PROMOTE")
    return found
