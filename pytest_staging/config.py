"""Options, ini keys and environment → one frozen :class:`Settings`, read once at configure time.

Every user mistake found here becomes a :class:`ConfigError` (the skin turns it into a usage
error, exit code 4) before any test runs.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .core.errors import ConfigError
from .core.tiers import TIERS

if TYPE_CHECKING:  # the rest is imported when a target is configured, never by an inert run
    import pytest

    from .core.targets import Target
    from .verdict.statement import Subject

TARGETS_FILE = "staging-targets.toml"
VERDICT_FILE = "staging-verdict.intoto.json"
QUARANTINE_FILE = "staging-quarantine.toml"


# A named tuple, not a frozen dataclass: as immutable, and generating a dataclass's methods for
# these thirty fields cost every run of pytest with the plugin installed, inert too, some 20
# million instructions at import (bench/overhead.py, callgrind).
class Settings(NamedTuple):
    target: Target
    #: Tiers chosen with --staging-tier; None = all.
    selected_tiers: tuple[str, ...] | None
    fail_fast: bool
    sensitive_url: re.Pattern[str] | None
    release: str | None
    default_tier: str
    #: ini staging_required_tiers; None = every tier with a collected test.
    required_tiers: tuple[str, ...] | None
    secrets: frozenset[str]
    #: Where the verdict goes (None on xdist workers: only the controller writes it).
    verdict_path: Path | None = None
    #: The Ed25519 private key, or None (unsigned verdict, with a warning).
    signing_key: Any = None
    require_signature: bool = False
    subjects: tuple[Subject, ...] = ()
    #: True when no artifact was named and the subject is ``release:<ID>``.
    subject_from_release: bool = False
    quarantine: tuple[Any, ...] = ()
    quarantine_path: Path | None = None
    max_quarantined: float = 0.2
    reruns: int = 0
    flaky: str = "allow"
    #: --staging-trace-parent / TRACEPARENT: the outer span the gate's session span joins.
    trace_parent: str | None = None
    #: Warnings to show once the gate is up (e.g. OTEL_TRACES_EXPORTER without the SDK).
    warnings: tuple[str, ...] = ()
    #: --staging-load-processes / --staging-load-workers: how locust spreads the load.
    load: Any = None
    #: --staging-baseline / --staging-save-baseline and their ini keys (None when neither is used).
    baseline: BaselineSettings | None = None
    #: --staging-report: the HTML report written after the verdict (controller only).
    report_path: Path | None = None
    #: Where the Markdown summary goes: --staging-summary and/or $GITHUB_STEP_SUMMARY (appended).
    summary_path: Path | None = None
    step_summary_path: Path | None = None
    #: ini staging_trace_url: a link template with {trace_id}.
    trace_url: str | None = None
    #: ini staging_allow_deselection: deselection is recorded, not held (SPEC §12).
    allow_deselection: bool = False
    #: What the user asked to run: ``args`` (relative to the rootdir), ``keyword`` (-k), ``markexpr`` (-m).
    selection: Mapping[str, Any] | None = None
    #: --staging-vsa and its options: a ``verdict.vsa.VsaSettings`` (controller only), or None.
    vsa: Any = None

    def policy_fields(self) -> dict[str, Any]:
        """The gate settings recorded, with their digest, in the verdict's ``policy`` (the
        statement adds this run's count of deselected tests to the selection, outside the digest)."""
        return {
            "allowDeselection": self.allow_deselection,
            "selection": dict(self.selection or {}),
            "failFast": self.fail_fast,
            "selectedTiers": list(self.selected_tiers) if self.selected_tiers else None,
            "defaultTier": self.default_tier,
            "requiredTiersSource": "ini" if self.required_tiers is not None else "collected",
            "sensitiveUrl": self.sensitive_url.pattern if self.sensitive_url else None,
            "requireSignature": self.require_signature,
            "reruns": self.reruns,
            "flaky": self.flaky,
            "maxQuarantined": self.max_quarantined,
            "quarantineFile": str(self.quarantine_path) if self.quarantine_path else None,
            "baseline": self.baseline.policy_fields() if self.baseline and self.baseline.compare else None,
        }

    def __repr__(self) -> str:  # the signing key stays out of reprs and tracebacks
        return f"Settings(target={self.target!r}, verdict_path={self.verdict_path!r}, signed={self.signing_key is not None})"


