"""The outer trace the gate joins: a W3C ``traceparent`` (https://www.w3.org/TR/trace-context/)
from ``--staging-trace-parent`` or env ``TRACEPARENT``, typically a CI pipeline's span.

Pure: read at configure time without importing OpenTelemetry; the verdict names its trace id
even when no span is made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .errors import ConfigError

#: Compiled on first use (the ``re`` module caches it): most runs have no traceparent.
_TRACEPARENT = r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?"


def parse_traceparent(text: str) -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of a W3C ``traceparent`` header value, or None if it is not one."""
    match = re.fullmatch(_TRACEPARENT, text.strip())
    if match is None:
        return None
    version, trace_id, span_id, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id


def read_trace_parent(option: str | None, environ: Mapping[str, str]) -> str | None:
    """``--staging-trace-parent``, else env ``TRACEPARENT``: the outer (CI pipeline) span to join."""
    where, value = ("--staging-trace-parent", option) if option else ("TRACEPARENT", environ.get("TRACEPARENT", ""))
    if not value.strip():
        return None
    if parse_traceparent(value) is None:
        raise ConfigError(
            where,
            "",
            f"{value.strip()!r} is not a W3C traceparent (00-<32 hex trace id>-<16 hex span id>-<2 hex flags>)",
        )
    return value.strip()
