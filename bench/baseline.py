"""How long does judging a big baseline take? Goal: 200 metrics x 5,000 samples a side <= 2 s.

Generates a baseline and a current run of M metrics (default 200) with N samples each (default
5,000): latency-like lognormal series, a third of them unchanged, a third shifted by 5% and a
third by 50% (so every branch of the judge runs), and times :func:`pytest_staging.baseline.judge
.judge` on them — the whole comparison as the gate makes it at session end: NaN filtering, the
rank-sum test and Hodges-Lehmann shift with its interval, summaries, scoring. One warm-up call
(numpy's first use), then R timed rounds (default 5); prints each round, the median, and the
median cost per metric. The data are made once, outside the timing, from a fixed seed.

The script checks the results are what the data say (unchanged metrics PASS, 50% shifts do not),
and fails (exit 1) if not. The goal is reported, not asserted: the exit status is 0 either way.

    .venv/bin/python bench/baseline.py [--metrics 200] [--samples 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import numpy as np

from pytest_staging.baseline.judge import MARGINAL, PASS, judge
from pytest_staging.baseline.rules import Rules

GOAL_SECONDS = 2.0


def series(metrics: int, samples: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    rng = np.random.default_rng(20261126)
    baseline, current = {}, {}
    for i in range(metrics):
        name = f"GET /endpoint/{i}"
        factor = (1.0, 1.05, 1.5)[i % 3]
        # Plain lists of floats, as the baseline file and the ledger hand them over.
        baseline[name] = rng.lognormal(2.0, 0.5, samples).tolist()
        current[name] = (rng.lognormal(2.0, 0.5, samples) * factor).tolist()
    return current, baseline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", type=int, default=200)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    current, baseline = series(args.metrics, args.samples)
    rules = Rules()
    result = judge(current, baseline, rules)  # warm-up: numpy's first calls
    by_factor = {
        factor: [
            m["result"]
            for i, m in enumerate(result["metrics"])
            if (1.0, 1.05, 1.5)[int(m["name"].rsplit("/", 1)[1]) % 3] == factor
        ]
        for factor in (1.0, 1.05, 1.5)
    }
    if set(by_factor[1.0]) - {PASS} or set(by_factor[1.5]) - {MARGINAL}:
        print(f"unexpected results: { ({k: sorted(set(v)) for k, v in by_factor.items()}) }", file=sys.stderr)
        return 1

    times = []
    for round_ in range(1, args.rounds + 1):
        started = time.perf_counter()
        judge(current, baseline, rules)
        times.append(time.perf_counter() - started)
        print(f"round {round_}/{args.rounds}: {times[-1]:.3f} s")
    median = statistics.median(times)
    print()
    print(
        f"pytest-staging baseline judge: {args.metrics} metrics x {args.samples:,} samples a side, "
        f"{args.rounds} rounds, python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"results: {result['result']} (score {result['score']}); per metric: "
        + ", ".join(f"x{k}: {sorted(set(v))}" for k, v in by_factor.items())
    )
    print(
        f"median {median:.3f} s (min {min(times):.3f}, max {max(times):.3f}); {median / args.metrics * 1000:.2f} ms per metric"
    )
    verdict = "within" if median <= GOAL_SECONDS else "OVER"
    print(f"goal: <= {GOAL_SECONDS:g} s for 200 x 5,000 -> {verdict} goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
