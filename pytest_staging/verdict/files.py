"""Writing a verdict atomically and reading one back (strict when writing, lenient when reading)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


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


def envelope_bytes(envelope: dict[str, Any]) -> bytes:
    """The envelope as compact JSON with sorted keys, one line: what ``json.dumps`` writes."""
    return (json.dumps(envelope, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")


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
        predicate["reasons"] = [{"code": code, "text": text} for code, text in zip(codes, reasons)]
    return statement


def reason_texts(predicate: dict[str, Any]) -> list[str]:
    """The words of each reason, for people; a plain-string reason (an older verdict) is its text."""
    return [str(reason.get("text", "")) if isinstance(reason, dict) else str(reason) for reason in predicate.get("reasons") or []]
