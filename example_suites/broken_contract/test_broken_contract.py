"""A contract the deployed service no longer meets: run it to see what a failure looks like.

The schema says what a client of /json was written against; the service now answers with a
different shape (here: httpbin as it is). Every mismatch is listed, with its JSON path.
"""

import pytest

pytestmark = pytest.mark.contract

CLIENT_EXPECTS = {
    "type": "object",
    "required": ["slideshow"],
    "properties": {
        "slideshow": {
            "type": "object",
            "required": ["author", "published", "slides"],
            "properties": {
                "author": {"type": "string", "format": "email"},
                "date": {"type": "string", "format": "date"},
                "slides": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["title", "type"],
                        "properties": {
                            "type": {"enum": ["title", "bullets"]},
                            "items": {"type": "array", "maxItems": 1},
                        },
                    },
                },
            },
        }
    },
}


def test_slideshow_contract(staging_http, staging_contract):
    staging_contract.validate(staging_http.get("/json"), CLIENT_EXPECTS)
