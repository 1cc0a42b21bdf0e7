"""Writing a verdict atomically, and the one reader of verdict files: the CLI, the reports
and the gate's own outputs all read a verdict through :func:`read_verdict`."""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from .dsse import VerificationError


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: readers see all or nothing.

    The file gets the mode an ordinary new file would (0666 less the umask), not mkstemp's
    0600: release tooling often reads the verdict as another user.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_envelope(document: Any) -> bool:
    """A DSSE envelope's shape: what a verdict file holds (and nothing else we write does)."""
    return isinstance(document, dict) and {"payloadType", "payload", "signatures"} <= set(document)


def remove_envelope(path: Path) -> bool:
    """Remove the file at ``path`` if it is a DSSE envelope (an earlier verdict); leave anything
    else alone. True when one was removed."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):  # nothing there, unreadable, or not JSON: not ours to remove
        return False
    if not is_envelope(document):
        return False
    try:
        path.unlink()
    except OSError:
        return False
    return True


#: The characters of standard and URL-safe base64: none of them is ever escaped in JSON.
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_"


def envelope_bytes(envelope: dict[str, Any], *, base64_payload: bool = False) -> bytes:
    """The envelope as compact JSON with sorted keys, one line: what ``json.dumps`` writes.

    Speed: the payload, nearly all of the file, is base64, in which JSON escapes nothing; the
    encoder still examines it character by character: 41 million instructions of the 0.25 billion
    that writing a 5,000-test verdict takes (bench/overhead.py, callgrind). A base64 payload is
    therefore written as it is, between the quotes ``json.dumps`` would put around it;
    tests/test_statement.py checks the two agree. ``base64_payload``: the caller made the payload
    with ``base64.b64encode`` (``dsse.envelope`` does), so it need not be checked (a pass over it
    costs 8M instructions for 5,000 tests); otherwise it is checked in one C pass.
    """
    payload = envelope.get("payload")
    raw = payload.encode("ascii", "replace") if isinstance(payload, str) else None
    if raw is None or (not base64_payload and raw.translate(None, _BASE64)):  # non-ASCII becomes "?"
        return (json.dumps(envelope, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")
    head = json.dumps({**envelope, "payload": ""}, sort_keys=True, separators=(",", ":")).encode("ascii")
    at = head.index(b'"payload":""') + len(b'"payload":"')
    return head[:at] + raw + head[at:] + b"\n"


def upgrade(statement: Any) -> Any:
    """A statement from before reasons carried their code (plain strings in ``reasons``, the
    codes in ``reasonCodes``, same order) in today's shape; anything else as it is.

    Verdicts already issued stay readable: ``show``, ``verify``, ``quarantine suggest``.
    """
    predicate = statement.get("predicate") if isinstance(statement, dict) else None
    if not isinstance(predicate, dict):
        return statement
    reasons, codes = predicate.get("reasons"), predicate.get("reasonCodes")
    if (
        isinstance(reasons, list)
        and isinstance(codes, list)
        and len(reasons) == len(codes)
        and all(isinstance(reason, str) for reason in reasons)
    ):
        predicate["reasons"] = [{"code": code, "text": text} for code, text in zip(codes, reasons, strict=False)]
    return statement


def reason_texts(predicate: dict[str, Any]) -> list[str]:
    """The words of each reason, for people; a plain-string reason (an older verdict) is its text."""
    return [
        str(reason.get("text", "")) if isinstance(reason, dict) else str(reason)
        for reason in predicate.get("reasons") or []
    ]


class Verdict(NamedTuple):
    statement: dict[str, Any]
    #: The exact payload bytes the statement was parsed from (the signed bytes, once verified).
    payload: bytes
    #: How many signatures the envelope carries (checked or not).
    signatures: int
    #: The key id of the given key whose signature verified; None when no key was given.
    keyid: str | None


def read_verdict(raw: bytes, keys: Sequence[Any] = (), *, schema: bool = True) -> Verdict:
    """The verdict in a file's bytes. With ``keys``, a signature by one of them must verify
    before anything in the payload is parsed; the statement is parsed from those exact bytes
    (never from the envelope again) and, with ``schema``, checked against the shipped schema.

    Raises VerificationError with a one-line reason: a malformed envelope (duplicate JSON keys,
    non-canonical base64 included), no valid signature by ``keys``, or not a promotion verdict.
    """
    from . import dsse

    envelope = dsse.parse(raw)
    keyid = dsse.verify(envelope, list(keys)).keyid if keys else None
    return Verdict(load_statement(envelope.payload, schema=schema), envelope.payload, len(envelope.signatures), keyid)


def load_statement(payload: bytes, *, schema: bool = True) -> dict[str, Any]:
    """Parse a payload (an older verdict's reasons brought to today's shape) and check it
    against the shipped JSON Schema (unless ``schema`` is false)."""
    from .dsse import loads

    try:
        statement = upgrade(loads(payload.decode("utf-8")))
    except (UnicodeDecodeError, ValueError):
        raise VerificationError("the payload is not UTF-8 JSON") from None
    if schema:
        check_statement(statement)
    return statement


def check_statement(statement: Any) -> None:
    """Raise VerificationError unless ``statement`` fits the shipped JSON Schema of a promotion verdict."""
    import jsonschema

    checked, positions = _one_test_per_shape(statement)
    error = jsonschema.exceptions.best_match(shipped_validator().iter_errors(checked))
    if error is not None:
        path = list(error.absolute_path)
        if path[:2] == ["predicate", "tests"] and len(path) > 2:
            path[2] = positions[path[2]]  # the record's place in the verdict
        where = "/".join(str(p) for p in path) or "(root)"
        raise VerificationError(f"the payload is not a promotion verdict: {where}: {error.message}")


def _one_test_per_shape(statement: Any) -> tuple[Any, list[int]]:
    """The statement with one test record of each *shape*, for the schema check, and the
    positions in ``predicate.tests`` of the records kept.

    Speed: the schema check costs some 90 µs a record: 9.4 of the 12.7 s that merging 50
    partials of 2,000 tests took (bench/merge.py). Most of a verdict's records differ only in
    their node id, durations and correlation id; checking one of each shape, that merge takes
    4.0 s. Two records have one shape when they differ only in values that each satisfy their
    own property's schema (:func:`_shaper`): the ``test`` definition relates no property to
    another, so one is valid exactly when the other is (tests/test_unit_readers.py checks it).
    """
    predicate = statement.get("predicate") if isinstance(statement, dict) else None
    tests = predicate.get("tests") if isinstance(predicate, dict) else None
    if not isinstance(predicate, dict) or not isinstance(tests, list):
        return statement, []
    shape = _shaper(json.dumps(shipped_schema()["$defs"]["test"]))
    shapes: dict[Any, int] = {}
    for position, test in enumerate(tests):
        shapes.setdefault(shape(test), position)
    positions = list(shapes.values())
    kept = {**predicate, "tests": [tests[position] for position in positions]}
    return {**statement, "predicate": kept}, positions


#: A value that satisfied its property's schema (the shape keeps no more of it).
_SATISFIED = "\x00satisfied"


@functools.cache  # a handful of sub-schemas, made once
def _shaper(schema_json: str) -> Callable[[Any], Any]:
    """For a schema, the function giving what of a value its validity can depend on, as a
    hashable key: an object's keys and, per property, the value itself or, when the property's
    schema is a simple one the value satisfies on its own (:func:`_simple`), a mark; an array's
    items likewise. A schema with anything more (a reference, a combination, a keyword relating
    properties) keeps the whole value."""
    schema = json.loads(schema_json)
    keywords = set(schema) - {"description"}
    if schema.get("type") == "object" and keywords <= {"type", "required", "properties"}:
        shapers = {key: _shaper(json.dumps(sub)) for key, sub in schema.get("properties", {}).items()}

        def object_shape(value: Any) -> Any:
            if not isinstance(value, dict):
                return _exact(value)
            # In the keys' order: keys in another order are another shape (checked on its own).
            return tuple([(key, shapers[key](item) if key in shapers else _exact(item)) for key, item in value.items()])

        return object_shape
    if schema.get("type") == "array" and keywords <= {"type", "items"}:
        item_shape = _shaper(json.dumps(schema.get("items", {})))

        def array_shape(value: Any) -> Any:
            return ("[]", *map(item_shape, value)) if isinstance(value, list) else _exact(value)

        return array_shape
    satisfied = _simple(schema)
    if satisfied is None:
        return _exact
    return lambda value: _SATISFIED if satisfied(value) else _exact(value)


def _simple(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    """For the simple forms of a record's free values (a non-empty string, an optional string or
    pattern, a number >= 0), a check that is true only when a value certainly satisfies the form."""
    kind, keywords = schema.get("type"), set(schema) - {"description", "type"}
    if kind == "number" and keywords == {"minimum"}:
        minimum = schema["minimum"]
        return lambda value: type(value) in (int, float) and value >= minimum
    if kind == "string" and keywords <= {"minLength"}:
        least = schema.get("minLength", 0)
        return lambda value: isinstance(value, str) and len(value) >= least
    if kind == ["string", "null"] and keywords <= {"pattern"}:
        pattern = re.compile(schema.get("pattern", ""))
        return lambda value: value is None or (isinstance(value, str) and pattern.search(value) is not None)
    return None


def _exact(value: Any) -> Any:
    """The value itself as a key. NaN never equals itself: a record holding one is checked on its own."""
    if value is None or type(value) in (str, int, float, bool):
        return (type(value), value)  # with its type: True == 1, but they are not one value to a schema
    return json.dumps(value, sort_keys=True)


@functools.cache  # one per shipped schema
def shipped_schema(name: str = "schema.json") -> dict[str, Any]:
    """A JSON Schema shipped in this package: the verdict's (``schema.json``) or the approval's."""
    return json.loads(resources.files("pytest_staging.verdict").joinpath(name).read_text("utf-8"))


@functools.cache
def shipped_validator(name: str = "schema.json") -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(
        shipped_schema(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
