"""Approval files the `approve` command would not write (expired ones, approvals of a verdict it
refuses), made with the library and signed by an approver's key, for the approval tests and the
fault matrix."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from pathlib import Path

from pytest_staging.verdict import dsse
from pytest_staging.verdict.approval import approval_statement
from pytest_staging.verdict.files import envelope_bytes
from pytest_staging.verdict.statement import from_iso, payload_bytes


def statement_of(path: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(path.read_bytes())["payload"]))


def signed_approval(statement: dict, key: Path) -> bytes:
    """Any statement as an approval file, signed with the private key at ``key``."""
    private = dsse.load_private_key(key.read_bytes(), str(key))
    return envelope_bytes(dsse.envelope(payload_bytes(statement), private))


def expired_approval(verdict: Path, key: Path, approver: str = "Alice") -> bytes:
    """A valid approval of ``verdict``, made when it was verified and expired a microsecond later."""
    time_verified = from_iso(statement_of(verdict)["predicate"]["timeVerified"]).timestamp()
    statement = approval_statement(
        verdict.read_bytes(),
        verdict.name,
        approver=approver,
        reason="r",
        now=time_verified,
        expires=dt.timedelta(microseconds=1),
    )
    return signed_approval(statement, key)


def approval_of_any(verdict: Path, hold: Path, key: Path) -> bytes:
    """An approval of ``verdict``, whatever it is (a REJECT, a partial), made from an approval of
    the HOLD at ``hold`` with the subjects changed to ``verdict``'s: what approve refuses to write."""
    statement = approval_statement(hold.read_bytes(), hold.name, approver="Alice", reason="r", now=time.time())
    statement["subject"] = [
        {"name": verdict.name, "digest": {"sha256": hashlib.sha256(verdict.read_bytes()).hexdigest()}},
        *statement_of(verdict)["subject"],
    ]
    return signed_approval(statement, key)
