"""What every role of the gate shares: the settings, the target as the pre-flight found it, the
ledger, the test under way, the scrubber and the tracing. Not a plugin: the role objects
(:mod:`.collection`, :mod:`.accounting`, :mod:`.worker`, :mod:`.controller`, :mod:`.issuer`)
implement the hooks, and the fixtures reach this object through ``config.stash``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from ..core.interrupts import StopSignals
from ..core.ledger import Ledger, TestRecord
from ..core.preflight import Preflight
from ..core.redact import Scrubber
from ..core.targets import Target
from ..settings import Settings


def drop_lineless_entries(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """A signal can land on an instruction without a line number (Python 3.11+): pytest's report
    of the interrupt (the terminal's, after ``pytest_keyboard_interrupt``) then raised TypeError on
    that frame, and the run ended with exit 1 and a traceback, not as interrupted (2). Such
    entries are left out of the traceback."""

    def has_line(entry: Any) -> bool:
        try:
            entry.lineno  # noqa: B018  (raises TypeError when the frame has no line number)
        except TypeError:
            return False
        return True

    excinfo.traceback = excinfo.traceback.filter(has_line)


class StagingWarning(pytest.PytestWarning):
    """Something about the gate's evidence a release engineer should know (unsigned verdict...)."""


class Gate:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.scrub = Scrubber(settings.secrets)
        #: The pre-flight's result: run by the process that issues the verdict, handed to workers.
        self.preflight: Preflight | None = None
        self._target: Target | None = None
        #: The directory the xdist controller shares with its workers (tier barrier, collections).
        self.gate_dir: Path | None = None
        # One ledger. On a plain run its records are also where tests measure into; on an xdist
        # worker the records only measure, and travel on the reports to the controller's ledger.
        self.ledger = Ledger()
        self.ledger.shard = settings.shard  # until the collection is known (Collection._take_share)
        self.records = self.ledger.records
        #: The test under way from its setup report to its teardown report (see current_test).
        self.current: TestRecord | None = None
        #: The session, once collected (for a test that was added after collection finished).
        self.session: pytest.Session | None = None
        #: Quarantine entries past their date (by description) and entries matching no test.
        self.expired: dict[str, dict[str, Any]] = {}
        self.stale: list[dict[str, Any]] = []
        self.telemetry: Any = None  # a telemetry.spans.Telemetry when a tracer provider is in play
        self.signals = StopSignals()

    # -- the test under way -----------------------------------------------------------------

    def current_test(self) -> TestRecord | None:
        """The record the fixtures measure into: the test under way, also while its fixtures
        are set up (before its setup report, pytest names it in ``PYTEST_CURRENT_TEST``)."""
        if self.current is not None:
            return self.current
        running = os.environ.get("PYTEST_CURRENT_TEST")
        return None if running is None else self.record_for(running.rpartition(" (")[0])

    def record_for(self, nodeid: str) -> TestRecord | None:
        """The ledger's record of a test; one made now for a test another plugin added to the
        session after collection finished."""
        record = self.records.get(nodeid)
        if record is not None or self.session is None:
            return record
        item = next((item for item in self.session.items if item.nodeid == nodeid), None)
        if item is None:
            return None
        from .collection import classify_late

        tier, destructive, _ = classify_late(item, self.settings.default_tier)
        record = self.records[nodeid] = TestRecord(nodeid, tier, destructive)
        return record

    # -- the resolved target ----------------------------------------------------------------

    @property
    def target(self) -> Target:
        """The target as the pre-flight found it (sensitive by redirect, probed release)."""
        if self._target is not None:
            return self._target
        target = self.settings.target
        preflight = self.preflight
        if preflight is None:
            return target
        self._target = dataclasses.replace(
            target,
            sensitive=target.sensitive or preflight.sensitive_match is not None,
            release=target.release or preflight.deployed_version,
        )
        return self._target

    @property
    def subjects(self) -> tuple[Any, ...]:
        """The verdict's subjects. With no artifact named and no --staging-release, the version
        the pre-flight's probe reported names the release subject (``release:v1.4.2``)."""
        settings, preflight = self.settings, self.preflight
        if (
            settings.subject_from_release
            and not settings.release
            and preflight is not None
            and preflight.deployed_version
        ):
            from ..verdict.statement import release_subject

            return (release_subject(preflight.deployed_version),)
        return settings.subjects

    def public_target(self) -> dict[str, Any]:
        return {
            key: self.scrub(value) if isinstance(value, str) else value for key, value in self.target.public().items()
        }

    def is_quarantined(self, item: pytest.Item) -> bool:
        """An active quarantine covers this test (checked before re-running it)."""
        record = self.records.get(item.nodeid)
        return record is not None and record.quarantined

    def fail_tests_if_preflight_failed(self) -> None:
        # A plugin of its own, registered only then: a healthy run pays nothing per test for it.
        if self.preflight is not None and self.preflight.error:
            from .accounting import PreflightFailed

            self.config.pluginmanager.register(
                PreflightFailed(self.scrub(self.preflight.error)), "staging-preflight-failed"
            )

    # -- what tests use ---------------------------------------------------------------------

    def http_session(self) -> Any:
        from ..fixtures.http import StagingSession

        trace_headers = self.telemetry.headers if self.telemetry is not None else None
        return StagingSession(self.target, self.current_test, self.settings.sensitive_url, trace_headers)

    # -- tracing ----------------------------------------------------------------------------

    def start_telemetry(self, carrier: dict[str, str] | None, worker: bool = False) -> None:
        """Open the session span (or, on an xdist worker, join the controller's ``carrier``)."""
        # What may ask for tracing (telemetry.spans.resolve_provider decides): on most runs none
        # of it, and then the telemetry module is not even imported (6M instructions at start).
        if not (
            self.config.hook.pytest_staging_tracer_provider.get_hookimpls()
            or "opentelemetry.trace" in sys.modules
            or os.environ.get("OTEL_TRACES_EXPORTER")
        ):
            return
        from ..telemetry.spans import Telemetry, WorkerTelemetry, resolve_provider

        resolved = resolve_provider(self.config)
        if resolved is None:
            return
        self.telemetry = (WorkerTelemetry if worker else Telemetry)(self, *resolved)
        self.config.pluginmanager.register(self.telemetry, "staging-telemetry")
        self.telemetry.start_session(carrier)

    @property
    def trace_id(self) -> str | None:
        """The trace the gate's spans belong to; without tracing, the outer trace parent's."""
        if self.telemetry is not None:
            return self.telemetry.trace_id
        if self.settings.trace_parent:
            from ..core.traceparent import parse_traceparent

            parsed = parse_traceparent(self.settings.trace_parent)
            return parsed[0] if parsed else None
        return None
