"""Options, ini keys and environment → one frozen :class:`Settings`, read once at configure time.

This module assembles; each feature reads and checks its own part (targets, tiers, signing key,
subjects, VSA, load distribution, baseline rules, trace parent) in its own module. Every user
mistake becomes a :class:`ConfigError` (the skin turns it into a usage error, exit code 4)
before any test runs. Imported on every pytest run: the features are imported only once a
target is configured.
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
from .options import QUARANTINE_FILE, TARGETS_FILE, VERDICT_FILE

if TYPE_CHECKING:  # the rest is imported when a target is configured, never by an inert run
    import pytest

    from .core.shards import Shard
    from .core.targets import Target
    from .verdict.statement import Subject


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
    #: ini staging_allow_deselection: deselected tests are recorded in the verdict instead of
    #: holding the release.
    allow_deselection: bool = False
    #: What the user asked to run: ``args`` (relative to the rootdir), ``keyword`` (-k), ``markexpr`` (-m).
    selection: Mapping[str, Any] | None = None
    #: --staging-vsa and its options: a ``verdict.vsa.VsaSettings`` (controller only), or None.
    vsa: Any = None
    #: --staging-shard / STAGING_SHARD: this run is one shard of the suite (a ``core.shards.Shard``), or None.
    shard: Shard | None = None
    #: --staging-build-time / STAGING_BUILD_TIME / SOURCE_DATE_EPOCH: when the release was built (epoch seconds).
    build_time: float | None = None
    #: --staging-openmetrics: this run's SLI metrics, in the Prometheus text format (controller only).
    openmetrics_path: Path | None = None
    #: --staging-pushgateway: the Pushgateway this run's metrics are pushed to (controller only).
    pushgateway: str | None = None

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
            "quarantineFile": self.quarantine_path.as_posix() if self.quarantine_path else None,
            "baseline": self.baseline.policy_fields() if self.baseline and self.baseline.compare else None,
        }

    def __repr__(self) -> str:  # the signing key stays out of reprs and tracebacks
        signed = self.signing_key is not None
        return f"Settings(target={self.target!r}, verdict_path={self.verdict_path!r}, signed={signed})"


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


#: Options with which pytest runs no test (it lists, shows or plans): no verdict, no pre-flight.
NO_RUN_OPTIONS = (
    "collectonly",
    "markers",
    "showfixtures",
    "show_fixtures_per_test",
    "cacheshow",
    "setupplan",
    "setuponly",
)


def runs_tests(options: Any) -> bool:
    return not any(getattr(options, name, False) for name in (*NO_RUN_OPTIONS, "help", "version"))


def retract_verdict(config: pytest.Config, options: Any = None, environ: Mapping[str, str] = os.environ) -> None:
    """Remove an earlier run's verdict and VSA (DSSE envelopes, nothing else) from the paths this
    run writes, so that no usage error or early crash can leave them for release tooling to take
    as this run's verdict. Called as soon as the options are known, before conftests load."""
    options = options or config.option
    if hasattr(config, "workerinput") or not runs_tests(options) or _target_spec(config, environ, options) is None:
        return
    from .verdict.files import remove_envelope

    for path in (_verdict_path(config, options), _vsa_path(config, options)):
        if path is not None:
            remove_envelope(path)


