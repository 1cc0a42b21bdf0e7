"""Build the in-toto Statement (subject + promotion-verdict predicate) from the ledger. Pure, but
for :func:`read_subjects`, which hashes the artifact files named on the command line."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..core.decide import PROMOTE, Decision, tier_result
from ..core.errors import ConfigError
from ..core.ledger import Ledger, Tally, TestRecord
from ..core.redact import Scrubber
from ..core.tiers import TIERS
from . import PREDICATE_TYPE, STATEMENT_TYPE

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


#: Compiled on first use (the ``re`` module caches it): most runs name no subject.
_SUBJECT = r"(?P<name>.+)@sha256:(?P<hex>[0-9a-f]{64})"


def parse_subject(text: str) -> Subject | None:
    """``NAME@sha256:HEX`` (64 lowercase hex digits) as a Subject, or None if it is not that."""
    match = re.fullmatch(_SUBJECT, text)
    return Subject(match["name"], match["hex"]) if match else None


def read_subjects(artifacts: Sequence[str], artifact_files: Sequence[str], here: Path) -> tuple[Subject, ...]:
    """--staging-artifact (``NAME@sha256:HEX``) and --staging-artifact-file (hashed here; paths
    relative to ``here``, named as given), in that order."""
    subjects = []
    for value in artifacts:
        parsed = parse_subject(value)
        if parsed is None:
            raise ConfigError("--staging-artifact", "", f"{value!r} is not NAME@sha256:HEX (64 lowercase hex digits)")
        subjects.append(parsed)
    for path in artifact_files:
        digest = hashlib.sha256()
        try:
            with open(here / path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise ConfigError("--staging-artifact-file", "", f"cannot read {path} ({exc.strerror or exc})") from None
        subjects.append(Subject(path, digest.hexdigest()))
    return tuple(subjects)


def release_subject(release: str | None) -> Subject:
    """The subject used when no artifact is named: ``release:<ID>`` with the ID's sha256."""
    ident = release or "unknown"
    return Subject(f"release:{ident}", hashlib.sha256(ident.encode("utf-8")).hexdigest())


