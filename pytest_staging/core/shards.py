"""Shards: one suite split across machines (``--staging-shard=K/N``), and whether the partial
verdicts given to ``pytest-staging merge`` add up to one run of the whole suite. Pure: no pytest.

Every shard collects the whole suite and keeps the tests whose position within their tier (in
collection order, before any deselection) is K-1 modulo N: each shard gets a share of every tier,
and the shares of 1..N cover the collection exactly once. The other shards' tests are not
deselected: they run elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from .errors import ConfigError

#: The reason codes of a merge whose partials do not add up (HOLD).
MISSING, DUPLICATED, MISMATCH = "shard-missing", "shard-duplicated", "shard-mismatch"
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class Shard(NamedTuple):
    """This run is shard ``number`` of ``total`` (K/N, from 1). (Not ``index``/``count``: a
    tuple's methods.)"""

    number: int
    total: int
    #: The whole suite as every shard collects it: how many tests, and the digest of their node
    #: ids (:func:`collection_digest`); None until the collection is known.
    collected: int | None = None
    digest: str | None = None
    #: Per tier, how many of its collected tests the other shards run: a required tier with none
    #: in this shard's share is not missing here.
    elsewhere: Mapping[str, int] = {}

    def share(self, tiers: Iterable[str]) -> tuple[list[int], dict[str, int]]:
        """Which of the collected tests (given by their tiers, in collection order) this shard
        keeps: their positions, and per tier how many the other shards run."""
        seen: dict[str, int] = {}
        kept: list[int] = []
        elsewhere: dict[str, int] = {}
        wanted, count = self.number - 1, self.total
        for position, tier in enumerate(tiers):
            within = seen.get(tier, 0)
            seen[tier] = within + 1
            if within % count == wanted:
                kept.append(position)
            else:
                elsewhere[tier] = elsewhere.get(tier, 0) + 1
        return kept, elsewhere

    def to_dict(self, decision: str, unpinned: Sequence[str]) -> dict[str, Any]:
        """The verdict's ``predicate.shard``. ``unpinned``: deselection no policy can pin (``--lf``,
        tests a plugin dropped silently), which the merge must hold on though it has no count."""
        known = self.collected is not None and self.digest is not None
        return {
            "index": self.number,
            "count": self.total,
            "collection": {"count": self.collected, "digest": self.digest} if known else None,
            "decision": decision,
            "unpinned": list(unpinned),
        }


def parse_shard(text: str, where: str) -> Shard:
    """``K/N`` (1 <= K <= N) as a Shard; anything else is a ConfigError naming ``where``."""
    match = _SHARD.fullmatch(text)
    if match is not None:
        number, total = int(match[1]), int(match[2])
        if 1 <= number <= total:
            return Shard(number, total)
    raise ConfigError(where, "", f"{text!r} is not K/N with 1 <= K <= N; give e.g. 2/3 for the second of three shards")


def collection_digest(nodeids: Iterable[str]) -> str:
    """Lowercase hex sha256 of the sorted node ids joined by newlines (UTF-8): equal on every
    shard of one commit, whatever order the tests were collected in."""
    text = "\n".join(sorted(nodeids))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Partial(NamedTuple):
    """What the merge checks of one verified partial verdict."""

    #: The file as given on the command line.
    name: str
    #: Its ``predicate.shard``; None when the verdict is not a shard's.
    shard: Mapping[str, Any] | None
    #: What the partials of one run hold alike: target, release, subjects, policy digest.
    same: Mapping[str, Any]


#: The fields the partials of one run must agree on, as the reasons name them.
AGREE = {
    "target": "the target",
    "release": "the release",
    "subjects": "the subjects (the build under test)",
    "policy": "the policy digest (the gate's settings and selection)",
}


def problems(partials: Sequence[Partial], covered: int | None = None) -> list[tuple[str, str]]:
    """Why these partials are not one whole run, as (reason code, text); empty when they are:
    every shard of 1..N exactly once, all of the same N, collection, target, release, subjects
    and policy. ``covered``: how many collected tests the partials account for (their records
    and the tests they deselected); fewer than the collection is missing evidence."""
    found = [
        (
            MISMATCH,
            f"{p.name} is not a shard's partial verdict (it has no predicate.shard); merge only the verdicts "
            "of runs with --staging-shard",
        )
        for p in partials
        if p.shard is None
    ]
    shards = [(p, p.shard) for p in partials if p.shard is not None]
    if not shards:
        return [*found, (MISSING, "no shard's partial verdict was given")]
    counts = [shard["count"] for _, shard in shards]
    count = max(counts, key=counts.count)  # the most common count (the first of equals); others disagree
    _disagree(
        found, "the shard count", [(p.name, shard["count"], f"of {shard['count']} shards") for p, shard in shards]
    )
    known = [(p, shard["collection"]) for p, shard in shards if shard["collection"] is not None]
    _disagree(
        found,
        "the collection (they ran different commits or test suites)",
        [(p.name, c, f"{c['count']} tests, sha256:{c['digest'][:12]}…") for p, c in known],
    )
    for field, label in AGREE.items():
        _disagree(found, label, [(p.name, p.same.get(field), _shown(p.same.get(field))) for p, _ in shards])

    names: dict[int, list[str]] = {}
    for partial, shard in shards:
        names.setdefault(shard["index"], []).append(partial.name)
        if shard["collection"] is None:
            found.append(
                (
                    MISSING,
                    f"shard {shard['index']} of {shard['count']} ({partial.name}) stopped before it knew its "
                    "collection: its run was killed or interrupted as it started",
                )
            )
    absent = [str(index) for index in range(1, count + 1) if index not in names]
    if len(absent) == 1:
        found.append((MISSING, f"shard {absent[0]} of {count} is missing: {_NO_PARTIAL.format('it')}"))
    elif absent:
        found.append((MISSING, f"shards {', '.join(absent)} of {count} are missing: {_NO_PARTIAL.format('them')}"))
    for index, given in sorted(names.items()):
        if len(given) > 1:
            found.append(
                (
                    DUPLICATED,
                    f"shard {index} of {count} is given {len(given)} times ({', '.join(given)}): merge one verdict "
                    "per shard, from one run of each",
                )
            )
    if covered is not None and not found and known and covered < known[0][1]["count"]:
        collected = known[0][1]["count"]
        found.append((MISSING, f"{collected - covered} of the {collected} collected tests are in no shard's verdict"))
    return found


_NO_PARTIAL = "no partial verdict of {} was given (its job crashed, or its verdict was not passed to merge)"


def _disagree(found: list[tuple[str, str]], label: str, values: list[tuple[str, Any, str]]) -> None:
    """A ``shard-mismatch`` reason when the partials hold more than one value: which files hold which."""
    groups: dict[str, tuple[str, list[str]]] = {}
    for name, value, shown in values:
        groups.setdefault(json.dumps(value, sort_keys=True, default=str), (shown, []))[1].append(name)
    if len(groups) > 1:
        parts = [f"{', '.join(names)}: {shown}" for shown, names in groups.values()]
        found.append((MISMATCH, f"the partials disagree on {label}: {'; '.join(parts)}"))


def _shown(value: Any) -> str:
    """A field's value in a reason, short: a target's name and URL, a release's ids, subjects' names."""
    if isinstance(value, Mapping):
        if "url" in value:
            return f"{value.get('name')} ({value.get('url')})"
        if "deployedVersion" in value:
            return f"release {value.get('id')}, deployed {value.get('deployedVersion')}"
        if "digest" in value:  # a subject
            return f"{value.get('name')}@{_shown(value['digest'].get('sha256'))}"
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value):
        return f"sha256:{value[:12]}…"
    if isinstance(value, (list, tuple)):
        return ", ".join(_shown(item) for item in value) or "none"
    return str(value)
