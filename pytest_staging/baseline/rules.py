"""Per-metric rules: ``[tool.pytest_staging.metrics."GLOB"]`` tables → a :class:`Rule` per metric.

Tables apply in order — built-in defaults, then the baseline file's, then pyproject.toml's —
each matching table (``fnmatch`` glob over the metric name) overriding the fields it sets. Every
mistake is a :class:`ConfigError` naming the file and the field. Pure: no pytest imports.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..core.errors import ConfigError
from ..core.thresholds import Threshold, ThresholdError, parse

DIRECTIONS = ("increase", "decrease", "either")
#: How a shift's size is measured (see :class:`Rule`).
EFFECTS = ("median", "mean")
#: Where the tables live in pyproject.toml.
TABLE = "tool.pytest_staging.metrics"
#: Built in: a load run's requests per second are throughput (less is worse).
DEFAULTS: dict[str, dict[str, Any]] = {"load * rps": {"direction": "decrease"}}
#: Statistics a gate can use over a series of values (rate(failures) and rps belong to load runs).
GATE_METRICS = ("p(N)", "avg", "med", "min", "max")


class Rule(NamedTuple):
    """How one metric is judged (``[tool.pytest_staging.metrics."GLOB"]``)."""

    #: Which way is worse: ``increase`` (latency), ``decrease`` (throughput) or ``either``.
    direction: str = "increase"
    #: Effect size (see ``effect``) tolerated for a significant shift.
    allowed: float = 1.2
    #: Effect size at which the metric fails; on a ``critical`` metric the whole comparison fails.
    critical_ratio: float = 2.0
    critical: bool = False
    min_samples: int = 50
    #: A baseline metric missing from this run fails the comparison.
    must_have_data: bool = False
    #: Absolute gates over the current values, k6 syntax (``p(95) < 800``).
    gates: tuple[Threshold, ...] = ()
    #: Share of the score.
    weight: float = 1.0
    #: The effect size: ``median`` = (baseline median + Hodges-Lehmann shift) / baseline median,
    #: worse over better (outliers move neither); ``mean`` = the ratio of the means.
    effect: str = "median"
    #: A shift whose Hodges-Lehmann estimate is smaller than this (in the metric's unit) passes,
    #: whatever its ratio: the floor under which a change does not matter (0.5 ms, say).
    min_shift: float = 0.0


class Table(NamedTuple):
    glob: str
    fields: dict[str, Any]


def _number(value: Any, where: str, field: str, minimum: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value < math.inf:
        raise ConfigError(where, field, f"expected {what}, got {value!r}")
    return float(value)


def _gates(value: Any, where: str, field: str) -> tuple[Threshold, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(where, field, f"expected a list of gates such as ['p(95) < 800'], got {value!r}")
    gates = []
    for item in value:
        try:
            gate = parse(item)
        except ThresholdError as exc:
            raise ConfigError(where, field, f"{exc}; fix the expression") from None
        if gate.name is not None or gate.metric in ("fail_ratio", "rps"):
            raise ConfigError(
                where,
                field,
                f"gate {item!r}: a metric's gate uses {', '.join(GATE_METRICS)} over its values, without {{name:...}}",
            )
        gates.append(gate)
    return tuple(gates)


def parse_table(fields: Any, where: str, prefix: str) -> dict[str, Any]:
    """One table's fields, checked; ``prefix`` names the table in messages."""
    if not isinstance(fields, Mapping):
        raise ConfigError(where, prefix, "expected a table of rule fields (direction, allowed, ...)")
    rule: dict[str, Any] = {}
    for key, value in fields.items():
        field = f"{prefix}.{key}"
        if key == "direction":
            if value not in DIRECTIONS:
                raise ConfigError(where, field, f"expected one of {', '.join(DIRECTIONS)}, got {value!r}")
            rule[key] = value
        elif key in ("allowed", "critical_ratio"):
            rule[key] = _number(value, where, field, 1.0, "a ratio >= 1 (1.2 = 20% worse is tolerated)")
        elif key == "weight":
            rule[key] = _number(value, where, field, 0.0, "a weight >= 0")
        elif key == "effect":
            if value not in EFFECTS:
                raise ConfigError(where, field, f"expected one of {', '.join(EFFECTS)}, got {value!r}")
            rule[key] = value
        elif key == "min_shift":
            rule[key] = _number(
                value, where, field, 0.0, "a shift >= 0 in the metric's unit (0.5 = half a millisecond of latency)"
            )
        elif key == "min_samples":
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ConfigError(where, field, f"expected a whole number >= 2, got {value!r}")
            rule[key] = value
        elif key in ("critical", "must_have_data"):
            if not isinstance(value, bool):
                raise ConfigError(where, field, f"expected true or false, got {value!r}")
            rule[key] = value
        elif key == "gates":
            rule[key] = _gates(value, where, field)
        else:
            known = "direction, allowed, critical_ratio, critical, min_samples, must_have_data, gates, weight, effect, min_shift"
            raise ConfigError(where, field, f"unknown field; known fields: {known}")
    return rule


def parse_tables(tables: Any, where: str, prefix: str = TABLE) -> list[Table]:
    if not isinstance(tables, Mapping):
        raise ConfigError(where, prefix, 'expected tables such as [tool.pytest_staging.metrics."GET /*"]')
    return [Table(glob, parse_table(fields, where, f'{prefix}."{glob}"')) for glob, fields in tables.items()]


def read_pyproject(path: Path) -> list[Table] | None:
    """The ``[tool.pytest_staging.metrics]`` tables of a pyproject.toml, or None without them."""
    from ..core.targets import tomllib

    try:
        data = tomllib().loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(str(path), "", f"cannot read it as TOML ({exc}); fix the file") from None
    tables: Any = data
    for key in ("tool", "pytest_staging", "metrics"):
        if not isinstance(tables, dict):
            raise ConfigError(
                str(path), "tool.pytest_staging", 'expected a table such as [tool.pytest_staging.metrics."GET /*"]'
            )
        tables = tables.get(key)
    return parse_tables(tables, str(path)) if tables is not None else None


class Rules:
    """The rule of each metric name, from tables applied in order."""

    def __init__(self, *layers: Sequence[Table]) -> None:
        self.tables = [Table(glob, fields) for glob, fields in DEFAULTS.items()]
        for layer in layers:
            self.tables += layer
        self._cache: dict[str, Rule] = {}

    def __call__(self, name: str) -> Rule:
        rule = self._cache.get(name)
        if rule is None:
            fields: dict[str, Any] = {}
            for table in self.tables:
                if fnmatch.fnmatchcase(name, table.glob):
                    fields.update(table.fields)
            rule = self._cache[name] = Rule(**fields)
        return rule
