"""The bundled example target (example_suites/httpbin/target.py), against real servers."""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

TARGET = Path(__file__).resolve().parents[1] / "example_suites" / "httpbin" / "target.py"
URL_RE = re.compile(r"^http://127\.0\.0\.1:\d+$")

needs_proc = pytest.mark.skipif(not Path("/proc").is_dir(), reason="inspects processes via /proc")


def cli(*args, state=None):
    """Run target.py's CLI; `state` keeps start/stop away from a developer's own server."""
    opts = ["--state", str(state)] if state else []
    return subprocess.run([sys.executable, str(TARGET), *opts, *args], capture_output=True, text=True, timeout=120)


def get(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read()


def live_processes(match):
    """{pid: stat fields after the name} of non-zombie processes for which match(fields, cmdline)."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue  # not a pid dir, or the process just exited
        if fields[0] != "Z" and match(fields, cmdline):  # a reparented zombie may never be reaped here
            found[int(proc.name)] = cmdline
    return found


def group_members(pgid):
    return live_processes(lambda fields, _: int(fields[2]) == pgid)


def assert_refused(url):
    with pytest.raises(urllib.error.URLError) as excinfo:
        get(url + "/get")
    assert isinstance(excinfo.value.reason, ConnectionRefusedError)


def test_fixture_server_answers_get(httpbin_url):
    assert URL_RE.match(httpbin_url)
    status, body = get(httpbin_url + "/get?probe=1")
    assert status == 200
    data = json.loads(body)
    assert data["url"] == httpbin_url + "/get?probe=1"
    assert data["args"] == {"probe": "1"}


def test_fixture_server_status_418(httpbin_url):
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        get(httpbin_url + "/status/418")
    assert excinfo.value.code == 418


def master_and_workers(pgid: int) -> dict:
    """gunicorn's process group once both workers are up: the server answers as soon as one is,
    and the second may still be forking, so wait for it (30 s at most)."""
    deadline = time.monotonic() + 30
    while len(group := group_members(pgid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    return group


@needs_proc
def test_cli_start_url_stop_round_trip(tmp_path):
    state = tmp_path / "server.json"
    started = cli("start", state=state)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    try:
        assert URL_RE.match(url)
        pid = json.loads(state.read_text())["pid"]
        assert len(master_and_workers(pid)) >= 3, "master + 2 workers in gunicorn's own group"
        assert get(url + "/get")[0] == 200

        shown = cli("url", state=state)
        assert (shown.returncode, shown.stdout.strip()) == (0, url)
    finally:
        stopped = cli("stop", state=state)
    assert stopped.returncode == 0, stopped.stderr
    assert group_members(pid) == {}, "stop must leave no master or worker behind"
    assert not state.exists()
    assert_refused(url)

    gone = cli("url", state=state)
    assert gone.returncode == 1
    assert gone.stderr.startswith("target.py: error: no server running")


def test_cli_run_passes_url_and_exit_code():
    code = (
        "import os, sys, urllib.request; url = os.environ['STAGING_HTTPBIN_URL'];"
        "assert urllib.request.urlopen(url + '/get').status == 200; print(url); sys.exit(3)"
    )
    result = cli("run", "--", sys.executable, "-c", code)
    assert result.returncode == 3, result.stderr
    url = result.stdout.strip()
    assert URL_RE.match(url)
    assert_refused(url)  # stopped after the command


def test_cli_errors_are_one_line():
    result = cli("run")
    assert result.returncode == 1
    assert result.stderr == "target.py: error: run: no command given (usage: run -- CMD ARGS...)\n"


@needs_proc
def test_start_on_busy_port_fails_with_log_tail_and_no_leftover(httpbin_target):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(httpbin_target.TargetError, match=f"port {port} is already in use") as excinfo:
            httpbin_target.start(port=port)
    assert "Connection in use" in str(excinfo.value)  # gunicorn's log tail
    assert live_processes(lambda _, cmdline: f"127.0.0.1:{port} " in cmdline) == {}


def test_start_retries_on_another_port_when_the_free_one_is_taken(httpbin_target, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = iter([taken, httpbin_target._free_port()])
        monkeypatch.setattr(httpbin_target, "_free_port", lambda: next(ports))
        with httpbin_target.start() as server:
            assert server.port != taken
            assert get(server.url + "/get")[0] == 200
    assert_refused(server.url)


@needs_proc
def test_stop_escalates_to_sigkill_for_the_whole_group(httpbin_target):
    server = httpbin_target.start()
    try:
        group = master_and_workers(server.pid)
        assert len(group) >= 3
        os.kill(server.pid, signal.SIGSTOP)  # a hung master that cannot act on SIGTERM
        server.stop(timeout=0.5)
        assert live_processes(lambda _, __: True).keys() & group.keys() == set()
    finally:  # don't leak a frozen server if stop() is broken
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
