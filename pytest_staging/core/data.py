"""Data expectations: every check of one ``staging_data.expect()`` over a stream of rows, in one pass.

Pure: no pytest, no database. The fixture (:mod:`..fixtures.data`) hands in the rows as dicts,
and the row contract's compiled validator (the contract tier's, :mod:`..fixtures.contract`).

Staged data is often production-derived, so nothing here keeps or shows a value of a row but
its key (``key=``, the primary key, the ``unique`` columns, else its position): a violation is
its JSON path, the schema keyword and what the *schema* says (``$.total: type: "number"``).

Memory stays flat in the number of rows, but for ``unique``: each unique column keeps one
64-bit hash per non-null value (8 bytes a row; 80 MB for 10 million rows), sorted at the end.
Two different values with one hash count as a duplicate: the check then fails, never passes
wrongly (:func:`unique_code` says how rare that is).
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import re
import uuid
from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: Invalid rows shown in a failure, each by its key and violation paths.
SHOWN_ROWS = 5
#: Violations shown per row.
SHOWN_VIOLATIONS = 5
#: A schema value (``enum``, ``pattern``...) is cut to this many characters in a message.
SCHEMA_TEXT = 60
#: What a key value may take up in a message.
KEY_TEXT = 40
#: A newest freshness value further ahead than this is a clock or a load gone wrong, not fresh data.
FUTURE_SLACK = dt.timedelta(minutes=5)
#: Ints within this hash to themselves (Python reduces int hashes modulo 2**61 - 1).
_SMALL_INT = 1 << 60
_UTC = dt.timezone.utc


def _iso(value: Any) -> str:
    return value.isoformat()


def _timestamp(value: dt.datetime) -> str:
    # A naive timestamp is UTC (as for freshness), and RFC 3339 (format: date-time) wants an offset.
    return value.isoformat() if value.tzinfo is not None else value.isoformat() + "Z"


def _number(value: decimal.Decimal) -> Any:
    """NUMERIC as JSON has it: an int when integral, else a float (``multipleOf: 0.01`` cannot
    mix a Decimal with a float). NaN and infinities are no JSON number: they stay text, so
    ``type: number`` finds them."""
    if not value.is_finite():
        return str(value)
    return int(value) if value == value.to_integral_value() else float(value)


#: Values JSON has no type for, as JSON Schema sees them: timestamps and dates as ISO-8601 text
#: (so ``format: date-time`` applies), UUIDs as text, NUMERIC as a JSON number.
JSON_FORMS: dict[type, Callable[[Any], Any]] = {
    dt.datetime: _timestamp,
    dt.date: _iso,
    dt.time: _iso,
    uuid.UUID: str,
    decimal.Decimal: _number,
}


class RowError(Exception):
    """A row the checks could not handle: the message names the row by its key and the kind of
    error, never a value; raised with no traceback of the rows' frames behind it."""


def query_digest(sql: str) -> dict[str, str]:
    """The verdict names a query by its digest: its text may hold literals of the data."""
    return {"sha256": hashlib.sha256(sql.encode("utf-8", "surrogatepass")).hexdigest()}


def as_utc(value: Any) -> dt.datetime | None:
    """A freshness column's value as an aware datetime: naive timestamps and ISO-8601 text are
    UTC, a date is its midnight. None for what is no timestamp."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=_UTC) if value.tzinfo is None else value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=_UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):  # Python 3.10's fromisoformat does not read a Z
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed.replace(tzinfo=_UTC) if parsed.tzinfo is None else parsed
    return None


def violation(error: Any, names: frozenset[str] = frozenset()) -> str:
    """One jsonschema error as ``$.path: keyword: what the schema says`` (never the row's value:
    the message jsonschema writes quotes it). ``names``: the property names the schema itself
    names (:func:`schema_names`); any other key in the path is the data's own, shown as ``[*]``."""
    keyword = error.validator
    instance = error.instance
    if keyword == "required" and isinstance(instance, dict):
        # jsonschema makes one error per missing property, its message quoting the schema's name.
        missing = [name for name in error.validator_value if name not in instance]
        named = [name for name in missing if error.message.startswith(repr(name))]
        said = "missing " + ", ".join(map(str, named[:1] or missing))
    elif keyword is None:  # a false subschema
        keyword, said = "false schema", "not allowed"
    elif keyword in ("additionalProperties", "unevaluatedProperties") and error.validator_value is False:
        said = "not allowed"
    elif isinstance(error.validator_value, (dict, list)) and keyword not in ("enum", "type", "required"):
        said = "not met"  # a subschema (anyOf, items, not...): the keyword and path say where
    else:
        said = json.dumps(error.validator_value, default=str, ensure_ascii=False)
    if len(said) > SCHEMA_TEXT:
        said = said[: SCHEMA_TEXT - 1] + "…"
    return f"{json_path(error.absolute_path, names)}: {keyword}: {said}"


