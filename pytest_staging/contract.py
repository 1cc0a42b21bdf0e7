"""``staging_contract``: API and data contracts checked with JSON Schema, with errors people can act on.

Schemas come as a dict, a ``.json``/``.yaml`` file, or an OpenAPI 3.0/3.1 document plus an
operation; ``$ref`` across files and inside OpenAPI documents is resolved by jsonschema's
``referencing`` registry. Validators are compiled once and cached. A failure is one
``AssertionError`` listing every violation with its JSON path, most relevant first.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

#: Violations listed in one failure message (the count says how many more there were).
SHOWN = 20
VALUE_LIMIT = 80
DEFAULT_DRAFT = "https://json-schema.org/draft/2020-12/schema"


class ContractError(AssertionError):
    """A response or object does not meet its contract; the message lists every violation."""


def _load_file(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:  # pragma: no cover - depends on the environment
            raise ContractError(f"{path}: YAML schemas need PyYAML (pip install pyyaml)") from None
        return yaml.safe_load(text)
    return json.loads(text)


def _nullable_to_type(schema: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema: ``null`` joins the allowed types."""
    if isinstance(schema, list):
        return [_nullable_to_type(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: _nullable_to_type(value) for key, value in schema.items()}
    if converted.pop("nullable", False) is True:
        kind = converted.get("type")
        if isinstance(kind, str):
            converted["type"] = [kind, "null"]
        elif "$ref" in converted or "allOf" in converted or "oneOf" in converted or "anyOf" in converted:
            converted = {"anyOf": [converted, {"type": "null"}]}
        if "enum" in converted and None not in converted["enum"]:
            converted["enum"] = [*converted["enum"], None]
    return converted


def _pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


@dataclasses.dataclass(frozen=True)
class Compiled:
    validator: Any
    label: str
    #: For OpenAPI operations: the documented statuses and content types, to check responses.
    statuses: tuple[str, ...] = ()
    content_types: tuple[str, ...] = ()


class Contract:
    """The ``staging_contract`` fixture's object."""

    def __init__(self, base_dir: Path, current: Callable[[], Any] = lambda: None) -> None:
        self.base_dir = base_dir
        self._current = current
        self._compiled: dict[Any, tuple[Any, Compiled]] = {}

    # -- public API -------------------------------------------------------------------------

    def validate(
        self,
        response_or_obj: Any,
        schema: Mapping[str, Any] | str | Path | None = None,
        *,
        openapi: Mapping[str, Any] | str | Path | None = None,
        operation: str | None = None,
        path: str | None = None,
        method: str | None = None,
        status: int | None = None,
    ) -> Any:
        """Check a ``requests.Response`` (its JSON body, and status and ``Content-Type`` when the
        contract says so) or a plain object against a schema; returns the validated object.

        ``schema`` is a JSON Schema dict or a path to a ``.json``/``.yaml`` file (relative paths
        from the rootdir); or take it from an OpenAPI document: ``openapi=DOC`` with
        ``operation="getPet"`` or ``path="/pets/{id}", method="get"``, and ``status=200``.
        """
        __tracebackhide__ = True  # the failure points at the test's line, not in here
        compiled = self._compile(schema, openapi, operation, path, method, status)
        instance, problems = self._instance(response_or_obj, compiled, status)
        record = self._current()
        valid = not problems and compiled.validator.is_valid(instance)
        if record is not None:
            record.count_validation(valid)
        if valid:
            return instance
        lines = problems + [self._line(error) for error in self._errors(compiled.validator, instance)]
        raise ContractError(self._message(lines, compiled.label, response_or_obj))

    def validate_rows(
        self,
        rows: Iterable[Any],
        schema: Mapping[str, Any] | str | Path | None = None,
        *,
        max_invalid_ratio: float = 0.001,
        show: int = 5,
        **openapi: Any,
    ) -> RowsResult:
        """A data contract for a batch (an ETL output, an event sample): fails when more than
        ``max_invalid_ratio`` of the rows are invalid, showing the first ``show`` invalid rows
        with their violations. Returns the counts either way."""
        __tracebackhide__ = True
        compiled = self._compile(schema, openapi.get("openapi"), openapi.get("operation"), openapi.get("path"),
                                 openapi.get("method"), openapi.get("status"))
        validator = compiled.validator
        total = invalid = 0
        examples: list[tuple[int, list[str]]] = []
        for index, row in enumerate(rows):
            total += 1
            if validator.is_valid(row):
                continue
            invalid += 1
            if len(examples) < show:
                examples.append((index, [self._line(error) for error in self._errors(validator, row)][:5]))
        result = RowsResult(compiled.label, total, invalid, max_invalid_ratio)
        record = self._current()
        if record is not None:
            record.add_data_contract(result.to_dict())
        if not result.ok:
            lines = [
                f"data contract {compiled.label}: {invalid} of {total} rows invalid "
                f"({result.ratio:.4%}), over the limit of {max_invalid_ratio:.4%}"
            ]
            for index, violations in examples:
                lines.append(f"  row {index}:")
                lines += [f"    {violation}" for violation in violations]
            raise ContractError("\n".join(lines))
        return result

    # -- compiling ----------------------------------------------------------------------------

    def _compile(self, schema: Any, openapi: Any, operation: str | None, path: str | None, method: str | None, status: int | None) -> Compiled:
        __tracebackhide__ = True  # a mistake in the test's arguments points at the test
        if openapi is not None:
            key: Any = ("openapi", id(openapi) if isinstance(openapi, Mapping) else str(openapi), operation, path, method, status)
            anchor = openapi
        elif isinstance(schema, Mapping):
            key, anchor = ("schema", id(schema)), schema
        elif isinstance(schema, (str, Path)):
            key, anchor = ("file", str(schema)), None
        else:
            raise TypeError("give a schema (dict or file path) or openapi= with operation= or path= and method=")
        cached = self._compiled.get(key)
        # The anchor keeps a dict schema alive, so its id() is never reused for another dict.
        if cached is not None and (anchor is None or cached[0] is anchor):
            return cached[1]
        if openapi is not None:
            compiled = self._compile_openapi(openapi, operation, path, method, status)
        elif isinstance(schema, Mapping):
            compiled = self._compile_schema(dict(schema), base_uri="", label="schema")
        else:
            file = self._resolve(schema)
            compiled = self._compile_schema(_load_file(file), base_uri=file.as_uri(), label=str(schema))
        self._compiled[key] = (anchor, compiled)
        return compiled

    def _resolve(self, path: str | Path) -> Path:
        candidate = Path(path)
        return (candidate if candidate.is_absolute() else self.base_dir / candidate).resolve()

    def _registry(self, default_spec: Any) -> Any:
        from referencing import Registry, Resource

        def retrieve(uri: str) -> Any:
            parts = urlsplit(uri)
            if parts.scheme != "file":
                raise LookupError(f"only file: references are resolved, not {uri}")
            return Resource.from_contents(_load_file(Path(unquote(parts.path))), default_specification=default_spec)

        return Registry(retrieve=retrieve)

    def _compile_schema(self, schema: dict[str, Any], *, base_uri: str, label: str) -> Compiled:
        __tracebackhide__ = True  # a mistake in the test's arguments points at the test
        from jsonschema.validators import Draft202012Validator, validator_for
        from referencing import Resource
        from referencing.jsonschema import specification_with

        from referencing.jsonschema import UnknownDialect

        try:
            spec = specification_with(schema.get("$schema", DEFAULT_DRAFT))
        except UnknownDialect:
            raise TypeError(f"{label}: unknown $schema {schema['$schema']!r}; use a JSON Schema draft's URI") from None
        cls = validator_for(schema, default=Draft202012Validator)
        cls.check_schema(schema)
        registry = self._registry(spec)
        if base_uri:
            registry = registry.with_resource(base_uri, Resource.from_contents(schema, default_specification=spec))
            schema = {"$ref": base_uri, "$schema": schema.get("$schema", DEFAULT_DRAFT)} if "$id" not in schema else schema
        draft = spec.name
        validator = cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)
        return Compiled(validator, f"{label} ({draft})")

    def _compile_openapi(self, openapi: Any, operation: str | None, path: str | None, method: str | None, status: int | None) -> Compiled:
        __tracebackhide__ = True  # a mistake in the test's arguments points at the test
        from jsonschema.validators import Draft4Validator, Draft202012Validator
        from referencing import Resource
        from referencing.jsonschema import DRAFT4, DRAFT202012

        if isinstance(openapi, Mapping):
            document, uri, label = dict(openapi), "urn:pytest-staging:openapi", "OpenAPI document"
        else:
            file = self._resolve(openapi)
            document, uri, label = _load_file(file), file.as_uri(), str(openapi)
        version = str(document.get("openapi", ""))
        if version.startswith("3.0"):
            document, cls, spec = _nullable_to_type(copy.deepcopy(document)), Draft4Validator, DRAFT4
        elif version.startswith("3.1"):
            cls, spec = Draft202012Validator, DRAFT202012
        else:
            raise TypeError(f"{label}: openapi version {version!r} is not 3.0 or 3.1")
        route, verb, op = self._operation(document, label, operation, path, method)
        responses = op.get("responses", {})
        key = str(status) if status is not None else next((code for code in responses if str(code).startswith("2")), None)
        if key not in responses and "default" in responses and status is not None:
            key = "default"
        if key is None or key not in responses:
            raise TypeError(f"{label}: {verb.upper()} {route} documents no response {status}")
        content = responses[key].get("content", {})
        json_type = next((kind for kind in content if kind.split(";")[0].strip().endswith("json")), None)
        if json_type is None or "schema" not in content[json_type]:
            raise TypeError(f"{label}: {verb.upper()} {route} {key} has no JSON schema")
        registry = self._registry(spec).with_resource(uri, Resource.from_contents(document, default_specification=spec))
        pointer = _pointer("paths", route, verb, "responses", key, "content", json_type, "schema")
        validator = cls({"$ref": f"{uri}#{pointer}"}, registry=registry, format_checker=cls.FORMAT_CHECKER)
        return Compiled(
            validator,
            f"{label} {verb.upper()} {route} {key} (OpenAPI {version})",
            statuses=tuple(str(code) for code in responses),
            content_types=tuple(kind.split(";")[0].strip() for kind in content),
        )

    @staticmethod
    def _operation(document: dict[str, Any], label: str, operation: str | None, path: str | None, method: str | None) -> tuple[str, str, dict[str, Any]]:
        __tracebackhide__ = True
        paths = document.get("paths", {})
        if operation is not None:
            for route, item in paths.items():
                for verb, op in item.items():
                    if isinstance(op, dict) and op.get("operationId") == operation:
                        return route, verb, op
            raise TypeError(f"{label}: no operation with operationId {operation!r}")
        if path is None or method is None:
            raise TypeError("give operation= or both path= and method=")
        try:
            return path, method.lower(), paths[path][method.lower()]
        except KeyError:
            raise TypeError(f"{label}: no operation {method.upper()} {path}") from None

    # -- checking -------------------------------------------------------------------------------

    @staticmethod
    def _instance(value: Any, compiled: Compiled, status: int | None) -> tuple[Any, list[str]]:
        """The JSON to validate, and problems with the response around it (status, type, body)."""
        if not (hasattr(value, "status_code") and hasattr(value, "headers") and hasattr(value, "json")):
            return value, []
        problems = []
        expected = str(status) if status is not None else None
        if expected is not None and str(value.status_code) != expected:
            problems.append(f"$: status {value.status_code}, the contract expects {expected}")
        elif compiled.statuses and str(value.status_code) not in compiled.statuses and "default" not in compiled.statuses:
            problems.append(f"$: status {value.status_code} is not documented ({', '.join(compiled.statuses)})")
        content_type = value.headers.get("Content-Type", "").split(";")[0].strip()
        if compiled.content_types and content_type not in compiled.content_types:
            problems.append(f"$: Content-Type {content_type or '(none)'!r}, the contract says {', '.join(compiled.content_types)}")
        try:
            return value.json(), problems
        except ValueError:
            return None, [*problems, f"$: the body is not JSON: {_short(value.text)}"]

    @staticmethod
    def _errors(validator: Any, instance: Any) -> list[Any]:
        from jsonschema.exceptions import relevance

        # Most relevant first (jsonschema's own ranking, as best_match uses), ties in path order.
        by_path = sorted(validator.iter_errors(instance), key=lambda error: error.json_path)
        return sorted(by_path, key=relevance, reverse=True)

    @staticmethod
    def _line(error: Any) -> str:
        return f"{error.json_path}: {error.validator}: {_short(error.message)}"

    @staticmethod
    def _message(lines: list[str], label: str, subject: Any) -> str:
        request = getattr(subject, "request", None)
        where = f" in {request.method} {urlsplit(request.url).path} response" if request is not None else ""
        count = len(lines)
        head = f"contract violated: {count} violation{'s' if count != 1 else ''} of {label}{where}:"
        shown = lines[:SHOWN]
        more = [f"  ... and {count - SHOWN} more"] if count > SHOWN else []
        return "\n".join([head, *(f"  {line}" for line in shown), *more])


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= VALUE_LIMIT * 2 else text[: VALUE_LIMIT * 2 - 1] + "…"


@dataclasses.dataclass(frozen=True)
class RowsResult:
    schema: str
    total: int
    invalid: int
    max_invalid_ratio: float

    @property
    def ratio(self) -> float:
        return self.invalid / self.total if self.total else 0.0

    @property
    def ok(self) -> bool:
        return self.ratio <= self.max_invalid_ratio

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "rows": self.total,
            "invalid": self.invalid,
            "ratio": round(self.ratio, 6),
            "maxInvalidRatio": self.max_invalid_ratio,
            "ok": self.ok,
        }
