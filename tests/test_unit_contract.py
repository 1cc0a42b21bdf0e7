"""The contract checker without a pytest run: schemas from dicts and files, ``$ref`` across
files, OpenAPI operations, the violation lines, responses (stand-ins) and data contracts."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema.exceptions import SchemaError

from pytest_staging.fixtures.contract import SHOWN, Contract, ContractError, RowsResult, _nullable_to_type, _pointer

ITEMS = {
    "type": "object",
    "required": ["items"],
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["price"],
                "properties": {"price": {"type": "number", "minimum": 0}},
            },
        }
    },
}


class Counter:
    """Stands in for the current test's record: what the contract counts on it."""

    def __init__(self) -> None:
        self.validations: list[bool] = []
        self.data_contracts: list[dict] = []

    def count_validation(self, valid: bool) -> None:
        self.validations.append(valid)

    def add_data_contract(self, result: dict) -> None:
        self.data_contracts.append(result)


@pytest.fixture
def record() -> Counter:
    return Counter()


@pytest.fixture
def contract(tmp_path, record) -> Contract:
    return Contract(tmp_path, lambda: record)


def violations(raised: pytest.ExceptionInfo[ContractError]) -> list[str]:
    return [line.strip() for line in str(raised.value).splitlines()[1:]]


# -- dict schemas and violation paths ------------------------------------------------------------


def test_a_valid_object_comes_back(contract, record):
    body = {"items": [{"price": 1}, {"price": 0.5}]}
    assert contract.validate(body, ITEMS) is body
    assert record.validations == [True]


def test_every_violation_is_listed_with_its_json_path(contract, record):
    body = {"items": [{"price": 1}, {"price": 2}, {"price": 3}, {"price": -1}, {}, {"price": "9"}]}
    with pytest.raises(ContractError) as raised:
        contract.validate(body, ITEMS)
    head = str(raised.value).splitlines()[0]
    assert head == "contract violated: 3 violations of schema (draft2020-12):"
    assert sorted(violations(raised)) == [
        "$.items[3].price: minimum: -1 is less than the minimum of 0",
        "$.items[4]: required: 'price' is a required property",
        "$.items[5].price: type: '9' is not of type 'number'",
    ]
    assert record.validations == [False]


def test_paths_quote_keys_that_are_not_names(contract):
    schema = {"type": "object", "properties": {"unit price": {"type": "number"}, "a.b": {"type": "string"}}}
    with pytest.raises(ContractError) as raised:
        contract.validate({"unit price": "x", "a.b": 1}, schema)
    assert sorted(line.split(":")[0] for line in violations(raised)) == ["$['a.b']", "$['unit price']"]


def test_the_most_relevant_violation_comes_first(contract):
    # jsonschema's own ranking: higher up the document first; at one place, anyOf/oneOf last.
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "integer"}}},
            "c": {"type": "string"},
            "d": {"anyOf": [{"type": "integer"}, {"type": "null"}], "minLength": 5},
        },
    }
    with pytest.raises(ContractError) as raised:
        contract.validate({"a": {"b": "x"}, "c": 1, "d": "y"}, schema)
    found = [tuple(line.split(": ")[:2]) for line in violations(raised)]
    assert sorted(found) == [("$.a.b", "type"), ("$.c", "type"), ("$.d", "anyOf"), ("$.d", "minLength")]
    assert found[-1] == ("$.a.b", "type")
    assert found.index(("$.d", "minLength")) < found.index(("$.d", "anyOf"))


def test_violations_at_one_depth_come_in_document_order(contract):
    schema = {"type": "array", "items": {"type": "integer"}}
    with pytest.raises(ContractError) as raised:
        contract.validate(["x", "y", "z"], schema)
    assert [line.split(":")[0] for line in violations(raised)] == ["$[0]", "$[1]", "$[2]"]
    with pytest.raises(ContractError) as raised:
        contract.validate(["x"] * (SHOWN + 5), schema)
    assert "$[0]" in [line.split(":")[0] for line in violations(raised)]  # the first bad item is shown


def test_a_long_list_is_cut_and_counted(contract):
    schema = {"type": "array", "items": {"type": "integer"}}
    with pytest.raises(ContractError) as raised:
        contract.validate(["x"] * (SHOWN + 5), schema)
    lines = violations(raised)
    assert str(raised.value).splitlines()[0].startswith(f"contract violated: {SHOWN + 5} violations")
    assert len(lines) == SHOWN + 1 and lines[-1] == "... and 5 more"


