"""pytest-staging's entry point (``-p no:staging`` disables it): options, markers, fixtures.

Without a staging target this module is all that runs, and it does nothing per test: the gate's
plugin objects (:mod:`pytest_staging.gate`, one per process role) are registered only when a
target is configured.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from . import settings as staging_settings
from .gate import GATE_KEY
from .options import add_options

if TYPE_CHECKING:
    from .core.targets import Target
    from .fixtures.contract import Contract
    from .fixtures.data import StagingData
    from .fixtures.http import StagingSession
    from .fixtures.load import StagingLoad
    from .fixtures.metrics import StagingMetrics
    from .gate.state import Gate

#: --dist modes under which tiers stay in order: each gets a tier-aware scheduler
#: (gate/scheduler.py). Not ``each``: it runs every test on every worker.
ORDERED_DIST_MODES = ("load", "loadscope", "loadfile", "loadgroup", "worksteal", "no")
#: Why another mode cannot keep tier order (the usage error says it).
UNORDERED_DIST_MODES = {"each": "it runs every test on every worker, each at its own pace"}


MARKERS = (
    "smoke: staging gate tier 1: is the deployment up and answering (runs first)",
    "contract: staging gate tier 2: API and data contracts (after smoke)",
    "load: staging gate tier 3: load and performance (last)",
    "destructive: changes data on the target; never runs on a sensitive target",
    "quarantine(reason, owner, until, ticket=None): a known-flaky test whose failure does not block",
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # The first moment the options are known, before conftests are imported and the command line
    # is parsed in full: an earlier verdict at the path goes now, so that no usage error or crash
    # from here to the gate's start (an unknown option, a conftest that fails to import) leaves it
    # behind for release tooling to take as this run's. xdist workers write no verdict.
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        staging_settings.retract_verdict(early_config, early_config.known_args_namespace)


def pytest_configure(config: pytest.Config) -> None:
    # Registered either way, so --strict-markers suites collect cleanly without a target.
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if config.option.help or config.option.version:
        return
    from .core.errors import ConfigError

    try:
        settings = staging_settings.read_settings(config)
        if settings is None:
            return
        # xdist's own cmdline_main has settled --dist (and -n) by now; its controller is the
        # process that starts workers: neither a worker itself nor a run that only collects.
        dist = getattr(config.option, "dist", "no")
        controller = not hasattr(config, "workerinput") and dist != "no" and not config.option.collectonly
        if controller and dist not in ORDERED_DIST_MODES:
            raise ConfigError(
                f"--dist={dist}",
                "",
                "tiers cannot be kept in order with this mode "
                f"({UNORDERED_DIST_MODES.get(dist, 'the gate has no tier-aware scheduler for it')}); "
                "use --dist=load (the default for -n), loadscope, loadfile, loadgroup or worksteal, "
                "or run one tier per invocation with --staging-tier",
            )
        from .gate import start

        start(config, settings, controller)
    except ConfigError as exc:
        # No earlier run's verdict may outlive a run that stopped here: release tooling would
        # take it for this run's.
        staging_settings.retract_verdict(config)
        raise pytest.UsageError(exc.line()) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    gate = config.stash.get(GATE_KEY, None)
    if gate is not None:
        gate.signals.restore()


def _gate(request: pytest.FixtureRequest) -> Gate:
    gate = request.config.stash.get(GATE_KEY, None)
    if gate is None:
        pytest.fail(
            f"{request.fixturename}: no staging target configured; pass --staging-target=NAME|URL "
            "or set STAGING_TARGET or ini staging_target",
            pytrace=False,
        )
    return gate


@pytest.fixture(scope="session")
def staging_target(request: pytest.FixtureRequest) -> Target:
    """The staging target under test, as resolved before the first test.

    Attributes: ``name``, ``url``, ``environment``, ``sensitive`` (true when the targets file
    says so, or the URL or a redirect from it matches ``--staging-sensitive-url``) and
    ``release`` (``--staging-release``, else the version the target's probe reported, else None).
    Never exposes the target's headers.
    """
    return _gate(request).target


@pytest.fixture(scope="session")
def staging_contract(request: pytest.FixtureRequest) -> Contract:
    """Check API and data contracts with JSON Schema; every violation listed with its JSON path.

    - ``staging_contract.validate(response_or_obj, schema)``: ``schema`` is a JSON Schema dict or
      a ``.json``/``.yaml`` file (relative to the rootdir; ``$ref`` across files resolved), or
      ``openapi=DOC, operation="getPet"`` / ``path="/pets/{id}", method="get"``, ``status=200``
      for the response schema of an OpenAPI 3.0/3.1 operation. A ``requests.Response`` has its
      status and Content-Type checked too when the contract says what they must be. The draft
      comes from ``$schema`` (default 2020-12) and formats are checked.
    - ``staging_contract.validate_rows(rows, schema, max_invalid_ratio=0.001)``: a data contract
      for a batch; fails when too many rows are invalid, showing the first few.

    Raises one ``AssertionError`` listing every violation (``$.items[3].price: type: ...``).
    Validators are compiled once per schema; results go to the verdict (``sli`` and per test).
    """
    gate = _gate(request)
    from .fixtures.contract import Contract

    return Contract(request.config.rootpath, gate.current_test)


@pytest.fixture(scope="session")
def staging_metrics(request: pytest.FixtureRequest) -> StagingMetrics:
    """Record your own measurements; they are compared with the baseline like request latencies.

    ``staging_metrics.record(name, value, unit="")`` adds ``value`` to the series ``name`` (for
    example ``staging_metrics.record("checkout total", 412.0, "ms")``). The values of a series,
    from all tests, are written by ``--staging-save-baseline`` and judged against the baseline's
    series by ``--staging-baseline`` under the rule whose glob matches the name
    (``[tool.pytest_staging.metrics."GLOB"]``); NaN is counted but not judged. Works under
    xdist: the values travel with the test's report.
    """
    gate = _gate(request)
    from .fixtures.metrics import StagingMetrics

    return StagingMetrics(gate.current_test)


@pytest.fixture(scope="session")
def staging_load(request: pytest.FixtureRequest) -> StagingLoad:
    """Run a locust scenario against the target and judge it with k6-style thresholds.

    ``staging_load.run(locustfile, users=, spawn_rate=, duration=, thresholds=[...],
    user_classes=None, tags=None, abort_on_fail=False)`` runs locust in a subprocess (never in
    this process) with the target as host and the target's headers (passed through a private
    file, not the command line). Returns a result with ``.ok``, ``.total``,
    ``.endpoints[name]`` (requests, failures, fail_ratio, rps, avg, min, max, p50, p90, p95,
    p99; times in ms) and ``.thresholds`` (expression, value, ok). A breached threshold fails
    the test with a table of every threshold. Thresholds: ``p(95) < 500``, ``avg < 200``,
    ``med < 100``, ``max < 2000``, ``rate(failures) < 0.01``, ``rps > 50``,
    ``p(95){name:/orders} < 300``. Locustfile paths are relative to the rootdir. Needs
    ``pytest-staging[load]``; under xdist, load runs take turns.
    """
    gate = _gate(request)
    from .fixtures.load import Distribution, StagingLoad

    return StagingLoad(
        gate.target,
        request.config.rootpath,
        gate.current_test,
        gate.settings.load or Distribution(),
        lock_dir=gate.gate_dir,
        config=request.config,
        scrub=gate.scrub,
    )


@pytest.fixture(scope="session")
def staging_http(request: pytest.FixtureRequest) -> Iterator[StagingSession]:
    """A ``requests.Session`` bound to the staging target.

    - relative URLs are resolved against the target URL: ``staging_http.get("/health")``;
    - the target's ``timeout`` applies unless you pass one; its ``headers`` (credentials
      included) are sent to the target only, never to another host;
    - connection errors are retried twice; HTTP errors and read timeouts are not;
    - each request carries the current test's ``X-Correlation-ID`` (one id per test, also in
      the test's JUnit properties), and its latency is recorded as ``"<METHOD> <path>"`` in ms;
    - with tracing on (docs/telemetry.md), each request also carries the W3C
      ``traceparent`` of the test's span, so the target's own spans join the test's trace;
    - in a ``destructive`` test, a redirect to a URL matching ``--staging-sensitive-url`` is
      refused (``SensitiveRedirectError``) instead of followed.
    """
    session = _gate(request).http_session()
    yield session
    session.close()


@pytest.fixture(scope="session")
def staging_data(request: pytest.FixtureRequest) -> Iterator[StagingData]:
    """Contracts over the staged data itself, read from the target's databases.

    The databases are ``[targets.NAME.databases]`` in the targets file: an alias per SQLAlchemy
    URL (``orders = "postgresql+psycopg://gate:${DB_PASSWORD}@db/orders"``, ``local =
    "sqlite:///staging.db"``; a relative SQLite path is from the rootdir, and is opened read-only).
    Needs ``pytest-staging[data]``.

    - ``staging_data.query(alias, sql, params=None)``: the rows as dicts, streamed (a server-side
      cursor, chunks of 10,000 rows); parameters in SQLAlchemy's ``:name`` style.
    - ``staging_data.expect(alias, table_or_sql, schema=None, max_invalid_ratio=0.0, unique=(),
      not_null=(), min_rows=None, fresh=None, key=None)``: one pass over a table (a bare name) or
      a query's rows: each row against the JSON Schema ``schema`` (a dict or a file, as for
      ``staging_contract``; timestamps and UUIDs are seen as ISO-8601 text), at most
      ``max_invalid_ratio`` invalid; each ``unique`` column (or tuple of columns) without
      duplicates (NULLs are no duplicates); no NULL in a ``not_null`` column; at least
      ``min_rows`` rows; ``fresh=("updated_at", "24h")``: the column's newest value at most that
      old, and not more than 5 minutes ahead (naive timestamps and ISO-8601 text are UTC).
      Returns the counts.

    A failed expectation raises one ``AssertionError`` listing each failed check with its numbers
    and at most five invalid rows by their key (``key=``, else the primary key, else the
    ``unique`` columns, else the row's position) and violation paths, never another value of the
    row. An unknown alias, a database that cannot be reached or a refused query fails the test in
    one line. Every expectation goes to the verdict's ``data`` section.
    """
    gate = _gate(request)
    from .fixtures.data import StagingData

    # The contract tier's object: one cache of compiled validators for both fixtures.
    contract = request.getfixturevalue("staging_contract")
    data = StagingData(gate.target, request.config.rootpath, contract, gate.current_test, gate.scrub)
    yield data
    data.close()
