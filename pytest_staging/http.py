"""``staging_http``: a requests Session bound to the staging target."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.util.retry import Retry

from .targets import join_url, without_userinfo

if TYPE_CHECKING:
    from .ledger import TestRecord
    from .targets import Target

#: Connection attempts retried per request. Only failures to *connect* are retried: the request
#: never reached the target, so retrying is safe for any method. Read errors and bad statuses
#: are the target's answer and must reach the test.
CONNECT_RETRIES = 2
CORRELATION_HEADER = "X-Correlation-ID"


class SensitiveRedirectError(requests.RequestException):
    """A destructive test's request was redirected to a sensitive URL; it was not followed."""


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of a URL: the target's headers go only where these match."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


class StagingSession(requests.Session):
    """A :class:`requests.Session` for one staging target.

    - relative URLs are joined to the target URL (``/json`` → ``<target>/json``, keeping any
      path prefix of the target);
    - every request gets the target's timeout unless one is given; requests to the target (same
      scheme, host and port) get its headers, its credentials among them, and requests to any
      other host do not;
    - connection errors are retried (``CONNECT_RETRIES`` times), nothing else is;
    - inside a test, each request carries that test's ``X-Correlation-ID`` and its latency is
      recorded as the metric ``"<METHOD> <path>"`` in milliseconds (``metric="GET /items/{id}"``
      names it yourself, like locust's ``name=``: requests to many URLs become one series);
    - with tracing on, each request carries the W3C ``traceparent`` (and ``tracestate``) of the
      current span (the test's), so the target's spans become its children.
    """

    def __init__(
        self,
        target: Target,
        current: Callable[[], TestRecord | None] = lambda: None,
        sensitive_url: re.Pattern[str] | None = None,
        trace_headers: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        super().__init__()
        self.target = target
        self._current = current
        self._sensitive_url = sensitive_url
        self._trace_headers = trace_headers
        self._origin = origin(target.url)
        self.headers.update(target.headers)
        retry = Retry(total=None, connect=CONNECT_RETRIES, read=False, status=0, other=0, backoff_factor=0.1)
        adapter = HTTPAdapter(max_retries=retry)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def url_for(self, url: str) -> str:
        return join_url(self.target.url, url)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.target.timeout
        record = self._current()
        full_url = self.url_for(url)
        elsewhere = self.target.headers and origin(full_url) != self._origin
        if record is not None or elsewhere:
            headers = CaseInsensitiveDict(kwargs.get("headers") or {})
            if elsewhere:  # None: requests leaves the session's header out of this request
                for name in self.target.headers:
                    headers.setdefault(name, None)
            if record is not None:
                headers.setdefault(CORRELATION_HEADER, record.correlation_id)
                if self._trace_headers is not None:
                    for name, value in self._trace_headers().items():
                        headers.setdefault(name, value)
            kwargs["headers"] = headers
        metric = kwargs.pop("metric", None)
        if metric is not None and (not isinstance(metric, str) or not metric.strip()):
            raise TypeError(f"staging_http: metric= names the latency series and must be a non-empty string, got {metric!r}")
        started = time.perf_counter()
        response = super().request(method, full_url, *args, **kwargs)
        if record is not None:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            record.add_metric(metric or f"{method.upper()} {urlsplit(full_url).path or '/'}", elapsed_ms, "ms")
        return response

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        location = super().get_redirect_target(resp)
        record = self._current()
        if location and record is not None and record.destructive and self._sensitive_url is not None:
            absolute = without_userinfo(urljoin(resp.url, location))
            if self._sensitive_url.search(absolute):
                raise SensitiveRedirectError(
                    f"redirect to {absolute} matches --staging-sensitive-url; a destructive test never follows it",
                    response=resp,
                )
        return location
