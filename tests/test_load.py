"""The load tier end to end: real locust subprocesses against the real httpbin."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

pytestmark = pytest.mark.usefixtures("staging_env")

TOKEN = "l0ad-s3cret-t0ken"
#: Appended to each locustfile here: the run ends once it measured enough (see the file).
UNTIL_MEASURED = Path(__file__).with_name("locust_until.py").read_text()
LOCUSTFILE = (
    """
import json, os, pathlib
from locust import HttpUser, constant_throughput, task

pathlib.Path("cmdline-%d.txt" % os.getpid()).write_bytes(pathlib.Path("/proc/self/cmdline").read_bytes())

class Api(HttpUser):
    wait_time = constant_throughput(10)
    endpoints = ("/get", "/headers")

    @task(3)
    def get(self):
        self.client.get("/get")

    @task
    def echo(self):
        headers = self.client.get("/headers", name="/headers").json()["headers"]
        pathlib.Path("echoed.json").write_text(json.dumps(headers))

class Slow(HttpUser):
    wait_time = constant_throughput(2)
    endpoints = ("/delay",)

    @task
    def slow(self):
        self.client.get("/delay/0.3", name="/delay")
"""
    + UNTIL_MEASURED
)
TARGETS = """
[targets.stage]
url = "{url}"
headers = {{ Authorization = "Bearer ${{LOAD_TOKEN}}" }}
"""


def suite(pytester, httpbin_url, monkeypatch, body):
    monkeypatch.setenv("LOAD_TOKEN", TOKEN)
    pytester.makefile(".toml", **{"staging-targets": TARGETS.format(url=httpbin_url)})
    pytester.makepyfile(locustfile=LOCUSTFILE)
    pytester.makepyfile(test_load="import pytest\n\n" + body)


def until(pytester, **until):
    """Rewrite the locustfile so that its run also waits for ``until`` (see locust_until.py)."""
    pytester.makepyfile(
        locustfile=LOCUSTFILE + "".join(f"UNTIL[{key!r}] = {value!r}\n" for key, value in until.items())
    )


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:randomly", "--staging-target=stage", *args)


def predicate(pytester) -> dict:
    raw = (pytester.path / "staging-verdict.intoto.json").read_text()
    assert TOKEN not in raw
    payload = json.loads(base64.b64decode(json.loads(raw)["payload"]))
    schema = json.loads(resources.files("pytest_staging.verdict").joinpath("schema.json").read_text())
    jsonschema.validate(payload, schema)
    return payload["predicate"]


# The duration is a ceiling (the locustfile ends the run once measured). Its thresholds hold on a
# loaded machine too (no request here takes a minute): they are evaluated and recorded; a breach
# is test_a_breached_threshold_fails_the_test_with_the_table's /delay.
PASSING = """
@pytest.mark.load
def test_load(staging_load):
    result = staging_load.run("locustfile.py", users=4, spawn_rate=4, duration=60, user_classes=["Api"],
                              thresholds=["p(95) < 60000", "rate(failures) < 0.01", "rps > 0", "p(95){name:/get} < 60000"])
    assert result.ok and result.total.requests >= 20
    assert set(result.endpoints) == {"/get", "/headers"}
    assert all(t.ok for t in result.thresholds)
"""


def test_a_passing_run_records_everything_and_keeps_secrets_off_the_command_line(pytester, httpbin_url, monkeypatch):
    suite(pytester, httpbin_url, monkeypatch, PASSING)
    result = run(pytester)
    result.assert_outcomes(passed=1)
    verdict = predicate(pytester)
    assert verdict["decision"] == "PROMOTE"
    [load] = verdict["load"]["runs"]
    assert load["test"] == "test_load.py::test_load" and load["ok"] is True
    assert load["profile"]["users"] == 4 and len(load["profile"]["locustfileSha256"]) == 64
    assert [t["expression"] for t in load["thresholds"]] == [
        "p(95) < 60000",
        "rate(failures) < 0.01",
        "rps > 0",
        "p(95){name:/get} < 60000",
    ]
    assert 0 < load["total"]["rps"] < 60  # 4 users at 10 requests/s each at most (fewer on a loaded machine)
    assert load["total"]["requests"] == sum(e["requests"] for e in load["endpoints"].values())
    assert load["series"] and set(load["series"][-1]["endpoints"]) == {"/get", "/headers"}
    # The target's headers reached the target; the secret was never on a command line.
    echoed = json.loads((pytester.path / "echoed.json").read_text())
    assert echoed["Authorization"] == f"Bearer {TOKEN}"
    assert echoed["X-Correlation-Id"] == verdict["tests"][0]["correlationId"]
    cmdlines = [path.read_bytes() for path in pytester.path.glob("cmdline-*.txt")]
    assert cmdlines and all(b"locust" in c and TOKEN.encode() not in c for c in cmdlines)
    assert TOKEN not in result.stdout.str()


def test_a_breached_threshold_fails_the_test_with_the_table(pytester, httpbin_url, monkeypatch):
    suite(
        pytester,
        httpbin_url,
        monkeypatch,
        """
