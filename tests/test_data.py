"""staging_data: contracts over staged data, against SQLite and a real PostgreSQL.

The inner gates run against httpbin (the target) with a targets file naming the databases. The
PostgreSQL cluster is the session's own (tests/pg_cluster.py); in CI (STAGING_REQUIRE_POSTGRES)
a missing PostgreSQL fails instead of skipping.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Kept loaded across pytester's in-process runs: a psycopg imported twice raises the errors of
# its first import (its C part stays), which SQLAlchemy then no longer recognises.
import psycopg  # noqa: F401
import pytest
import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401
from hypothesis import given
from hypothesis import strategies as st

import pytest_staging.fixtures.data  # noqa: F401
from pytest_staging.core.data import Expectation, RowError, as_utc, failure, schema_names, violation
from pytest_staging.fixtures.contract import Contract

#: A customer's e-mail in a bad row: it must never appear in any output of the gate.
SENTINEL = "sentinel-pii-5f3a@example.com"
#: A database password: a secret, never shown.
PASSWORD = "pw-7c1e9d2b-secret"
NOW = dt.datetime.now(dt.timezone.utc)

ORDER = {
    "type": "object",
    "required": ["order_id", "total", "status"],
    "properties": {
        "order_id": {"type": "integer"},
        "customer_email": {"type": ["string", "null"]},
        "total": {"type": "number", "minimum": 0},
        "status": {"enum": ["new", "paid"]},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}


def order_rows() -> list[tuple]:
    """100 orders; order 7 has a text total and the sentinel e-mail, order 9 an unknown status,
    order 11 a NULL total; the e-mails of orders 50 and 51 are the same."""
    stamp = (NOW - dt.timedelta(hours=1)).replace(tzinfo=None)
    rows = [(i, f"c{i}@example.com", 10.0 + i, "paid", stamp) for i in range(1, 101)]
    rows[6] = (7, SENTINEL, "seven", "paid", stamp)
    rows[8] = (9, "c9@example.com", 19.0, "lost", stamp)
    rows[10] = (11, "c11@example.com", None, "paid", stamp)
    rows[50] = (51, "c50@example.com", 61.0, "paid", stamp)
    return rows


def load_orders(url: str) -> None:
    """The staged ``orders`` table at ``url`` (total is text where it must be, as staged data is)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(text("DROP TABLE IF EXISTS orders"))
        db.execute(
            text(
                "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_email TEXT, total TEXT, "
                "status TEXT, updated_at TIMESTAMP)"
            )
        )
        # SQLite keeps timestamps as text: as RFC 3339 (format: date-time), not sqlite3's "a b" form.
        sqlite = url.startswith("sqlite")
        db.execute(
            text("INSERT INTO orders VALUES (:i, :e, :t, :s, :u)"),
            [
                {"i": i, "e": e, "t": None if t is None else str(t), "s": s, "u": u.isoformat() + "Z" if sqlite else u}
                for i, e, t, s, u in order_rows()
            ],
        )
        # Numbers where they are numbers: a view that casts what can be cast.
        db.execute(text("DROP VIEW IF EXISTS staged_orders"))
        cast = (
            "CASE WHEN total GLOB '[0-9]*' THEN CAST(total AS REAL) ELSE total END"
            if url.startswith("sqlite")
            else ("CASE WHEN total ~ '^[0-9.]+$' THEN to_jsonb(total::numeric) ELSE to_jsonb(total) END")
        )
        db.execute(
            text(
                f"CREATE VIEW staged_orders AS SELECT order_id, customer_email, {cast} AS total, status, updated_at FROM orders"
            )
        )
    engine.dispose()


