"""Shards, pure: parsing K/N, dealing the collection, the collection digest, and whether the
partials given to a merge add up to one run."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_staging.core.errors import ConfigError
from pytest_staging.core.shards import (
    DUPLICATED,
    MISMATCH,
    MISSING,
    Partial,
    Shard,
    collection_digest,
    parse_shard,
    problems,
)

TIERS = ("smoke", "contract", "load")


@given(st.integers(-3, 30), st.integers(-3, 30))
def test_k_of_n_parses_exactly_when_1_le_k_le_n(k, n):
    text = f"{k}/{n}"
    if 1 <= k <= n:
        assert parse_shard(text, "--staging-shard") == Shard(k, n)
        assert parse_shard(f" {k} / {n} ", "STAGING_SHARD") == Shard(k, n)
    else:
        with pytest.raises(ConfigError) as raised:
            parse_shard(text, "--staging-shard")
        assert raised.value.line().startswith(f"pytest-staging: --staging-shard: {text!r} is not K/N with 1 <= K <= N")


@pytest.mark.parametrize("text", ["", "3", "1/", "/3", "a/b", "1/3/5", "1.0/3", "1 3", "½/3", "-1/3", "0x1/3"])
def test_anything_but_k_of_n_is_a_usage_error_naming_where_it_came_from(text):
    with pytest.raises(ConfigError) as raised:
        parse_shard(text, "STAGING_SHARD")
    line = raised.value.line()
    assert line.startswith("pytest-staging: STAGING_SHARD: ") and "give e.g. 2/3" in line and "\n" not in line


@given(st.lists(st.sampled_from(TIERS), max_size=60), st.integers(1, 8))
def test_the_shares_deal_every_tier_once_over_the_shards(tiers, total):
    shares = [Shard(number, total).share(tiers) for number in range(1, total + 1)]
    dealt = sorted(itertools.chain.from_iterable(kept for kept, _ in shares))
    assert dealt == list(range(len(tiers)))  # every test in exactly one shard
    for number, (kept, elsewhere) in enumerate(shares, 1):
        assert kept == sorted(kept)  # collection order kept
        for tier in TIERS:
            positions = [i for i, t in enumerate(tiers) if t == tier]
            # The Kth, K+Nth, ... test of the tier: shares of a tier differ by one test at most.
            assert [i for i in kept if tiers[i] == tier] == positions[number - 1 :: total]
            assert elsewhere.get(tier, 0) == len(positions) - len(positions[number - 1 :: total])


def test_one_shard_of_one_is_the_whole_suite():
    tiers = ["smoke", "load", "smoke", "contract"]
    assert Shard(1, 1).share(tiers) == ([0, 1, 2, 3], {})


@given(st.lists(st.text(min_size=1), unique=True, max_size=20), st.randoms())
def test_the_collection_digest_is_the_sorted_node_ids_whatever_their_order(nodeids, random):
    shuffled = list(nodeids)
    random.shuffle(shuffled)
    expected = hashlib.sha256("\n".join(sorted(nodeids)).encode("utf-8", "surrogatepass")).hexdigest()
    assert collection_digest(shuffled) == collection_digest(nodeids) == expected
    assert collection_digest(["a::t", "b::t"]) == hashlib.sha256(b"a::t\nb::t").hexdigest()


# -- do the partials add up? -----------------------------------------------------------------

DIGEST = "a" * 64
SAME = {
    "target": {"name": "qa", "url": "https://qa.example", "environment": "staging", "sensitive": False},
    "release": {"id": "1.4.2", "deployedVersion": "1.4.2", "probe": None},
    "subjects": [{"name": "shop", "digest": {"sha256": "b" * 64}}],
    "policy": "c" * 64,
}


def partial(number: int, total: int, name: str | None = None, digest: str = DIGEST, **same) -> Partial:
    shard = {"index": number, "count": total, "collection": {"count": 40, "digest": digest}, "decision": "PROMOTE"}
    return Partial(name or f"shard-{number}.json", shard, {**SAME, **same})


def codes(found: list[tuple[str, str]]) -> list[str]:
    return [code for code, _ in found]


@given(st.integers(1, 6).flatmap(lambda n: st.tuples(st.just(n), st.permutations(range(1, n + 1)))))
def test_every_shard_once_of_one_run_adds_up(case):
    total, order = case
    assert problems([partial(number, total) for number in order], covered=40) == []


@given(
    st.integers(1, 6).flatmap(lambda n: st.tuples(st.just(n), st.lists(st.integers(1, n), min_size=1, max_size=2 * n)))
)
def test_shards_missing_or_given_twice_are_named(case):
    total, numbers = case
    found = problems([partial(number, total, name=f"p{i}.json") for i, number in enumerate(numbers)])
    absent = sorted(set(range(1, total + 1)) - set(numbers))
    twice = sorted({number for number in numbers if numbers.count(number) > 1})
    assert codes(found) == [MISSING] * bool(absent) + [DUPLICATED] * len(twice)
    if absent:
        assert f" {', '.join(map(str, absent))} of {total} " in found[0][1]
    for (_, text), number in zip(found[bool(absent) :], twice, strict=True):
        names = [f"p{i}.json" for i, n in enumerate(numbers) if n == number]
        assert text.startswith(f"shard {number} of {total} is given {len(names)} times ({', '.join(names)})")


@pytest.mark.parametrize(
    "changed, what",
    [
        ({"digest": "d" * 64}, "the collection (they ran different commits or test suites)"),
        ({"target": {**SAME["target"], "url": "https://prod.example"}}, "the target"),
        ({"release": {**SAME["release"], "deployedVersion": "1.4.3"}}, "the release"),
        ({"subjects": [{"name": "shop", "digest": {"sha256": "e" * 64}}]}, "the subjects (the build under test)"),
        ({"policy": "f" * 64}, "the policy digest (the gate's settings and selection)"),
    ],
)
def test_partials_of_another_run_are_a_mismatch_that_names_the_files(changed, what):
    found = problems([partial(1, 3), partial(2, 3, **changed), partial(3, 3)], covered=40)
    assert codes(found) == [MISMATCH]
    assert found[0][1].startswith(f"the partials disagree on {what}: shard-1.json, shard-3.json: ")
    assert "; shard-2.json: " in found[0][1]


def test_partials_of_different_shard_counts_disagree_and_the_common_count_decides_what_is_missing():
    found = problems([partial(1, 3), partial(2, 3), partial(4, 4)])
    assert codes(found) == [MISMATCH, MISSING]
    assert (
        found[0][1]
        == "the partials disagree on the shard count: shard-1.json, shard-2.json: of 3 shards; shard-4.json: of 4 shards"
    )
    assert found[1][1].startswith("shard 3 of 3 is missing")


def test_a_verdict_that_is_no_shards_and_a_shard_that_never_knew_its_collection():
    unknown = partial(2, 3)
    unknown = unknown._replace(shard={**unknown.shard, "collection": None})
    found = problems([partial(1, 3), unknown, partial(3, 3), Partial("whole.json", None, SAME)])
    assert codes(found) == [MISMATCH, MISSING]
    assert found[0][1].startswith("whole.json is not a shard's partial verdict")
    assert found[1][1].startswith("shard 2 of 3 (shard-2.json) stopped before it knew its collection")
    assert codes(problems([Partial("whole.json", None, SAME)])) == [MISMATCH, MISSING]
    assert problems([]) == [(MISSING, "no shard's partial verdict was given")]


def test_tests_no_partial_accounts_for_are_missing():
    whole = [partial(number, 2) for number in (1, 2)]
    assert problems(whole, covered=40) == []
    assert problems(whole, covered=41) == []  # a test another plugin added after collection
    assert problems(whole, covered=38) == [(MISSING, "2 of the 40 collected tests are in no shard's verdict")]
