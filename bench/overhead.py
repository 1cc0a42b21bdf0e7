"""How much wall-clock time does pytest-staging add to a pytest run?

Generates a throw-away suite of N trivial tests (default 5,000: 50 files x 100
``def test_i(): assert True``, with its own ``pytest.ini`` so no project config applies),
starts a local HTTP target (``python -m http.server`` on 127.0.0.1, a free port), and times
whole ``python -m pytest -q -p no:cacheprovider`` subprocesses in three cases:

``bare``    the plugin disabled (``-p no:staging``): the baseline;
``unused``  the plugin installed but no target configured (inert; budget <= 1.02 x bare);
``active``  ``--staging-target=http://127.0.0.1:PORT`` (pre-flight GET plus the per-test
            hooks; budget <= 1.05 x bare). opentelemetry-api is installed but no SDK is
            configured, so this is also the "API only" telemetry case;
``traced``  ``active`` plus an OpenTelemetry SDK tracer provider with an in-memory exporter
            (``-p bench_tracing``, a plugin module written into the suite that implements
            ``pytest_staging_tracer_provider``): a session span and one span per test. Reported,
            no budget; skipped when opentelemetry-sdk is not installed.

Every other installed pytest11 plugin (xdist, hypothesis, ...) is disabled with ``-p no:NAME``
identically in all three cases (``--keep-other-plugins`` to keep them), so the only difference
between the cases is this plugin. Children get ``PYTHONPYCACHEPREFIX`` in the temp dir (and no
``PYTHONDONTWRITEBYTECODE``); one warm-up round (not counted) fills that bytecode cache;
then each round runs the three cases in a rotated order (round r starts at case r % 3), so
drift on a noisy machine falls on every case alike.

Reading the output: the headline is the *median of per-round ratios* (each round's
``case / bare``, computed within that round, then the median across rounds), which cancels
slow drift; the ratio of medians and of minimums are shown as cross-checks, and so is the
same per-round ratio of the child's CPU time (user+sys): it leaves out time spent waiting for a
CPU that other processes hold, but not a VM whose CPU is slowed down, so where the two agree
the noise is in the machine, not in the run queue. Each run must exit 0 and report exactly
``N passed``, and the target's access log must show a GET from every ``active`` run and none
from the others; otherwise the script fails loudly (exit 1). The budget verdict is a report
only: the exit status is 0 whether or not it is met.

    .venv/bin/python bench/overhead.py [--tests 5000] [--rounds 7] [--instructions] [--json PATH]

``--instructions`` adds one run of each case under valgrind's callgrind and compares instruction
counts, which do not depend on what else the machine is doing (wall-clock ratios on a shared
2-core VM swing by +-20% from round to round; see the per-round table).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CASES = ("bare", "unused", "active", "traced")
BUDGETS = {"unused": 1.02, "active": 1.05, "traced": None}
TRACING_PLUGIN = """
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


def pytest_staging_tracer_provider(config):
    return PROVIDER


def pytest_unconfigure(config):
    with open("spans.txt", "w") as handle:
        handle.write(str(len(EXPORTER.get_finished_spans())))
