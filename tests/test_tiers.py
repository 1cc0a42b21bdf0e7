"""Tiers: markers, default tier, selection, order, and fail-fast — serially and under xdist."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("staging_env")

# Each inner test appends start/end events to events.log, so the outer test can check that no
# test of a later tier started before every test of the earlier tiers had finished.
TIMED_SUITE = """
import json, os, pathlib, time
import pytest

EVENTS = pathlib.Path(__file__).parent / "events.log"

def timed(name, tier, seconds, fail=False):
    def test():
        with EVENTS.open("a") as out:
            out.write(json.dumps([name, tier, "start", time.time()]) + "\\n")
        time.sleep(seconds)
        with EVENTS.open("a") as out:
            out.write(json.dumps([name, tier, "end", time.time()]) + "\\n")
        assert not fail, name + " failed on purpose"
    return getattr(pytest.mark, tier)(test)

SMOKE_FAILS = os.environ.get("SMOKE_FAILS") == "1"
test_load_1 = timed("load_1", "load", 0.05)
test_contract_1 = timed("contract_1", "contract", 0.05)
test_contract_2 = timed("contract_2", "contract", 0.2)
test_contract_3 = timed("contract_3", "contract", 0.05)
test_contract_4 = timed("contract_4", "contract", 0.05)
test_smoke_1 = timed("smoke_1", "smoke", 0.05)
test_smoke_2 = timed("smoke_2", "smoke", 0.05)
test_smoke_3 = timed("smoke_3", "smoke", 0.05)
test_smoke_4 = timed("smoke_4", "smoke", 0.05)
test_smoke_5 = timed("smoke_5", "smoke", 0.6, fail=SMOKE_FAILS)
test_load_2 = timed("load_2", "load", 0.05)
"""


def read_events(pytester) -> list[list]:
    path = pytester.path / "events.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_tiers_never_overlap(events: list[list]) -> None:
    by_tier: dict[str, dict[str, list[float]]] = {}
    for _name, tier, kind, at in events:
        by_tier.setdefault(tier, {"start": [], "end": []})[kind].append(at)
    order = [t for t in ("smoke", "contract", "load") if t in by_tier]
    for earlier, later in zip(order, order[1:], strict=False):
        assert max(by_tier[earlier]["end"]) <= min(by_tier[later]["start"]), (earlier, later, events)


def outcomes_in_order(result: pytest.RunResult) -> list[str]:
    return [line.split("::")[1].split()[0] for line in result.stdout.lines if "::test_" in line and " " in line]


@pytest.fixture
def target_args(httpbin_url):
    return [f"--staging-target={httpbin_url}", "-p", "no:randomly"]


def test_tiers_run_in_order_serially(pytester, target_args):
    pytester.makepyfile(TIMED_SUITE)
    result = pytester.runpytest("-v", *target_args)
    result.assert_outcomes(passed=11)
    names = [event[0] for event in read_events(pytester) if event[2] == "start"]
    assert names == [
        "smoke_1",
        "smoke_2",
        "smoke_3",
        "smoke_4",
        "smoke_5",
        "contract_1",
        "contract_2",
        "contract_3",
        "contract_4",
        "load_1",
        "load_2",
    ]


def test_tiers_never_overlap_under_xdist(pytester, target_args):
    pytester.makepyfile(TIMED_SUITE)
    result = pytester.runpytest_subprocess("-n", "2", *target_args)
    result.assert_outcomes(passed=11)
    events = read_events(pytester)
    assert len(events) == 22
    assert_tiers_never_overlap(events)


def test_fail_fast_serial(pytester, target_args, staging_env):
    staging_env.setenv("SMOKE_FAILS", "1")
    pytester.makepyfile(TIMED_SUITE)
    result = pytester.runpytest("-rs", *target_args)
    result.assert_outcomes(passed=4, failed=1, skipped=6)
    result.stdout.fnmatch_lines(["SKIPPED [[]6[]] test_fail_fast_serial.py:*: staging: smoke tier failed"])
    assert {event[1] for event in read_events(pytester)} == {"smoke"}


def test_fail_fast_under_xdist(pytester, target_args, staging_env):
    staging_env.setenv("SMOKE_FAILS", "1")
    pytester.makepyfile(TIMED_SUITE)
    result = pytester.runpytest_subprocess("-n", "2", "-rs", *target_args)
    result.assert_outcomes(passed=4, failed=1, skipped=6)
    result.stdout.fnmatch_lines(["*staging: smoke tier failed*"])
    assert {event[1] for event in read_events(pytester)} == {"smoke"}


def test_no_fail_fast_runs_every_tier_still_in_order(pytester, target_args, staging_env):
    staging_env.setenv("SMOKE_FAILS", "1")
    pytester.makepyfile(TIMED_SUITE)
    result = pytester.runpytest_subprocess("-n", "2", "--staging-no-fail-fast", *target_args)
    result.assert_outcomes(passed=10, failed=1)
    assert_tiers_never_overlap(read_events(pytester))


def test_a_failure_in_contract_skips_load_only(pytester, target_args):
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.load
        def test_l(): pass
        @pytest.mark.contract
        def test_c(): assert False
        def test_s(): pass
        """
    )
    result = pytester.runpytest("-rs", *target_args)
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*staging: contract tier failed*"])


