"""Every xdist distribution mode the gate accepts keeps tier order and its own grouping.

Each inner test logs its start and end (and its worker) to events.log; a class fixture logs each
time it is built. The outer tests check: no test of a later tier started before every test of
the earlier tiers ended; fail-fast skips the later tiers; and inside a tier the mode's grouping
held (a class's tests on one worker and its fixture built once under loadscope, a file's tests on
one worker under loadfile, a group's under loadgroup).
"""

from __future__ import annotations

import collections
import json

import pytest
from test_tiers import assert_tiers_never_overlap

pytestmark = pytest.mark.usefixtures("staging_env")

HELPERS = """
import json, os, pathlib, time
import pytest

EVENTS = pathlib.Path(__file__).parent / "events.log"

def log(*fields):
    with EVENTS.open("a") as out:
        out.write(json.dumps([*fields, time.time(), os.environ.get("PYTEST_XDIST_WORKER")]) + "\\n")

def run(name, tier, seconds=0.05, fail=False):
    log("test", name, tier, "start")
    time.sleep(seconds)
    log("test", name, tier, "end")
    assert not fail, name + " failed on purpose"

@pytest.fixture(scope="class")
def login(request):
    log("login", request.cls.__name__)
"""

CLASSES = """
import os
import pytest
from helpers import run, login

SMOKE_FAILS = os.environ.get("SMOKE_FAILS") == "1"

class TestAccounts:
    def test_a1(self, login): run("a1", "smoke")
    def test_a2(self, login): run("a2", "smoke", 0.2)
    def test_a3(self, login): run("a3", "smoke", fail=SMOKE_FAILS)

class TestOrders:
    @pytest.mark.contract
    def test_o1(self, login): run("o1", "contract")
    @pytest.mark.contract
    def test_o2(self, login): run("o2", "contract")
    @pytest.mark.load
    def test_o3(self, login): run("o3", "load")  # the class spans two tiers: split

@pytest.mark.contract
class TestPayments:
    def test_p1(self, login): run("p1", "contract", 0.1)
    def test_p2(self, login): run("p2", "contract")
"""

FUNCTIONS = """
import pytest
from helpers import run

@pytest.mark.load
def test_f1(): run("f1", "load")

def test_f2(): run("f2", "smoke", 0.1)

@pytest.mark.contract
@pytest.mark.xdist_group("billing")
def test_g1(): run("g1", "contract")

@pytest.mark.contract
@pytest.mark.xdist_group("billing")
def test_g2(): run("g2", "contract", 0.1)

@pytest.mark.contract
@pytest.mark.xdist_group("billing")
def test_g3(): run("g3", "contract")

@pytest.mark.xdist_group("status")
def test_s1(): run("s1", "smoke")

@pytest.mark.xdist_group("status")
def test_s2(): run("s2", "smoke", 0.1)
"""

TESTS = 15
MODES = ["load", "loadscope", "loadfile", "loadgroup", "worksteal"]


@pytest.fixture
def suite(pytester):
    pytester.makepyfile(helpers=HELPERS, test_classes=CLASSES, test_functions=FUNCTIONS)
    return pytester


@pytest.fixture
def target_args(httpbin_url):
    return [f"--staging-target={httpbin_url}", "-p", "no:randomly"]


def read(pytester) -> tuple[list[list], list[list]]:
    path = pytester.path / "events.log"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    tests = [line[1:5] for line in lines if line[0] == "test"]  # name, tier, start/end, time
    return tests, lines


def workers_of(lines: list[list], names: set[str]) -> set[str]:
    return {line[-1] for line in lines if line[0] == "test" and line[1] in names}


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_keeps_tier_order(suite, target_args, mode):
    result = suite.runpytest_subprocess("-n", "2", f"--dist={mode}", *target_args)
    result.assert_outcomes(passed=TESTS)
    tests, _ = read(suite)
    assert len(tests) == 2 * TESTS
    assert_tiers_never_overlap(tests)


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_fails_fast(suite, target_args, mode, monkeypatch):
    monkeypatch.setenv("SMOKE_FAILS", "1")
    result = suite.runpytest_subprocess("-n", "2", f"--dist={mode}", *target_args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, result.stdout.str()
    assert outcomes.get("passed") == 5  # the other smoke tests
    assert outcomes.get("skipped") == TESTS - 6
    tests, _ = read(suite)
    assert {tier for _name, tier, _kind, _at in tests} == {"smoke"}


def test_loadscope_builds_a_class_fixture_once_per_class_and_tier(suite, target_args):
    result = suite.runpytest_subprocess("-n", "2", "--dist=loadscope", *target_args)
    result.assert_outcomes(passed=TESTS)
    _, lines = read(suite)
    logins = collections.Counter(line[1] for line in lines if line[0] == "login")
    # TestOrders spans contract and load: one scope per tier, so two logins.
    assert logins == {"TestAccounts": 1, "TestPayments": 1, "TestOrders": 2}
    for names in ({"a1", "a2", "a3"}, {"p1", "p2"}, {"o1", "o2"}):
        assert len(workers_of(lines, names)) == 1, names
    result.stdout.fnmatch_lines(
        [
            "*pytest-staging: --dist=loadscope: 2 scope(s) span tiers and run split by tier: "
            "test_classes.py::TestOrders (contract, load), test_functions.py (smoke, contract, load)*"
        ]
    )


def test_loadfile_keeps_a_files_tests_of_one_tier_on_one_worker(suite, target_args):
    result = suite.runpytest_subprocess("-n", "2", "--dist=loadfile", *target_args)
    result.assert_outcomes(passed=TESTS)
    _, lines = read(suite)
    by_file_and_tier = {
        "classes smoke": {"a1", "a2", "a3"},
        "classes contract": {"o1", "o2", "p1", "p2"},
        "functions smoke": {"f2", "s1", "s2"},
        "functions contract": {"g1", "g2", "g3"},
    }
    for key, names in by_file_and_tier.items():
        assert len(workers_of(lines, names)) == 1, key
    result.stdout.fnmatch_lines(["*--dist=loadfile: 2 scope(s) span tiers and run split by tier*"])


def test_loadgroup_keeps_a_groups_tests_on_one_worker(suite, target_args):
    result = suite.runpytest_subprocess("-n", "2", "--dist=loadgroup", *target_args)
    result.assert_outcomes(passed=TESTS)
    _, lines = read(suite)
    assert len(workers_of(lines, {"g1", "g2", "g3"})) == 1
    assert len(workers_of(lines, {"s1", "s2"})) == 1
