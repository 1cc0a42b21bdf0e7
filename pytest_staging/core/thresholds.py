"""k6-style thresholds over load statistics: ``p(95) < 500``, ``rate(failures) < 0.01``.

Pure: no pytest, no locust. The load tier parses every expression before a run starts, and the
baseline comparison reuses the same parser for its absolute gates.

Grammar (spaces anywhere between tokens)::

    threshold := metric [ "{" "name" ":" endpoint "}" ] op number
    metric    := "p(" number ")" | "avg" | "med" | "min" | "max" | "rate(failures)" | "rps"
    op        := "<" | "<=" | ">" | ">=" | "==" | "!="

An endpoint is a locust request name as written, placeholders included: ``/orders/{id}``
(braces nest one level).

Times are milliseconds, ``rate(failures)`` a fraction (0..1), ``rps`` requests per second.
Without ``{name:...}`` a threshold applies to the totals of the run.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
METRICS = ("p(N)", "avg", "med", "min", "max", "rate(failures)", "rps")
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_THRESHOLD = re.compile(
    rf"""\s*(?P<metric>p\s*\(\s*(?P<percentile>{_NUMBER})\s*\)|avg|med|min|max|rate\s*\(\s*failures\s*\)|rps)
    \s*(?:\{{\s*name\s*:\s*(?P<name>(?:[^{{}}]|\{{[^{{}}]*\}})*?)\s*\}})?
    \s*(?P<op><=|>=|==|!=|<|>)
    \s*(?P<value>{_NUMBER})\s*""",
    re.VERBOSE,
)


class ThresholdError(ValueError):
    """An expression that is not a threshold; the message quotes it and says what is wrong."""


@dataclasses.dataclass(frozen=True)
class Threshold:
    expression: str
    #: ``p95``, ``p99.9``, ``avg``, ``med``, ``min``, ``max``, ``fail_ratio`` or ``rps``.
    metric: str
    op: str
    limit: float
    #: The endpoint (locust request name) it is scoped to, or None for the totals.
    name: str | None = None

    def holds(self, value: float | None) -> bool:
        """No value (no request at all, or not for that endpoint) never passes."""
        return value is not None and not math.isnan(value) and OPERATORS[self.op](value, self.limit)

    def value_in(self, total: Mapping[str, Any], endpoints: Mapping[str, Mapping[str, Any]]) -> float | None:
        """This threshold's metric from statistics shaped like :func:`summarize`'s."""
        stats = total if self.name is None else endpoints.get(self.name)
        if not stats or not stats.get("requests"):
            return None
        if self.metric.startswith("p") and self.metric not in stats:
            return percentile(
                stats["histogram"], stats["requests"] - stats.get("none_requests", 0), float(self.metric[1:]) / 100
            )
        return stats.get(self.metric)


def _metric_key(metric: str, percentile_text: str | None, expression: str) -> str:
    if percentile_text is not None:
        value = float(percentile_text)
        if not 0 < value <= 100:
            raise ThresholdError(f"threshold {expression!r}: the percentile in p(...) must be above 0 and at most 100")
        return f"p{value:g}"
    metric = re.sub(r"\s+", "", metric)
    return {"med": "p50", "rate(failures)": "fail_ratio"}.get(metric, metric)


def parse(expression: str) -> Threshold:
    """One threshold; :class:`ThresholdError` with a one-line reason when it is not one."""
    if not isinstance(expression, str):
        raise ThresholdError(f"threshold {expression!r}: expected a string such as 'p(95) < 500'")
    match = _THRESHOLD.fullmatch(expression)
    if match is None:
        raise ThresholdError(
            f"threshold {expression!r} is not METRIC[{{name:ENDPOINT}}] OP NUMBER "
            f"(METRIC one of {', '.join(METRICS)}; OP one of {' '.join(OPERATORS)}), e.g. 'p(95) < 500'"
        )
    name = match["name"]
    if name is not None and not name:
        raise ThresholdError(f"threshold {expression!r}: {{name:}} needs an endpoint name, e.g. {{name:/orders}}")
    return Threshold(
        expression=expression.strip(),
        metric=_metric_key(match["metric"], match["percentile"], expression),
        op=match["op"],
        limit=float(match["value"]),
        name=name,
    )


def parse_all(expressions: Any) -> list[Threshold]:
    if isinstance(expressions, str):  # a single expression given where a list was meant
        expressions = [expressions]
    return [parse(expression) for expression in expressions or ()]


def percentile(histogram: Mapping[Any, int], count: int, fraction: float) -> float | None:
    """The response time within which ``fraction`` of ``count`` requests finished, computed the way
    locust does (``calculate_response_time_percentile``) over a histogram {rounded ms: requests}."""
    if count <= 0:
        return None
    allowed_above = int(count * fraction)
    processed = 0
    for response_time in sorted(histogram, key=float, reverse=True):
        processed += histogram[response_time]
        if count - processed <= allowed_above:
            return float(response_time)
    return 0.0


def summary(
    *,
    requests: int,
    failures: int,
    none_requests: int = 0,
    total_response_time: float = 0.0,
    min_response_time: float | None = None,
    max_response_time: float | None = None,
    histogram: Mapping[Any, int],
    seconds: float,
) -> dict[str, Any]:
    """Statistics of one endpoint (or the totals) as thresholds read them; times in ms.

    ``rps`` is requests over ``seconds``, the time from the first request to the last (locust's
    ``total_rps``). Requests without a response time (``None``) count as requests but not in
    the latency figures, as in locust.
    """
    timed = requests - none_requests
    histogram = {int(float(t)): c for t, c in histogram.items()}
    return {
        "requests": requests,
        "failures": failures,
        "fail_ratio": failures / requests if requests else (1.0 if failures else 0.0),
        "rps": requests / seconds if seconds > 0 else 0.0,
        "avg": total_response_time / timed if timed else None,
        "min": float(min_response_time) if min_response_time is not None and timed else None,
        "max": float(max_response_time) if timed and max_response_time is not None else None,
        "p50": percentile(histogram, timed, 0.50),
        "p90": percentile(histogram, timed, 0.90),
        "p95": percentile(histogram, timed, 0.95),
        "p99": percentile(histogram, timed, 0.99),
        "none_requests": none_requests,
        "histogram": histogram,
    }


class Tally:
    """Running sums of locust's figures for one endpoint (methods merged) or for the totals,
    fed from locust's stats entries (in the locust process) or their JSON (in pytest)."""

    __slots__ = (
        "requests",
        "failures",
        "none_requests",
        "total_response_time",
        "min_response_time",
        "max_response_time",
        "histogram",
    )

    def __init__(self) -> None:
        self.requests = self.failures = self.none_requests = 0
        self.total_response_time = 0.0
        self.min_response_time: float | None = None
        self.max_response_time: float = 0
        self.histogram: dict[Any, int] = {}

    def add(
        self,
        requests: int,
        failures: int,
        none_requests: int,
        total_response_time: float,
        min_response_time: float | None,
        max_response_time: float | None,
        histogram: Mapping[Any, int],
    ) -> Tally:
        self.requests += requests
        self.failures += failures
        self.none_requests += none_requests
        self.total_response_time += total_response_time
        if min_response_time is not None:
            self.min_response_time = (
                min_response_time if self.min_response_time is None else min(self.min_response_time, min_response_time)
            )
        self.max_response_time = max(self.max_response_time, max_response_time or 0)
        for response_time, count in histogram.items():
            self.histogram[response_time] = self.histogram.get(response_time, 0) + count
        return self

    def merge(self, other: Tally) -> Tally:
        return self.add(
            other.requests,
            other.failures,
            other.none_requests,
            other.total_response_time,
            other.min_response_time,
            other.max_response_time,
            other.histogram,
        )

    def summary(self, seconds: float) -> dict[str, Any]:
        return summary(
            requests=self.requests,
            failures=self.failures,
            none_requests=self.none_requests,
            total_response_time=self.total_response_time,
            min_response_time=self.min_response_time,
            max_response_time=self.max_response_time,
            histogram=self.histogram,
            seconds=seconds,
        )