def test_a_long_value_is_shortened_in_its_line(contract):
    with pytest.raises(ContractError) as raised:
        contract.validate("y" * 1000, {"type": "integer"})
    (line,) = violations(raised)
    assert line.endswith("…") and len(line) < 200


@pytest.mark.parametrize(
    ("dialect", "label"),
    [
        ("http://json-schema.org/draft-04/schema#", "draft-04"),
        ("http://json-schema.org/draft-07/schema#", "draft-07"),
        ("https://json-schema.org/draft/2019-09/schema", "draft2019-09"),
    ],
)
def test_the_draft_comes_from_dollar_schema(contract, dialect, label):
    # draft-04's exclusiveMaximum is a boolean next to maximum; later drafts make it a number.
    schema = (
        {"$schema": dialect, "type": "number", "maximum": 5, "exclusiveMaximum": True}
        if label == "draft-04"
        else {"$schema": dialect, "type": "number", "exclusiveMaximum": 5}
    )
    assert contract.validate(4, schema) == 4
    with pytest.raises(ContractError, match=rf"of schema \({label}\)"):
        contract.validate(5, schema)


def test_bad_schemas_are_the_tests_mistake(contract):
    with pytest.raises(TypeError, match=r"unknown \$schema 'https://example\.com/mine'"):
        contract.validate(1, {"$schema": "https://example.com/mine"})
    with pytest.raises(SchemaError):
        contract.validate(1, {"type": 5})
    with pytest.raises(TypeError, match="give a schema"):
        contract.validate(1)


def test_formats_are_checked(contract):
    with pytest.raises(ContractError, match=r"\$: format: 'not-a-date' is not a 'date'"):
        contract.validate("not-a-date", {"type": "string", "format": "date"})


def test_each_dict_gets_its_own_validator(contract):
    assert contract.validate(1, {"type": "integer"}) == 1
    with pytest.raises(ContractError):
        contract.validate(1, {"type": "string"})
    same = {"type": "integer"}
    assert contract.validate(2, same) == 2 and contract.validate(3, same) == 3


# -- schema files and $ref across files -------------------------------------------------------------


def write(path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if path.suffix == ".json" else data, encoding="utf-8")


def test_a_schema_file_relative_to_the_base_dir_with_refs_across_files(contract, tmp_path):
    write(
        tmp_path / "schemas" / "order.json",
        {
            "type": "object",
            "properties": {
                "total": {"$ref": "common/money.json"},
                "lines": {"type": "array", "items": {"$ref": "line.yaml#/$defs/line"}},
            },
        },
    )
    write(tmp_path / "schemas" / "common" / "money.json", {"type": "number", "minimum": 0})
    write(tmp_path / "schemas" / "line.yaml", "$defs:\n  line:\n    type: object\n    required: [sku]\n")
    good = {"total": 3, "lines": [{"sku": "a"}]}
    assert contract.validate(good, "schemas/order.json") == good
    assert contract.validate(good, tmp_path / "schemas" / "order.json") == good  # an absolute path too
    with pytest.raises(ContractError) as raised:
        contract.validate({"total": -1, "lines": [{"sku": "a"}, {}]}, "schemas/order.json")
    assert str(raised.value).startswith("contract violated: 2 violations of schemas/order.json (draft2020-12):")
    assert sorted(line.split(":")[0] for line in violations(raised)) == ["$.lines[1]", "$.total"]


def test_a_yaml_schema_file(contract, tmp_path):
    write(tmp_path / "pet.yml", "$schema: http://json-schema.org/draft-07/schema#\ntype: object\nrequired: [name]\n")
    with pytest.raises(ContractError, match=r"\$: required: 'name' is a required property"):
        contract.validate({}, "pet.yml")


def test_a_schema_with_its_own_id_resolves_refs_from_it(contract, tmp_path):
    write(tmp_path / "a.json", {"$id": (tmp_path / "a.json").as_uri(), "$ref": "b.json"})
    write(tmp_path / "b.json", {"type": "string"})
    assert contract.validate("x", "a.json") == "x"
    with pytest.raises(ContractError):
        contract.validate(1, "a.json")


