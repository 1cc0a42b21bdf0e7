#!/usr/bin/env python3
"""Bundled example staging target: real httpbin served by gunicorn on 127.0.0.1.

httpbin lives in its own virtual environment (default ``<repo>/.venv-httpbin``,
override with ``STAGING_HTTPBIN_VENV``) because it cannot share one with
locust/gevent: httpbin needs greenlet<3 on Python 3.11 while gevent needs
greenlet>=3.2.2, and pip then silently falls back to an old httpbin that
crashes on werkzeug 3.

Standard library only, so it runs with any python3 before anything is installed.

Use it as a module (``ensure_venv``, ``start``) or from the command line::

    python3 example_suites/httpbin/target.py setup
    python3 example_suites/httpbin/target.py start      # prints the URL
    python3 example_suites/httpbin/target.py url
    python3 example_suites/httpbin/target.py stop
    python3 example_suites/httpbin/target.py run -- pytest ...   # STAGING_HTTPBIN_URL is set
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Pinned together: verified working with werkzeug 3.1.9 on Python 3.11.
REQUIREMENTS = ("httpbin==0.10.4", "gunicorn==27.0.1")
HOST = "127.0.0.1"  # never any other address: this is a local test target
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
BIND_ATTEMPTS = 3  # a free port can be taken between probing and gunicorn's bind
MARKER = "staging-requirements.txt"
STATE = "server.json"


class TargetError(RuntimeError):
    """The target could not be set up, started or stopped."""


class _BindError(TargetError):
    """gunicorn could not bind its port (another process took it)."""


def venv_path(venv: str | os.PathLike | None = None) -> Path:
    """Where the httpbin venv lives: argument, else $STAGING_HTTPBIN_VENV, else the repo default."""
    return Path(venv or os.environ.get("STAGING_HTTPBIN_VENV") or REPO / ".venv-httpbin").absolute()


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _run(cmd: list, what: str) -> None:
    proc = subprocess.run(
        [str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if proc.returncode != 0:
        raise TargetError(f"{what} failed (exit {proc.returncode}):\n{_tail(proc.stdout)}")


def ensure_venv(venv: str | os.PathLike | None = None) -> Path:
    """Create the httpbin venv if needed and return its path.

    Safe to call from several processes at once (pytest-xdist workers): the work
    happens under an exclusive flock on ``<venv>.lock``, and a marker file with the
    pinned requirements, written only after a verified install, makes later calls
    cheap no-ops.
    """
    venv = venv_path(venv)
    wanted = "\n".join(REQUIREMENTS) + "\n"
    marker = venv / MARKER
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if marker.is_file() and marker.read_text() == wanted and (venv / "bin" / "gunicorn").exists():
            return venv
        marker.unlink(missing_ok=True)  # a half-done install must not look finished
        _run([sys.executable, "-m", "venv", venv], f"creating venv {venv}")
        _run(
            [venv / "bin" / "pip", "install", "--disable-pip-version-check", "-q", *REQUIREMENTS],
            f"pip install {' '.join(REQUIREMENTS)} into {venv}",
        )
        _run([venv / "bin" / "python", "-c", "import httpbin"], f"import httpbin in {venv}")
        marker.write_text(wanted)
    return venv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    """True if pid runs and is not a zombie (a reparented zombie may never be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust kill(0)


def _stop_group(pid: int, proc: subprocess.Popen | None = None, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM gunicorn's process group, wait up to `timeout`, then SIGKILL the group.

    gunicorn was started with start_new_session=True, so its pid is also the group
    id and killing the group takes the workers down with the master.
    """

    def gone() -> bool:
        return proc.poll() is not None if proc is not None else not _alive(pid)

    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:  # also catches workers that outlived a graceful master exit
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc is not None:
        proc.wait()


class Server:
    """A running gunicorn+httpbin; stop() it or use it as a context manager."""

    def __init__(self, port: int, pid: int, log_path: Path, proc: subprocess.Popen | None = None):
        self.port, self.pid, self.log_path, self._proc = port, pid, Path(log_path), proc

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM master and workers, SIGKILL whatever is left after `timeout` seconds."""
        _stop_group(self.pid, self._proc, timeout)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Server {self.url} pid={self.pid}>"


def _wait_ready(server: Server, proc: subprocess.Popen, timeout: float) -> None:
    """Return once *our* gunicorn listens and /get answers 200, else raise."""
    # Require gunicorn's own "Listening at: URL (pid)" line: a 200 alone could come
    # from another server that grabbed the port first while ours failed to bind.
    listening = f"Listening at: {server.url} ({proc.pid})"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log_path.read_text(errors="replace")
        if "Connection in use" in log:
            raise _BindError(f"port {server.port} is already in use")
        if proc.poll() is not None:
            raise TargetError(f"gunicorn exited with code {proc.returncode}")
        if listening in log:
            try:
                with urllib.request.urlopen(server.url + "/get", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass  # workers still booting
        time.sleep(0.1)
    raise TargetError(f"{server.url}/get did not answer 200 within {timeout:.0f}s")


def _start_once(venv: Path, port: int, timeout: float) -> Server:
    logs = venv / "logs"
    logs.mkdir(exist_ok=True)
    fd, log_path = tempfile.mkstemp(prefix=f"gunicorn-{port}-", suffix=".log", dir=logs)
    with os.fdopen(fd, "wb") as log:  # the child keeps its own copy of the fd
        proc = subprocess.Popen(
            [venv / "bin" / "gunicorn", "--no-control-socket", "-b", f"{HOST}:{port}", "-w", "2", "httpbin:app"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=venv,
            start_new_session=True,  # own group: stop() can kill master + workers
        )
    server = Server(port, proc.pid, Path(log_path), proc)
    try:
        _wait_ready(server, proc, timeout)
    except BaseException as exc:  # includes KeyboardInterrupt: never leak the process
        # Short grace: gunicorn queues SIGTERM while retrying a busy port (~5 s), and
        # a server that never became ready has nothing to shut down gracefully.
        _stop_group(proc.pid, proc, timeout=1)
        if isinstance(exc, TargetError):
            tail = _tail(server.log_path.read_text(errors="replace"))
            raise type(exc)(f"{exc} (log {log_path}):\n{tail}") from None
        raise
    return server


def start(port: int | None = None, venv: str | os.PathLike | None = None, timeout: float = READY_TIMEOUT) -> Server:
    """Start httpbin under gunicorn on 127.0.0.1 and return once /get answers 200.

    Without `port`, a free one is picked, and a new one is tried if another process
    takes it before gunicorn binds it.
    """
    venv = ensure_venv(venv)
    for _attempt in range(1 if port else BIND_ATTEMPTS):
        try:
            return _start_once(venv, port or _free_port(), timeout)
        except _BindError as exc:
            error = exc
    raise error


# --- command line -----------------------------------------------------------


def _read_state(path: Path) -> dict | None:
    """The server recorded by `start`, if it is still running, else None."""
    try:
        state = json.loads(path.read_text())
        pid, url = int(state["pid"]), str(state["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(pid):
        return None
    if Path("/proc").is_dir():  # guard against a stale file whose pid now belongs to something else
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        if b"gunicorn" not in cmdline or url.split("//")[-1].encode() not in cmdline:
            return None
    return {"pid": pid, "url": url}


def _cmd_start(args, state_path: Path) -> int:
    running = _read_state(state_path)
    if running:
        print(f"already running (pid {running['pid']})", file=sys.stderr)
        print(running["url"])
        return 0
    server = start(args.port, args.venv)  # gunicorn has its own session: it outlives us
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": server.pid, "url": server.url, "log": str(server.log_path)}))
    tmp.replace(state_path)
    print(server.url)
    return 0


def _cmd_stop(args, state_path: Path) -> int:
    running = _read_state(state_path)
    if running:
        _stop_group(running["pid"])
    else:
        print("no server running", file=sys.stderr)
    state_path.unlink(missing_ok=True)
    return 0


def _cmd_url(args, state_path: Path) -> int:
    running = _read_state(state_path)
    if not running:
        raise TargetError("no server running (use `start`)")
    print(running["url"])
    return 0


def _cmd_run(args, state_path: Path) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise TargetError("run: no command given (usage: run -- CMD ARGS...)")
    # Turn SIGTERM into an exception so the finally below still stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with start(args.port, args.venv) as server:
        try:
            rc = subprocess.call(cmd, env={**os.environ, "STAGING_HTTPBIN_URL": server.url})
        except OSError as exc:
            raise TargetError(f"run: cannot execute {cmd[0]!r}: {exc.strerror}") from None
    return rc if rc >= 0 else 128 - rc  # killed by a signal: shell convention


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="target.py", description="Run real httpbin (gunicorn, own venv) on 127.0.0.1 as a staging target."
    )
    parser.add_argument("--venv", help="venv dir (default: $STAGING_HTTPBIN_VENV or <repo>/.venv-httpbin)")
    parser.add_argument("--state", help="state file of `start`/`stop`/`url` (default: <venv>/server.json)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("setup", help="create the httpbin venv")
    p = sub.add_parser("start", help="start a server in the background and print its URL")
    p.add_argument("--port", type=int, help="port (default: a free one)")
    sub.add_parser("stop", help="stop the server started by `start`")
    sub.add_parser("url", help="print the URL of the running server (exit 1 if none)")
    p = sub.add_parser(
        "run", help="start a server, run CMD with STAGING_HTTPBIN_URL set, stop it; exit with CMD's exit code"
    )
    p.add_argument("--port", type=int, help="port (default: a free one)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    args = parser.parse_args(argv)

    state_path = Path(args.state) if args.state else venv_path(args.venv) / STATE
    try:
        if args.command == "setup":
            print(ensure_venv(args.venv))
            return 0
        return {"start": _cmd_start, "stop": _cmd_stop, "url": _cmd_url, "run": _cmd_run}[args.command](
            args, state_path
        )
    except TargetError as exc:
        print(f"target.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
