"""What does ``staging_contract.validate`` cost over a bare, pre-compiled jsonschema validator?

Validates N objects (default 10,000 order-like documents) against one schema, once through the
``staging_contract`` object (cache lookup, the ledger count, the same format checking) and once
through a ``Draft202012Validator`` compiled beforehand calling ``.validate(obj)``, in interleaved
rounds; prints the median of per-round ratios. Budget (issue 5): at most 1.2x.

    .venv/bin/python bench/contract.py [--objects 10000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from jsonschema import Draft202012Validator

from pytest_staging.core.ledger import TestRecord
from pytest_staging.fixtures.contract import Contract

BUDGET = 1.2
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "customer", "items", "total", "currency", "placed"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "customer": {
            "type": "object",
            "required": ["email"],
            "properties": {"email": {"type": "string", "format": "email"}},
        },
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["sku", "qty", "price"],
                "properties": {
                    "sku": {"type": "string", "pattern": "^[A-Z]-[0-9]+$"},
                    "qty": {"type": "integer", "minimum": 1},
                    "price": {"type": "number"},
                },
            },
        },
        "total": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD", "GBP"]},
        "placed": {"type": "string", "format": "date-time"},
    },
}


def objects(count: int) -> list[dict]:
    return [
        {
            "id": n + 1,
            "customer": {"email": f"user{n}@example.com"},
            "items": [{"sku": f"A-{n % 97}", "qty": 1 + n % 3, "price": 9.5}, {"sku": "B-1", "qty": 2, "price": 1.25}],
            "total": 12.0 + n,
            "currency": ("EUR", "USD", "GBP")[n % 3],
            "placed": "2026-11-26T10:00:00Z",
        }
        for n in range(count)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    data = objects(args.objects)
    bare = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    record = TestRecord("bench::test", "contract")
    contract = Contract(Path("."), lambda: record)
    contract.validate(data[0], SCHEMA)  # compile once, as the first call of a session does

    def run_bare() -> float:
        started = time.perf_counter()
        for obj in data:
            bare.validate(obj)
        return time.perf_counter() - started

    def run_ours() -> float:
        started = time.perf_counter()
        for obj in data:
            contract.validate(obj, SCHEMA)
        return time.perf_counter() - started

    run_bare(), run_ours()  # warm-up
    ratios, bare_times, our_times = [], [], []
    for number in range(args.rounds):
        first, second = (run_bare, run_ours) if number % 2 == 0 else (run_ours, run_bare)
        a, b = first(), second()
        t_bare, t_ours = (a, b) if first is run_bare else (b, a)
        bare_times.append(t_bare)
        our_times.append(t_ours)
        ratios.append(t_ours / t_bare)
    median = statistics.median(ratios)
    print(f"{args.objects} objects, {args.rounds} interleaved rounds")
    print(f"bare pre-compiled validator: median {statistics.median(bare_times) * 1000:.1f} ms")
    print(f"staging_contract.validate:   median {statistics.median(our_times) * 1000:.1f} ms")
    print(f"ratio (median of per-round ratios): {median:.3f}   min {min(ratios):.3f}   max {max(ratios):.3f}")
    print(f"budget {BUDGET}x: {'within budget' if median <= BUDGET else 'OVER budget'}")
    # Every call was counted in the ledger record: the measured path is the real one.
    assert record.validations == 1 + (args.rounds + 1) * args.objects, record.validations
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
