"""``staging_load``: a locust run against the target, as a subprocess, judged by k6-style thresholds.

The pytest process never imports locust or gevent (gevent's monkey-patching would reach into
the user's suite and break xdist workers): locust runs as ``python -m locust --headless`` with
the user's locustfile and :mod:`pytest_staging.locust_helper`, and its results come back as
files. Under xdist, load runs take turns through a lock file, so one never measures another.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .thresholds import Tally, Threshold, ThresholdError, parse_all

if TYPE_CHECKING:
    from .ledger import TestRecord
    from .targets import Target

HELPER = Path(__file__).with_name("locust_helper.py")
CONFIG_ENV = "STAGING_LOAD_CONFIG"
#: How long past its duration a run may take (spawning, stopping, writing results) before it is killed.
GRACE_SECONDS = 30.0
STAT_FIELDS = ("requests", "failures", "fail_ratio", "rps", "avg", "min", "max", "p50", "p90", "p95", "p99")


@dataclasses.dataclass(frozen=True)
class Distribution:
    """How locust spreads the load: one process, N local processes, or a master and N workers."""

    processes: int = 0
    workers: int = 0
    worker_wait: float = 60.0
    master_bind_host: str = "127.0.0.1"
    master_bind_port: int = 5557


@dataclasses.dataclass(frozen=True)
class Stats:
    """One endpoint's (or the run's) figures; times in ms, ``rps`` over the whole run."""

    requests: int
    failures: int
    fail_ratio: float
    rps: float
    avg: float | None
    min: float | None
    max: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None

    @classmethod
    def from_summary(cls, data: dict[str, Any]) -> Stats:
        return cls(**{name: data[name] for name in STAT_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        return {name: _rounded(getattr(self, name)) for name in STAT_FIELDS}


@dataclasses.dataclass(frozen=True)
class ThresholdResult:
    expression: str
    value: float | None
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        return {"expression": self.expression, "value": _rounded(self.value), "ok": self.ok}


@dataclasses.dataclass(frozen=True)
class LoadResult:
    """What ``staging_load.run`` returns: ``.ok``, ``.total``, ``.endpoints[name]``, ``.thresholds``."""

    total: Stats
    endpoints: dict[str, Stats]
    thresholds: list[ThresholdResult]
    profile: dict[str, Any]
    series: list[dict[str, Any]]
    aborted: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.thresholds) and self.aborted is None

    def to_dict(self) -> dict[str, Any]:
        """The verdict's record of the run (``predicate.load.runs[]``)."""
        return {
            "profile": self.profile,
            "total": self.total.to_dict(),
            "endpoints": {name: stats.to_dict() for name, stats in sorted(self.endpoints.items())},
            "thresholds": [t.to_dict() for t in self.thresholds],
            "ok": self.ok,
            "aborted": self.aborted,
            "series": self.series,
        }

    def table(self) -> str:
        """Every threshold with ✓/✗ and its measured value, as k6 prints them."""
        lines = []
        for result in self.thresholds:
            value = "no data" if result.value is None else f"{result.value:g}"
            lines.append(f"  {'✓' if result.ok else '✗'} {result.expression}  (measured {value})")
        if self.aborted:
            lines.append(f"  run aborted after {self.aborted['after']:g}s: {', '.join(self.aborted['breached'])} breached")
        total = self.total
        lines.append(
            f"  {total.requests} requests, {total.failures} failed, {total.rps:.1f} rps, "
            f"p95 {_ms(total.p95)}, avg {_ms(total.avg)}"
        )
        return "\n".join(lines)


def _rounded(value: float | None) -> float | None:
    """Times and rates to 3 decimals; counts stay whole numbers."""
    return value if value is None or isinstance(value, int) else round(float(value), 3)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g} ms"


