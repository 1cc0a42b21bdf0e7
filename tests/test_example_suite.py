"""End to end: the bundled example gate suite against the real httpbin, in a real subprocess."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from docs_text import docs_text

SUITE = Path(__file__).parents[1] / "example_suites" / "httpbin"
#: The load tier's budget (p95 < 500 ms, rps > 50, ...) is a claim about a healthy target on a
#: machine with room for 100 rps; under this suite's own load (-n 4 on 2 cores) it can fail, and
#: the gate then rejects, as it should. So the runs that must pass leave the load tier out, and
#: the load tier's own test checks what holds on any machine: the run measured and recorded.
FUNCTIONAL = "--staging-tier=smoke,contract"


def run_suite(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(SUITE), "-p", "no:cacheprovider", "-rs", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=SUITE,
    )


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_example_suite_passes_against_httpbin(httpbin_url, xdist):
    result = run_suite(f"--staging-target={httpbin_url}", FUNCTIONAL, *xdist)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "14 passed" in result.stdout and re.search(r"\n  load +deselected ", result.stdout)
    assert f"staging: target {httpbin_url.removeprefix('http://')} ({httpbin_url})" in result.stdout


def test_example_suite_on_a_sensitive_target_skips_the_destructive_test(httpbin_url):
    result = run_suite(f"--staging-target={httpbin_url}", "--staging-sensitive-url=127\\.0\\.0\\.1", FUNCTIONAL)
    assert result.returncode == 0, result.stdout
    assert "13 passed, 1 skipped, 1 deselected" in result.stdout
    assert "1 destructive skipped (sensitive target)" in result.stdout


def test_example_contract_tier_alone(httpbin_url):
    result = run_suite(f"--staging-target={httpbin_url}", "--staging-tier=contract")
    assert result.returncode == 0, result.stdout
    assert "6 passed, 9 deselected" in result.stdout
    # The contract tier's validations reach the verdict.
    envelope = json.loads((SUITE / "staging-verdict.intoto.json").read_text())
    predicate = json.loads(base64.b64decode(envelope["payload"]))["predicate"]
    assert predicate["sli"]["validationPassRate"] == 1.0
    rows = [t["dataContracts"] for t in predicate["tests"] if "dataContracts" in t]
    assert rows == [
        [
            {
                "schema": "schema (draft2020-12)",
                "rows": 200,
                "invalid": 0,
                "ratio": 0.0,
                "maxInvalidRatio": 0.0,
                "ok": True,
            }
        ]
    ]


def test_broken_contract_example_fails_as_the_docs_show(httpbin_url):
    suite = SUITE.parent / "broken_contract"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(suite), "-p", "no:cacheprovider", f"--staging-target={httpbin_url}"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=suite,
    )
    assert result.returncode == 1, result.stdout
    shown = "\n".join(line for line in result.stdout.splitlines() if line.startswith("E  "))
    assert shown in docs_text("contract.md"), shown  # the page shows what the run prints, in the order printed
    assert "contract violated: 6 violations of schema (draft2020-12) in GET /json response:" in result.stdout


def test_example_load_tier_records_its_run_in_the_verdict(httpbin_url, tmp_path):
    verdict = tmp_path / "verdict.json"
    result = run_suite(f"--staging-target={httpbin_url}", "--staging-tier=load", f"--staging-verdict={verdict}")
    predicate = json.loads(base64.b64decode(json.loads(verdict.read_text())["payload"]))["predicate"]
    [run] = predicate["load"]["runs"]
    [test] = predicate["tests"]
    # Every threshold measured; the budget held (a deselected tier only: HOLD, exit 0) or the
    # test failed on the breach alone (see FUNCTIONAL).
    expressions = ["p(95) < 500", "p(99) < 1000", "rate(failures) < 0.01", "rps > 50", "p(95){name:/json} < 400"]
    assert [t["expression"] for t in run["thresholds"]] == expressions
    assert all(t["value"] is not None for t in run["thresholds"]) and run["ok"] == all(
        t["ok"] for t in run["thresholds"]
    )
    if run["ok"]:
        assert result.returncode == 0 and test["outcome"] == "passed", result.stdout + result.stderr
    else:
        assert (
            result.returncode == 1
            and test["outcome"] == "failed"
            and test["error"].startswith("Failed: staging_load: thresholds breached")
        )
    assert 0 < run["total"]["rps"] < 250  # 10 users at 10 requests/s at most: the target is measured, not the generator
    assert "/json" in run["endpoints"] and set(run["endpoints"]) <= {"/json", "/get", "/post", "/status"}
    # The summary at the end of the run names the load run and its thresholds.
    assert "  load run test_load.py::test_browsing_load_meets_the_latency_and_error_budget: " in result.stdout
    assert re.search(r"[✓✗] p\(95\) < 500 [✓✗] p\(99\) < 1000", result.stdout)


def test_the_shards_example_merges_three_parallel_shards_into_one_verdict(httpbin_target, tmp_path):
    """example_suites/shards.sh as docs/shards.md runs it: three shard processes in parallel, each
    its own partial verdict, merged into one signed PROMOTE that release tooling verifies."""
    httpbin_target.ensure_venv()
    script = SUITE.parent / "shards.sh"
    args = ["--staging-tier=smoke,contract", "-o", "staging_allow_deselection=true"]
    args += ["-o", "staging_required_tiers=smoke contract"]
    result = subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "STAGING_DEMO_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for number in (1, 2, 3):
        assert f"shard {number} of 3: exit 0, " in result.stdout
    assert "=> release tooling would promote this build" in result.stdout
    partials = [statement(tmp_path / "shards" / f"shard-{number}.intoto.json") for number in (1, 2, 3)]
    merged = statement(tmp_path / "staging-verdict.intoto.json")
    assert [p["predicate"]["shard"]["index"] for p in partials] == [1, 2, 3]
    assert {p["predicate"]["decision"] for p in partials} == {"HOLD"}
    shares = [{t["nodeid"] for t in p["predicate"]["tests"]} for p in partials]
    assert all(shares) and not (shares[0] & shares[1] or shares[0] & shares[2] or shares[1] & shares[2])
    assert {t["nodeid"] for t in merged["predicate"]["tests"]} == shares[0] | shares[1] | shares[2]
    assert merged["predicate"]["decision"] == "PROMOTE" and len(merged["predicate"]["tests"]) == 14
    assert merged["subject"] == partials[0]["subject"]
    verify = [sys.executable, "-m", "pytest_staging", "verify", str(tmp_path / "staging-verdict.intoto.json")]
    assert subprocess.run([*verify, "--key", str(tmp_path / "signing.pub")]).returncode == 0


def statement(path: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))


def test_the_shards_doc_github_actions_jobs_fit_together():
    """docs/shards.md's matrix job and merge job: every shard of the matrix is K/N with N its
    size, each uploads its partial under the name the merge job downloads, and the merge job
    runs whatever the shards did and merges every partial it downloaded."""
    import yaml

    doc = (SUITE.parents[1] / "docs" / "shards.md").read_text()
    jobs = yaml.safe_load(re.search(r"```yaml\n(.*?)```", doc, re.S).group(1))["jobs"]
    shard, merge = jobs["staging-shard"], jobs["staging"]
    numbers = shard["strategy"]["matrix"]["shard"]
    assert numbers == list(range(1, len(numbers) + 1)) and shard["strategy"]["fail-fast"] is False
    steps = {step.get("name", step.get("uses", step.get("run"))): step for step in shard["steps"]}
    gate = next(step for name, step in steps.items() if str(name).startswith("Staging gate"))
    assert gate["env"]["STAGING_SHARD"] == "${{ matrix.shard }}/" + str(len(numbers))
    assert '--staging-verdict="shard-${{ matrix.shard }}.intoto.json"' in gate["run"]
    upload = steps["actions/upload-artifact@v4"]
    assert upload["if"] == "always()" and upload["with"]["path"] == "shard-${{ matrix.shard }}.intoto.json"
    assert merge["needs"] == ["staging-shard"] and merge["if"] == "always()"
    download = next(step for step in merge["steps"] if step.get("uses") == "actions/download-artifact@v4")
    assert upload["with"]["name"].replace("${{ matrix.shard }}", "*") == download["with"]["pattern"]
    assert download["with"]["merge-multiple"] is True
    [merging] = [step for step in merge["steps"] if "pytest-staging merge" in step.get("run", "")]
    assert merging["run"].split()[:3] == ["pytest-staging", "merge", f"{download['with']['path']}/*.intoto.json"]
    assert "STAGING_SIGNING_KEY" in merging["env"]
