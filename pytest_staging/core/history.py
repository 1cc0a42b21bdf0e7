"""Promotion history: the staging SLIs of many verdicts, added up one verdict at a time. Pure.

A :class:`History` takes statements one by one (:meth:`History.add`) and keeps only counts, sums,
two floats per run (gate duration, promotion latency) and two counts per test node id, never
a statement: memory does not grow with the statements beyond those floats (bench/history.py).

What a run is: a verdict of a whole run. A shard's partial verdict (``predicate.shard``) is part of
a run, not a run: it is not counted (the merged verdict, which has ``predicate.shards``, is).

The SLIs, overall and per environment (``target.environment``):
- promotion success rate: PROMOTE verdicts / runs;
- validation pass rate: the mean of the runs' ``sli.validationPassRate`` (runs with validations);
- promotion latency: ``timeVerified - release.buildTime`` of the PROMOTE verdicts with a build
  time (a negative one, a clock out of step, is left out), p50 and p95;
- flakiness rate: the mean of the runs' ``sli.flakinessRate``;
- gate duration: ``session.durationSeconds`` of the runs that finished (``session.exitStatus``
  set: the ``incomplete`` HOLD of a run killed outright has no duration), p50 and p95;
- HOLD and REJECT reasons by code.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
from array import array
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeGuard

from .errors import ConfigError

DECISIONS = ("PROMOTE", "HOLD", "REJECT")
#: The quantiles reported, in percent.
QUANTILES = (50, 95)
#: Outcomes of a test that did not run.
_NOT_RUN = ("skipped", "notrun")


def quantile(values: Sequence[float], percent: int) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``percent``% of the values at
    or below it (always one of the values); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-percent * len(ordered) // 100)  # ceil in integers: no float rounding at the edges
    return ordered[max(rank, 1) - 1]


def parse_time(text: Any) -> float | None:
    """A verdict's time (``2025-01-31T12:00:00.000000Z``, any ISO 8601 with a zone) as epoch seconds."""
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()


def parse_build_time(text: str, where: str) -> float:
    """``--staging-build-time``: ISO 8601 with a time zone (``2025-01-31T12:00:00Z``) or epoch
    seconds (``1738324800``, as ``SOURCE_DATE_EPOCH`` holds), as epoch seconds."""
    value = text.strip()
    moment = None
    try:
        if value.replace(".", "", 1).isdigit():
            seconds = float(value)
        else:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            seconds = moment.timestamp()
        dt.datetime.fromtimestamp(seconds, dt.timezone.utc)  # within the years a verdict can write
    except (ValueError, OverflowError, OSError):
        raise ConfigError(
            where, "", f"{text!r} is not a time; give ISO 8601 (2025-01-31T12:00:00Z) or epoch seconds (1738324800)"
        ) from None
    if moment is not None and moment.tzinfo is None:  # a local time would depend on the machine's zone
        raise ConfigError(where, "", f"{text!r} has no time zone; add one, e.g. {value}Z for UTC")
    return seconds


class Runs:
    """The runs of one environment (or of all)."""

    def __init__(self) -> None:
        self.runs = 0
        self.decisions: Counter[str] = Counter()
        self.validation_sum = 0.0
        self.validation_runs = 0
        self.flakiness_sum = 0.0
        self.flakiness_runs = 0
        # Compact arrays of C doubles: 8 bytes a run, the only thing that grows with the runs.
        self.latencies = array("d")
        self.durations = array("d")
        #: (decision, code) -> count, for HOLD and REJECT.
        self.reasons: Counter[tuple[str, str]] = Counter()
        self.first: float | None = None
        self.last: float | None = None

    def add(self, predicate: dict[str, Any], verified_at: float | None) -> None:
        decision = predicate.get("decision")
        self.runs += 1
        self.decisions[str(decision)] += 1
        sli = predicate.get("sli") or {}
        rate = sli.get("validationPassRate")
        if _number(rate):
            self.validation_sum += rate
            self.validation_runs += 1
        rate = sli.get("flakinessRate")
        if _number(rate):
            self.flakiness_sum += rate
            self.flakiness_runs += 1
        if decision == "PROMOTE" and verified_at is not None:
            built = parse_time((predicate.get("release") or {}).get("buildTime"))
            if built is not None and verified_at >= built:
                self.latencies.append(verified_at - built)
        session = predicate.get("session") or {}
        duration = session.get("durationSeconds")
        if session.get("exitStatus") is not None and _number(duration) and duration >= 0:
            self.durations.append(float(session["durationSeconds"]))
        if decision in ("HOLD", "REJECT"):  # each code once a run: how many runs it held or rejected
            codes = {
                str((reason.get("code") if isinstance(reason, dict) else None) or "uncoded")
                for reason in predicate.get("reasons") or ()
            }
            for code in codes:
                self.reasons[(decision, code)] += 1
        if verified_at is not None:
            self.first = verified_at if self.first is None else min(self.first, verified_at)
            self.last = verified_at if self.last is None else max(self.last, verified_at)

    @property
    def promotion_success(self) -> float | None:
        return self.decisions["PROMOTE"] / self.runs if self.runs else None

    @property
    def validation_pass(self) -> float | None:
        return self.validation_sum / self.validation_runs if self.validation_runs else None

    @property
    def flakiness(self) -> float | None:
        return self.flakiness_sum / self.flakiness_runs if self.flakiness_runs else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``history --format json``)."""
        return {
            "runs": self.runs,
            "decisions": {decision: self.decisions[decision] for decision in DECISIONS},
            "promotionSuccessRate": _rounded(self.promotion_success),
            "validationPassRate": _rounded(self.validation_pass),
            "validationRuns": self.validation_runs,
            "flakinessRate": _rounded(self.flakiness),
            "promotionLatencySeconds": _spread(self.latencies),
            "gateDurationSeconds": _spread(self.durations),
            "reasons": {
                decision: dict(
                    sorted(
                        ((code, count) for (held, code), count in self.reasons.items() if held == decision),
                        key=lambda item: (-item[1], item[0]),
                    )
                )
                for decision in ("HOLD", "REJECT")
            },
            "first": _iso(self.first),
            "last": _iso(self.last),
        }


class Recent(NamedTuple):
    """One run as the report's history chart draws it."""

    verified_at: float
    decision: str
    duration: float | None
    environment: str
    release: str | None
    #: Where it was read from (the report leaves out the verdict it is about).
    source: str


