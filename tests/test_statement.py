"""The verdict payload is what one JSON encoder call writes for the statement: any text a test
suite, a target or a config file puts in goes in as data and comes back out unchanged."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from pytest_staging.baseline.judge import judge
from pytest_staging.baseline.rules import Rule
from pytest_staging.core.decide import Policy, decide
from pytest_staging.core.ledger import Attempt, Ledger, TestRecord
from pytest_staging.core.quarantine import Entry
from pytest_staging.core.redact import Scrubber
from pytest_staging.verdict import dsse
from pytest_staging.verdict.files import envelope_bytes, load_statement, reason_texts, upgrade
from pytest_staging.verdict.issue import issue
from pytest_staging.verdict.statement import Subject, payload_bytes, release_subject, scrubbed_payload

KEY = Ed25519PrivateKey.generate()
TODAY = dt.date.today()
FUTURE = TODAY + dt.timedelta(days=30)
PAST = TODAY - dt.timedelta(days=30)

POLICY = {"allowDeselection": False, "selection": {"args": [], "keyword": None, "markexpr": None, "deselected": {}}}

#: Any valid Unicode text: NUL, quotes, backslashes, line breaks, astral characters, "\x00tests\x00".
text = st.text()
name = st.text(min_size=1)  # fields the schema wants non-empty


def canonical(statement: dict) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def entry(draw, test: str, until: dt.date) -> Entry:
    return Entry(
        test=test, reason=draw(name), owner=draw(name), until=until, ticket=draw(st.none() | name), source=draw(text)
    )


@st.composite
def runs(draw) -> dict:
    """A run whose every user-influenced text is arbitrary: node ids, errors, skip reasons,
    quarantine entries, metric names, target, release, artifacts, selection arguments."""
    ledger = Ledger()
    ledger.session.started, ledger.session.finished = 1.7e9, 1.7e9 + 3
    for nodeid in draw(st.lists(name, min_size=1, max_size=5, unique=True)):
        record = ledger.records[nodeid] = TestRecord(nodeid, draw(st.sampled_from(["smoke", "contract", "load"])))
        ledger.collected_tiers.add(record.tier)
        record.outcome = draw(st.sampled_from(["passed", "failed", "skipped", "xfailed"]))
        record.duration = 0.25
        if record.outcome in ("failed", "xfailed"):
            record.error = draw(text)
        if record.outcome == "skipped":
            record.skip_reason = draw(text)
        record.attempts.append(Attempt(record.outcome, 0.25, record.error))
        if draw(st.booleans()):
            record.quarantine = entry(draw, nodeid, FUTURE).to_dict(TODAY)
    if draw(st.booleans()):
        ledger.preflight_kind, ledger.preflight_error = "release-mismatch", draw(name)
    metrics = draw(st.lists(name, max_size=3, unique=True))
    if metrics:
        series = {metric: [1.0, 2.0, 3.0] for metric in metrics}
        judged = judge(series, series, lambda _: Rule())
        ledger.baseline = {
            "file": draw(text),
            "digest": "sha256:" + "0" * 64,
            "created": None,
            "release": draw(st.none() | text),
            "target": {"name": draw(text)},
            "confidence": 0.98,
            "scores": {"pass": 90, "marginal": 70},
            "strict": False,
            "mismatches": draw(st.lists(text, max_size=2)),
            **judged,
        }
    release = draw(st.none() | name)
    artifacts = draw(st.lists(name, max_size=2))
    return {
        "ledger": ledger,
        "target": {"name": draw(text), "url": draw(text), "environment": draw(text), "sensitive": draw(st.booleans())},
        "release": {"id": release, "deployedVersion": draw(st.none() | text), "probe": None},
        "subjects": tuple(Subject(artifact, hashlib.sha256(artifact.encode()).hexdigest()) for artifact in artifacts)
        or (release_subject(release),),
        "policy_fields": {
            "allowDeselection": False,
            "selection": {
                "args": draw(st.lists(text, max_size=2)),
                "keyword": draw(st.none() | text),
                "markexpr": draw(st.none() | text),
                "deselected": {},
            },
            "quarantineFile": draw(text),
        },
        "quarantine": {
            "expired": [entry(draw, draw(name), PAST).to_dict(TODAY) for _ in range(draw(st.integers(0, 1)))],
            "stale": [entry(draw, draw(name), FUTURE).to_dict(TODAY) for _ in range(draw(st.integers(0, 1)))],
            "maxQuarantined": 0.2,
        },
    }


def issue_run(path: Path, run: dict, scrub: Scrubber | None = None):
    ledger = run["ledger"]
    return issue(
        path=path,
        ledger=ledger,
        decision=decide(ledger, Policy()),
        policy=Policy(),
        policy_fields=run["policy_fields"],
        target=run["target"],
        release=run["release"],
        subjects=run["subjects"],
        signing_key=KEY,
        now=1.7e9 + 3,
        scrub=scrub if scrub is not None else Scrubber(),
        quarantine=run["quarantine"],
    )


def read_back(path: Path) -> tuple[bytes, dict]:
    """The payload, after its signature verified with the public key, and the CLI's reading of it."""
    payload = dsse.verify(dsse.parse(path.read_bytes()), KEY.public_key()).payload
    return payload, load_statement(payload)


