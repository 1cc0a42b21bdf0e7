"""Writing a verdict atomically and reading one back."""

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


def envelope_bytes(envelope: dict[str, Any]) -> bytes:
    """The envelope as compact JSON with sorted keys (what ``json.dumps`` writes).

    The payload, most of the file, is base64 (``A-Z a-z 0-9 + / =``), which JSON needs no escape
    for: it is spliced in rather than scanned character by character by the encoder.
    """
    payload = envelope["payload"]
    if '"' in payload or "\\" in payload or not payload.isascii():
        raise ValueError("the DSSE payload is not standard base64")
    text = json.dumps({**envelope, "payload": ""}, sort_keys=True, separators=(",", ":"))
    return (text.replace('"payload":""', f'"payload":"{payload}"', 1) + "\n").encode("ascii")
