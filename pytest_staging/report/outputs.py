"""The reports a gate run writes after its verdict: --staging-report (HTML), --staging-summary
and $GITHUB_STEP_SUMMARY (Markdown). Rendered from the verdict file as written. No pytest."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def written_verdict(path: Path, signing_key: Any, keyid: str | None) -> tuple[dict[str, Any], tuple[str, str]]:
    """The statement in the verdict file, and its signature checked with the public half of the
    key that signed it: (``verified`` | ``failed`` | ``unsigned``, words)."""
    from ..verdict.dsse import VerificationError
    from ..verdict.files import read_verdict

    raw = path.read_bytes()
    # The gate wrote this file a moment ago from a statement that fits the schema: not checked again.
    if signing_key is None:
        return read_verdict(raw, schema=False).statement, ("unsigned", "UNSIGNED: no signing key, it will not verify")
    try:
        statement = read_verdict(raw, [signing_key.public_key()], schema=False).statement
        return statement, ("verified", f"verified with the gate's key {(keyid or '')[:16]}…")
    except VerificationError as exc:
        return read_verdict(raw, schema=False).statement, ("failed", f"NOT VERIFIED: {exc}")


def write(settings: Any, verdict: Path, keyid: str | None) -> list[tuple[str, Path, str | None]]:
    """Every report ``settings`` asks for: (what, path, problem or None) each. A report that
    cannot be written is a problem line, never a lost verdict (it is written already)."""
    wanted = [
        (what, path, append)  # GitHub Actions collects every step's lines: append to it
        for what, path, append in (
            ("report", settings.report_path, False),
            ("summary", settings.summary_path, False),
            ("job summary", settings.step_summary_path, True),
        )
        if path is not None
    ]
    if not wanted:
        return []
    from ..verdict.files import write_atomic
    from .html import render
    from .text import markdown

    try:
        statement, signature = written_verdict(verdict, settings.signing_key, keyid)
        html = render(statement, signature=signature, trace_url=settings.trace_url) if settings.report_path else ""
        text = markdown(statement, signature=signature, trace_url=settings.trace_url)
    except Exception as exc:  # noqa: BLE001 - the verdict is written; a renderer bug must not undo the run
        return [(what, path, f"{type(exc).__name__}: {exc}") for what, path, _ in wanted]
    written: list[tuple[str, Path, str | None]] = []
    for what, path, append in wanted:
        data = (html if what == "report" else text).encode("utf-8")
        try:
            if append:
                with path.open("ab") as handle:
                    handle.write(data)
            else:
                write_atomic(path, data)
            written.append((what, path, None))
        except OSError as exc:
            written.append((what, path, exc.strerror or str(exc)))
    return written
