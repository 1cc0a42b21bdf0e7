"""``pytest-staging merge``: one verdict from the partial verdicts of a sharded run.

The partials have been verified (the CLI reads them through :func:`.files.read_verdict`). Here
their statements become a ledger again: the union of the shards' records, their deselection and
session facts, the pre-flight's finding, the worst baseline result and every load run; what the
records cannot show (a shard absent, given twice, or of another collection, target, release,
build or policy) joins the ledger as missing evidence (:mod:`..core.shards`). The union is decided
by :func:`..core.decide.decide`, and signed and written by :func:`.issue.issue`, as a gate run's
verdict is.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..core.decide import BASELINE_WORST_FIRST, PREFLIGHT_CODES, Decision, Policy, decide
from ..core.ledger import Ledger, TestRecord
from ..core.shards import Partial, problems
from ..core.tiers import TIERS
from .issue import Issued, issue
from .statement import Subject, from_iso

#: A pre-flight finding's reason code → the finding (``Ledger.preflight_kind``).
_PREFLIGHT_KINDS = {code: kind for kind, (code, _) in PREFLIGHT_CODES.items()}


class Given(NamedTuple):
    """A verified partial verdict as given to the merge."""

    #: The file as named on the command line.
    name: str
    #: sha256 of the file's bytes.
    sha256: str
    statement: dict[str, Any]


def merge(partials: Sequence[Given], *, path: Path, signing_key: Any, now: float) -> tuple[Issued, Decision]:
    """Decide over the union of the partials, and sign and write the merged verdict at ``path``."""
    # Shard 1 first (a verdict that is no shard's last): the merged verdict names its target,
    # release, subjects and policy; when the partials disagree on them, the verdict is a HOLD.
    ordered = sorted(partials, key=lambda given: (not _shard(given), _shard(given).get("index", 0), given.name))
    base = ordered[0].statement["predicate"]
    ledger = union(ordered)
    covered = len(ledger.records) + sum(ledger.deselected.values())
    ledger.gaps = problems([_partial(given) for given in ordered], covered)
    policy_fields = {key: value for key, value in base["policy"].items() if key not in ("digest", "requiredTiers")}
    policy_fields["selection"] = {k: v for k, v in base["policy"]["selection"].items() if k != "deselected"}
    baseline = base["policy"].get("baseline") or {}
    policy = Policy(
        required_tiers=tuple(base["policy"]["requiredTiers"]),
        fail_fast=base["policy"].get("failFast", True),
        flaky=base["policy"].get("flaky", "allow"),
        max_quarantined=base["policy"].get("maxQuarantined", 0.2),
        baseline_marginal=baseline.get("marginal", "hold"),
        baseline_inconclusive=baseline.get("inconclusive", "hold"),
        baseline_strict=baseline.get("strict", False),
        allow_deselection=base["policy"].get("allowDeselection", False),
    )
    decision = decide(ledger, policy)
    ledger.session.exit_status = 0 if decision.decision == "PROMOTE" else 6  # what the merge exits with
    expired, stale = _union(ordered, "expired"), _union(ordered, "stale")
    traces = {given.statement["predicate"].get("traceId") for given in ordered}
    issued = issue(
        path=path,
        ledger=ledger,
        decision=decision,
        policy=policy,
        policy_fields=policy_fields,
        target=base["target"],
        release=base["release"],
        subjects=tuple(Subject(s["name"], s["digest"]["sha256"]) for s in ordered[0].statement["subject"]),
        signing_key=signing_key,
        now=now,
        scrub=None,  # the partials were scrubbed by their gates
        quarantine={"expired": expired, "stale": stale, "maxQuarantined": base["quarantine"].get("maxQuarantined")},
        trace_id=traces.pop() if len(traces) == 1 else None,
        versions=base["verifier"]["versions"],  # the tools the tests ran with (pytest...), and the merge's own
        shards=[
            {
                "index": _shard(given).get("index"),
                "file": given.name,
                "digest": {"sha256": given.sha256},
                "decision": _shard(given).get("decision", given.statement["predicate"]["decision"]),
            }
            for given in ordered
        ],
    )
    return issued, decision


def union(partials: Sequence[Given]) -> Ledger:
    """The shards' ledgers as one: every record (in collection order when the shards' shares
    interleave as ``--staging-shard`` deals them), deselection summed, the session's facts, the
    pre-flight's finding, the worst baseline, every load run and data expectation."""
    ledger = Ledger()
    facts = ledger.session
    records = ledger.records
    by_shard: list[list[TestRecord]] = []
    load_runs: list[dict[str, Any]] = []
    expectations: list[dict[str, Any]] = []
    for given in partials:
        predicate = given.statement["predicate"]
        by_shard.append([TestRecord.from_dict(test) for test in predicate["tests"]])
        load_runs += (predicate.get("load") or {}).get("runs", [])
        expectations += (predicate.get("data") or {}).get("expectations", [])
        for tier, count in (predicate["policy"]["selection"].get("deselected") or {}).items():
            ledger.deselected[tier] = ledger.deselected.get(tier, 0) + count
        session = predicate["session"]
        started, finished = from_iso(session["start"]).timestamp(), from_iso(session["end"]).timestamp()
        facts.started = min(facts.started, started) if facts.started else started
        facts.finished = max(facts.finished, finished)
        facts.interrupted |= session["interrupted"]
        facts.internal_error |= session.get("internalError", False)
        # Every shard collects the whole suite: a collection error shows in each of them.
        facts.collection_errors = max(facts.collection_errors, session.get("collectionErrors", 0))
        facts.xdist_workers += session["xdistWorkers"]
        facts.crashed_workers += session.get("crashedWorkers", 0)
        shard = _shard(given)
        for reason in predicate["reasons"]:
            code = reason["code"]
            if code in _PREFLIGHT_KINDS and ledger.preflight_kind is None:
                ledger.preflight_kind, ledger.preflight_error = _PREFLIGHT_KINDS[code], reason["text"]
            elif code == "usage-error":
                facts.usage_error = True
        ledger.unpinned += [f"shard {shard.get('index')}: {text}" for text in shard.get("unpinned", ())]
        ledger.baseline = _worse(ledger.baseline, predicate.get("baseline"))
    for tier in TIERS:
        # Shard K holds positions K-1, K-1+N, ... of each tier: dealt back in turn, they are in
        # collection order again.
        dealt = [[record for record in shard_records if record.tier == tier] for shard_records in by_shard]
        for record in itertools.chain.from_iterable(itertools.zip_longest(*dealt)):
            if record is None:
                continue
            held = records.get(record.nodeid)
            # A test in two partials (a shard given twice): the blocking record counts.
            if held is None or (record.blocking and not held.blocking):
                records[record.nodeid] = record
    for run in load_runs:
        record = records.get(run["test"])
        if record is not None:
            record.add_load_run({key: value for key, value in run.items() if key != "test"})
    for expectation in expectations:
        record = records.get(expectation["test"])
        if record is not None:
            record.add_data_expectation({key: value for key, value in expectation.items() if key != "test"})
    return ledger


