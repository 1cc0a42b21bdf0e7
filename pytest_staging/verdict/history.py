"""Read many verdict files into one :class:`~pytest_staging.core.history.History`, one file at a
time: each is read (through the one reader, :func:`.files.read_verdict`), counted and dropped
before the next, so memory does not grow with the number of verdicts (bench/history.py).

``pytest-staging history`` and ``pytest-staging report --history`` read through :func:`read_history`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..core.history import History
from . import PREDICATE_TYPE
from .dsse import VerificationError

#: The verdict files a directory is searched for (recursively): ``*.intoto.json``.
SUFFIX = ".intoto.json"


class Skipped(NamedTuple):
    path: str
    why: str


class Read(NamedTuple):
    history: History
    #: Files that were read and counted (partials and older ones included: see History).
    verdicts: int
    #: With keys: verdicts that did not verify, not counted.
    unverified: list[Skipped]
    #: Files that could not be read or are not promotion verdicts (named by the command).
    unreadable: list[Skipped]
    #: Other attestations found in a directory (a VSA beside the verdict), left out.
    others: int


def verdict_files(paths: Sequence[str]) -> Iterator[str | Unwalkable]:
    """Each file given, and each ``*.intoto.json`` under each directory given (recursively, in
    sorted order), once: a path given twice, or inside a directory also given, is read once.
    Directories are walked as they are read: no list of every file is held."""
    resolved = [Path(path).resolve() for path in paths]
    directories = {here for here in resolved if here.is_dir()}
    kept = [
        path
        for index, (path, here) in enumerate(zip(paths, resolved, strict=True))
        if here not in resolved[:index]
        # read by a directory's walk already (a file the walk would not read is read as given)
        and not (here.name.endswith(SUFFIX) and any(here != d and here.is_relative_to(d) for d in directories))
        and not any(here.is_dir() and here != d and here.is_relative_to(d) for d in directories)
    ]
    for path in kept:
        if os.path.isdir(path):
            yield from _walk(path)
        else:
            yield path


class Unwalkable(NamedTuple):
    """A directory under a given one that could not be listed (read_history names it)."""

    path: str
    why: str


def _walk(directory: str) -> Iterator[str | Unwalkable]:
    problems: list[OSError] = []
    for root, dirs, files in os.walk(directory, onerror=problems.append):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(SUFFIX):
                yield os.path.join(root, name)
    for error in problems:  # a directory it could not list: named, never silently left out
        yield Unwalkable(str(error.filename or directory), error.strerror or str(error))


def read_history(
    paths: Sequence[str],
    keys: Sequence[Any] = (),
    *,
    since: float | None = None,
    recent: int = 0,
    schema: bool = True,
) -> Read:
    """Every verdict under ``paths`` added to one History. With ``keys``, a verdict must verify
    with one of them to count; one that does not is skipped and listed in ``unverified``."""
    history = History(since=since, recent=recent)
    unverified: list[Skipped] = []
    unreadable: list[Skipped] = []
    verdicts = others = 0
    for path in verdict_files(paths):
        if isinstance(path, Unwalkable):
            unreadable.append(Skipped(path.path, f"cannot list the directory ({path.why})"))
            continue
        statement = _statement(path, keys, unverified, unreadable, schema)
        if statement is None:
            continue
        if statement.get("predicateType") != PREDICATE_TYPE:
            others += 1
            continue
        try:
            history.add(statement, source=path)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:  # valid, but shaped unlike ours
            unreadable.append(Skipped(path, f"cannot count it ({type(exc).__name__}: {exc})"))
            continue
        verdicts += 1
    return Read(history, verdicts, unverified, unreadable, others)


def _statement(
    path: str, keys: Sequence[Any], unverified: list[Skipped], unreadable: list[Skipped], schema: bool
) -> dict[str, Any] | None:
    from .files import read_verdict

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        unreadable.append(Skipped(path, f"cannot read it ({exc.strerror or exc})"))
        return None
    try:
        # The schema is checked below, once the predicate type says the file is a verdict at all:
        # a VSA beside it is another attestation, not a broken verdict.
        statement = read_verdict(raw, keys, schema=False).statement
    except VerificationError as exc:
        if keys and _is_envelope(raw):
            unverified.append(Skipped(path, str(exc)))
        else:
            unreadable.append(Skipped(path, str(exc)))
        return None
    if not isinstance(statement, dict):
        unreadable.append(Skipped(path, "the payload is not a statement"))
        return None
    if schema and not keys and statement.get("predicateType") == PREDICATE_TYPE:
        from .files import check_statement

        try:
            check_statement(statement)
        except VerificationError as exc:
            unreadable.append(Skipped(path, str(exc)))
            return None
    return statement


def _is_envelope(raw: bytes) -> bool:
    """The file is a well-formed envelope (so a failure with keys is the signature's)."""
    from . import dsse

    try:
        dsse.parse(raw)
    except VerificationError:
        return False
    return True
