"""``quarantine suggest`` without a gate run: each test's state in a verdict, and the suggestion
from statements made as plain data (the real verdicts and the CLI are in test_suggest)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pytest_staging.core.flips import History, histories, state, suggest
from pytest_staging.core.quarantine import load
from pytest_staging.core.targets import tomllib

ENTRY = {"test": "t", "reason": "r", "owner": "web", "until": "2030-06-30", "status": "active", "source": "q.toml 1"}


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ({"outcome": "passed"}, "pass"),
        ({"outcome": "failed"}, "fail"),
        ({"outcome": "error"}, "fail"),
        ({"outcome": "crashed"}, "fail"),
        # Passed on a re-run: it failed first, so this run counts as a failure.
        ({"outcome": "passed", "attempts": [{"outcome": "failed"}, {"outcome": "passed"}]}, "fail"),
        ({"outcome": "passed", "attempts": [{"outcome": "error"}]}, "fail"),
        # Quarantine runs a test as xfail: xfailed is its failure, xpassed its pass.
        ({"outcome": "xfailed", "quarantine": ENTRY}, "fail"),
        ({"outcome": "xpassed", "quarantine": ENTRY}, "pass"),
        # A test's own xfail marker says nothing about flakiness; nor does a test that did not run.
        ({"outcome": "xfailed"}, None),
        ({"outcome": "xpassed"}, None),
        ({"outcome": "skipped"}, None),
        ({"outcome": "notrun"}, None),
    ],
)
def test_a_tests_state_in_one_run(test, expected):
    assert state(test) == expected


def statement(
    day: int, tests: list[dict], quarantined: dict[str, dict] | None = None, expired: list | None = None
) -> dict:
    """The parts of a verdict's statement that suggest reads."""
    listed = [{"nodeid": nodeid, "quarantine": entry} for nodeid, entry in (quarantined or {}).items()]
    return {
        "predicate": {
            "timeVerified": f"2030-01-{day:02d}T12:00:00Z",
            "tests": tests,
            "quarantine": {"tests": listed, "expired": expired or []},
        }
    }


def test_histories_run_oldest_first_and_skip_runs_without_a_state():
    runs = [
        statement(1, [{"nodeid": "a", "outcome": "passed"}, {"nodeid": "b", "outcome": "skipped"}]),
        statement(2, [{"nodeid": "a", "outcome": "failed"}, {"nodeid": "b", "outcome": "passed"}]),
        statement(3, [{"nodeid": "b", "outcome": "failed"}]),
    ]
    assert histories(runs) == {"a": History("a", ["pass", "fail"]), "b": History("b", ["pass", "fail"])}


OUTCOME = {"pass": "passed", "fail": "failed", None: "skipped"}
#: Any text a verdict (UTF-8 JSON) can hold, with what TOML treats specially made common:
#: quotes, backslashes, line breaks, other control characters, DEL.
TEXT = st.characters(codec="utf-8") | st.sampled_from('"\\\n\r\t\x00\x7f[]#=é')


@st.composite
def series(draw):
    """Runs of a few tests (any text for their ids), each run shuffled in time, and which tests
    the newest run has under an active quarantine."""
    nodeids = draw(st.lists(st.text(TEXT, min_size=1, max_size=12), min_size=1, max_size=4, unique=True))
    count = draw(st.integers(1, 7))
    states = {
        n: draw(st.lists(st.sampled_from(["pass", "fail", None]), min_size=count, max_size=count)) for n in nodeids
    }
    quarantined = draw(st.sets(st.sampled_from(nodeids)))
    owner = draw(st.text(TEXT, max_size=10))
    entry = st.fixed_dictionaries(
        {
            "test": st.text(TEXT, max_size=12),
            "owner": st.text(TEXT, max_size=8),
            "until": st.just("2001-01-01"),
            "reason": st.text(TEXT, max_size=20),
        }
    )
    expired = draw(st.lists(entry, max_size=2))
    return nodeids, states, quarantined, owner, expired


@given(
    series(),
    st.sampled_from([0.0, 0.2, 0.5, 1.0]),
    st.integers(1, 4),
    st.integers(1, 4),
    st.randoms(use_true_random=False),
)
@example(  # a DEL in an id, and an expired entry whose reason tries to start a table of its own
    (["t::x\x7f"], {"t::x\x7f": ["pass", "fail"]}, set(), "web\x7f", [{**ENTRY, "reason": "r\n[[quarantine]]"}]),
    0.2,
    2,
    1,
    random.Random(0),
)
def test_the_suggestion_is_a_quarantine_file_of_exactly_the_flaky_tests(
    tmp_path_factory, case, threshold, min_runs, retire_after, rng
):
    nodeids, states, quarantined, owner, expired = case
    count = len(states[nodeids[0]])
    runs = []
    for run in range(count):
        entries = {n: {**ENTRY, "test": n} for n in quarantined} if run == count - 1 else {}
        tests = [{"nodeid": n, "outcome": OUTCOME[states[n][run]]} for n in nodeids]
        runs.append(statement(run + 1, tests, entries, expired if run == count - 1 else []))
    rng.shuffle(runs)  # suggest orders them by timeVerified
    until = dt.date(2030, 2, 1)
    text = suggest(
        runs, threshold=threshold, min_runs=min_runs, retire_after=retire_after, owner=owner, until=until, verified=True
    )

    def rate(seen: list[str]) -> float:
        return sum(a != b for a, b in zip(seen, seen[1:], strict=False)) / (len(seen) - 1) if len(seen) > 1 else 0.0

    seen = {n: [s for s in states[n] if s is not None] for n in nodeids}
    flaky = sorted(
        (n for n in nodeids if len(seen[n]) >= min_runs and rate(seen[n]) >= threshold and n not in quarantined),
        key=lambda n: (-rate(seen[n]), n),
    )
    parsed = tomllib().loads(text)  # what it prints is valid TOML, whatever the ids and owner hold
    assert [entry["test"] for entry in parsed.get("quarantine", [])] == flaky
    assert all(entry["owner"] == owner and entry["until"] == until for entry in parsed.get("quarantine", []))
    path = tmp_path_factory.mktemp("suggest") / "staging-quarantine.toml"
    path.write_text(text, encoding="utf-8")
    if owner:  # an empty owner is refused by the file, as it should be
        assert [entry.test for entry in load(path)] == flaky  # and it pastes into a quarantine file
    retire = sorted(n for n in quarantined if len(seen[n]) >= retire_after and set(seen[n][-retire_after:]) == {"pass"})
    retired = text.split("# Retire:", 1)[1].split("# Expired:", 1)[0]
    assert retired.count("(owner web, until 2030-06-30)") == len(retire)