@pytest.mark.load
def test_load(staging_load):
    staging_load.run("locustfile.py", users=2, spawn_rate=2, duration=60,
                     thresholds=["p(95){name:/delay} < 100", "rate(failures) < 0.01", "p(95){name:/get} < 60000"])
""",
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*staging_load: thresholds breached",
            "*✗ p(95){name:/delay} < 100  (measured *)",  # 300 ms or more: p50 below
            "*✓ rate(failures) < 0.01  (measured 0)",
            "*✓ p(95){name:/get} < 60000  (measured *)",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    verdict = predicate(pytester)
    assert verdict["decision"] == "REJECT"
    [load] = verdict["load"]["runs"]
    assert load["ok"] is False and [t["ok"] for t in load["thresholds"]] == [False, True, True]
    assert load["endpoints"]["/delay"]["p50"] >= 300


def test_a_malformed_threshold_fails_the_test_in_one_line_before_locust_starts(pytester, httpbin_url, monkeypatch):
    suite(
        pytester,
        httpbin_url,
        monkeypatch,
        """
@pytest.mark.load
def test_load(staging_load):
    staging_load.run("locustfile.py", users=1, spawn_rate=1, duration=30, thresholds=["p95 < 500"])
""",
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*staging_load: threshold 'p95 < 500' is not METRIC*"])
    out = result.stdout.str()
    assert "Traceback" not in out and not list(pytester.path.glob("cmdline-*.txt"))
    # Once, not chained to the parse error ("During handling of the above exception ...").
    assert "During handling" not in out
    failures = out.split("short test summary info")[0]  # the summary repeats it (in full under CI=true)
    assert failures.count("threshold 'p95 < 500' is not METRIC") == 1


def test_abort_on_fail_stops_the_run_early(pytester, httpbin_url, monkeypatch):
    suite(
        pytester,
        httpbin_url,
        monkeypatch,
        """
@pytest.mark.load
def test_load(staging_load):
    staging_load.run("locustfile.py", users=2, spawn_rate=2, duration=60, user_classes=["Slow"],
                     thresholds=["p(95) < 100"], abort_on_fail=True)
""",
    )
    until(pytester, file="never")  # only the abort ends this run before its 60 s
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*✗ p(95) < 100*", "*run aborted after *s: p(95) < 100 breached"])
    assert predicate(pytester)["load"]["runs"][0]["aborted"]["breached"] == ["p(95) < 100"]


def test_local_processes(pytester, httpbin_url, monkeypatch):
    suite(pytester, httpbin_url, monkeypatch, PASSING)
    result = run(pytester, "--staging-load-processes=2")
    result.assert_outcomes(passed=1)
    [load] = predicate(pytester)["load"]["runs"]
    assert load["profile"]["processes"] == 2
    echoed = json.loads((pytester.path / "echoed.json").read_text())
    assert echoed["Authorization"] == f"Bearer {TOKEN}"  # headers reached the forked workers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_master_with_a_worker_started_elsewhere(pytester, httpbin_url, monkeypatch):
    suite(pytester, httpbin_url, monkeypatch, PASSING)
    port = free_port()
    worker_dir = pytester.path / "elsewhere"
    worker_dir.mkdir()
    (worker_dir / "locustfile.py").write_text(LOCUSTFILE)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_staging",
            "load-worker",
            "locustfile.py",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(port),
        ],
        cwd=worker_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in __import__("os").environ.items() if k != "LOAD_TOKEN"},
    )
    try:
        result = run(
            pytester,
            "--staging-load-workers=1",
            f"--staging-load-master=127.0.0.1:{port}",
            "--staging-load-worker-wait=30",
        )
        result.assert_outcomes(passed=1)
        assert worker.wait(timeout=30) == 0  # the worker stops with the master's run
    finally:
        if worker.poll() is None:
            worker.kill()
    assert predicate(pytester)["load"]["runs"][0]["profile"]["workers"] == 1
    # The worker made the requests, with the headers the master sent it (it had no secret itself).
    echoed = json.loads((worker_dir / "echoed.json").read_text())
    assert echoed["Authorization"] == f"Bearer {TOKEN}"


def test_workers_that_never_come_fail_the_test_clearly(pytester, httpbin_url, monkeypatch):
    suite(pytester, httpbin_url, monkeypatch, PASSING)
    port = free_port()
    result = run(
        pytester, "--staging-load-workers=2", f"--staging-load-master=127.0.0.1:{port}", "--staging-load-worker-wait=2"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*staging_load: the locust master waited 2s for 2 worker(s) on 127.0.0.1:{port} and not all came; "
            f"start them with `pytest-staging load-worker LOCUSTFILE --master-host HOST --master-port {port}`"
        ]
    )


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["--staging-load-processes=0"], "--staging-load-processes"),
        (["--staging-load-processes=2", "--staging-load-workers=2"], "--staging-load-workers"),
        (["--staging-load-master=nohostport"], "--staging-load-master"),
        (["--staging-load-worker-wait=soon"], "--staging-load-worker-wait"),
    ],
)
def test_bad_load_options_are_usage_errors(pytester, httpbin_url, monkeypatch, usage_error, args, where):
    suite(pytester, httpbin_url, monkeypatch, PASSING)
    usage_error.check(run(pytester, *args), where)


def test_without_locust_load_tests_say_what_to_install_and_nothing_else_breaks(pytester, httpbin_url, monkeypatch):
    suite(
        pytester,
        httpbin_url,
        monkeypatch,
        PASSING + "\n\ndef test_smoke(staging_http):\n    assert staging_http.get('/get').ok\n",
    )
    pytester.makeconftest("import sys\nsys.modules['locust'] = None  # as if not installed\n")
    result = run(pytester, "-p", "no:locust")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["staging_load: locust is not installed; install pytest-staging?load?"])


def test_load_runs_take_turns_under_xdist(pytester, httpbin_url, monkeypatch):
    body = """
