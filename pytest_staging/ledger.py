"""One plain record per test: what the verdict, quarantine and baseline read.

Records are plain data so they can cross from xdist workers to the controller as dicts.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any


@dataclasses.dataclass
class Metric:
    name: str
    value: float
    unit: str = ""


@dataclasses.dataclass
class TestRecord:
    nodeid: str
    tier: str
    destructive: bool = False
    outcome: str = "notrun"
    duration: float = 0.0
    metrics: list[Metric] = dataclasses.field(default_factory=list)
    _correlation_id: str | None = None

    @property
    def correlation_id(self) -> str:
        """One id per test, made the first time the test talks to the target."""
        if self._correlation_id is None:
            self._correlation_id = uuid.uuid4().hex
        return self._correlation_id

    @property
    def has_correlation_id(self) -> bool:
        return self._correlation_id is not None

    def add_metric(self, name: str, value: float, unit: str = "") -> None:
        self.metrics.append(Metric(name, float(value), unit))

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "tier": self.tier,
            "destructive": self.destructive,
            "outcome": self.outcome,
            "duration": self.duration,
            "correlationId": self._correlation_id,
            "metrics": [dataclasses.asdict(m) for m in self.metrics],
        }
