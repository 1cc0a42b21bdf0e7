"""Helpers for tests that run an inner pytest (pytester) against a staging target."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
from docs_text import docs_block

# pytester's in-process runs drop the modules an inner run imported; importing the plugin's lazy
# modules here keeps one copy of them (and of requests) alive across those runs.
import pytest_staging.baseline.judge  # noqa: F401  (numpy cannot be imported twice in one process)
import pytest_staging.core.preflight  # noqa: F401
import pytest_staging.fixtures.http  # noqa: F401
import pytest_staging.gate.controller  # noqa: F401
import pytest_staging.gate.issuer  # noqa: F401
import pytest_staging.gate.worker  # noqa: F401
from pytest_staging.cli import main as cli


@pytest.fixture(scope="session")
def openssl_recipe():
    """Run the documentation's jq/base64/openssl recipe (docs/verifying.md) exactly as printed, as a
    script: ``openssl_recipe(directory, verdict, public_key) -> CompletedProcess``."""
    script = docs_block("verify-recipe")

    def run(directory: Path, verdict: Path, pub: Path) -> subprocess.CompletedProcess[str]:
        path = directory / "verify-verdict.sh"
        path.write_text(script)
        env = {**os.environ, "VERDICT": str(verdict), "KEY": str(pub)}
        return subprocess.run(["bash", str(path)], cwd=directory, env=env, capture_output=True, text=True)

    return run


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
    names = (
        "STAGING_TARGET",
        "STAGING_RELEASE",
        "STAGING_SIGNING_KEY",
        "STAGING_SHARD",
        "TRACEPARENT",
        "OTEL_TRACES_EXPORTER",
        "GITHUB_STEP_SUMMARY",
    )
    for name in names:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def gate(pytester, httpbin_url, keys):
    """Run an inner gate and return (result, statement, envelope)."""

    def run(suite: str, *args: str, subprocess_run: bool = False, sign: bool = True):
        pytester.makepyfile(suite)
        argv = [f"--staging-target={httpbin_url}", *args]
        if sign:
            argv.append(f"--staging-signing-key={keys[0]}")
        result = pytester.runpytest_subprocess(*argv) if subprocess_run else pytester.runpytest(*argv)
        path = pytester.path / "staging-verdict.intoto.json"
        envelope = json.loads(path.read_text())
        payload = base64.b64decode(envelope["payload"])
        statement = json.loads(payload)
        # The payload is canonical: compact, sorted keys, UTF-8, exactly as json.dumps writes it.
        canonical = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        assert payload == canonical.encode("utf-8")
        return result, statement, envelope

    return run


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
