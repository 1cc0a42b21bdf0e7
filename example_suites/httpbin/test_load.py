"""Load tier: runs last, after smoke and contract passed; thresholds as k6 writes them."""

import pytest

pytestmark = pytest.mark.load


def test_browsing_load_meets_the_latency_and_error_budget(staging_load):
    result = staging_load.run(
        "locustfile.py",
        users=10,
        spawn_rate=10,
        duration=5,
        thresholds=[
            "p(95) < 500",
            "p(99) < 1000",
            "rate(failures) < 0.01",
            "rps > 50",
            "p(95){name:/json} < 400",
        ],
    )
    # Thresholds already failed the test if breached; what else the result offers:
    assert result.endpoints["/json"].requests > result.endpoints["/post"].requests
