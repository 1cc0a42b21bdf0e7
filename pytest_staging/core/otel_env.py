"""The ``OTEL_*`` environment the gate honours when it builds its own tracer provider: which span
exporters ``OTEL_TRACES_EXPORTER`` names, and whether they are installed.

Pure: checked at configure time (a missing exporter stops the run before any test) without
importing OpenTelemetry; ``telemetry.spans`` builds the provider from the same names.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import ConfigError

EXPORTER_GROUP = "opentelemetry_traces_exporter"


def env_exporters(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Exporter names from ``OTEL_TRACES_EXPORTER`` (``none`` and an unset variable: none)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ()
    names = tuple(name.strip() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip())
    return () if names in ((), ("none",)) else names


def check_env_exporters(environ: Mapping[str, str]) -> str | None:
    """Before any test: each exporter named in ``OTEL_TRACES_EXPORTER`` must be installed
    (a ConfigError if not); returns a warning when the SDK itself is missing."""
    names = env_exporters(environ)
    if not names:
        return None
    import importlib.util

    if importlib.util.find_spec("opentelemetry.sdk") is None:
        return (
            "OTEL_TRACES_EXPORTER is set but opentelemetry-sdk is not installed: the gate makes no spans "
            "(pip install opentelemetry-sdk)"
        )
    from importlib.metadata import entry_points

    installed = {entry.name for entry in entry_points(group=EXPORTER_GROUP)}
    for name in names:
        if name not in installed:
            raise ConfigError(
                "OTEL_TRACES_EXPORTER",
                "",
                f"no span exporter named {name!r} is installed (installed: "
                f"{', '.join(sorted(installed)) or 'none'}); for otlp: pip install opentelemetry-exporter-otlp",
            )
    return None
