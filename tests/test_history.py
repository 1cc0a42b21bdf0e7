"""Promotion history and SLIs (issue 21): ``--staging-build-time`` → ``release.buildTime``,
``pytest-staging history`` over real gate verdicts, the Prometheus text format (checked by the
real ``promtool``, scraped by a real Prometheus and queried through its HTTP API), and the per-run
``--staging-openmetrics`` file and ``--staging-pushgateway`` push (to a real Pushgateway).

Debian's ``prometheus`` and ``prometheus-pushgateway`` packages provide the binaries; without them
these tests skip, except in CI, where ``STAGING_REQUIRE_PROMETHEUS=1`` (.ci/run) makes a missing
binary a failure.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.server
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from docs_text import docs_block
from hypothesis import given
from hypothesis import strategies as st

from pytest_staging.cli import main as cli
from pytest_staging.core.errors import ConfigError
from pytest_staging.core.history import History, parse_build_time, quantile
from pytest_staging.report.history import markdown, text
from pytest_staging.report.openmetrics import escape, push, render, secrets_of, shown_url, url_problem
from pytest_staging.verdict import dsse
from pytest_staging.verdict.files import envelope_bytes
from pytest_staging.verdict.history import Read
from pytest_staging.verdict.statement import iso, payload_bytes

SUITE = """
import pytest

def test_status(staging_http):
    assert staging_http.get("/status/200").status_code == 200

def test_json(staging_http):
    assert staging_http.get("/json").status_code == 200
"""
FAILING = (
    SUITE
    + """
def test_broken(staging_http):
    assert staging_http.get("/status/500").status_code == 200
"""
)
BUILD = "2025-01-31T12:00:00Z"
BUILD_EPOCH = 1738324800  # the same moment


# -- real Prometheus components ------------------------------------------------------------------


def binary(name: str) -> str:
    """A binary of Debian's prometheus packages; missing: skip, or fail when CI requires them."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("STAGING_REQUIRE_PROMETHEUS"):
            pytest.fail(f"{name} is not installed (STAGING_REQUIRE_PROMETHEUS is set: .ci/run installs it)")
        pytest.skip(f"{name} is not installed; apt-get install prometheus prometheus-pushgateway. CI requires it.")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (a local test server)
        return response.read()


