"""The active gate: the plugin object registered when a staging target is configured.

Three roles share this class: a plain run (everything in one process), an xdist controller
(pre-flight, crash bookkeeping, summary; it collects and runs nothing) and an xdist worker
(collection, tier gate, the tests themselves). ``self.role`` says which.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from ..core import tiers
from ..config import Settings
from ..core.ledger import Ledger, TestRecord
from ..core.interrupts import StopSignals
from ..core.preflight import Preflight
from ..core.redact import Scrubber, ScrubbingFormatter
from ..core.targets import Target

#: What the gate knows of an item: ``[tier, destructive, quarantine entry or None]``. One stash
#: entry, not three: a Stash item is a Python-level call, and collection makes thousands of them.
CLASS_KEY = pytest.StashKey[list]()
TIER, DESTRUCTIVE, QUARANTINE = 0, 1, 2
_GATE_MARKS = frozenset((*tiers.TIERS, "destructive", "quarantine"))
_TIER_PROPERTY = {tier: ("tier", tier) for tier in tiers.TIERS}  # one tuple per tier, not per test
GATE_DIR_KEY = "staging_gate_dir"
PREFLIGHT_KEY = "staging_preflight"
TRACE_KEY = "staging_trace"
#: A worker's collection, in the shared gate directory: the controller reads it as soon as the
#: worker reports its collection, so an interrupted run still knows every test and its tier.
COLLECTION_FILE = "collection-{}.json"
#: Exit status when every test passed but the gate did not PROMOTE.
EXIT_NOT_PROMOTED = 6


def _has_line(entry: Any) -> bool:
    """Whether pytest can place this traceback entry (its frame's line number is not None)."""
    try:
        entry.lineno
    except TypeError:
        return False
    return True


class StagingWarning(pytest.PytestWarning):
    """Something about the gate's evidence a release engineer should know (unsigned verdict...)."""


class Gate:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.scrub = Scrubber(settings.secrets)
        self._scrubbing = bool(self.scrub)
        workerinput = getattr(config, "workerinput", None)
        self.role = "worker" if workerinput is not None else "main"
        self.preflight: Preflight | None = None
        self._target: Target | None = None
        self.gate_dir: Path | None = None
        if workerinput is not None:
            self.preflight = Preflight.from_dict(workerinput[PREFLIGHT_KEY])
            if workerinput.get(GATE_DIR_KEY):
                self.gate_dir = Path(workerinput[GATE_DIR_KEY])
            self._fail_tests_if_preflight_failed()
        self.gate: tiers.TierGate = tiers.TierGate(settings.fail_fast)
        self.collected_tiers: set[str] = set()
        self.tier_of: dict[str, str] = {}
        # One ledger; on a plain run its records are also where tests measure into. On an xdist
        # worker the records only measure, and travel on the reports to the controller's ledger.
        self.ledger = Ledger()
        self.records = self.ledger.records
        self.current: TestRecord | None = None
        self.failed: set[str] = set()
        self.failed_collectors: set[str] = set()
        self.workers: set[str] = set()
        self._marks_cache: dict[Any, tuple[str, ...]] = {}
        #: Every collected item before any deselection, and the ids of those reported deselected.
        self._collected: list[pytest.Item] = []
        self._deselected: set[int] = set()
        #: Quarantine entries past their date (by description) and entries matching no test.
        self.expired: dict[str, dict[str, Any]] = {}
        self.stale: list[dict[str, Any]] = []
        self._shared: tiers.SharedTierGate | None = None
        self._quarantine_marked = False  # some test has @pytest.mark.quarantine
        self.issued: Any = None
        #: Why the final verdict could not be written (the incomplete HOLD stays), if it could not.
        self.write_error: str | None = None
        #: (path, metrics, problem or None) of the baseline this run saved (--staging-save-baseline).
        self.saved_baseline: tuple[Path, int, str | None] | None = None
        #: (what, path, error or None) of each report written at the end.
        self.reports_written: list[tuple[str, Path, str | None]] = []
        self.telemetry: Any = None  # a telemetry.Telemetry when a tracer provider is in play
        self._crash_log: tiers.SharedLog | None = None
        #: The session, once our sessionstart saw it; the verdict is issued once (``_finished``).
        self._session: pytest.Session | None = None
        self._finished = False
        #: Collection files of xdist workers already merged into the ledger (controller).
        self._merged: set[str] = set()
        #: Workers that went down interrupted: the test each was running did not crash.
        self._interrupted_workers: set[str] = set()
        self._signals: Any = None
        if self.role == "main":
            if settings.signing_key is None:
                config.issue_config_time_warning(
                    StagingWarning(
                        "the verdict will be unsigned: no signing key (--staging-signing-key or STAGING_SIGNING_KEY); "
                        "an unsigned verdict never verifies"
                    ),
                    stacklevel=2,
                )
            if settings.subject_from_release:
                if settings.release or not settings.target.version_url:
                    message = f"no artifact named: the verdict's subject is only {settings.subjects[0].name}"
                    if not settings.release:
                        message += " (and no --staging-release)"
                else:  # the subject is named after the pre-flight (Gate.subjects)
                    message = (
                        "no artifact named: the verdict's subject is only release:<the version the target's probe reports> "
                        f"({settings.subjects[0].name} if it reports none)"
                    )
                message += "; name the build with --staging-artifact=NAME@sha256:HEX or --staging-artifact-file=PATH"
                config.issue_config_time_warning(StagingWarning(message), stacklevel=2)
            for warning in settings.warnings:
                config.issue_config_time_warning(StagingWarning(warning), stacklevel=2)

    # -- the verdict path is held from the start -------------------------------------------

    @property
    def writes_verdict(self) -> bool:
        """This process writes the verdict: a plain run or the xdist controller, when pytest runs
        tests (not --collect-only, --fixtures, --setup-plan...: then the path is None)."""
        return self.role != "worker" and self.settings.verdict_path is not None

    def hold_verdict_path(self) -> None:
        """Put the ``incomplete`` HOLD at the verdict path (fail closed): from here until the final
        verdict replaces it, a run killed outright leaves a HOLD, never an earlier run's verdict.
        An unwritable path is a usage error."""
        if not self.writes_verdict:
            return
        from ..core.decide import incomplete
        from ..core.errors import ConfigError

        ledger = Ledger()
        ledger.session.started = ledger.session.finished = time.time()
        ledger.session.exit_status = None  # the run has none yet
        try:
            issued = self._issue(incomplete(), self._policy(), Preflight(), ledger)
        except OSError as exc:
            path = self.settings.verdict_path
            raise ConfigError(
                "--staging-verdict", "", f"cannot write the verdict to {path} ({exc.strerror or exc}); give a writable path"
            ) from None
        try:  # the VSA path likewise: FAILED, never an earlier run's PASSED
            self._summarise(issued)
        except OSError as exc:
            path = self.settings.vsa.path
            raise ConfigError("--staging-vsa", "", f"cannot write the VSA to {path} ({exc.strerror or exc}); give a writable path") from None

    def catch_stop_signals(self) -> None:
        """SIGTERM and SIGHUP stop the run like Ctrl-C, in every process: a CI job killed by
        process group then interrupts an xdist worker's test, it does not crash it."""
        self._signals = StopSignals()
        self._signals.install()

    def _policy(self) -> Any:
        from ..core.decide import Policy

        settings, baseline = self.settings, self.settings.baseline
        return Policy(
            required_tiers=settings.required_tiers,
            fail_fast=settings.fail_fast,
            flaky=settings.flaky,
            max_quarantined=settings.max_quarantined,
            baseline_marginal=baseline.marginal if baseline else "hold",
            baseline_inconclusive=baseline.inconclusive if baseline else "hold",
            baseline_strict=baseline.strict if baseline else False,
            allow_deselection=settings.allow_deselection,
        )

    # -- the resolved target -------------------------------------------------------------

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
        if settings.subject_from_release and not settings.release and preflight is not None and preflight.deployed_version:
            from ..verdict.statement import release_subject

            return (release_subject(preflight.deployed_version),)
        return settings.subjects

    def http_session(self):
        from ..fixtures.http import StagingSession

        trace_headers = self.telemetry.headers if self.telemetry is not None else None
        return StagingSession(self.target, lambda: self.current, self.settings.sensitive_url, trace_headers)

    @property
    def trace_id(self) -> str | None:
        """The trace the gate's spans belong to; without tracing, the outer trace parent's."""
        if self.telemetry is not None:
            return self.telemetry.trace_id
        if self.settings.trace_parent:
            from ..telemetry.spans import parse_traceparent

            parsed = parse_traceparent(self.settings.trace_parent)
            return parsed[0] if parsed else None
        return None

    # -- session start: pre-flight on the controller, handed to xdist workers ---------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._session = session
        self._scrub_log_handlers()
        self.ledger.session.started = time.time()
        self._start_telemetry()
        if self.role == "worker":
            return
        if self.config.pluginmanager.has_plugin("dsession"):
            self.role = "controller"
            self.gate_dir = Path(tempfile.mkdtemp(prefix="pytest-staging-"))
            self._crash_log = tiers.SharedLog(self.gate_dir, "controller")
        if self.settings.verdict_path is None:  # pytest runs no test: nothing to check the target for
            self.preflight = Preflight()
            return
        from ..core.preflight import run_preflight

        self.preflight = run_preflight(self.settings.target, self.settings.release, self.settings.sensitive_url)
        self.ledger.preflight_kind, self.ledger.preflight_error = self.preflight.kind, self.preflight.error
        self._fail_tests_if_preflight_failed()

    def _start_telemetry(self) -> None:
        # What may ask for tracing (telemetry.resolve_provider decides): most runs, none of it,
        # and then the telemetry module is not even imported (6M instructions, bench/overhead.py).
        if not (
            self.config.hook.pytest_staging_tracer_provider.get_hookimpls()
            or "opentelemetry.trace" in sys.modules
            or os.environ.get("OTEL_TRACES_EXPORTER")
        ):
            return
        from ..telemetry.spans import resolve_provider

        resolved = resolve_provider(self.config)
        if resolved is None:
            return
        from ..telemetry.spans import Telemetry

        self.telemetry = Telemetry(self, *resolved)
        self.config.pluginmanager.register(self.telemetry, "staging-telemetry")
        if self.role == "worker":
            carrier = self.config.workerinput.get(TRACE_KEY)  # type: ignore[attr-defined]
        else:
            carrier = {"traceparent": self.settings.trace_parent} if self.settings.trace_parent else None
        self.telemetry.start_session(carrier)

    def _fail_tests_if_preflight_failed(self) -> None:
        # A separate plugin object, so a healthy run pays nothing per test for this check.
        if self.preflight is not None and self.preflight.error:
            self.config.pluginmanager.register(PreflightFailed(self.scrub(self.preflight.error)), "staging-preflight-failed")

    def workerinput(self) -> dict[str, Any]:
        assert self.preflight is not None
        return {
            PREFLIGHT_KEY: self.preflight.to_dict(),
            GATE_DIR_KEY: str(self.gate_dir or ""),
            TRACE_KEY: self.telemetry.carrier() if self.telemetry is not None else None,
        }

    def crashed(self, nodeid: str) -> None:
        """A worker died running ``nodeid``: count it as finished and failed for the barrier."""
        if self._crash_log is not None:
            self._crash_log.append("done", nodeid, True)

    def worker_up(self, worker_id: str) -> None:
        self.workers.add(worker_id)

    def worker_down(self, worker_id: str, error: Any) -> None:
        """A worker finished; one that went down with an error crashed, unless it was interrupted
        (Ctrl-C reaches the workers too): then the run was interrupted, and the test the worker
        was running did not crash."""
        if error == "keyboard-interrupt":
            self._interrupted_workers.add(worker_id)
            self.ledger.session.interrupted = True
        elif error is not None:
            self.ledger.session.crashed_workers += 1

    def worker_collected(self, worker_id: str) -> None:
        """A worker reported its collection: merge the file it wrote just before."""
        if self.gate_dir is not None:
            self._merge_collection(self.gate_dir / COLLECTION_FILE.format(worker_id))

    def _merge_collection(self, path: Path) -> None:
        if path.name in self._merged:
            return
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):  # never written (the worker died first), or cut short
            return
        self._merged.add(path.name)
        ledger = self.ledger
        ledger.collected_tiers |= set(data["collectedTiers"])
        for tier, count in data["deselected"].items():
            # Every worker collects and deselects the same tests: take the count, do not add.
            ledger.deselected[tier] = max(ledger.deselected.get(tier, 0), count)
        ledger.unpinned = ledger.unpinned or data["unpinned"]  # the same on every worker
        ledger.expect(tuple(test) for test in data["tests"])  # type: ignore[misc]
        self.expired.update(data["expired"])
        self.stale = data["stale"]  # every worker collects the same tests: any one's list will do

    def _publish_collection(self, session: pytest.Session) -> None:
        """Worker: write what it collected where the controller reads it (plain data, atomically)."""
        from ..verdict.files import write_atomic

        data = {
            "tests": [self._expected(item) for item in session.items],
            "collectedTiers": sorted(self.collected_tiers),
            "deselected": self.ledger.deselected,
            "unpinned": self.ledger.unpinned,
            "expired": self.expired,
            "stale": self.stale,
        }
        worker_id = self.config.workerinput["workerid"]  # type: ignore[attr-defined]
        assert self.gate_dir is not None
        write_atomic(self.gate_dir / COLLECTION_FILE.format(worker_id), json.dumps(data).encode("utf-8"))

    def _scrub_log_handlers(self) -> None:
        if not self.scrub:
            return
        logging_plugin = self.config.pluginmanager.get_plugin("logging-plugin")
        for name in ("log_cli_handler", "log_file_handler"):
            handler = getattr(logging_plugin, name, None)
            if handler is not None and handler.formatter is not None:
                handler.setFormatter(ScrubbingFormatter(handler.formatter, self.scrub))

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        target = self.target
        settings = self.settings
        tiers_text = ",".join(settings.selected_tiers) if settings.selected_tiers else "all"
        line = (
            f"staging: target {target.name} ({self.scrub(target.url)}), environment {target.environment}, "
            f"release {target.release or 'unknown'}, tiers {tiers_text}, "
            f"fail-fast {'on' if settings.fail_fast else 'off'}"
        )
        lines = [line]
        if target.sensitive:
            lines.append("staging: target is sensitive: destructive tests will be skipped")
        if self.preflight is not None and self.preflight.error:
            lines.append(f"staging: pre-flight failed: {self.scrub(self.preflight.error)}")
        return lines

    # -- collection -------------------------------------------------------------------------

    def _marks(self, node: Any) -> tuple[str, ...]:
        """Tier and destructive marker names on a node and its parents; parents' answers cached,
        so collecting thousands of tests walks each module's markers once."""
        cache = self._marks_cache
        parent = node.parent
        inherited = cache.get(parent) if parent is not None else ()
        if inherited is None:
            inherited = cache[parent] = self._marks(parent)
        if not node.own_markers:  # most tests: nothing of their own
            return inherited
        own = tuple(mark.name for mark in node.own_markers if mark.name in _GATE_MARKS)
        return inherited + own if own else inherited

    def _classify(self, item: pytest.Item) -> str | None:
        """Stash the item's tier, destructive flag and quarantine entry; a problem with its
        markers comes back as one line (for a collection error)."""
        marks = self._marks(item)
        if not marks:  # most tests: the default tier, nothing else to look at
            item.stash[CLASS_KEY] = [self.settings.default_tier, False, None]
            return None
        found = tiers.tier_markers(marks)
        classified = item.stash[CLASS_KEY] = [found[0] if found else self.settings.default_tier, "destructive" in marks, None]
        if len(found) > 1:
            return (
                f"staging: {item.nodeid} has tier markers {' and '.join(found)}; "
                "a test belongs to exactly one tier, keep one marker"
            )
        if "quarantine" in marks:
            from ..core.errors import ConfigError
            from ..core.quarantine import entry_from

            mark = item.get_closest_marker("quarantine")
            assert mark is not None
            try:
                if mark.args:
                    raise ConfigError("", "", "give reason=, owner=, until= (and ticket=) as keyword arguments")
                classified[QUARANTINE] = entry_from({"test": item.nodeid, **mark.kwargs}, "", "quarantine", "marker")
                self._quarantine_marked = True
            except ConfigError as exc:
                field = exc.field.removeprefix("quarantine.")
                return f"staging: {item.nodeid}: @pytest.mark.quarantine{': ' + field if field else ''}: {exc.problem}"
        return None

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, Any]:
        report = yield
        if report.passed and report.result:
            for node in report.result:
                if isinstance(node, pytest.Item) and (problem := self._classify(node)) is not None:
                    report.outcome = "failed"
                    report.longrepr = problem
                    report.result = []
                    break
        self.scrub.report(report)
        return report

    def is_quarantined(self, item: pytest.Item) -> bool:
        """An active quarantine covers this test (checked before re-running it)."""
        record = self.records.get(item.nodeid)
        return record is not None and record.quarantined

    def _quarantine(self, items: list[pytest.Item]) -> None:
        """Match quarantine entries to the collected tests; active ones run as non-strict xfail,
        so a failure does not block (pytest counts it xfailed) and a pass is an xpass."""
        from ..core.quarantine import find, today_utc

        entries = self.settings.quarantine
        today = today_utc()
        matched: set[Any] = set()
        for item in items:
            classified = item.stash[CLASS_KEY]
            entry = classified[QUARANTINE]
            if entry is None and entries:
                entry = classified[QUARANTINE] = find(entries, item.nodeid)
            if entry is None:
                continue
            matched.add(entry)
            if entry.active(today):
                reason = f"quarantined: {entry.reason} (owner {entry.owner}, until {entry.until.isoformat()})"
                item.add_marker(pytest.mark.xfail(reason=reason, strict=False, run=True))
            else:
                self.expired.setdefault(entry.describe(), entry.to_dict(today))
        self.stale = [entry.to_dict(today) for entry in entries if entry not in matched]

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> Generator[None, None, None]:
        # Before -k/-m and other plugins deselect: which tiers exist at all (required tiers).
        for item in items:
            if CLASS_KEY not in item.stash:  # made by a collector whose report we did not see
                self._classify(item)
        self._marks_cache.clear()
        if self.settings.quarantine or self._quarantine_marked:
            self._quarantine(items)
        self.collected_tiers = {item.stash[CLASS_KEY][TIER] for item in items}
        self._collected = list(items)  # to find, later, tests dropped without pytest_deselected
        result = yield
        selected = self.settings.selected_tiers
        if selected is not None:
            keep = [item for item in items if item.stash[CLASS_KEY][TIER] in selected]
            dropped = [item for item in items if item.stash[CLASS_KEY][TIER] not in selected]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
                items[:] = keep
        # Stable: within a tier, the order pytest (or another plugin) chose is kept.
        if len(self.collected_tiers) > 1:
            items.sort(key=lambda item: tiers.ORDER[item.stash[CLASS_KEY][TIER]])
        return result

    def _entry_dict(self, entry: Any) -> dict[str, Any] | None:
        if entry is None:
            return None
        from ..core.quarantine import today_utc

        return entry.to_dict(today_utc())

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self._count_deselected(items)
        self._deselected.update(map(id, items))

    def _count_deselected(self, items: list[pytest.Item]) -> None:
        for item in items:
            classified = item.stash.get(CLASS_KEY, None)
            tier = classified[TIER] if classified else self.settings.default_tier
            self.ledger.deselected[tier] = self.ledger.deselected.get(tier, 0) + 1

    def _unpinned_deselection(self, session: pytest.Session) -> list[str]:
        """Deselection no policy can pin: tests a plugin dropped without telling pytest (counted
        as deselected here), and --lf/--sw, whose choice depends on the cache, not the command."""
        kept = set(map(id, session.items))
        dropped = [item for item in self._collected if id(item) not in kept and id(item) not in self._deselected]
        self._collected = []
        unpinned = []
        if dropped:
            self._count_deselected(dropped)
            unpinned.append(f"{len(dropped)} dropped by a plugin without pytest_deselected")
        config = self.config
        last_failed = config.pluginmanager.get_plugin("lfplugin")
        if config.getoption("lf", False) and getattr(last_failed, "lastfailed", None):
            # With failures on record, --lf collects only them: the rest of their files is never
            # collected, nor are files without one; neither is reported as deselected.
            skipped = getattr(last_failed, "_skipped_files", 0)
            files = f" ({skipped} test file{'' if skipped == 1 else 's'} not collected)" if skipped else ""
            unpinned.append(f"--lf ran only the last failures{files}")
        if (config.getoption("stepwise", False) or config.getoption("stepwise_skip", False)) and self.ledger.deselected:
            unpinned.append("--sw started after the tests that passed last time")
        return unpinned

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.failed_collectors.add(report.nodeid)

    def _expected(self, item: pytest.Item) -> tuple[str, str, bool, dict[str, Any] | None]:
        tier, destructive, entry = item.stash[CLASS_KEY]
        return item.nodeid, tier, destructive, self._entry_dict(entry) if entry else None

    # tryfirst: a worker's collection file is written before xdist tells the controller it collected.
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.ledger.collected_tiers = set(self.collected_tiers)
        self.ledger.unpinned = self._unpinned_deselection(session)
        self.ledger.expect([self._expected(item) for item in session.items])
        if self.role == "worker":
            # The barrier needs every test's tier; the controller, the whole collection.
            self.tier_of = {nodeid: record.tier for nodeid, record in self.records.items()}
        if self.role == "worker" and self.gate_dir is not None:
            self._publish_collection(session)
            log = tiers.SharedLog(self.gate_dir, str(self.config.workerinput["workerid"]))  # type: ignore[attr-defined]
            self.gate = self._shared = tiers.SharedTierGate(self.settings.fail_fast, log, self.tier_of)

    # -- running --------------------------------------------------------------------------
    # Per-test work is kept to two hooks (setup, logreport): it runs thousands of times.

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        record = self.records.get(item.nodeid)
        if record is None:  # an item added after collection finished (by another plugin)
            tier, destructive, entry = item.stash[CLASS_KEY]
            record = self.records[item.nodeid] = TestRecord(item.nodeid, tier, destructive, quarantine=self._entry_dict(entry))
        self.current = record
        if self._shared is not None:
            self._shared.starting(item.nodeid)
        # The tier gate only when it can say something: a barrier to wait at, or a failed tier.
        if self._shared is not None or self.gate.failed_tiers:
            reason = self.gate.before(record.tier)
            if reason is not None:
                pytest.skip(reason)
        if record.destructive and self.target.sensitive:
            pytest.skip(f"staging: destructive test not run on sensitive target {self.target.name}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """First to see each report: make it safe to show (scrub, skip location, properties),
        then account for it (ledger, tier gate). Every later consumer — terminal, JUnit XML,
        xdist's channel to the controller — sees the finished report."""
        role = self.role
        if role == "controller":
            extra = report.__dict__
            if report.when == "???" and self._interrupted_workers:
                node = extra.get("node")
                if node is not None and node.gateway.id in self._interrupted_workers:
                    return  # "crashed" by Ctrl-C: the test was interrupted and stays notrun
            self.ledger.add_report(report, report.nodeid, extra.get("staging_tier"), extra.get("staging_measured"))
            return
        # The test under way (set by our setup hook): no node-id lookup on the hot path. The
        # setup report, first of each test, checks it is really that test's.
        record, when = self.current, report.when
        if record is None or (when == "setup" and record.nodeid != report.nodeid):
            record = self.records.get(report.nodeid)
            if record is None:
                return
        outcome = report.outcome
        if outcome == "failed":
            self.failed.add(record.nodeid)
        elif outcome == "skipped" and isinstance(report.longrepr, tuple) and report.longrepr[2].startswith("Skipped: staging:"):
            # Point at the test, not at this plugin, as pytest does for skip markers.
            report.longrepr = (report.location[0], (report.location[1] or 0) + 1, report.longrepr[2])
        if self._scrubbing:
            self.scrub.report(report)
        if role == "worker":
            report.staging_tier = record.tier  # the controller's ledger learns tiers from reports
        if when != "teardown":
            if role == "main":
                if outcome == "passed" and "wasxfail" not in report.__dict__:  # the common case, inline
                    record.duration += report.duration
                    record.outcome = "running" if when == "setup" else "passed"
                else:
                    record.absorb(report)
            return
        properties = report.user_properties
        properties.append(_TIER_PROPERTY[record.tier])
        if record.correlation_id_value is not None:
            properties.append(("correlation_id", record.correlation_id_value))
        if record.quarantine is not None:
            properties += [("quarantine_owner", record.quarantine["owner"]), ("quarantine_until", record.quarantine["until"])]
        if record.attempts:  # earlier attempts of a re-run: this is attempt len + 1
            properties.append(("flaky_attempts", len(record.attempts) + 1))
        if role == "worker":
            # Plain data on the report: how a worker's measurements reach the controller's ledger.
            report.staging_measured = record.measured()
        else:
            record.absorb(report)
        self.current = None
        failed = record.nodeid in self.failed
        if failed or self._shared is not None:  # a plain run's gate only counts failed tiers
            self.gate.finished(record.nodeid, record.tier, failed)

    @pytest.hookimpl(tryfirst=True)
    def pytest_warning_recorded(self, warning_message: Any) -> None:
        if self._scrubbing:
            message = warning_message.message
            text = str(message)
            if self.scrub(text) != text:
                warning_message.message = type(message)(self.scrub(text)) if isinstance(message, Warning) else self.scrub(text)

    # -- the end: the verdict -------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # A signal can land on an instruction without a line number (Python 3.11+): pytest's
        # report of the interrupt (the terminal's, after this hook) raised TypeError on that frame,
        # and the run ended with exit 1 and a traceback, not as interrupted (2). Leave it out.
        excinfo.traceback = excinfo.traceback.filter(_has_line)
        if isinstance(excinfo.value, pytest.Session.Interrupted) and self.failed_collectors:
            return  # pytest stopping for collection errors: not an interrupt
        facts = self.ledger.session
        facts.interrupted = True
        if not self.writes_verdict:
            return
        # What is known now replaces the incomplete HOLD at once: xdist's teardown of its workers
        # can take seconds that a CI time-out (SIGTERM, then SIGKILL) may not give. The final
        # verdict, after the teardown, replaces this one.
        from ..core.decide import decide

        self.ledger.close()  # the test under way was interrupted: it did not run
        facts.finished = time.time()
        facts.exit_status = int(pytest.ExitCode.INTERRUPTED)
        policy = self._policy()
        try:
            self._summarise(self._issue(decide(self.ledger, policy), policy, self.preflight or Preflight(), self.ledger))
        except OSError:  # the final verdict tries again (and reports a failure to write)
            pass

    def pytest_internalerror(self) -> None:
        self.ledger.session.internal_error = True

    # A wrapper, innermost (trylast): it runs after every plain sessionfinish (xdist's teardown of
    # its workers included) and before the terminal summary, and it sees their exceptions.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
        try:
            return (yield)
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM while xdist tears its workers down: the run was interrupted. The
            # verdict is written below; the interrupt ends here, not as execnet's traceback.
            self.ledger.session.interrupted = True
            session.exitstatus = pytest.ExitCode.INTERRUPTED
            return None
        except pytest.exit.Exception as exc:  # pytest.exit() in another plugin's sessionfinish
            self.ledger.session.interrupted = True
            if exc.returncode is not None:
                session.exitstatus = exc.returncode
            raise
        except BaseException:
            self.ledger.session.internal_error = True  # another plugin's sessionfinish failed
            raise
        finally:
            self._end(session)

    def _end(self, session: pytest.Session) -> None:
        """Issue the verdict once, with stopping signals held back while it is written."""
        if self._finished:
            return
        self._finished = True
        decision = None
        try:
            decision = self._finish(session, session.exitstatus)
        finally:
            if self.telemetry is not None:
                self.telemetry.end_session(decision, session.exitstatus)

    def _finish(self, session: pytest.Session, exitstatus: int) -> Any:
        """Controller or plain run: decide and issue the verdict; returns the decision."""
        if self.role == "worker" or self.config.option.collectonly or self.settings.verdict_path is None:
            return None
        from ..core.decide import decide

        if self.role == "controller" and self.gate_dir is not None:
            # Collections not merged yet (the run stopped before the controller read them).
            for path in sorted(self.gate_dir.glob(COLLECTION_FILE.format("*"))):
                self._merge_collection(path)
        facts = self.ledger.session
        facts.finished = time.time()
        facts.collection_errors = len(self.failed_collectors)
        facts.xdist_workers = len(self.workers)
        if exitstatus == pytest.ExitCode.INTERRUPTED and not facts.collection_errors:
            facts.interrupted = True
        if exitstatus == pytest.ExitCode.INTERNAL_ERROR:
            facts.internal_error = True
        if exitstatus == pytest.ExitCode.USAGE_ERROR:
            facts.usage_error = True
        self.ledger.close()
        preflight = self.preflight or Preflight()
        baseline = self.settings.baseline
        if baseline is not None:  # the series are read only when a baseline is compared or saved
            records = list(self.ledger.records.values())
            scrub = self.scrub if self._scrubbing else None
        if baseline is not None and baseline.compare is not None:
            from ..baseline.session import compare

            self.ledger.baseline = compare(records, baseline, scrub, self._public_target())
        policy = self._policy()
        decision = decide(self.ledger, policy)
        if exitstatus == pytest.ExitCode.OK and decision.decision != "PROMOTE" and not decision.only_user_deselection:
            session.exitstatus = EXIT_NOT_PROMOTED
        facts.exit_status = int(session.exitstatus)
        try:
            self.issued = self._issue(decision, policy, preflight, self.ledger)
            self._summarise(self.issued)
        except OSError as exc:
            # The incomplete HOLD (or nothing) stays at the path: say so, and never exit 0.
            self.write_error = f"could not write the verdict or its VSA: {exc.strerror or exc} ({exc.filename or self.settings.verdict_path})"
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = EXIT_NOT_PROMOTED
            return decision
        if baseline is not None and baseline.save_path is not None:
            from ..baseline.session import save

            self.saved_baseline = save(
                records, baseline, scrub, target=self._public_target(), release=self.settings.release, decision=decision.decision
            )
        if self.settings.report_path or self.settings.summary_path or self.settings.step_summary_path:
            from ..report.outputs import write

            self.reports_written = write(self.settings, self.issued.path, self.issued.keyid)
        if self.settings.vsa is not None:
            self.reports_written.append(("verification summary (VSA)", self.settings.vsa.path, None))
        return decision

    def _public_target(self) -> dict[str, Any]:
        return {key: self.scrub(value) if isinstance(value, str) else value for key, value in self.target.public().items()}

    def _issue(self, decision: Any, policy: Any, preflight: Preflight, ledger: Ledger) -> Any:
        """Sign and write a verdict of ``ledger`` (stopping signals wait until it is written)."""
        from ..verdict.issue import issue

        target = self.target
        with self._signals.held() if self._signals is not None else contextlib.nullcontext():
            return issue(
                path=self.settings.verdict_path,
                ledger=ledger,
                decision=decision,
                policy=policy,
                policy_fields=self.settings.policy_fields(),
                target={**target.public(), "sensitive": target.sensitive},
                release={"id": self.settings.release, "deployedVersion": preflight.deployed_version, "probe": target.version_url},
                subjects=self.subjects,
                signing_key=self.settings.signing_key,
                now=ledger.session.finished,
                scrub=self.scrub,
                quarantine={"expired": list(self.expired.values()), "stale": self.stale, "maxQuarantined": self.settings.max_quarantined},
                trace_id=self.trace_id,
            )

    def _summarise(self, issued: Any) -> None:
        """Write the SLSA VSA of the verdict just written, when --staging-vsa asks for one."""
        vsa = self.settings.vsa
        if vsa is not None:
            from ..verdict.vsa import write_summary

            with self._signals.held() if self._signals is not None else contextlib.nullcontext():
                write_summary(vsa, issued.path, issued.data, issued.statement, self.settings.signing_key)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.preflight is not None and self.preflight.error:
            terminalreporter.section("staging")
            terminalreporter.write_line(f"pre-flight failed: {self.scrub(self.preflight.error)}")
        if self.write_error is not None:
            terminalreporter.section("staging verdict")
            terminalreporter.write_line(f"ERROR: {self.write_error}", red=True)
        if self.issued is None:
            return
        from ..report.text import baseline_lines, flaky_quarantine_lines, summary_lines

        path = self._shown_path(self.issued.path)
        flaky_and_quarantined = flaky_quarantine_lines(self.issued.statement)
        if flaky_and_quarantined:
            terminalreporter.section("staging: flaky and quarantined")
            for line in flaky_and_quarantined:
                terminalreporter.write_line(line, yellow=line.startswith("WARNING"))
        baseline = baseline_lines(self.issued.statement)
        if baseline:
            terminalreporter.section("staging baseline")
            for line in baseline:
                terminalreporter.write_line(line, yellow=line.startswith("WARNING"))
        terminalreporter.section("staging verdict")
        for line in summary_lines(self.issued.statement, path=path, keyid=self.issued.keyid, public_key=self._public_key_hint()):
            terminalreporter.write_line(line)
        if self.saved_baseline is not None:
            saved, count, problem = self.saved_baseline
            if problem is None:
                terminalreporter.write_line(f"baseline saved: {self._shown_path(saved)} ({count} metric{'' if count == 1 else 's'})")
            else:
                terminalreporter.write_line(f"baseline {self._shown_path(saved)} {problem}", red=True)
        for what, written, error in self.reports_written:
            if error is None:
                terminalreporter.write_line(f"{what}: {self._shown_path(written)}")
            else:
                terminalreporter.write_line(f"{what}: could not write {self._shown_path(written)}: {error}", red=True)

    def _summary_after_the_fact(self) -> None:
        """The verdict line when the terminal summary never ran."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if self.issued is None or reporter is None:
            return
        predicate = self.issued.statement["predicate"]
        reporter.write_line(
            f"staging verdict: {predicate['decision']} ({', '.join(predicate['reasonCodes'])}) "
            f"written to {self._shown_path(self.issued.path)}"
        )

    def _shown_path(self, path: Path) -> Path:
        here = self.config.invocation_params.dir
        return path.relative_to(here) if path.is_relative_to(here) else path

    def _public_key_hint(self) -> str | None:
        """``gate.pub`` next to ``--staging-signing-key=gate.key`` (keygen's pair), if it is there."""
        key = self.config.option.staging_signing_key
        if not key or not key.endswith(".key"):
            return None
        public = key[: -len(".key")] + ".pub"
        return public if (self.config.invocation_params.dir / public).is_file() else None

    def pytest_unconfigure(self) -> None:
        if not self._finished and self._session is not None:
            # The session started but never reached sessionfinish (Ctrl-C or SIGTERM during the
            # pre-flight or xdist's start-up, an internal error there): decide from what there is.
            self._end(self._session)
            self._summary_after_the_fact()
        if self._signals is not None:
            self._signals.restore()
        if self._shared is not None:
            self._shared.log.close()
        if self._crash_log is not None:
            self._crash_log.close()
        if self.role == "controller" and self.gate_dir is not None:
            shutil.rmtree(self.gate_dir, ignore_errors=True)


class PreflightFailed:
    """Registered only when the pre-flight failed: every test that gets to run fails with its line."""

    def __init__(self, line: str) -> None:
        self.line = line

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self) -> None:
        pytest.fail(self.line, pytrace=False)
