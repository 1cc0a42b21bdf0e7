"""The baseline judge, its rules and its file: pure functions, checked against scipy and brute force."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from pytest_staging.baseline import judge as judge_module
from pytest_staging.baseline.judge import (
    FAIL,
    INCONCLUSIVE,
    MARGINAL,
    NODATA,
    PASS,
    Scores,
    clean,
    judge,
    judge_metric,
    shift,
    shift_effect,
)
from pytest_staging.baseline.rules import Rule, Rules, parse_tables
from pytest_staging.baseline.store import FORMAT, build, collect, load, mismatches
from pytest_staging.core.errors import ConfigError
from pytest_staging.core.ledger import TestRecord
from pytest_staging.core.thresholds import parse


def reference(x: np.ndarray, y: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """Hodges-Lehmann estimate and interval from every difference, listed and sorted."""
    differences = np.sort(np.subtract.outer(x, y).ravel())
    m, n = x.size, y.size
    _, ties = np.unique(np.concatenate((x, y)), return_counts=True)
    variance = m * n / 12 * ((m + n + 1) - (ties**3 - ties).sum() / ((m + n) * (m + n - 1)))
    k = math.floor(m * n / 2 - NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(variance))
    k = min(max(k, 1), (m * n + 1) // 2)
    return float(np.median(differences)), float(differences[k - 1]), float(differences[m * n - k])


samples = st.builds(
    lambda kind, seed, m, n, offset: _sample(kind, seed, m, n, offset),
    st.sampled_from(["normal", "ties", "lognormal", "tiny"]),
    st.integers(0, 2**32 - 1),
    st.integers(2, 400),
    st.integers(2, 400),
    st.floats(-3, 3),
)


def _sample(kind: str, seed: int, m: int, n: int, offset: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        x, y = rng.normal(offset, 1, m), rng.normal(0, 1, n)
    elif kind == "ties":  # few distinct values: heavy ties
        x, y = rng.integers(0, 4, m) + round(offset), rng.integers(0, 5, n).astype(float)
    elif kind == "lognormal":  # latency-like
        x, y = rng.lognormal(1 + offset / 10, 0.5, m), rng.lognormal(1, 0.5, n)
    else:  # values whose differences round: the selection must agree with the rounded sums
        x, y = rng.random(m) * 1e-9 + 1e6, rng.random(n) * 1e-9 + 1e6 + offset * 1e-10
    return clean(x.astype(float))[0], clean(y.astype(float))[0]


@settings(max_examples=120)
@given(samples, st.sampled_from([0.9, 0.95, 0.98, 0.99]))
def test_shift_matches_brute_force_and_scipy(pair, confidence):
    x, y = pair
    found = shift(x, y, confidence)
    assert (found.estimate, found.low, found.high) == reference(x, y, confidence)
    expected = mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    assert found.u == expected.statistic
    if not math.isnan(expected.pvalue):  # scipy gives NaN when every value is tied; we say 1
        assert found.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.fixture
def listed(monkeypatch) -> list[int]:
    """How many differences each final window listed (sorted outright) while selecting."""
    sizes: list[int] = []
    values = judge_module._values

    def watched(x, z, window, first, last):
        if isinstance(window, tuple):
            sizes.append(int((window[1] - window[0]).sum()))
        return values(x, z, window, first, last)

    monkeypatch.setattr(judge_module, "_values", watched)
    return sizes


def test_large_samples_use_the_selection_not_the_listing(listed):
    """5,000 a side: 25 million differences, never built (the window is bounded), same answer as
    a listing of them."""
    rng = np.random.default_rng(7)
    x, y = clean(rng.lognormal(1.1, 0.5, 5000))[0], clean(rng.lognormal(1, 0.5, 5000))[0]
    found = shift(x, y)
    assert max(listed) <= judge_module._GATHER + 1
    differences = np.subtract.outer(x, y).ravel()
    assert found.estimate == float(np.median(differences))
    assert found.low < found.estimate < found.high and found.low > 0


def test_every_value_tied():
    x = np.full(60, 5.0)
    found = shift(x, x.copy())
    assert found == (1800.0, 1.0, 0.0, 0.0, 0.0, True)


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: (np.zeros(5000), np.repeat([0.0, 1.0], 2500)),  # the median straddles two tie blocks
        lambda rng: (rng.poisson(3, 5000).astype(float), rng.poisson(4.5, 5000).astype(float)),
        lambda rng: (rng.integers(0, 40, 4000).astype(float), rng.integers(0, 41, 4000).astype(float)),
    ],
    ids=["two-blocks", "poisson", "integer-ms"],
)
def test_tied_samples_are_selected_not_listed(listed, make):
    """Tied values used to stall the narrowing and list the whole window (25M differences)."""
    x, y = (clean(a)[0] for a in make(np.random.default_rng(11)))
    found = shift(x, y)
    assert max(listed, default=0) <= judge_module._GATHER + 1
    assert (found.estimate, found.low, found.high) == reference(x, y, 0.98)


def test_values_far_apart_round_alike():
    """Differences of 1e16-scale values round to the same float over many columns."""
    rng = np.random.default_rng(12)
    x, y = clean(rng.random(600) + 1e16)[0], clean(rng.random(700))[0]
    found = shift(x, y)
    assert (found.estimate, found.low, found.high) == reference(x, y, 0.98)


def test_an_interval_too_wide_for_the_samples_is_inconclusive():
    entry = judge_metric("m", [10.0, 11.0], [1.0, 2.0], Rule(min_samples=2, critical=True))
    assert entry["result"] == INCONCLUSIVE and "too few samples for a 98% interval" in entry["reason"]


def test_a_shift_hidden_by_ties_is_still_seen():
    rng = np.random.default_rng(13)
    then, now = rng.poisson(3, 5000).astype(float), rng.poisson(3.3, 5000).astype(float)
    entry = judge_metric("queue depth", now, then, Rule(allowed=1.05))
    assert entry["ci"] == [0.0, 0.0] and entry["pValue"] < 1e-6  # the interval alone would not see it
    assert entry["classification"] == "High" and entry["result"] == MARGINAL and "rank test p=" in entry["reason"]
    failures = judge_metric("load /x fail_ratio", [0.0] * 90 + [0.2] * 10, [0.0] * 100, Rule())
    assert failures["classification"] == "High" and failures["result"] == FAIL  # from none to some


def test_identical_samples_pass():
    values = list(np.random.default_rng(1).lognormal(1, 0.5, 200))
    entry = judge_metric("GET /json", values, values, Rule())
    assert entry["result"] == PASS and entry["classification"] == "Pass"
    assert entry["shift"] == 0.0 and entry["ci"][0] <= 0 <= entry["ci"][1]


def test_shifted_samples_are_high_and_fail_beyond_critical():
    rng = np.random.default_rng(2)
    baseline = rng.lognormal(1, 0.3, 200)
    entry = judge_metric("GET /slow", baseline * 3, baseline, Rule())
    assert entry["classification"] == "High" and entry["result"] == FAIL
    assert entry["effectSize"] == pytest.approx(3.0, rel=0.02)  # a shift in ms sizes a scaling closely
    assert "critical_ratio 2" in entry["reason"]
    assert judge_metric("GET /slow", baseline * 3, baseline, Rule(effect="mean"))["effectSize"] == pytest.approx(3.0)


def test_significant_shift_between_allowed_and_critical_is_marginal():
    rng = np.random.default_rng(3)
    baseline = rng.lognormal(1, 0.1, 300)
    entry = judge_metric("m", baseline * 1.5, baseline, Rule())
    assert (entry["classification"], entry["result"]) == ("High", MARGINAL)
    tolerated = judge_metric("m", baseline * 1.1, baseline, Rule())
    assert (tolerated["classification"], tolerated["result"]) == ("High", PASS)
    assert "within allowed" in tolerated["reason"]


def test_direction_decides_which_way_is_bad():
    rng = np.random.default_rng(4)
    baseline = rng.lognormal(3, 0.1, 300)
    lower = baseline / 3
    assert judge_metric("rps", lower, baseline, Rule())["result"] == PASS  # latency down: good
    assert judge_metric("rps", lower, baseline, Rule(direction="decrease"))["result"] == FAIL
    assert judge_metric("rps", lower, baseline, Rule(direction="either"))["result"] == FAIL
    assert judge_metric("rps", baseline * 3, baseline, Rule(direction="decrease"))["result"] == PASS


def test_nan_is_dropped_and_counted():
    values = [1.0, 2.0, float("nan"), 3.0] * 20
    entry = judge_metric("m", values, [1.0, 2.0, 3.0] * 20, Rule())
    assert entry["dropped"] == {"baseline": 0, "current": 20}
    assert entry["current"]["count"] == 60 and entry["result"] == PASS


def test_too_few_samples_is_inconclusive_never_pass():
    entry = judge_metric("m", [1.0] * 49, [1.0] * 100, Rule())
    assert entry["result"] == INCONCLUSIVE and "min_samples 50" in entry["reason"]
    assert judge_metric("m", [1.0] * 10, [1.0] * 10, Rule(min_samples=10))["result"] == PASS


def test_nodata_either_side():
    assert judge_metric("m", None, [1.0] * 60, Rule())["reason"] == "not measured in this run"
    assert judge_metric("m", [float("nan")] * 60, [1.0] * 60, Rule())["reason"] == "no values in this run"
    assert judge_metric("m", [1.0] * 60, [float("nan")] * 60, Rule())["reason"] == "no values in the baseline"
    assert judge_metric("m", [1.0] * 60, None, Rule())["reason"] == "not in the baseline"


def test_gates_are_absolute():
    values = list(range(1, 101))
    gates = (parse("p(95) < 90"), parse("avg < 1000"))
    entry = judge_metric("m", values, values, Rule(gates=gates))
    assert entry["result"] == FAIL and "p(95) < 90" in entry["reason"]
    assert [g["ok"] for g in entry["gates"]] == [False, True]
    assert entry["gates"][0]["value"] == pytest.approx(95.05)
    # Absolute: a breached gate fails with too few samples to compare, or nothing to compare with.
    gate = Rule(gates=(parse("max < 100"),))
    assert judge_metric("m", [500.0] * 5, [1.0] * 5, gate)["result"] == FAIL
    assert judge_metric("m", [500.0] * 5, None, gate)["result"] == FAIL
    assert judge_metric("m", None, [1.0] * 5, gate)["result"] == NODATA  # no values: nothing breached
    # ... and it fails the whole comparison, however many other metrics pass.
    base = list(np.random.default_rng(8).lognormal(1, 0.1, 100))
    rules = Rules(parse_tables({"slow": {"gates": ["max < 100"]}}, "pyproject.toml"))
    result = judge({**{f"m{i}": base for i in range(30)}, "slow": [500.0]}, {f"m{i}": base for i in range(30)}, rules)
    assert result["result"] == FAIL and result["reason"] == "absolute gate breached: slow"


def _runs(**series):
    return {name: list(values) for name, values in series.items()}


def test_score_thresholds_and_critical():
    rng = np.random.default_rng(5)
    base = rng.lognormal(1, 0.1, 100)
    baseline = {f"m{i}": base for i in range(20)}
    current = {f"m{i}": base for i in range(20)}
    assert judge(current, baseline, Rules())["result"] == PASS
    current["m0"] = base * 3  # one of twenty: score 95
    assert judge(current, baseline, Rules())["result"] == PASS
    current["m1"] = base * 3  # score 90
    result = judge(current, baseline, Rules())
    assert (result["result"], result["score"]) == (MARGINAL, 90.0)
    current.update({f"m{i}": base * 3 for i in range(2, 6)})  # score 70
    assert judge(current, baseline, Rules())["result"] == FAIL
    critical = Rules(parse_tables({"m0": {"critical": True}}, "pyproject.toml"))
    one_bad = {**baseline, "m0": base * 3}
    result = judge(one_bad, baseline, critical)
    assert result["result"] == FAIL and "critical metric failed: m0" in result["reason"]
    assert judge(one_bad, baseline, Rules(), scores=Scores(96, 75))["result"] == MARGINAL


def test_missing_metrics():
    base = list(np.random.default_rng(6).lognormal(1, 0.1, 100))
    baseline = {"a": base, "b": base, "c": base}
    assert judge({"a": base, "b": base}, baseline, Rules())["result"] == PASS  # 1 of 3 missing
    result = judge({"a": base}, baseline, Rules())
    assert result["result"] == NODATA and "2 of 3" in result["reason"]
    must = Rules(parse_tables({"c": {"must_have_data": True}}, "pyproject.toml"))
    assert judge({"a": base, "b": base}, baseline, must)["result"] == FAIL
    # The baseline lacking values is not this run missing data.
    assert judge({"a": base, "b": base, "c": base}, {**baseline, "c": [float("nan")]}, must)["result"] == PASS
    # A critical metric that could not be judged holds the comparison, never lets it pass.
    critical = Rules(parse_tables({"c": {"critical": True}}, "pyproject.toml"))
    result = judge({"a": base, "b": base, "c": base[:10]}, baseline, critical)
    assert result["result"] == INCONCLUSIVE and "critical metric not judged: c" in result["reason"]
    assert judge({"a": base, "b": base}, baseline, critical)["result"] == NODATA
    # Half or more of the metrics too small to judge: inconclusive, even if the rest pass; the
    # reason says how many values the sparsest has and needs, and what to change.
    result = judge({"a": base, "b": base[:10], "c": base[:7]}, baseline, Rules())
    assert result["result"] == INCONCLUSIVE
    assert result["reason"].startswith("2 of 3 baseline metrics had too few samples to judge (fewest: c, ")
    assert f"{len(baseline['c'])} baseline and 7 current values, min_samples 50 on each side" in result["reason"]
    assert 'lower min_samples for them in [tool.pytest_staging.metrics."NAME"]' in result["reason"]
    # New metrics are reported, not counted as missing.
    result = judge({"a": base, "b": base, "c": base, "new": base}, baseline, Rules())
    assert result["result"] == PASS and result["metrics"][-1]["result"] == NODATA
    assert judge({"a": base[:10]}, {"a": base}, Rules())["result"] == INCONCLUSIVE


def test_rules_merge_in_order():
    rules = Rules(
        parse_tables({"GET /*": {"allowed": 1.5, "min_samples": 20}}, "baseline.json", "rules"),
        parse_tables(
            {"GET /orders*": {"allowed": 1.1, "critical": True, "gates": ["p(95) < 800"], "min_shift": 2}},
            "pyproject.toml",
        ),
        parse_tables({"GET /orders/1": {"effect": "mean"}}, "pyproject.toml"),
    )
    assert rules("GET /json") == Rule(allowed=1.5, min_samples=20)
    orders = rules("GET /orders/1")
    assert (orders.allowed, orders.min_samples, orders.critical, orders.min_shift, orders.effect) == (
        1.1,
        20,
        True,
        2.0,
        "mean",
    )
    assert rules("GET /orders/2").effect == "median"
    assert [g.expression for g in orders.gates] == ["p(95) < 800"]
    assert rules("load /get rps").direction == "decrease"  # built in
    assert rules("checkout total") == Rule()


@pytest.mark.parametrize(
    ("tables", "field", "fragment"),
    [
        ({"x": {"direction": "up"}}, '."x".direction', "increase, decrease, either"),
        ({"x": {"allowed": 0.5}}, '."x".allowed', "ratio >= 1"),
        ({"x": {"allowed": "big"}}, '."x".allowed', "ratio >= 1"),
        ({"x": {"min_samples": 1.5}}, '."x".min_samples', "whole number"),
        ({"x": {"critical": "yes"}}, '."x".critical', "true or false"),
        ({"x": {"gates": ["p95 < 3"]}}, '."x".gates', "'p95 < 3' is not METRIC"),
        ({"x": {"gates": ["rps > 3"]}}, '."x".gates', "without {name:...}"),
        ({"x": {"gates": ["avg{name:/a} < 3"]}}, '."x".gates', "without {name:...}"),
        ({"x": {"weight": -1}}, '."x".weight', "weight >= 0"),
        ({"x": {"weight": float("inf")}}, '."x".weight', "weight >= 0"),
        ({"x": {"allowed": float("nan")}}, '."x".allowed', "ratio >= 1"),
        ({"x": {"alowed": 2}}, '."x".alowed', "unknown field"),
        ({"x": {"effect": "p95"}}, '."x".effect', "expected one of median, mean, got 'p95'"),
        ({"x": {"min_shift": -0.5}}, '."x".min_shift', "shift >= 0 in the metric's unit"),
        ({"x": {"min_shift": "1ms"}}, '."x".min_shift', "shift >= 0 in the metric's unit"),
        ({"x": 3}, '."x"', "expected a table"),
    ],
)
def test_bad_rules_name_the_field(tables, field, fragment):
    with pytest.raises(ConfigError) as info:
        parse_tables(tables, "pyproject.toml")
    assert info.value.where == "pyproject.toml"
    assert info.value.field == "tool.pytest_staging.metrics" + field
    assert fragment in info.value.problem


def _file(tmp_path, **series):
    data = build(
        series=series,
        units={name: "ms" for name in series},
        target={"name": "staging", "url": "http://127.0.0.1:1", "environment": "staging"},
        release="1.0",
        decision="PROMOTE",
        profiles=[],
        tools={"python": "3"},
        created="2026-11-26T00:00:00.000000Z",
    )
    path = tmp_path / "baseline.json"
    path.write_bytes(data)
    return path


def test_baseline_file_round_trip(tmp_path):
    path = _file(tmp_path, **{"GET /json": [1.0, 2.5, float("nan")], "x": [3.0]})
    baseline = load(path)
    assert baseline.series["GET /json"][:2] == [1.0, 2.5] and math.isnan(baseline.series["GET /json"][2])
    assert baseline.units == {"GET /json": "ms", "x": "ms"}
    assert baseline.release == "1.0" and baseline.digest.startswith("sha256:")
    assert json.loads(path.read_text())["metrics"]["GET /json"]["values"][2] is None
    same = {"name": "staging", "url": "http://127.0.0.1:1"}
    assert mismatches(baseline, same, []) == []
    assert "target differs" in mismatches(baseline, {"name": "prod", "url": "https://x"}, [])[0]
    assert "load profile differs" in mismatches(baseline, same, [{"users": 5}])[0]


@pytest.mark.parametrize(
    ("content", "field", "fragment"),
    [
        ("{not json", "", "invalid JSON"),
        ('{"format": "other"}', "format", "not a baseline file"),
        (f'{{"format": "{FORMAT}", "version": 9}}', "version", "not supported"),
        (f'{{"format": "{FORMAT}", "version": 1}}', "metrics", "expected an object"),
        (
            f'{{"format": "{FORMAT}", "version": 1, "metrics": {{"m": {{"values": ["a"]}}}}}}',
            'metrics."m".values',
            "list of numbers",
        ),
        (
            f'{{"format": "{FORMAT}", "version": 1, "metrics": {{}}, "rules": {{"m": {{"allowed": 0}}}}}}',
            'rules."m".allowed',
            "ratio",
        ),
    ],
)
def test_bad_baseline_file(tmp_path, content, field, fragment):
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load(path, "b.json")
    assert (info.value.where, info.value.field) == ("b.json", field)
    assert fragment in info.value.problem


def test_collect_series_from_records():
    record = TestRecord("t::a", "smoke")
    record.add_metric("GET /json", 3.0, "ms")
    record.add_metric("GET /json", 4.0, "ms")
    load_run = {
        "profile": {"users": 5},
        "series": [
            {"t": t, "endpoints": {"/get": {"requests": 10 * t, "failures": t, "p50": 2.0, "p95": None}}}
            for t in range(1, 6)
        ],
    }
    other = TestRecord("t::b", "load", load_runs=[load_run])
    series, units = collect([record, other])
    assert series["GET /json"] == [3.0, 4.0] and units["GET /json"] == "ms"
    assert series["load /get rps"] == [20.0, 30.0, 40.0]  # first and last second left out
    assert series["load /get fail_ratio"] == [0.1, 0.1, 0.1]
    assert "load /get p95" not in series and units["load /get rps"] == "1/s"


def test_worse_by_rank_is_not_an_improvement_by_the_means():
    """One outlier pulls the baseline's mean up while the ranks say this run is worse: the effect
    is sized from the medians, never read as "x0.07, within allowed"."""
    entry = judge_metric("errors", [0.0] * 30 + [1.0] * 70, [0.0] * 50 + [1.0] * 49 + [1000.0], Rule())
    assert entry["classification"] == "High" and entry["result"] == FAIL
    assert "effect from the medians" in entry["reason"] and entry["effectSize"] == 2.0
    # Ties hold the shift at 0 here, so the default measure sizes it as effect = "mean" does.
    assert (
        judge_metric("errors", [0.0] * 30 + [1.0] * 70, [0.0] * 50 + [1.0] * 49 + [1000.0], Rule(effect="mean"))
        == entry
    )
    rng = np.random.default_rng(14)
    then = np.append(rng.lognormal(1.0, 0.1, 300), 10_000.0)
    now = rng.lognormal(1.05, 0.1, 300)  # 5% slower by rank, far "faster" by the means
    for effect in ("median", "mean"):
        entry = judge_metric("GET /x", now, then, Rule(effect=effect))
        assert entry["classification"] == "High" and entry["result"] == PASS and 1.0 < entry["effectSize"] < 1.2
    assert "effect from the medians" in entry["reason"]  # "mean": the ratio of the means would say x0.03


def test_outliers_do_not_make_an_unchanged_service_marginal():
    """Issue 14: an unchanged local service was REJECTed against its own baseline 1 run in 4. A
    significant shift of a hundredth of a millisecond, sized x1.48 by the ratio of the means
    because three slow requests moved them: MARGINAL, the only metric, score 0. The shift over
    the baseline median sizes it x1.01."""
    rng = np.random.default_rng(21)
    then = rng.lognormal(math.log(1.5), 0.02, 120)
    now = rng.lognormal(math.log(1.5), 0.02, 120) + 0.0165
    now[:3] = [40.0, 30.0, 20.0]  # a cold connection, a pause, a neighbour's burst
    entry = judge_metric("GET /get", now, then, Rule(), unit="ms")
    assert entry["classification"] == "High" and 0 < entry["shift"] < 0.03
    assert (entry["result"], entry["reason"]) == (PASS, "High: x1.01 within allowed 1.2")
    median = entry["baseline"]["median"]
    assert entry["effectSize"] == (median + entry["shift"]) / median
    assert judge({"GET /get": now}, {"GET /get": then}, Rules())["result"] == PASS
    means = judge_metric("GET /get", now, then, Rule(effect="mean"), unit="ms")  # the old measure
    assert (
        means["result"] == MARGINAL
        and means["effectSize"] == pytest.approx(now.mean() / then.mean())
        and means["effectSize"] > 1.4
    )
    assert (
        judge({"GET /get": now}, {"GET /get": then}, Rules(parse_tables({"*": {"effect": "mean"}}, "p")))["result"]
        == FAIL
    )


def test_min_shift_passes_a_shift_too_small_to_matter():
    rng = np.random.default_rng(22)
    then = rng.lognormal(math.log(0.2), 0.05, 200)  # a 0.2 ms call ...
    now = then * 1.5  # ... 50% slower: a tenth of a millisecond
    assert judge_metric("GET /get", now, then, Rule(), unit="ms")["result"] == MARGINAL
    entry = judge_metric("GET /get", now, then, Rule(min_shift=0.5), unit="ms")
    assert entry["result"] == PASS and entry["effectSize"] > 1.4
    assert entry["reason"].startswith("High: x1.5") and entry["reason"].endswith(", shift +0.1 ms < min_shift 0.5")
    assert judge_metric("GET /get", now, then, Rule(min_shift=0.5, effect="mean"))["result"] == PASS
    # Whatever its ratio: beyond critical_ratio on a critical metric, or with no ratio at all.
    assert judge_metric("GET /get", then * 4, then, Rule(min_shift=1, critical=True))["result"] == PASS
    assert judge_metric("m", then - 0.2, then - 0.4, Rule(min_shift=0.5))["result"] == PASS
    # A shift of min_shift or more is judged by its ratio as before; so is one the good way.
    assert judge_metric("GET /get", then + 0.6, then, Rule(min_shift=0.5))["result"] == FAIL
    assert judge_metric("rps", then + 0.6, then, Rule(min_shift=0.5, direction="decrease"))["reason"].endswith(
        "the good way"
    )
    assert judge_metric("rps", then, then + 0.3, Rule(min_shift=0.5, direction="decrease"))["result"] == PASS
    assert judge_metric("rps", then, then + 0.6, Rule(min_shift=0.5, direction="decrease"))["result"] == FAIL


@pytest.mark.parametrize(
    ("then", "now", "direction", "result"),
    [
        ([0.0] * 60 + [0.5] * 40, [1.0] * 100, "increase", FAIL),  # baseline median 0
        ([0.0] * 60 + [0.5] * 40, [1.0] * 100, "either", FAIL),
        ([0.0] * 60 + [0.5] * 40, [1.0] * 100, "decrease", PASS),  # the good way
        (list(np.linspace(-6, -4, 100)), list(np.linspace(-5, -3, 100)), "increase", FAIL),  # negative
        (list(np.linspace(-6, -4, 100)), list(np.linspace(-5, -3, 100)), "decrease", PASS),
        (list(np.linspace(0.5, 1.5, 100)), list(np.linspace(-1.5, -0.5, 100)), "decrease", FAIL),  # to below 0
        (list(np.linspace(0.5, 1.5, 100)), list(np.linspace(-1.5, -0.5, 100)), "increase", PASS),
    ],
)
def test_no_ratio_without_positive_levels(then, now, direction, result):
    """A baseline median of 0 or below, or a shift that takes it there, gives no ratio: a
    significant shift the bad way is beyond every limit (fail closed), never a division error."""
    entry = judge_metric("m", now, then, Rule(direction=direction))
    assert entry["classification"] != "Pass" and entry["effectSize"] is None
    assert entry["result"] == result and "no ratio" in entry["reason"]


@settings(max_examples=80)
@given(samples, st.sampled_from(["increase", "decrease", "either"]))
def test_effect_size_properties(pair, direction):
    """1.0 for identical samples; at least 1 (or no ratio) for a shift the bad way and for
    ``either``; free of the unit (both sides scaled by 4: the same effect)."""
    x, y = pair
    rule = Rule(direction=direction, min_samples=2)
    same = judge_metric("m", y, y, rule)
    assert same["effectSize"] == 1.0 and same["classification"] == "Pass"
    entry = judge_metric("m", x, y, rule)
    bad = entry["classification"] != "Pass" and (
        direction == "either" or (entry["classification"] == "High") == (direction == "increase")
    )
    if bad or direction == "either":
        assert entry["effectSize"] is None or entry["effectSize"] >= 1.0
    scaled = judge_metric("m", x * 4, y * 4, rule)
    assert (scaled["effectSize"], scaled["classification"]) == (entry["effectSize"], entry["classification"])


@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6))
def test_shift_effect_directions(median, estimate):
    """``decrease`` is the reciprocal of ``increase``, ``either`` the larger of the two."""
    up, down, either = (shift_effect(median, estimate, d) for d in ("increase", "decrease", "either"))
    if median + estimate == median:
        assert up == down == either == 1.0
    elif median <= 0 or median + estimate <= 0:
        assert up == down == either == math.inf
    else:
        assert down == 1 / up and either == max(up, down) > 1.0 and (up > 1.0) == (estimate > 0)


def test_min_shift_does_not_silence_a_change_that_ties_hide():
    """Counts: ties pin the Hodges-Lehmann shift to 0 while the levels moved by 0.45 a sample."""
    baseline = [0.0] * 57 + [1.0] * 3
    current = [0.0] * 30 + [1.0] * 30
    assert judge_metric("errors", current, baseline, Rule())["result"] == FAIL
    assert judge_metric("errors", current, baseline, Rule(min_shift=0.5))["result"] == PASS  # 0.45 < 0.5
    assert judge_metric("errors", current, baseline, Rule(min_shift=0.4))["result"] == FAIL