# -- the databases -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL cluster of this session (this xdist worker), with the orders loaded."""
    sys.path.insert(0, str(Path(__file__).parent))
    import pg_cluster

    bin_dir = pg_cluster.binaries()
    if bin_dir is None:
        if os.environ.get("STAGING_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is not installed (STAGING_REQUIRE_POSTGRES is set: .ci/run installs postgresql)")
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql); CI requires it")
    cluster = pg_cluster.Cluster.start(bin_dir)
    try:
        cluster.create_database("staged")
        load_orders(cluster.url("staged"))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def sqlite_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "staged.db"
    load_orders(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path_factory) -> str:
    """The staged orders' URL as a targets file names it (PostgreSQL's with a password)."""
    if request.param == "sqlite":
        return f"sqlite:///{request.getfixturevalue('sqlite_db')}"
    return request.getfixturevalue("postgres").url("staged", password=PASSWORD)


def targets_file(directory: Path, url: str, databases: dict[str, str]) -> None:
    lines = ["[targets.qa]", f'url = "{url}"', "", "[targets.qa.databases]"]
    lines += [f'{alias} = "{value}"' for alias, value in databases.items()]
    (directory / "staging-targets.toml").write_text("\n".join(lines) + "\n")


def statement(path: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))


def run_gate(pytester, httpbin_url, databases: dict[str, str], suite: str, *args: str):
    targets_file(pytester.path, httpbin_url, databases)
    pytester.makepyfile(test_staged=suite)
    result = pytester.runpytest(
        "--staging-target=qa",
        "--junitxml=junit.xml",
        "--staging-report=report.html",
        "--staging-summary=summary.md",
        "-p",
        "no:cacheprovider",
        *args,
    )
    return result, statement(pytester.path / "staging-verdict.intoto.json")


def every_output(pytester, result) -> str:
    """Everything the run showed or wrote: terminal, verdict, JUnit XML, HTML report, summary."""
    parts = [result.stdout.str(), result.stderr.str()]
    for name in ("staging-verdict.intoto.json", "junit.xml", "report.html", "summary.md"):
        path = pytester.path / name
        if path.exists():
            text = path.read_text()
            parts.append(text)
            if name.endswith(".intoto.json"):
                parts.append(base64.b64decode(json.loads(text)["payload"]).decode())
    return "\n".join(parts)


# -- end to end ---------------------------------------------------------------------------------

PASSING = f"""
import pytest

SCHEMA = {ORDER!r}

@pytest.mark.contract
def test_orders_within_budget(staging_data):
    result = staging_data.expect(
        "orders", "staged_orders", schema=SCHEMA, max_invalid_ratio=0.05, min_rows=100, fresh=("updated_at", "24h")
    )
    assert (result["rows"], result["invalid"]) == (100, 3)

@pytest.mark.contract
def test_query_streams_rows(staging_data):
    rows = staging_data.query("orders", "SELECT order_id, status FROM orders WHERE order_id <= :n ORDER BY order_id", {{"n": 3}})
    assert list(rows) == [{{"order_id": i, "status": "paid"}} for i in (1, 2, 3)]
"""


def test_a_batch_within_its_contract_promotes(pytester, httpbin_url, database):
    result, predicate = run_gate(pytester, httpbin_url, {"orders": database}, PASSING)
    predicate = predicate["predicate"]
    assert result.ret == 0, result.stdout.str()
    assert predicate["decision"] == "PROMOTE"
    [expectation] = predicate["data"]["expectations"]
    assert expectation["test"] == "test_staged.py::test_orders_within_budget"
    assert (expectation["alias"], expectation["table"], expectation["query"]) == ("orders", "staged_orders", None)
    assert (expectation["rows"], expectation["invalid"], expectation["ratio"], expectation["ok"]) == (
        100,
        3,
        0.03,
        True,
    )
    assert [c["check"] for c in expectation["checks"]] == ["schema", "min_rows", "fresh"]
    assert predicate["sli"]["dataValidationFailureRate"] == 0.03
    result.stdout.fnmatch_lines(
        ["data expectations (3% of rows invalid):", "*orders:staged_orders*100 rows*3 invalid (3.00%)*"]
    )
    assert "Staged data" in (pytester.path / "report.html").read_text()
    assert "<code>orders:staged\\_orders</code>" in (pytester.path / "summary.md").read_text()


