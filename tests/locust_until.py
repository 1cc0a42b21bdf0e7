# Appended to the locustfiles of this suite's load tests (not a test module, not imported here).
#
# The run ends as soon as it has measured what its test looks at; the duration the test gives
# staging_load.run is only a ceiling. A fixed few seconds on a loaded machine (the suite under
# xdist) may hold no request at all, or a single second of the gate's series.
#
# UNTIL: seconds of the gate's series (the last one naming every endpoint of the running user
# classes, from their ``endpoints`` attribute), requests in all, and a file that must exist (the
# test's own go-ahead) before the run ends.
import json as _json
import os as _os
import pathlib as _pathlib

import gevent as _gevent
from locust import events as _events
from locust.runners import WorkerRunner as _WorkerRunner

UNTIL = {"samples": 2, "requests": 20, "file": None}


def _measured(environment, series_path):
    try:
        series = _json.loads(series_path.read_text())["series"]
    except FileNotFoundError:  # no second sampled yet (the gate's helper replaces it whole)
        return False
    endpoints = set().union(*(getattr(user, "endpoints", ()) for user in environment.user_classes))
    return (
        len(series) >= UNTIL["samples"]
        and endpoints <= set(series[-1]["endpoints"])
        and environment.runner.stats.total.num_requests >= UNTIL["requests"]
        and (UNTIL["file"] is None or _pathlib.Path(UNTIL["file"]).exists())
    )


@_events.init.add_listener
def _end_when_measured(environment, **_kwargs):
    if isinstance(environment.runner, _WorkerRunner):  # the master (or local runner) decides
        return
    config = _json.loads(_pathlib.Path(_os.environ["STAGING_LOAD_CONFIG"]).read_text())
    series_path = _pathlib.Path(config["series"])

    def watch():
        while not _measured(environment, series_path):
            _gevent.sleep(0.1)
        environment.runner.quit()

    _gevent.spawn(watch)