def policy_digest(policy: dict[str, Any]) -> dict[str, str]:
    """The DigestSet release tooling pins: ``{"sha256": HEX}`` of the canonical JSON of the gate's
    settings and of what was asked to run."""
    canonical = json.dumps(policy, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {"sha256": hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()}


def with_deselected(policy: dict[str, Any], deselected: dict[str, int]) -> dict[str, Any]:
    """The verdict's ``policy``: the settings, their digest, and in the selection how many tests
    this run deselected per tier (a count of this run, not a setting: outside the digest)."""
    selection = {
        **policy.get("selection", {}),
        "deselected": {tier: deselected[tier] for tier in TIERS if deselected.get(tier)},
    }
    return {**policy, "selection": selection, "digest": policy_digest(policy)}


def iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(text: str) -> dt.datetime:
    """A verdict's time (:func:`iso`; the schema lets the fraction of a second out) as an aware datetime."""
    layout = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in text else "%Y-%m-%dT%H:%M:%SZ"
    return dt.datetime.strptime(text, layout).replace(tzinfo=dt.timezone.utc)


def tool_versions() -> dict[str, str]:
    """Versions of the tools that took part in this session (imported ones only: asking package
    metadata for all of them costs more than the rest of the verdict)."""
    versions = {"python": "{}.{}.{}".format(*sys.version_info[:3])}
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


def tiers_section(ledger: Ledger, required: Sequence[str], tally: Tally | None = None) -> dict[str, Any]:
    tally = tally or Tally(ledger.records.values())
    section = {}
    for tier in TIERS:
        counted = tally.tier(tier)
        deselected = ledger.deselected.get(tier, 0)
        section[tier] = {
            "required": tier in required,
            "result": tier_result(counted, deselected),
            "counts": {**counted.counts, "deselected": deselected, "destructiveSkipped": counted.destructive_skipped},
            "duration": round(counted.duration, 6),
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
    shards: list[dict[str, Any]] | None = None,
    versions: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The statement as plain data. It may still hold secrets: :func:`scrubbed_payload` next.

    A shard's ledger adds ``predicate.shard``; a merged verdict lists its partials in ``shards``,
    and names the tools its tests ran with in ``versions`` (the merge itself runs no pytest)."""
    facts = ledger.session
    records = list(ledger.records.values())
    tests = [record.to_dict() for record in records]
    quarantined, flaky, ran, flaky_ran = [], [], 0, 0
    for record, test in zip(records, tests, strict=False):  # one pass; a record's dict is made once
        if record.quarantine is not None:
            quarantined.append(test)
        if record.flaky:
            flaky.append(test)
        if record.outcome != "skipped" and record.outcome != "notrun":
            ran += 1
            flaky_ran += record.flaky
    data = data_section(records)
    predicate = {
        "decision": decision.decision,
        "verificationResult": "PASSED" if decision.decision == PROMOTE else "FAILED",
        "reasons": [{"code": reason.code, "text": reason.text} for reason in decision.reasons],
        # The codes again, in the same order: what jq users of the first verdicts select on.
        "reasonCodes": [reason.code for reason in decision.reasons],
        "verifier": {"id": "https://pytest-staging.dev/verifier", "versions": {**(versions or {}), **tool_versions()}},
        "timeVerified": iso(time_verified),
        "release": release,
        "target": target,
        "policy": with_deselected(policy, ledger.deselected),
        "tiers": tiers_section(ledger, required, decision.tally),
        "tests": tests,
        "quarantine": {
            "tests": quarantined,
            "expired": list((quarantine or {}).get("expired", [])),
            "stale": list((quarantine or {}).get("stale", [])),
            "maxQuarantined": (quarantine or {}).get("maxQuarantined"),
        },
        "flaky": flaky,
        "baseline": ledger.baseline,
        "load": load_section(records),
        "sli": {
            "validationPassRate": _pass_rate(records),
            "flakinessRate": round(flaky_ran / ran, 6) if ran else 0.0,
            "dataValidationFailureRate": data_failure_rate(data),
        },
        "data": data,
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
    if ledger.shard is not None:
        predicate["shard"] = ledger.shard.to_dict(decision.shard_decision or decision.decision, ledger.unpinned)
    if shards is not None:
        predicate["shards"] = shards
    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject.to_dict() for subject in subjects],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def load_section(records: Sequence[TestRecord]) -> dict[str, Any] | None:
    """Every staging_load run, with the test that made it; None when no test ran load."""
    runs = [{"test": r.nodeid, **run} for r in records if r.load_runs for run in r.load_runs]
    return {"runs": runs} if runs else None


def data_section(records: Sequence[TestRecord]) -> dict[str, Any] | None:
    """Every staging_data expectation, with the test that made it; None when no test made one."""
    expectations = [{"test": r.nodeid, **e} for r in records if r.data_expectations for e in r.data_expectations]
    return {"expectations": expectations} if expectations else None


def data_failure_rate(data: dict[str, Any] | None) -> float | None:
    """Schema-invalid rows over the rows checked against a schema, over the run; None when no
    expectation had a schema."""
    rows = invalid = 0
    for expectation in (data or {}).get("expectations", ()):
        if expectation["invalid"] is not None:
            rows += expectation["rows"]
            invalid += expectation["invalid"]
    return round(invalid / rows, 6) if rows else None


def _pass_rate(records: Sequence[TestRecord]) -> float | None:
    """Share of staging_contract validations (and data-contract batches) that passed."""
    total = failed = 0
    for record in records:
        if record.validations or record.data_contracts:  # most records have neither
            total += record.validations + len(record.data_contracts)
            failed += record.validation_failures + sum(1 for result in record.data_contracts if not result["ok"])
    return round((total - failed) / total, 6) if total else None


def clean(value: Any, scrub: Callable[[str], str] | None = None) -> Any:
    """Scrub every string (keys too) and turn NaN/inf into null: valid, secret-free JSON."""
    if isinstance(value, str):
        return scrub(value) if scrub else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        if scrub:
            return {scrub(key) if isinstance(key, str) else key: clean(item, scrub) for key, item in value.items()}
        return {key: clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(item, scrub) for item in value]
    return value


def scrubbed_payload(statement: dict[str, Any], scrub: Scrubber | None) -> tuple[dict[str, Any], bytes]:
    """The statement with every secret masked, and its payload bytes.

    Speed: masking walks every string of the tree, which for 10,000 tests costs more than the
    rest of the verdict step (bench/verdict.py --key-in-env: 114 ms a step when every statement
    is walked, 63 ms this way). The payload holds every string of the statement, so it is
    encoded first and searched for the secrets (under 1 ms); only a statement that really holds
    one is walked and encoded again.
    """
    payload = payload_bytes(statement)
    if scrub and scrub.in_json(payload):
        statement = clean(statement, scrub)
        payload = payload_bytes(statement)
    return statement, payload


def payload_bytes(statement: dict[str, Any]) -> bytes:
    """The exact bytes that get signed: what one JSON encoder call writes for the statement.

    Compact, sorted keys, UTF-8; NaN and infinities become null (JSON has no such numbers). Text
    that is not valid Unicode (a lone surrogate, as in a node id from an undecodable file name)
    cannot be UTF-8: then the encoder escapes every non-ASCII character (``\\udc80``), which JSON
    allows and Python's json reads back unchanged (jq and Go put U+FFFD there). No verdict is lost
    to it.
    """
    try:
        text = _dumps(statement, ascii=False)
    except ValueError:  # a NaN or infinity somewhere: null it (rare, so only then walk the tree)
        statement = clean(statement)
        text = _dumps(statement, ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _dumps(statement, ascii=True).encode("ascii")


def _dumps(value: Any, *, ascii: bool) -> str:
    # check_circular off: the statement is a tree built here, and the check costs the encoder a
    # dict insert and delete per container (3 of its 26 ms for 10,000 tests).
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii, allow_nan=False, check_circular=False
    )