@pytest.fixture(scope="module")
def verdict_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("statement") / "staging-verdict.intoto.json"


@given(runs())
def test_any_text_round_trips_through_a_signed_verdict(verdict_path, run):
    issued = issue_run(verdict_path, run)
    payload, statement = read_back(verdict_path)
    assert {**statement, "predicate": {**statement["predicate"], "tests": None}} == issued.statement
    assert payload == canonical(statement)
    predicate, ledger = statement["predicate"], run["ledger"]
    # The structure is intact: every test in its place, every text field where it was put.
    assert [t["nodeid"] for t in predicate["tests"]] == list(ledger.records)
    assert sum(
        sum(tier["counts"][o] for o in ("passed", "failed", "skipped", "xfailed"))
        for tier in predicate["tiers"].values()
    ) == len(ledger.records)
    for test, record in zip(predicate["tests"], ledger.records.values(), strict=False):  # an empty text is left out
        assert (test.get("error"), test.get("skipReason")) == (record.error or None, record.skip_reason or None)
        assert (
            test["attempts"][0].get("error") == (record.error or None) and test.get("quarantine") == record.quarantine
        )
    assert [t["nodeid"] for t in predicate["quarantine"]["tests"]] == [
        r.nodeid for r in ledger.records.values() if r.quarantine
    ]
    assert predicate["quarantine"]["expired"] == run["quarantine"]["expired"]
    assert predicate["quarantine"]["stale"] == run["quarantine"]["stale"]
    assert [m["name"] for m in (predicate["baseline"] or {"metrics": []})["metrics"]] == sorted(
        m["name"] for m in (ledger.baseline or {"metrics": []})["metrics"]
    )
    assert predicate["target"] == run["target"] and predicate["release"] == run["release"]
    assert [s["name"] for s in statement["subject"]] == [s.name for s in run["subjects"]]
    assert {k: predicate["policy"][k] for k in run["policy_fields"]} == run["policy_fields"]
    decision = decide(ledger, Policy())
    assert predicate["reasons"] == [{"code": r.code, "text": r.text} for r in decision.reasons]
    assert predicate["reasonCodes"] == [r.code for r in decision.reasons]


def test_a_reason_shaped_like_the_old_placeholder_is_just_text(tmp_path):
    """Issue 14: the payload was a template whose test list replaced the first ``"\\u0000tests\\u0000"``
    in the text, and a quarantine reason written that way came first."""
    ledger = Ledger()
    ledger.session.started, ledger.session.finished = 1.7e9, 1.7e9 + 1
    for nodeid in ("t.py::test_flaps", "t.py::test_a", "t.py::test_b", "t.py::test_c", "t.py::test_d", "t.py::test_e"):
        record = ledger.records[nodeid] = TestRecord(nodeid, "smoke", outcome="passed", duration=0.5)
        record.attempts.append(Attempt("passed", 0.5))
    ledger.collected_tiers.add("smoke")
    entry = {
        "test": "t.py::test_flaps",
        "reason": "\x00tests\x00",
        "owner": "web",
        "until": FUTURE.isoformat(),
        "status": "active",
    }
    ledger.records["t.py::test_flaps"].quarantine = entry
    run = {
        "ledger": ledger,
        "target": {"name": "t", "url": "http://t", "environment": "staging"},
        "release": {"id": "1.0", "deployedVersion": None, "probe": None},
        "subjects": (release_subject("1.0"),),
        "policy_fields": POLICY,
        "quarantine": {"expired": [], "stale": [], "maxQuarantined": 0.2},
    }
    issue_run(tmp_path / "v.json", run)
    _, statement = read_back(tmp_path / "v.json")
    predicate = statement["predicate"]
    assert [t["nodeid"] for t in predicate["tests"]] == list(ledger.records)
    assert predicate["quarantine"]["tests"][0]["quarantine"]["reason"] == "\x00tests\x00"
    assert predicate["decision"] == "PROMOTE"