FAILING = f"""
import pytest

SCHEMA = {ORDER!r}

@pytest.mark.contract
def test_orders(staging_data):
    staging_data.expect(
        "orders", "staged_orders", schema=SCHEMA, unique=["customer_email"], not_null=["total"], min_rows=500,
        fresh=("updated_at", "1s"), key="order_id",  # a view has no primary key; the e-mail is personal data
    )

@pytest.mark.contract
def test_orders_table(staging_data):
    staging_data.expect("orders", "orders", schema={{"properties": {{"status": {{"enum": ["new", "paid"]}}}}}})

@pytest.mark.contract
def test_orders_query(staging_data):
    staging_data.expect("orders", "SELECT * FROM staged_orders WHERE order_id < 20", schema=SCHEMA, key="order_id")
"""


def test_a_broken_batch_rejects_naming_rows_by_key_never_their_values(pytester, httpbin_url, database):
    result, predicate = run_gate(pytester, httpbin_url, {"orders": database}, FAILING, "-l", "--tb=long")
    predicate = predicate["predicate"]
    assert result.ret == 1
    assert predicate["decision"] == "REJECT"
    output = result.stdout.str()
    # Each failed check with its numbers, the invalid rows by their primary key and paths.
    assert "data expectation on orders:staged_orders failed: 5 of 5 checks over 100 rows scanned" in output
    assert "schema (draft2020-12): 3 of 100 rows invalid (3.0000%), over the limit of 0.0000%" in output
    assert 'order_id=7: $.total: type: "number"' in output
    assert 'order_id=9: $.status: enum: ["new", "paid"]' in output
    assert "order_id=11: $.total: type" in output
    assert "unique customer_email: 1 duplicate value" in output
    assert "not_null total: 1 of 100 rows are NULL" in output
    assert "min_rows: 100 rows, expected at least 500" in output
    assert re.search(r"fresh updated_at: newest \S+ is \S+ old, expected at most 1s", output)
    assert "data expectation on orders:query sha256:" in output
    assert "order_id=9: $.status: enum:" in output.split("orders:orders failed")[1]  # the table's primary key
    # The query is in the verdict by its digest only.
    query = predicate["data"]["expectations"][2]
    assert query["table"] is None and re.fullmatch("[0-9a-f]{64}", query["query"]["sha256"])
    assert predicate["sli"]["dataValidationFailureRate"] == round(7 / 219, 6)
    everything = every_output(pytester, result)
    assert SENTINEL not in everything and "seven" not in everything and "lost" not in everything


def test_a_database_password_is_never_shown(pytester, httpbin_url, postgres, monkeypatch):
    """Given as ${VAR} or in the URL's user info, through an unreachable database's error too."""
    monkeypatch.setenv("ORDERS_DB_PASSWORD", PASSWORD)
    databases = {
        "orders": postgres.url("staged").replace("staging@", "staging:${ORDERS_DB_PASSWORD}@"),
        "inline": postgres.url("staged", password=PASSWORD + "-2"),
        "down": postgres.url("staged", password=PASSWORD + "-3").replace(str(postgres.port), "1"),
    }
    suite = """
def test_env(staging_data):
    staging_data.expect("orders", "orders", not_null=["total"])

def test_inline(staging_data):
    staging_data.expect("inline", "orders", not_null=["total"])

def test_down(staging_data):
    staging_data.expect("down", "orders")
"""
    result, _ = run_gate(pytester, httpbin_url, databases, suite, "-l", "--tb=long")
    result.assert_outcomes(failed=3)
    output = result.stdout.str()
    assert "not_null total: 1 of 100 rows are NULL" in output
    assert "staging_data: database 'down' cannot be reached: OperationalError:" in output
    assert PASSWORD not in every_output(pytester, result)


