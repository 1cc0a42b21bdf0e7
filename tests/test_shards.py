"""--staging-shard=K/N: each shard runs its share of every tier, in tier order, and writes a
partial verdict. Inner gate runs (pytester) against httpbin, serially and under -n 2."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from test_tiers import assert_tiers_never_overlap

from pytest_staging.cli import main as cli

pytestmark = pytest.mark.usefixtures("staging_env")

#: Each test logs its start and end (events.log) around one request to the target.
CONFTEST = """
import json, os, pathlib, time
import pytest

EVENTS = pathlib.Path(__file__).parent / "events.log"

@pytest.fixture
def step(request, staging_http):
    tier = next((m.name for m in request.node.iter_markers() if m.name in ("contract", "load")), "smoke")

    def log(kind):
        with EVENTS.open("a") as out:
            out.write(json.dumps([request.node.name, tier, kind, time.time()]) + "\\n")

    log("start")
    assert staging_http.get("/get").ok
    yield
    log("end")
"""

#: The tiers interleaved in collection order: a shard's share is counted within each tier.
SUITE = """
import os
import pytest

def check(name):
    if name == os.environ.get("SKIP_TEST"):
        pytest.skip("skipped on purpose")
    assert name != os.environ.get("FAIL_TEST"), name + " failed on purpose"

def test_s0(step): check("test_s0")
@pytest.mark.contract
def test_c0(step): check("test_c0")
def test_s1(step): check("test_s1")
def test_s2(step): check("test_s2")
@pytest.mark.contract
def test_c1(step): check("test_c1")
@pytest.mark.load
def test_l0(step): check("test_l0")
def test_s3(step): check("test_s3")
@pytest.mark.contract
def test_c2(step): check("test_c2")
"""

NODEIDS = [f"test_suite.py::test_{name}" for name in ("s0", "c0", "s1", "s2", "c1", "l0", "s3", "c2")]
#: Shard K of 3 keeps positions K-1, K+2, ... of each tier.
SHARES = {1: {"test_s0", "test_s3", "test_c0", "test_l0"}, 2: {"test_s1", "test_c1"}, 3: {"test_s2", "test_c2"}}
DIGEST = hashlib.sha256("\n".join(sorted(NODEIDS)).encode()).hexdigest()


def statement_at(path: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))


def names(predicate: dict) -> set[str]:
    return {test["nodeid"].partition("::")[2] for test in predicate["tests"]}


@pytest.fixture
def sharded(pytester, httpbin_url, keys):
    """``sharded(shard, *args, subprocess=False)``: the suite run as one shard (``"2/3"``, or None
    for the whole suite); returns (result, predicate, verdict path, tier events)."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=SUITE)

    def run(shard: str | None, *args: str, subprocess: bool = False):
        events = pytester.path / "events.log"
        events.unlink(missing_ok=True)
        verdict = pytester.path / f"shard-{shard.replace('/', '-of-')}.json" if shard else pytester.path / "whole.json"
        argv = [
            f"--staging-target={httpbin_url}",
            f"--staging-signing-key={keys[0]}",
            f"--staging-verdict={verdict.name}",
            "-p",
            "no:randomly",
            *([f"--staging-shard={shard}"] if shard else []),
            *args,
        ]
        result = pytester.runpytest_subprocess(*argv) if subprocess else pytester.runpytest(*argv)
        lines = events.read_text().splitlines() if events.exists() else []
        return result, statement_at(verdict)["predicate"], verdict, [json.loads(line) for line in lines]

    return run


def verify(path: Path, pub: Path, *expect: str) -> int:
    return cli(
        ["verify", str(path), "--key", str(pub), *(arg for decision in expect for arg in ("--expect", decision))]
    )


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_each_shard_runs_its_share_of_every_tier_in_tier_order(sharded, keys, xdist):
    for number in (1, 2, 3):
        result, predicate, verdict, events = sharded(f"{number}/3", *xdist, subprocess=True)
        assert result.ret == 0, result.stdout.str()  # the shard alone would promote: green
        result.assert_outcomes(passed=len(SHARES[number]))
        assert names(predicate) == SHARES[number]
        assert_tiers_never_overlap([[name, tier, kind, at] for name, tier, kind, at in events])
        assert {name for name, *_ in events} == SHARES[number]
        assert predicate["decision"] == "HOLD" and predicate["reasonCodes"] == ["shard-partial"]
        assert predicate["shard"] == {
            "index": number,
            "count": 3,
            "collection": {"count": 8, "digest": DIGEST},
            "decision": "PROMOTE",
            "unpinned": [],
        }
        # The other shards' tests are not deselection: nothing counted, nothing held for it.
        assert predicate["policy"]["selection"]["deselected"] == {}
        assert predicate["policy"]["requiredTiers"] == ["smoke", "contract", "load"]
        assert "deselected" not in result.stdout.str()
        result.stdout.fnmatch_lines(
            [f"staging: shard {number} of 3: runs the tests at positions {number}, {number + 3}, {number + 6}, … *"]
        )
        # The summary's next step for a partial is the merge, not verify --expect PROMOTE.
        result.stdout.fnmatch_lines([f"merge:   pytest-staging merge {verdict.name} OTHER_SHARDS... --key *"])
        assert "--expect PROMOTE" not in result.stdout.str()
        # Release tooling never takes a partial for the whole: verify refuses it as PROMOTE.
        assert verify(verdict, keys[1]) == 1
        assert verify(verdict, keys[1], "HOLD") == 0


