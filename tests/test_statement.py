"""The verdict payload's JSON: the fast record encoder agrees with json.dumps byte for byte."""

from __future__ import annotations

import base64
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_staging.ledger import OUTCOMES, Attempt, TestRecord
from pytest_staging.redact import Scrubber
from pytest_staging.verdict.files import envelope_bytes
from pytest_staging.verdict.statement import TESTS, payload_bytes, record_json, seconds_json

text = st.text(max_size=30)
durations = st.floats(min_value=0, max_value=1e6, allow_nan=False) | st.sampled_from([0.0, 1e-7, float("nan")])


@st.composite
def records(draw) -> TestRecord:
    record = TestRecord(
        nodeid=draw(st.text(min_size=1, max_size=60)),
        tier=draw(st.sampled_from(["smoke", "contract", "load"])),
        outcome=draw(st.sampled_from(OUTCOMES)),
        duration=draw(durations),
        destructive=draw(st.booleans()),
        skip_reason=draw(st.none() | text),
        error=draw(st.none() | text),
        quarantine=draw(st.none() | st.fixed_dictionaries({"owner": text, "until": text})),
        flaky=draw(st.booleans()),
        correlation_id_value=draw(st.none() | st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)),
    )
    for _ in range(draw(st.integers(0, 3))):
        record.attempts.append(Attempt(draw(st.sampled_from(OUTCOMES)), draw(durations), draw(st.none() | text)))
    return record


def reference(record: TestRecord) -> str:
    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [finite(v) for v in value]
        return value

    return json.dumps(finite(record.to_dict()), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@given(records())
def test_record_json_is_what_json_dumps_writes(record):
    assert record_json(record) == reference(record)


def test_common_record_takes_the_fast_path_and_agrees():
    record = TestRecord('t.py::test_x[é"\\n]', "contract", outcome="passed", duration=0.1234567, correlation_id_value="a" * 32)
    record.attempts.append(Attempt("passed", 0.1234567))
    assert record_json(record) == reference(record)
    assert json.loads(record_json(record))["nodeid"] == 't.py::test_x[é"\\n]'


def test_payload_splices_the_records_in_and_scrubs_them():
    record = TestRecord("t.py::test_tok-123456", "smoke", outcome="passed", duration=0.5)
    record.attempts.append(Attempt("passed", 0.5))
    payload = payload_bytes({"predicate": {"tests": TESTS, "z": 1}}, [record], Scrubber(["tok-123456"]))
    assert json.loads(payload) == {
        "predicate": {"tests": [{"attempts": [{"duration": 0.5, "outcome": "passed"}], "duration": 0.5,
                                 "nodeid": "t.py::test_***", "outcome": "passed", "tier": "smoke"}], "z": 1}
    }


@given(st.binary(max_size=2000), st.lists(st.fixed_dictionaries({"keyid": st.text(max_size=20), "sig": st.text(max_size=20)}), max_size=2))
def test_envelope_bytes_are_what_json_dumps_writes(payload, signatures):
    envelope = {"payloadType": "application/vnd.in-toto+json", "payload": base64.b64encode(payload).decode(), "signatures": signatures}
    expected = json.dumps(envelope, sort_keys=True, separators=(",", ":")) + "\n"
    assert envelope_bytes(envelope) == expected.encode("ascii")


def test_envelope_bytes_refuses_a_payload_that_is_not_base64():
    with pytest.raises(ValueError, match="not standard base64"):
        envelope_bytes({"payload": 'a"b', "payloadType": "x", "signatures": []})


@given(st.floats(allow_nan=False, allow_infinity=False) | st.floats(min_value=0, max_value=1e4) | st.sampled_from([1e-4, 9.99995e-5, 1e9, 999999999.9999996, 0.0, -0.0, 5e-7, 4.9e-7, 2.5, 0.1 + 0.2]))
def test_seconds_json_is_json_dumps_of_round_6(value):
    assert seconds_json(value) == json.dumps(round(value, 6))
