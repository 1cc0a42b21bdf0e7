"""The example data gate: the staged ``orders`` batch (build_staged_orders.py) checked before it
is published. See docs/data.md."""

import pytest

#: The row contract of a published order (a JSON Schema, as for staging_contract).
ORDER = {
    "type": "object",
    "required": ["order_id", "total", "currency", "status"],
    "properties": {
        "order_id": {"type": "integer", "minimum": 1},
        "customer_email": {"type": ["string", "null"], "format": "email"},
        "total": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD"]},
        "status": {"enum": ["new", "paid", "shipped", "refunded"]},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}


@pytest.mark.contract
def test_staged_orders_meet_their_contract(staging_data):
    staging_data.expect(
        "orders",
        "orders",
        schema=ORDER,
        max_invalid_ratio=0.005,  # a few bad rows are repaired downstream; more stop the batch
        unique=["order_id"],
        min_rows=500,
        fresh=("updated_at", "24h"),
        key="order_id",
    )


@pytest.mark.contract
def test_paid_orders_have_an_id_and_a_total(staging_data):
    paid = staging_data.expect(
        "orders",
        "SELECT order_id, total FROM orders WHERE status = 'paid'",
        not_null=["order_id", "total"],
        min_rows=1,
    )
    assert paid["rows"] > 0


@pytest.mark.contract
def test_daily_revenue_is_plausible(staging_data):
    [day] = staging_data.query(
        "orders", "SELECT sum(total) AS revenue FROM orders WHERE status = :status", {"status": "paid"}
    )
    assert day["revenue"] > 1000