class BaselineSettings(NamedTuple):
    """How this run is compared with a baseline, and where its own series are saved."""

    #: The baseline read from --staging-baseline (controller only), or None.
    compare: Any = None
    #: The path as the user gave it (for messages and the verdict).
    shown: str | None = None
    save_path: Path | None = None
    #: ``Rules`` (metric name → Rule) from the baseline file's and pyproject.toml's tables.
    rules: Any = None
    rules_file: str | None = None
    confidence: float = 0.98
    pass_score: float = 95.0
    marginal_score: float = 75.0
    strict: bool = False
    #: What a MARGINAL comparison does (hold | allow | reject), and an INCONCLUSIVE one (hold | allow).
    marginal: str = "hold"
    inconclusive: str = "hold"

    def policy_fields(self) -> dict[str, Any]:
        return {
            "file": self.shown,
            "digest": self.compare.digest if self.compare else None,
            "rulesFile": self.rules_file,
            "confidence": self.confidence,
            "passScore": self.pass_score,
            "marginalScore": self.marginal_score,
            "strict": self.strict,
            "marginal": self.marginal,
            "inconclusive": self.inconclusive,
        }


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("staging", "staging acceptance gate (pytest-staging)")
    group.addoption(
        "--staging-target",
        metavar="NAME|URL",
        help="the deployment under test: a name from staging-targets.toml or a URL. "
        "Activates the gate. Env STAGING_TARGET, ini staging_target.",
    )
    group.addoption(
        "--staging-targets-file",
        metavar="PATH",
        help=f"targets file (default: {TARGETS_FILE} in the rootdir; ini staging_targets_file).",
    )
    group.addoption(
        "--staging-tier",
        metavar="TIERS",
        help="run only these tiers, comma separated (smoke,contract,load); the others are deselected.",
    )
    group.addoption(
        "--staging-no-fail-fast",
        action="store_true",
        default=False,
        help="keep running later tiers after a blocking failure in an earlier one.",
    )
    group.addoption(
        "--staging-sensitive-url",
        metavar="REGEX",
        help="a target whose URL, or a URL it redirects to, matches (re.search) is sensitive: "
        "destructive tests never run there. Ini staging_sensitive_url.",
    )
    group.addoption(
        "--staging-release",
        metavar="ID",
        help="the release under test (env STAGING_RELEASE); checked against the target's version probe.",
    )
    group.addoption(
        "--staging-verdict",
        metavar="PATH",
        help=f"where to write the signed promotion verdict (default {VERDICT_FILE}; ini staging_verdict). "
        "From the start of the run until the final verdict, it holds a HOLD with reason 'incomplete'.",
    )
    group.addoption(
        "--staging-vsa",
        metavar="PATH",
        help="also write a SLSA Verification Summary Attestation v1 of the verdict to PATH, signed with the same "
        "key (ini staging_vsa). Like the verdict path, it says FAILED from the start of the run until the final verdict.",
    )
    group.addoption(
        "--staging-verifier-id",
        metavar="URI",
        help="the VSA's verifier.id (default https://pytest-staging.dev/gate), e.g. https://ci.example.com/staging-gate.",
    )
    group.addoption(
        "--staging-resource-uri",
        metavar="URI",
        help="the VSA's resourceUri (default: the first subject's name), e.g. pkg:docker/shop@1.4.2.",
    )
    group.addoption(
        "--staging-signing-key",
        metavar="PATH",
        help="Ed25519 private key (PEM) that signs the verdict; or the PEM text in env STAGING_SIGNING_KEY. "
        "Make one with `pytest-staging keygen`.",
    )
    group.addoption(
        "--staging-require-signature",
        action="store_true",
        default=False,
        help="refuse to start without a usable signing key (usage error instead of an unsigned verdict).",
    )
    group.addoption(
        "--staging-artifact",
        metavar="NAME@sha256:HEX",
        action="append",
        default=[],
        help="an artifact this verdict is about (repeatable): becomes a subject of the statement.",
    )
    group.addoption(
        "--staging-artifact-file",
        metavar="PATH",
        action="append",
        default=[],
        help="an artifact file (repeatable): subject named by the path as given, with its sha256.",
    )
    group.addoption(
        "--staging-quarantine",
        metavar="PATH",
        help="quarantine file (default staging-quarantine.toml in the rootdir, if present).",
    )
    group.addoption(
        "--staging-reruns",
        metavar="N",
        help="re-run a failing test up to N times; a later pass makes it flaky (ini staging_reruns; default 0).",
    )
    group.addoption(
        "--staging-flaky",
        metavar="allow|hold|reject",
        help="what a flaky test does to the decision: allow (default), hold or reject.",
    )
    group.addoption(
        "--staging-trace-parent",
        metavar="TRACEPARENT",
        help="W3C traceparent of an outer (CI pipeline) span: the gate's spans join its trace and the "
        "verdict names its trace id. Env TRACEPARENT.",
    )
    group.addoption(
        "--staging-load-processes",
        metavar="N",
        help="staging_load runs locust with N local worker processes (locust --processes N).",
    )
    group.addoption(
        "--staging-load-workers",
        metavar="N",
        help="staging_load runs a locust master that waits for N workers started elsewhere "
        "(`pytest-staging load-worker`); see --staging-load-master and --staging-load-worker-wait.",
    )
    group.addoption(
        "--staging-load-master",
        metavar="HOST:PORT",
        help="where the locust master listens for workers (default 127.0.0.1:5557; 0.0.0.0:5557 for other machines).",
    )
    group.addoption(
        "--staging-load-worker-wait",
        metavar="SECONDS",
        help="how long the locust master waits for its workers before the load test fails (default 60).",
    )
    group.addoption(
        "--staging-baseline",
        metavar="PATH",
        help="compare this run's metrics (staging_http latencies, staging_metrics, load runs) with a "
        "baseline file; the result gates the verdict. Ini staging_baseline.",
    )
    group.addoption(
        "--staging-report",
        metavar="PATH",
        help="write a self-contained HTML report of the verdict to PATH at the end of the run "
        "(the same as `pytest-staging report VERDICT --html PATH`).",
    )
    group.addoption(
        "--staging-summary",
        metavar="PATH",
        help="write the verdict's Markdown summary to PATH. Whenever GITHUB_STEP_SUMMARY is set (GitHub "
        "Actions), the summary is also appended there, with or without this option.",
    )
    group.addoption(
        "--staging-save-baseline",
        metavar="PATH",
        help="write this run's metric series to PATH as a baseline for later runs.",
    )
    parser.addini("staging_target", "default staging target (name or URL)", default="")
    parser.addini("staging_baseline", "baseline file to compare with (see --staging-baseline)", default="")
    parser.addini("staging_trace_url", "link template for trace ids in reports, e.g. https://tracing.example/trace/{trace_id}", default="")
    parser.addini(
        "staging_baseline_strict",
        "a baseline from another target or load profile holds the release instead of warning",
        type="bool",
        default=False,
    )
    parser.addini("staging_baseline_confidence", "confidence level of the shift's interval (default 0.98)", default="0.98")
    parser.addini("staging_baseline_pass_score", "score (0-100) at or above which the comparison passes (default 95)", default="95")
    parser.addini("staging_baseline_marginal_score", "score at or above which it is marginal, below it fails (default 75)", default="75")
    parser.addini("staging_baseline_marginal", "what a MARGINAL comparison does: hold (default), allow or reject", default="hold")
    parser.addini("staging_baseline_inconclusive", "what an INCONCLUSIVE comparison does: hold (default) or allow", default="hold")
    parser.addini("staging_reruns", "re-runs of a failing test (default 0)", default="0")
    parser.addini("staging_max_quarantined", "max fraction of a tier's tests in quarantine (default 0.2)", default="0.2")
    parser.addini("staging_verdict", f"verdict file (default {VERDICT_FILE})", default="")
    parser.addini("staging_vsa", "SLSA verification summary (VSA) file written beside the verdict (see --staging-vsa)", default="")
    parser.addini("staging_targets_file", f"targets file (default {TARGETS_FILE} in the rootdir)", default="")
    parser.addini("staging_default_tier", "tier of tests without a tier marker", default="smoke")
    parser.addini(
        "staging_required_tiers",
        "tiers that must run at least one test for PROMOTE (default: every tier with a collected test)",
        type="args",
        default=None,
    )
    parser.addini("staging_sensitive_url", "regex: targets matching it are sensitive", default="")
    parser.addini(
        "staging_allow_deselection",
        "a gate that deselects tests on purpose (-m 'not slow'): record the deselection instead of holding "
        "the release (part of the verdict's policy digest)",
        type="bool",
        default=False,
    )


