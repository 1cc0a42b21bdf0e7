"""How long do ``pytest-staging merge`` and a sharded run take?

1. Merge: 50 partial verdicts of 2,000 tests each (100,000 records), made by the gate's own
   statement code and signed, merged by ``pytest-staging merge`` in a fresh child process (read,
   verify and schema-check every partial, decide over the union, sign, write). Prints the
   command's time (measured inside the child: ``main()``), its peak memory (the child's maximum
   resident set) and the merged verdict's size. Goal (issue 18): at most 5 s and 500 MB here.
2. Wall time: a suite of N tests that each wait on a local HTTP target (default 150 tests of
   20 ms), run as 3 shards in parallel processes (as 3 CI jobs would) against one unsharded run of
   the same suite, interleaved (unsharded, sharded, unsharded, ...) so a slow moment of the
   shared machine hits both alike. Prints the medians and the median ratio sharded / unsharded.
   Here the three shards share one machine's cores (three CI jobs would have a machine each),
   and each shard starts its own interpreter and collects the whole suite: the ratio is an upper
   bound of what sharding costs, not what it saves.

Reported, never asserted: the exit status is 0 unless a run fails (exit 1).

    .venv/bin/python bench/merge.py [--partials 50] [--tests 2000] [--suite 150] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from verdict import clean_env, free_port  # noqa: E402  (the verdict bench's child environment)

GOAL_SECONDS, GOAL_MB = 5.0, 500

# Run in the merging child: time main() from inside; the peak RSS is read by the parent.
CHILD = """
import contextlib, io, json, resource, sys, time
from pytest_staging.cli import main
with contextlib.redirect_stdout(io.StringIO()) as printed:
    started = time.perf_counter()
    code = main(json.loads(sys.argv[1]))
    seconds = time.perf_counter() - started
print(json.dumps({"code": code, "seconds": seconds, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "printed": printed.getvalue()}))
"""


def make_partials(root: Path, partials: int, tests: int) -> tuple[list[Path], Path, Path]:
    """``partials`` signed partial verdicts of ``tests`` passing tests each, one per shard of one run."""
    import pytest  # noqa: F401  (a gate's verdict names the pytest its tests ran under)

    from pytest_staging.cli import main as cli
    from pytest_staging.core.decide import Policy, decide
    from pytest_staging.core.ledger import Attempt, Ledger, TestRecord
    from pytest_staging.core.shards import Shard, collection_digest
    from pytest_staging.verdict.dsse import load_private_key
    from pytest_staging.verdict.issue import issue
    from pytest_staging.verdict.statement import Subject

    with contextlib.redirect_stdout(io.StringIO()):
        cli(["keygen", "--out", str(root / "bench")])
    key = load_private_key((root / "bench.key").read_bytes(), "bench.key")
    tiers = ("smoke", "contract", "load")
    total = partials * tests
    nodeids = [f"tests/test_{i // 100:04d}.py::test_{i}" for i in range(total)]
    digest = collection_digest(nodeids)
    policy = Policy(required_tiers=tiers)
    fields = {"allowDeselection": False, "selection": {"args": [], "keyword": None, "markexpr": None}}
    paths = []
    for number in range(1, partials + 1):
        ledger = Ledger(collected_tiers=set(tiers))
        for position in range(number - 1, total, partials):
            nodeid = nodeids[position]
            record = ledger.records[nodeid] = TestRecord(nodeid, tiers[position % 3], outcome="passed", duration=0.01)
            record.correlation_id  # noqa: B018  (a test that talked to the target has one)
            record.attempts.append(Attempt("passed", 0.01))
        ledger.shard = Shard(number, partials, total, digest)
        ledger.session.started, ledger.session.finished = time.time() - 60, time.time()
        path = root / f"shard-{number}.intoto.json"
        issue(
            path=path,
            ledger=ledger,
            decision=decide(ledger, policy),
            policy=policy,
            policy_fields=fields,
            target={"name": "bench", "url": "http://127.0.0.1", "environment": "bench", "sensitive": False},
            release={"id": "1.0", "deployedVersion": None, "probe": None},
            subjects=(Subject("bench", "0" * 64),),
            signing_key=key,
            now=time.time(),
            scrub=None,
        )
        paths.append(path)
    return paths, root / "bench.pub", root / "bench.key"


def bench_merge(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        made = time.perf_counter()
        paths, pub, key = make_partials(root, args.partials, args.tests)
        print(
            f"made {len(paths)} partials of {args.tests} tests ({sum(p.stat().st_size for p in paths) / 1e6:.1f} MB) "
            f"in {time.perf_counter() - made:.1f} s"
        )
        out = root / "merged.intoto.json"
        argv = ["merge", *map(str, paths), "--key", str(pub), "--signing-key", str(key), "--out", str(out)]
        times, memory = [], []
        for _ in range(args.merges):
            child = subprocess.run(
                [sys.executable, "-c", CHILD, json.dumps(argv)], capture_output=True, text=True, env=clean_env()
            )
            if child.returncode != 0:
                raise SystemExit(f"the merge failed: {child.stdout}{child.stderr}")
            result = json.loads(child.stdout)
            if result["code"] != 0:
                raise SystemExit(
                    f"the merge did not PROMOTE (exit {result['code']}):\n{result['printed']}{child.stderr}"
                )
            times.append(result["seconds"])
            memory.append(result["maxrss_kb"] / 1024)
        verified = subprocess.run(
            [sys.executable, "-m", "pytest_staging", "verify", str(out), "--key", str(pub)],
            capture_output=True,
            text=True,
            env=clean_env(),
        )
        if verified.returncode != 0:
            raise SystemExit(f"the merged verdict did not verify: {verified.stderr}")
        seconds, peak = statistics.median(times), max(memory)
        print(
            f"merge of {args.partials} x {args.tests} = {args.partials * args.tests:,} records: "
            f"median {seconds:.2f} s of {args.merges} (goal <= {GOAL_SECONDS:g} s), "
            f"peak memory {peak:.0f} MB (goal <= {GOAL_MB} MB), merged verdict {out.stat().st_size / 1e6:.1f} MB"
        )


def write_suite(root: Path, tests: int, wait_ms: int) -> None:
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_wait.py").write_text(
        "import pytest\n\n"
        f"@pytest.mark.parametrize('n', range({tests}))\n"
        "def test_wait(staging_http, n):\n"
        f"    assert staging_http.get('/wait?ms={wait_ms}').ok\n"
    )


#: A local target whose /wait?ms=N answers after N ms (threaded: the shards' requests overlap).
SERVER = """
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