def test_a_ref_outside_the_file_system_is_not_fetched(contract):
    with pytest.raises(Exception, match="Unresolvable: https://example.com/schema.json") as raised:
        contract.validate(1, {"$ref": "https://example.com/schema.json"})
    causes, error = [], raised.value
    while error is not None:
        causes.append(str(error))
        error = error.__cause__ or error.__context__
    assert "only file: references are resolved, not https://example.com/schema.json" in causes


# -- OpenAPI ------------------------------------------------------------------------------------


def openapi(version: str, schema: dict, responses: dict | None = None) -> dict:
    return {
        "openapi": version,
        "info": {"title": "pets", "version": "1"},
        "paths": {
            "/pets/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True}],
                "get": {
                    "operationId": "getPet",
                    "responses": responses
                    or {
                        "200": {"content": {"application/json; charset=utf-8": {"schema": schema}}},
                        "404": {
                            "content": {
                                "application/problem+json": {"schema": {"type": "object", "required": ["title"]}}
                            }
                        },
                        "default": {"description": "anything else"},
                    },
                },
            }
        },
        "components": {
            "schemas": {"Pet": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}
        },
    }


PET_REF = {"$ref": "#/components/schemas/Pet"}


@pytest.mark.parametrize("version", ["3.0.3", "3.1.0"])
def test_an_operation_by_id_or_by_path_and_method(contract, version):
    document = openapi(version, PET_REF)
    assert contract.validate({"name": "rex"}, openapi=document, operation="getPet") == {"name": "rex"}
    assert contract.validate({"name": "rex"}, openapi=document, path="/pets/{id}", method="GET") == {"name": "rex"}
    with pytest.raises(ContractError) as raised:
        contract.validate({"name": 7}, openapi=document, operation="getPet")
    assert str(raised.value).splitlines() == [
        f"contract violated: 1 violation of OpenAPI document GET /pets/{{id}} 200 (OpenAPI {version}):",
        "  $.name: type: 7 is not of type 'string'",
    ]


def test_the_status_picks_the_response(contract):
    document = openapi("3.1.0", PET_REF)
    assert contract.validate({"title": "gone"}, openapi=document, operation="getPet", status=404) == {"title": "gone"}
    with pytest.raises(ContractError, match=r"(?s)GET /pets/\{id\} 404 .*\$: required: 'title'"):
        contract.validate({}, openapi=document, operation="getPet", status=404)
    # An undocumented status falls to "default", which has no JSON schema here.
    with pytest.raises(TypeError, match=r"OpenAPI document: GET /pets/\{id\} default has no JSON schema"):
        contract.validate({}, openapi=document, operation="getPet", status=500)


def test_operation_lookup_mistakes_name_the_document(contract, tmp_path):
    document = openapi("3.1.0", PET_REF, responses={"201": {"content": {"application/json": {"schema": PET_REF}}}})
    with pytest.raises(TypeError, match="no operation with operationId 'getPets'"):
        contract.validate({}, openapi=document, operation="getPets")
    with pytest.raises(TypeError, match=r"no operation POST /pets/\{id\}"):
        contract.validate({}, openapi=document, path="/pets/{id}", method="post")
    with pytest.raises(TypeError, match="give operation= or both path= and method="):
        contract.validate({}, openapi=document, path="/pets/{id}")
    with pytest.raises(TypeError, match=r"documents no response 200"):
        contract.validate({}, openapi=document, operation="getPet", status=200)
    write(tmp_path / "api.json", {**document, "openapi": "2.0"})
    with pytest.raises(TypeError, match=r"api\.json: openapi version '2\.0' is not 3\.0 or 3\.1"):
        contract.validate({}, openapi="api.json", operation="getPet")
    no_json = openapi("3.1.0", PET_REF, responses={"200": {"content": {"text/html": {"schema": {"type": "string"}}}}})
    with pytest.raises(TypeError, match=r"GET /pets/\{id\} 200 has no JSON schema"):
        contract.validate({}, openapi=no_json, operation="getPet")


def test_an_openapi_file_with_a_ref_to_another_file(contract, tmp_path):
    write(tmp_path / "api" / "pet.json", {"type": "object", "required": ["name"]})
    write(tmp_path / "api" / "openapi.json", openapi("3.1.0", {"$ref": "pet.json"}))
    with pytest.raises(
        ContractError, match=r"of api/openapi\.json GET /pets/\{id\} 200 \(OpenAPI 3\.1\.0\):\n  \$: required"
    ):
        contract.validate({}, openapi="api/openapi.json", operation="getPet")