"""
PLUGIN = "staging"
FILES = 50
#: Environment that could change what the child pytest loads or whether the plugin is active.
SCRUBBED_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_XDIST_AUTO_NUM_WORKERS")


class BenchError(Exception):
    """A run failed or the setup is not what the comparison assumes."""


# -- the suite and the target ---------------------------------------------------------------


def write_suite(root: Path, tests: int) -> None:
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    files = min(FILES, tests)
    per_file, extra = divmod(tests, files)
    for index in range(files):
        count = per_file + (1 if index < extra else 0)
        body = "".join(f"def test_{i}():\n    assert True\n\n\n" for i in range(count))
        (root / f"test_bench_{index:03d}.py").write_text(body, encoding="utf-8")
    (root / "bench_tracing.py").write_text(TRACING_PLUGIN, encoding="utf-8")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Target:
    """``python -m http.server`` on a free port; its access log tells which runs made a request."""

    def __init__(self, docroot: Path, log_path: Path) -> None:
        docroot.mkdir()
        (docroot / "index.html").write_text("ok\n", encoding="utf-8")
        self.docroot = docroot
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 15.0) -> None:
        for _attempt in range(3):  # the free port can be taken between probe and bind
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            log = open(self.log_path, "wb")
            try:
                self.proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-u",
                        "-m",
                        "http.server",
                        "--bind",
                        "127.0.0.1",
                        "--directory",
                        str(self.docroot),
                        str(port),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            finally:
                log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with urllib.request.urlopen(self.url + "/", timeout=1) as response:
                        if response.status == 200:
                            return
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise BenchError(f"the HTTP target did not answer; its log:\n{self.log_path.read_text(errors='replace')}")

    def gets(self) -> int:
        """GET requests served so far (the readiness probe included)."""
        return self.log_path.read_text(errors="replace").count('"GET ')

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- running pytest -------------------------------------------------------------------------


def other_plugins() -> list[str]:
    names = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    if PLUGIN not in names:
        raise BenchError(f"no pytest11 entry point named {PLUGIN!r} in {sys.executable}; install the plugin first")
    return sorted(names - {PLUGIN})


def child_env(pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGING_") and k not in SCRUBBED_ENV}
    env["PYTHONHASHSEED"] = "0"
    # Bytecode (and pytest's assertion-rewritten test modules) cached in the temp dir: the
    # warm-up fills it and the counted runs read it, as on a developer's machine, without
    # writing into the repo or the venv. PYTHONDONTWRITEBYTECODE would make every run
    # recompile and re-rewrite the suite, a fixed cost that dilutes the ratios.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def case_flags(case: str, target_url: str) -> list[str]:
    if case == "bare":
        return ["-p", f"no:{PLUGIN}"]
    if case == "unused":
        return []
    if case == "traced":
        return ["-p", "bench_tracing", f"--staging-target={target_url}"]
    return [f"--staging-target={target_url}"]


_SUMMARY = re.compile(r"^(?P<counts>\d+ \w+(?:, \d+ \w+)*) in [\d.]+s\b")


def summary_counts(output: str) -> dict[str, int] | None:
    for line in reversed(output.strip().splitlines()):
        match = _SUMMARY.match(line.strip().strip("=").strip())
        if match:
            return {word: int(n) for n, word in (part.split(" ", 1) for part in match["counts"].split(", "))}
    return None


def check_plugin_loading(
    suite: Path, common: list[str], env: dict[str, str], target_url: str, others: list[str]
) -> None:
    """``pytest -VV`` lists the registered plugins: staging only when not disabled, no others."""
    for case in ("bare", "unused"):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-VV", *common, *case_flags(case, target_url)],
            cwd=suite,
            env=env,
            capture_output=True,
            text=True,
        )
        text = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise BenchError(f"{case}: pytest -VV exited {proc.returncode}:\n{text}")
        has_staging = "pytest-staging" in text
        if has_staging != (case == "unused"):
            raise BenchError(f"{case}: pytest-staging {'is' if has_staging else 'is not'} registered:\n{text}")
        if others:
            listed = [line.strip() for line in text.splitlines() if " at " in line and "pytest-staging" not in line]
            if listed:
                raise BenchError(f"{case}: other plugins still registered: {listed}")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_case(
    case: str, suite: Path, common: list[str], env: dict[str, str], target: Target, tests: int
) -> tuple[float, float]:
    """One pytest run: (wall seconds, CPU seconds user+sys of the child)."""
    before = target.gets()
    cmd = [sys.executable, "-m", "pytest", *common, *case_flags(case, target.url)]
    cpu_before = _children_cpu()  # only waited-for children count: the target is not one yet
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=suite, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise BenchError(f"{case}: exit code {proc.returncode}\n$ {' '.join(cmd)}\n{output[-4000:]}")
    counts = summary_counts(proc.stdout)
    if counts is None or counts.get("passed") != tests or set(counts) - {"passed", "warning", "warnings"}:
        raise BenchError(f"{case}: expected '{tests} passed', got {counts}\n$ {' '.join(cmd)}\n{output[-4000:]}")
    if counts.keys() & {"warning", "warnings"}:
        print(f"  note: {case} run reported {counts}", file=sys.stderr)
    requests = target.gets() - before
    active = case in ("active", "traced")
    if (requests > 0) != active:
        raise BenchError(
            f"{case}: the target saw {requests} GET(s) during the run (expected {'some' if active else 'none'})"
        )
    if case == "traced":
        spans = (suite / "spans.txt").read_text()
        (suite / "spans.txt").unlink()
        if spans != str(tests + 1):
            raise BenchError(f"traced: {spans} spans finished, expected {tests + 1} (one per test and the session's)")
    return elapsed, cpu


def count_instructions(case: str, suite: Path, common: list[str], env: dict[str, str], target: Target) -> int:
    """Instructions one run executes, counted by valgrind's callgrind: the same for the same
    code and inputs whatever else the machine is doing, so it shows small differences that
    wall-clock noise on a shared VM hides."""
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "pytest",
        *common,
        *case_flags(case, target.url),
    ]
    proc = subprocess.run(cmd, cwd=suite, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    match = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or match is None:
        raise BenchError(f"{case}: callgrind run failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return int(match.group(1))


def instruction_report(counts: dict[str, int]) -> dict:
    print()
    print("instructions (valgrind callgrind, one run each; deterministic):")
    result = {}
    for case in counts:
        line = f"{case:<8} {counts[case]:>16,}"
        if case in BUDGETS:
            ratio = counts[case] / counts["bare"]
            budget = BUDGETS[case]
            within = None if budget is None else ratio <= budget
            line += f"   {case}/bare {ratio:.4f}  {_budget_text(budget, within)}"
            result[case] = {"instructions": counts[case], "ratio": ratio, "within_budget": within}
        print(line)
    result["bare"] = {"instructions": counts["bare"]}
    return result


# -- report ---------------------------------------------------------------------------------


def _budget_text(budget: float | None, within: bool | None) -> str:
    if budget is None:
        return "no budget (reported only)"
    return f"budget {budget:.2f}  {'within budget' if within else 'OVER budget'}"


def summarize(times: dict[str, list[float]], cpu: dict[str, list[float]]) -> dict:
    rounds = len(times["bare"])
    result: dict = {"cases": {}, "ratios": {}, "cpu_ratios": {}}
    for case in times:
        result["cases"][case] = {
            "median_s": statistics.median(times[case]),
            "min_s": min(times[case]),
            "max_s": max(times[case]),
            "times_s": times[case],
            "cpu_median_s": statistics.median(cpu[case]),
            "cpu_s": cpu[case],
        }
    for case, budget in BUDGETS.items():
        if case not in times:
            continue
        per_round = [times[case][r] / times["bare"][r] for r in range(rounds)]
        headline = statistics.median(per_round)
        result["ratios"][case] = {
            "per_round": per_round,
            "median_of_per_round": headline,
            "ratio_of_medians": result["cases"][case]["median_s"] / result["cases"]["bare"]["median_s"],
            "ratio_of_mins": result["cases"][case]["min_s"] / result["cases"]["bare"]["min_s"],
            "budget": budget,
            "within_budget": None if budget is None else headline <= budget,
        }
        cpu_per_round = [cpu[case][r] / cpu["bare"][r] for r in range(rounds)]
        result["cpu_ratios"][case] = {
            "per_round": cpu_per_round,
            "median_of_per_round": statistics.median(cpu_per_round),
        }
    return result


def print_report(result: dict, meta: dict) -> None:
    print()
    print(
        f"pytest-staging overhead: {meta['tests']} trivial tests, {meta['rounds']} rounds (+1 warm-up), "
        f"python {meta['python']}, pytest {meta['pytest']}, {meta['cpus']} CPUs"
    )
    print(f"common flags: {' '.join(meta['common_flags'])}")
    print()
    print(f"{'case':<8} {'median s':>9} {'min s':>8} {'max s':>8} {'cpu med s':>10}")
    ratio_cases = list(result["ratios"])
    for case in result["cases"]:
        c = result["cases"][case]
        print(f"{case:<8} {c['median_s']:>9.3f} {c['min_s']:>8.3f} {c['max_s']:>8.3f} {c['cpu_median_s']:>10.3f}")
    print()
    print("per-round ratios (case / bare, same round; wall clock, and child CPU user+sys):")
    print(
        f"{'round':<6} "
        + " ".join(f"{case + '/bare':>12}" for case in ratio_cases)
        + " "
        + " ".join(f"{'cpu ' + case:>12}" for case in ratio_cases)
    )
    for r in range(meta["rounds"]):
        print(
            f"{r + 1:<6} "
            + " ".join(f"{result['ratios'][case]['per_round'][r]:>12.4f}" for case in ratio_cases)
            + " "
            + " ".join(f"{result['cpu_ratios'][case]['per_round'][r]:>12.4f}" for case in ratio_cases)
        )
    print()
    print(
        f"{'ratio':<12} {'median/round':>12} {'of medians':>11} {'of mins':>8} {'cpu m/round':>11} {'budget':>7}  verdict"
    )
    for case in ratio_cases:
        r = result["ratios"][case]
        budget = "-" if r["budget"] is None else f"{r['budget']:.2f}"
        verdict = (
            "reported only" if r["within_budget"] is None else "within budget" if r["within_budget"] else "OVER budget"
        )
        print(
            f"{case + '/bare':<12} {r['median_of_per_round']:>12.4f} {r['ratio_of_medians']:>11.4f} "
            f"{r['ratio_of_mins']:>8.4f} {result['cpu_ratios'][case]['median_of_per_round']:>11.4f} "
            f"{budget:>7}  {verdict}"
        )
    print(
        "(headline and verdict: wall-clock median of per-round ratios; cpu m/round: the same for\n"
        " the child's CPU time, user+sys)"
    )


# -- main -----------------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=5000, help="number of trivial tests (default 5000)")
    parser.add_argument("--rounds", type=int, default=7, help="counted rounds (default 7), plus one warm-up")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count each case's instructions once under valgrind (slow: minutes)",
    )
    parser.add_argument(
        "--keep-other-plugins",
        action="store_true",
        help="do not disable the other installed pytest11 plugins (xdist, hypothesis, ...)",
    )
    args = parser.parse_args(argv)
    if args.tests < 1 or args.rounds < 1:
        parser.error("--tests and --rounds must be >= 1")

    # SIGTERM ends the run like Ctrl-C, so the target is stopped and the temp dir removed.
    signal.signal(signal.SIGTERM, _interrupt)

    others = [] if args.keep_other_plugins else other_plugins()
    common = ["-q", "-p", "no:cacheprovider"]
    for name in others:
        common += ["-p", f"no:{name}"]

    cases = CASES
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        print("note: opentelemetry-sdk is not installed: no 'traced' case", file=sys.stderr)
        cases = CASES[:3]

    with tempfile.TemporaryDirectory(prefix="staging-bench-") as tmp:
        env = child_env(Path(tmp) / "pycache")
        suite = Path(tmp) / "suite"
        write_suite(suite, args.tests)
        target = Target(Path(tmp) / "www", Path(tmp) / "target.log")
        try:
            target.start()
            check_plugin_loading(suite, common, env, target.url, others)
            print(f"target {target.url}; suite {suite}; warm-up ...", file=sys.stderr)
            for case in cases:
                run_case(case, suite, common, env, target, args.tests)
            times: dict[str, list[float]] = {case: [] for case in cases}
            cpu: dict[str, list[float]] = {case: [] for case in cases}
            for r in range(args.rounds):
                shift = r % len(cases)
                order = cases[shift:] + cases[:shift]
                line = []
                for case in order:
                    elapsed, used = run_case(case, suite, common, env, target, args.tests)
                    times[case].append(elapsed)
                    cpu[case].append(used)
                    line.append(f"{case} {elapsed:.3f}s (cpu {used:.3f}s)")
                print(f"round {r + 1}/{args.rounds}: " + ", ".join(line), file=sys.stderr)
            instructions = {}
            if args.instructions:
                if shutil.which("valgrind") is None:
                    raise BenchError("--instructions needs valgrind (apt-get install valgrind)")
                print("counting instructions under valgrind (two at a time) ...", file=sys.stderr)
                with ThreadPoolExecutor(max_workers=2) as pool:
                    futures = {
                        case: pool.submit(count_instructions, case, suite, common, env, target) for case in cases
                    }
                    instructions = {case: future.result() for case, future in futures.items()}
        except BenchError as exc:
            print(f"overhead.py: FAILED: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("overhead.py: interrupted", file=sys.stderr)
            return 130
        finally:
            target.stop()

    meta = {
        "tests": args.tests,
        "rounds": args.rounds,
        "python": platform.python_version(),
        "pytest": importlib.metadata.version("pytest"),
        "plugin": importlib.metadata.version("pytest-staging"),
        "cpus": os.cpu_count(),
        "common_flags": common,
        "disabled_plugins": others,
    }
    result = summarize(times, cpu)
    print_report(result, meta)
    if instructions:
        result["instructions"] = instruction_report(instructions)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, **result}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
