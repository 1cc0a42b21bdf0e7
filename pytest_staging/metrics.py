"""The ``staging_metrics`` fixture: a test's own measurements, compared with the baseline."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real

from .ledger import TestRecord


class StagingMetrics:
    """``record(name, value, unit="")`` adds one value to the series ``name`` of the running test."""

    def __init__(self, current: Callable[[], TestRecord | None]) -> None:
        self._current = current

    def record(self, name: str, value: float, unit: str = "") -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"staging_metrics.record: the metric name must be a non-empty string, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(f"staging_metrics.record({name!r}, ...): the value must be a number, got {value!r}")
        if not isinstance(unit, str):
            raise TypeError(f"staging_metrics.record({name!r}, ...): unit must be a string such as 'ms', got {unit!r}")
        record = self._current()
        if record is None:
            raise RuntimeError("staging_metrics.record: call it from a test (no test is running)")
        # NaN and infinities are kept, counted and left out of the judgement (they are not data).
        record.add_metric(name, float(value), unit)