@pytest.mark.parametrize(
    ("body", "blocks"),
    [
        ("pytest.skip('not today')", False),
        ("pytest.xfail('known')", False),
        ("assert False", True),
    ],
)
def test_what_counts_as_a_blocking_failure(pytester, target_args, body, blocks):
    pytester.makepyfile(
        f"""
        import pytest
        @pytest.mark.contract
        def test_c(): pass
        def test_s():
            {body}
        """
    )
    result = pytester.runpytest("-rs", *target_args)
    assert ("staging: smoke tier failed" in result.stdout.str()) is blocks
    assert (result.parseoutcomes().get("passed", 0) == 0) is blocks


def test_a_setup_error_blocks(pytester, target_args):
    pytester.makepyfile(
        """
        import pytest
        @pytest.fixture
        def broken():
            raise RuntimeError("fixture broke")
        @pytest.mark.contract
        def test_c(): pass
        def test_s(broken): pass
        """
    )
    result = pytester.runpytest(*target_args)
    result.assert_outcomes(errors=1, skipped=1)


def test_default_tier_from_ini(pytester, target_args):
    pytester.makeini("[pytest]\nstaging_default_tier = load\n")
    pytester.makepyfile(
        """
        import pytest
        def test_unmarked(): pass
        @pytest.mark.smoke
        def test_smoke(): pass
        """
    )
    result = pytester.runpytest("-v", *target_args)
    result.assert_outcomes(passed=2)
    assert outcomes_in_order(result) == ["test_smoke", "test_unmarked"]


def test_tier_selection_deselects_the_others(pytester, target_args):
    pytester.makepyfile(
        """
        import pytest
        def test_s(): pass
        @pytest.mark.contract
        def test_c(): pass
        @pytest.mark.load
        def test_l(): pass
        """
    )
    result = pytester.runpytest("-v", "--staging-tier=contract,load", *target_args)
    result.assert_outcomes(passed=2, deselected=1)
    assert outcomes_in_order(result) == ["test_c", "test_l"]
    result = pytester.runpytest("-v", "--staging-tier", "smoke", *target_args)
    result.assert_outcomes(passed=1, deselected=2)


def test_order_spans_files_and_classes(pytester, target_args):
    pytester.makepyfile(
        test_a="""
        import pytest
        @pytest.mark.load
        class TestLoad:
            def test_l(self): pass
        def test_s_a(): pass
        """,
        test_b="""
        import pytest
        pytestmark = pytest.mark.contract
        def test_c(): pass
        """,
        test_c="def test_s_c(): pass\n",
    )
    result = pytester.runpytest("-v", *target_args)
    result.assert_outcomes(passed=4)
    assert outcomes_in_order(result) == ["test_s_a", "test_s_c", "test_c", "TestLoad"]


@pytest.mark.parametrize(
    "source",
    [
        "import pytest\n@pytest.mark.smoke\n@pytest.mark.load\ndef test_both(): pass\n",
        "import pytest\npytestmark = pytest.mark.contract\n@pytest.mark.smoke\ndef test_both(): pass\n",
    ],
    ids=["function", "module-and-function"],
)
def test_two_tier_markers_is_a_collection_error(pytester, target_args, source):
    pytester.makepyfile(source)
    result = pytester.runpytest(*target_args)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*ERROR collecting*", "*test_both has tier markers * and *; a test belongs to exactly one tier*"]
    )


def test_a_crashed_worker_counts_as_a_failed_tier(pytester, target_args):
    pytester.makepyfile(
        """
        import os, time
        import pytest
        def test_s1(): time.sleep(0.2)
        def test_s2(): os._exit(1)
        def test_s3(): time.sleep(0.2)
        @pytest.mark.contract
        def test_c1(): pass
        @pytest.mark.contract
        def test_c2(): pass
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-rs", *target_args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, result.stdout.str()
    assert outcomes.get("skipped") == 2
    result.stdout.fnmatch_lines(["*staging: smoke tier failed*"])


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("each", "*runs every test on every worker*"),
    ],
)
def test_dist_modes_that_break_tier_order_are_refused_with_the_reason(pytester, target_args, mode, why):
    pytester.makepyfile("def test_a(): pass")
    result = pytester.runpytest_subprocess("-n", "2", f"--dist={mode}", *target_args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: pytest-staging: --dist={mode}: tiers cannot be kept in order{why}--dist=load*"]
    )
    assert "Traceback" not in result.stderr.str()
