"""Hooks pytest-staging adds; implement them in a ``conftest.py`` or a plugin."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_staging_tracer_provider(config: pytest.Config) -> Any:
    """Return the OpenTelemetry ``TracerProvider`` the gate's spans go to, or None.

    Without an implementation the gate uses the global provider when one has been set (for
    example by ``opentelemetry-instrument``), else one built from the standard ``OTEL_*``
    variables when ``OTEL_TRACES_EXPORTER`` is set, else no tracing at all. The provider stays
    yours: the gate flushes it at the end of the session but never shuts it down. Under xdist it
    is called in every worker too.
    """
