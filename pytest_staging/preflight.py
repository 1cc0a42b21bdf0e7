"""The check made once, before the first test: is the target there, and is it the release?"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from .targets import Target, resolve_pointer


@dataclasses.dataclass(frozen=True)
class Preflight:
    """What the controller learned about the target; crosses to xdist workers as a dict."""

    #: One line that fails every test when set (unreachable, probe failed, release mismatch).
    error: str | None = None
    #: ``unreachable`` | ``version-probe`` | ``release-mismatch`` when ``error`` is set.
    kind: str | None = None
    deployed_version: str | None = None
    #: The URL (the target's or one it redirects to) that made the target sensitive.
    sensitive_match: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preflight:
        return cls(**data)


def short_reason(exc: BaseException) -> str:
    """``connection refused`` instead of a three-line urllib3 retry chain."""
    import requests

    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return errno.group(1).strip().lower()
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    return type(exc).__name__


def run_preflight(target: Target, release: str | None, sensitive_url: re.Pattern[str] | None) -> Preflight:
    """GET the target URL (following redirects) and, when configured, its version probe."""
    import requests

    from .http import StagingSession

    label = f"staging target {target.name!r} ({target.url})"
    with StagingSession(target) as http:
        try:
            response = http.get(target.url, allow_redirects=True)
        except requests.RequestException as exc:
            return Preflight(error=f"{label} is unreachable: {short_reason(exc)}", kind="unreachable")
        sensitive_match = None
        if sensitive_url is not None:
            hops = [r.url for r in response.history] + [response.url]
            sensitive_match = next((url for url in hops if sensitive_url.search(url)), None)
        if not target.version_url:
            return Preflight(sensitive_match=sensitive_match)

        probe = http.url_for(target.version_url)
        pointer = target.version_pointer or ""
        try:
            answer = http.get(probe)
        except requests.RequestException as exc:
            return Preflight(error=f"version probe {probe} failed: {short_reason(exc)}", kind="version-probe")
        if not answer.ok:
            return Preflight(error=f"version probe {probe} answered HTTP {answer.status_code}", kind="version-probe")
        if pointer:
            try:
                deployed: Any = resolve_pointer(json.loads(answer.text), pointer)
            except (ValueError, KeyError, TypeError):
                return Preflight(
                    error=f"version probe {probe}: no JSON value at version_pointer {pointer!r}",
                    kind="version-probe",
                )
        else:
            deployed = answer.text
        deployed = str(deployed).strip()
        if release is not None and deployed != release:
            return Preflight(
                error=f"deployed version {deployed!r} (from {probe}) is not --staging-release {release!r}; no result can be trusted",
                kind="release-mismatch",
                deployed_version=deployed,
                sensitive_match=sensitive_match,
            )
        return Preflight(deployed_version=deployed, sensitive_match=sensitive_match)
