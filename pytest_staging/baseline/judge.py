"""Judge this run's metrics against a baseline's, the way Kayenta's canary judge does. Pure.

Per metric (:func:`judge_metric`):

1. NaNs are dropped (and counted). No values on either side: ``NODATA``. Fewer than the rule's
   ``min_samples`` on either side: ``INCONCLUSIVE`` (never a pass).
2. The two-sided Mann-Whitney U test (normal approximation with tie and continuity corrections,
   as ``scipy.stats.mannwhitneyu(method="asymptotic")`` and R's ``wilcox.test``) and the
   Hodges-Lehmann shift of current over baseline: the median of every difference
   ``current[i] - baseline[j]``, with its distribution-free confidence interval (the order
   statistics ``k`` and ``mn + 1 - k`` of those differences, ``k = floor(mn/2 - z * sd(U))``).
3. Classification: ``High`` when the interval lies above zero, ``Low`` when below, else ``Pass``;
   when ties pin the interval to zero but the test's p-value is below 1 - confidence, ``High`` or
   ``Low`` by the way the ranks moved (U against its mean).
4. Effect size (:func:`shift_effect`): (baseline median + shift) / baseline median, worse over
   better, which outliers do not move. With the rule's ``effect = "mean"``, the ratio of the
   means instead (:func:`means_effect`: the medians' when outliers move the means against the
   ranks); when ties hold the shift (often at 0), that one too, if it is larger. A baseline
   median (or mean) of 0 or below gives no ratio: a significant shift the bad way is then beyond
   every limit.
5. A shift in the rule's bad direction is a ``PASS`` when its estimate is below ``min_shift`` (in
   the metric's unit; when ties hold the estimate at 0, the difference of the means counts); else beyond ``allowed`` it is ``MARGINAL``, at or beyond
   ``critical_ratio`` ``FAIL``. Samples too small for an interval at this confidence are
   ``INCONCLUSIVE``. Absolute gates (k6 syntax) are checked on the current values whatever the
   baseline holds; a breach is a ``FAIL``.

Overall (:func:`overall`), in this order: a breached gate, a ``FAIL`` on a ``critical`` metric,
``NODATA`` in this run on a ``must_have_data`` one, or a score (the weighted share of judged
metrics that passed, 0-100) below the marginal score fails the comparison: evidence of a
regression outweighs whatever is missing. A ``critical`` metric that could not be judged makes it
``INCONCLUSIVE``/``NODATA``; so do half or more of the baseline's metrics without data in this
run (``NODATA``) or with too few samples (``INCONCLUSIVE``); nothing judged is ``NODATA``; else
the score gives ``PASS`` (>= pass score) or ``MARGINAL``.

Differences are counted, never listed: the median and interval of ``m * n`` differences are found
by randomised selection over the sorted samples in O((m + n) log(m + n)) per round (blocks of
tied values split three ways around a pivot), so 5,000 samples a side take milliseconds and a
few megabytes, not the 25 million differences' worth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from statistics import NormalDist
from typing import Any, NamedTuple

import numpy as np

from ..core.thresholds import Threshold
from .rules import Rule

PASS, MARGINAL, FAIL, INCONCLUSIVE, NODATA = "PASS", "MARGINAL", "FAIL", "INCONCLUSIVE", "NODATA"
RESULTS = (PASS, MARGINAL, FAIL, INCONCLUSIVE, NODATA)
#: A metric this run measured that the baseline does not have: reported, never counted as missing.
NOT_IN_BASELINE = "not in the baseline"
#: NODATA reasons that mean this run lacks the metric (``must_have_data``, "half or more").
MISSING = ("not measured in this run", "no values in this run")

#: Windows of at most this many differences are sorted outright; bigger ones are narrowed first.
_GATHER = 16384
#: Differences drawn per narrowing round, and how far (in sample standard errors) the bracket
#: reaches around the wanted rank: wide enough that it almost always holds it.
_SAMPLE = 2048
_REACH = 2.0


class Shift(NamedTuple):
    """Mann-Whitney U of current against baseline, and the Hodges-Lehmann shift with its interval."""

    u: float
    p_value: float
    estimate: float
    low: float
    high: float
    #: False when the samples are too small for an interval at this confidence (the widest one,
    #: smallest to largest difference, is given then).
    reachable: bool = True


class Scores(NamedTuple):
    passing: float = 95.0
    marginal: float = 75.0


def clean(values: Iterable[float]) -> tuple[np.ndarray, int]:
    """The finite values, sorted, and how many were NaN or infinite."""
    array = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64)
    finite = array[np.isfinite(array)]
    finite.sort()
    return finite, int(array.size - finite.size)


def shift(current: np.ndarray, baseline: np.ndarray, confidence: float = 0.98, seed: int = 0) -> Shift:
    """Rank-sum test and Hodges-Lehmann shift of ``current`` over ``baseline``; both sorted, finite
    and non-empty."""
    x, y = current, baseline
    n1, n2 = x.size, y.size
    # U of the current sample: for each x, the baseline values below it, ties counting half.
    u = float((np.searchsorted(y, x, "left").sum() + np.searchsorted(y, x, "right").sum()) / 2)
    both = np.sort(np.concatenate((x, y)))
    n = both.size
    ties = np.diff(np.flatnonzero(np.diff(np.concatenate(([-np.inf], both, [np.inf])))))
    tie_term = float((ties.astype(np.float64) ** 3 - ties).sum())
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    mean_u = n1 * n2 / 2.0
    if variance > 0:
        z = (max(u, n1 * n2 - u) - mean_u - 0.5) / math.sqrt(variance)
        p_value = min(1.0, math.erfc(z / math.sqrt(2)))
    else:  # every value tied: nothing tells the samples apart
        p_value = 1.0

    pairs = n1 * n2
    z_crit = NormalDist().inv_cdf(0.5 + confidence / 2)
    middle = (pairs + 1) // 2
    wanted = math.floor(mean_u - z_crit * math.sqrt(variance))
    k = min(middle, max(1, wanted))
    # Differences x[i] - y[j] == x[i] + z[j] with z = -y ascending: every row is sorted.
    low, centre, high = _order_statistics(
        x, -y[::-1], [(k, k), (middle, middle + 1 - pairs % 2), (pairs + 1 - k, pairs + 1 - k)], seed
    )
    estimate = centre[0] if pairs % 2 else (centre[0] + centre[1]) / 2
    return Shift(u, p_value, float(estimate), float(low[0]), float(high[0]), wanted >= 1)


def _counts(x: np.ndarray, z: np.ndarray, pivot: float, right: bool) -> np.ndarray:
    """Per row i, how many j have ``x[i] + z[j] < pivot`` (``<=`` when ``right``), computed on the
    rounded sums themselves, so the split agrees with the values that get compared later."""
    # Ascending keys let searchsorted start each search where the last one ended.
    count = np.searchsorted(z, (pivot - x)[::-1], "right" if right else "left")[::-1]
    last = z.size
    for _ in range(3):  # pivot - x[i] is rounded: move each split to where the sums really cross
        sums = x + z[np.maximum(count - 1, 0)]
        back = (count > 0) & ((sums > pivot) if right else (sums >= pivot))
        sums = x + z[np.minimum(count, last - 1)]
        ahead = (count < last) & ((sums <= pivot) if right else (sums < pivot))
        if not (back.any() or ahead.any()):
            return count
        count = count - back + ahead
    # Still moving: values so far apart that the rounding spans many columns. Bisect every row
    # on the sums themselves (rows are sorted, so the test is monotone): O(log n) vector steps.
    low, high = np.zeros(x.size, dtype=np.int64), np.full(x.size, last, dtype=np.int64)
    while (open_ := low < high).any():
        middle = (low + high) // 2
        sums = x + z[np.minimum(middle, last - 1)]
        inside = (sums <= pivot) if right else (sums < pivot)
        low = np.where(open_ & inside, middle + 1, low)
        high = np.where(open_ & ~inside, middle, high)
    return low


def _order_statistics(x: np.ndarray, z: np.ndarray, groups: Sequence[tuple[int, int]], seed: int) -> list[np.ndarray]:
    """For each ``(first, last)``: the values of ranks first..last (1-based) among all
    ``x[i] + z[j]`` (x, z ascending). The groups are narrowed together while they can share."""
    rng = np.random.default_rng(seed)
    window = np.zeros(x.size, dtype=np.int64), np.full(x.size, z.size, dtype=np.int64)
    first, last = min(g[0] for g in groups), max(g[1] for g in groups)
    shared = _narrow(x, z, window, first, last, rng, stop=2 * (last - first + 1) + _GATHER)
    return [_values(x, z, _narrow(x, z, shared, a, b, rng, stop=_GATHER + b - a, ties=True), a, b) for a, b in groups]


def _values(
    x: np.ndarray, z: np.ndarray, window: tuple[np.ndarray, np.ndarray] | np.ndarray, first: int, last: int
) -> np.ndarray:
    if not isinstance(window, tuple):  # found while narrowing (tied values)
        return window
    left, right = window
    width = right - left
    total = int(width.sum())
    rows = np.repeat(np.arange(x.size), width)
    starts = np.repeat(left - (np.cumsum(width) - width), width)
    values = x[rows] + z[np.arange(total) + starts]
    values.sort()
    below = int(left.sum())
    return values[first - below - 1 : last - below]


def _narrow(
    x: np.ndarray,
    z: np.ndarray,
    window: tuple[np.ndarray, np.ndarray] | np.ndarray,
    first: int,
    last: int,
    rng: np.random.Generator,
    stop: int,
    ties: bool = False,
) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
    """Shrink the window (per row, the columns ``left[i]:right[i]`` still in play; everything left
    of it ranks below, everything right of it above) around ranks first..last (at most two, when
    ``ties``), until it holds at most ``stop`` differences. Returns the window, or the values
    themselves when tied values settle them."""
    if not isinstance(window, tuple):
        return window
    left, right = window
    while True:
        width = right - left
        total = int(width.sum())
        if total <= stop:
            return left, right
        below = int(left.sum())
        # A random sample of the window's differences brackets the wanted ranks.
        ends = np.cumsum(width)
        picks = rng.integers(0, total, _SAMPLE)
        row = np.searchsorted(ends, picks, "right")
        sample = np.sort(x[row] + z[left[row] + picks - (ends[row] - width[row])])
        reach = _REACH * math.sqrt(_SAMPLE)
        low_at = math.floor((first - below) / total * _SAMPLE - reach)
        high_at = math.ceil((last - below) / total * _SAMPLE + reach)
        low_pivot = sample[low_at] if low_at >= 0 else None
        high_pivot = sample[high_at] if high_at < _SAMPLE else None
        new_left = left if low_pivot is None else np.clip(_counts(x, z, low_pivot, False), left, right)
        new_right = right if high_pivot is None else np.clip(_counts(x, z, high_pivot, True), left, right)
        under = int(new_left.sum())  # ranks below the low pivot
        upto = int(new_right.sum())  # ranks up to the high pivot
        if last <= under:  # every wanted rank lies below the low pivot
            right = new_left
        elif first > upto:  # every wanted rank lies above the high pivot
            left = new_right
        else:
            left = new_left if first > under else left
            right = new_right if last <= upto else right
        if int((right - left).sum()) < total:
            continue
        # No progress: blocks of tied values span the bracket. Split three ways on the value at
        # the first wanted rank: below it, equal to it (settles those ranks), above it.
        if not ties:
            return left, right
        pivot = sample[min(max(math.floor((first - below - 0.5) / total * _SAMPLE), 0), _SAMPLE - 1)]
        less = np.clip(_counts(x, z, pivot, False), left, right)
        most = np.clip(_counts(x, z, pivot, True), left, right)
        under, upto = int(less.sum()), int(most.sum())
        if first <= under:
            right = less
        elif first > upto:
            left = most
        elif last <= upto:
            return np.full(last - first + 1, pivot)
        else:  # the second rank is the next value up: the smallest first column past the ties
            rows = most < right
            following = (x[rows] + z[most[rows]]).min()
            return np.array([pivot, following])


def percentile(values: np.ndarray, q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default) of sorted finite values; None if empty."""
    return float(np.percentile(values, q)) if values.size else None


