"""Each feature's reader of its own settings, as plain functions (no inner pytest run): what they
accept, what they make of it, and the one-line usage error for what they refuse.

The same errors reach users through ``read_settings`` and are checked end to end in
test_options, test_load, test_vsa and test_verdict; here the inputs can vary widely and fast.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from pytest_staging.core.errors import ConfigError
from pytest_staging.core.targets import find_target
from pytest_staging.core.tiers import TIERS, check_tier, parse_tiers
from pytest_staging.core.traceparent import read_trace_parent
from pytest_staging.fixtures.load import Distribution, read_distribution
from pytest_staging.verdict.statement import Subject, read_subjects
from pytest_staging.verdict.vsa import DEFAULT_VERIFIER_ID, VsaSettings, read_vsa

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
SEPARATORS = st.sampled_from([",", " ", ", ", " ,", "\t"])


@given(st.lists(st.sampled_from(TIERS), min_size=1), SEPARATORS)
def test_tier_lists_keep_their_order_whatever_the_separator(names, separator):
    assert parse_tiers(separator.join(names), "--staging-tier") == tuple(names)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1).filter(lambda name: name not in TIERS))
def test_an_unknown_tier_is_named_with_the_choices(name):
    with pytest.raises(ConfigError) as caught:
        parse_tiers(f"smoke,{name}", "setup.cfg", "staging_required_tiers")
    assert caught.value.line() == (
        f"pytest-staging: setup.cfg: staging_required_tiers: unknown tier {name!r}; choose from smoke, contract, load"
    )
    with pytest.raises(ConfigError, match=f"unknown tier {name!r}"):
        check_tier(name, "ini", "staging_default_tier")


def test_an_empty_tier_list_is_refused():
    with pytest.raises(ConfigError, match="--staging-tier: no tier given; choose from smoke, contract, load"):
        parse_tiers(" , ", "--staging-tier")


def test_the_trace_parent_option_beats_the_environment():
    other = "00-11111111111111111111111111111111-2222222222222222-00"
    assert read_trace_parent(f" {PARENT} ", {"TRACEPARENT": other}) == PARENT
    assert read_trace_parent(None, {"TRACEPARENT": other}) == other
    assert read_trace_parent(None, {"TRACEPARENT": "  "}) is None
    assert read_trace_parent(None, {}) is None


@pytest.mark.parametrize(
    ("option", "environ", "where"),
    [("00-xyz", {}, "--staging-trace-parent"), (None, {"TRACEPARENT": "00-xyz"}, "TRACEPARENT")],
)
def test_a_malformed_trace_parent_names_its_source(option, environ, where):
    with pytest.raises(ConfigError, match=f"^pytest-staging: {where}: '00-xyz' is not a W3C traceparent"):
        read_trace_parent(option, environ)


def test_load_distribution_defaults_and_values():
    assert read_distribution(None, None, None, None) == Distribution()
    assert read_distribution("3", None, None, "2.5") == Distribution(processes=3, worker_wait=2.5)
    assert read_distribution(None, " 2 ", "0.0.0.0:6000", None) == Distribution(
        workers=2, master_bind_host="0.0.0.0", master_bind_port=6000
    )


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (("0", None, None, None), "--staging-load-processes: expected a whole number >= 1, got '0'"),
        ((None, "two", None, None), "--staging-load-workers: expected a whole number >= 1, got 'two'"),
        (("2", "2", None, None), "--staging-load-workers: give either --staging-load-processes or"),
        ((None, None, ":5557", None), "--staging-load-master: ':5557' is not HOST:PORT"),
        ((None, None, "host:port", None), "--staging-load-master: expected a whole number >= 1, got 'port'"),
        ((None, None, None, "-1"), "--staging-load-worker-wait: expected seconds > 0, got '-1'"),
    ],
)
def test_load_distribution_mistakes(values, problem):
    with pytest.raises(ConfigError) as caught:
        read_distribution(*values)
    assert caught.value.line().startswith(f"pytest-staging: {problem}")


def test_vsa_settings_and_the_options_that_need_a_path(tmp_path):
    assert read_vsa(None, None, None) is None
    assert read_vsa(tmp_path / "vsa.json", None, None) == VsaSettings(tmp_path / "vsa.json", DEFAULT_VERIFIER_ID, None)
    assert (
        read_vsa(tmp_path / "vsa.json", "https://ci.example/gate", "pkg:docker/shop@1").resource_uri
        == "pkg:docker/shop@1"
    )
    for args, option in (
        ((None, "https://ci.example/gate", None), "--staging-verifier-id"),
        ((None, None, "pkg:x"), "--staging-resource-uri"),
    ):
        with pytest.raises(ConfigError, match=f"^pytest-staging: {option}: describes the VSA"):
            read_vsa(*args)


def test_subjects_come_from_digests_then_files_in_order(tmp_path):
    (tmp_path / "app.tar").write_bytes(b"x" * 3_000_000)  # more than one read block
    digest = "ab" * 32
    subjects = read_subjects([f"registry/app@sha256:{digest}"], ["app.tar"], tmp_path)
    assert subjects == (
        Subject("registry/app", digest),
        Subject("app.tar", hashlib.sha256(b"x" * 3_000_000).hexdigest()),
    )
    with pytest.raises(ConfigError, match="--staging-artifact: 'app@sha256:AB' is not NAME@sha256:HEX"):
        read_subjects(["app@sha256:AB"], [], tmp_path)
    with pytest.raises(ConfigError, match="--staging-artifact-file: cannot read nope.tar"):
        read_subjects([], ["nope.tar"], tmp_path)


def test_a_target_is_found_by_name_or_the_known_ones_are_listed(tmp_path: Path):
    path = tmp_path / "staging-targets.toml"
    with pytest.raises(ConfigError, match="STAGING_TARGET names target 'eu' but this targets file does not exist"):
        find_target(path, "eu", "STAGING_TARGET", set())
    path.write_text('[targets.us]\nurl = "https://us.example"\n[targets.asia]\nurl = "https://asia.example"\n')
    assert find_target(path, "us", "--staging-target", set()).url == "https://us.example"
    with pytest.raises(ConfigError) as caught:
        find_target(path, "eu", "--staging-target", set())
    assert caught.value.line() == (
        f"pytest-staging: {path}: targets.eu: no such target (from --staging-target); known targets: asia, us"
    )


# -- an earlier verdict at the path: removed when it is a DSSE envelope, whatever else it is kept --

_values = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_", max_size=40),
    st.text(max_size=10),
    st.integers(),
    st.lists(st.dictionaries(st.sampled_from(["keyid", "sig"]), st.text(max_size=5)), max_size=2),
)


@given(
    document=st.dictionaries(st.sampled_from(["payload", "payloadType", "signatures", "other"]), _values),
    compact=st.booleans(),
    cut=st.integers(min_value=0, max_value=3),
)
def test_an_earlier_file_is_removed_exactly_when_it_is_a_dsse_envelope(tmp_path_factory, document, compact, cut):
    from pytest_staging.verdict.files import is_envelope, remove_envelope

    text = json.dumps(document, sort_keys=compact, separators=(",", ":") if compact else None)
    data = text.encode("utf-8")[: len(text.encode("utf-8")) - cut]  # cut short: not JSON any more
    path = tmp_path_factory.mktemp("verdict") / "staging-verdict.intoto.json"
    path.write_bytes(data)
    try:
        expected = is_envelope(json.loads(data))
    except ValueError:
        expected = False
    assert remove_envelope(path) is expected
    assert path.exists() is not expected


# -- the verdict reader's schema check, one record of each shape -----------------------------


def _mostly(valid: list, invalid: list) -> st.SearchStrategy:
    """Valid values four times out of five: whole verdicts of valid records come up too."""
    return st.sampled_from(valid * (4 * len(invalid) // len(valid) + 1) + invalid)


_texts = _mostly(["t.py::test_a", "t.py::test_b", "t.py::test_é"], ["", 3])
_optional_texts = _mostly(["AssertionError: no", None], [3])
_numbers = _mostly([0, 0.25, 7], [-1, -0.5, True, "1", None, float("nan")])
_outcomes = _mostly(["passed", "failed", "skipped"], ["running"])
#: A valid record; each generated record changes at most two of its fields, so records of one
#: shape (valid, or wrong in the same field) come up together in a verdict.
_BASE = {"nodeid": "t.py::test_a", "tier": "smoke", "outcome": "passed", "duration": 0.5, "attempts": []}
_changes = {
    "nodeid": _texts,
    "tier": _mostly(["smoke", "contract", "load"], ["bogus", 1]),
    "outcome": _outcomes,
    "duration": _numbers,
    "attempts": st.lists(
        st.fixed_dictionaries({"outcome": _outcomes, "duration": _numbers}, optional={"error": _optional_texts}),
        max_size=2,
    )
    | st.sampled_from([None, {}]),
    "correlationId": _mostly([None, "0" * 32, "a" * 32], ["A" * 32, "x", 5]),
    "spanId": _mostly([None, "b" * 16], ["b" * 15]),
    "error": _optional_texts,
    "flaky": _mostly([True, False], [1]),
    "quarantine": _mostly([None], [{}, "x"]),
    "extra": _numbers,
}
_records = (
    st.lists(st.sampled_from(sorted(_changes)), max_size=2, unique=True)
    .flatmap(lambda names: st.fixed_dictionaries({name: _changes[name] for name in names}))
    .map(lambda changed: {**_BASE, **changed})
)


def _statement_with(tests: list) -> dict:
    """A valid statement but for its records: ``tests``, as a reader gets them (NaN stays NaN)."""
    from pytest_staging.core.decide import Decision
    from pytest_staging.core.ledger import Ledger
    from pytest_staging.verdict.files import shipped_validator
    from pytest_staging.verdict.statement import build_statement

    statement = build_statement(
        ledger=Ledger(),
        decision=Decision("HOLD", ()),
        policy={
            "allowDeselection": False,
            "selection": {"args": [], "keyword": None, "markexpr": None},
            "requiredTiers": [],
        },
        required=(),
        target={"name": "qa", "url": "https://qa.example", "environment": "staging"},
        release={"id": None, "deployedVersion": None},
        subjects=(Subject("release:unknown", "0" * 64),),
        time_verified=0.0,
    )
    statement["predicate"]["reasons"] = [{"code": "incomplete", "text": "under way"}]
    assert shipped_validator().is_valid(json.loads(json.dumps(statement)))  # only the records can make it wrong
    statement["predicate"]["tests"] = tests
    return json.loads(json.dumps(statement))


@settings(max_examples=300)
@given(st.lists(_records, max_size=8))
def test_checking_one_record_per_shape_refuses_exactly_the_verdicts_the_whole_schema_refuses(tests):
    """The reader checks one record of each shape (speed: verdict/files.py): it must accept and
    refuse exactly what checking every record accepts and refuses, and name a record that is wrong."""
    from pytest_staging.verdict.dsse import VerificationError
    from pytest_staging.verdict.files import load_statement, shipped_validator

    statement, whole = _statement_with(tests), shipped_validator()
    try:
        load_statement(json.dumps(statement).encode())
    except VerificationError as exc:
        event("refused")
        assert not whole.is_valid(statement)
        named = str(exc).split(": ")[1].split("/")
        if named[:2] == ["predicate", "tests"] and len(named) > 2:
            assert not whole.is_valid(_statement_with([tests[int(named[2])]])), named
    else:
        event("accepted")
        assert whole.is_valid(statement)


_FULL = {
    **_BASE,
    "attempts": [{"outcome": "passed", "duration": 0.5, "error": None}],
    "correlationId": "0" * 32,
    "spanId": "b" * 16,
    "error": None,
}


@pytest.mark.parametrize(
    "field, wrong",
    [
        ("nodeid", ""),
        ("duration", -1),
        ("correlationId", "A" * 32),
        ("spanId", "b" * 15),
        ("error", 3),
        ("tier", "bogus"),
        ("attempts", [{"outcome": "passed", "duration": -0.5, "error": None}]),
        ("attempts", [{"outcome": "passed", "duration": 0.5, "error": None}] * 2 + [{"outcome": "x", "duration": 0}]),
    ],
)
def test_a_wrong_record_among_valid_records_of_its_keys_is_named(field, wrong):
    from pytest_staging.verdict.dsse import VerificationError
    from pytest_staging.verdict.files import load_statement

    tests = [_FULL, {**_FULL, "nodeid": "t.py::test_b"}, {**_FULL, field: wrong}, _FULL]
    with pytest.raises(VerificationError, match=f"predicate/tests/2/{field}"):
        load_statement(json.dumps(_statement_with(tests)).encode())
