"""The staging option table: every command-line option and ini key of pytest-staging.

Imported on every pytest run, with or without a target, so it imports nothing but the standard
library's typing (bench/overhead.py's "unused" case: at most 1.02 x a run without the plugin).
What the options mean, and every check of their values, lives with the features; the settings
module reads them into one frozen ``Settings`` at configure time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

TARGETS_FILE = "staging-targets.toml"
VERDICT_FILE = "staging-verdict.intoto.json"
QUARANTINE_FILE = "staging-quarantine.toml"


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
        "--staging-shard",
        metavar="K/N",
        help="this run is shard K of N (env STAGING_SHARD): it runs every Nth test of each tier, from the Kth, "
        "and writes a partial verdict (HOLD, shard-partial); `pytest-staging merge` makes one verdict of the N.",
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
        "key (ini staging_vsa). Like the verdict path, it says FAILED from the start of the run until the final "
        "verdict.",
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
        help=f"quarantine file (default {QUARANTINE_FILE} in the rootdir, if present).",
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
    group.addoption(
        "--staging-build-time",
        metavar="ISO8601|EPOCH",
        help="when the release under test was built (2025-01-31T12:00:00Z or epoch seconds), recorded as "
        "release.buildTime: promotion latency is the time from it to the verdict. Env STAGING_BUILD_TIME, "
        "else SOURCE_DATE_EPOCH.",
    )
    group.addoption(
        "--staging-openmetrics",
        metavar="PATH",
        help="write this run's SLI metrics to PATH in the Prometheus text format at the end of the run "
        "(for node_exporter's textfile collector, e.g. /var/lib/node_exporter/staging.prom).",
    )
    group.addoption(
        "--staging-pushgateway",
        metavar="URL",
        help="push this run's SLI metrics to the Prometheus Pushgateway at URL (job pytest_staging, grouped "
        "by environment), e.g. http://pushgateway:9091; a failed push is a warning, never a changed decision.",
    )
    parser.addini("staging_target", "default staging target (name or URL)", default="")
    parser.addini("staging_baseline", "baseline file to compare with (see --staging-baseline)", default="")
    parser.addini(
        "staging_trace_url",
        "link template for trace ids in reports, e.g. https://tracing.example/trace/{trace_id}",
        default="",
    )
    parser.addini(
        "staging_baseline_strict",
        "a baseline from another target or load profile holds the release instead of warning",
        type="bool",
        default=False,
    )
    parser.addini(
        "staging_baseline_confidence", "confidence level of the shift's interval (default 0.98)", default="0.98"
    )
    parser.addini(
        "staging_baseline_pass_score",
        "score (0-100) at or above which the comparison passes (default 95)",
        default="95",
    )
    parser.addini(
        "staging_baseline_marginal_score",
        "score at or above which it is marginal, below it fails (default 75)",
        default="75",
    )
    parser.addini(
        "staging_baseline_marginal", "what a MARGINAL comparison does: hold (default), allow or reject", default="hold"
    )
    parser.addini(
        "staging_baseline_inconclusive", "what an INCONCLUSIVE comparison does: hold (default) or allow", default="hold"
    )
    parser.addini("staging_reruns", "re-runs of a failing test (default 0)", default="0")
    parser.addini(
        "staging_max_quarantined", "max fraction of a tier's tests in quarantine (default 0.2)", default="0.2"
    )
    parser.addini("staging_verdict", f"verdict file (default {VERDICT_FILE})", default="")
    parser.addini(
        "staging_vsa", "SLSA verification summary (VSA) file written beside the verdict (see --staging-vsa)", default=""
    )
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
