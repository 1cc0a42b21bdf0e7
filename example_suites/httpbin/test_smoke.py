"""Smoke tier: is the deployment up and answering the way clients rely on?"""

import pytest

pytestmark = pytest.mark.smoke


def test_service_answers(staging_http):
    response = staging_http.get("/get")
    assert response.status_code == 200


@pytest.mark.parametrize("status", [200, 204, 404, 418, 503])
def test_status_codes_pass_through(staging_http, status):
    assert staging_http.get(f"/status/{status}").status_code == status


def test_request_headers_are_echoed(staging_http):
    response = staging_http.get("/headers", headers={"X-Demo": "yes"})
    headers = response.json()["headers"]
    assert headers["X-Demo"] == "yes"
    # Every request of a test carries that test's correlation id.
    assert len(headers["X-Correlation-Id"]) == 32


def test_target_identity(staging_target):
    assert staging_target.url.startswith("http://127.0.0.1:")
    assert staging_target.name
