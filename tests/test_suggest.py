"""`pytest-staging quarantine suggest` over a series of real verdicts from real gate runs."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from pytest_staging.cli import main as cli
from pytest_staging.core.flips import History
from pytest_staging.core.quarantine import load
from pytest_staging.core.targets import tomllib

pytestmark = pytest.mark.usefixtures("staging_env")

SUITE = """
import pathlib
import pytest

HERE = pathlib.Path(__file__).parent
RUN = int((HERE / "run").read_text())

def test_stable_pass(): pass

def test_stable_fail(): assert False

def test_alternates():
    assert RUN % 2 == 0, "fails on odd runs"

def test_quarantined_but_fixed(): pass
"""

FUTURE = (dt.date.today() + dt.timedelta(days=30)).isoformat()


@pytest.fixture
def verdicts(pytester, httpbin_url, keys_for_suggest):
    pytester.makepyfile(test_series=SUITE)
    pytester.makefile(
        ".toml",
        **{
            "staging-quarantine": f'[[quarantine]]\ntest = "test_series.py::test_quarantined_but_fixed"\nreason = "was flaky"\nowner = "web"\nuntil = "{FUTURE}"\n'
        },
    )
    pytester.makeini("[pytest]\nstaging_max_quarantined = 0.5\n")
    paths = []
    for run in range(6):
        (pytester.path / "run").write_text(str(run))
        path = pytester.path / f"verdict-{run}.json"
        pytester.runpytest(
            f"--staging-target={httpbin_url}",
            f"--staging-verdict={path}",
            f"--staging-signing-key={keys_for_suggest[0]}",
        )
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def keys_for_suggest(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("suggest-keys") / "gate"
    assert cli(["keygen", "--out", str(prefix)]) == 0
    return prefix.with_suffix(".key"), prefix.with_suffix(".pub")


def test_suggests_the_flaky_test_and_not_the_stable_ones(verdicts, keys_for_suggest, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_staging",
            "quarantine",
            "suggest",
            *reversed(verdicts),
            "--key",
            str(keys_for_suggest[1]),
            "--owner",
            "payments",
            "--days",
            "14",
            "--retire-after",
            "5",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "test_series.py::test_alternates" in out
    assert 'test_stable_pass"' not in out and 'test_stable_fail"' not in out
    assert 'reason = "flaky: flip rate 1.00 over 6 runs (failure rate 0.50)"' in out
    assert "#   test_series.py::test_quarantined_but_fixed  (owner web, until" in out
    # What it prints pastes into a valid quarantine file.
    pasted = tmp_path / "staging-quarantine.toml"
    pasted.write_text(out)
    [entry] = load(pasted)
    assert (entry.test, entry.owner) == ("test_series.py::test_alternates", "payments")
    assert entry.until == dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=14)
    assert tomllib().loads(out)["quarantine"][0]["test"] == "test_series.py::test_alternates"


def test_a_tampered_verdict_is_refused_with_key(verdicts, keys_for_suggest, capsys):
    path = verdicts[2]
    text = open(path).read()
    open(path, "w").write(text.replace('"payload":"', '"payload":"eyJ'))
    assert cli(["quarantine", "suggest", *verdicts, "--key", str(keys_for_suggest[1])]) == 1
    assert capsys.readouterr().err.startswith(f"FAILED: {path}: ")


@pytest.mark.parametrize(
    ("states", "flips", "rate"),
    [
        (["pass"] * 5, 0, 0.0),
        (["fail"] * 4, 0, 0.0),
        (["pass", "fail"] * 3, 5, 1.0),
        (["pass", "pass", "fail", "fail"], 1, 1 / 3),
    ],
)
def test_flip_rate(states, flips, rate):
    history = History("t", states)
    assert history.flips == flips
    assert history.flip_rate == pytest.approx(rate)