#: Percentiles kept per side: the table shows median and p95, a report draws the distribution.
QUANTILES = {"min": 0, "p5": 5, "p25": 25, "median": 50, "p75": 75, "p95": 95, "max": 100}


def summary(values: np.ndarray) -> dict[str, Any]:
    """Count, mean and the :data:`QUANTILES` of sorted finite values (None each when empty)."""
    if not values.size:
        return {"count": 0, "mean": None, **dict.fromkeys(QUANTILES)}
    found = np.percentile(values, list(QUANTILES.values()))
    return {
        "count": int(values.size),
        "mean": float(values.mean()),
        **{k: float(v) for k, v in zip(QUANTILES, found, strict=False)},
    }


def gate_value(gate: Threshold, values: np.ndarray) -> float | None:
    """A gate's statistic over a series: ``pN``, ``avg``, ``min``, ``max`` (``med`` is ``p50``)."""
    if not values.size:
        return None
    if gate.metric == "avg":
        return float(values.mean())
    if gate.metric == "min":
        return float(values[0])
    if gate.metric == "max":
        return float(values[-1])
    return percentile(values, float(gate.metric[1:]))


def effect_size(current: float, baseline: float, direction: str) -> float:
    """The ratio of two levels of a metric, this run's over the baseline's, worse over better:
    1.0 = no change, above 1 worse, below 1 better (``decrease`` is the reciprocal of
    ``increase``; for ``either`` every change is worse: the larger of the two). Levels that are not
    both positive give no ratio: inf, so a significant shift the bad way counts as beyond every
    limit."""
    if current == baseline:
        return 1.0
    if current <= 0 or baseline <= 0:
        return math.inf
    ratio = current / baseline
    if direction == "increase":
        return ratio
    if direction == "decrease":
        return 1 / ratio
    return max(ratio, 1 / ratio)