class History:
    """Statements added one at a time (:meth:`add`); ``recent`` keeps the last runs for a chart."""

    def __init__(self, *, since: float | None = None, recent: int = 0) -> None:
        #: Runs verified before this epoch time are left out (``--since``).
        self.since = since
        self.overall = Runs()
        self.environments: dict[str, Runs] = {}
        #: Per node id: the runs it ran in, the runs it was flaky in, its quarantine owner (the latest).
        self.ran: Counter[str] = Counter()
        self.flaky: Counter[str] = Counter()
        self.owners: dict[str, str] = {}
        #: Verdicts read but not counted: partial shard verdicts, older than ``since``.
        self.partials = 0
        self.older = 0
        self._recent_limit = recent
        self._recent: list[tuple[float, int, Recent]] = []  # a min-heap: the oldest kept goes first
        self._added = 0

    def add(self, statement: dict[str, Any], source: str = "") -> bool:
        """Count one verdict's statement; False when it is not counted (a partial, too old).
        ``predicate.tests`` may be None (the gate's own statement after signing): then only the
        per-test table misses this run."""
        predicate = statement["predicate"]
        if predicate.get("shard"):
            self.partials += 1
            return False
        verified_at = parse_time(predicate.get("timeVerified"))
        if self.since is not None and (verified_at is None or verified_at < self.since):
            self.older += 1
            return False
        environment = str((predicate.get("target") or {}).get("environment") or "unknown")
        self.overall.add(predicate, verified_at)
        self.environments.setdefault(environment, Runs()).add(predicate, verified_at)
        self._add_tests(predicate)
        if self._recent_limit and verified_at is not None:
            session = predicate.get("session") or {}
            duration = session.get("durationSeconds") if session.get("exitStatus") is not None else None
            release = predicate.get("release") or {}
            entry = Recent(
                verified_at,
                str(predicate.get("decision")),
                float(duration) if _number(duration) else None,
                environment,
                release.get("id") or release.get("deployedVersion"),
                source,
            )
            self._added += 1  # a tie-breaker: Recent entries are never compared
            item = (verified_at, self._added, entry)
            if len(self._recent) < self._recent_limit:
                heapq.heappush(self._recent, item)
            else:
                heapq.heappushpop(self._recent, item)
        return True

    def _add_tests(self, predicate: dict[str, Any]) -> None:
        # Speed: one dictionary update per test that ran (bench/history.py: most of what this
        # module costs a verdict of 200 tests); the flaky ones and their owners come from the
        # predicate's own lists of flaky and quarantined tests.
        ran = self.ran
        for test in predicate.get("tests") or ():
            if test["outcome"] not in _NOT_RUN:
                ran[test["nodeid"]] += 1
        for test in predicate.get("flaky") or ():
            self.flaky[test["nodeid"]] += 1
        for test in (predicate.get("quarantine") or {}).get("tests") or ():
            owner = (test.get("quarantine") or {}).get("owner")
            if owner:
                self.owners[test["nodeid"]] = owner

    @property
    def recent(self) -> list[Recent]:
        """The last runs kept, oldest first."""
        return [entry for _, _, entry in sorted(self._recent)]

    def flakiest(self, limit: int = 10) -> list[Flaky]:
        """The tests that were flaky most often (then by rate, then node id); never-flaky ones left out."""
        found = [
            Flaky(nodeid, count, max(self.ran[nodeid], count), self.owners.get(nodeid))
            for nodeid, count in self.flaky.items()
        ]
        found.sort(key=lambda test: (-test.flaky, -test.flaky / test.ran, test.nodeid))
        return found[:limit]

    def to_dict(self, limit: int = 10) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "environments": {name: runs.to_dict() for name, runs in sorted(self.environments.items())},
            "flakiestTests": [
                {
                    "nodeid": test.nodeid,
                    "flakyRuns": test.flaky,
                    "runs": test.ran,
                    "rate": round(test.flaky / test.ran, 6),
                    "owner": test.owner,
                }
                for test in self.flakiest(limit)
            ],
        }


class Flaky(NamedTuple):
    nodeid: str
    #: Runs in which it was flaky (failed, then passed on a re-run).
    flaky: int
    #: Runs in which it ran.
    ran: int
    #: Its quarantine entry's owner, where a verdict had one.
    owner: str | None


def _number(value: Any) -> TypeGuard[float]:
    """A finite number (not a bool, NaN or an infinity: an unverified file may hold them)."""
    return type(value) in (int, float) and math.isfinite(value)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _spread(values: Sequence[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "sum": round(sum(values), 6),
        **{f"p{percent}": quantile(values, percent) for percent in QUANTILES},
    }


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
