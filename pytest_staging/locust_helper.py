"""Loaded by locust next to the user's locustfile (``-f LOCUSTFILE,<this file>``); never by pytest.

It runs inside the locust processes (master, local runner or worker), where gevent is at home:

- target headers (secrets included) come from a 0600 file named by ``STAGING_LOAD_CONFIG``, not
  from the command line; the master (or local runner) reads it and sends the headers to its
  workers when the run starts (a locust custom message), so workers on other machines get them too;
- the master (or local runner) samples its statistics once a second: a per-second series per
  endpoint (requests, failures, p50/p95 of that second) for the baseline comparison, and a
  progress line for the terminal; with ``abort_on_fail`` it stops the run as soon as a threshold
  is breached on the running totals.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gevent
from locust import events
from locust.clients import HttpSession
from locust.runners import MasterRunner, WorkerRunner

from pytest_staging.thresholds import Tally, parse_all, percentile

CONFIG_ENV = "STAGING_LOAD_CONFIG"
MESSAGE = "staging_load_headers"
_headers: dict[str, str] = {}


def _read_config() -> dict[str, Any]:
    path = os.environ.get(CONFIG_ENV)
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError:  # a worker on another machine: the master sends what it needs
        return {}


CONFIG = _read_config()
_headers.update(CONFIG.get("headers", {}))

_original_init = HttpSession.__init__


def _init_with_headers(self: HttpSession, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)
    self.headers.update(_headers)


HttpSession.__init__ = _init_with_headers  # type: ignore[method-assign]


def _receive_headers(environment: Any = None, msg: Any = None, **_kwargs: Any) -> None:
    _headers.update(msg.data)


@events.init.add_listener
def _on_init(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message(MESSAGE, _receive_headers)
        return
    if CONFIG.get("host"):
        environment.host = CONFIG["host"]
    if isinstance(runner, MasterRunner):
        # At the start of the run (before any spawn message), to every connected worker: by then
        # each worker has registered its handler, which is not yet sure when it first connects.
        def send_headers(**_kw: Any) -> None:
            runner.send_message(MESSAGE, _headers)

        environment.events.test_start.add_listener(send_headers)
    if CONFIG.get("series"):
        gevent.spawn(_sample, environment)


def _snapshot(stats: Any) -> dict[str, Tally]:
    """Cumulative figures per endpoint name (methods merged), copied out of locust's stats."""
    by_name: dict[str, Tally] = {}
    for entry in stats.entries.values():
        by_name.setdefault(entry.name, Tally()).add(
            entry.num_requests, entry.num_failures, entry.num_none_requests, entry.total_response_time,
            entry.min_response_time, entry.max_response_time, entry.response_times,
        )
    return by_name


def _second(now: Tally, before: Tally | None) -> dict[str, Any]:
    """One second of one endpoint: the difference of two cumulative snapshots."""
    before = before or Tally()
    histogram = {t: c - before.histogram.get(t, 0) for t, c in now.histogram.items() if c != before.histogram.get(t, 0)}
    timed = now.requests - now.none_requests - (before.requests - before.none_requests)
    return {
        "requests": now.requests - before.requests,
        "failures": now.failures - before.failures,
        "p50": percentile(histogram, timed, 0.5),
        "p95": percentile(histogram, timed, 0.95),
    }


def _sample(environment: Any) -> None:
    """Once a second until the run ends: series, progress, abort on a breached threshold."""
    runner = environment.runner
    thresholds = parse_all(CONFIG.get("abort_thresholds", ()))
    series_path, progress_path = CONFIG["series"], CONFIG.get("progress")
    started = False
    previous: dict[str, Tally] = {}
    series: list[dict[str, Any]] = []

    def write() -> None:
        with open(series_path + ".tmp", "w", encoding="utf-8") as handle:
            json.dump({"series": series, "aborted": aborted}, handle)
        os.replace(series_path + ".tmp", series_path)

    aborted = None
    while True:
        gevent.sleep(1.0)
        stats = runner.stats
        if runner.state in ("ready", "spawning") and not started and not stats.num_requests:
            continue
        started = True
        snapshot = _snapshot(stats)
        elapsed = time.time() - stats.start_time
        # rps as locust's total_rps: requests over first request to last, not over the wall clock.
        span = (stats.last_request_timestamp or stats.start_time) - stats.start_time
        series.append(
            {
                "t": round(elapsed, 3),
                "endpoints": {name: _second(seen, previous.get(name)) for name, seen in snapshot.items()},
            }
        )
        previous = snapshot
        merged = Tally()
        for tally in snapshot.values():
            merged.merge(tally)
        totals = merged.summary(span)
        if progress_path:
            line = {
                "elapsed": round(elapsed, 1),
                "requests": totals["requests"],
                "failures": totals["failures"],
                "rps": round(totals["rps"], 1),
                "p95": totals["p95"],
            }
            with open(progress_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
        write()
        if thresholds and totals["requests"] and elapsed >= 2.0:
            endpoints = {name: tally.summary(span) for name, tally in snapshot.items()}
            breached = [t.expression for t in thresholds if not t.holds(t.value_in(totals, endpoints))]
            if breached:
                aborted = {"after": round(elapsed, 3), "breached": breached}
                write()
                runner.quit()
                return
        if runner.state in ("stopped", "quitting", "cleanup"):
            return