@pytest.mark.parametrize(
    "case, alias, source, line",
    [
        (
            "unknown alias",
            "nope",
            "orders",
            "staging_data: target 'qa' has no database 'nope' (known: orders); add it under [targets.qa.databases]",
        ),
        ("bad SQL", "orders", "SELEC oops FROM orders", "staging_data: database 'orders' refused the query: "),
        ("missing table", "orders", "no_such_table", "staging_data: database 'orders' refused the query: "),
    ],
)
def test_faults_fail_the_test_in_one_line(pytester, httpbin_url, database, case, alias, source, line):
    suite = f"""
def test_it(staging_data):
    staging_data.expect({alias!r}, {source!r})
"""
    result, predicate = run_gate(pytester, httpbin_url, {"orders": database}, suite)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    [shown] = [text for text in output.splitlines() if text.startswith("staging_data:")]
    assert shown.startswith(line), output
    assert "Traceback" not in output and "sqlalchemy" not in output.lower().replace("sqlalchemy and psycopg", "")
    assert predicate["predicate"]["decision"] == "REJECT"
    assert predicate["predicate"]["data"] is None


def test_an_unreachable_database_fails_in_one_line(pytester, httpbin_url, tmp_path):
    suite = """
def test_sqlite(staging_data):
    staging_data.expect("missing", "orders")

def test_postgres(staging_data):
    staging_data.expect("down", "orders")
"""
    closed = "postgresql+psycopg://gate@127.0.0.1:1/orders"
    result, _ = run_gate(pytester, httpbin_url, {"missing": "sqlite:///no/such.db", "down": closed}, suite)
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    assert (
        f"staging_data: database 'missing' cannot be reached: SQLite file {pytester.path}/no/such.db does not exist"
        in output
    )
    assert "staging_data: database 'down' cannot be reached: OperationalError: connection" in output
    assert not (pytester.path / "no").exists()  # never created empty
    assert "Traceback" not in output


def test_under_xdist_the_workers_expectations_reach_the_verdict(pytester, httpbin_url, database):
    suite = "\n".join(
        f"""
def test_orders_{i}(staging_data):
    staging_data.expect("orders", "SELECT * FROM orders WHERE order_id <= {i * 10}", min_rows={i * 10})
"""
        for i in range(1, 5)
    )
    result, predicate = run_gate(pytester, httpbin_url, {"orders": database}, suite, "-n", "2")
    assert result.ret == 0, result.stdout.str()
    expectations = predicate["predicate"]["data"]["expectations"]
    assert sorted((e["test"], e["rows"]) for e in expectations) == [
        (f"test_staged.py::test_orders_{i}", i * 10) for i in range(1, 5)
    ]
    assert predicate["predicate"]["session"]["xdistWorkers"] == 2
    assert predicate["predicate"]["sli"]["dataValidationFailureRate"] is None  # no schema checked


# -- the targets file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, fragments",
    [
        ('orders = "not a url"', ["targets.qa.databases.orders", "is not a SQLAlchemy URL"]),
        ('orders = "postgresql://u:p4ss@w0rd@h/db"', ["targets.qa.databases.orders", "percent-encode"]),
        ("orders = 5", ["targets.qa.databases.orders", "expected a SQLAlchemy URL string"]),
        ('orders = "postgresql://gate:${NO_SUCH_DB_VAR}@h/db"', ["NO_SUCH_DB_VAR is not set"]),
        ('"bad alias!" = "sqlite:///x.db"', ["not a usable alias"]),
    ],
)
def test_a_bad_databases_entry_is_a_usage_error(pytester, httpbin_url, usage_error, entry, fragments, monkeypatch):
    monkeypatch.delenv("NO_SUCH_DB_VAR", raising=False)
    (pytester.path / "staging-targets.toml").write_text(
        f'[targets.qa]\nurl = "{httpbin_url}"\n\n[targets.qa.databases]\n{entry}\n'
    )
    pytester.makepyfile("def test_x(): pass")
    line = usage_error.check(pytester.runpytest("--staging-target=qa"), "staging-targets.toml", *fragments)
    assert "p4ss" not in line and "w0rd" not in line