def read_settings(config: pytest.Config, environ: Mapping[str, str] = os.environ) -> Settings | None:
    """Everything the gate needs, validated; ``None`` when no target is configured (inert)."""
    spec = _target_spec(config, environ)
    if spec is None:
        return None
    from .core.otel_env import check_env_exporters
    from .core.tiers import check_tier, parse_tiers
    from .core.traceparent import read_trace_parent
    from .verdict.dsse import read_signing_key
    from .verdict.statement import read_subjects, release_subject

    option, here = config.option, Path(config.invocation_params.dir)
    secrets: set[str] = set()
    target = _target(config, spec, secrets, environ)
    sensitive_url = _sensitive_url(config)
    if sensitive_url is not None and sensitive_url.search(target.url):
        target = dataclasses.replace(target, sensitive=True)
    selected = parse_tiers(option.staging_tier, "--staging-tier") if option.staging_tier else None
    default_tier = check_tier(
        config.getini("staging_default_tier").strip(),
        _ini_source(config, "staging_default_tier"),
        "staging_default_tier",
    )
    required_raw = config.getini("staging_required_tiers")
    required = (
        parse_tiers(" ".join(required_raw), _ini_source(config, "staging_required_tiers"), "staging_required_tiers")
        if required_raw
        else None
    )
    release = option.staging_release or environ.get("STAGING_RELEASE") or None

    # Only the controller writes the verdict, so only it reads the key, the subjects and the VSA.
    controller = not hasattr(config, "workerinput")
    writes_verdict = controller and runs_tests(option)
    verdict_path = signing_key = vsa = None
    subjects: tuple[Subject, ...] = ()
    if controller:
        verdict_path = _verdict_path(config) if writes_verdict else None
        signing_key = read_signing_key(
            option.staging_signing_key, here, environ, secrets, option.staging_require_signature
        )
        subjects = read_subjects(option.staging_artifact, option.staging_artifact_file, here)
        vsa_path = _vsa_path(config)
        if writes_verdict and (vsa_path or option.staging_verifier_id or option.staging_resource_uri):
            from .verdict.vsa import read_vsa

            vsa = read_vsa(vsa_path, option.staging_verifier_id, option.staging_resource_uri)
    quarantine_path, entries = _quarantine(config)
    trace_parent = read_trace_parent(option.staging_trace_parent, environ)
    warning = check_env_exporters(environ)
    load = _load_distribution(option)
    baseline = _baseline(config, controller)
    report, summary, step_summary = option.staging_report, option.staging_summary, environ.get("GITHUB_STEP_SUMMARY")
    if controller:
        _no_clashes(here, verdict_path, report, summary, step_summary, baseline, vsa.path if vsa else None)
    openmetrics_path, pushgateway = _metrics_outputs(option, here, secrets) if writes_verdict else (None, None)
    if (
        openmetrics_path is not None
        and verdict_path is not None
        and openmetrics_path.resolve() == verdict_path.resolve()
    ):
        raise ConfigError(
            "--staging-openmetrics",
            "",
            f"{option.staging_openmetrics} is also the verdict; give the metrics a file of their own",
        )
    return Settings(
        target=dataclasses.replace(target, release=release),
        selected_tiers=selected,
        fail_fast=not option.staging_no_fail_fast,
        sensitive_url=sensitive_url,
        release=release,
        default_tier=default_tier,
        required_tiers=required,
        secrets=frozenset(secrets),
        verdict_path=verdict_path,
        signing_key=signing_key,
        require_signature=option.staging_require_signature,
        subjects=subjects or (release_subject(release),),
        subject_from_release=not subjects,
        quarantine=entries,
        quarantine_path=quarantine_path,
        max_quarantined=_fraction(
            config.getini("staging_max_quarantined"),
            _ini_source(config, "staging_max_quarantined"),
            "staging_max_quarantined",
        ),
        reruns=_reruns(config),
        flaky=_flaky(option.staging_flaky),
        trace_parent=trace_parent,
        warnings=(warning,) if warning else (),
        load=load,
        baseline=baseline,
        report_path=here / report if report and controller else None,
        summary_path=here / summary if summary and controller else None,
        step_summary_path=Path(step_summary) if step_summary and controller else None,
        trace_url=_trace_url(config),
        allow_deselection=bool(config.getini("staging_allow_deselection")),
        selection=_selection(config),
        vsa=vsa,
        shard=_shard(option.staging_shard, environ),
        build_time=_build_time(option.staging_build_time, environ),
        openmetrics_path=openmetrics_path,
        pushgateway=pushgateway,
    )


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


