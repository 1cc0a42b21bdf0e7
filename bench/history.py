"""How long does ``pytest-staging history`` take over 10,000 verdicts, and does its memory grow?

Generates N signed verdicts (default 10,000) of 200 tests each in a temporary directory: one
statement is built by the gate's own statement code (``build_statement`` over a ledger), then each
verdict varies it (decision and reasons, environment, time, build time, gate duration, SLIs, a
few flaky tests with a quarantine owner) and is encoded and signed by the gate's own payload and
DSSE code. Then the history command's reader and aggregation (``read_history`` with the public
key: every signature checked; a verified statement is the gate's own bytes, so it is not
schema-checked again) summarise them, in a fresh child
process per size so each peak is its own. Prints the time, and the peak of Python's allocations
(tracemalloc, in a second pass: it slows allocation) for the first 1,000 verdicts and for all of them: streaming means the two peaks are
about the same.

Goal (issue 21): at most 10 s for 10,000 verdicts here. Reported, never asserted: the exit
status is 0 unless a run fails (exit 1).

    .venv/bin/python bench/history.py [--verdicts 10000] [--tests 200]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from verdict import clean_env  # noqa: E402  (the verdict bench's child environment)

GOAL_SECONDS = 10.0

# Run in a child: read and summarise the verdicts under the directories given; time, and tracemalloc's peak.
CHILD = """
import json, sys, time, tracemalloc
from pathlib import Path
from pytest_staging.verdict.dsse import load_public_key
from pytest_staging.verdict.history import read_history
files, pub = json.loads(sys.argv[1]), sys.argv[2]
key = load_public_key(Path(pub).read_bytes(), pub)
read_history([str(next(Path(files[0]).rglob("*.intoto.json")))], [key])  # imports, schema and validator made once: not what grows
started = time.perf_counter()
read = read_history(files, [key])
seconds = time.perf_counter() - started
del read
tracemalloc.start()  # a second pass for the memory: tracemalloc slows allocation two- to threefold
read = read_history(files, [key])
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"seconds": seconds, "peak": peak, "runs": read.history.overall.runs,
                  "unverified": len(read.unverified), "unreadable": len(read.unreadable)}))