def test_the_databases_field_must_be_a_table(tmp_path):
    from pytest_staging.core.errors import ConfigError
    from pytest_staging.core.targets import load_targets

    path = tmp_path / "t.toml"
    path.write_text('[targets.qa]\nurl = "http://h"\ndatabases = "sqlite:///x.db"\n')
    with pytest.raises(ConfigError, match="targets.qa.databases.*expected a table"):
        load_targets(path, set())
    path.write_text(
        '[targets.qa]\nurl = "http://h"\n[targets.qa.databases]\na = "postgresql+psycopg://u:Pa%40ss@h:5432/d"\n'
    )
    secrets: set[str] = set()
    target = load_targets(path, secrets)["qa"]
    assert target.databases == {"a": "postgresql+psycopg://u:Pa%40ss@h:5432/d"}
    assert {"Pa%40ss", "Pa@ss"} <= secrets
    assert "Pa" not in repr(target)


# -- the example suite --------------------------------------------------------------------------

EXAMPLE = Path(__file__).parents[1] / "example_suites" / "data"


@pytest.mark.parametrize("broken", [False, True], ids=["batch", "broken-batch"])
def test_the_example_data_gate(tmp_path, httpbin_url, broken):
    suite = tmp_path / "data"
    shutil.copytree(EXAMPLE, suite, ignore=shutil.ignore_patterns("staging.db", "__pycache__", "staging-verdict*"))
    targets = suite / "staging-targets.toml"
    targets.write_text(targets.read_text().replace("http://127.0.0.1:8000", httpbin_url))
    build = [sys.executable, "build_staged_orders.py", *(["--broken"] if broken else [])]
    subprocess.run(build, cwd=suite, check=True, capture_output=True)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--staging-target=staging"],
        cwd=suite,
        capture_output=True,
        text=True,
        timeout=300,
    )
    predicate = statement(suite / "staging-verdict.intoto.json")["predicate"]
    if not broken:
        assert result.returncode == 0, result.stdout + result.stderr
        assert predicate["decision"] == "PROMOTE"
        assert predicate["sli"]["dataValidationFailureRate"] == 0.002
        return
    assert result.returncode == 1 and predicate["decision"] == "REJECT", result.stdout
    assert "schema (draft2020-12): 62 of 1000 rows invalid (6.2000%), over the limit of 0.5000%" in result.stdout
    assert "order_id=201: $.status: enum:" in result.stdout and "unique order_id: 1 duplicate value" in result.stdout
    assert "customer" not in result.stdout  # no e-mail address, not even a valid one


# -- the checks, directly -----------------------------------------------------------------------

rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.integers(-3, 3) | st.sampled_from([-1.0, -2.0, 2**61 - 2]) | st.none(),
            "name": st.sampled_from(["a", "b", "c"]) | st.none(),
            "total": st.integers(-2, 5) | st.text(max_size=2) | st.none(),
        }
    ),
    max_size=40,
)


@given(rows=rows_strategy, limit=st.floats(0, 1))
def test_the_checks_agree_with_a_simple_oracle(rows, limit):
    schema = {"type": "object", "properties": {"total": {"type": "integer", "minimum": 0}}}
    compiled = Contract(Path(".")).row_contract(schema)
    expectation = Expectation(
        ["id", "name", "total"],
        validator=compiled.validator,
        errors=lambda row: Contract.ranked_errors(compiled.validator, row),
        max_invalid_ratio=limit,
        unique=[("id",), ("id", "name")],
        not_null=["name"],
        min_rows=10,
        key=["id"],
    )
    expectation.feed(dict(row) for row in rows)
    checks = {(c.data["check"], c.data.get("column")): c.data for c in expectation.checks()}

    def valid(total) -> bool:
        return isinstance(total, int) and total >= 0  # NULL is no integer

    invalid = sum(not valid(row["total"]) for row in rows)
    ratio = invalid / len(rows) if rows else 0.0
    assert checks[("schema", None)]["invalid"] == invalid and checks[("schema", None)]["ok"] == (ratio <= limit)

    def duplicates(values) -> int:
        present = [v for v in values if None not in v]
        return len(present) - len(set(present))

    assert checks[("unique", "id")]["duplicates"] == duplicates([(row["id"],) for row in rows])
    assert checks[("unique", "id, name")]["duplicates"] == duplicates([(row["id"], row["name"]) for row in rows])
    assert checks[("not_null", "name")]["nulls"] == sum(row["name"] is None for row in rows)
    assert checks[("min_rows", None)]["ok"] == (len(rows) >= 10)
    assert len(expectation.examples) == min(invalid, 5)