def test_the_shard_can_come_from_the_environment(sharded, staging_env):
    staging_env.setenv("STAGING_SHARD", "2/3")
    result, predicate, _, _ = sharded(None)
    assert names(predicate) == SHARES[2]
    assert predicate["shard"]["index"] == 2 and predicate["shard"]["count"] == 3
    # The option wins over the environment.
    result, predicate, _, _ = sharded("3/3")
    assert names(predicate) == SHARES[3]


@pytest.mark.parametrize("value", ["0/3", "4/3", "3", "2/0", "two/3", "1/3/1", "-1/3"])
@pytest.mark.parametrize("source", ["option", "env"])
def test_a_malformed_shard_is_a_usage_error_before_any_test(
    pytester, httpbin_url, usage_error, staging_env, value, source
):
    pytester.makepyfile("def test_ok(): pass")
    args = [f"--staging-target={httpbin_url}"]
    if source == "option":
        args.append(f"--staging-shard={value}")
    else:
        staging_env.setenv("STAGING_SHARD", value)
    where = "--staging-shard" if source == "option" else "STAGING_SHARD"
    usage_error.check(
        pytester.runpytest(*args), f"pytest-staging: {where}: {value!r} is not K/N with 1 <= K <= N; give e.g. 2/3"
    )


def test_user_deselection_in_a_shard_counts_only_its_own_share(sharded):
    # test_s3 is shard 1's: -k deselects it there, and nothing in shard 2.
    result, predicate, _, _ = sharded("1/3", "-k", "not test_s3")
    assert result.ret == 0  # the user's own deselection keeps a run green
    assert names(predicate) == SHARES[1] - {"test_s3"}
    assert predicate["policy"]["selection"]["deselected"] == {"smoke": 1}
    assert predicate["reasonCodes"] == ["shard-partial", "tests-deselected"]
    assert predicate["reasons"][1]["text"].startswith("1 collected test deselected (smoke 1)")
    assert predicate["shard"]["decision"] == "HOLD"
    result, predicate, _, _ = sharded("2/3", "-k", "not test_s3")
    assert predicate["policy"]["selection"]["deselected"] == {}
    assert predicate["reasonCodes"] == ["shard-partial"] and predicate["shard"]["decision"] == "PROMOTE"


def test_tests_a_plugin_drops_silently_still_hold_a_shard(sharded, pytester):
    pytester.makeconftest(
        CONFTEST
        + """
def pytest_collection_modifyitems(items):
    items[:] = [item for item in items if item.name != "test_c1"]
"""
    )
    result, predicate, _, _ = sharded("2/3")
    assert names(predicate) == {"test_s1"}
    assert predicate["shard"]["unpinned"] == ["1 dropped by a plugin without pytest_deselected"]
    assert "tests-deselected" in predicate["reasonCodes"]
    # The dropped test was the shard's own; the other shards' tests are not "dropped".
    assert predicate["policy"]["selection"]["deselected"] == {"contract": 1}


def test_a_failure_fails_fast_within_the_shard_and_rejects(sharded, staging_env):
    staging_env.setenv("FAIL_TEST", "test_s0")
    result, predicate, _, events = sharded("1/3")
    assert result.ret == 1
    outcomes = {test["nodeid"].partition("::")[2]: test["outcome"] for test in predicate["tests"]}
    assert outcomes == {"test_s0": "failed", "test_s3": "passed", "test_c0": "skipped", "test_l0": "skipped"}
    assert {name for name, *_ in events} == {"test_s0", "test_s3"}
    assert predicate["decision"] == "REJECT" and predicate["shard"]["decision"] == "REJECT"
    assert predicate["reasonCodes"][:2] == ["test-failed", "shard-partial"]
    # Another shard did not see the failure: alone it would promote.
    result, predicate, _, _ = sharded("2/3")
    assert result.ret == 0 and predicate["shard"]["decision"] == "PROMOTE"


def test_a_shard_that_would_hold_alone_exits_6(sharded, staging_env):
    staging_env.setenv("SKIP_TEST", "test_c1")  # shard 2's only contract test: the tier ran nothing
    result, predicate, _, _ = sharded("2/3")
    assert result.ret == 6
    assert predicate["reasonCodes"] == ["shard-partial", "required-tier-empty"]
    assert predicate["shard"]["decision"] == "HOLD"


def test_an_unsharded_run_writes_no_shard(sharded):
    result, predicate, _, _ = sharded(None)
    assert result.ret == 0 and predicate["decision"] == "PROMOTE"
    assert names(predicate) == set().union(*SHARES.values())
    assert "shard" not in predicate and "shards" not in predicate


def test_a_shard_under_way_holds_its_path_with_a_partial_that_names_it(pytester, httpbin_url, keys):
    """Killed mid-run, a shard leaves the ``incomplete`` HOLD: it says which shard it was, and that
    its collection is not known (the merge counts that shard as missing)."""
    pytester.makepyfile(
        """
        import base64, json

        def test_reads_the_verdict_path(staging_http):
            envelope = json.load(open("staging-verdict.intoto.json"))
            predicate = json.loads(base64.b64decode(envelope["payload"]))["predicate"]
            assert predicate["reasonCodes"] == ["incomplete"]
            assert predicate["shard"] == {
                "index": 1, "count": 2, "collection": None, "decision": "HOLD", "unpinned": []
            }
        """
    )
    result = pytester.runpytest(
        f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}", "--staging-shard=1/2"
    )
    result.assert_outcomes(passed=1)
    assert statement_at(pytester.path / "staging-verdict.intoto.json")["predicate"]["shard"]["collection"]["count"] == 1
