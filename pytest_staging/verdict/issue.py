"""Turn a ledger into a signed verdict file: decide → statement → sign → write. The ledger is the
controller's, or the union of the shards' records that ``pytest-staging merge`` reads back."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from ..core.decide import Decision, Policy
from ..core.ledger import Ledger
from ..core.redact import Scrubber
from . import dsse
from .files import envelope_bytes, write_atomic
from .statement import Subject, build_statement, scrubbed_payload


class Issued(NamedTuple):
    path: Path
    #: The statement as signed, less ``predicate.tests`` (None): what the terminal summary and the
    #: VSA need. The records themselves are in the file (:func:`.files.read_verdict`).
    statement: dict[str, Any]
    keyid: str | None
    #: The file's bytes as written (what the VSA's digest of the verdict covers).
    data: bytes


def issue(
    *,
    path: Path,
    ledger: Ledger,
    decision: Decision,
    policy: Policy,
    policy_fields: dict[str, Any],
    target: dict[str, Any],
    release: dict[str, Any],
    subjects: tuple[Subject, ...],
    signing_key: Any,
    now: float,
    scrub: Scrubber | None,
    quarantine: dict[str, Any] | None = None,
    trace_id: str | None = None,
    shards: list[dict[str, Any]] | None = None,
    versions: dict[str, str] | None = None,
) -> Issued:
    required = policy.required(ledger)
    with collector_paused():
        statement = build_statement(
            ledger=ledger,
            decision=decision,
            policy={**policy_fields, "requiredTiers": list(required)},
            required=required,
            target=target,
            release=release,
            subjects=subjects,
            time_verified=now,
            quarantine=quarantine,
            trace_id=trace_id,
            shards=shards,
            versions=versions,
        )
        statement, payload = scrubbed_payload(statement, scrub)
        # Speed: freed now by reference counting, while the collector is off. Kept, the records'
        # tens of thousands of dicts made its next passes walk them all: 0.28 of the 0.72 billion
        # instructions an active gate of 5,000 tests added to bare pytest (bench/overhead.py).
        statement["predicate"]["tests"] = None
    envelope = dsse.envelope(payload, signing_key)
    data = envelope_bytes(envelope, base64_payload=True)
    write_atomic(path, data)
    keyid = envelope["signatures"][0]["keyid"] if envelope["signatures"] else None
    return Issued(path, statement, keyid, data)


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while the statement is built and encoded.

    Speed: the statement holds a few dicts and lists per test, and allocating some 30,000 of them
    set off a full collection of the whole session's objects in the middle of it: 140 ms of a
    215 ms verdict step for 10,000 tests, 63 ms without it (bench/verdict.py). The statement is
    a tree, so reference counting frees it without the collector; a collection that was due
    runs later.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