def _parse_tiers(text: str, where: str, field: str = "") -> tuple[str, ...]:
    names = tuple(t.strip() for t in text.replace(",", " ").split() if t.strip())
    for name in names:
        if name not in TIERS:
            raise ConfigError(where, field, f"unknown tier {name!r}; choose from {', '.join(TIERS)}")
    if not names:
        raise ConfigError(where, field, f"no tier given; choose from {', '.join(TIERS)}")
    return names


def _target_spec(config: pytest.Config, environ: Mapping[str, str], options: Any = None) -> tuple[str, str] | None:
    """The raw target setting and where it came from: option, then env, then ini. ``options``:
    the parsed options (default ``config.option``; before the full parse, the known ones)."""
    option = (options or config.option).staging_target
    if option:
        return option, "--staging-target"
    if environ.get("STAGING_TARGET"):
        return environ["STAGING_TARGET"], "STAGING_TARGET"
    ini = config.getini("staging_target")
    if ini:
        return ini, "ini staging_target"
    return None


def _ini_source(config: pytest.Config) -> str:
    return str(config.inipath) if config.inipath else "ini"


def is_active(config: pytest.Config, environ: Mapping[str, str] = os.environ) -> bool:
    return _target_spec(config, environ) is not None


#: Options with which pytest runs no test (it lists, shows or plans): no verdict, no pre-flight.
NO_RUN_OPTIONS = ("collectonly", "markers", "showfixtures", "show_fixtures_per_test", "cacheshow", "setupplan", "setuponly")


