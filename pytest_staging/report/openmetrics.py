"""The staging SLIs as Prometheus metrics: the text exposition format 0.0.4 (what node_exporter's
textfile collector and the Pushgateway read; ``promtool check metrics`` accepts it), rendered from
a :class:`~pytest_staging.core.history.History`, and the Pushgateway push. No pytest.

The same families for ``pytest-staging history --format openmetrics`` (many runs) and for one
run (``--staging-openmetrics``, ``--staging-pushgateway``), one series per environment.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote, urlsplit

from ..core.history import DECISIONS, QUANTILES, quantile

if TYPE_CHECKING:
    from ..core.history import History, Runs

#: The Pushgateway job the gate's metrics are grouped under (with ``environment``).
JOB = "pytest_staging"
#: Seconds a push may take, connecting and answering each: a Pushgateway that is down or does
#: not answer costs the run at most this much, never a hang.
PUSH_TIMEOUT = 10.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Family(NamedTuple):
    name: str
    kind: str
    help: str
    #: The samples of one environment: (suffix, extra labels, value) each.
    samples: Callable[[Runs], list[tuple[str, dict[str, str], float]]]


def _runs(runs: Runs) -> list[tuple[str, dict[str, str], float]]:
    return [("", {"decision": decision}, runs.decisions[decision]) for decision in DECISIONS]


def _gauge(value: float | None) -> list[tuple[str, dict[str, str], float]]:
    return [] if value is None else [("", {}, value)]


def _summary(values: Sequence[float]) -> list[tuple[str, dict[str, str], float]]:
    """Quantiles (NaN without observations, as client libraries write them), _sum and _count."""
    samples: list[tuple[str, dict[str, str], float]] = []
    for percent in QUANTILES:
        value = quantile(values, percent)
        samples.append(("", {"quantile": _format(percent / 100)}, math.nan if value is None else value))
    return [*samples, ("_sum", {}, math.fsum(values)), ("_count", {}, len(values))]


FAMILIES = (
    Family(
        "pytest_staging_runs_total",
        "counter",
        "Gate runs (verdicts of whole runs; partial shard verdicts are not runs) by decision.",
        _runs,
    ),
    Family(
        "pytest_staging_promotion_success_ratio",
        "gauge",
        "Promotion success rate: PROMOTE verdicts / runs.",
        lambda runs: _gauge(runs.promotion_success),
    ),
    Family(
        "pytest_staging_validation_pass_ratio",
        "gauge",
        "Validation pass rate: the mean of the runs' contract validation pass rates (runs with validations).",
        lambda runs: _gauge(runs.validation_pass),
    ),
    Family(
        "pytest_staging_promotion_latency_seconds",
        "summary",
        "Promotion latency: timeVerified - release.buildTime of PROMOTE verdicts with a build time.",
        lambda runs: _summary(runs.latencies),
    ),
    Family(
        "pytest_staging_flakiness_ratio",
        "gauge",
        "Flakiness rate: the mean of the runs' shares of tests that ran and were flaky.",
        lambda runs: _gauge(runs.flakiness),
    ),
    Family(
        "pytest_staging_gate_duration_seconds",
        "summary",
        "Gate duration: the session's wall time of each finished run.",
        lambda runs: _summary(runs.durations),
    ),
)


def render(history: History) -> str:
    """Every family, with HELP and TYPE, a series set per environment (sorted by name)."""
    lines = []
    environments = sorted(history.environments.items())
    for family in FAMILIES:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for environment, runs in environments:
            for suffix, labels, value in family.samples(runs):
                shown = ",".join(
                    f'{name}="{escape(text)}"' for name, text in {"environment": environment, **labels}.items()
                )
                lines.append(f"{family.name}{suffix}{{{shown}}} {_format(value)}")
    return "\n".join(lines) + "\n"


def escape(value: str) -> str:
    """A label value as the exposition format writes it: backslash, double quote and line feed escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


# -- the Pushgateway -----------------------------------------------------------------------------


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a Pushgateway's base URL (http or https, with a host), or None."""
    if any(char in _userinfo(url) for char in "/?#"):
        # A URL parser would end the host at that character and send the rest as the path: the
        # password would go out in the request line, and into any message naming the URL.
        return "has a / ? or # in its user info; percent-encode them (%2F %3F %23)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError as exc:
        return f"is not a URL ({exc}); give http(s)://HOST:PORT"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL with a host; give http(s)://HOST:PORT of the Pushgateway"
    if parts.query or parts.fragment:
        return "has a query or fragment; give the Pushgateway's base URL, http(s)://HOST:PORT"
    return None


def _userinfo(url: str) -> str:
    """Everything between ``scheme://`` and the last ``@``: what may hold a password, read as
    people write it (a password with a ``/`` in it included), whatever a URL parser would make of it."""
    scheme, separator, rest = url.partition("://")
    return (rest if separator else url).rpartition("@")[0]