def json_path(path: Iterable[Any], names: frozenset[str]) -> str:
    """A violation's path: array indices and the schema's own property names; a key that only
    the data has (a jsonb document's, matched by ``additionalProperties``...) is ``[*]``."""
    parts = ["$"]
    for element in path:
        if isinstance(element, int):
            parts.append(f"[{element}]")
        elif element in names:
            parts.append(f".{element}" if _PLAIN.fullmatch(element) else f"[{json.dumps(element, ensure_ascii=False)}]")
        else:
            parts.append("[*]")
    return "".join(parts)


def schema_names(schema: Any) -> frozenset[str]:
    """Every property name a schema names under ``properties`` or ``required``, at any depth."""
    names: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                names.update(key for key in properties if isinstance(key, str))
            required = node.get("required")
            if isinstance(required, list):
                names.update(name for name in required if isinstance(name, str))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(names)


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Check:
    """One check's outcome: what the verdict records, and the failure line when it failed."""

    __slots__ = ("data", "line")

    def __init__(self, data: dict[str, Any], line: str) -> None:
        self.data = data
        self.line = line

    @property
    def ok(self) -> bool:
        return bool(self.data["ok"])


class Expectation:
    """The checks of one ``expect()``: feed it the rows once, then read :meth:`checks`.

    ``validator``: a compiled jsonschema validator (or None: no row contract); ``errors(row)``:
    its errors for an invalid row, most relevant first (the contract tier's ranking). ``unique``:
    columns, or tuples of columns that must be unique together. ``fresh``: (column, max age, the
    max age as written). ``now``: the time freshness is measured against.
    """

    def __init__(
        self,
        columns: Sequence[str],
        *,
        validator: Any = None,
        errors: Callable[[Any], Iterable[Any]] | None = None,
        schema_label: str = "schema",
        max_invalid_ratio: float = 0.0,
        unique: Sequence[tuple[str, ...]] = (),
        not_null: Sequence[str] = (),
        min_rows: int | None = None,
        fresh: tuple[str, dt.timedelta, str] | None = None,
        key: Sequence[str] = (),
        now: dt.datetime | None = None,
    ) -> None:
        self.columns = list(columns)
        known = set(self.columns)
        named = [*(c for group in unique for c in group), *not_null, *key, *([fresh[0]] if fresh else [])]
        unknown = [name for name in named if name not in known]
        if unknown:
            listed = ", ".join(self.columns) or "none"
            raise KeyError(f"no column {unknown[0]!r} in the rows (columns: {listed})")
        self.validator = validator
        self.errors = errors
        self.schema_label = schema_label
        self.max_invalid_ratio = max_invalid_ratio
        self.unique = [tuple(group) for group in unique]
        self.not_null = list(not_null)
        self.min_rows = min_rows
        self.fresh = fresh
        self.key = list(key)
        self.now = now or dt.datetime.now(_UTC)
        self.rows = 0
        self.invalid = 0
        self.nulls = dict.fromkeys(self.not_null, 0)
        self.hashes = [array("q") for _ in self.unique]
        self.newest: dt.datetime | None = None
        self.unreadable = 0
        #: Up to SHOWN_ROWS invalid rows: (key text, violations).
        self.examples: list[tuple[str, list[str]]] = []
        #: The schema's own property names, found at the first invalid row.
        self._names: frozenset[str] | None = None

    def feed(self, rows: Iterable[dict[str, Any]]) -> None:
        """Check every row; keeps no row. The hot loop: locals only, a branch per kind of check.

        A row the checks cannot handle raises :class:`RowError` naming it by its key and the
        error's type only; an error of ``rows`` itself (the database's) goes through as it is."""
        validator = self.validator
        is_valid = validator.is_valid if validator is not None else None
        not_null = self.not_null
        nulls = self.nulls
        singles = [
            (group[0], seen.append) for group, seen in zip(self.unique, self.hashes, strict=False) if len(group) == 1
        ]
        composites = [
            (group, seen.append) for group, seen in zip(self.unique, self.hashes, strict=False) if len(group) > 1
        ]
        fresh_column = self.fresh[0] if self.fresh else None
        newest, unreadable = self.newest, self.unreadable
        # Columns whose values JSON Schema sees as text (timestamps, UUIDs): known from the first
        # non-null value of each column, as a column's type does not change within a result.
        undecided = list(self.columns) if is_valid is not None else []
        converters: list[tuple[str, Callable[[Any], Any]]] = []
        index = self.rows
        invalid = self.invalid
        failed: tuple[int, dict[str, Any], BaseException] | None = None
        for row in rows:
            try:
                for column in not_null:
                    if row[column] is None:
                        nulls[column] += 1
                for column, append in singles:
                    value = row[column]
                    if value is not None:
                        append(unique_code(value))
                for group, append in composites:
                    values = [row[column] for column in group]
                    if None not in values:  # as SQL's UNIQUE: a NULL in the key makes no duplicate
                        append(hash(tuple(map(unique_code, values))))
                if fresh_column is not None:
                    value = row[fresh_column]
                    if value is not None:
                        stamp = as_utc(value)
                        if stamp is None:
                            unreadable += 1
                        elif newest is None or stamp > newest:
                            newest = stamp
                if is_valid is not None:
                    if undecided:
                        for column in tuple(undecided):
                            value = row[column]
                            if value is not None:
                                undecided.remove(column)
                                form = JSON_FORMS.get(type(value))
                                if form is not None:
                                    converters.append((column, form))
                    for column, form in converters:
                        value = row[column]
                        if value is not None:
                            row[column] = form(value)
                    if not is_valid(row):
                        invalid += 1
                        if len(self.examples) < SHOWN_ROWS:
                            self.examples.append((self._key(row, index), self._violations(row)))
            except Exception as exc:  # noqa: BLE001 - any error of the checks: named, never shown
                failed = (index, row, exc)
                break
            index += 1
        self.rows, self.invalid, self.newest, self.unreadable = index, invalid, newest, unreadable
        if failed is not None:
            # Raised here, after the loop and from None: no frame of the loop, and no chained
            # exception, with a row in its locals or its message (pytest -l shows locals).
            position, row, error = failed
            message = f"{self._safe_key(row, position)}: the checks failed on this row: {type(error).__name__}"
            rows = row = value = values = stamp = failed = error = None  # type: ignore[assignment]
            raise RowError(message) from None

    def _key(self, row: dict[str, Any], index: int) -> str:
        if not self.key:
            return f"row {index}"
        parts = []
        for column in self.key:
            text = repr(row[column])
            parts.append(f"{column}={text if len(text) <= KEY_TEXT else text[: KEY_TEXT - 1] + '…'}")
        return ", ".join(parts)

    def _safe_key(self, row: dict[str, Any], index: int) -> str:
        try:
            return self._key(row, index)
        except Exception:  # noqa: BLE001 - a key that cannot be shown: the position says which row
            return f"row {index}"

    def _violations(self, row: dict[str, Any]) -> list[str]:
        assert self.errors is not None
        if self._names is None:
            self._names = schema_names(getattr(self.validator, "schema", None))
        return [violation(error, self._names) for error in self.errors(row)][:SHOWN_VIOLATIONS]

    # -- results ----------------------------------------------------------------------------

    def checks(self) -> list[Check]:
        """Each check's outcome, in the order of ``expect()``'s parameters."""
        rows = self.rows
        checks = []
        if self.validator is not None:
            ratio = self.invalid / rows if rows else 0.0
            ok = ratio <= self.max_invalid_ratio
            name = self.schema_label if self.schema_label.startswith("schema") else f"schema {self.schema_label}"
            line = (
                f"{name}: {self.invalid} of {rows} rows invalid ({ratio:.4%}), "
                f"over the limit of {self.max_invalid_ratio:.4%}"
            )
            examples = [f"    {where}: {'; '.join(found)}" for where, found in self.examples]
            checks.append(
                Check(
                    {
                        "check": "schema",
                        "schema": self.schema_label,
                        "invalid": self.invalid,
                        "ratio": round(ratio, 6),
                        "maxInvalidRatio": self.max_invalid_ratio,
                        "ok": ok,
                    },
                    "\n".join([line, *examples]),
                )
            )
        for group, seen in zip(self.unique, self.hashes, strict=False):
            duplicates = len(seen) - _distinct(seen)
            name = ", ".join(group)
            checks.append(
                Check(
                    {"check": "unique", "column": name, "duplicates": duplicates, "ok": duplicates == 0},
                    f"unique {name}: {duplicates} duplicate value{'s' if duplicates != 1 else ''} "
                    f"(rows whose value an earlier row already had; NULLs not counted)",
                )
            )
        for column in self.not_null:
            count = self.nulls[column]
            checks.append(
                Check(
                    {"check": "not_null", "column": column, "nulls": count, "ok": count == 0},
                    f"not_null {column}: {count} of {rows} rows are NULL",
                )
            )
        if self.min_rows is not None:
            ok = rows >= self.min_rows
            checks.append(
                Check(
                    {"check": "min_rows", "minRows": self.min_rows, "ok": ok},
                    f"min_rows: {rows} rows, expected at least {self.min_rows}",
                )
            )
        if self.fresh is not None:
            column, max_age, written = self.fresh
            newest = self.newest
            age = self.now - newest if newest is not None else None
            future = age is not None and age < -FUTURE_SLACK
            ok = age is not None and age <= max_age and not future and not self.unreadable
            if newest is None:
                line = f"fresh {column}: no timestamp in the column, expected one at most {written} old"
            elif future and age is not None:
                line = (
                    f"fresh {column}: newest {newest.isoformat()} is {_age(-age)} in the future "
                    f"(more than {_age(FUTURE_SLACK)} ahead of now is a clock or a load gone wrong), "
                    f"expected at most {written} old"
                )
            else:
                line = f"fresh {column}: newest {newest.isoformat()} is {_age(age)} old, expected at most {written}"
            if self.unreadable:
                line += f"; {self.unreadable} values are not timestamps (ISO-8601 text or a timestamp type)"
            checks.append(
                Check(
                    {
                        "check": "fresh",
                        "column": column,
                        "maxAge": written,
                        "newest": newest.isoformat() if newest is not None else None,
                        "unreadable": self.unreadable,
                        "ok": ok,
                    },
                    line,
                )
            )
        return checks