def runs_tests(options: Any) -> bool:
    return not any(getattr(options, name, False) for name in (*NO_RUN_OPTIONS, "help", "version"))


def retract_verdict(config: pytest.Config, options: Any = None, environ: Mapping[str, str] = os.environ) -> None:
    """Remove an earlier run's verdict and VSA (DSSE envelopes, nothing else) from the paths this
    run writes, so that no usage error or early crash can leave them for release tooling to take
    as this run's (SPEC §12). Called as soon as the options are known, before conftests load."""
    options = options or config.option
    if hasattr(config, "workerinput") or not runs_tests(options) or _target_spec(config, environ, options) is None:
        return
    from .verdict.files import remove_envelope

    for path in (_verdict_path(config, options), _vsa_path(config, options)):
        if path is not None:
            remove_envelope(path)


def _selection(config: pytest.Config) -> dict[str, Any]:
    """What was asked for (SPEC §12): positional arguments, -k and -m; and, where given, the node
    ids of --deselect and the paths of --ignore/--ignore-glob, so the policy digest pins them too.
    Paths are relative to the rootdir."""
    here, root = Path(config.invocation_params.dir), config.rootpath

    def rooted(arg: str) -> str:
        path, sep, rest = str(arg).partition("::")
        absolute = Path(os.path.normpath(here / path))
        return (absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else absolute.as_posix()) + sep + rest

    option = config.option
    selection: dict[str, Any] = {
        "args": [rooted(arg) for arg in option.file_or_dir or ()],
        "keyword": option.keyword or None,
        "markexpr": option.markexpr or None,
    }
    for name, values in (("deselect", option.deselect), ("ignore", option.ignore), ("ignoreGlob", option.ignore_glob)):
        if values:
            selection[name] = [rooted(value) for value in values]
    return selection


