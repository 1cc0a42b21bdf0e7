"""Contract tier: the JSON shapes that clients of this service depend on, as schemas in files."""

import pytest

pytestmark = pytest.mark.contract

OPENAPI = "contracts/openapi.json"


def test_json_document_shape(staging_http, staging_contract):
    staging_contract.validate(staging_http.get("/json"), "contracts/slideshow.json")


def test_uuid_from_the_openapi_document(staging_http, staging_contract):
    staging_contract.validate(staging_http.get("/uuid"), openapi=OPENAPI, operation="getUuid", status=200)


def test_headers_carry_the_correlation_id(staging_http, staging_contract):
    staging_contract.validate(staging_http.get("/headers"), openapi=OPENAPI, path="/headers", method="get", status=200)


def test_anything_echoes_method_and_body(staging_http, staging_contract):
    body = {"order": 42, "items": [{"sku": "A-1", "qty": 2}]}
    echoed = staging_contract.validate(staging_http.post("/anything/orders", json=body), "contracts/anything.json")
    assert echoed["json"] == body
    staging_contract.validate(
        staging_http.post("/anything/orders", json=body), openapi=OPENAPI, operation="postAnything"
    )


def test_order_events_data_contract(staging_http, staging_contract):
    """A data contract over a batch: the events a downstream consumer reads."""
    events = [{"order": n, "total": n * 9.5, "currency": "EUR"} for n in range(200)]
    echoed = staging_http.post("/anything/events", json=events).json()["json"]
    schema = {
        "type": "object",
        "required": ["order", "total", "currency"],
        "properties": {
            "order": {"type": "integer"},
            "total": {"type": "number", "minimum": 0},
            "currency": {"enum": ["EUR", "USD"]},
        },
    }
    result = staging_contract.validate_rows(echoed, schema, max_invalid_ratio=0.0)
    assert result.total == 200


@pytest.mark.destructive
def test_delete_order(staging_http):
    """Changes data on the target: never runs where the target is sensitive."""
    assert staging_http.delete("/anything/orders/42").json()["method"] == "DELETE"
