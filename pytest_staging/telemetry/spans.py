"""OpenTelemetry spans for the gate: a session span, one span per test under it.

Nothing here is imported, and no span is made, unless a tracer provider is in play:

1. one returned by the ``pytest_staging_tracer_provider`` hook (a conftest or plugin);
2. else the global provider, when someone has set one (``opentelemetry-instrument``, a conftest);
3. else one built here from the standard ``OTEL_*`` variables when ``OTEL_TRACES_EXPORTER``
   names an exporter (needs ``opentelemetry-sdk`` and that exporter's package).

Under xdist the controller owns the session span; its context reaches the workers through
``workerinput`` as a W3C ``traceparent``, so every worker's test spans join the one trace.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from ..core.ledger import FAILING, TestRecord
from ..core.otel_env import EXPORTER_GROUP, check_env_exporters, env_exporters

if TYPE_CHECKING:
    from ..gate.state import Gate

TRACER_NAME = "pytest-staging"
SESSION_SPAN = "staging gate"


def resolve_provider(config: pytest.Config, environ: Mapping[str, str] = os.environ) -> tuple[Any, bool] | None:
    """The tracer provider to use and whether the gate owns it (and so shuts it down), or None.

    Cheap when tracing is off: no OpenTelemetry import unless something asks for tracing.
    """
    hook = config.hook.pytest_staging_tracer_provider
    if hook.get_hookimpls():
        provider = hook(config=config)
        if provider is not None:
            return provider, False
    if "opentelemetry.trace" in sys.modules:  # whoever set a global provider imported this first
        from opentelemetry import trace

        provider = trace.get_tracer_provider()
        if not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
            return provider, False
    names = env_exporters(environ)
    if names and check_env_exporters(environ) is None:
        return _provider_from_env(names), True
    return None


def _provider_from_env(names: tuple[str, ...]) -> Any:
    from importlib.metadata import entry_points

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": TRACER_NAME}))
    provider = TracerProvider(resource=resource)
    for name in names:
        (entry,) = entry_points(group=EXPORTER_GROUP, name=name)
        provider.add_span_processor(BatchSpanProcessor(entry.load()()))
    return provider


def span_id_hex(span: Any) -> str:
    return format(span.get_span_context().span_id, "016x")


class Telemetry:
    """The gate's spans; registered as a plugin only when a provider is in play. A plain run's
    and the xdist controller's: they own the session span."""

    #: Whether the records are an xdist worker's, which have not absorbed the attempt under way.
    in_worker = False

    def __init__(self, gate: Gate, provider: Any, owned: bool) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        from .. import __version__

        self._context = context
        self._trace = trace
        self._propagator = TraceContextTextMapPropagator()
        self.gate = gate
        self.provider = provider
        self.owned = owned
        self.tracer = provider.get_tracer(TRACER_NAME, __version__)
        self.parent: Any = None  # the context test spans hang from
        self.session_span: Any = None
        self._span: Any = None  # the test under way
        self._final: TestRecord | None = None  # its reports (the last attempt's), for the outcome
        target = gate.target
        self._common = {
            "staging.target.name": target.name,
            "staging.target.environment": target.environment,
            "staging.release": gate.settings.release or target.release or "unknown",
        }

    # -- session ------------------------------------------------------------------------------

    def start_session(self, carrier: Mapping[str, str] | None) -> None:
        """Open the session span (under ``carrier``'s span, if given)."""
        parent = self._propagator.extract(dict(carrier)) if carrier else None
        attributes = {**self._common, "staging.target.url": self.gate.scrub(self.gate.target.url)}
        self.session_span = self.tracer.start_span(SESSION_SPAN, context=parent, attributes=attributes)
        self.parent = self._trace.set_span_in_context(self.session_span)

    def carrier(self) -> dict[str, str]:
        """The session span's ``traceparent`` (and ``tracestate``), for xdist workers."""
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=self.parent)
        return carrier

    @property
    def trace_id(self) -> str | None:
        span_context = self._trace.get_current_span(self.parent).get_span_context()
        return format(span_context.trace_id, "032x") if span_context.is_valid else None

    def end_session(self, decision: Any, exit_status: int) -> None:
        """At the session's end (every role): end the session span, if this process has it, and
        send on this process's spans now. An xdist worker may be ended once it reported its
        session's end (execnet interrupts it after a few seconds), so a flush at unconfigure
        lost a loaded worker's test spans."""
        span = self.session_span
        if span is not None:
            self.session_span = None
            if decision is not None:
                span.set_attribute("staging.decision", decision.decision)
                if decision.decision == "REJECT":
                    span.set_status(
                        self._trace.Status(self._trace.StatusCode.ERROR, self.gate.scrub(decision.reasons[0].text))
                    )
            span.set_attribute("staging.tests", len(self.gate.records))
            span.set_attribute("pytest.exit_status", int(exit_status))
            span.end()
        if hasattr(self.provider, "force_flush"):  # not shutdown(): the user's provider outlives the run
            self.provider.force_flush()

    def headers(self) -> dict[str, str]:
        """W3C trace headers for a request made now: the current span is the test's (or one the
        test opened inside it)."""
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier)
        return carrier

    # -- per test -------------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
        path, lineno, name = item.location
        record = self.gate.record_for(item.nodeid)
        attributes: dict[str, Any] = {
            **self._common,
            "test.case.name": item.nodeid,
            "staging.tier": record.tier if record is not None else "",
            "code.file.path": path,
            "code.function.name": name,
        }
        if lineno is not None:
            attributes["code.line.number"] = lineno + 1
        span = self._span = self.tracer.start_span(item.nodeid, context=self.parent, attributes=attributes)
        if record is not None:
            record.span_id = span_id_hex(span)
        self._final = TestRecord(item.nodeid, "smoke")
        token = self._context.attach(self._trace.set_span_in_context(span, self.parent))
        try:
            return (yield)
        finally:
            self._context.detach(token)
            self._end_test(span, self.gate.records.get(item.nodeid))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self._final is not None and report.nodeid == self._final.nodeid:
            self._final.absorb(report)

    def pytest_exception_interact(self, node: Any, call: Any, report: Any) -> None:
        """A failure (of any attempt): an ``exception`` event with the scrubbed message and the
        traceback as pytest reported it (already scrubbed)."""
        if self._span is None or not isinstance(report, pytest.TestReport):
            return
        scrub = self.gate.scrub
        excinfo = call.excinfo
        exc_type = excinfo.type
        self._span.add_event(
            "exception",
            {
                "exception.type": f"{exc_type.__module__}.{exc_type.__qualname__}"
                if exc_type.__module__ != "builtins"
                else exc_type.__qualname__,
                "exception.message": scrub(str(excinfo.value)),
                "exception.stacktrace": report.longreprtext,
                "exception.escaped": True,
            },
        )

    def _end_test(self, span: Any, record: TestRecord | None) -> None:
        final = self._final
        self._span = self._final = None
        outcome = final.outcome if final is not None else "notrun"
        if outcome == "running":  # setup passed, no teardown report: the protocol was cut short
            outcome = "notrun"
        span.set_attribute("staging.outcome", outcome)
        if outcome in ("passed", "xpassed", "xfailed"):
            span.set_attribute("test.case.result.status", "pass" if outcome != "xfailed" else "fail")
        elif outcome in FAILING:
            span.set_attribute("test.case.result.status", "fail")
        if record is not None:
            # On a plain run the record has absorbed this attempt already; a worker's has not.
            attempts = len(record.attempts) + 1 if self.in_worker else len(record.attempts)
            span.set_attribute("staging.attempts", max(attempts, 1))
            if record.flaky or (self.in_worker and record.attempts and outcome == "passed"):
                span.set_attribute("staging.flaky", True)
            if record.quarantine is not None:
                span.set_attribute("staging.quarantined", record.quarantined)
                span.set_attribute("staging.quarantine.owner", record.quarantine["owner"])
            if record.correlation_id_value is not None:
                span.set_attribute("staging.correlation_id", record.correlation_id_value)
        if outcome in FAILING and not (record is not None and record.quarantined):
            error = final.error if final is not None else None
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, self.gate.scrub(error or outcome)))
        span.end()

    # -- the end --------------------------------------------------------------------------------

    def pytest_unconfigure(self) -> None:
        if self.session_span is not None:  # a session that never reached sessionfinish
            self.session_span.end()
            self.session_span = None
        if self.owned:
            self.provider.shutdown()
        elif hasattr(self.provider, "force_flush"):
            self.provider.force_flush()


class WorkerTelemetry(Telemetry):
    """An xdist worker's spans: its tests' spans hang from the controller's session span, which
    ``carrier`` (from the controller's workerinput) names; the worker opens no session span."""

    in_worker = True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        self.end_session(None, 0)  # no session span here: this sends the worker's spans on

    def start_session(self, carrier: Mapping[str, str] | None) -> None:
        self.parent = self._propagator.extract(dict(carrier)) if carrier else None
