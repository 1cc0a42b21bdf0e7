"""What does ``staging_data.expect()`` cost over a bare loop of the same validator, and does its
memory stay flat?

N rows of a 6-column ``orders`` table (default 10 million) are streamed from a throwaway
PostgreSQL cluster (tests/pg_cluster.py) and from a SQLite file, and checked against a 6-column
JSON Schema: once through ``expect()`` (the fixture's object, the contract tier's compiled
validator), once by a bare loop of that same pre-compiled validator's ``is_valid`` over the same
streamed cursor (``stream_results``, the same chunk size, rows as dicts). Each run is a process
of its own, so its peak RSS is its own; the two kinds alternate, and the medians are printed.
Goals (issue 23): rows/s within 1.2x of the bare loop; peak memory at most 200 MB and flat from
1M to 10M rows.

    .venv/bin/python bench/data.py [--rows 10000000] [--repeats 3] [--backend postgresql,sqlite]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 1.2
MEMORY_MB = 200
SCHEMA = {
    "type": "object",
    "required": ["order_id", "customer", "total", "currency", "status", "placed"],
    "properties": {
        "order_id": {"type": "integer", "minimum": 1},
        "customer": {"type": "string", "minLength": 3},
        "total": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD"]},
        "status": {"enum": ["new", "paid", "shipped"]},
        "placed": {"type": "string", "format": "date-time"},
    },
}
#: One bad row in a thousand: within the 0.2% the expectation allows.
TABLE = "orders"


def populate(url: str, rows: int) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        db.execute(
            text(
                f"CREATE TABLE {TABLE} (order_id INTEGER PRIMARY KEY, customer TEXT, total NUMERIC, "
                "currency TEXT, status TEXT, placed TEXT)"
            )
        )
        if url.startswith("sqlite"):
            series = f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows}) SELECT i FROM s"
            money = "(i % 1000) * 1.5 - CASE WHEN i % 1000 = 0 THEN 10 ELSE 0 END"
            db.execute(
                text(
                    f"INSERT INTO {TABLE} {series.replace('SELECT i FROM s', '')} SELECT i, 'customer' || i, {money}, "
                    "CASE WHEN i % 2 = 0 THEN 'EUR' ELSE 'USD' END, 'paid', '2024-05-01T10:00:00Z' FROM s"
                )
            )
        else:
            db.execute(
                text(
                    f"INSERT INTO {TABLE} SELECT i, 'customer' || i, (i % 1000) * 1.5 - CASE WHEN i % 1000 = 0 THEN 10 "
                    "ELSE 0 END, CASE WHEN i % 2 = 0 THEN 'EUR' ELSE 'USD' END, 'paid', '2024-05-01T10:00:00Z' "
                    f"FROM generate_series(1, {rows}) AS i"
                )
            )
    engine.dispose()


def child(kind: str, url: str, rows: int) -> None:
    """One measured run, in this process: prints rows, seconds, peak RSS (MB) as JSON."""
    from pytest_staging.core.redact import Scrubber
    from pytest_staging.core.targets import Target
    from pytest_staging.fixtures.contract import Contract
    from pytest_staging.fixtures.data import CHUNK, StagingData

    contract = Contract(ROOT)
    data = StagingData(Target("bench", "http://bench", databases={"db": url}), ROOT, contract, lambda: None, Scrubber())
    validator = contract.row_contract(SCHEMA).validator
    sql = f"SELECT * FROM {TABLE} WHERE order_id <= {rows}"
    start = time.perf_counter()
    if kind == "expect":
        result = data.expect("db", sql, schema=SCHEMA, max_invalid_ratio=0.002)
        scanned, invalid = result["rows"], result["invalid"]
    else:
        from sqlalchemy import text

        engine = data._engine("db")  # the same engine and URL handling as expect()
        scanned = invalid = 0
        with engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=CHUNK).execute(text(sql))
            columns = list(result.keys())
            is_valid = validator.is_valid
            for row in result:
                scanned += 1
                if not is_valid(dict(zip(columns, row, strict=False))):
                    invalid += 1
    seconds = time.perf_counter() - start
    data.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": scanned, "invalid": invalid, "seconds": seconds, "peak_mb": peak}))


def measure(kind: str, url: str, rows: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--rows", str(rows)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(name: str, url: str, rows: int, repeats: int) -> None:
    runs: dict[str, list[dict]] = {"bare": [], "expect": []}
    for _ in range(repeats):
        for kind in ("bare", "expect"):  # interleaved: a slow moment of the machine hits both
            runs[kind].append(measure(kind, url, rows))
    assert runs["bare"][0]["invalid"] == runs["expect"][0]["invalid"], "both must find the same invalid rows"
    rate = {kind: statistics.median(r["rows"] / r["seconds"] for r in found) for kind, found in runs.items()}
    peak = {kind: statistics.median(r["peak_mb"] for r in found) for kind, found in runs.items()}
    ratio = rate["bare"] / rate["expect"]
    print(
        f"{name}: {rows:,} rows ({runs['expect'][0]['invalid']:,} invalid), medians of {repeats}: "
        f"bare loop {rate['bare']:,.0f} rows/s, expect() {rate['expect']:,.0f} rows/s -> {ratio:.3f}x "
        f"(goal <= {BUDGET}x: {'met' if ratio <= BUDGET else 'MISSED'}); peak RSS bare {peak['bare']:.0f} MB, "
        f"expect() {peak['expect']:.0f} MB (goal <= {MEMORY_MB} MB: {'met' if peak['expect'] <= MEMORY_MB else 'MISSED'})"
    )
    small = max(rows // 10, 1)
    flat = measure("expect", url, small)
    print(
        f"{name}: expect() peak RSS at {small:,} rows {flat['peak_mb']:.0f} MB, at {rows:,} rows {peak['expect']:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", default="postgresql,sqlite")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.rows)
        return
    backends = args.backend.split(",")
    with tempfile.TemporaryDirectory() as scratch:
        if "sqlite" in backends:
            url = f"sqlite:///{scratch}/bench.db"
            populate(url, args.rows)
            compare("SQLite", url, args.rows, args.repeats)
        if "postgresql" in backends:
            sys.path.insert(0, str(ROOT / "tests"))
            import pg_cluster

            bin_dir = pg_cluster.binaries()
            if bin_dir is None:
                sys.exit("PostgreSQL is not installed (Debian: apt-get install postgresql)")
            cluster = pg_cluster.Cluster.start(bin_dir)
            try:
                url = cluster.url()
                populate(url, args.rows)
                compare("PostgreSQL", url, args.rows, args.repeats)
            finally:
                cluster.stop()


if __name__ == "__main__":
    main()