def shift_effect(baseline_median: float, estimate: float, direction: str) -> float:
    """The robust effect size: (baseline median + Hodges-Lehmann shift) / baseline median, worse
    over better. Outliers move neither the median nor the shift; a baseline median of 0 or below
    gives no ratio (inf) unless the shift is 0."""
    return effect_size(baseline_median + estimate, baseline_median, direction)


def means_effect(
    current: dict[str, Any], baseline: dict[str, Any], classification: str, bad: bool, direction: str
) -> tuple[float, str]:
    """The ratio of the means (``effect = "mean"``) and a note: the medians' when the shift is the
    bad way by rank while outliers pull the means the other way (the means would call a
    regression an improvement)."""
    now, then = current["mean"], baseline["mean"]
    if bad and now != then and (classification == "High") != (now > then):
        return effect_size(
            current["median"], baseline["median"], direction
        ), " (means moved the other way: effect from the medians)"
    return effect_size(now, then, direction), ""


def judge_metric(
    name: str,
    current: Iterable[float] | None,
    baseline: Iterable[float] | None,
    rule: Rule,
    confidence: float = 0.98,
    unit: str = "",
) -> dict[str, Any]:
    """One metric's result, as the verdict's ``baseline.metrics[]`` entry."""
    now, now_bad = clean(current if current is not None else ())
    then, then_bad = clean(baseline if baseline is not None else ())
    entry: dict[str, Any] = {
        "name": name,
        "unit": unit,
        "direction": rule.direction,
        "critical": rule.critical,
        "weight": rule.weight,
        "baseline": summary(then),
        "current": summary(now),
        "dropped": {"baseline": then_bad, "current": now_bad},
        "classification": None,
        "shift": None,
        "ci": None,
        "pValue": None,
        "effectSize": None,
        "gates": [],
    }
    breached = []  # gates are absolute: checked on this run's values whatever the baseline has
    for gate in rule.gates:
        value = gate_value(gate, now)
        ok = gate.holds(value)
        entry["gates"].append({"expression": gate.expression, "value": value, "ok": ok})
        if not ok and value is not None:
            breached.append(gate.expression)
    if breached:
        entry.update(result=FAIL, reason=f"gate breached: {', '.join(breached)}")
    if current is None or not now.size:
        why = "not measured in this run" if current is None else "no values in this run"
        return entry if breached else {**entry, "result": NODATA, "reason": why}
    if baseline is None or not then.size:
        why = NOT_IN_BASELINE if baseline is None else "no values in the baseline"
        return entry if breached else {**entry, "result": NODATA, "reason": why}
    if now.size < rule.min_samples or then.size < rule.min_samples:
        why = f"too few samples ({then.size} baseline, {now.size} current; min_samples {rule.min_samples})"
        return entry if breached else {**entry, "result": INCONCLUSIVE, "reason": why}
    found = shift(now, then, confidence)
    tied = False
    if found.low > 0 or found.high < 0:
        classification, note = ("High" if found.low > 0 else "Low"), ""
    elif found.p_value < 1 - confidence:
        # Ties (counts, mostly-zero ratios) can pin the shift's interval to 0 while the rank test
        # sees a difference; U says which way (above its mean: the current values rank higher).
        higher = found.u > now.size * then.size / 2
        classification, note, tied = (
            ("High" if higher else "Low"),
            f" (rank test p={found.p_value:.2g}; shift within ties)",
            True,
        )
    else:
        classification, note = "Pass", ""
    bad = classification != "Pass" and (
        rule.direction == "either" or (classification == "High") == (rule.direction == "increase")
    )
    if rule.effect == "mean":
        effect, more = means_effect(entry["current"], entry["baseline"], classification, bad, rule.direction)
        note += more
    else:
        # Outside ties the shift's interval lies on the classification's side of 0, so this ratio
        # agrees with the ranks: outliers cannot make a regression read as an improvement.
        effect = shift_effect(entry["baseline"]["median"], found.estimate, rule.direction)
        if tied:  # ties hold the shift (often at 0) where the ranks saw a change: the levels size it
            by_levels, more = means_effect(entry["current"], entry["baseline"], classification, bad, rule.direction)
            if by_levels > effect:
                effect, note = by_levels, note + (more or " (effect from the means)")
    entry.update(
        classification=classification,
        shift=found.estimate,
        ci=[found.low, found.high],
        pValue=found.p_value,
        effectSize=None if math.isinf(effect) else effect,
    )
    if breached:
        return entry
    if not found.reachable:
        level = f"{confidence * 100:g}%"
        why = f"too few samples for a {level} interval ({then.size} baseline, {now.size} current)"
        return {**entry, "result": INCONCLUSIVE, "reason": why}
    shown = "no ratio" if math.isinf(effect) else f"x{effect:.2f}"
    magnitude = abs(found.estimate)
    if tied:  # a shift that ties hold at 0 is not small: the levels moved, and by this much
        magnitude = max(magnitude, abs(entry["current"]["mean"] - entry["baseline"]["mean"]))
    if bad and magnitude < rule.min_shift:
        small = f"shift {found.estimate:+.3g}{' ' + unit if unit else ''} < min_shift {rule.min_shift:g}"
        return {**entry, "result": PASS, "reason": f"{classification}: {shown}, {small}{note}"}
    if bad and effect >= rule.critical_ratio:
        return {
            **entry,
            "result": FAIL,
            "reason": f"{classification}: {shown} >= critical_ratio {rule.critical_ratio:g}{note}",
        }
    if bad and effect > rule.allowed:
        return {**entry, "result": MARGINAL, "reason": f"{classification}: {shown} > allowed {rule.allowed:g}{note}"}
    if bad:
        why = f"{classification}: {shown} within allowed {rule.allowed:g}{note}"
    else:
        why = "no significant shift" if classification == "Pass" else f"{classification}: {shown}, the good way{note}"
    return {**entry, "result": PASS, "reason": why}