class Wait(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(int(parse_qs(urlsplit(self.path).query).get("ms", ["0"])[0]) / 1000)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Wait).serve_forever()
"""


def timed_runs(root: Path, url: str, shards: int) -> float:
    """Wall time of the suite as ``shards`` shards run at once (0: one unsharded run)."""
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--staging-target={url}"]
    runs = [[*base, f"--staging-verdict=shard-{k}.json", f"--staging-shard={k}/{shards}"] for k in range(1, shards + 1)]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(argv, cwd=root, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for argv in (runs or [[*base, "--staging-verdict=whole.json"]])
    ]
    outputs = [process.communicate()[0] for process in processes]
    wall = time.perf_counter() - started
    for process, output in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            raise SystemExit(f"a run failed (exit {process.returncode}):\n{output[-3000:]}")
    return wall


def bench_wall(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        write_suite(root, args.suite, args.wait_ms)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
        try:
            time.sleep(0.5)  # the server binds at once; a first run retries connection errors anyway
            url = f"http://127.0.0.1:{port}"
            whole, sharded = [], []
            for _ in range(args.rounds):
                whole.append(timed_runs(root, url, 0))
                sharded.append(timed_runs(root, url, 3))
        finally:
            server.terminate()
            server.wait()
    ratios = [s / w for s, w in zip(sharded, whole, strict=True)]
    print(
        f"{args.suite} tests of {args.wait_ms} ms, {args.rounds} rounds: unsharded median {statistics.median(whole):.2f} s, "
        f"3 shards in parallel median {statistics.median(sharded):.2f} s; "
        f"ratio sharded / unsharded median {statistics.median(ratios):.2f} (the shards share this machine's cores; "
        "each starts its own interpreter and collects the whole suite)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partials", type=int, default=50)
    parser.add_argument("--tests", type=int, default=2000, help="tests per partial (default 2000)")
    parser.add_argument("--merges", type=int, default=3, help="merges timed (default 3)")
    parser.add_argument("--suite", type=int, default=300, help="tests of the wall-time suite (default 300)")
    parser.add_argument("--wait-ms", type=int, default=20, help="each test's wait on the target (default 20 ms)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved wall-time rounds (default 5)")
    args = parser.parse_args()
    bench_merge(args)
    bench_wall(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