def poll(what: str, check, timeout: float = 60.0, every: float = 0.2):
    """Ask ``check()`` until it returns something truthy (the event happened); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as exc:  # not listening yet
            last = exc
        else:
            if last:
                return last
        time.sleep(every)  # a polling interval: the loop waits for the event itself
    pytest.fail(f"{what} did not happen within {timeout:g} s (last: {last!r})")


@contextlib.contextmanager
def started(command: list[str], ready: str, log: Path) -> Iterator[None]:
    """Run a server in its own session until the block ends; wait until ``ready`` answers."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:

        def answers() -> bool:
            if process.poll() is not None:
                pytest.fail(f"{command[0]} exited with {process.returncode}: {log.read_text()[-2000:]}")
            return get(ready) is not None

        poll(f"{command[0]} ready", answers)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def pushgateway(tmp_path) -> Iterator[str]:
    """A real Prometheus Pushgateway on 127.0.0.1 (a free port, nothing persisted): its URL."""
    command = binary("prometheus-pushgateway")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # --persistence.file= : nothing persisted (Debian's build would keep a file under /var/lib).
    argv = [command, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
    with started(argv, f"{url}/-/ready", tmp_path / "pushgateway.log"):
        yield url


class Served:
    """A tiny HTTP server on 127.0.0.1 answering a GET of each path with its file (the textfile a
    node_exporter would serve) and recording every PUT (method, path, headers, body)."""

    def __init__(self, files: dict[str, Path] | None = None) -> None:
        self.files, self.requests = files or {}, []
        served = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                path = served.files.get(self.path)
                body = path.read_bytes() if path is not None and path.is_file() else b""
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                served.requests.append(("PUT", self.path, dict(self.headers), body.decode("utf-8")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prometheus(tmp_path):
    """Start a real Prometheus on 127.0.0.1 (a free port, a temporary TSDB) scraping host:port
    every second, a job per metrics path: ``with prometheus("127.0.0.1:PORT", {"job": "/path"})
    as query: query("PROMQL")``."""
    command = binary("prometheus")

    @contextlib.contextmanager
    def run(scraped: str, jobs: dict[str, str]) -> Iterator:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
            + "".join(
                f"  - job_name: {job}\n    metrics_path: {path}\n    static_configs:\n      - targets: ['{scraped}']\n"
                for job, path in jobs.items()
            )
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [
            command,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]

        def query(promql: str) -> list[dict]:
            try:
                answer = json.loads(get(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"))
            except urllib.error.HTTPError as exc:  # Prometheus says why a query is wrong
                pytest.fail(f"{promql}: {exc.read().decode()}")
            assert answer["status"] == "success", answer
            return answer["data"]["result"]

        with started(argv, f"{url}/-/ready", tmp_path / "prometheus.log"):
            yield query

    return run


# -- helpers ---------------------------------------------------------------------------------------


def targets_file(pytester, url: str, environment: str = "staging-eu") -> None:
    pytester.makefile(".toml", **{"staging-targets": f'[targets.shop]\nurl = "{url}"\nenvironment = "{environment}"\n'})


def statement_of(path: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))


def signed(statement: dict, key_path: Path, path: Path) -> Path:
    """Write ``statement`` as a verdict signed with the key at ``key_path`` (the gate's own encoder and signer)."""
    key = dsse.load_private_key(key_path.read_bytes(), str(key_path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(envelope_bytes(dsse.envelope(payload_bytes(statement), key), base64_payload=True))
    return path


def variant(statement: dict, **predicate) -> dict:
    return {**statement, "predicate": {**statement["predicate"], **predicate}}


def history_json(capsys, *argv: str) -> tuple[int, dict, str]:
    capsys.readouterr()  # what came before (a pytester subprocess prints its command line)
    code = cli(["history", *argv, "--format", "json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


# -- pure: quantiles, aggregation, build time -------------------------------------------------------


@given(
    st.lists(st.floats(min_value=0, max_value=1e9, allow_nan=False), min_size=1, max_size=60),
    st.sampled_from([1, 50, 95, 99, 100]),
)
def test_quantile_is_the_nearest_rank(values, percent):
    ordered = sorted(values)
    # The oracle: the smallest value with at least percent% of the values at or below it.
    expected = next(v for v in ordered if 100 * sum(1 for x in ordered if x <= v) >= percent * len(ordered))
    assert quantile(values, percent) == expected
    assert quantile([], percent) is None


RUN = st.fixed_dictionaries(
    {
        "decision": st.sampled_from(["PROMOTE", "HOLD", "REJECT"]),
        "environment": st.sampled_from(["staging", "staging-eu", "qa"]),
        "validation": st.one_of(st.none(), st.floats(0, 1)),
        "flakiness": st.floats(0, 1),
        "duration": st.floats(0, 1e5),
        "finished": st.booleans(),
        "age": st.floats(0, 1e7),
        "built_before": st.one_of(st.none(), st.floats(-100, 1e6)),
        "codes": st.lists(st.sampled_from(["tests-deselected", "incomplete", "test-failed"]), max_size=3),
        "shard": st.booleans(),
    }
)


def _statement(run: dict, now: float) -> dict:
    verified = now - run["age"]
    built = None if run["built_before"] is None else iso(verified - run["built_before"])
    return {
        "predicate": {
            "decision": run["decision"],
            "reasons": [{"code": code, "text": code} for code in run["codes"]],
            "timeVerified": iso(verified),
            "target": {"environment": run["environment"]},
            "release": {"id": "1", "buildTime": built},
            "sli": {"validationPassRate": run["validation"], "flakinessRate": run["flakiness"]},
            "session": {"exitStatus": 0 if run["finished"] else None, "durationSeconds": run["duration"]},
            "tests": [],
            **({"shard": {"index": 1, "count": 2}} if run["shard"] else {}),
        }
    }


@given(st.lists(RUN, max_size=25), st.one_of(st.none(), st.floats(0, 2e7)))
def test_history_adds_up_what_a_list_of_the_runs_says(runs, since_age):
    """One verdict at a time, the aggregates equal what a computation over all the runs at once says."""
    now = 1.8e9
    history = History(since=None if since_age is None else now - since_age)
    for run in runs:
        history.add(_statement(run, now))
    # Statements are rounded to microseconds: compare with the times as written.
    kept = [r for r in runs if not r["shard"] and (since_age is None or now - r["age"] >= now - since_age - 1e-6 * 0)]
    kept = [r for r in kept if since_age is None or _parsed(iso(now - r["age"])) >= now - since_age]
    assert history.partials == sum(r["shard"] for r in runs)
    for name, subset in [("all", kept)] + [
        (e, [r for r in kept if r["environment"] == e]) for e in ("staging", "staging-eu", "qa")
    ]:
        runs_of = history.overall if name == "all" else history.environments.get(name)
        if not subset:
            assert runs_of is None or runs_of.runs == 0
            continue
        data = runs_of.to_dict()
        assert data["runs"] == len(subset)
        assert data["decisions"] == {d: sum(r["decision"] == d for r in subset) for d in ("PROMOTE", "HOLD", "REJECT")}
        assert data["promotionSuccessRate"] == round(data["decisions"]["PROMOTE"] / len(subset), 6)
        rates = [r["validation"] for r in subset if r["validation"] is not None]
        assert data["validationPassRate"] == (
            round(math.fsum(rates) / len(rates), 6) if rates else None
        ) or math.isclose(data["validationPassRate"], math.fsum(rates) / len(rates), abs_tol=2e-6)
        durations = [r["duration"] for r in subset if r["finished"]]
        assert data["gateDurationSeconds"]["count"] == len(durations)
        assert data["gateDurationSeconds"]["p95"] == quantile(durations, 95)
        latencies = [
            _parsed(iso(now - r["age"])) - _parsed(iso(now - r["age"] - r["built_before"]))
            for r in subset
            if r["decision"] == "PROMOTE" and r["built_before"] is not None
        ]
        latencies = [value for value in latencies if value >= 0]
        assert data["promotionLatencySeconds"]["count"] == len(latencies)
        assert data["promotionLatencySeconds"]["p50"] == quantile(latencies, 50)
        for decision in ("HOLD", "REJECT"):
            expected: dict[str, int] = {}
            for r in subset:
                if r["decision"] == decision:
                    for code in set(r["codes"]):  # each code once a run
                        expected[code] = expected.get(code, 0) + 1
            assert data["reasons"][decision] == expected


def _parsed(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()


def test_flakiest_tests_carry_their_quarantine_owner():
    history = History()
    for flaky in (True, True, False):
        a = {"nodeid": "t.py::a", "outcome": "passed", "flaky": flaky, "quarantine": None}
        if flaky:
            a["quarantine"] = {"owner": "team-payments"}
        b = {"nodeid": "t.py::b", "outcome": "passed", "flaky": not flaky, "quarantine": None}
        tests = [a, b, {"nodeid": "t.py::c", "outcome": "skipped"}]
        predicate = {
            "decision": "PROMOTE",
            "tests": tests,
            "flaky": [test for test in tests if test.get("flaky")],
            "quarantine": {"tests": [test for test in tests if test.get("quarantine")]},
        }
        history.add({"predicate": predicate})
    first, second = history.flakiest()
    assert first == ("t.py::a", 2, 3, "team-payments")
    assert second == ("t.py::b", 1, 3, None)
    assert "t.py::c" not in history.ran  # it never ran
    assert history.flakiest(1) == [first]
    read = Read(history, verdicts=3, unverified=[], unreadable=[], others=0)
    assert "  t.py::a: flaky in 2 of 3 runs (66.7%), owner team-payments\n" in text(read)
    assert "| `t.py::b` | 1 | 3 | 33.3% | – |" in markdown(read)


@pytest.mark.parametrize(
    "text",
    [
        "2025-01-31T12:00:00Z",
        "2025-01-31T13:00:00+01:00",
        str(BUILD_EPOCH),
        f"{BUILD_EPOCH}.0",
        " 2025-01-31T12:00:00z ",
    ],
)
def test_build_time_is_iso_8601_with_a_zone_or_epoch_seconds(text):
    assert parse_build_time(text, "--staging-build-time") == BUILD_EPOCH


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("2025-01-31T12:00:00", "has no time zone; add one"), ("yesterday", "is not a time"), ("1e999", "is not a time")],
)
def test_a_build_time_that_is_not_one_is_a_config_error(text, fragment):
    with pytest.raises(ConfigError, match=fragment) as raised:
        parse_build_time(text, "STAGING_BUILD_TIME")
    assert raised.value.where == "STAGING_BUILD_TIME"


# -- the Prometheus text format ----------------------------------------------------------------------


def test_label_values_are_escaped():
    assert escape('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


@given(
    st.lists(st.tuples(st.text(min_size=1, max_size=12), st.sampled_from(["PROMOTE", "HOLD", "REJECT"])), max_size=6)
)
def test_every_family_has_help_and_type_and_every_sample_parses(runs):
    history = History()
    for environment, decision in runs:
        history.add(_statement({**RUN_DEFAULTS, "environment": environment, "decision": decision}, 1.8e9))
    text = render(history)
    families = {}
    for line in text.split("\n")[:-1]:  # lines end at line feeds only (a label may hold other breaks)
        if line.startswith("# "):
            kind, name, rest = line[2:].split(" ", 2)
            families.setdefault(name, set()).add(kind)
            continue
        name = line.split("{", 1)[0]
        base = name.removesuffix("_sum").removesuffix("_count")
        assert base in families or name in families, line
        value = line.rsplit(" ", 1)[1]
        assert value == "NaN" or math.isfinite(float(value)), line
    assert families == {
        name: {"HELP", "TYPE"}
        for name in (
            "pytest_staging_runs_total",
            "pytest_staging_promotion_success_ratio",
            "pytest_staging_validation_pass_ratio",
            "pytest_staging_promotion_latency_seconds",
            "pytest_staging_flakiness_ratio",
            "pytest_staging_gate_duration_seconds",
        )
    }
    samples = [line for line in text.split("\n") if line.startswith("pytest_staging_runs_total{")]
    assert len(samples) == 3 * len({environment for environment, _ in runs})


RUN_DEFAULTS = {
    "validation": 0.5,
    "flakiness": 0.0,
    "duration": 10.0,
    "finished": True,
    "age": 0.0,
    "built_before": 60.0,
    "codes": [],
    "shard": False,
}


def test_promtool_accepts_the_history_metrics_even_with_odd_environment_names(tmp_path):
    promtool = binary("promtool")
    history = History()
    for environment in ('eu "west"\\1', "line\nbreak", "ünïcode", "staging"):
        for decision in ("PROMOTE", "HOLD"):
            history.add(_statement({**RUN_DEFAULTS, "environment": environment, "decision": decision}, 1.8e9))
    history.add(_statement({**RUN_DEFAULTS, "environment": "empty", "decision": "HOLD", "validation": None}, 1.8e9))
    text = render(history)
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr + text
    broken = text.replace("# TYPE pytest_staging_flakiness_ratio gauge\n", "")  # promtool does check: no TYPE
    refused = subprocess.run([promtool, "check", "metrics"], input=broken + 'x{a="\n', capture_output=True, text=True)
    assert refused.returncode != 0


# -- end to end: real gate runs, then history -------------------------------------------------------


@pytest.fixture
def runs(pytester, httpbin_url, keys, staging_env, tmp_path):
    """Real gate runs in subprocesses, their verdicts kept under one directory: ``runs(suite, name, *args)``."""
    targets_file(pytester, httpbin_url)
    archive = tmp_path / "archive"

    def run(suite: str, name: str, *args: str, env: dict[str, str] | None = None) -> tuple[pytest.RunResult, Path]:
        pytester.makepyfile(test_gate=suite)
        path = archive / f"{name}.intoto.json"
        for key, value in (env or {}).items():
            staging_env.setenv(key, value)
        result = pytester.runpytest_subprocess(
            "--staging-target=shop", f"--staging-signing-key={keys[0]}", f"--staging-verdict={path}", *args
        )
        for key in env or {}:
            staging_env.delenv(key)
        return result, path

    run.archive = archive
    return run


def test_build_time_is_recorded_and_history_reports_real_runs(runs, keys, capsys):
    promoted, first = runs(SUITE, "run-1", f"--staging-build-time={BUILD}")
    assert promoted.ret == 0
    assert statement_of(first)["predicate"]["release"]["buildTime"] == "2025-01-31T12:00:00.000000Z"
    # SOURCE_DATE_EPOCH, as reproducible builds set it, when STAGING_BUILD_TIME is not set.
    _, second = runs(SUITE, "run-2", env={"SOURCE_DATE_EPOCH": str(BUILD_EPOCH + 60)})
    assert statement_of(second)["predicate"]["release"]["buildTime"] == "2025-01-31T12:01:00.000000Z"
    rejected, third = runs(FAILING, "run-3", env={"STAGING_BUILD_TIME": BUILD, "SOURCE_DATE_EPOCH": "1"})
    assert rejected.ret == 1 and statement_of(third)["predicate"]["release"]["buildTime"].startswith("2025-01-31T12:00")
    held, _ = runs(SUITE, "run-4", "-k", "status")  # deselection: HOLD tests-deselected (exit 0: the user's own)
    _, none = runs(SUITE, "run-5")
    assert "buildTime" not in statement_of(none)["predicate"]["release"]  # as before build times

    code, summary, err = history_json(capsys, str(runs.archive), "--key", str(keys[1]))
    assert code == 0, err
    assert summary["verdicts"]["read"] == summary["verdicts"]["counted"] == 5
    overall, staging = summary["overall"], summary["environments"]["staging-eu"]
    assert overall == staging and list(summary["environments"]) == ["staging-eu"]
    assert overall["decisions"] == {"PROMOTE": 3, "HOLD": 1, "REJECT": 1}
    assert overall["promotionSuccessRate"] == 0.6
    assert overall["reasons"]["HOLD"] == {"tests-deselected": 1}
    assert overall["reasons"]["REJECT"] == {"test-failed": 1} or "test-failed" in overall["reasons"]["REJECT"]
    # Latency of the PROMOTE verdicts with a build time: run-1 and run-2 (run-5 has none).
    latency = overall["promotionLatencySeconds"]
    verified = [dsse_time(first), dsse_time(second)]
    expected = sorted([verified[0] - BUILD_EPOCH, verified[1] - BUILD_EPOCH - 60])
    assert latency["count"] == 2
    assert latency["p50"] == pytest.approx(expected[0], abs=1e-5) and latency["p95"] == pytest.approx(
        expected[1], abs=1e-5
    )
    durations = overall["gateDurationSeconds"]
    assert durations["count"] == 5 and 0 < durations["p50"] <= durations["p95"]
    assert overall["flakinessRate"] == 0.0 and overall["validationPassRate"] is None

    # The text form says the same in words; markdown is a table.
    capsys.readouterr()
    assert cli(["history", str(runs.archive), "--key", str(keys[1])]) == 0
    text = capsys.readouterr().out
    assert "5 runs counted of 5 verdicts read (0 did not verify)" in text
    assert "runs                    5: 3 PROMOTE, 1 HOLD, 1 REJECT" in text and "HOLD reasons" in text
    assert cli(["history", str(runs.archive), "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| promotion success rate | 60.0% | 60.0% |" in markdown and "signatures not checked" in markdown


def dsse_time(path: Path) -> float:
    return _parsed(statement_of(path)["predicate"]["timeVerified"])


def test_bad_build_time_stops_the_run_before_any_test(pytester, httpbin_url, usage_error, staging_env):
    pytester.makepyfile(test_gate=SUITE)
    result = pytester.runpytest(f"--staging-target={httpbin_url}", "--staging-build-time=last tuesday")
    usage_error.check(result, "--staging-build-time", "is not a time", "ISO 8601")
    staging_env.setenv("STAGING_BUILD_TIME", "2025-01-31 12:00")
    result = pytester.runpytest(f"--staging-target={httpbin_url}")
    usage_error.check(result, "STAGING_BUILD_TIME", "has no time zone")
    assert not (pytester.path / "staging-verdict.intoto.json").exists()


def test_key_skips_a_tampered_verdict_and_since_leaves_old_ones_out(runs, keys, other_keys, tmp_path, capsys):
    _, real = runs(SUITE, "real")
    statement = statement_of(real)
    archive = tmp_path / "mixed"
    now = time.time()
    signed(variant(statement, timeVerified=iso(now - 3600)), keys[0], archive / "recent.intoto.json")
    signed(variant(statement, timeVerified=iso(now - 40 * 86400)), keys[0], archive / "old" / "old.intoto.json")
    signed(statement, other_keys[0], archive / "other-key.intoto.json")
    tampered = json.loads(real.read_text())
    payload = json.loads(base64.b64decode(tampered["payload"]))
    payload["predicate"]["target"]["environment"] = "production"  # the signature no longer covers the payload
    tampered["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    (archive / "tampered.intoto.json").write_text(json.dumps(tampered))

    code, summary, err = history_json(capsys, str(archive), "--key", str(keys[1]))
    assert code == 0  # skipped verdicts are counted, not errors
    assert summary["verdicts"]["unverified"] == 2 and summary["overall"]["runs"] == 2
    assert list(summary["environments"]) == ["staging-eu"]  # the tampered verdict was not believed
    assert "tampered.intoto.json" in err and "other-key.intoto.json" in err and "does not verify" in err

    code, summary, _ = history_json(capsys, str(archive), "--key", str(keys[1]), "--since", "30d")
    assert code == 0 and summary["overall"]["runs"] == 1 and summary["verdicts"]["older"] == 1
    code, summary, _ = history_json(capsys, str(archive))  # without --key every verdict counts
    assert summary["overall"]["runs"] == 4 and summary["environments"]["production"]["runs"] == 1


def test_unreadable_files_are_named_and_exit_1_the_rest_is_reported(runs, keys, tmp_path, capsys):
    _, real = runs(SUITE, "real")
    archive = runs.archive
    (archive / "broken.intoto.json").write_text("{not json")
    (archive / "notes.txt").write_text("not a verdict, not searched")
    missing = tmp_path / "missing.intoto.json"
    code, summary, err = history_json(capsys, str(archive), str(missing))
    assert code == 1
    assert summary["overall"]["runs"] == 1
    lines = err.splitlines()
    assert any(line.startswith("ERROR: ") and "broken.intoto.json" in line and "not JSON" in line for line in lines)
    assert any(str(missing) in line and "cannot read it" in line for line in lines)
    assert "notes.txt" not in err
    assert "Traceback" not in err


def test_a_sharded_run_counts_once(pytester, httpbin_url, keys, tmp_path, capsys, staging_env):
    pytester.makepyfile(test_gate=SUITE)
    archive = tmp_path / "sharded"
    partials = []
    for shard in (1, 2):
        path = archive / f"shard-{shard}.intoto.json"
        result = pytester.runpytest_subprocess(
            f"--staging-target={httpbin_url}",
            f"--staging-signing-key={keys[0]}",
            f"--staging-shard={shard}/2",
            f"--staging-verdict={path}",
            f"--staging-build-time={BUILD}",
        )
        assert result.ret == 0, result.stdout.str()  # the shard's own exit status: its tests passed
        assert statement_of(path)["predicate"]["reasonCodes"] == ["shard-partial"]
        partials.append(str(path))
    merged = archive / "merged.intoto.json"
    assert cli(["merge", *partials, "--key", str(keys[1]), "--signing-key", str(keys[0]), "--out", str(merged)]) == 0
    capsys.readouterr()
    code, summary, _ = history_json(capsys, str(archive), "--key", str(keys[1]))
    assert code == 0
    assert summary["verdicts"]["partialShards"] == 2 and summary["overall"]["runs"] == 1
    assert summary["overall"]["decisions"]["PROMOTE"] == 1
    # The merged verdict keeps the shards' build time: its promotion latency counts.
    assert summary["overall"]["promotionLatencySeconds"]["count"] == 1


def test_history_metrics_pass_promtool(runs, keys, capsys):
    promtool = binary("promtool")
    runs(SUITE, "one")
    runs(FAILING, "two", f"--staging-build-time={BUILD}")
    capsys.readouterr()
    assert cli(["history", str(runs.archive), "--key", str(keys[1]), "--format", "openmetrics"]) == 0
    text = capsys.readouterr().out
    assert 'pytest_staging_runs_total{environment="staging-eu",decision="REJECT"} 1' in text
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


# -- per run: the textfile, scraped by a real Prometheus; the push, to a real Pushgateway ---------------


def promql(marker: str) -> list[str]:
    """The queries of a PromQL block of docs/history.md: comment lines dropped, continuations joined."""
    queries, current = [], []
    for line in docs_block(marker).splitlines():
        if line.startswith("#") or not line.strip():
            if current:
                queries.append(" ".join(current))
            current = []
        else:
            current.append(line.strip())
    return queries + ([" ".join(current)] if current else [])


def test_prometheus_scrapes_the_textfiles_and_the_documented_queries_answer(runs, keys, prometheus, tmp_path, capsys):
    metrics = tmp_path / "textfile" / "staging.prom"
    result, verdict = runs(SUITE, "scraped", f"--staging-openmetrics={metrics}", f"--staging-build-time={BUILD}")
    assert result.ret == 0
    assert any(line.startswith("metrics: ") and "staging.prom" in line for line in result.stdout.lines)
    runs(FAILING, "rejected")
    capsys.readouterr()
    assert cli(["history", str(runs.archive), "--key", str(keys[1]), "--format", "openmetrics"]) == 0
    history = tmp_path / "history.prom"
    history.write_text(capsys.readouterr().out)
    files = {"/metrics": metrics, "/history": history}
    with Served(files) as served, prometheus(served.url[7:], {"run": "/metrics", "history": "/history"}) as query:
        run_series = 'pytest_staging_runs_total{job="run",environment="staging-eu"}'
        found = poll("the scrape of the run's textfile", lambda: query(run_series))
        by_decision = {series["metric"]["decision"]: float(series["value"][1]) for series in found}
        assert by_decision == {"PROMOTE": 1.0, "HOLD": 0.0, "REJECT": 0.0}
        latency = query('pytest_staging_promotion_latency_seconds{job="run",quantile="0.95"}')
        assert float(latency[0]["value"][1]) == pytest.approx(dsse_time(verdict) - BUILD_EPOCH, abs=1e-3)
        poll("the scrape of the history", lambda: query('pytest_staging_runs_total{job="history"}'))
        # Every query the page gives answers. M1 sums both files: the run's (1 PROMOTE of 1 run) and
        # the history's (1 of 2).
        answers = {q: query(q) for q in promql("promql-history")}
        assert len(answers) >= 5, answers
        # The suite validates no contract: no validation pass rate, every other query has series.
        assert all(answer for q, answer in answers.items() if "validation" not in q), answers
        m1 = next(answer for q, answer in answers.items() if 'decision="PROMOTE"' in q)
        assert [float(series["value"][1]) for series in m1] == [pytest.approx(2 / 3)]
        for q in promql("promql-push"):
            query(q)  # valid PromQL (no Pushgateway here, so mostly empty answers)


def test_the_run_pushes_its_metrics_to_the_pushgateway(runs, pushgateway):
    credentials = "ci:s3cr3t-push"
    url = pushgateway.replace("http://", f"http://{credentials}@")
    result, _ = runs(SUITE, "pushed", f"--staging-pushgateway={url}")
    assert result.ret == 0
    output = result.stdout.str() + result.stderr.str()
    assert f"metrics pushed to {pushgateway} (job pytest_staging, environment staging-eu)" in output
    assert "s3cr3t-push" not in output
    metrics = get(f"{pushgateway}/metrics").decode()
    wanted = 'pytest_staging_runs_total{decision="PROMOTE",environment="staging-eu",instance="",job="pytest_staging"} 1'
    assert wanted in metrics.splitlines()


def test_a_failed_push_warns_and_changes_nothing(runs):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    plain, first = runs(SUITE, "plain")
    pushed, second = runs(SUITE, "pushed", f"--staging-pushgateway={dead}")
    assert plain.ret == pushed.ret == 0
    assert statement_of(first)["predicate"]["decision"] == statement_of(second)["predicate"]["decision"] == "PROMOTE"
    warning = [line for line in pushed.stdout.lines if line.startswith("WARNING: could not push the metrics")]
    assert len(warning) == 1 and dead in warning[0] and "(the decision stands)" in warning[0]
    rejected, _ = runs(FAILING, "rejected", f"--staging-pushgateway={dead}")
    assert rejected.ret == 1  # pytest's own status, unchanged by the push


def test_under_xdist_only_the_controller_pushes(runs, keys):
    pytest.importorskip("xdist")
    with Served() as served:
        result, verdict = runs(SUITE, "xdist", "-n", "2", f"--staging-pushgateway={served.url}")
        assert result.ret == 0, result.stdout.str()
    assert statement_of(verdict)["predicate"]["session"]["xdistWorkers"] == 2
    assert len(served.requests) == 1
    method, path, headers, body = served.requests[0]
    expected_group = base64.urlsafe_b64encode(b"staging-eu").decode()
    assert (method, path) == ("PUT", f"/metrics/job/pytest_staging/environment@base64/{expected_group}")
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'pytest_staging_runs_total{environment="staging-eu",decision="PROMOTE"} 1' in body


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("ftp://user:hunter2@host:21", "is not an http(s) URL"),
        ("http://user:hunter2@host:notaport", "is not a URL"),
        ("pushgateway:9091", "is not an http(s) URL"),
        ("https://ci:hunter2/abc+d==@push.example", "percent-encode them"),
        ("http://ci:12/hunter2@127.0.0.1:9091", "percent-encode them"),
    ],
)
def test_a_bad_pushgateway_url_is_a_usage_error_without_its_secret(
    pytester, httpbin_url, usage_error, value, fragment, staging_env
):
    pytester.makepyfile(test_gate=SUITE)
    result = pytester.runpytest(f"--staging-target={httpbin_url}", f"--staging-pushgateway={value}")
    line = usage_error.check(result, "--staging-pushgateway", fragment)
    assert "hunter2" not in result.stdout.str() + result.stderr.str(), line


def test_an_openmetrics_path_that_is_a_directory_is_a_usage_error(pytester, httpbin_url, usage_error, staging_env):
    pytester.makepyfile(test_gate=SUITE)
    pytester.mkdir("metrics")
    result = pytester.runpytest(f"--staging-target={httpbin_url}", "--staging-openmetrics=metrics")
    usage_error.check(result, "--staging-openmetrics", "is a directory")


# -- the HTML report's recent runs -----------------------------------------------------------------------


def test_the_report_draws_the_last_runs_next_to_this_one(runs, keys, tmp_path, capsys):
    runs(SUITE, "a")
    runs(FAILING, "b")
    _, current = runs(SUITE, "c", "-k", "status")
    out = tmp_path / "report.html"
    argv = ["report", str(current), "--html", str(out), "--key", str(keys[1])]
    assert cli([*argv, "--history", str(runs.archive)]) == 0
    html = out.read_text()
    section = html.split('<h2 id="history">Recent runs</h2>', 1)[1].split("</section>", 1)[0]
    assert section.count("<rect ") == 3  # a, b and this run (not twice, though it is in the archive)
    assert section.count('fill="var(--promote)"') == 1 and section.count('fill="var(--reject)"') == 1
    assert section.count('stroke="var(--fg)"') == 1 and "<strong>this run</strong>" in section
    assert section.count("<tr>") == 4  # the head and three runs
    assert "<script" not in html and "http://" not in section
    assert cli(argv) == 0
    assert "Recent runs" not in out.read_text()  # without --history, no such section


class Misbehaving:
    """A TCP server on 127.0.0.1 that reads a request and answers ``reply`` (bytes), then, with
    ``trickle``, sends one more byte each ``trickle`` seconds until the client goes away."""

    def __init__(self, reply: bytes, trickle: float | None = None) -> None:
        self.reply, self.trickle = reply, trickle
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.done = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        connection, _ = self.sock.accept()
        with connection:
            self.read_request(connection)  # all of it: unread bytes at close would reset the connection
            connection.sendall(self.reply)
            while self.trickle is not None and not self.done.wait(self.trickle):
                try:
                    connection.sendall(b"x")
                except OSError:
                    return

    @staticmethod
    def read_request(connection: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                return
            body += chunk

    def close(self) -> None:
        self.done.set()
        self.sock.close()


@pytest.mark.parametrize(
    ("reply", "trickle", "words"),
    [
        (b"FOO BAR\r\n\r\n", None, "BadStatusLine"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", None, "IncompleteRead"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", 0.2, "no complete answer within 1 s"),
    ],
    ids=["not-http", "cut-short", "trickling"],
)
def test_a_push_never_raises_and_never_outlasts_its_timeout(reply, trickle, words):
    """Whatever the Pushgateway answers, the push is a reason, never an exception, and the whole
    push is bounded: a server trickling its answer a byte at a time is given up on."""
    server = Misbehaving(reply, trickle)
    try:
        problem = push(f"{server.url.replace('http://', 'http://ci:tok3n-secret@')}", "staging", "m 1\n", timeout=1.0)
    finally:
        server.close()
    assert problem is not None and words in problem, problem
    assert "tok3n-secret" not in problem and "\n" not in problem


def test_a_malformed_answer_warns_and_changes_nothing(runs):
    server = Misbehaving(b"FOO BAR\r\n\r\n")
    try:
        result, verdict = runs(SUITE, "malformed", f"--staging-pushgateway={server.url}")
    finally:
        server.close()
    assert result.ret == 0 and statement_of(verdict)["predicate"]["decision"] == "PROMOTE"
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert [line for line in result.stdout.lines if line.startswith("WARNING: could not push the metrics")]


def test_user_info_is_sent_as_basic_auth_and_never_shown():
    """Percent-encoded user info means its decoded text; the URL, the password and the header's
    credentials are kept out of every message."""
    url_with = "http://ci:pa%2Fss@127.0.0.1:{port}"
    with Served() as served:
        url = url_with.format(port=served.url.rsplit(":", 1)[1])
        assert push(url, "staging", "m 1\n") is None
    ((_, _, headers, _),) = served.requests
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"ci:pa/ss").decode()
    assert shown_url(url) == served.url
    secrets = secrets_of(url)
    assert "pa%2Fss" in secrets and "pa/ss" in secrets and base64.b64encode(b"ci:pa/ss").decode() in secrets
    assert url_problem("https://ci:abc/def@push.example") is not None
    assert shown_url("https://ci:abc/def+ghi==@push.example") == "https://push.example"


def test_the_option_wins_over_the_environment_for_the_build_time(runs):
    _, verdict = runs(SUITE, "both", "--staging-build-time=2025-02-01T00:00:00Z", env={"STAGING_BUILD_TIME": BUILD})
    assert statement_of(verdict)["predicate"]["release"]["buildTime"] == "2025-02-01T00:00:00.000000Z"


def test_a_directory_that_cannot_be_listed_is_named_and_exit_1(runs, keys, tmp_path, capsys, monkeypatch):
    """An archive with a directory the reader may not list is a broken archive, not a smaller one."""
    _, verdict = runs(SUITE, "listed")
    hidden = runs.archive / "hidden"
    hidden.mkdir()
    real_scandir = os.scandir

    def scandir(path=".", *args):
        if Path(path) == hidden:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path, *args)

    monkeypatch.setattr(os, "scandir", scandir)
    code, summary, err = history_json(capsys, str(runs.archive))
    assert code == 1
    assert f"{hidden}: cannot list the directory (Permission denied)" in err
    assert summary["verdicts"]["counted"] == 1 and summary["verdicts"]["unreadable"] == [str(hidden)]


def test_a_run_counts_once_for_each_of_its_reason_codes_and_odd_numbers_are_left_out():
    from pytest_staging.core.history import History

    history = History()
    reasons = [{"code": "required-tier-empty", "text": "contract"}, {"code": "required-tier-empty", "text": "load"}]
    predicate = {
        "decision": "HOLD",
        "reasons": reasons,
        "timeVerified": "2026-01-01T00:00:00Z",
        "target": {"environment": "e"},
        "session": {"exitStatus": 0, "durationSeconds": math.inf},
        "sli": {"validationPassRate": math.nan, "flakinessRate": -math.inf},
        "tests": [],
    }
    history.add({"predicate": predicate})
    history.add({"predicate": {**predicate, "session": {"exitStatus": 0, "durationSeconds": -100}}})
    summary = history.to_dict()["overall"]
    assert summary["reasons"]["HOLD"] == {"required-tier-empty": 2}  # two runs, once each
    assert summary["gateDurationSeconds"]["count"] == 0
    assert summary["validationPassRate"] is None and summary["flakinessRate"] is None
    json.dumps(summary, allow_nan=False)  # valid JSON: no Infinity, no NaN
