"""Inner pytest runs as separate processes, for the tests that signal or kill them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

#: Environment an inner run must not inherit: it would change the gate's configuration or outputs.
INNER_ENV_DROPPED = ("STAGING_", "PYTEST_", "TRACEPARENT", "OTEL_", "GITHUB_")


def popen_inner_pytest(directory: Path, *args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """``python -m pytest ARGS`` in ``directory``, in a session of its own (so a signal sent to it
    reaches it alone), output on one pipe. Its Ctrl-C works as from a terminal even when this
    process was started with SIGINT ignored, as a background job is: the run starts with SIGINT's
    default disposition, so Python installs its KeyboardInterrupt handler."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(INNER_ENV_DROPPED)}
    environ.update(env or {})
    also = kwargs.pop("preexec_fn", None)

    def start() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if also is not None:
            also()

    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=directory,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=start,
        **kwargs,
    )


#: A small gate suite against httpbin: one test in each tier, all passing.
SUITE = """
import pytest

def test_health(staging_http):
    assert staging_http.get("/get").ok

@pytest.mark.contract
def test_shape(staging_http):
    assert staging_http.get("/json").json()["slideshow"]

@pytest.mark.load
def test_capacity(staging_http):
    assert staging_http.get("/get").ok
"""

#: A test that fails against httpbin: evidence of failure, a REJECT.
BROKEN = """
def test_broken(staging_http):
    assert staging_http.get("/status/500").ok, "the release answers 500"
"""