@pytest.mark.load
def test_one(staging_load):
    staging_load.run("locustfile.py", users=2, spawn_rate=2, duration=60, user_classes=["Api"])

@pytest.mark.load
def test_two(staging_load):
    staging_load.run("locustfile.py", users=2, spawn_rate=2, duration=60, user_classes=["Api"])
"""
    suite(pytester, httpbin_url, monkeypatch, body)
    pytester.makepyfile(
        locustfile=LOCUSTFILE
        + """
from locust import events

@events.test_start.add_listener
def _started(**_kw):
    with open("runs.log", "a") as log:
        log.write("start\\n")

@events.test_stop.add_listener
def _stopped(**_kw):
    with open("runs.log", "a") as log:
        log.write("stop\\n")
"""
    )
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=2)
    runs = sorted(predicate(pytester)["load"]["runs"], key=lambda run: run["test"])
    assert len(runs) == 2 and {run["test"] for run in runs} == {"test_load.py::test_one", "test_load.py::test_two"}
    # Each waited for the lock inside run(): one locust run stopped before the other started.
    assert (pytester.path / "runs.log").read_text().split() == ["start", "stop", "start", "stop"]


def test_progress_updates_one_line_on_a_terminal_and_stays_quiet_otherwise(pytester, httpbin_url, monkeypatch):
    import os

    suite(pytester, httpbin_url, monkeypatch, PASSING)
    until(pytester, file="displayed")  # the run goes on until this test saw it update twice
    monkeypatch.delenv("CI", raising=False)
    primary, secondary = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", "--staging-target=stage"],
        cwd=pytester.path,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if len(updates(output)) >= 2:
            (pytester.path / "displayed").touch()
    os.close(primary)
    assert proc.wait(timeout=60) == 0
    text = output.decode(errors="replace")
    assert len(updates(output)) >= 2, text  # one line, rewritten in place each second
    assert all(" rps  " in update and "/60s" in update for update in updates(output))
    # Not a terminal (the other tests, CI logs): no progress at all.
    result = run(pytester)
    assert not re.search(r"load: \d+/60s", result.stdout.str())


def updates(output: bytes) -> list[str]:
    """The progress line's versions in a terminal's output (each rewrites the line after \\r)."""
    return [part for part in output.decode(errors="replace").split("\r") if part.startswith("load: ")]


def test_url_credentials_reach_locust_as_basic_auth_and_never_its_host(pytester, httpbin_url, monkeypatch):
    """The host locust gets is the URL without user info; the credentials go as a header, never shown."""
    password = "l0ad-Pa55word"
    host = httpbin_url.removeprefix("http://")
    pytester.makepyfile(
        locustfile="""
import os, pathlib
from locust import HttpUser, constant_throughput, task

class Api(HttpUser):
    wait_time = constant_throughput(10)
    endpoints = ("/basic-auth",)

    def on_start(self):
        pathlib.Path("host.txt").write_text(self.host + " " + self.client.base_url)

    @task
    def auth(self):
        self.client.get("/basic-auth/deploy/" + os.environ["LOAD_PASSWORD"], name="/basic-auth")
"""
        + UNTIL_MEASURED
    )
    pytester.makepyfile(
        test_load="""
import pytest

@pytest.mark.load
def test_load(staging_load):
    result = staging_load.run("locustfile.py", users=1, spawn_rate=1, duration=60, thresholds=["rate(failures) < 0.01"])
    assert result.endpoints["/basic-auth"].requests > 0
"""
    )
    monkeypatch.setenv("STAGING_TARGET", f"http://deploy:{password}@{host}")
    monkeypatch.setenv("LOAD_PASSWORD", password)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-rA")
    result.assert_outcomes(passed=1)  # every request authenticated: no 401 among them
    assert (pytester.path / "host.txt").read_text() == f"{httpbin_url} {httpbin_url}"
    raw = (pytester.path / "staging-verdict.intoto.json").read_text()
    shown = result.stdout.str() + result.stderr.str() + base64.b64decode(json.loads(raw)["payload"]).decode()
    assert password not in shown and "deploy:" not in shown