def test_text_that_is_not_unicode_still_gives_a_verdict(tmp_path):
    """A file name with a byte that is not UTF-8 gives a node id with a lone surrogate (Python's
    surrogateescape). UTF-8 cannot hold it: the payload is the ASCII-escaped JSON instead, which
    verifies and reads back to the same node id."""
    nodeid = "test_caf\udce9.py::test_x"
    ledger = Ledger()
    ledger.session.started, ledger.session.finished = 1.7e9, 1.7e9 + 1
    record = ledger.records[nodeid] = TestRecord(
        nodeid, "smoke", outcome="failed", duration=0.5, error="AssertionError: é\udcff"
    )
    record.attempts.append(Attempt("failed", 0.5, record.error))
    ledger.collected_tiers.add("smoke")
    run = {
        "ledger": ledger,
        "target": {"name": "t", "url": "http://t", "environment": "staging"},
        "release": {"id": "1.0", "deployedVersion": None, "probe": None},
        "subjects": (release_subject("1.0"),),
        "policy_fields": POLICY,
        "quarantine": {"expired": [], "stale": [], "maxQuarantined": 0.2},
    }
    issued = issue_run(tmp_path / "v.json", run)
    payload, statement = read_back(tmp_path / "v.json")
    assert payload.isascii() and b"test_caf\\udce9.py" in payload
    assert payload == json.dumps(statement, sort_keys=True, separators=(",", ":")).encode("ascii")
    assert {**statement, "predicate": {**statement["predicate"], "tests": None}} == issued.statement
    assert statement["predicate"]["tests"][0]["nodeid"] == nodeid
    assert statement["predicate"]["reasons"][0]["text"] == f"1 test failed: {nodeid}"


def test_nan_and_infinity_become_null():
    assert (
        payload_bytes({"b": [float("inf"), 1.5], "a": float("nan"), "c": {"d": -float("inf")}})
        == b'{"a":null,"b":[null,1.5],"c":{"d":null}}'
    )


# -- secrets ----------------------------------------------------------------------------------

SECRET = 'tok"en\\é\n'  # every kind of character the encoder escapes or may escape


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf-8", "ascii-escaped"])
def test_a_secret_is_masked_wherever_it_is(ascii_only):
    lone = "\udcff" if ascii_only else ""  # a lone surrogate makes the payload ASCII-escaped
    statement = {
        "tests": [{"nodeid": f"t.py::test[{SECRET}]{lone}", "error": f"401 für Bearer {SECRET}"}],
        "load": {"endpoints": {f"GET /?key={SECRET}": {"requests": 1}}},
    }
    masked, payload = scrubbed_payload(statement, Scrubber([SECRET]))
    assert payload.isascii() is ascii_only
    assert (
        json.loads(payload)
        == masked
        == {
            "tests": [{"nodeid": f"t.py::test[***]{lone}", "error": "401 für Bearer ***"}],
            "load": {"endpoints": {"GET /?key=***": {"requests": 1}}},
        }
    )


def test_a_statement_without_the_secret_is_encoded_once_and_kept():
    statement = {"tests": [{"nodeid": "t.py::test_x", "error": "tok"}]}
    kept, payload = scrubbed_payload(statement, Scrubber([SECRET]))
    assert kept is statement and payload == canonical(statement)


@given(st.text(min_size=4), st.text(), st.text(), st.booleans())
def test_json_holding_a_secret_is_always_recognised(secret, before, after, ascii_only):
    data = json.dumps({"k": [before + secret + after]}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert Scrubber([secret]).in_json(data)


# -- the envelope and older verdicts ----------------------------------------------------------


@given(
    st.binary(max_size=2000).map(lambda data: base64.b64encode(data).decode()) | st.text(),
    st.lists(st.fixed_dictionaries({"keyid": st.text(max_size=20), "sig": st.text(max_size=20)}), max_size=2),
)
def test_envelope_bytes_are_what_json_dumps_writes(payload, signatures):
    envelope = {"payloadType": "application/vnd.in-toto+json", "payload": payload, "signatures": signatures}
    expected = json.dumps(envelope, sort_keys=True, separators=(",", ":")) + "\n"
    assert envelope_bytes(envelope) == expected.encode("ascii")


@given(
    st.binary(max_size=2000),
    st.lists(st.fixed_dictionaries({"keyid": st.text(max_size=20), "sig": st.text(max_size=20)}), max_size=2),
)
def test_envelope_bytes_of_a_payload_made_by_b64encode_skip_the_check_and_agree(data, signatures):
    envelope = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(data).decode(),
        "signatures": signatures,
    }
    expected = json.dumps(envelope, sort_keys=True, separators=(",", ":")) + "\n"
    assert envelope_bytes(envelope, base64_payload=True) == expected.encode("ascii")


def test_older_verdicts_with_plain_string_reasons_still_read():
    old = {
        "predicate": {
            "reasons": ["1 test failed: t::x", "the run was interrupted"],
            "reasonCodes": ["test-failed", "interrupted"],
        }
    }
    assert upgrade(old)["predicate"]["reasons"] == [
        {"code": "test-failed", "text": "1 test failed: t::x"},
        {"code": "interrupted", "text": "the run was interrupted"},
    ]
    assert reason_texts({"reasons": ["plain", {"code": "complete", "text": "coded"}]}) == ["plain", "coded"]
    # Not ours to guess: codes missing or not matching, the schema check says so.
    odd = {"predicate": {"reasons": ["a", "b"], "reasonCodes": ["x"]}}
    assert upgrade(odd) == {"predicate": {"reasons": ["a", "b"], "reasonCodes": ["x"]}}
