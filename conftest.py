"""Shared fixtures for the pytest-staging test suite."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HTTPBIN_TARGET = Path(__file__).parent / "example_suites" / "httpbin" / "target.py"


@pytest.fixture(scope="session")
def httpbin_target():
    """The bundled example target module (example_suites/httpbin/target.py).

    Loaded by file path because example_suites is not a package.
    """
    name = "staging_httpbin_target"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HTTPBIN_TARGET)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def httpbin_url(httpbin_target):
    """Base URL (``http://127.0.0.1:PORT``) of a real httpbin served by gunicorn.

    The httpbin venv (``.venv-httpbin`` or ``$STAGING_HTTPBIN_VENV``) is created on
    first use under a file lock, so pytest-xdist workers can share it; each worker
    then starts its own server on a free port, stopped at the end of the session.
    """
    httpbin_target.ensure_venv()
    with httpbin_target.start() as server:
        yield server.url


# Property tests run beside pytester subprocesses under xdist on a 2-core machine: a per-example
# deadline would turn a slow moment into a failure that says nothing about the code.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("staging", deadline=None, print_blob=True)
_hypothesis_settings.load_profile("staging")