def judge(
    current: Mapping[str, Sequence[float]],
    baseline: Mapping[str, Sequence[float]],
    rule_for: Callable[[str], Rule],
    *,
    confidence: float = 0.98,
    scores: Scores = Scores(),  # noqa: B008  (an immutable named tuple, shared safely)
    units: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Every metric of either side judged, then the comparison's result and score."""
    units = units or {}
    metrics = [
        judge_metric(name, current.get(name), baseline[name], rule_for(name), confidence, units.get(name, ""))
        for name in sorted(baseline)
    ]
    metrics += [
        judge_metric(name, current[name], None, rule_for(name), confidence, units.get(name, ""))
        for name in sorted(set(current) - set(baseline))
    ]
    result, score, reason = overall(metrics, [rule_for(m["name"]) for m in metrics], scores, len(baseline))
    return {"result": result, "score": score, "reason": reason, "metrics": metrics}


def _too_few(inconclusive: Sequence[tuple[dict[str, Any], Rule]], known: int) -> str:
    """Why most metrics were not judged, and what to do: the sparsest metric's counts and its rule."""
    metric, rule = min(inconclusive, key=lambda pair: min(pair[0]["baseline"]["count"], pair[0]["current"]["count"]))
    return (
        f"{len(inconclusive)} of {known} baseline metrics had too few samples to judge "
        f"(fewest: {metric['name']}, {metric['baseline']['count']} baseline and {metric['current']['count']} "
        f"current values, min_samples {rule.min_samples} on each side); record more values per metric "
        "(more requests or a load run) in both runs, or lower min_samples for them in "
        '[tool.pytest_staging.metrics."NAME"]'
    )


def overall(
    metrics: Sequence[dict[str, Any]], rules: Sequence[Rule], scores: Scores, known: int
) -> tuple[str, float | None, str]:
    """The comparison's result, score (None when nothing was judged) and a one-line reason."""
    pairs = list(zip(metrics, rules, strict=False))
    judged = [(m, rule) for m, rule in pairs if m["result"] in (PASS, MARGINAL, FAIL)]
    weight = sum(rule.weight for _, rule in judged)
    score = (
        round(100.0 * sum(rule.weight for m, rule in judged if m["result"] == PASS) / weight, 2) if weight > 0 else None
    )

    def names(found: Iterable[dict[str, Any]]) -> str:
        return ", ".join(m["name"] for m in found)

    breached = [m for m, _ in pairs if any(not g["ok"] and g["value"] is not None for g in m["gates"])]
    if breached:
        return FAIL, score, f"absolute gate breached: {names(breached)}"
    critical = [m for m, rule in pairs if m["result"] == FAIL and rule.critical]
    if critical:
        return FAIL, score, f"critical metric failed: {names(critical)}"
    missing = [m for m, rule in pairs if m["result"] == NODATA and rule.must_have_data and m["reason"] in MISSING]
    if missing:
        return FAIL, score, f"no data for a metric that must have it: {names(missing)}"
    if score is not None and score < scores.marginal:  # evidence of a regression, whatever is missing
        return FAIL, score, f"score {score:g} < {scores.marginal:g} (marginal)"
    unjudged = [
        m
        for m, rule in pairs
        if rule.critical and m["result"] in (INCONCLUSIVE, NODATA) and m["reason"] != NOT_IN_BASELINE
    ]
    if unjudged:  # a metric that can fail the comparison alone was not judged: no pass without it
        result = INCONCLUSIVE if any(m["result"] == INCONCLUSIVE for m in unjudged) else NODATA
        return (
            result,
            score,
            f"critical metric not judged: {', '.join(m['name'] + ' (' + m['reason'] + ')' for m in unjudged)}",
        )
    nodata = sum(1 for m in metrics if m["result"] == NODATA and m["reason"] in MISSING)
    if known and nodata * 2 >= known:
        return NODATA, score, f"{nodata} of {known} baseline metrics have no data in this run"
    inconclusive = [(m, rule) for m, rule in pairs if m["result"] == INCONCLUSIVE]
    if known and len(inconclusive) * 2 >= known:
        return INCONCLUSIVE, score, _too_few(inconclusive, known)
    if score is None:
        return NODATA, None, "no metric to compare"
    if score >= scores.passing:
        return PASS, score, f"score {score:g} >= {scores.passing:g}"
    return MARGINAL, score, f"score {score:g} < {scores.passing:g} (pass), >= {scores.marginal:g} (marginal)"
