"""staging_contract: every schema source, drafts, $ref across files, OpenAPI 3.0/3.1, all violations."""

from __future__ import annotations

import base64
import json

import pytest

pytestmark = pytest.mark.usefixtures("staging_env")

PET = {
    "type": "object",
    "required": ["id", "name", "tags"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string", "minLength": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
        "email": {"type": "string", "format": "email"},
    },
}


def run(pytester, httpbin_url, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_contracts=source)
    return pytester.runpytest(f"--staging-target={httpbin_url}", "-p", "no:randomly", *args)


def verdict(pytester) -> dict:
    envelope = json.loads((pytester.path / "staging-verdict.intoto.json").read_text())
    return json.loads(base64.b64decode(envelope["payload"]))["predicate"]


def test_dict_schema_lists_every_violation_with_paths(pytester, httpbin_url):
    result = run(
        pytester,
        httpbin_url,
        f"""
        PET = {PET!r}

        def test_good(staging_contract):
            assert staging_contract.validate({{"id": 1, "name": "Rex", "tags": ["a"]}}, PET)["id"] == 1

        def test_bad(staging_contract):
            staging_contract.validate({{"id": "1", "name": "", "tags": ["a", 3], "email": "nope"}}, PET)
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E   *ContractError: contract violated: 4 violations of schema (draft2020-12):",
            "E         $.email: format: 'nope' is not a 'email'",
            "E         $.id: type: '1' is not of type 'integer'",
            "E         $.name: minLength: '' should be non-empty",
            "E         $.tags[1]: type: 3 is not of type 'string'",
        ]
    )
    predicate = verdict(pytester)
    assert predicate["sli"]["validationPassRate"] == 0.5
    by_name = {t["nodeid"].split("::")[1]: t for t in predicate["tests"]}
    assert by_name["test_bad"]["validations"] == {"passed": 0, "failed": 1}


@pytest.mark.parametrize(
    ("dialect", "schema", "instance", "valid"),
    [
        # exclusiveMaximum: a boolean modifier in draft-04, a number from draft-06 on.
        ("http://json-schema.org/draft-04/schema#", {"maximum": 5, "exclusiveMaximum": True}, 5, False),
        ("http://json-schema.org/draft-07/schema#", {"exclusiveMaximum": 5}, 5, False),
        ("http://json-schema.org/draft-07/schema#", {"exclusiveMaximum": 5}, 4, True),
        # prefixItems exists in 2020-12 only; 2019-09 ignores it.
        ("https://json-schema.org/draft/2019-09/schema", {"prefixItems": [{"type": "string"}]}, [1], True),
        ("https://json-schema.org/draft/2020-12/schema", {"prefixItems": [{"type": "string"}]}, [1], False),
    ],
)
def test_the_draft_comes_from_dollar_schema(pytester, httpbin_url, dialect, schema, instance, valid):
    schema = {"$schema": dialect, **schema}
    result = run(
        pytester,
        httpbin_url,
        f"""
        def test_it(staging_contract):
            staging_contract.validate({instance!r}, {schema!r})
        """,
    )
    result.assert_outcomes(**({"passed": 1} if valid else {"failed": 1}))


def test_schema_files_json_and_yaml_with_refs_across_files(pytester, httpbin_url):
    pytester.mkdir("schemas")
    pytester.path.joinpath("schemas", "common.json").write_text(
        json.dumps({"$defs": {"url": {"type": "string", "format": "uri"}}})
    )
    pytester.path.joinpath("schemas", "echo.json").write_text(
        json.dumps({"type": "object", "required": ["url"], "properties": {"url": {"$ref": "common.json#/$defs/url"}}})
    )
    pytester.path.joinpath("schemas", "echo.yaml").write_text(
        "type: object\nrequired: [url, method]\nproperties:\n  url: {$ref: 'common.json#/$defs/url'}\n  method: {const: GET}\n"
    )
    pytester.path.joinpath("schemas", "strict.json").write_text(
        json.dumps({"type": "object", "properties": {"url": {"$ref": "common.json#/$defs/url"}}, "required": ["nope"]})
    )
    result = run(
        pytester,
        httpbin_url,
        """
        def test_json_file(staging_http, staging_contract):
            staging_contract.validate(staging_http.get("/anything"), "schemas/echo.json")

        def test_yaml_file(staging_http, staging_contract):
            staging_contract.validate(staging_http.get("/anything"), "schemas/echo.yaml")

        def test_ref_target_is_checked(staging_contract):
            staging_contract.validate({"url": 12}, "schemas/echo.json")

        def test_missing_field(staging_http, staging_contract):
            staging_contract.validate(staging_http.get("/anything"), "schemas/strict.json")
        """,
    )
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["E         $.url: type: 12 is not of type 'string'"])
    result.stdout.fnmatch_lines(
        ["*contract violated: 1 violation of schemas/strict.json (draft2020-12) in GET /anything response:"]
    )


OPENAPI_30 = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/anything/pets/{id}": {
            "get": {
                "operationId": "getPet",
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Echo"}}},
                    }
                },
            }
        }
    },
    "components": {
        "schemas": {
            "Echo": {
                "type": "object",
                "required": ["json", "method"],
                "properties": {"json": {"$ref": "#/components/schemas/Pet"}, "method": {"type": "string"}},
            },
            "Pet": {"type": "object", "nullable": True, "properties": {"name": {"type": "string", "nullable": True}}},
        }
    },
}


@pytest.mark.parametrize("version", ["3.0.3", "3.1.0"])
def test_openapi_response_schema_and_nullable(pytester, httpbin_url, version):
    document = json.loads(json.dumps(OPENAPI_30))
    document["openapi"] = version
    if version.startswith("3.1"):  # 3.1 is plain JSON Schema: null is a type
        pet = document["components"]["schemas"]["Pet"]
        pet.pop("nullable")
        pet["type"] = ["object", "null"]
        pet["properties"]["name"] = {"type": ["string", "null"]}
    pytester.path.joinpath("openapi.json").write_text(json.dumps(document))
    result = run(
        pytester,
        httpbin_url,
        """
        def test_null_body(staging_http, staging_contract):
            # json is null (no body): allowed because Pet is nullable
            staging_contract.validate(staging_http.get("/anything/pets/1"), openapi="openapi.json", operation="getPet", status=200)

        def test_null_name(staging_http, staging_contract):
            response = staging_http.request("GET", "/anything/pets/1", json={"name": None})
            staging_contract.validate(response, openapi="openapi.json", path="/anything/pets/{id}", method="GET", status=200)

        def test_wrong_type(staging_http, staging_contract):
            response = staging_http.request("GET", "/anything/pets/1", json={"name": 7})
            staging_contract.validate(response, openapi="openapi.json", operation="getPet")
        """,
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["E         $.json.name: type: 7 is not of type *"])


def test_status_and_content_type_mismatches(pytester, httpbin_url):
    pytester.path.joinpath("openapi.json").write_text(json.dumps(OPENAPI_30))
    result = run(
        pytester,
        httpbin_url,
        """
        PET = {"type": "object"}

        def test_status(staging_http, staging_contract):
            staging_contract.validate(staging_http.get("/status/404"), PET, status=200)

        def test_undocumented_status_and_type(staging_http, staging_contract):
            response = staging_http.get("/html")
            response.request.url = response.request.url  # a real requests.Response from httpbin
            staging_contract.validate(response, openapi="openapi.json", operation="getPet")
        """,
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["E         $: status 404, the contract expects 200"])
    result.stdout.fnmatch_lines(
        [
            "E         $: Content-Type 'text/html', the contract says application/json",
            "E         $: the body is not JSON: *",
        ]
    )


def test_validate_rows_under_and_over_the_limit(pytester, httpbin_url):
    result = run(
        pytester,
        httpbin_url,
        """
        ROW = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}
        ROWS = [{"id": n} for n in range(999)] + [{"id": "x"}]

        def test_under(staging_contract):
            result = staging_contract.validate_rows(ROWS, ROW, max_invalid_ratio=0.001)
            assert (result.total, result.invalid, result.ok) == (1000, 1, True)

        def test_over(staging_contract):
            staging_contract.validate_rows(ROWS + [{}, {"id": 1.5}], ROW, max_invalid_ratio=0.001)
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E   *ContractError: data contract schema (draft2020-12): 3 of 1002 rows invalid (0.2994%), over the limit of 0.1000%",
            "E         row 999:",
            "E           $.id: type: 'x' is not of type 'integer'",
            "E         row 1000:",
            "E           $: required: 'id' is a required property",
        ]
    )
    tests = {t["nodeid"].split("::")[1]: t for t in verdict(pytester)["tests"]}
    assert tests["test_under"]["dataContracts"][0] == {
        "schema": "schema (draft2020-12)",
        "rows": 1000,
        "invalid": 1,
        "ratio": 0.001,
        "maxInvalidRatio": 0.001,
        "ok": True,
    }
    assert tests["test_over"]["dataContracts"][0]["ok"] is False


