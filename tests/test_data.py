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
    assert "[SQL:" not in output and "sqlalche.me" not in output and "During handling" not in output
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


def test_a_rerun_test_counts_the_expectation_of_its_last_attempt_only(pytester, httpbin_url, sqlite_db):
    """With --staging-reruns a failed attempt's expectation must not stay in the verdict: its
    rows would count twice in the failure rate."""
    suite = f"""
ATTEMPTS = []
SCHEMA = {ORDER!r}

def test_orders(staging_data):
    ATTEMPTS.append(1)
    limit = 0.0 if len(ATTEMPTS) == 1 else 0.05  # the first attempt fails, the second passes
    staging_data.expect("orders", "staged_orders", schema=SCHEMA, max_invalid_ratio=limit)
"""
    result, predicate = run_gate(
        pytester, httpbin_url, {"orders": f"sqlite:///{sqlite_db}"}, suite, "--staging-reruns=1"
    )
    predicate = predicate["predicate"]
    assert result.ret == 0, result.stdout.str()
    [expectation] = predicate["data"]["expectations"]
    assert (expectation["rows"], expectation["invalid"], expectation["ok"]) == (100, 3, True)
    assert predicate["sli"]["dataValidationFailureRate"] == 0.03
    [record] = [test for test in predicate["tests"] if test["nodeid"].endswith("test_orders")]
    assert [attempt["outcome"] for attempt in record["attempts"]] == ["failed", "passed"]


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
            "id": st.integers(-3, 3)
            | st.sampled_from([-1.0, -2.0, 0.5, 2**60, 2**61 - 2, 2**61, 2**61 + 1, -(2**61)])
            | st.none(),
            "name": st.sampled_from(["a", "b", "c"]) | st.none(),
            "total": st.integers(-2, 5) | st.text(max_size=2) | st.none(),
            # Small negative ints in a composite key: (-2, 998) and (0, -1000) once hashed alike.
            "n": st.integers(-1000, 1000) | st.sampled_from([-1000, -2, 0, 998]),
        }
    ),
    max_size=40,
)


