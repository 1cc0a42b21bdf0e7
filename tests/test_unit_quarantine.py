"""Quarantine entries without a pytest run: which entry covers a test, when it expires, and the
file's mistakes as one line naming the entry (the usage errors a run shows are in test_flaky)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_staging.core.errors import ConfigError
from pytest_staging.core.quarantine import Entry, entry_from, find, load

NODEID = "tests/test_pay.py::TestRefund::test_partial[eur]"
UNTIL = dt.date(2030, 6, 30)


def entry(test: str, **fields) -> Entry:
    fields = {"owner": "payments", "until": UNTIL, **fields}
    return Entry(test=test, reason="flaky", **fields)


def test_an_entry_matches_its_node_id_or_a_prefix_with_a_star():
    assert entry(NODEID).matches(NODEID)
    assert not entry("tests/test_pay.py::TestRefund::test_partial").matches(NODEID)  # not a prefix without *
    assert entry("tests/test_pay.py::TestRefund::*").matches(NODEID)
    assert entry("*").matches(NODEID)
    assert not entry("tests/test_pay.py::TestRefund::test_full*").matches(NODEID)
    assert not entry(NODEID + "*x").matches(NODEID)  # a star only counts at the end


def test_active_through_its_until_day_then_expired():
    quarantine = entry(NODEID, ticket="PAY-1", source="staging-quarantine.toml entry 1 (line 1)")
    assert quarantine.active(UNTIL) and quarantine.active(UNTIL - dt.timedelta(days=400))
    assert not quarantine.active(UNTIL + dt.timedelta(days=1))
    assert quarantine.to_dict(UNTIL) == {
        "test": NODEID,
        "reason": "flaky",
        "owner": "payments",
        "until": "2030-06-30",
        "status": "active",
        "source": "staging-quarantine.toml entry 1 (line 1)",
        "ticket": "PAY-1",
    }
    assert quarantine.to_dict(UNTIL + dt.timedelta(days=1))["status"] == "expired"
    assert "ticket" not in entry(NODEID).to_dict(UNTIL)  # no ticket, no key


# A node id and entries made of its prefixes (with a star), itself, and other tests.
@st.composite
def nodeid_and_entries(draw):
    nodeid = draw(st.text(alphabet="ab:/[]", min_size=1, max_size=8))
    tests = draw(
        st.lists(
            st.one_of(
                st.integers(0, len(nodeid)).map(lambda cut: nodeid[:cut] + "*"),
                st.just(nodeid),
                st.text(alphabet="ab:/[]*", max_size=8),
            ),
            max_size=6,
        )
    )
    return nodeid, [entry(test, owner=f"owner{index}") for index, test in enumerate(tests)]


@given(nodeid_and_entries())
def test_find_prefers_the_exact_id_then_the_longest_prefix_then_the_first(case):
    nodeid, entries = case
    exact = [e for e in entries if e.test == nodeid]
    prefixes = [e for e in entries if e.test.endswith("*") and nodeid.startswith(e.test[:-1])]
    if exact:
        expected = exact[0]
    elif prefixes:
        longest = max(len(e.test) for e in prefixes)
        expected = next(e for e in prefixes if len(e.test) == longest)
    else:
        expected = None
    assert find(entries, nodeid) == expected


# -- one entry's fields (a file table or the marker's keywords) -------------------------------


def fields(**changes):
    return {"test": NODEID, "reason": "flaky", "owner": "payments", "until": "2030-06-30", **changes}


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        ("2030-06-30", UNTIL),
        (UNTIL, UNTIL),  # a TOML date
        (dt.datetime(2030, 6, 30, 23, 59, tzinfo=dt.timezone.utc), UNTIL),  # a TOML date-time: its day
    ],
)
def test_until_is_a_day(until, expected):
    assert entry_from(fields(until=until), "q.toml", "quarantine[1]", "q.toml entry 1").until == expected


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"until": "30/06/2030"}, "quarantine[1].until", "expected a date YYYY-MM-DD, got '30/06/2030'"),
        ({"until": 20300630}, "quarantine[1].until", "expected a date YYYY-MM-DD, got 20300630"),
        ({"owner": ""}, "quarantine[1].owner", "missing; every quarantine needs owner (a non-empty string)"),
        ({"reason": None}, "quarantine[1].reason", "missing; every quarantine needs reason"),
        ({"until": ""}, "quarantine[1].until", "needs until (YYYY-MM-DD, the day it must be fixed by)"),
        ({"owner": ["a", "b"]}, "quarantine[1].owner", "expected a string, got ['a', 'b']"),
        ({"ticket": 123}, "quarantine[1].ticket", "expected a string, got 123"),
        (
            {"expires": "2030"},
            "quarantine[1].expires",
            "unknown field; known fields: test, reason, owner, until, ticket",
        ),
    ],
)
def test_a_bad_field_names_the_entry_and_the_field(changes, field, says):
    with pytest.raises(ConfigError) as raised:
        entry_from(fields(**changes), "q.toml", "quarantine[1]", "q.toml entry 1")
    assert (raised.value.where, raised.value.field) == ("q.toml", field)
    assert says in raised.value.problem
    assert "\n" not in str(raised.value)


def test_a_ticket_may_be_left_out_or_empty():
    assert entry_from(fields(), "q.toml", "quarantine[1]", "s").ticket is None
    assert entry_from(fields(ticket=None), "q.toml", "quarantine[1]", "s").ticket is None


# -- the file ---------------------------------------------------------------------------------


def write(tmp_path, text: str | bytes):
    path = tmp_path / "staging-quarantine.toml"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_each_entry_points_at_its_line(tmp_path):
    path = write(
        tmp_path,
        (
            "# flaky tests, reviewed weekly\n\n"
            '[[quarantine]]\ntest = "t::a"\nreason = "r"\nowner = "o"\nuntil = 2030-06-30\n\n'
            "  [[quarantine]]  # indented, with a comment\n"
            'test = "t::b*"\nreason = "r"\nowner = "o"\nuntil = "2030-06-30"\nticket = "T-1"\n'
        ),
    )
    first, second = load(path)
    assert (first.test, first.until, first.source) == ("t::a", UNTIL, "staging-quarantine.toml entry 1 (line 3)")
    assert (second.test, second.ticket, second.source) == ("t::b*", "T-1", "staging-quarantine.toml entry 2 (line 9)")
    with pytest.raises(ConfigError, match=r"staging-quarantine\.toml: quarantine\[2\] \(line 9\)\.owner: missing"):
        load(write(tmp_path, path.read_text().replace('owner = "o"\nuntil = "', 'until = "')))


def test_an_inline_array_of_entries_has_no_line_numbers(tmp_path):
    path = write(tmp_path, 'quarantine = [{test = "t::a", reason = "r", owner = "o", until = 2030-06-30}]\n')
    [only] = load(path)
    assert only.source == "staging-quarantine.toml entry 1"
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, 'quarantine = [{test = "t::a", reason = "r", owner = "o"}]\n'))
    assert raised.value.field == "quarantine[1].until"


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("", None, None),  # an empty file: no entries
        ("quarantine = [1]\n", "quarantine[1]", "must be a table ([[quarantine]] with test = ...)"),
        ('owner = "o"\n', "owner", "unknown top-level key; entries go in [[quarantine]] tables"),
        (b'[[quarantine]]\ntest = "t::\xff"\n', "", "not valid TOML"),
    ],
)
def test_the_file_as_a_whole(tmp_path, text, field, says):
    path = write(tmp_path, text)
    if says is None:
        assert load(path) == []
        return
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert (raised.value.where, raised.value.field) == (str(path), field)
    assert raised.value.problem.startswith(says)


def test_an_unreadable_file_says_why(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read it \(No such file or directory\)"):
        load(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("test", "scope", "inside"),
    [
        ("tests/smoke/test_a.py::test_x", [""], True),
        ("tests/smoke/test_a.py::test_x", ["tests/smoke"], True),
        ("tests/smoke/test_a.py::test_x", ["tests/contract"], False),
        ("tests/smoke/test_a.py::test_x", ["tests/smoke/test_a.py"], True),
        ("tests/smoke/test_a.py::test_x", ["tests/smoke/test_a.py::test_y"], False),
        ("tests/smoke/test_a.py::T::test_x", ["tests/smoke/test_a.py::T"], True),
        ("tests/smoke/test_a.py::test_x[1]", ["tests/smoke/test_a.py::test_x"], True),
        ("tests/smokes/test_a.py::test_x", ["tests/smoke"], False),  # a sibling, not a child
        ("tests/smoke/*", ["tests/smoke"], True),
        ("tests/*", ["tests/smoke"], False),  # the run saw only part of what the prefix covers
    ],
)
def test_what_a_run_can_call_stale(test, scope, inside):
    from pytest_staging.gate.collection import in_scope

    assert in_scope(test, scope) is inside
