"""The SLSA Verification Summary Attestation (VSA) v1 the gate writes beside its verdict. Pure.

https://slsa.dev/spec/v1.0/verification_summary: a release pipeline that already consumes VSAs
(slsa-verifier verify-vsa, a policy engine) learns from it that the gate verified these subjects
against its policy, and with what result, without reading our own predicate. The VSA names the
verdict file, with the sha256 of its bytes, as its one input attestation, so it is written after
the verdict, each time the verdict is: the ``incomplete`` HOLD at the start of a run included,
which gives a ``FAILED`` VSA until the final verdict replaces both.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, NamedTuple

from ..core.errors import ConfigError
from . import STATEMENT_TYPE

PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1"
POLICY_URI = "https://pytest-staging.dev/promotion-policy/v1"
DEFAULT_VERIFIER_ID = "https://pytest-staging.dev/gate"
#: The level a PROMOTE verifies: not a SLSA track, so named with our prefix (as SLSA asks).
PROMOTE_LEVEL = "PYTEST_STAGING_PROMOTE"
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


class VsaSettings(NamedTuple):
    """--staging-vsa, --staging-verifier-id and --staging-resource-uri (controller only)."""

    path: Path
    verifier_id: str = DEFAULT_VERIFIER_ID
    #: None: the first subject's name.
    resource_uri: str | None = None


def read_vsa(path: Path | None, verifier_id: str | None, resource_uri: str | None) -> VsaSettings | None:
    """--staging-vsa (or ini staging_vsa) and the options that describe it; those options without
    a VSA path are a mistake, not something to ignore."""
    if path is None:
        for option, value in (("--staging-verifier-id", verifier_id), ("--staging-resource-uri", resource_uri)):
            if value:
                problem = (
                    "describes the VSA, which is written only with --staging-vsa=PATH (or ini staging_vsa); add one"
                )
                raise ConfigError(option, "", problem)
        return None
    return VsaSettings(
        path=path,
        verifier_id=check_uri(verifier_id, "--staging-verifier-id") if verifier_id else DEFAULT_VERIFIER_ID,
        resource_uri=check_uri(resource_uri, "--staging-resource-uri") if resource_uri else None,
    )


def check_uri(text: str, option: str) -> str:
    """A URI with a scheme (``https://...``, ``pkg:...``); anything else is a usage error."""
    if not _URI.fullmatch(text):
        raise ConfigError(
            option, "", f"{text!r} is not a URI such as https://ci.example.com/gate; give one with a scheme"
        )
    return text


def summary_statement(
    verdict: dict[str, Any], verdict_name: str, verdict_sha256: str, settings: VsaSettings
) -> dict[str, Any]:
    """The VSA's in-toto Statement for a verdict's statement, as plain data: the same subjects,
    time and policy digest; the verdict file as the input attestation."""
    predicate = verdict["predicate"]
    passed = predicate["decision"] == "PROMOTE"
    return {
        "_type": STATEMENT_TYPE,
        "subject": verdict["subject"],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verifier": {"id": settings.verifier_id},
            "timeVerified": predicate["timeVerified"],
            "resourceUri": settings.resource_uri or verdict["subject"][0]["name"],
            "policy": {"uri": POLICY_URI, "digest": predicate["policy"]["digest"]},
            "inputAttestations": [{"uri": verdict_name, "digest": {"sha256": verdict_sha256}}],
            "verificationResult": "PASSED" if passed else "FAILED",
            "verifiedLevels": [PROMOTE_LEVEL] if passed else ["FAILED"],
            "slsaVersion": "1.0",
        },
    }


def write_summary(
    settings: VsaSettings, verdict_path: Path, verdict_bytes: bytes, verdict: dict[str, Any], signing_key: Any
) -> None:
    """Sign (with the verdict's key; unsigned without one) and write the VSA atomically."""
    from . import dsse
    from .files import envelope_bytes, write_atomic
    from .statement import payload_bytes

    statement = summary_statement(verdict, verdict_path.name, hashlib.sha256(verdict_bytes).hexdigest(), settings)
    write_atomic(
        settings.path, envelope_bytes(dsse.envelope(payload_bytes(statement), signing_key), base64_payload=True)
    )