@given(st.lists(st.text(max_size=12).map(lambda text: f"«{text}»") | st.integers(10**6, 10**12), max_size=30))
def test_no_row_value_reaches_the_failure_message(values):
    """Whatever the invalid values, the message holds keys, paths and the schema's words only
    (the values are marked so that no count or word of the message can look like one)."""
    schema = {"type": "object", "properties": {"v": {"type": "boolean"}}}
    compiled = Contract(Path(".")).row_contract(schema)
    expectation = Expectation(
        ["k", "v"], validator=compiled.validator, errors=lambda row: Contract.ranked_errors(compiled.validator, row)
    )
    expectation.feed({"k": index, "v": value} for index, value in enumerate(values))
    message = failure("t", expectation.rows, expectation.checks())
    assert "«" not in message
    assert not any(str(value) in message for value in values if isinstance(value, int))


def test_a_violation_says_what_the_schema_wants_not_the_value():
    from jsonschema import Draft202012Validator

    schema = {
        "type": "object",
        "required": ["a", "b"],
        "properties": {"c": {"pattern": "^x+$"}},
        "additionalProperties": False,
    }
    row = {"a": 1, "c": "SECRET-VALUE", "zz": "OTHER-VALUE"}
    names = schema_names(schema)
    lines = [violation(error, names) for error in Draft202012Validator(schema).iter_errors(row)]
    assert sorted(lines) == ['$.c: pattern: "^x+$"', "$: additionalProperties: not allowed", "$: required: missing b"]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2024-05-01T10:00:00Z", dt.datetime(2024, 5, 1, 10, tzinfo=dt.timezone.utc)),
        ("2024-05-01 10:00:00", dt.datetime(2024, 5, 1, 10, tzinfo=dt.timezone.utc)),
        ("2024-05-01T12:00:00+02:00", dt.datetime(2024, 5, 1, 10, tzinfo=dt.timezone.utc)),
        (dt.datetime(2024, 5, 1, 10), dt.datetime(2024, 5, 1, 10, tzinfo=dt.timezone.utc)),
        (dt.date(2024, 5, 1), dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)),
        ("yesterday", None),
        (17, None),
    ],
)
def test_freshness_reads_naive_times_and_iso_text_as_utc(value, expected):
    assert as_utc(value) == expected


def test_freshness_fails_on_an_old_batch_and_on_no_timestamps():
    now = dt.datetime(2024, 5, 2, tzinfo=dt.timezone.utc)
    day = dt.timedelta(hours=24)
    for stamps, ok in ((["2024-05-01T10:00:00Z"], True), (["2024-04-30T10:00:00Z", None], False), ([None], False)):
        expectation = Expectation(["t"], fresh=("t", day, "24h"), now=now)
        expectation.feed({"t": stamp} for stamp in stamps)
        [check] = expectation.checks()
        assert check.ok == ok, check.line


def test_an_unknown_column_is_named_with_the_columns_there_are():
    with pytest.raises(KeyError, match=r"no column 'nope' in the rows \(columns: a, b\)"):
        Expectation(["a", "b"], not_null=["nope"])
