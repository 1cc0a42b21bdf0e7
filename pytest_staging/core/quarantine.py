"""Quarantine: known-flaky tests that still run but do not block, each with an owner and an end.

The file (``staging-quarantine.toml``) and the ``quarantine`` marker give the same entries. An
entry is active through its ``until`` date (UTC) and expired from the day after; an expired entry
blocks again. Pure: no pytest imports.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .targets import tomllib

REQUIRED = ("test", "reason", "owner", "until")
OPTIONAL = ("ticket",)


@dataclasses.dataclass(frozen=True)
class Entry:
    test: str
    reason: str
    owner: str
    until: dt.date
    ticket: str | None = None
    #: ``staging-quarantine.toml`` entry N, or ``marker`` for @pytest.mark.quarantine.
    source: str = ""

    def matches(self, nodeid: str) -> bool:
        if self.test.endswith("*"):
            return nodeid.startswith(self.test[:-1])
        return nodeid == self.test

    def active(self, today: dt.date) -> bool:
        return today <= self.until

    def to_dict(self, today: dt.date) -> dict[str, Any]:
        data = {
            "test": self.test,
            "reason": self.reason,
            "owner": self.owner,
            "until": self.until.isoformat(),
            "status": "active" if self.active(today) else "expired",
            "source": self.source,
        }
        if self.ticket:
            data["ticket"] = self.ticket
        return data

    def describe(self) -> str:
        return f"{self.test} (owner {self.owner}, until {self.until.isoformat()})"


def today_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def _date(value: Any, where: str, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(where, field, f"expected a date YYYY-MM-DD, got {value!r}")


def entry_from(fields: Mapping[str, Any], where: str, prefix: str, source: str) -> Entry:
    """Validate one entry's fields (file table or marker kwargs)."""
    for key in fields:
        if key not in REQUIRED + OPTIONAL:
            raise ConfigError(
                where, f"{prefix}.{key}", f"unknown field; known fields: {', '.join(REQUIRED + OPTIONAL)}"
            )
    for key in REQUIRED:
        if key not in fields or fields[key] in ("", None):
            hint = "YYYY-MM-DD, the day it must be fixed by" if key == "until" else "a non-empty string"
            raise ConfigError(where, f"{prefix}.{key}", f"missing; every quarantine needs {key} ({hint})")
    for key in ("test", "reason", "owner", "ticket"):
        if key in fields and fields[key] is not None and not isinstance(fields[key], str):
            raise ConfigError(where, f"{prefix}.{key}", f"expected a string, got {fields[key]!r}")
    return Entry(
        test=fields["test"],
        reason=fields["reason"],
        owner=fields["owner"],
        until=_date(fields["until"], where, f"{prefix}.until"),
        ticket=fields.get("ticket"),
        source=source,
    )


def load(path: Path) -> list[Entry]:
    """Read a quarantine file; a missing default file is simply empty (the caller decides)."""
    where = str(path)
    toml = tomllib()
    try:
        text = path.read_bytes().decode("utf-8")
        data = toml.loads(text)
    except OSError as exc:
        raise ConfigError(where, "", f"cannot read it ({exc.strerror or exc})") from None
    except (toml.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(where, "", f"not valid TOML ({exc}); fix the syntax") from None
    extra = set(data) - {"quarantine"}
    if extra:
        raise ConfigError(where, sorted(extra)[0], "unknown top-level key; entries go in [[quarantine]] tables")
    tables = data.get("quarantine", [])
    if not isinstance(tables, list):
        raise ConfigError(where, "quarantine", "must be an array of tables: write each entry as [[quarantine]]")
    # tomllib gives no positions: find each [[quarantine]] header's line to point at it.
    headers = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip().startswith("[[quarantine]]")]
    entries = []
    for number, table in enumerate(tables, start=1):
        line = f" (line {headers[number - 1]})" if len(headers) == len(tables) else ""
        prefix = f"quarantine[{number}]{line}"
        if not isinstance(table, dict):
            raise ConfigError(where, prefix, "must be a table ([[quarantine]] with test = ...)")
        entries.append(entry_from(table, where, prefix, f"{path.name} entry {number}{line}"))
    return entries


def find(entries: Iterable[Entry], nodeid: str) -> Entry | None:
    """The entry for a test: an exact node id wins over a prefix, a longer prefix over a shorter."""
    best = None
    for entry in entries:
        if entry.matches(nodeid) and (best is None or _specificity(entry) > _specificity(best)):
            best = entry
    return best


def _specificity(entry: Entry) -> tuple[int, int]:
    return (0 if entry.test.endswith("*") else 1, len(entry.test))
