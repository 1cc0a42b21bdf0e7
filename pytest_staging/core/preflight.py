"""The check made once, before the first test: is the target there, and is it the release?

It uses the standard library rather than requests: the pre-flight runs in every gate session,
and importing requests costs more than the check itself (a suite that never uses
``staging_http`` should not pay for it). A plain ``http://`` target is asked through
:mod:`.http11`, a GET over a socket that spares importing http.client (its docstring has the
figure); ``https://`` goes through http.client. Either way it behaves like ``staging_http``:
the target's headers and timeout, connection errors retried, redirects followed (without
credentials across hosts).
"""

from __future__ import annotations

import json
import re
import socket
import time
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

from . import http11
from .targets import Target, join_url, resolve_pointer, without_userinfo

CONNECT_RETRIES = 2
MAX_REDIRECTS = 10
_REDIRECTS = {301, 302, 303, 307, 308}


class Preflight(NamedTuple):
    """What the controller learned about the target; crosses to xdist workers as a dict."""

    #: One line that fails every test when set (unreachable, probe failed, release mismatch).
    error: str | None = None
    #: ``unreachable`` | ``version-probe`` | ``release-mismatch`` when ``error`` is set.
    kind: str | None = None
    deployed_version: str | None = None
    #: The URL (the target's or one it redirects to) that made the target sensitive.
    sensitive_match: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preflight:
        return cls(**data)


class ProbeError(Exception):
    """The request did not get an answer; the message is a short reason."""


def short_reason(exc: BaseException) -> str:
    """``connection refused`` rather than a chain of library exceptions."""
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _connect(connect: Any) -> Any:
    """``connect()``, retried on connection errors (refused, unreachable, DNS, TLS)."""
    for attempt in range(CONNECT_RETRIES + 1):
        try:
            return connect()
        except OSError as exc:
            if attempt == CONNECT_RETRIES or isinstance(exc, TimeoutError):
                raise ProbeError(short_reason(exc)) from None
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")


def _get_once(url: str, headers: dict[str, str], timeout: float) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    for name, value in headers.items():
        if any(char in name + value for char in "\r\n\0"):
            raise ProbeError(f"header {name!r} holds a line break; fix it in the targets file")
    if parts.scheme == "http":
        host = parts.hostname or ""
        # An ASCII host as bytes: given text, getaddrinfo imports the IDNA codec and its
        # stringprep tables (5.6M instructions, callgrind) to encode even "127.0.0.1".
        address = (host.encode("ascii") if host.isascii() else host, parts.port or 80)
        sock = _connect(lambda: socket.create_connection(address, timeout=timeout))  # type: ignore[arg-type]
        try:
            return http11.get(sock, parts.netloc.rpartition("@")[2], path, headers)
        except (OSError, UnicodeEncodeError, http11.BadResponse) as exc:
            raise ProbeError(short_reason(exc)) from None
        finally:
            sock.close()
    import http.client

    connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout)
    _connect(connection.connect)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise ProbeError(short_reason(exc)) from None
    finally:
        connection.close()


def get(url: str, headers: dict[str, str], timeout: float) -> tuple[int, bytes, list[str]]:
    """GET following redirects; returns status, body and every URL visited (first to last)."""
    hops = [url]
    for _ in range(MAX_REDIRECTS + 1):
        status, response_headers, body = _get_once(hops[-1], headers, timeout)
        location = response_headers.get("location")
        if status not in _REDIRECTS or not location:
            return status, body, hops
        # User info in a redirect is neither sent (as with requests) nor ever shown.
        following = without_userinfo(urljoin(hops[-1], location))
        if urlsplit(following).netloc != urlsplit(hops[-1]).netloc:
            # As requests does: credentials are not sent to another host.
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        hops.append(following)
    raise ProbeError(f"more than {MAX_REDIRECTS} redirects")


def run_preflight(target: Target, release: str | None, sensitive_url: re.Pattern[str] | None) -> Preflight:
    """GET the target URL (following redirects) and, when configured, its version probe."""
    label = f"staging target {target.name!r} ({target.url})"
    headers = dict(target.headers)
    try:
        _, _, hops = get(target.url, headers, target.timeout)
    except ProbeError as exc:
        return Preflight(error=f"{label} is unreachable: {exc}", kind="unreachable")
    sensitive_match = None
    if sensitive_url is not None:
        sensitive_match = next((url for url in hops if sensitive_url.search(url)), None)
    if not target.version_url:
        return Preflight(sensitive_match=sensitive_match)

    probe = join_url(target.url, target.version_url)
    pointer = target.version_pointer or ""
    try:
        status, body, _ = get(probe, target.version_headers(), target.timeout)
    except ProbeError as exc:
        return Preflight(error=f"version probe {probe} failed: {exc}", kind="version-probe")
    if not 200 <= status < 300:
        return Preflight(error=f"version probe {probe} answered HTTP {status}", kind="version-probe")
    text = body.decode("utf-8", errors="replace")
    if pointer:
        try:
            deployed: Any = resolve_pointer(json.loads(text), pointer)
        except (ValueError, KeyError, TypeError):
            return Preflight(
                error=f"version probe {probe}: no JSON value at version_pointer {pointer!r}", kind="version-probe"
            )
    else:
        deployed = text
    deployed = str(deployed).strip()
    if release is not None and deployed != release:
        return Preflight(
            error=f"deployed version {deployed!r} (from {probe}) is not --staging-release {release!r}; no result can be trusted",
            kind="release-mismatch",
            deployed_version=deployed,
            sensitive_match=sensitive_match,
        )
    return Preflight(deployed_version=deployed, sensitive_match=sensitive_match)
