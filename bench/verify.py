"""How long does ``pytest-staging verify`` take on a verdict of 10,000 tests, now against before?

Makes one verdict of N trivial tests (default 10,000) with a gate run against a local HTTP target,
as bench/verdict.py does, then times ``verify FILE --key PUB`` on it in a fresh child process per
run: with this checkout's ``pytest_staging`` and with an earlier one (``--before DIR``, a directory
that holds that version's ``pytest_staging`` package). Runs alternate (before, now, before, now,
...) so a slow moment of the shared machine hits both alike. Each child times the command's
``main()`` from inside (its lazy imports of jsonschema and cryptography included; the interpreter
start-up and the CLI module's import are not); the child's whole wall time is measured from
outside too. Prints the medians and the median of the per-round ratios now / before. The goal
(issue 15) is at most 1.10: it is reported, not asserted; the exit status is 0 either way, unless
a run fails to verify (exit 1).

    git archive c226122 pytest_staging | (mkdir -p /tmp/verify-before && tar -x -C /tmp/verify-before)
    .venv/bin/python bench/verify.py --before /tmp/verify-before [--tests 10000] [--rounds 11]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from verdict import clean_env, free_port, write_suite  # noqa: E402  (the same suite as the verdict bench)

GOAL = 1.10
HERE = Path(__file__).resolve().parents[1]

# Run in each child: import the CLI, then time the verify command alone.
CHILD = """
import contextlib, io, json, sys, time
import pytest_staging
from pytest_staging.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    started = time.perf_counter()
    code = main(json.loads(sys.argv[1]))
    seconds = time.perf_counter() - started
print(json.dumps({"code": code, "seconds": seconds, "package": pytest_staging.__file__}))
"""


def make_verdict(root: Path, tests: int) -> tuple[Path, Path]:
    write_suite(root, tests)
    subprocess.run(
        [sys.executable, "-m", "pytest_staging", "keygen", "--out", str(root / "bench")],
        check=True,
        capture_output=True,
    )
    env = clean_env()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--staging-target=http://127.0.0.1:{port}",
                f"--staging-signing-key={root / 'bench.key'}",
                "--staging-artifact=bench@sha256:" + "0" * 64,
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    if result.returncode != 0:
        raise SystemExit(
            f"the gate run failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
        )
    return root / "staging-verdict.intoto.json", root / "bench.pub"


def timed_verify(package_dir: Path, verdict: Path, pub: Path) -> tuple[float, float]:
    """(seconds inside verify's main(), seconds of the whole child) for the package in ``package_dir``."""
    env = clean_env()
    env["PYTHONPATH"] = str(package_dir)
    argv = ["verify", str(verdict), "--key", str(pub)]
    started = time.perf_counter()
    # cwd: the verdict's directory, which holds no pytest_staging (``-c`` puts the cwd first on sys.path)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(argv)], cwd=verdict.parent, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"verify failed with {package_dir}: {result.stderr[-2000:]}")
    report = json.loads(result.stdout.splitlines()[-1])
    if report["code"] != 0:
        raise SystemExit(f"the verdict did not verify with {package_dir} (exit {report['code']})")
    if not Path(report["package"]).resolve().is_relative_to(package_dir.resolve()):
        raise SystemExit(f"the child imported {report['package']}, not the package in {package_dir}")
    return report["seconds"], wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--before", type=Path, required=True, metavar="DIR", help="directory holding the earlier pytest_staging package"
    )
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    if not (args.before / "pytest_staging" / "cli.py").is_file():
        raise SystemExit(f"{args.before} holds no pytest_staging package (see --help)")

    with tempfile.TemporaryDirectory(prefix="staging-verify-bench-") as tmp:
        verdict, pub = make_verdict(Path(tmp), args.tests)
        size = verdict.stat().st_size
        for package in (args.before, HERE):  # warm-up: bytecode caches, the file in the page cache
            timed_verify(package, verdict, pub)
        rows = []
        for number in range(1, args.rounds + 1):
            before, before_wall = timed_verify(args.before, verdict, pub)
            now, now_wall = timed_verify(HERE, verdict, pub)
            rows.append((before, now, before_wall, now_wall))
            print(
                f"round {number:2d}: verify before {before * 1000:6.1f} ms, now {now * 1000:6.1f} ms: x{now / before:.3f}"
                f"   (whole process {before_wall:.2f} s, {now_wall:.2f} s)",
                flush=True,
            )
    ratios = [now / before for before, now, _, _ in rows]
    wall_ratios = [now_wall / before_wall for _, _, before_wall, now_wall in rows]
    median = statistics.median(ratios)
    print()
    print(
        f"verdict of {args.tests} tests ({size / 1e6:.1f} MB), {args.rounds} interleaved rounds; before = {args.before}"
    )
    print(
        f"verify: median before {statistics.median(r[0] for r in rows) * 1000:.1f} ms, now {statistics.median(r[1] for r in rows) * 1000:.1f} ms"
    )
    print(f"now / before (median of per-round ratios): x{median:.3f}   min x{min(ratios):.3f}   max x{max(ratios):.3f}")
    print(f"whole process, now / before: x{statistics.median(wall_ratios):.3f}")
    print(f"goal x{GOAL:.2f}: {'met' if median <= GOAL else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
