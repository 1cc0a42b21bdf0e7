"""Build the in-toto Statement (subject + promotion-verdict predicate) from the ledger. Pure."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ..decide import PROMOTE, Decision, tier_result
from ..ledger import OUTCOMES, Ledger, TestRecord
from ..tiers import TIERS
from . import PREDICATE_TYPE, STATEMENT_TYPE

#: Stands in for ``predicate.tests`` in the statement dict until :func:`payload_bytes` writes the
#: records: thousands of them go straight to JSON text instead of through a dict each.
TESTS = "\x00tests\x00"
_TESTS_JSON = json.dumps(TESTS)
_encode_str = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses for strings

#: distribution name -> module whose __version__ says it, when the session imported that module.
_TOOLS = {
    "pytest": "pytest",
    "pytest-staging": "pytest_staging",
    "pytest-xdist": "xdist",
    "requests": "requests",
    "cryptography": "cryptography",
    "jsonschema": "jsonschema",
    "opentelemetry-api": "opentelemetry.version",
}


class Subject(NamedTuple):
    name: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": {"sha256": self.sha256}}


_SUBJECT = re.compile(r"(?P<name>.+)@sha256:(?P<hex>[0-9a-f]{64})")


def parse_subject(text: str) -> Subject | None:
    """``NAME@sha256:HEX`` (64 lowercase hex digits) as a Subject, or None if it is not that."""
    match = _SUBJECT.fullmatch(text)
    return Subject(match["name"], match["hex"]) if match else None


def release_subject(release: str | None) -> Subject:
    """The subject used when no artifact is named: ``release:<ID>`` with the ID's sha256."""
    ident = release or "unknown"
    return Subject(f"release:{ident}", hashlib.sha256(ident.encode("utf-8")).hexdigest())


def policy_digest(policy: dict[str, Any]) -> dict[str, str]:
    """The DigestSet release tooling pins (``{"sha256": HEX}`` of the canonical JSON): the gate's
    settings and what was asked to run, but not how many tests that deselected (a count of this
    run, not a setting)."""
    selection = policy.get("selection")
    if isinstance(selection, dict) and "deselected" in selection:
        policy = {**policy, "selection": {k: v for k, v in selection.items() if k != "deselected"}}
    canonical = json.dumps(policy, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {"sha256": hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()}


def iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tool_versions() -> dict[str, str]:
    """Versions of the tools that took part in this session (imported ones only: asking package
    metadata for all of them costs more than the rest of the verdict)."""
    versions = {"python": "%d.%d.%d" % sys.version_info[:3]}
    for name, module in _TOOLS.items():
        if module not in sys.modules:
            continue
        if name == "jsonschema":  # its __version__ is deprecated
            from importlib.metadata import version as dist_version

            versions[name] = dist_version("jsonschema")
            continue
        version = getattr(sys.modules[module], "__version__", None)
        if isinstance(version, str):
            versions[name] = version
    return versions


def tiers_section(ledger: Ledger, required: Sequence[str]) -> dict[str, Any]:
    by_tier = ledger.by_tier()
    section = {}
    for tier in TIERS:
        records = by_tier.get(tier, [])
        counts = {outcome: 0 for outcome in OUTCOMES}
        for record in records:
            counts[record.outcome if record.outcome in counts else "notrun"] += 1
        counts["deselected"] = ledger.deselected.get(tier, 0)
        counts["destructiveSkipped"] = sum(
            1 for r in records if r.outcome == "skipped" and (r.skip_reason or "").startswith("staging: destructive")
        )
        section[tier] = {
            "required": tier in required,
            "result": tier_result(records, ledger.deselected.get(tier, 0)),
            "counts": counts,
            "duration": round(sum(r.duration for r in records), 6),
        }
    return section


def build_statement(
    *,
    ledger: Ledger,
    decision: Decision,
    policy: dict[str, Any],
    required: Sequence[str],
    target: dict[str, Any],
    release: dict[str, Any],
    subjects: Sequence[Subject],
    time_verified: float,
    trace_id: str | None = None,
    quarantine: dict[str, Any] | None = None,
    scrub: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    facts = ledger.session
    records = list(ledger.records.values())
    ran = [r for r in records if r.outcome not in ("skipped", "notrun")]
    predicate = {
        "decision": decision.decision,
        "verificationResult": "PASSED" if decision.decision == PROMOTE else "FAILED",
        "reasons": [reason.text for reason in decision.reasons],
        "reasonCodes": [reason.code for reason in decision.reasons],
        "verifier": {"id": "https://pytest-staging.dev/verifier", "versions": tool_versions()},
        "timeVerified": iso(time_verified),
        "release": release,
        "target": target,
        "policy": {**policy, "digest": policy_digest(policy)},
        "tiers": tiers_section(ledger, required),
        "tests": TESTS,  # encoded straight to JSON by payload_bytes: the bulk of a big verdict
        "quarantine": {
            "tests": [r.to_dict() for r in records if r.quarantine is not None],
            "expired": list((quarantine or {}).get("expired", [])),
            "stale": list((quarantine or {}).get("stale", [])),
            "maxQuarantined": (quarantine or {}).get("maxQuarantined"),
        },
        "flaky": [r.to_dict() for r in records if r.flaky],
        "baseline": ledger.baseline,
        "load": load_section(records),
        "sli": {
            "validationPassRate": _pass_rate(records),
            "flakinessRate": round(sum(1 for r in ran if r.flaky) / len(ran), 6) if ran else 0.0,
        },
        "session": {
            "exitStatus": facts.exit_status,
            "interrupted": facts.interrupted,
            "internalError": facts.internal_error,
            "collectionErrors": facts.collection_errors,
            "xdistWorkers": facts.xdist_workers,
            "crashedWorkers": facts.crashed_workers,
            "start": iso(facts.started),
            "end": iso(facts.finished),
            "durationSeconds": round(facts.finished - facts.started, 6),
        },
        "traceId": trace_id,
    }
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [subject.to_dict() for subject in subjects],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }
    # Walking the whole tree costs as much as building it: only when there is a secret to hide.
    return clean(statement, scrub) if scrub else statement


def load_section(records: Sequence[TestRecord]) -> dict[str, Any] | None:
    """Every staging_load run, with the test that made it; None when no test ran load."""
    runs = [{"test": r.nodeid, **run} for r in records if r.load_runs for run in r.load_runs]
    return {"runs": runs} if runs else None


def _pass_rate(records: Sequence[TestRecord]) -> float | None:
    """Share of staging_contract validations (and data-contract batches) that passed."""
    total = failed = 0
    for record in records:
        if record.validations or record.data_contracts:  # most records have neither
            total += record.validations + len(record.data_contracts)
            failed += record.validation_failures + sum(1 for result in record.data_contracts if not result["ok"])
    return round((total - failed) / total, 6) if total else None


def clean(value: Any, scrub: Callable[[str], str] | None = None) -> Any:
    """Scrub every string and turn NaN/inf into null, so the payload is valid, secret-free JSON."""
    if isinstance(value, str):
        return scrub(value) if scrub else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: clean(item, scrub) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(item, scrub) for item in value]
    return value