def test_openapi_30_nullable(contract):
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "nullable": True},
            "owner": {"allOf": [PET_REF], "nullable": True},
            "kind": {"type": "string", "enum": ["cat", "dog"], "nullable": True},
            "strict": {"type": "string"},
        },
    }
    document = openapi("3.0.3", schema)
    value = {"name": None, "owner": None, "kind": None}
    assert contract.validate(value, openapi=document, operation="getPet") == value
    with pytest.raises(ContractError, match=r"\$\.strict: type: None is not of type 'string'"):
        contract.validate({"strict": None}, openapi=document, operation="getPet")
    # 3.1 has no "nullable": there it means nothing.
    with pytest.raises(ContractError):
        contract.validate({"name": None}, openapi=openapi("3.1.0", schema), operation="getPet")


def test_nullable_to_type():
    assert _nullable_to_type({"type": "string", "nullable": True}) == {"type": ["string", "null"]}
    assert _nullable_to_type({"type": "string", "nullable": False}) == {"type": "string"}
    assert _nullable_to_type({"$ref": "#/x", "nullable": True}) == {"anyOf": [{"$ref": "#/x"}, {"type": "null"}]}
    assert _nullable_to_type({"enum": ["a"], "type": "string", "nullable": True}) == {
        "enum": ["a", None],
        "type": ["string", "null"],
    }
    assert _nullable_to_type({"enum": ["a", None], "nullable": True}) == {"enum": ["a", None]}
    nested = {
        "items": [{"type": "integer", "nullable": True}],
        "properties": {"a": {"type": "object", "nullable": True}},
    }
    assert _nullable_to_type(nested) == {
        "items": [{"type": ["integer", "null"]}],
        "properties": {"a": {"type": ["object", "null"]}},
    }
    original = {"type": "string", "nullable": True}
    _nullable_to_type(original)
    assert original == {"type": "string", "nullable": True}  # the caller's document is not changed


@given(st.lists(st.text(alphabet="a~/01{}", max_size=5), min_size=1, max_size=4))
def test_a_pointer_part_survives_any_tilde_or_slash(parts):
    pointer = _pointer(*parts)
    decoded = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
    assert decoded == parts


@pytest.mark.parametrize("route", ["/pets/{id}", "/a~b/{c}", "/a~1b", "/a~0b", "/a b/é", "/a#b?c"])
def test_any_route_is_found(contract, route):
    document = {
        "openapi": "3.1.0",
        "paths": {
            route: {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"type": "integer"}}}}}}}
        },
    }
    assert contract.validate(5, openapi=document, path=route, method="get") == 5
    with pytest.raises(ContractError):
        contract.validate("5", openapi=document, path=route, method="get")


@pytest.mark.parametrize("route", ["/files/%7Bname%7D", "/a%2Fb"])
def test_a_route_with_a_percent_escape_is_found(contract, route):
    document = {
        "openapi": "3.1.0",
        "paths": {
            route: {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"type": "integer"}}}}}}}
        },
    }
    assert contract.validate(5, openapi=document, path=route, method="get") == 5


# -- responses ----------------------------------------------------------------------------------


class Response:
    """The parts of a ``requests.Response`` the contract reads."""

    def __init__(
        self, body, status: int = 200, content_type: str = "application/json", url: str = "http://t/pets/1?x=1"
    ) -> None:
        self.status_code = status
        self.headers = {"Content-Type": content_type} if content_type else {}
        self.text = body if isinstance(body, str) else json.dumps(body)
        self.request = SimpleNamespace(method="GET", url=url)

    def json(self):
        return json.loads(self.text)


def test_a_response_is_checked_by_its_json_body(contract):
    assert contract.validate(Response({"name": "rex"}), openapi=openapi("3.1.0", PET_REF), operation="getPet") == {
        "name": "rex"
    }
    with pytest.raises(ContractError) as raised:
        contract.validate(Response({}), openapi=openapi("3.1.0", PET_REF), operation="getPet")
    assert str(raised.value).splitlines()[0].endswith("(OpenAPI 3.1.0) in GET /pets/1 response:")