def unique_code(value: Any) -> int:
    """A value's 64-bit hash for ``unique``: equal values (1, 1.0, Decimal("1")) get one code.

    Python's own hash, but where it collides by construction: ints are hashed modulo 2**61 - 1
    (so 1 and 2**61, or 0.5 and 2**60, would be "duplicates"), and -1 hashes as -2. Ints from
    strictly between -2**60 and 2**60, but -1, are their own code; other ints, -1 included, are hashed as their
    text. jsonb objects and arrays (unhashable) are hashed by their structure. What then
    collides does so by chance, about n**2 / 2**65 for n distinct values (3 in a million for
    10 million).
    """
    kind = type(value)
    if kind is float:
        if value.is_integer():
            value, kind = int(value), int
    elif kind is decimal.Decimal:
        if value.is_finite() and value == value.to_integral_value():
            value, kind = int(value), int
    if kind is int:
        if -_SMALL_INT < value < _SMALL_INT and value != -1:
            return value
        return hash(("int", str(value)))
    if kind is dict:
        return hash(("object", frozenset((key, unique_code(item)) for key, item in value.items())))
    if kind is list or kind is tuple:
        return hash(("array", tuple(map(unique_code, value))))
    return hash(value)


def _distinct(seen: array) -> int:
    """How many different hashes: sorted in place (no copy), then the runs counted."""
    if len(seen) < 2:
        return len(seen)
    import numpy as np

    values = np.frombuffer(seen, dtype=np.int64)
    values.sort()
    return 1 + int(np.count_nonzero(values[1:] != values[:-1]))