def shown_url(url: str) -> str:
    """The URL without its user info: what any message may print."""
    scheme, separator, rest = url.partition("://")
    if not separator:  # not a URL at all: whatever stood before an @ may be a password
        return url.rpartition("@")[2]
    return f"{scheme}://{rest.rpartition('@')[2]}"


def secrets_of(url: str) -> list[str]:
    """The user info of ``url``: the whole of it, the password, and the Basic credentials made
    from them (a proxy may echo the header back), to keep out of every output."""
    from urllib.parse import unquote

    userinfo = _userinfo(url)
    if not userinfo:
        return []
    password = userinfo.partition(":")[2]
    found = [userinfo, password, unquote(password), _basic(userinfo)]
    return [secret for secret in found if len(secret) >= 3]


def _basic(userinfo: str) -> str:
    from urllib.parse import unquote

    user, _, password = userinfo.partition(":")
    # user info percent-encoded in a URL means the decoded text
    return base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")


def group_url(url: str, environment: str) -> str:
    """The group ``job/pytest_staging/environment/<ENV>`` under the base URL (user info removed).
    The value is always sent base64 (``environment@base64/...``): a ``/`` or an empty name is fine."""
    encoded = base64.urlsafe_b64encode(environment.encode("utf-8")).decode("ascii") or "="
    return f"{shown_url(url).rstrip('/')}/metrics/job/{JOB}/environment@base64/{quote(encoded, safe='=')}"


def push(url: str, environment: str, body: str, timeout: float = PUSH_TIMEOUT) -> str | None:
    """PUT ``body`` as the group of ``environment`` (replacing that group's earlier metrics).
    Returns None when the Pushgateway took it, else why not: one line, with no user info.

    ``timeout`` bounds the whole push, not each socket operation (a server trickling its answer a
    byte at a time, a slow name lookup): the push runs in a daemon thread, and after ``timeout``
    the run goes on without it. Whatever goes wrong in it is a reason, never an exception."""
    import threading

    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            outcome.append(_put(url, environment, body, timeout))
        except Exception as exc:  # noqa: BLE001 (a malformed answer: http.client raises its own kinds)
            outcome.append(f"{type(exc).__name__}: {exc}")

    worker = threading.Thread(target=attempt, name="pytest-staging-push", daemon=True)
    worker.start()
    worker.join(timeout)
    problem = outcome[0] if outcome else f"no complete answer within {timeout:g} s"
    if problem is None:
        return None
    for secret in secrets_of(url):
        problem = problem.replace(secret, "***")
    return " ".join(problem.split())  # one line, whatever the server said


def _put(url: str, environment: str, body: str, timeout: float) -> str | None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        group_url(url, environment), data=body.encode("utf-8"), method="PUT", headers={"Content-Type": CONTENT_TYPE}
    )
    userinfo = _userinfo(url)
    if userinfo:
        request.add_header("Authorization", f"Basic {_basic(userinfo)}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only, checked)
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip().splitlines()
        return f"HTTP {exc.code} {exc.reason}" + (f": {detail[0]}" if detail else "")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason
    return None


def run_metrics(statement: dict[str, Any]) -> tuple[str, str]:
    """One run's metrics (the verdict just written) and its environment."""
    from ..core.history import History

    history = History()
    history.add(statement)
    environment = next(iter(history.environments), "unknown")
    return render(history), environment


def publish(settings: Any, statement: dict[str, Any]) -> list[str]:
    """Write and push the metrics of the run whose verdict ``statement`` is, as ``settings`` asks
    (--staging-openmetrics, --staging-pushgateway): one line each for the terminal. A failure is a
    ``WARNING`` line, never an exception: the verdict is written and stands."""
    if statement["predicate"].get("shard"):
        return [
            "WARNING: metrics not written or pushed: a shard's partial verdict is not a run; publish the merged "
            "verdict's with `pytest-staging history MERGED --format openmetrics`"
        ]
    from ..verdict.files import write_atomic

    body, environment = run_metrics(statement)
    lines = []
    path = settings.openmetrics_path
    if path is not None:
        try:
            write_atomic(path, body.encode("utf-8"))
            lines.append(f"metrics: {path}")
        except OSError as exc:
            lines.append(f"WARNING: could not write the metrics to {path}: {exc.strerror or exc}")
    if settings.pushgateway is not None:
        shown = shown_url(settings.pushgateway)
        problem = push(settings.pushgateway, environment, body)
        named = environment if environment.isprintable() else repr(environment)  # one terminal line
        if problem is None:
            lines.append(f"metrics pushed to {shown} (job {JOB}, environment {named})")
        else:
            lines.append(f"WARNING: could not push the metrics to {shown}: {problem} (the decision stands)")
    return lines
