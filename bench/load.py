"""staging_load.run vs the raw locust command line: same locustfile, users and duration.

Starts the bundled httpbin (its own venv, gunicorn on 127.0.0.1) and alternates the two ways
of running example_suites/httpbin/locustfile.py, round after round:

``raw``    ``python -m locust -f locustfile.py --headless -u U -r U -t Ds -H URL --json-file F``
``gate``   ``StagingLoad.run("locustfile.py", users=U, spawn_rate=U, duration=D)`` (the fixture's
           object: subprocess, helper, per-second series, result parsing)

Throughput is locust's own (requests / time from first to last request) from each run's JSON;
wall time is the whole call. Prints the median of per-round ratios: throughput gate/raw (goal
>= 0.95) and extra wall time gate - raw (goal <= 1 s). A report, not a test: exit 0 either way.

    .venv/bin/python bench/load.py [--rounds 5] [--users 10] [--duration 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_staging.core.targets import url_target
from pytest_staging.fixtures.load import StagingLoad, summarize

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "example_suites" / "httpbin"


def httpbin():
    spec = importlib.util.spec_from_file_location("staging_httpbin_target", SUITE / "target.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def raw(url: str, users: int, duration: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                "locustfile.py",
                "--headless",
                "-u",
                str(users),
                "-r",
                str(users),
                "-t",
                f"{duration}s",
                "-H",
                url,
                "--json-file",
                f"{tmp}/stats",
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            cwd=SUITE,
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - started
        total, _, _ = summarize(json.loads(Path(f"{tmp}/stats.json").read_text()))
    return total["rps"], wall


def gate(load: StagingLoad, users: int, duration: int) -> tuple[float, float]:
    started = time.perf_counter()
    result = load.run("locustfile.py", users=users, spawn_rate=users, duration=duration)
    return result.total.rps, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args()
    target_module = httpbin()
    target_module.ensure_venv()
    with target_module.start() as server:
        load = StagingLoad(url_target(server.url, "bench"), SUITE, lambda: None)
        rows = []
        for r in range(args.rounds):
            order = ("raw", "gate") if r % 2 == 0 else ("gate", "raw")
            measured = {}
            for case in order:
                measured[case] = (
                    raw(server.url, args.users, args.duration)
                    if case == "raw"
                    else gate(load, args.users, args.duration)
                )
            rows.append(measured)
            print(
                f"round {r + 1}: raw {measured['raw'][0]:.1f} rps {measured['raw'][1]:.2f}s, "
                f"gate {measured['gate'][0]:.1f} rps {measured['gate'][1]:.2f}s",
                file=sys.stderr,
            )
    ratio = statistics.median(m["gate"][0] / m["raw"][0] for m in rows)
    extra = statistics.median(m["gate"][1] - m["raw"][1] for m in rows)
    print(f"staging_load.run vs raw locust: {args.users} users, {args.duration}s, {args.rounds} rounds (interleaved)")
    print(f"throughput gate/raw  median {ratio:.3f}   goal >= 0.95  {'met' if ratio >= 0.95 else 'NOT met'}")
    print(f"extra wall time      median {extra:+.2f}s  goal <= 1.00s {'met' if extra <= 1.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