@given(rows=rows_strategy, limit=st.floats(0, 1))
def test_the_checks_agree_with_a_simple_oracle(rows, limit):
    schema = {"type": "object", "properties": {"total": {"type": "integer", "minimum": 0}}}
    compiled = Contract(Path(".")).row_contract(schema)
    expectation = Expectation(
        ["id", "name", "total", "n"],
        validator=compiled.validator,
        errors=lambda row: Contract.ranked_errors(compiled.validator, row),
        max_invalid_ratio=limit,
        unique=[("id",), ("id", "name"), ("id", "n")],
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
    assert checks[("unique", "id, n")]["duplicates"] == duplicates([(row["id"], row["n"]) for row in rows])
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


# -- what a database says, and what it quotes ---------------------------------------------------

REFUSED = """
import pytest

def test_bad_sql_with_a_literal(staging_data):
    staging_data.expect("orders", "SELEC oops FROM orders WHERE customer_email = 'PII-LITERAL@x.com'")

def test_missing_table_with_a_parameter(staging_data):
    list(staging_data.query("orders", "SELECT * FROM nope WHERE e = :e", {"e": "PII-PARAM@x.com"}))

def test_an_unterminated_literal(staging_data):
    staging_data.expect("orders", "SELECT * FROM orders WHERE customer_email = 'PII-QUOTED@x.com")
"""


def test_a_refused_query_shows_neither_its_sql_nor_its_parameters(pytester, httpbin_url, database):
    """pytest prints the exceptions an exception was raised from: SQLAlchemy's repeat the
    statement ([SQL: ...]) and its parameters; and the database quotes the literal it choked on."""
    result, _ = run_gate(pytester, httpbin_url, {"orders": database}, REFUSED, "-l", "--tb=long")
    result.assert_outcomes(failed=3)
    output = result.stdout.str()
    shown = [line for line in output.splitlines() if line.startswith("staging_data:")]
    assert len(shown) == 3 and all("refused the query" in line for line in shown), output
    assert "'…'" in shown[2] or '"…"' in shown[2], shown  # the literal the database quoted, blanked
    everything = every_output(pytester, result)
    for marker in ("[SQL:", "[parameters:", "During handling", "direct cause", "sqlalche.me", "PII-"):
        assert marker not in everything, marker


def test_a_data_error_is_named_by_its_class_never_by_the_value_it_quotes(pytester, httpbin_url, postgres):
    """PostgreSQL's message for a failed cast quotes the value: invalid input syntax for type
    integer: "<the customer's e-mail>"."""
    suite = """
def test_cast(staging_data):
    staging_data.expect("orders", "SELECT order_id, customer_email::int AS n FROM orders WHERE order_id = 7")

def test_cast_in_query(staging_data):
    list(staging_data.query("orders", "SELECT customer_email::int FROM orders WHERE order_id = :i", {"i": 7}))
"""
    result, _ = run_gate(pytester, httpbin_url, {"orders": postgres.url("staged")}, suite, "-l", "--tb=long")
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    line = "staging_data: database 'orders' refused the query: InvalidTextRepresentation (SQLSTATE 22P02)"
    assert output.count(line) >= 2, output
    assert SENTINEL not in every_output(pytester, result)


def test_a_silent_database_fails_in_one_line_after_the_targets_timeout(pytester, httpbin_url):
    """A server that accepts the connection and never answers: connect_timeout from the
    target's timeout (at least libpq's 2 s) ends the wait. Without it the inner run never ends
    (the subprocess's timeout then fails this test)."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    accepted = threading.Event()
    held = []

    def accept() -> None:
        try:
            connection, _ = server.accept()
        except OSError:
            return
        held.append(connection)  # kept open, never answered
        accepted.set()

    threading.Thread(target=accept, daemon=True).start()
    port = server.getsockname()[1]
    (pytester.path / "staging-targets.toml").write_text(
        f'[targets.qa]\nurl = "{httpbin_url}"\ntimeout = 1\n\n[targets.qa.databases]\n'
        f'silent = "postgresql+psycopg://gate@127.0.0.1:{port}/orders"\n'
    )
    pytester.makepyfile(test_staged='def test_it(staging_data):\n    staging_data.expect("silent", "orders")\n')
    try:
        result = pytester.runpytest_subprocess("--staging-target=qa", "-p", "no:cacheprovider", timeout=120)
    finally:
        server.close()
        for connection in held:
            connection.close()
    assert accepted.is_set()
    result.assert_outcomes(failed=1)
    [shown] = [line for line in result.stdout.lines if line.startswith("staging_data:")]
    assert shown.startswith("staging_data: database 'silent' cannot be reached: "), shown
    assert "timeout" in shown and "Traceback" not in result.stdout.str()


# -- jsonb, arrays and NUMERIC on PostgreSQL -------------------------------------------------------

#: A key inside a jsonb document is data too (an e-mail as a map key).
JSON_KEY = "pii-jsonkey-93ad@example.com"


def load_documents(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(text("DROP TABLE IF EXISTS documents"))
        db.execute(text("CREATE TABLE documents (id INTEGER PRIMARY KEY, doc JSONB, tags TEXT[], amount NUMERIC)"))
        rows = [
            (1, {"scores": {JSON_KEY: 3}}, ["a", SENTINEL], "0.10"),
            (2, {"scores": {JSON_KEY: 3}}, ["a", SENTINEL], "12"),  # the same document and tags as row 1
            (3, {"scores": {JSON_KEY: "three"}, "nested": [{JSON_KEY: "x"}]}, ["b"], "NaN"),
            (4, {"scores": {}}, None, "0.125"),
        ]
        db.execute(
            text("INSERT INTO documents VALUES (:i, CAST(:d AS JSONB), :t, CAST(:a AS NUMERIC))"),
            [{"i": i, "d": json.dumps(d), "t": t, "a": a} for i, d, t, a in rows],
        )
    engine.dispose()


DOCUMENTS = """
import pytest

SCHEMA = {
    "type": "object",
    "properties": {
        "doc": {
            "properties": {
                "scores": {"additionalProperties": {"type": "integer"}},
                "nested": {"items": {"additionalProperties": {"type": "integer"}}},
            }
        },
        "amount": {"type": "number", "minimum": 0, "multipleOf": 0.01},
    },
}

def test_unique_documents(staging_data):
    staging_data.expect("db", "documents", unique=["doc", "tags", ("doc", "tags")])

def test_the_documents_contract(staging_data):
    staging_data.expect("db", "documents", schema=SCHEMA)
"""


def test_json_arrays_and_numeric_are_checked_without_showing_their_keys_or_values(pytester, httpbin_url, postgres):
    load_documents(postgres.url("staged"))
    result, predicate = run_gate(pytester, httpbin_url, {"db": postgres.url("staged")}, DOCUMENTS, "-l", "--tb=long")
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    # unique over jsonb and arrays: hashed by their structure, NULLs not counted.
    assert "unique doc: 1 duplicate value" in output and "unique tags: 1 duplicate value" in output
    assert "unique doc, tags: 1 duplicate value" in output
    # NUMERIC is a JSON number (0.10 is a multiple of 0.01), NaN is none; a jsonb key is [*].
    assert "schema (draft2020-12): 2 of 4 rows invalid" in output, output
    [row3] = {line.strip() for line in output.splitlines() if line.strip().startswith("E           id=3: ")}
    assert sorted(row3.removeprefix("E           id=3: ").split("; ")) == [
        '$.amount: type: "number"',
        '$.doc.nested[0][*]: type: "integer"',
        '$.doc.scores[*]: type: "integer"',
    ], row3
    assert "id=4: $.amount: multipleOf: 0.01" in output
    everything = every_output(pytester, result)
    assert JSON_KEY not in everything and SENTINEL not in everything and "three" not in everything
    assert predicate["predicate"]["data"]["expectations"][1]["invalid"] == 2


class _Exploding:
    """A value whose hash fails with its own text in the message (as a driver's type might)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __hash__(self) -> int:
        raise ValueError(f"cannot hash {self.text}")

    def __repr__(self) -> str:
        return f"Exploding({self.text})"


def test_a_row_the_checks_cannot_handle_is_named_by_key_with_no_value_and_no_frame_holding_it():
    expectation = Expectation(["id", "email"], unique=[("email",)], key=["id"])
    rows = [{"id": 1, "email": "a@x"}, {"id": 2, "email": _Exploding(SENTINEL)}]
    with pytest.raises(RowError) as caught:
        expectation.feed(dict(row) for row in rows)
    error = caught.value
    assert str(error) == "id=2: the checks failed on this row: ValueError"
    assert error.__cause__ is None and error.__context__ is None
    # pytest -l prints each frame's locals: none below this test's own (which made the rows) may hold one.
    frames = []
    traceback = error.__traceback__.tb_next
    while traceback is not None:
        frames.append(traceback.tb_frame)
        traceback = traceback.tb_next
    assert [frame.f_code.co_name for frame in frames] == ["feed"]
    assert SENTINEL not in repr(frames[0].f_locals)
    assert expectation.rows == 1  # the rows before it were checked


# -- unique, fresh, format, violations -------------------------------------------------------------


def unique_duplicates(values: list, columns: int = 1) -> int:
    names = [f"c{i}" for i in range(columns)]
    expectation = Expectation(names, unique=[tuple(names)])
    expectation.feed(dict(zip(names, value if columns > 1 else (value,), strict=True)) for value in values)
    [check] = expectation.checks()
    return check.data["duplicates"]


def test_unique_has_no_collisions_by_construction():
    """Python hashes ints modulo 2**61 - 1 and -1 as -2; composite keys of small negative ints
    collided in the FNV-style mix (-2, 998) ~ (0, -1000)."""
    assert unique_duplicates([1, 2**61, -1, -2, 2**61 - 2, -(2**61), 0.5, 2**60, 2**62 + 1, 1.5]) == 0
    assert unique_duplicates([(-2, 998), (0, -1000), (1, -1), (1, -2)], columns=2) == 0
    pairs = [(a, b) for a in range(-40, 40) for b in range(-40, 40)]
    assert unique_duplicates(pairs, columns=2) == 0
    assert unique_duplicates([1, 1.0, __import__("decimal").Decimal("1.00"), 2**61, 2.0**61]) == 3
    assert unique_duplicates([{"a": [1, {"b": 2}]}, {"a": [1.0, {"b": 2}]}, {"a": [1, {"b": 3}]}, [1, 2], [1, 2]]) == 2


def test_format_date_time_is_checked():
    """jsonschema checks date-time only with rfc3339-validator installed (a dependency now)."""
    compiled = Contract(Path(".")).row_contract({"properties": {"ts": {"type": "string", "format": "date-time"}}})
    stamps = ["not a timestamp", "2024-05-01T10:00:00Z", dt.datetime(2024, 5, 1, 10), NOW, "2024-05-01 10:00:00"]
    invalid = []
    for stamp in stamps:  # one column, one type: an expectation each
        expectation = Expectation(["ts"], validator=compiled.validator, errors=lambda row: [])
        expectation.feed([{"ts": stamp}])
        invalid.append(expectation.invalid)
    # The text that is no timestamp, and the one without a T and an offset (sqlite3's form); a
    # naive timestamp is UTC.
    assert invalid == [1, 0, 0, 0, 1]


def test_a_newest_value_in_the_future_is_not_fresh():
    now = dt.datetime(2024, 5, 2, tzinfo=dt.timezone.utc)
    for stamps, ok in (
        (["2024-05-01T23:30:00Z", "2999-01-01T00:00:00Z"], False),
        (["2024-05-02T00:04:00Z"], True),  # a clock a few minutes ahead
        (["2024-05-02T00:06:00Z"], False),
    ):
        expectation = Expectation(["t"], fresh=("t", dt.timedelta(hours=1), "1h"), now=now)
        expectation.feed({"t": stamp} for stamp in stamps)
        [check] = expectation.checks()
        assert check.ok == ok, check.line
        if not ok:
            assert "in the future" in check.line and check.data["newest"].startswith(stamps[-1][:10])


def test_violations_name_the_property_each_error_is_about():
    from jsonschema import Draft202012Validator

    schema = {
        "type": "object",
        "properties": {
            "doc": {"required": ["id", "x"]},
            "gone": False,
            "m": {"additionalProperties": {"type": "string"}},
        },
    }
    row = {"id": 1, "doc": {}, "gone": "SECRET", "m": {"SECRET-KEY": 1, "ok": "x"}}
    names = schema_names(schema)
    lines = sorted(violation(error, names) for error in Draft202012Validator(schema).iter_errors(row))
    assert lines == [
        "$.doc: required: missing id",
        "$.doc: required: missing x",
        '$.m[*]: type: "string"',
        "$: false schema: not allowed",
    ], lines