def summarize(entries: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """locust's ``--json-file`` entries → (totals, per endpoint name, per-second counts).

    Histograms are merged (methods sharing a name are one endpoint), so percentiles are exact
    over the run; ``rps`` divides by the time from the first request to the last, one span for
    every endpoint, as locust's ``total_rps`` does.
    """
    starts = [e["start_time"] for e in entries if e.get("start_time")]
    ends = [e["last_request_timestamp"] for e in entries if e.get("last_request_timestamp")]
    seconds = max(ends) - min(starts) if starts and ends else 0.0
    total = Tally()
    endpoints: dict[str, Tally] = {}
    per_second: dict[int, list[int]] = {}
    for entry in entries:
        figures = (
            entry["num_requests"], entry["num_failures"], entry.get("num_none_requests", 0), entry["total_response_time"],
            entry.get("min_response_time"), entry.get("max_response_time"), entry["response_times"],
        )
        total.add(*figures)
        endpoints.setdefault(str(entry["name"]), Tally()).add(*figures)
        for second, count in entry.get("num_reqs_per_sec", {}).items():
            per_second.setdefault(int(second), [0, 0])[0] += count
        for second, count in entry.get("num_fail_per_sec", {}).items():
            per_second.setdefault(int(second), [0, 0])[1] += count
    counts = [{"t": second, "requests": r, "failures": f} for second, (r, f) in sorted(per_second.items())]
    return total.summary(seconds), {name: tally.summary(seconds) for name, tally in endpoints.items()}, counts


def evaluate(thresholds: Sequence[Threshold], total: dict[str, Any], endpoints: dict[str, dict[str, Any]]) -> list[ThresholdResult]:
    results = []
    for threshold in thresholds:
        value = threshold.value_in(total, endpoints)
        results.append(ThresholdResult(threshold.expression, value, threshold.holds(value)))
    return results


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def taking_turns(lock_dir: Path | None) -> Iterator[None]:
    """Under xdist, one load run at a time across the workers (an exclusive lock on a file in the
    gate's shared directory); a plain run has nothing to wait for."""
    if lock_dir is None:
        yield
        return
    import fcntl

    with open(lock_dir / "load.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Progress:
    """One line updated in place while a run goes on: elapsed/duration, rps, failures, p95.

    Only on an interactive terminal, at normal verbosity or more, outside CI; otherwise silent.
    """

    def __init__(self, config: pytest.Config | None) -> None:
        self.writer: Any = None
        self.shown = False
        self._capture: Any = None
        if config is None or config.getoption("verbose") < 0 or os.environ.get("CI"):
            return
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and reporter.isatty:
            self.writer = reporter  # TerminalReporter.write(text, flush=True)
            # The run happens inside a test, while pytest captures fd 1: write past it, as
            # pytest's own live logging does.
            self._capture = config.pluginmanager.get_plugin("capturemanager")

    def _write(self, text: str) -> None:
        disabled = self._capture.global_and_fixture_disabled() if self._capture is not None else contextlib.nullcontext()
        with disabled:
            self.writer.write(text, flush=True)

    def show(self, duration: float, line: dict[str, Any]) -> None:
        if self.writer is None:
            return
        p95 = line.get("p95")
        text = (
            f"load: {line['elapsed']:.0f}/{duration:g}s  {line['rps']:.1f} rps  "
            f"{line['failures']} failures  p95 {'-' if p95 is None else f'{p95:g} ms'}"
        )
        self._write("\r" + text.ljust(70))
        self.shown = True

    def done(self) -> None:
        if self.writer is not None and self.shown:
            self._write("\r" + " " * 70 + "\r")


class StagingLoad:
    """The ``staging_load`` fixture's object."""

    def __init__(
        self,
        target: Target,
        rootdir: Path,
        current: Callable[[], TestRecord | None],
        distribution: Distribution = Distribution(),
        lock_dir: Path | None = None,
        config: pytest.Config | None = None,
        scrub: Callable[[str], str] = str,
    ) -> None:
        self.target = target
        self.rootdir = rootdir
        self._current = current
        self.distribution = distribution
        self.lock_dir = lock_dir
        self.config = config
        self.scrub = scrub

    def run(
        self,
        locustfile: str | os.PathLike[str],
        *,
        users: int,
        spawn_rate: float,
        duration: float,
        thresholds: Sequence[str] = (),
        user_classes: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        abort_on_fail: bool = False,
    ) -> LoadResult:
        """Run ``locustfile`` against the target for ``duration`` seconds with ``users`` users
        (started ``spawn_rate`` per second); fail the test if a threshold is breached."""
        __tracebackhide__ = True
        try:
            parsed = parse_all(thresholds)
        except ThresholdError as exc:
            pytest.fail(f"staging_load: {exc}", pytrace=False)
        if importlib.util.find_spec("locust") is None:
            pytest.fail("staging_load: locust is not installed; install pytest-staging[load]", pytrace=False)
        path = Path(locustfile)
        if not path.is_absolute():
            path = self.rootdir / path
        if not path.is_file():
            pytest.fail(f"staging_load: locustfile {locustfile} not found (relative paths start at {self.rootdir})", pytrace=False)
        if users < 1 or spawn_rate <= 0 or duration <= 0:
            pytest.fail("staging_load: users must be >= 1, spawn_rate and duration > 0", pytrace=False)
        profile = {
            "locustfile": str(locustfile),
            "locustfileSha256": file_digest(path),
            "users": users,
            "spawnRate": spawn_rate,
            "duration": duration,
            "userClasses": list(user_classes) if user_classes else None,
            "tags": list(tags) if tags else None,
            "processes": self.distribution.processes or None,
            "workers": self.distribution.workers or None,
        }
        record = self._current()
        with taking_turns(self.lock_dir), tempfile.TemporaryDirectory(prefix="staging-load-") as tmp:
            entries, helper_output = self._locust(Path(tmp), path, parsed if abort_on_fail else (), profile, record, user_classes, tags)
        total, endpoints, counts = summarize(entries)
        series = helper_output.get("series", [])
        result = LoadResult(
            total=Stats.from_summary(total),
            endpoints={name: Stats.from_summary(data) for name, data in endpoints.items()},
            thresholds=evaluate(parsed, total, endpoints),
            profile=profile,
            series=_merge_series(counts, series),
            aborted=helper_output.get("aborted"),
        )
        if record is not None:
            record.add_load_run(result.to_dict())
        if not result.ok:
            pytest.fail(f"staging_load: thresholds breached\n{result.table()}", pytrace=False)
        return result

    # -- the subprocess ---------------------------------------------------------------------

    def _command(self, tmp: Path, locustfile: Path, users: int, spawn_rate: float, duration: float,
                 user_classes: Sequence[str] | None, tags: Sequence[str] | None) -> list[str]:
        command = [
            sys.executable, "-m", "locust",
            "-f", f"{locustfile},{HELPER}",
            "--headless",
            "--users", str(users),
            "--spawn-rate", f"{spawn_rate:g}",
            "--run-time", f"{max(1, round(duration))}s",
            "--json-file", str(tmp / "stats"),
            "--exit-code-on-error", "0",
            "--only-summary",
            "--loglevel", "WARNING",
        ]
        if tags:
            command += ["--tags", *tags]
        distribution = self.distribution
        if distribution.processes:
            command += ["--processes", str(distribution.processes)]
        elif distribution.workers:
            command += [
                "--master",
                "--expect-workers", str(distribution.workers),
                "--expect-workers-max-wait", f"{distribution.worker_wait:g}",
                "--master-bind-host", distribution.master_bind_host,
                "--master-bind-port", str(distribution.master_bind_port),
            ]
        if user_classes:
            command += list(user_classes)
        return command

    def _locust(self, tmp: Path, locustfile: Path, abort: Sequence[Threshold], profile: dict[str, Any],
                record: TestRecord | None, user_classes: Sequence[str] | None, tags: Sequence[str] | None
                ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        headers = dict(self.target.headers)
        if record is not None:
            headers.setdefault("X-Correlation-ID", record.correlation_id)
        config_path = tmp / "config.json"
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "host": self.target.url,
                    "headers": headers,
                    "series": str(tmp / "series.json"),
                    "progress": str(tmp / "progress.jsonl"),
                    "abort_thresholds": [t.expression for t in abort],
                },
                handle,
            )
        env = {**os.environ, CONFIG_ENV: str(config_path), "PYTHONUNBUFFERED": "1"}
        command = self._command(tmp, locustfile, profile["users"], profile["spawnRate"], profile["duration"], user_classes, tags)
        deadline = profile["duration"] + GRACE_SECONDS + (self.distribution.worker_wait if self.distribution.workers else 0)
        log_path = tmp / "locust.log"
        progress = Progress(self.config)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=locustfile.parent)
        started = time.monotonic()
        shown = 0
        try:
            while proc.poll() is None:
                if time.monotonic() - started > deadline:
                    proc.kill()
                    proc.wait()
                    pytest.fail(f"staging_load: locust did not finish within {deadline:g}s; killed", pytrace=False)
                time.sleep(0.25)
                shown = self._show_progress(tmp / "progress.jsonl", shown, progress, profile["duration"])
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            progress.done()
        output = log_path.read_text(encoding="utf-8", errors="replace")
        stats_path = tmp / "stats.json"
        if proc.returncode != 0 or not stats_path.is_file():
            pytest.fail(self._failure(proc.returncode, output), pytrace=False)
        entries = json.loads(stats_path.read_text(encoding="utf-8"))
        series_path = tmp / "series.json"
        helper_output = json.loads(series_path.read_text(encoding="utf-8")) if series_path.is_file() else {}
        return entries, helper_output

    @staticmethod
    def _show_progress(path: Path, shown: int, progress: Progress, duration: float) -> int:
        if progress.writer is None or not path.is_file():
            return shown
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > shown:
            with contextlib.suppress(ValueError):
                progress.show(duration, json.loads(lines[-1]))
            return len(lines)
        return shown

    def _failure(self, code: int | None, output: str) -> str:
        if "Gave up waiting for workers" in output:
            d = self.distribution
            return (
                f"staging_load: the locust master waited {d.worker_wait:g}s for {d.workers} worker(s) on "
                f"{d.master_bind_host}:{d.master_bind_port} and not all came; start them with "
                f"`pytest-staging load-worker LOCUSTFILE --master-host HOST --master-port {d.master_bind_port}`"
            )
        tail = [line for line in output.strip().splitlines() if line.strip()][-12:]
        return self.scrub(f"staging_load: locust exited with status {code}:\n" + "\n".join(tail))


def _merge_series(counts: list[dict[str, Any]], sampled: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-second series in the verdict: locust's own per-second counts (wall-clock seconds)
    and the helper's per-second latency per endpoint (seconds since the first request)."""
    return [{"t": s["t"], "endpoints": s["endpoints"]} for s in sampled] if sampled else [
        {"t": c["t"], "endpoints": {"*": {"requests": c["requests"], "failures": c["failures"]}}} for c in counts
    ]