def read_settings(config: pytest.Config, environ: Mapping[str, str] = os.environ) -> Settings | None:
    """Everything the gate needs, validated; ``None`` when no target is configured (inert)."""
    spec = _target_spec(config, environ)
    if spec is None:
        return None
    from .core.targets import load_targets, masked, url_target
    from .verdict.statement import release_subject

    value, source = spec
    secrets: set[str] = set()

    if "://" in value:
        target = url_target(value, source, secrets)
    else:
        path_text = config.option.staging_targets_file or config.getini("staging_targets_file")
        path = Path(path_text) if path_text else config.rootpath / TARGETS_FILE
        if not path.is_absolute():
            base = Path(config.invocation_params.dir) if config.option.staging_targets_file else config.rootpath
            path = base / path
        if not path.exists():
            raise ConfigError(
                str(path), "", f"{source} names target {value!r} but this targets file does not exist; "
                "create it, pass --staging-targets-file, or give a URL"
            )
        targets = load_targets(path, secrets, environ)
        if value not in targets:
            known = ", ".join(sorted(targets)) or "none"
            raise ConfigError(
                str(path), f"targets.{masked(value)}", f"no such target (from {source}); known targets: {known}"
            )
        target = targets[value]

    sensitive_text = config.option.staging_sensitive_url or config.getini("staging_sensitive_url")
    sensitive_url = None
    if sensitive_text:
        if config.option.staging_sensitive_url:
            where, field = "--staging-sensitive-url", ""
        else:
            where, field = _ini_source(config), "staging_sensitive_url"
        try:
            sensitive_url = re.compile(sensitive_text)
        except re.error as exc:
            raise ConfigError(where, field, f"invalid regular expression ({exc}); fix the pattern") from None
        if sensitive_url.search(target.url):
            target = dataclasses.replace(target, sensitive=True)

    selected = _parse_tiers(config.option.staging_tier, "--staging-tier") if config.option.staging_tier else None

    default_tier = config.getini("staging_default_tier").strip()
    if default_tier not in TIERS:
        raise ConfigError(
            _ini_source(config), "staging_default_tier", f"unknown tier {default_tier!r}; choose from {', '.join(TIERS)}"
        )
    required_raw = config.getini("staging_required_tiers")
    required = (
        _parse_tiers(" ".join(required_raw), _ini_source(config), "staging_required_tiers") if required_raw else None
    )

    release = config.option.staging_release or environ.get("STAGING_RELEASE") or None
    controller = not hasattr(config, "workerinput")
    verdict_path = signing_key = vsa = None
    writes_verdict = controller and runs_tests(config.option)
    subjects: tuple[Subject, ...] = ()
    if controller:
        verdict_path = _verdict_path(config) if writes_verdict else None
        signing_key = _signing_key(config, environ, secrets)
        subjects = _subjects(config)
        vsa = _vsa(config) if writes_verdict else None
    quarantine_path, entries = _quarantine(config)
    trace_parent, warnings = _telemetry(config, environ)
    load = _load_distribution(config)
    baseline = _baseline(config, controller)
    here = Path(config.invocation_params.dir)
    report = config.option.staging_report
    summary = config.option.staging_summary
    step_summary = environ.get("GITHUB_STEP_SUMMARY")
    if controller:
        _no_clashes(here, verdict_path, report, summary, step_summary, baseline, vsa.path if vsa else None)
    return Settings(
        target=dataclasses.replace(target, release=release),
        selected_tiers=selected,
        fail_fast=not config.option.staging_no_fail_fast,
        sensitive_url=sensitive_url,
        release=release,
        default_tier=default_tier,
        required_tiers=required,
        secrets=frozenset(secrets),
        verdict_path=verdict_path,
        signing_key=signing_key,
        require_signature=config.option.staging_require_signature,
        subjects=subjects or (release_subject(release),),
        subject_from_release=not subjects,
        quarantine=entries,
        quarantine_path=quarantine_path,
        max_quarantined=_fraction(config.getini("staging_max_quarantined"), _ini_source(config), "staging_max_quarantined"),
        reruns=_reruns(config),
        flaky=_flaky(config.option.staging_flaky),
        trace_parent=trace_parent,
        warnings=warnings,
        load=load,
        baseline=baseline,
        report_path=here / report if report and controller else None,
        summary_path=here / summary if summary and controller else None,
        step_summary_path=Path(step_summary) if step_summary and controller else None,
        trace_url=_trace_url(config),
        allow_deselection=bool(config.getini("staging_allow_deselection")),
        selection=_selection(config),
        vsa=vsa,
    )