"""


def make_verdicts(root: Path, count: int, tests: int, seed: int = 21) -> tuple[list[Path], Path]:
    """``count`` signed verdicts of ``tests`` tests each under ``root``; returns them and the public key."""
    import pytest  # noqa: F401  (a gate's verdict names the pytest its tests ran under)

    from pytest_staging.cli import main as cli
    from pytest_staging.core.decide import Policy, decide
    from pytest_staging.core.ledger import Attempt, Ledger, TestRecord
    from pytest_staging.verdict import dsse
    from pytest_staging.verdict.files import envelope_bytes
    from pytest_staging.verdict.statement import Subject, build_statement, iso, payload_bytes

    with contextlib.redirect_stdout(io.StringIO()):
        cli(["keygen", "--out", str(root / "bench")])
    key = dsse.load_private_key((root / "bench.key").read_bytes(), "bench.key")
    tiers = ("smoke", "contract", "load")
    ledger = Ledger(collected_tiers=set(tiers))
    for i in range(tests):
        nodeid = f"tests/test_{i // 20:02d}.py::test_{i}"
        record = ledger.records[nodeid] = TestRecord(nodeid, tiers[i % 3], outcome="passed", duration=0.01)
        record.correlation_id  # noqa: B018  (a test that talked to the target has one)
        record.attempts.append(Attempt("passed", 0.01))
    ledger.session.started, ledger.session.finished = 1.7e9, 1.7e9 + 60
    policy = Policy(required_tiers=tiers)
    base = build_statement(
        ledger=ledger,
        decision=decide(ledger, policy),
        policy={"allowDeselection": False, "selection": {"args": [], "keyword": None, "markexpr": None}},
        required=tiers,
        target={"name": "bench", "url": "http://127.0.0.1", "environment": "staging", "sensitive": False},
        release={"id": "1.0", "deployedVersion": None, "probe": None, "buildTime": None},
        subjects=(Subject("bench", "0" * 64),),
        time_verified=1.7e9,
    )
    predicate = base["predicate"]
    records = predicate["tests"]
    owner = {"reason": "flaky upstream", "owner": "team-payments", "until": "2099-01-01", "status": "active"}
    rng = random.Random(seed)
    now = time.time()
    reasons = {
        "HOLD": [{"code": "tests-deselected", "text": "3 tests deselected"}],
        "REJECT": [{"code": "test-failed", "text": "a blocking test failed"}],
        "PROMOTE": predicate["reasons"],  # what decide() says of a PROMOTE
    }
    paths = []
    for index in range(count):
        decision = rng.choices(("PROMOTE", "HOLD", "REJECT"), (8, 1, 1))[0]
        verified = now - (count - index) * 60.0
        flaky = set(rng.sample(range(tests), 2)) if rng.random() < 0.3 else set()
        tests_now = [
            {**record, "flaky": True, "quarantine": {**owner, "test": record["nodeid"]}} if i in flaky else record
            for i, record in enumerate(records)
        ]
        duration = rng.uniform(20, 200)
        statement = {
            **base,
            "predicate": {
                **predicate,
                "decision": decision,
                "verificationResult": "PASSED" if decision == "PROMOTE" else "FAILED",
                "reasons": reasons[decision],
                "reasonCodes": [reason["code"] for reason in reasons[decision]],
                "timeVerified": iso(verified),
                "release": {
                    **predicate["release"],
                    "id": f"1.{index}",
                    "buildTime": iso(verified - rng.uniform(600, 7200)),
                },
                "target": {**predicate["target"], "environment": ("staging", "staging-eu")[index % 2]},
                "tests": tests_now,
                "flaky": [test for test in tests_now if test.get("flaky")],
                "sli": {"validationPassRate": rng.uniform(0.9, 1.0), "flakinessRate": round(len(flaky) / tests, 6)},
                "session": {
                    **predicate["session"],
                    "durationSeconds": duration,
                    "start": iso(verified - duration),
                    "end": iso(verified),
                },
            },
        }
        data = envelope_bytes(dsse.envelope(payload_bytes(statement), key), base64_payload=True)
        path = root / f"verdicts/{index // 1000:02d}/run-{index:05d}.intoto.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)  # no fsync: these are throw-away files
        paths.append(path)
    return paths, root / "bench.pub"


def summarise(directories: list[Path], count: int, pub: Path) -> dict[str, float]:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps([str(d) for d in directories]), str(pub)],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    if child.returncode != 0:
        raise SystemExit(f"history failed: {child.stdout}{child.stderr}")
    result = json.loads(child.stdout)
    if result["runs"] != count or result["unverified"] or result["unreadable"]:
        raise SystemExit(f"history did not count every verdict: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verdicts", type=int, default=10_000)
    parser.add_argument("--tests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        started = time.perf_counter()
        files, pub = make_verdicts(root, args.verdicts, args.tests)
        size = sum(f.stat().st_size for f in files) / 1e6
        print(
            f"made {len(files)} verdicts of {args.tests} tests ({size:.0f} MB) in {time.perf_counter() - started:.1f} s"
        )
        # The first 1,000 are in verdicts/00; all of them under verdicts/.
        sizes = sorted({min(1_000, len(files)), len(files)})
        results = {n: summarise([root / ("verdicts/00" if n < len(files) else "verdicts")], n, pub) for n in sizes}
        for n, result in results.items():
            print(
                f"history over {n:>6} verdicts: {result['seconds']:.2f} s "
                f"({result['seconds'] / n * 1e3:.2f} ms a verdict), peak {result['peak'] / 1e6:.1f} MB (tracemalloc)"
            )
        small, large = results[sizes[0]], results[sizes[-1]]
        print(
            f"peak at {sizes[-1]} / peak at {sizes[0]}: {large['peak'] / small['peak']:.2f}x "
            f"(streaming: near 1; what grows is 2 floats a run)"
        )
        verdict = "within" if large["seconds"] <= GOAL_SECONDS else "OVER"
        print(f"goal: {sizes[-1]} verdicts in at most {GOAL_SECONDS:g} s: {large['seconds']:.2f} s, {verdict}")


if __name__ == "__main__":
    main()