def test_status_type_and_body_problems_come_first(contract):
    responses = {
        "200": {"content": {"application/json": {"schema": PET_REF}}},
        "404": {"content": {"application/problem+json": {"schema": {"type": "object"}}}},
    }
    document = openapi("3.1.0", PET_REF, responses=responses)
    with pytest.raises(ContractError) as raised:
        contract.validate(
            Response("<html>" + "x" * 500, status=201, content_type="text/html; charset=utf-8"),
            openapi=document,
            operation="getPet",
        )
    lines = violations(raised)
    assert lines[:2] == [
        "$: status 201 is not documented (200, 404)",
        "$: Content-Type 'text/html', the contract says application/json",
    ]
    assert lines[2].startswith("$: the body is not JSON: <html>xxx") and lines[2].endswith("…")
    # A "default" response documents every status.
    assert contract.validate(
        Response({"name": "a"}, status=201), openapi=openapi("3.1.0", PET_REF), operation="getPet"
    ) == {"name": "a"}


def test_an_expected_status(contract, record):
    with pytest.raises(ContractError) as raised:
        contract.validate(Response({"a": 1}, status=500), {"type": "object"}, status=200)
    assert violations(raised) == ["$: status 500, the contract expects 200"]
    assert record.validations == [False]
    with pytest.raises(ContractError, match=r"\$: Content-Type '\(none\)'"):
        contract.validate(
            Response({"name": "x"}, content_type=""), openapi=openapi("3.1.0", PET_REF), operation="getPet"
        )


# -- data contracts ------------------------------------------------------------------------------

ROW = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}


@given(st.lists(st.booleans(), max_size=60), st.sampled_from([0.0, 0.001, 0.05, 0.1, 0.5, 1.0]), st.integers(0, 4))
def test_rows_fail_only_over_the_invalid_ratio(tmp_path_factory, valid, limit, show):
    record = Counter()
    contract = Contract(tmp_path_factory.getbasetemp(), lambda: record)
    rows = ({"id": index} if ok else {"id": str(index)} for index, ok in enumerate(valid))  # any iterable
    invalid = [index for index, ok in enumerate(valid) if not ok]
    ratio = len(invalid) / len(valid) if valid else 0.0
    if ratio <= limit:
        result = contract.validate_rows(rows, ROW, max_invalid_ratio=limit, show=show)
        assert (result.total, result.invalid, result.ok) == (len(valid), len(invalid), True)
    else:
        with pytest.raises(ContractError) as raised:
            contract.validate_rows(rows, ROW, max_invalid_ratio=limit, show=show)
        lines = str(raised.value).splitlines()
        assert lines[0] == (
            f"data contract schema (draft2020-12): {len(invalid)} of {len(valid)} rows invalid "
            f"({ratio:.4%}), over the limit of {limit:.4%}"
        )
        assert [line.strip() for line in lines[1:] if line.startswith("  row ")] == [
            f"row {i}:" for i in invalid[:show]
        ]
        assert all(f"$.id: type: '{i}' is not of type 'integer'" in str(raised.value) for i in invalid[:show])
    assert record.data_contracts == [RowsResult("schema (draft2020-12)", len(valid), len(invalid), limit).to_dict()]
    assert record.data_contracts[0]["ok"] == (ratio <= limit)


def test_rows_result_as_data():
    assert RowsResult("s", 0, 0, 0.0).to_dict() == {
        "schema": "s",
        "rows": 0,
        "invalid": 0,
        "ratio": 0.0,
        "maxInvalidRatio": 0.0,
        "ok": True,
    }
    assert RowsResult("s", 3, 1, 0.25).to_dict() == {
        "schema": "s",
        "rows": 3,
        "invalid": 1,
        "ratio": 0.333333,
        "maxInvalidRatio": 0.25,
        "ok": False,
    }


def test_rows_against_an_openapi_operation(contract):
    document = openapi("3.1.0", PET_REF)
    result = contract.validate_rows([{"name": "a"}, {}], openapi=document, operation="getPet", max_invalid_ratio=0.5)
    assert (result.schema, result.total, result.invalid) == (
        "OpenAPI document GET /pets/{id} 200 (OpenAPI 3.1.0)",
        2,
        1,
    )


def test_without_a_current_test_nothing_is_counted(tmp_path):
    contract = Contract(tmp_path)  # outside a test: no record to count on
    assert contract.validate({"id": 1}, ROW) == {"id": 1}
    assert contract.validate_rows([{"id": 1}], ROW).ok