def test_validators_are_compiled_once(pytester, httpbin_url):
    result = run(
        pytester,
        httpbin_url,
        """
        from jsonschema.validators import Draft202012Validator

        def test_cache(staging_contract, monkeypatch):
            schema = {"type": "integer"}
            compiled = []
            original = Draft202012Validator.check_schema.__func__
            def counting(cls, *args, **kwargs):
                compiled.append(1)
                return original(cls, *args, **kwargs)
            monkeypatch.setattr(Draft202012Validator, "check_schema", classmethod(counting))
            for n in range(500):
                staging_contract.validate(n, schema)
            staging_contract.validate(1, {"type": "integer"})  # an equal but different dict: compiled again
            assert len(compiled) == 2
        """,
    )
    result.assert_outcomes(passed=1)


def test_contract_violation_under_xdist_reaches_the_verdict(pytester, httpbin_url):
    pytester.makepyfile(
        test_contracts="""
        def test_ok(staging_contract):
            staging_contract.validate(1, {"type": "integer"})

        def test_bad(staging_contract):
            staging_contract.validate("1", {"type": "integer"})
        """
    )
    result = pytester.runpytest_subprocess(f"--staging-target={httpbin_url}", "-n", "2")
    result.assert_outcomes(passed=1, failed=1)
    assert verdict(pytester)["sli"]["validationPassRate"] == 0.5


def test_openapi_document_as_a_dict(pytester, httpbin_url):
    result = run(
        pytester,
        httpbin_url,
        f"""
        DOC = {OPENAPI_30!r}

        def test_by_operation(staging_http, staging_contract):
            body = staging_contract.validate(staging_http.get("/anything/pets/1"), openapi=DOC, operation="getPet")
            assert body["method"] == "GET"

        def test_unknown_operation(staging_contract):
            staging_contract.validate({{}}, openapi=DOC, operation="nope")
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["E       TypeError: OpenAPI document: no operation with operationId 'nope'"])