def _ini_source(config: pytest.Config, name: str) -> str:
    """Where an ini key's value came from, for its error: ``-o`` when given there, else the ini file."""
    if any(override.partition("=")[0].strip() == name for override in config.option.override_ini or ()):
        return "-o"
    return str(config.inipath) if config.inipath else "ini"


def _target(config: pytest.Config, spec: tuple[str, str], secrets: set[str], environ: Mapping[str, str]) -> Target:
    """A URL, or a name from the targets file (--staging-targets-file relative to the invocation
    directory, ini staging_targets_file to the rootdir)."""
    from .core.targets import find_target, url_target

    value, source = spec
    if "://" in value:
        return url_target(value, source, secrets)
    path_text = config.option.staging_targets_file or config.getini("staging_targets_file")
    path = Path(path_text) if path_text else config.rootpath / TARGETS_FILE
    if not path.is_absolute():
        base = Path(config.invocation_params.dir) if config.option.staging_targets_file else config.rootpath
        path = base / path
    return find_target(path, value, source, secrets, environ)


def _sensitive_url(config: pytest.Config) -> re.Pattern[str] | None:
    text = config.option.staging_sensitive_url or config.getini("staging_sensitive_url")
    if not text:
        return None
    if config.option.staging_sensitive_url:
        where, field = "--staging-sensitive-url", ""
    else:
        where, field = _ini_source(config, "staging_sensitive_url"), "staging_sensitive_url"
    try:
        return re.compile(text)
    except re.error as exc:
        raise ConfigError(where, field, f"invalid regular expression ({exc}); fix the pattern") from None


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

    return _recorded(path, config), tuple(load(path))


def _recorded(path: Path, config: pytest.Config) -> Path:
    """A file's path as the policy records it: relative to the rootdir when under it, so the same
    gate in another checkout or CI workspace (or shard) has the same policy digest."""
    try:
        return path.resolve().relative_to(config.rootpath.resolve())
    except ValueError:
        return path


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
    where, field, text = (
        ("--staging-reruns", "", option)
        if option is not None
        else (_ini_source(config, "staging_reruns"), "staging_reruns", config.getini("staging_reruns"))
    )
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


def _shard(option: str | None, environ: Mapping[str, str]) -> Shard | None:
    where, text = ("--staging-shard", option) if option else ("STAGING_SHARD", environ.get("STAGING_SHARD", ""))
    if not text.strip():
        return None
    from .core.shards import parse_shard

    return parse_shard(text, where)


def _build_time(option: str | None, environ: Mapping[str, str]) -> float | None:
    for where, text in (
        ("--staging-build-time", option),
        ("STAGING_BUILD_TIME", environ.get("STAGING_BUILD_TIME")),
        ("SOURCE_DATE_EPOCH", environ.get("SOURCE_DATE_EPOCH")),
    ):
        if text and text.strip():
            from .core.history import parse_build_time  # only then: a run without one never loads it

            return parse_build_time(text, where)
    return None


def _metrics_outputs(option: Any, here: Path, secrets: set[str]) -> tuple[Path | None, str | None]:
    """--staging-openmetrics (a file path) and --staging-pushgateway (an http(s) URL; its user
    info is a secret, kept out of every output)."""
    path = here / option.staging_openmetrics if option.staging_openmetrics else None
    if path is not None and (path.is_dir() or path.parent.exists() and not path.parent.is_dir()):
        raise ConfigError(
            "--staging-openmetrics",
            "",
            f"{option.staging_openmetrics} is a directory or inside a file; give a file path",
        )
    url = option.staging_pushgateway or None
    if url is not None:
        from .report.openmetrics import secrets_of, shown_url, url_problem

        secrets.update(secrets_of(url))
        problem = url_problem(url)
        if problem is not None:
            raise ConfigError("--staging-pushgateway", "", f"{shown_url(url)} {problem}")
    return path, url


def _load_distribution(option: Any) -> Any:
    values = (
        option.staging_load_processes,
        option.staging_load_workers,
        option.staging_load_master,
        option.staging_load_worker_wait,
    )
    if not any(values):
        return None
    from .fixtures.load import read_distribution

    return read_distribution(*values)


