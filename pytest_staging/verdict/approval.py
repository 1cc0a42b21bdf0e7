"""Approvals: a person's signed sign-off of one HOLD verdict, as a second attestation. Pure.

A HOLD says evidence is missing (an interrupted run, an inconclusive baseline, a quarantine over
its budget). An approval lets a person take responsibility for going ahead anyway, on the record,
without touching the verdict: a DSSE envelope, signed with the approver's own key, over an in-toto
Statement whose first subject is the verdict file (the sha256 of its exact bytes: the binding is
by digest, never by file name), followed by the verdict's own subjects, so tooling that looks up
attestations by artifact digest finds the approval beside the verdict.

Only a HOLD can be approved: a REJECT is evidence of failure, which no person's word removes, and a
PROMOTE needs nothing. The gate's key never approves: a key that can sign verdicts could otherwise
sign off its own HOLDs, and the approval would prove nothing a person did.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, NamedTuple

from ..core.decide import INCOMPLETE
from . import STATEMENT_TYPE
from .dsse import VerificationError

PREDICATE_TYPE = "https://pytest-staging.dev/approval/v1"


class Refused(Exception):
    """``approve`` will not approve this file; the message is one line for the user."""


class Approval(NamedTuple):
    """An approval file read back: its statement, parsed from the exact payload bytes."""

    statement: dict[str, Any]
    #: The exact payload bytes (the signed bytes, once verified).
    payload: bytes
    #: The key id of the given approver key whose signature verified; None when none was given.
    keyid: str | None

    @property
    def predicate(self) -> dict[str, Any]:
        return self.statement["predicate"]


def approval_statement(
    verdict_raw: bytes,
    verdict_name: str,
    *,
    approver: str,
    reason: str,
    now: float,
    expires: dt.timedelta | None = None,
) -> dict[str, Any]:
    """The approval's Statement for the verdict file whose bytes are ``verdict_raw``.

    Raises :class:`Refused` for anything but a signed HOLD verdict.
    """
    from .files import read_verdict, reason_texts
    from .statement import iso

    try:
        verdict = read_verdict(verdict_raw)
    except VerificationError as exc:
        raise Refused(f"not a promotion verdict ({exc}); nothing to approve") from None
    predicate = verdict.statement["predicate"]
    decision = predicate["decision"]
    if decision == "REJECT":
        reasons = "; ".join(reason_texts(predicate))
        raise Refused(f"the verdict is a REJECT ({reasons}): evidence of failure cannot be approved, only fixed")
    if decision != "HOLD":
        raise Refused(f"the verdict is a {decision}: only a HOLD needs an approval")
    if INCOMPLETE in predicate.get("reasonCodes", ()):
        raise Refused(
            "the verdict is the placeholder of a run that did not finish (killed, or still running): it proves "
            "no test at all; run the gate again"
        )
    if not verdict.signatures:
        raise Refused("the verdict is unsigned: it can never verify, so an approval of it would prove nothing")
    partial = _partial(verdict.statement)
    if partial:
        raise Refused(partial + "; merge the shards' partials (pytest-staging merge), then approve the merged verdict")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": verdict_name, "digest": {"sha256": hashlib.sha256(verdict_raw).hexdigest()}},
            *verdict.statement["subject"],
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "approver": approver,
            "reason": reason,
            "timeApproved": iso(now),
            "expires": iso(now + expires.total_seconds()) if expires is not None else None,
            "verdictDecision": decision,
            "verdictReasons": predicate["reasons"],
        },
    }


def read_approval(raw: bytes, keys: Any = ()) -> Approval:
    """The approval in a file's bytes. With ``keys``, a signature by one of them must verify
    before the payload is parsed; the statement is then checked against the approval schema.
    Raises VerificationError with a one-line reason."""
    from . import dsse

    envelope = dsse.parse(raw)
    keyid = dsse.verify(envelope, list(keys)).keyid if keys else None
    try:
        statement = dsse.loads(envelope.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise VerificationError("the payload is not UTF-8 JSON") from None
    import jsonschema

    from .files import shipped_validator

    error = jsonschema.exceptions.best_match(shipped_validator("approval.schema.json").iter_errors(statement))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        raise VerificationError(f"not a pytest-staging approval: {where}: {error.message}")
    for field in ("approver", "reason"):  # the pattern's $ lets one final line break through
        problem = line_problem(statement["predicate"][field])
        if problem:
            raise VerificationError(f"not a pytest-staging approval: predicate/{field} {problem}")
    return Approval(statement, envelope.payload, keyid)


def line_problem(text: str) -> str | None:
    """Why ``text`` is not one line a person wrote for the record (shown in terminals and reports)."""
    if not text.strip():
        return "is blank; say it in words"
    if any(ord(char) < 32 or 127 <= ord(char) < 160 or char in "\u2028\u2029" for char in text):
        return "holds a line break or control character; give one line of text"
    return None


def binding_problem(approval: Approval, verdict_raw: bytes, verdict: dict[str, Any]) -> str | None:
    """Why the approval is not an approval of exactly this verdict file (None when it is)."""
    held = approval.statement["subject"][0]["digest"]["sha256"]
    actual = hashlib.sha256(verdict_raw).hexdigest()
    if held != actual:
        return f"it approves another verdict (sha256:{held[:16]}…), not this one (sha256:{actual[:16]}…)"
    subjects = [(s["name"], s["digest"]["sha256"]) for s in approval.statement["subject"][1:]]
    if subjects != [(s["name"], s["digest"]["sha256"]) for s in verdict["subject"]]:
        return "its subjects after the verdict file are not the verdict's subjects"
    partial = _partial(verdict)
    if partial:
        return partial + ", which only a merge completes"
    decision = verdict["predicate"]["decision"]
    if decision == "REJECT":
        return "the verdict is a REJECT: an approval never turns a REJECT into anything else"
    if approval.predicate["verdictDecision"] != decision or decision != "HOLD":
        return f"it approves a {approval.predicate['verdictDecision']}, and the verdict is a {decision}"
    return None


def time_problem(approval: Approval, verdict: dict[str, Any], now: dt.datetime, skew: dt.timedelta) -> str | None:
    """Why the approval's dates cannot be right (None when they can): unreadable, in the future,
    or before the verdict it approves, beyond ``skew`` of clock difference between the machines."""
    predicate = approval.predicate
    times = {}
    for field in ("timeApproved", "expires"):
        try:
            times[field] = _time(predicate[field])
        except ValueError:
            return f"its {field} {predicate[field]!r} is not a date and time"
    approved = times["timeApproved"]
    if approved > now + skew:
        return f"it is dated in the future (timeApproved {predicate['timeApproved']})"
    if approved + skew < _time(verdict["predicate"]["timeVerified"]):
        return (
            f"it is dated before the verdict it approves (timeApproved {predicate['timeApproved']}, "
            f"timeVerified {verdict['predicate']['timeVerified']})"
        )
    return None


def expired(approval: Approval, now: dt.datetime) -> str | None:
    """When the approval stopped counting, if it has by ``now`` (its dates passed :func:`time_problem`)."""
    expires = approval.predicate["expires"]
    return expires if expires is not None and now >= _time(expires) else None


def _time(text: str | None) -> dt.datetime:
    """An approval's time as an aware datetime; None (no expiry) is the end of time. ValueError
    when it is no date: the schema's pattern lets through what the calendar does not (a 31st of
    February)."""
    from .statement import from_iso

    if text is None:
        return dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    return from_iso(text)


def _partial(verdict: dict[str, Any]) -> str | None:
    """A shard's partial verdict holds a share of the tests: approving it would let the rest of the
    suite through untested."""
    shard = verdict["predicate"].get("shard")
    if not isinstance(shard, dict):
        return None
    return f"the verdict is shard {shard.get('index')}/{shard.get('count')}'s partial verdict, a share of the tests"


def described(predicate: dict[str, Any]) -> str:
    """Who approved, when, until when and why (an approval's predicate): one line, for people."""
    until = f"until {predicate['expires']}" if predicate["expires"] else "no expiry"
    return f"{predicate['approver']} at {predicate['timeApproved']} ({until}): {predicate['reason']}"