def _age(age: dt.timedelta | None) -> str:
    if age is None:
        return "-"
    seconds = int(age.total_seconds())
    if seconds < 0:
        return f"{-seconds}s in the future, so 0s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days}d" * bool(days), f"{hours}h" * bool(hours), f"{minutes}m" * bool(minutes), f"{seconds}s"]
    return "".join(part for part in parts if part) if (days or hours or minutes) else f"{seconds}s"


def result(
    expectation: Expectation, checks: Sequence[Check], *, alias: str, table: str | None, sql: str | None
) -> dict[str, Any]:
    """What the verdict records of one expectation (its test is added by the statement)."""
    schema = next((check.data for check in checks if check.data["check"] == "schema"), None)
    return {
        "alias": alias,
        "table": table,
        "query": query_digest(sql) if sql is not None else None,
        "rows": expectation.rows,
        "invalid": schema["invalid"] if schema else None,
        "ratio": schema["ratio"] if schema else None,
        "checks": [check.data for check in checks],
        "ok": all(check.ok for check in checks),
    }


def failure(label: str, rows: int, checks: Sequence[Check]) -> str:
    """The AssertionError's message: each failed check with its numbers."""
    failed = [check for check in checks if not check.ok]
    head = f"data expectation on {label} failed: {len(failed)} of {len(checks)} checks over {rows} rows scanned"
    return "\n".join([head, *(f"  {check.line}" for check in failed)])
