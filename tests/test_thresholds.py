"""k6-style thresholds and the statistics they read: pure logic, no locust in this process."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_staging.core.thresholds import Tally, ThresholdError, parse, parse_all, percentile, summary
from pytest_staging.fixtures.load import Progress, summarize


@pytest.mark.parametrize(
    ("expression", "metric", "op", "limit", "name"),
    [
        ("p(95) < 500", "p95", "<", 500, None),
        ("p(99.9) <= 1200", "p99.9", "<=", 1200, None),
        ("avg<200", "avg", "<", 200, None),
        ("med < 100", "p50", "<", 100, None),
        ("max < 2000", "max", "<", 2000, None),
        ("min >= 0", "min", ">=", 0, None),
        ("rate(failures) < 0.01", "fail_ratio", "<", 0.01, None),
        ("rps > 50", "rps", ">", 50, None),
        ("p(95){name:/orders} < 300", "p95", "<", 300, "/orders"),
        ("  p( 90 ) { name : GET /a b } != 1e3 ", "p90", "!=", 1000, "GET /a b"),
        # locust's usual name for a parametrised endpoint: braces inside the name
        ("p(95){name:/orders/{id}} < 400", "p95", "<", 400, "/orders/{id}"),
        ("avg{name:/a/{x}/b/{y}} <= 3", "avg", "<=", 3, "/a/{x}/b/{y}"),
    ],
)
def test_parse(expression, metric, op, limit, name):
    threshold = parse(expression)
    assert (threshold.metric, threshold.op, threshold.limit, threshold.name) == (metric, op, limit, name)
    assert threshold.expression == expression.strip()


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("p95 < 500", "is not METRIC"),
        ("p(95) <", "is not METRIC"),
        ("p(95) < fast", "is not METRIC"),
        ("latency < 5", "is not METRIC"),
        ("p(0) < 5", "above 0 and at most 100"),
        ("p(101) < 5", "above 0 and at most 100"),
        ("p(95){name:} < 5", "needs an endpoint name"),
        ("p(95) =< 5", "is not METRIC"),
        ("p(95){name:/orders/{id} < 400", "is not METRIC"),  # a brace left open
        ("", "is not METRIC"),
    ],
)
def test_bad_expressions_are_quoted_in_one_line(expression, says):
    with pytest.raises(ThresholdError) as raised:
        parse(expression)
    message = str(raised.value)
    assert repr(expression) in message and says in message and "\n" not in message


def test_parse_all_takes_one_string_or_a_list():
    assert [t.metric for t in parse_all("avg < 1")] == ["avg"]
    assert [t.metric for t in parse_all(["avg < 1", "rps > 2"])] == ["avg", "rps"]
    assert parse_all(None) == []


samples = st.lists(st.integers(0, 5000), min_size=1, max_size=300)


@given(samples, st.floats(0.01, 1.0))
def test_percentile_is_locusts_over_the_sorted_samples(values, fraction):
    histogram: dict[int, int] = {}
    for value in values:
        histogram[value] = histogram.get(value, 0) + 1
    # locust: walk from the slowest down until at most int(n * fraction) requests are left below.
    expected = sorted(values)[min(int(len(values) * fraction), len(values) - 1)]
    assert percentile(histogram, len(values), fraction) == expected


@given(
    st.lists(
        st.tuples(st.sampled_from(["/a", "/b", "/c"]), st.sampled_from(["GET", "POST"]), samples, st.integers(0, 5)),
        min_size=1,
        max_size=6,
    )
)
def test_summarize_merges_histograms_exactly(parts):
    entries, everything, by_name = [], [], {}
    for index, (name, method, values, failures) in enumerate(parts):
        histogram: dict[str, int] = {}
        for value in values:
            histogram[str(value)] = histogram.get(str(value), 0) + 1
        entries.append(
            {
                "name": name,
                "method": method,
                "num_requests": len(values),
                "num_failures": failures,
                "num_none_requests": 0,
                "total_response_time": float(sum(values)),
                "min_response_time": min(values),
                "max_response_time": max(values),
                "response_times": histogram,
                "start_time": 100.0 + index,
                "last_request_timestamp": 110.0 + index,
                "num_reqs_per_sec": {"100": len(values)},
                "num_fail_per_sec": {},
            }
        )
        everything += values
        by_name.setdefault(name, []).extend(values)
    total, endpoints, counts = summarize(entries)
    seconds = 110.0 + len(parts) - 1 - 100.0
    assert total["requests"] == len(everything)
    assert total["p95"] == sorted(everything)[min(int(len(everything) * 0.95), len(everything) - 1)]
    assert total["avg"] == pytest.approx(sum(everything) / len(everything))
    assert total["rps"] == pytest.approx(len(everything) / seconds)
    assert total["min"] == min(everything) and total["max"] == max(everything)
    for name, values in by_name.items():
        assert endpoints[name]["requests"] == len(values)
        assert endpoints[name]["p50"] == sorted(values)[min(int(len(values) * 0.5), len(values) - 1)]
    assert counts == [{"t": 100, "requests": len(everything), "failures": 0}]


def test_thresholds_evaluate_against_totals_and_endpoints():
    total = summary(
        requests=100,
        failures=2,
        total_response_time=5000.0,
        min_response_time=10,
        max_response_time=90,
        histogram={50: 90, 90: 10},
        seconds=10.0,
    )
    endpoints = {
        "/orders": summary(
            requests=10,
            failures=0,
            total_response_time=900.0,
            min_response_time=90,
            max_response_time=90,
            histogram={90: 10},
            seconds=10.0,
        )
    }
    cases = {
        "p(95) < 100": (90.0, True),
        "p(50) < 60": (50.0, True),
        "avg <= 50": (50.0, True),
        "rate(failures) < 0.01": (0.02, False),
        "rps > 5": (10.0, True),
        "max < 90": (90.0, False),
        "p(95){name:/orders} < 50": (90.0, False),
        "p(99.9) < 100": (90.0, True),
        "avg{name:/nowhere} < 1000": (None, False),  # no data never passes
    }
    for expression, (value, ok) in cases.items():
        threshold = parse(expression)
        measured = threshold.value_in(total, endpoints)
        assert measured == pytest.approx(value) if value is not None else measured is None, expression
        assert threshold.holds(measured) is ok, expression


def test_progress_is_one_line_rewritten_in_place():
    class Writer:
        def __init__(self):
            self.out = io.StringIO()

        def write(self, text, flush=False):
            self.out.write(text)

    progress = Progress(None)
    assert progress.writer is None  # no terminal: silent
    progress.writer, progress.shown = Writer(), False
    progress.show(30, {"elapsed": 3.2, "rps": 41.5, "failures": 0, "p95": 12.0})
    progress.show(30, {"elapsed": 4.2, "rps": 40.0, "failures": 1, "p95": None})
    progress.done()
    text = progress.writer.out.getvalue()
    assert "\n" not in text
    assert "\rload: 3/30s  41.5 rps  0 failures  p95 12 ms" in text
    assert "\rload: 4/30s  40.0 rps  1 failures  p95 -" in text
    assert text.endswith("\r")


# -- the parser, over any spacing and any number ------------------------------------------------

SPACE = st.text(alphabet=" \t", max_size=2)
NUMBER = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),  # 1e+16, -0.0, 5e-324 ...
    st.sampled_from([".5", "5.", "+3", "1E3", "2.5e-3"]),
)
PERCENTILE = st.one_of(
    st.floats(0, 100, exclude_min=True).map(repr), st.integers(1, 100).map(str), st.sampled_from(["99.9", "5e1", ".1"])
)


@st.composite
def thresholds(draw):
    """An expression built from its parts with random spacing, and the parts it must parse to."""
    s = lambda: draw(SPACE)  # noqa: E731
    kind = draw(st.sampled_from(["p", "avg", "med", "min", "max", "rate", "rps"]))
    if kind == "p":
        number = draw(PERCENTILE)
        text, metric = f"p{s()}({s()}{number}{s()})", f"p{float(number):g}"
    elif kind == "rate":
        text, metric = f"rate{s()}({s()}failures{s()})", "fail_ratio"
    else:
        text, metric = kind, {"med": "p50"}.get(kind, kind)
    # An endpoint name: any text with no braces, or with {placeholders} (braces balanced, one level).
    plain = st.text(st.characters(exclude_characters="{}"), min_size=1, max_size=6)
    name = draw(
        st.none()
        | st.lists(plain | plain.map(lambda part: "{" + part + "}"), min_size=1, max_size=3)
        .map("".join)
        .filter(str.strip)
    )
    if name is not None:
        text += f"{s()}{{{s()}name{s()}:{s()}{name}{s()}}}"
    op, limit = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="])), draw(NUMBER)
    text = f"{s()}{text}{s()}{op}{s()}{limit}{s()}"
    return text, (metric, op, float(limit), None if name is None else name.strip())


@given(thresholds())
def test_any_spacing_and_number_parse_to_the_same_threshold(case):
    text, parts = case
    threshold = parse(text)
    assert (threshold.metric, threshold.op, threshold.limit, threshold.name) == parts
    assert parse(threshold.expression) == threshold  # the expression as kept parses to itself


@given(st.text(max_size=40))
def test_anything_else_is_a_threshold_error_in_one_line(text):
    try:
        parse(text)
    except ThresholdError as error:
        assert repr(text) in str(error) and "\n" not in str(error)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_nan_and_no_value_never_pass(op):
    # NaN != x is true in Python: a threshold must not pass on a value that is not a number.
    assert not parse(f"avg {op} 100").holds(float("nan"))
    assert not parse(f"avg {op} 100").holds(None)


@given(st.lists(st.lists(st.integers(0, 3000), max_size=40), min_size=1, max_size=5), st.integers(0, 5))
def test_tallies_merged_are_one_tally_of_every_request(parts, failures):
    def tally_of(values: list[int]) -> Tally:
        histogram: dict[int, int] = {}
        for value in values:
            histogram[value] = histogram.get(value, 0) + 1
        low, high = min(values, default=None), max(values, default=None)
        return Tally().add(len(values), failures, 0, float(sum(values)), low, high, histogram)

    merged = Tally()
    for values in parts:
        merged.merge(tally_of(values))
    everything = [value for values in parts for value in values]
    whole = tally_of(everything)
    whole.failures = failures * len(parts)
    assert merged.summary(10.0) == whole.summary(10.0)
