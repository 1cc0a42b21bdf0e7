"""What does writing and signing the verdict add to a gate session of 10,000 tests?

Runs a throw-away suite of N trivial tests (default 10,000) with the gate active against a local
HTTP target (``python -m http.server`` on 127.0.0.1) and an Ed25519 signing key, and times, inside
each child process, the step that builds the statement, signs it and writes the file
(``Issuer._issue``), next to the child's whole wall time measured from outside. The ratio is taken
within each run (verdict time / rest of the session), so machine noise that slows a whole run
cancels out; the headline is the median over the rounds. Every written verdict must verify with
``pytest-staging verify --expect PROMOTE`` and list N tests, or the script fails (exit 1).

    .venv/bin/python bench/verdict.py [--tests 10000] [--rounds 5] [--key-in-env]

``--key-in-env`` passes the key as CI secret stores do, in ``STAGING_SIGNING_KEY``: a value the
gate must keep out of every output, so the verdict step also looks for secrets in the statement.

The budget (issue 3) is 2%: it is reported, not asserted; the exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET = 0.02
FILES = 100

# Loaded into the child with -p: wraps the verdict step with a timer (nothing else changes).
TIMER_PLUGIN = """
import json, os, time
import pytest_staging.gate.issuer as issuer

_issue = issuer.Issuer._issue

def _timed(self, *args, **kwargs):
    started = time.perf_counter()
    try:
        return _issue(self, *args, **kwargs)
    finally:
        with open(os.environ["VERDICT_BENCH_OUT"], "w") as out:
            json.dump({"issue": time.perf_counter() - started}, out)

issuer.Issuer._issue = _timed
"""


def clean_env() -> dict[str, str]:
    """This environment without the gate's and pytest's settings: a child run sees only its arguments."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("STAGING_", "PYTEST_"))}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_suite(root: Path, tests: int) -> None:
    (root / "pytest.ini").write_text("[pytest]\n")
    per_file = tests // FILES
    for index in range(FILES):
        count = per_file + (1 if index < tests % FILES else 0)
        (root / f"test_v{index:03d}.py").write_text(
            "".join(f"def test_{i}():\n    assert True\n\n" for i in range(count))
        )
    (root / "staging_bench_timer.py").write_text(TIMER_PLUGIN)


def run_round(
    root: Path, url: str, key: Path, pub: Path, tests: int, env: dict[str, str], key_in_env: bool
) -> tuple[float, float]:
    out = root / "timing.json"
    verdict = root / "staging-verdict.intoto.json"
    verdict.unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "staging_bench_timer",
        f"--staging-target={url}",
        "--staging-artifact=bench@sha256:" + "0" * 64,
    ]
    if key_in_env:
        env = {**env, "STAGING_SIGNING_KEY": key.read_text()}
    else:
        argv.append(f"--staging-signing-key={key}")
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=root, env={**env, "VERDICT_BENCH_OUT": str(out)}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0 or f"{tests} passed" not in result.stdout:
        raise SystemExit(
            f"the gate run failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
        )
    check = subprocess.run(
        [sys.executable, "-m", "pytest_staging", "verify", str(verdict), "--key", str(pub), "--expect", "PROMOTE"],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        raise SystemExit(f"the verdict did not verify: {check.stderr}")
    payload = json.loads(base64.b64decode(json.loads(verdict.read_text())["payload"]))
    if len(payload["predicate"]["tests"]) != tests:
        raise SystemExit("the verdict does not list every test")
    return json.loads(out.read_text())["issue"], wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--key-in-env", action="store_true", help="signing key in STAGING_SIGNING_KEY (a secret to scrub)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="staging-verdict-bench-") as tmp:
        root = Path(tmp)
        write_suite(root, args.tests)
        subprocess.run(
            [sys.executable, "-m", "pytest_staging", "keygen", "--out", str(root / "bench")],
            check=True,
            capture_output=True,
        )
        key, pub = root / "bench.key", root / "bench.pub"
        env = clean_env()
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        env["PYTHONPATH"] = str(root)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root), str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            url = f"http://127.0.0.1:{port}"
            run_round(root, url, key, pub, args.tests, env, args.key_in_env)  # warm-up: bytecode caches
            rows = []
            for number in range(1, args.rounds + 1):
                issue, wall = run_round(root, url, key, pub, args.tests, env, args.key_in_env)
                rows.append((issue, wall, issue / (wall - issue)))
                print(
                    f"round {number}: verdict {issue * 1000:7.1f} ms of a {wall:6.2f} s session: +{rows[-1][2]:.2%}",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
        size = (root / "staging-verdict.intoto.json").stat().st_size
    ratios = [row[2] for row in rows]
    median = statistics.median(ratios)
    print()
    where = "from STAGING_SIGNING_KEY, a secret" if args.key_in_env else "from a file"
    print(
        f"verdict of {args.tests} test records ({size / 1e6:.1f} MB), signed with Ed25519 (key {where}), {args.rounds} rounds"
    )
    print(
        f"verdict step: median {statistics.median(r[0] for r in rows) * 1000:.1f} ms; session median {statistics.median(r[1] for r in rows):.2f} s"
    )
    print(f"adds (median of per-round ratios): {median:.2%}   min {min(ratios):.2%}   max {max(ratios):.2%}")
    print(f"budget {BUDGET:.0%}: {'within budget' if median <= BUDGET else 'OVER budget'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