def _whole(option: str, text: str, minimum: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ConfigError(option, "", f"expected a whole number >= {minimum}, got {text!r}")
    return value


def _load_distribution(config: pytest.Config) -> Any:
    option = config.option
    if not (option.staging_load_processes or option.staging_load_workers or option.staging_load_master or option.staging_load_worker_wait):
        return None
    from .fixtures.load import Distribution

    processes = _whole("--staging-load-processes", option.staging_load_processes, 1) if option.staging_load_processes else 0
    workers = _whole("--staging-load-workers", option.staging_load_workers, 1) if option.staging_load_workers else 0
    if processes and workers:
        raise ConfigError("--staging-load-workers", "", "give either --staging-load-processes or --staging-load-workers, not both")
    host, port = "127.0.0.1", 5557
    if option.staging_load_master:
        host, _, port_text = option.staging_load_master.rpartition(":")
        if not host:
            raise ConfigError("--staging-load-master", "", f"{option.staging_load_master!r} is not HOST:PORT")
        port = _whole("--staging-load-master", port_text, 1)
    wait = 60.0
    if option.staging_load_worker_wait:
        try:
            wait = float(option.staging_load_worker_wait)
        except ValueError:
            wait = -1.0
        if wait <= 0:
            raise ConfigError("--staging-load-worker-wait", "", f"expected seconds > 0, got {option.staging_load_worker_wait!r}")
    return Distribution(processes=processes, workers=workers, worker_wait=wait, master_bind_host=host, master_bind_port=port)


def _no_clashes(
    here: Path, verdict: Path | None, report: str | None, summary: str | None, step: str | None, baseline: Any, vsa: Path | None = None
) -> None:
    """Each output its own file: a report over the verdict would destroy the signed evidence."""
    taken = {}
    if verdict is not None:
        taken[verdict.resolve()] = "the verdict (--staging-verdict)"
    if step:
        taken[(here / step).resolve()] = "GITHUB_STEP_SUMMARY (appended to already)"
    if baseline is not None and baseline.save_path is not None:
        taken[baseline.save_path.resolve()] = "--staging-save-baseline"
    for option, value in (("--staging-vsa", vsa), ("--staging-report", report), ("--staging-summary", summary)):
        if not value:
            continue
        path = (here / value).resolve()
        if path in taken:
            raise ConfigError(option, "", f"{value} is also {taken[path]}; give the {option[10:]} a file of its own")
        taken[path] = option


def _trace_url(config: pytest.Config) -> str | None:
    template = str(config.getini("staging_trace_url")).strip()
    if not template:
        return None
    from .report import trace_url_problem

    problem = trace_url_problem(template)
    if problem:
        raise ConfigError(_ini_source(config), "staging_trace_url", problem)
    return template


def _choice(config: pytest.Config, name: str, choices: tuple[str, ...]) -> str:
    value = str(config.getini(name)).strip().lower()
    if value not in choices:
        raise ConfigError(_ini_source(config), name, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _ini_number(config: pytest.Config, name: str, low: float, high: float, low_open: bool = False) -> float:
    text = config.getini(name)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (low < value <= high if low_open else low <= value <= high):
        bound = "above" if low_open else "from"
        raise ConfigError(_ini_source(config), name, f"expected a number {bound} {low:g} to {high:g}, got {text!r}")
    return value


def _baseline(config: pytest.Config, controller: bool) -> BaselineSettings | None:
    """The baseline settings; the file and the metric rules are read (and checked) by the controller."""
    option = config.option.staging_baseline
    shown = option or config.getini("staging_baseline") or None
    save = config.option.staging_save_baseline
    if not shown and not save:
        return None
    confidence = _ini_number(config, "staging_baseline_confidence", 0.5, 1.0, low_open=True)
    if confidence >= 1.0:
        raise ConfigError(_ini_source(config), "staging_baseline_confidence", "expected a level below 1, such as 0.98")
    pass_score = _ini_number(config, "staging_baseline_pass_score", 0.0, 100.0)
    marginal_score = _ini_number(config, "staging_baseline_marginal_score", 0.0, 100.0)
    if marginal_score > pass_score:
        raise ConfigError(
            _ini_source(config), "staging_baseline_marginal_score", f"{marginal_score:g} is above the pass score {pass_score:g}; lower it"
        )
    save_path = Path(config.invocation_params.dir) / save if save else None
    if save_path is not None and controller and (save_path.is_dir() or save_path.parent.exists() and not save_path.parent.is_dir()):
        raise ConfigError("--staging-save-baseline", "", f"{save} is a directory or inside a file; give a file path")
    settings = BaselineSettings(
        shown=shown,
        save_path=save_path,
        confidence=confidence,
        pass_score=pass_score,
        marginal_score=marginal_score,
        strict=bool(config.getini("staging_baseline_strict")),
        marginal=_choice(config, "staging_baseline_marginal", ("hold", "allow", "reject")),
        inconclusive=_choice(config, "staging_baseline_inconclusive", ("hold", "allow")),
    )
    if not shown or not controller:
        return settings
    from .baseline.rules import Rules, parse_tables
    from .baseline.store import load

    base = Path(config.invocation_params.dir) if option else config.rootpath
    compare = load(base / shown, f"--staging-baseline={shown}" if option else shown)
    pyproject, tables = _metric_tables(config)
    rules = Rules(compare.tables, parse_tables(tables, str(pyproject)) if tables is not None else [])
    return settings._replace(compare=compare, rules=rules, rules_file=str(pyproject) if tables is not None else None)


def _metric_tables(config: pytest.Config) -> tuple[Path | None, Any]:
    """pyproject.toml's [tool.pytest_staging.metrics] (the ini file if that is pyproject.toml)."""
    inipath = config.inipath
    path = inipath if inipath is not None and inipath.name == "pyproject.toml" else config.rootpath / "pyproject.toml"
    if not path.is_file():
        return None, None
    from .core.targets import tomllib

    try:
        data = tomllib().loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(str(path), "", f"cannot read it as TOML ({exc}); fix the file") from None
    tables: Any = data
    for key in ("tool", "pytest_staging", "metrics"):
        if not isinstance(tables, dict):
            raise ConfigError(str(path), "tool.pytest_staging", "expected a table such as [tool.pytest_staging.metrics.\"GET /*\"]")
        tables = tables.get(key)
    return path, tables


def _telemetry(config: pytest.Config, environ: Mapping[str, str]) -> tuple[str | None, tuple[str, ...]]:
    """The outer trace parent, and a check of OTEL_TRACES_EXPORTER (telemetry is imported only
    when either is in play)."""
    option = config.option.staging_trace_parent
    trace_parent, warnings = None, ()
    if option or environ.get("TRACEPARENT"):
        from .telemetry.spans import read_trace_parent

        trace_parent = read_trace_parent(option, environ)
    if environ.get("OTEL_TRACES_EXPORTER"):
        from .telemetry.spans import check_env_exporters

        warning = check_env_exporters(environ)
        warnings = (warning,) if warning else ()
    return trace_parent, warnings


def _quarantine(config: pytest.Config) -> tuple[Path | None, tuple[Any, ...]]:
    option = config.option.staging_quarantine
    if option:
        path = Path(config.invocation_params.dir) / option
        if not path.is_file():
            raise ConfigError("--staging-quarantine", "", f"{option} does not exist; check the path")
    else:
        path = config.rootpath / QUARANTINE_FILE
        if not path.is_file():
            return None, ()
    from .core.quarantine import load

    return path, tuple(load(path))


def _fraction(text: str, where: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ConfigError(where, field, f"expected a fraction between 0 and 1, got {text!r}")
    return value


def _reruns(config: pytest.Config) -> int:
    option = config.option.staging_reruns
    where, field, text = ("--staging-reruns", "", option) if option is not None else (_ini_source(config), "staging_reruns", config.getini("staging_reruns"))
    try:
        value = int(str(text).strip())
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(where, field, f"expected a whole number >= 0, got {text!r}")
    return value


def _flaky(text: str | None) -> str:
    value = (text or "allow").strip().lower()
    if value not in ("allow", "hold", "reject"):
        raise ConfigError("--staging-flaky", "", f"{text!r} is not one of allow, hold, reject")
    return value


def _verdict_path(config: pytest.Config, options: Any = None) -> Path:
    option = (options or config.option).staging_verdict
    if option:
        return Path(config.invocation_params.dir) / option
    ini = config.getini("staging_verdict")
    return config.rootpath / ini if ini else Path(config.invocation_params.dir) / VERDICT_FILE


def _vsa_path(config: pytest.Config, options: Any = None) -> Path | None:
    option = (options or config.option).staging_vsa
    if option:
        return Path(config.invocation_params.dir) / option
    ini = config.getini("staging_vsa")
    return config.rootpath / ini if ini else None


def _vsa(config: pytest.Config) -> Any:
    """The VSA settings (controller only); its options without a VSA path are a mistake."""
    path = _vsa_path(config)
    verifier_id, resource_uri = config.option.staging_verifier_id, config.option.staging_resource_uri
    if path is None:
        for option, value in (("--staging-verifier-id", verifier_id), ("--staging-resource-uri", resource_uri)):
            if value:
                raise ConfigError(option, "", "describes the VSA, which is written only with --staging-vsa=PATH (or ini staging_vsa); add one")
        return None
    from .verdict.vsa import DEFAULT_VERIFIER_ID, VsaSettings, check_uri

    return VsaSettings(
        path=path,
        verifier_id=check_uri(verifier_id, "--staging-verifier-id") if verifier_id else DEFAULT_VERIFIER_ID,
        resource_uri=check_uri(resource_uri, "--staging-resource-uri") if resource_uri else None,
    )


def _signing_key(config: pytest.Config, environ: Mapping[str, str], secrets: set[str]) -> Any:
    from .verdict.dsse import load_private_key

    path = config.option.staging_signing_key
    if path:
        where = f"--staging-signing-key={path}"
        try:
            pem = (Path(config.invocation_params.dir) / path).read_bytes()
        except OSError as exc:
            raise ConfigError(
                "--staging-signing-key", "", f"cannot read {path} ({exc.strerror or exc}); check the path and its permissions"
            ) from None
    elif environ.get("STAGING_SIGNING_KEY", "").strip():
        where = "STAGING_SIGNING_KEY"
        pem = environ["STAGING_SIGNING_KEY"].encode("utf-8")
        secrets.add(environ["STAGING_SIGNING_KEY"].strip())
    else:
        if config.option.staging_require_signature:
            raise ConfigError(
                "--staging-require-signature", "", "no signing key; pass --staging-signing-key=PATH or set STAGING_SIGNING_KEY"
            )
        return None
    return load_private_key(pem, where)


def _subjects(config: pytest.Config) -> tuple[Subject, ...]:
    import hashlib

    from .verdict.statement import Subject, parse_subject

    subjects = []
    for value in config.option.staging_artifact:
        parsed = parse_subject(value)
        if parsed is None:
            raise ConfigError(
                "--staging-artifact", "", f"{value!r} is not NAME@sha256:HEX (64 lowercase hex digits)"
            )
        subjects.append(parsed)
    for path in config.option.staging_artifact_file:
        digest = hashlib.sha256()
        try:
            with open(Path(config.invocation_params.dir) / path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise ConfigError("--staging-artifact-file", "", f"cannot read {path} ({exc.strerror or exc})") from None
        subjects.append(Subject(path, digest.hexdigest()))
    return tuple(subjects)
