"""Helpers for tests that run an inner pytest (pytester) against a staging target."""

from __future__ import annotations

from pathlib import Path

import pytest

# pytester's in-process runs drop the modules an inner run imported; importing the plugin's lazy
# modules here keeps one copy of them (and of requests) alive across those runs.
import pytest_staging.baseline.judge  # noqa: F401  (numpy cannot be imported twice in one process)
import pytest_staging.gate  # noqa: F401
import pytest_staging.http  # noqa: F401
import pytest_staging.preflight  # noqa: F401
import pytest_staging.xdist  # noqa: F401
from pytest_staging.cli import main as cli


class Usage:
    """Asserts the contract of a usage error: exit 4, one line, no traceback, no test run."""

    @staticmethod
    def check(result: pytest.RunResult, *fragments: str) -> str:
        assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
        errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
        assert len(errors) == 1, result.stderr.lines
        output = result.stdout.str() + result.stderr.str()
        assert "Traceback" not in output
        assert " passed" not in output and " failed" not in output
        for fragment in fragments:
            assert fragment in errors[0], errors[0]
        return errors[0]


@pytest.fixture
def usage_error() -> type[Usage]:
    return Usage


@pytest.fixture
def staging_env(monkeypatch):
    """No staging setting leaks in from the environment running the tests."""
    names = ("STAGING_TARGET", "STAGING_RELEASE", "STAGING_SIGNING_KEY", "TRACEPARENT", "OTEL_TRACES_EXPORTER", "GITHUB_STEP_SUMMARY")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> tuple[Path, Path]:
    """An Ed25519 pair from ``pytest-staging keygen``: (private key, public key) paths."""
    prefix = tmp_path_factory.mktemp("keys") / "gate"
    assert cli(["keygen", "--out", str(prefix)]) == 0
    return prefix.with_suffix(".key"), prefix.with_suffix(".pub")


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory) -> tuple[Path, Path]:
    """A second pair: a verdict signed with ``keys`` must not verify with it."""
    prefix = tmp_path_factory.mktemp("other") / "other"
    assert cli(["keygen", "--out", str(prefix)]) == 0
    return prefix.with_suffix(".key"), prefix.with_suffix(".pub")