def _baseline(config: pytest.Config, controller: bool) -> BaselineSettings | None:
    """The baseline settings; the file and the metric rules are read (and checked) by the controller."""
    option = config.option.staging_baseline
    shown = option or config.getini("staging_baseline") or None
    save = config.option.staging_save_baseline
    if not shown and not save:
        return None
    confidence = _ini_number(config, "staging_baseline_confidence", 0.5, 1.0, low_open=True)
    if confidence >= 1.0:
        raise ConfigError(
            _ini_source(config, "staging_baseline_confidence"),
            "staging_baseline_confidence",
            "expected a level below 1, such as 0.98",
        )
    pass_score = _ini_number(config, "staging_baseline_pass_score", 0.0, 100.0)
    marginal_score = _ini_number(config, "staging_baseline_marginal_score", 0.0, 100.0)
    if marginal_score > pass_score:
        raise ConfigError(
            _ini_source(config, "staging_baseline_marginal_score"),
            "staging_baseline_marginal_score",
            f"{marginal_score:g} is above the pass score {pass_score:g}; lower it",
        )
    save_path = Path(config.invocation_params.dir) / save if save else None
    if (
        save_path is not None
        and controller
        and (save_path.is_dir() or save_path.parent.exists() and not save_path.parent.is_dir())
    ):
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
    from .baseline.rules import Rules, read_pyproject
    from .baseline.store import load

    base = Path(config.invocation_params.dir) if option else config.rootpath
    compare = load(base / shown, f"--staging-baseline={shown}" if option else shown)
    # pyproject.toml's [tool.pytest_staging.metrics] tables: the ini file's if that is pyproject.toml.
    inipath = config.inipath
    pyproject = (
        inipath if inipath is not None and inipath.name == "pyproject.toml" else config.rootpath / "pyproject.toml"
    )
    tables = read_pyproject(pyproject) if pyproject.is_file() else None
    rules = Rules(compare.tables, tables if tables is not None else [])
    return settings._replace(
        compare=compare, rules=rules, rules_file=_recorded(pyproject, config).as_posix() if tables is not None else None
    )


def _choice(config: pytest.Config, name: str, choices: tuple[str, ...]) -> str:
    value = str(config.getini(name)).strip().lower()
    if value not in choices:
        raise ConfigError(_ini_source(config, name), name, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _ini_number(config: pytest.Config, name: str, low: float, high: float, low_open: bool = False) -> float:
    text = config.getini(name)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (low < value <= high if low_open else low <= value <= high):
        bound = "above" if low_open else "from"
        raise ConfigError(
            _ini_source(config, name), name, f"expected a number {bound} {low:g} to {high:g}, got {text!r}"
        )
    return value


def _trace_url(config: pytest.Config) -> str | None:
    template = str(config.getini("staging_trace_url")).strip()
    if not template:
        return None
    from .report import trace_url_problem

    problem = trace_url_problem(template)
    if problem:
        raise ConfigError(_ini_source(config, "staging_trace_url"), "staging_trace_url", problem)
    return template


def _selection(config: pytest.Config) -> dict[str, Any]:
    """What was asked for: positional arguments, -k and -m; and, where given, the node ids of
    --deselect and the paths of --ignore/--ignore-glob, so the policy digest pins them too (a
    verdict must say which tests its run left out). Paths are relative to the rootdir."""
    here, root = Path(config.invocation_params.dir), config.rootpath

    def rooted(arg: str) -> str:
        path, sep, rest = str(arg).partition("::")
        absolute = Path(os.path.normpath(here / path))
        return (
            (absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else absolute.as_posix())
            + sep
            + rest
        )

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


def _no_clashes(
    here: Path,
    verdict: Path | None,
    report: str | None,
    summary: str | None,
    step: str | None,
    baseline: Any,
    vsa: Path | None = None,
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