def _shard(given: Given) -> dict[str, Any]:
    return given.statement["predicate"].get("shard") or {}


def _partial(given: Given) -> Partial:
    statement = given.statement
    predicate = statement["predicate"]
    return Partial(
        given.name,
        predicate.get("shard"),
        {
            "target": predicate["target"],
            "release": predicate["release"],
            "subjects": sorted(statement["subject"], key=lambda s: (s["name"], s["digest"]["sha256"])),
            "policy": predicate["policy"]["digest"]["sha256"],
        },
    )


def _worse(held: dict[str, Any] | None, other: dict[str, Any] | None) -> dict[str, Any] | None:
    """The worse of two baseline sections (FAIL > MARGINAL > INCONCLUSIVE > NODATA > PASS); the first of equals."""
    if held is None or other is None:
        return held or other
    rank = BASELINE_WORST_FIRST.index
    return other if rank(other["result"]) < rank(held["result"]) else held


def _union(partials: Sequence[Given], key: str) -> list[Any]:
    """The quarantine entries (expired or stale) the partials list, each once."""
    seen: dict[str, Any] = {}
    for given in partials:
        for entry in given.statement["predicate"]["quarantine"].get(key, ()):
            seen.setdefault(json.dumps(entry, sort_keys=True), entry)
    return list(seen.values())
