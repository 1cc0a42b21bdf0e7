"""The role of the process that issues the verdict: a plain run, or the xdist controller.

From configure to the end it holds the verdict path (an ``incomplete`` HOLD until the final
verdict replaces it); it runs the pre-flight before any test, decides from the ledger once the
run is over (or interrupted), signs and writes the verdict, its VSA and the reports, and shows the
terminal summary.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..core.ledger import Ledger
from ..core.preflight import Preflight
from .state import Gate, StagingWarning, drop_lineless_entries

if TYPE_CHECKING:
    from .controller import Controller

#: Exit status when every test passed but the gate did not PROMOTE.
EXIT_NOT_PROMOTED = 6


class Issuer:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.config = config = gate.config
        self.settings = settings = gate.settings
        self.ledger = gate.ledger
        #: The xdist controller (its workers' collections are merged before the decision), or None.
        self.controller: Controller | None = None
        self.failed_collectors: set[str] = set()
        self.issued: Any = None
        #: Why the final verdict could not be written (the incomplete HOLD stays), if it could not.
        self.write_error: str | None = None
        #: (path, metrics, problem or None) of the baseline this run saved (--staging-save-baseline).
        self.saved_baseline: tuple[Path, int, str | None] | None = None
        #: (what, path, error or None) of each report written at the end.
        self.reports_written: list[tuple[str, Path, str | None]] = []
        #: What became of the run's metrics (--staging-openmetrics, --staging-pushgateway): a line each.
        self.metrics_published: list[str] = []
        #: The session, once our sessionstart saw it; the verdict is issued once (``_finished``).
        self._session: pytest.Session | None = None
        self._finished = False
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

    def hold_verdict_path(self) -> None:
        """Put the ``incomplete`` HOLD at the verdict path: from here until the final verdict
        replaces it, a run killed outright (SIGKILL, OOM) leaves a HOLD, never an earlier run's
        verdict that release tooling would take for this run's. An unwritable path is a usage error."""
        from ..core.decide import incomplete
        from ..core.errors import ConfigError

        ledger = Ledger()
        ledger.shard = self.settings.shard  # a killed shard's verdict says which shard it was
        ledger.session.started = ledger.session.finished = time.time()
        ledger.session.exit_status = None  # the run has none yet
        try:
            issued = self._issue(incomplete(), self._policy(), Preflight(), ledger)
        except OSError as exc:
            path = self.settings.verdict_path
            raise ConfigError(
                "--staging-verdict",
                "",
                f"cannot write the verdict to {path} ({exc.strerror or exc}); give a writable path",
            ) from None
        try:  # the VSA path likewise: FAILED, never an earlier run's PASSED
            self._summarise(issued)
        except OSError as exc:
            path = self.settings.vsa.path
            raise ConfigError(
                "--staging-vsa", "", f"cannot write the VSA to {path} ({exc.strerror or exc}); give a writable path"
            ) from None

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

    # -- session start: the pre-flight, before any test -------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        gate = self.gate
        self._session = session
        self.ledger.session.started = time.time()
        gate.start_telemetry({"traceparent": self.settings.trace_parent} if self.settings.trace_parent else None)
        if self.settings.verdict_path is None:  # pytest runs no test: nothing to check the target for
            gate.preflight = Preflight()
            return
        from ..core.preflight import run_preflight

        gate.preflight = run_preflight(self.settings.target, self.settings.release, self.settings.sensitive_url)
        self.ledger.preflight_kind, self.ledger.preflight_error = gate.preflight.kind, gate.preflight.error
        if self.controller is None:  # the workers learn it from the controller
            gate.fail_tests_if_preflight_failed()

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        gate, settings = self.gate, self.settings
        target, preflight = gate.target, gate.preflight
        tiers_text = ",".join(settings.selected_tiers) if settings.selected_tiers else "all"
        line = (
            f"staging: target {target.name} ({gate.scrub(target.url)}), environment {target.environment}, "
            f"release {target.release or 'unknown'}, tiers {tiers_text}, "
            f"fail-fast {'on' if settings.fail_fast else 'off'}"
        )
        lines = [line]
        if settings.shard is not None:
            k, n = settings.shard.number, settings.shard.total
            lines.append(
                f"staging: shard {k} of {n}: runs the tests at positions {k}, {k + n}, {k + 2 * n}, … of each tier; "
                "its verdict is partial (merge the shards' verdicts with pytest-staging merge)"
            )
        if target.sensitive:
            lines.append("staging: target is sensitive: destructive tests will be skipped")
        if preflight is not None and preflight.error:
            lines.append(f"staging: pre-flight failed: {gate.scrub(preflight.error)}")
        return lines

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.failed_collectors.add(report.nodeid)

    # -- the end: the verdict -------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        drop_lineless_entries(excinfo)
        if isinstance(excinfo.value, pytest.Session.Interrupted) and self.failed_collectors:
            return  # pytest stopping for collection errors: not an interrupt
        facts = self.ledger.session
        facts.interrupted = True
        if self.settings.verdict_path is None:
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
            self._summarise(
                self._issue(decide(self.ledger, policy), policy, self.gate.preflight or Preflight(), self.ledger)
            )
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
            if self.gate.telemetry is not None:
                self.gate.telemetry.end_session(decision, session.exitstatus)

    def _finish(self, session: pytest.Session, exitstatus: int) -> Any:
        """Controller or plain run: decide and issue the verdict; returns the decision."""
        if self.config.option.collectonly or self.settings.verdict_path is None:
            return None
        from ..core.decide import decide

        if self.controller is not None:
            self.controller.merge_collections()
        facts = self.ledger.session
        facts.finished = time.time()
        facts.collection_errors = len(self.failed_collectors)
        facts.xdist_workers = len(self.controller.workers) if self.controller is not None else 0
        if exitstatus == pytest.ExitCode.INTERRUPTED and not facts.collection_errors:
            facts.interrupted = True
        if exitstatus == pytest.ExitCode.INTERNAL_ERROR:
            facts.internal_error = True
        if exitstatus == pytest.ExitCode.USAGE_ERROR:
            facts.usage_error = True
        self.ledger.close()
        gate = self.gate
        preflight = gate.preflight or Preflight()
        baseline = self.settings.baseline
        if baseline is not None:  # the series are read only when a baseline is compared or saved
            records = list(self.ledger.records.values())
            scrub = gate.scrub if gate.scrub else None
        if baseline is not None and baseline.compare is not None:
            from ..baseline.session import compare

            self.ledger.baseline = compare(records, baseline, scrub, gate.public_target())
        policy = self._policy()
        decision = decide(self.ledger, policy)
        # A shard's exit status follows what it alone decided: its verdict is partial, never PROMOTE.
        decided = decision.shard_decision or decision.decision
        if exitstatus == pytest.ExitCode.OK and decided != "PROMOTE" and not decision.only_user_deselection:
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
                records,
                baseline,
                scrub,
                target=gate.public_target(),
                release=gate.target.release,  # --staging-release, else what the probe reported
                decision=decision.decision,
            )
        if self.settings.report_path or self.settings.summary_path or self.settings.step_summary_path:
            from ..report.outputs import write

            self.reports_written = write(self.settings, self.issued.path, self.issued.keyid)
        if self.settings.vsa is not None:
            self.reports_written.append(("verification summary (VSA)", self.settings.vsa.path, None))
        if self.settings.openmetrics_path is not None or self.settings.pushgateway is not None:
            from ..report.openmetrics import publish

            self.metrics_published = publish(self.settings, self.issued.statement)
        return decision

    def _issue(self, decision: Any, policy: Any, preflight: Preflight, ledger: Ledger) -> Any:
        """Sign and write a verdict of ``ledger`` (stopping signals wait until it is written)."""
        from ..verdict.issue import issue
        from ..verdict.statement import iso

        gate, path = self.gate, self.settings.verdict_path
        assert path is not None  # the issuer writes only when pytest runs tests
        target = gate.target
        with gate.signals.held():
            return issue(
                path=path,
                ledger=ledger,
                decision=decision,
                policy=policy,
                policy_fields=self.settings.policy_fields(),
                target={**target.public(), "sensitive": target.sensitive},
                release={
                    "id": self.settings.release,
                    "deployedVersion": preflight.deployed_version,
                    "probe": target.version_url,
                    # Only when known: a verdict without a build time is what it was before.
                    **({"buildTime": iso(self.settings.build_time)} if self.settings.build_time is not None else {}),
                },
                subjects=gate.subjects,
                signing_key=self.settings.signing_key,
                now=ledger.session.finished,
                scrub=gate.scrub,
                quarantine={
                    "expired": list(gate.expired.values()),
                    "stale": gate.stale,
                    "maxQuarantined": self.settings.max_quarantined,
                },
                trace_id=gate.trace_id,
            )

    def _summarise(self, issued: Any) -> None:
        """Write the SLSA VSA of the verdict just written, when --staging-vsa asks for one."""
        vsa = self.settings.vsa
        if vsa is not None:
            from ..verdict.vsa import write_summary

            with self.gate.signals.held():
                write_summary(vsa, issued.path, issued.data, issued.statement, self.settings.signing_key)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        preflight = self.gate.preflight
        if preflight is not None and preflight.error:
            terminalreporter.section("staging")
            terminalreporter.write_line(f"pre-flight failed: {self.gate.scrub(preflight.error)}")
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
        for line in summary_lines(
            self.issued.statement, path=path, keyid=self.issued.keyid, public_key=self._public_key_hint()
        ):
            terminalreporter.write_line(line)
        if self.saved_baseline is not None:
            saved, count, problem = self.saved_baseline
            if problem is None:
                terminalreporter.write_line(
                    f"baseline saved: {self._shown_path(saved)} ({count} metric{'' if count == 1 else 's'})"
                )
            else:
                terminalreporter.write_line(f"baseline {self._shown_path(saved)} {problem}", red=True)
        for what, written, error in self.reports_written:
            if error is None:
                terminalreporter.write_line(f"{what}: {self._shown_path(written)}")
            else:
                terminalreporter.write_line(f"{what}: could not write {self._shown_path(written)}: {error}", red=True)
        for line in self.metrics_published:
            terminalreporter.write_line(line, yellow=line.startswith("WARNING"))

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
