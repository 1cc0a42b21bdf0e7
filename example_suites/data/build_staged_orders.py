"""Build the example's staged data: an ``orders`` table in ``staging.db`` (SQLite), as an ETL
batch would leave it in the staging area before it is published.

1,000 orders, of which a few are bad in the ways real batches are: a total that is text, a
negative total, an unknown status, a missing customer. ``--broken`` makes a batch the gate must
reject (many bad rows, a duplicated order id, and a load that is three days old).

    python build_staged_orders.py            # a batch within its contract (a few bad rows)
    python build_staged_orders.py --broken   # a batch the gate rejects
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
from pathlib import Path

ROWS = 1000


def build(path: Path, *, broken: bool = False, now: dt.datetime | None = None) -> None:
    now = now or dt.datetime.now(dt.timezone.utc)
    loaded = now - dt.timedelta(days=3 if broken else 0, minutes=5)
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE orders (order_id INTEGER NOT NULL, customer_email TEXT, total NUMERIC, "
            "currency TEXT, status TEXT, updated_at TEXT)"
        )
        rows = [
            (i, f"customer{i}@example.com", round(10 + i * 1.5, 2), "EUR", "paid", loaded.isoformat())
            for i in range(1, ROWS + 1)
        ]
        # A few bad rows, as a real batch has: within the gate's 0.5% budget.
        rows[16] = (17, "customer17@example.com", "12,50", "EUR", "paid", loaded.isoformat())
        rows[41] = (42, "customer42@example.com", -3.0, "EUR", "paid", loaded.isoformat())
        rows[99] = (100, None, 99.0, "EUR", "paid", loaded.isoformat())
        if broken:
            for i in range(200, 260):
                rows[i] = (i + 1, f"customer{i + 1}@example.com", 5.0, "EUR", "lost", loaded.isoformat())
            rows[500] = (500, "customer501@example.com", 5.0, "EUR", "paid", loaded.isoformat())
        db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broken", action="store_true", help="build a batch the gate must reject")
    parser.add_argument("--out", default=str(Path(__file__).parent / "staging.db"), help="the SQLite file")
    args = parser.parse_args()
    build(Path(args.out), broken=args.broken)
    print(f"staged {ROWS} orders in {args.out}" + (" (broken batch)" if args.broken else ""))


if __name__ == "__main__":
    main()