def _dumps(value: Any) -> str:
    """Compact JSON with sorted keys; NaN and infinities become null."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:  # a NaN or infinity somewhere: null it (rare, so only then walk the tree)
        return json.dumps(clean(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def seconds_json(value: float) -> str:
    """``json.dumps(round(value, 6))`` for a finite float, formatted in one step.

    ``round`` followed by ``repr`` converts the number to decimal twice (and back once), the
    bulk of a big verdict's encoding time. Between 1e-4 and 1e9 the 6-decimal fixed notation,
    trailing zeros dropped, is that same text: it holds at most 15 significant digits, so it is
    the shortest repr of the float it parses to, which is ``round(value, 6)``. Outside that
    range repr may use an exponent, so it is computed the long way.
    """
    if 1e-4 <= abs(value) < 1e9:
        text = f"{value:.6f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    return repr(round(value, 6))


def record_json(record: TestRecord, scrub: Callable[[str], str] | None = None) -> str:
    """One test record as the JSON ``json.dumps(record.to_dict(), sort_keys=True, ...)`` gives.

    The common record (one attempt, nothing to report but maybe a correlation id) is formatted
    directly, keys in sorted order, which is several times faster; anything else goes through
    json.dumps. tests/test_verdict.py checks the two agree byte for byte.
    """
    attempts = record.attempts
    if (
        len(attempts) == 1
        and attempts[0].error is None
        and not (record.destructive or record.skip_reason or record.error or record.flaky)
        and not (record.validations or record.data_contracts)
        and record.quarantine is None
        and math.isfinite(record.duration)
        and math.isfinite(attempts[0].duration)
    ):
        nodeid = scrub(record.nodeid) if scrub else record.nodeid
        cid, span_id = record.correlation_id_value, record.span_id
        duration = seconds_json(record.duration)
        # A test that ran once: its attempt took the test's whole time (formatted once).
        attempt = duration if attempts[0].duration == record.duration else seconds_json(attempts[0].duration)
        return '{"attempts":[{"duration":%s,"outcome":"%s"}],%s"duration":%s,"nodeid":%s,"outcome":"%s",%s"tier":"%s"}' % (
            attempt,
            attempts[0].outcome,
            f'"correlationId":{_encode_str(cid)},' if cid else "",
            duration,
            _encode_str(nodeid),
            record.outcome,
            f'"spanId":"{span_id}",' if span_id else "",
            record.tier,
        )
    data = record.to_dict()
    return _dumps(clean(data, scrub) if scrub else data)


def payload_bytes(
    statement: dict[str, Any], records: Sequence[TestRecord] = (), scrub: Callable[[str], str] | None = None
) -> bytes:
    """Compact UTF-8 JSON with sorted keys and no NaN: the exact bytes that get signed.

    ``records`` fill the ``predicate.tests`` placeholder left by :func:`build_statement`.
    """
    text = _dumps(statement)
    tests = "[" + ",".join([record_json(record, scrub) for record in records]) + "]"
    return text.replace(_TESTS_JSON, tests, 1).encode("utf-8")
