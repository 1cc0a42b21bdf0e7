"""Contract tier: the JSON shapes that clients of this service depend on."""

import uuid

import pytest

pytestmark = pytest.mark.contract


def test_json_document_shape(staging_http):
    slideshow = staging_http.get("/json").json()["slideshow"]
    assert {"author", "date", "slides", "title"} <= set(slideshow)
    for slide in slideshow["slides"]:
        assert isinstance(slide["title"], str)
        assert slide["type"] in {"all", "title"}


def test_uuid_is_a_uuid(staging_http):
    value = staging_http.get("/uuid").json()["uuid"]
    assert uuid.UUID(value).version == 4


def test_anything_echoes_method_and_body(staging_http):
    body = {"order": 42, "items": [{"sku": "A-1", "qty": 2}]}
    echoed = staging_http.post("/anything/orders", json=body).json()
    assert echoed["method"] == "POST"
    assert echoed["json"] == body
    assert echoed["url"].endswith("/anything/orders")


@pytest.mark.destructive
def test_delete_order(staging_http):
    """Changes data on the target: never runs where the target is sensitive."""
    assert staging_http.delete("/anything/orders/42").json()["method"] == "DELETE"
