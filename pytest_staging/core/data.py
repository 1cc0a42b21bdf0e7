"""Data expectations: every check of one ``staging_data.expect()`` over a stream of rows, in one pass.

Pure: no pytest, no database. The fixture (:mod:`..fixtures.data`) hands in the rows as dicts,
and the row contract's compiled validator (the contract tier's, :mod:`..fixtures.contract`).

Staged data is often production-derived, so nothing here keeps or shows a value of a row but
its key (``key=``, the primary key, the ``unique`` columns, else its position): a violation is
its JSON path, the schema keyword and what the *schema* says (``$.total: type: "number"``).

Memory stays flat in the number of rows, but for ``unique``: each unique column keeps one
64-bit hash per non-null value (8 bytes a row; 80 MB for 10 million rows), sorted at the end.
Two different values with one hash count as a duplicate: the check then fails, never passes
wrongly (for 10 million distinct values the chance is about 3 in a million).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
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
_INT64 = 1 << 63
_MASK64 = (1 << 64) - 1
_UTC = dt.timezone.utc


def _iso(value: Any) -> str:
    return value.isoformat()


#: Values JSON has no type for, as JSON Schema sees them: timestamps and dates as ISO-8601 text
#: (so ``format: date-time`` applies), UUIDs as text. Decimal stays: JSON Schema counts it a number.
JSON_FORMS: dict[type, Callable[[Any], Any]] = {
    dt.datetime: _iso,
    dt.date: _iso,
    dt.time: _iso,
    uuid.UUID: str,
}


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


def violation(error: Any, instance: Any) -> str:
    """One jsonschema error as ``$.path: keyword: what the schema says`` (never the row's value:
    the message jsonschema writes quotes it)."""
    keyword = error.validator
    if keyword == "required" and isinstance(instance, dict):
        missing = [name for name in error.validator_value if name not in instance]
        said = "missing " + ", ".join(map(str, missing))
    elif keyword in ("additionalProperties", "unevaluatedProperties") and error.validator_value is False:
        said = "not allowed"
    elif isinstance(error.validator_value, (dict, list)) and keyword not in ("enum", "type", "required"):
        said = "not met"  # a subschema (anyOf, items, not...): the keyword and path say where
    else:
        said = json.dumps(error.validator_value, default=str, ensure_ascii=False)
    if len(said) > SCHEMA_TEXT:
        said = said[: SCHEMA_TEXT - 1] + "…"
    return f"{error.json_path}: {keyword}: {said}"


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

    def feed(self, rows: Iterable[dict[str, Any]]) -> None:
        """Check every row; keeps no row. The hot loop: locals only, a branch per kind of check."""
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
        for row in rows:
            for column in not_null:
                if row[column] is None:
                    nulls[column] += 1
            for column, append in singles:
                value = row[column]
                if value is not None:
                    code = hash(value)
                    append(-1 if code == -2 and value == -1 else code)
            for group, append in composites:
                values = [row[column] for column in group]
                if None not in values:  # as SQL's UNIQUE: a NULL in the key makes no duplicate
                    append(_combined(values))
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
            index += 1
        self.rows, self.invalid, self.newest, self.unreadable = index, invalid, newest, unreadable

    def _key(self, row: dict[str, Any], index: int) -> str:
        if not self.key:
            return f"row {index}"
        parts = []
        for column in self.key:
            text = repr(row[column])
            parts.append(f"{column}={text if len(text) <= KEY_TEXT else text[: KEY_TEXT - 1] + '…'}")
        return ", ".join(parts)

    def _violations(self, row: dict[str, Any]) -> list[str]:
        assert self.errors is not None
        return [violation(error, row) for error in self.errors(row)][:SHOWN_VIOLATIONS]

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
            ok = age is not None and age <= max_age and not self.unreadable
            if newest is None:
                line = f"fresh {column}: no timestamp in the column, expected one at most {written} old"
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


def _combined(values: Sequence[Any]) -> int:
    """One 64-bit hash of several values (FNV-style). Not ``hash(tuple)``: Python hashes -1 and
    -2 alike (and so a tuple of them), which would make (1, -1) and (1, -2) duplicates."""
    combined = 0xCBF29CE484222325
    for value in values:
        code = hash(value)
        if code == -2 and value == -1:
            code = -1
        combined = ((combined ^ (code & _MASK64)) * 0x100000001B3) & _MASK64
    return combined - (1 << 64) if combined >= _INT64 else combined


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
