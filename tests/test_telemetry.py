"""Telemetry: spans checked with the real SDK and a file exporter, in inner runs."""

from __future__ import annotations

import base64
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_staging.core.traceparent import parse_traceparent

pytestmark = pytest.mark.usefixtures("staging_env")

XDIST = pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
OUTER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

# The user's own provider, handed to the gate through the hook (never set as the global
# provider). Its spans leave only when it is flushed (no export timer, nothing at exit); every
# process (controller, each xdist worker) appends the spans it exports to its own file.
PROVIDER_CONFTEST = """
import json
import os
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

class FileExporter(SpanExporter):
    process = "main"

    def export(self, spans):
        with open(f"spans-{self.process}.jsonl", "a") as handle:
            handle.writelines(json.dumps(json.loads(span.to_json())) + "\\n" for span in spans)
        return SpanExportResult.SUCCESS

EXPORTER = FileExporter()
PROVIDER = TracerProvider(shutdown_on_exit=False)
PROVIDER.add_span_processor(BatchSpanProcessor(EXPORTER, schedule_delay_millis=3_600_000))

def pytest_configure(config):
    EXPORTER.process = getattr(config, "workerinput", {}).get("workerid", "main")

def pytest_staging_tracer_provider(config):
    return PROVIDER

@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config):
    # xdist may end a worker as soon as it reported its session's end: spans not sent by then
    # are lost.
    if EXPORTER.process != "main":
        os._exit(0)
"""

SUITE = """
import os
import pytest

def test_passes(staging_http):
    assert staging_http.get("/status/200").status_code == 200

def test_fails():
    assert os.environ["API_TOKEN"] == "something else"

@pytest.mark.contract
def test_contract_tier():
    pass
"""

TARGETS = """
[targets.stage]
url = "{url}"
environment = "staging"
headers = {{ Authorization = "Bearer ${{API_TOKEN}}" }}
"""
TOKEN = "s3cr3t-t0ken-value"


def spans(pytester) -> list[dict]:
    found = []
    for path in sorted(pytester.path.glob("spans-*.jsonl")):
        for line in path.read_text().splitlines():
            span = json.loads(line)
            span["process"] = path.stem.removeprefix("spans-")
            found.append(span)
    return found


def hexid(value: str | None) -> str | None:
    return value.removeprefix("0x") if value else None


def predicate(pytester) -> dict:
    envelope = json.loads((pytester.path / "staging-verdict.intoto.json").read_text())
    return json.loads(base64.b64decode(envelope["payload"]))["predicate"]


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:randomly", "--staging-release=1.4.2", *args)


def make_suite(pytester, httpbin_url, monkeypatch, suite=SUITE):
    monkeypatch.setenv("API_TOKEN", TOKEN)
    pytester.makeconftest(PROVIDER_CONFTEST)
    pytester.makepyfile(test_suite=suite)
    pytester.makefile(".toml", **{"staging-targets": TARGETS.format(url=httpbin_url)})


# -- traceparent parsing ---------------------------------------------------------------------------


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=8), st.sampled_from(["00", "01"]))
def test_parse_traceparent_reads_every_valid_header(trace_id, span_id, flags):
    if trace_id == bytes(16) or span_id == bytes(8):
        assert parse_traceparent(f"00-{trace_id.hex()}-{span_id.hex()}-{flags}") is None
    else:
        assert parse_traceparent(f"00-{trace_id.hex()}-{span_id.hex()}-{flags}") == (trace_id.hex(), span_id.hex())


@pytest.mark.parametrize(
    "text",
    [
        "",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",  # no flags
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # upper case
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # forbidden version
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  # version 00 has no more fields
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
    ],
)
def test_parse_traceparent_rejects_what_w3c_rejects(text):
    assert parse_traceparent(text) is None


def test_future_versions_may_carry_more_fields():
    assert parse_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-ever") == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
    )


# -- no SDK configured: no spans, no OpenTelemetry import ---------------------------------------


def test_without_a_provider_nothing_is_traced_or_even_imported(pytester, httpbin_url):
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            with open("imported.txt", "w") as handle:
                handle.write(str(sorted(name for name in sys.modules if name.startswith("opentelemetry"))))
        """
    )
    pytester.makepyfile(
        test_suite="""
        def test_headers(staging_http):
            sent = staging_http.get("/headers").json()["headers"]
            assert "Traceparent" not in sent and "X-Correlation-Id" in sent
        """
    )
    result = run(pytester, f"--staging-target={httpbin_url}")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "imported.txt").read_text() == "[]"
    verdict = predicate(pytester)
    assert verdict["traceId"] is None
    assert "spanId" not in verdict["tests"][0]


def test_an_outer_trace_parent_alone_names_the_trace_in_the_verdict(pytester, httpbin_url, monkeypatch):
    pytester.makepyfile(test_suite="def test_ok(): pass")
    monkeypatch.setenv("TRACEPARENT", OUTER)
    result = run(pytester, f"--staging-target={httpbin_url}")
    result.assert_outcomes(passed=1)
    assert predicate(pytester)["traceId"] == "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(
    ("args", "env", "where"),
    [
        (["--staging-trace-parent=00-xyz-01"], {}, "--staging-trace-parent"),
        ([], {"TRACEPARENT": "not-a-traceparent"}, "TRACEPARENT"),
        ([], {"OTEL_TRACES_EXPORTER": "no-such-exporter"}, "OTEL_TRACES_EXPORTER"),
    ],
)
def test_bad_tracing_settings_are_usage_errors(pytester, httpbin_url, monkeypatch, usage_error, args, env, where):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(test_suite="def test_ok(): pass")
    line = usage_error.check(run(pytester, f"--staging-target={httpbin_url}", *args), where)
    assert "no-such-exporter" in line or "traceparent" in line
    assert not (pytester.path / "staging-verdict.intoto.json").exists()


# -- spans through a provider the user passes in ---------------------------------------------------


@XDIST
def test_span_tree_attributes_and_errors(pytester, httpbin_url, monkeypatch, xdist):
    make_suite(pytester, httpbin_url, monkeypatch)
    result = run(pytester, "--staging-target=stage", "--staging-no-fail-fast", *xdist)
    result.assert_outcomes(passed=2, failed=1)

    found = spans(pytester)
    [session] = [span for span in found if span["name"] == "staging gate"]
    tests = {span["name"]: span for span in found if span["name"] != "staging gate"}
    assert set(tests) == {
        "test_suite.py::test_passes",
        "test_suite.py::test_fails",
        "test_suite.py::test_contract_tier",
    }
    assert session["process"] == "main" and session["parent_id"] is None
    trace_id = session["context"]["trace_id"]
    for span in tests.values():
        assert span["context"]["trace_id"] == trace_id
        assert span["parent_id"] == session["context"]["span_id"]
    if xdist:  # the test spans were made in the workers, the session span in the controller
        assert {span["process"] for span in tests.values()} <= {"gw0", "gw1"}

    assert session["attributes"] == {
        "staging.target.name": "stage",
        "staging.target.environment": "staging",
        "staging.release": "1.4.2",
        "staging.target.url": httpbin_url,
        "staging.decision": "REJECT",
        "staging.tests": 3,
        "pytest.exit_status": 1,
    }
    assert session["status"] == {"status_code": "ERROR", "description": "1 test failed: test_suite.py::test_fails"}

    passed = tests["test_suite.py::test_passes"]
    assert passed["status"] == {"status_code": "UNSET"}
    assert passed["attributes"]["staging.outcome"] == "passed"
    assert passed["attributes"]["test.case.result.status"] == "pass"
    assert passed["attributes"]["staging.tier"] == "smoke"
    assert passed["attributes"]["staging.attempts"] == 1
    assert passed["attributes"]["code.file.path"] == "test_suite.py"
    assert passed["attributes"]["code.line.number"] == 4
    assert re.fullmatch("[0-9a-f]{32}", passed["attributes"]["staging.correlation_id"])
    assert tests["test_suite.py::test_contract_tier"]["attributes"]["staging.tier"] == "contract"

    failed = tests["test_suite.py::test_fails"]
    assert failed["status"]["status_code"] == "ERROR"
    assert failed["attributes"]["staging.outcome"] == "failed"
    assert failed["attributes"]["test.case.result.status"] == "fail"
    [event] = failed["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "AssertionError"
    assert "something else" in event["attributes"]["exception.stacktrace"]
    everything = json.dumps(found)
    assert TOKEN not in everything and "***" in everything  # scrubbed like the reports

    verdict = predicate(pytester)
    assert verdict["traceId"] == hexid(trace_id)
    for record in verdict["tests"]:
        assert record["spanId"] == hexid(tests[record["nodeid"]]["context"]["span_id"])
        assert tests[record["nodeid"]]["attributes"].get("staging.correlation_id") == record.get("correlationId")


@XDIST
def test_reruns_and_quarantine_show_on_the_test_spans(pytester, httpbin_url, monkeypatch, xdist):
    suite = """
    import pathlib
    import pytest

    def test_flaky():
        marker = pathlib.Path("flaked")
        if not marker.exists():
            marker.write_text("once")
            assert False, "first attempt fails"

    @pytest.mark.quarantine(reason="known", owner="team-a", until="2999-01-01")
    def test_quarantined():
        assert False

    def test_a(): pass
    def test_b(): pass
    def test_c(): pass
    """
    make_suite(pytester, httpbin_url, monkeypatch, suite)
    result = run(pytester, "--staging-target=stage", "--staging-reruns=1", *xdist)
    result.assert_outcomes(passed=4, xfailed=1)
    tests = {span["name"]: span for span in spans(pytester) if span["name"] != "staging gate"}
    flaky = tests["test_suite.py::test_flaky"]
    assert flaky["attributes"]["staging.attempts"] == 2
    assert flaky["attributes"]["staging.flaky"] is True
    assert flaky["status"] == {"status_code": "UNSET"}
    assert [event["name"] for event in flaky["events"]] == ["exception"]  # the first attempt's
    quarantined = tests["test_suite.py::test_quarantined"]
    assert quarantined["attributes"]["staging.quarantined"] is True
    assert quarantined["attributes"]["staging.quarantine.owner"] == "team-a"
    assert quarantined["attributes"]["staging.outcome"] == "xfailed"
    assert quarantined["status"] == {"status_code": "UNSET"}  # a quarantined failure blocks nothing
    assert tests["test_suite.py::test_a"]["attributes"]["staging.attempts"] == 1


@XDIST
def test_the_gate_joins_an_outer_trace(pytester, httpbin_url, monkeypatch, xdist):
    make_suite(pytester, httpbin_url, monkeypatch)
    result = run(
        pytester, "--staging-target=stage", "--staging-no-fail-fast", f"--staging-trace-parent={OUTER}", *xdist
    )
    result.assert_outcomes(passed=2, failed=1)
    [session] = [span for span in spans(pytester) if span["name"] == "staging gate"]
    assert session["context"]["trace_id"] == "0x0af7651916cd43dd8448eb211c80319c"
    assert session["parent_id"] == "0xb7ad6b7169203331"
    assert {span["context"]["trace_id"] for span in spans(pytester)} == {session["context"]["trace_id"]}
    assert predicate(pytester)["traceId"] == "0af7651916cd43dd8448eb211c80319c"


def test_a_global_provider_is_used_when_no_hook_gives_one(pytester, httpbin_url):
    pytester.makeconftest(
        PROVIDER_CONFTEST.replace("def pytest_staging_tracer_provider(config):\n    return PROVIDER\n", "")
        + "\nfrom opentelemetry import trace\ntrace.set_tracer_provider(PROVIDER)\n"
    )
    pytester.makepyfile(test_suite="def test_ok(): pass")
    run(pytester, f"--staging-target={httpbin_url}").assert_outcomes(passed=1)
    assert sorted(span["name"] for span in spans(pytester)) == ["staging gate", "test_suite.py::test_ok"]


def test_otel_environment_variables_configure_an_exporter(pytester, httpbin_url, monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout-gate")
    pytester.makepyfile(test_suite="def test_ok(): pass")
    result = run(pytester, f"--staging-target={httpbin_url}")
    result.assert_outcomes(passed=1)
    output = result.stdout.str()
    assert '"name": "staging gate"' in output and '"name": "test_suite.py::test_ok"' in output
    assert '"service.name": "checkout-gate"' in output
    trace_ids = set(re.findall(r'"trace_id": "0x([0-9a-f]{32})"', output))
    assert trace_ids == {predicate(pytester)["traceId"]}


@XDIST
def test_url_credentials_stay_off_the_spans(pytester, httpbin_url, xdist):
    """The spans name the target by host[:port] and its URL without user info (a URL never shows a password)."""
    host = httpbin_url.removeprefix("http://")
    pytester.makeconftest(PROVIDER_CONFTEST)
    pytester.makepyfile(
        test_suite="def test_ok(staging_http):\n    assert staging_http.get('/basic-auth/deploy/Pw').ok\n"
    )
    run(pytester, f"--staging-target=http://deploy:Pw@{host}", *xdist).assert_outcomes(passed=1)
    found = spans(pytester)
    [session] = [span for span in found if span["name"] == "staging gate"]
    assert session["attributes"]["staging.target.name"] == host
    assert session["attributes"]["staging.target.url"] == httpbin_url
    assert "deploy:" not in json.dumps(found) and ":Pw@" not in json.dumps(found)


# -- end to end: the target sees the test's span as its parent -------------------------------------


@XDIST
def test_httpbin_sees_the_test_span_as_parent(pytester, httpbin_url, monkeypatch, xdist):
    suite = """
    import json
    import pathlib

    def test_echo(staging_http, request):
        echoed = staging_http.get("/headers").json()["headers"]
        pathlib.Path("echoed.json").write_text(json.dumps(echoed))
    """
    make_suite(pytester, httpbin_url, monkeypatch, suite)
    run(pytester, "--staging-target=stage", *xdist).assert_outcomes(passed=1)
    echoed = json.loads((pytester.path / "echoed.json").read_text())
    version, trace_id, parent_span_id, flags = echoed["Traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1  # sampled
    verdict = predicate(pytester)
    [record] = verdict["tests"]
    assert trace_id == verdict["traceId"]
    assert parent_span_id == record["spanId"]
    [span] = [span for span in spans(pytester) if span["name"] == "test_suite.py::test_echo"]
    assert hexid(span["context"]["span_id"]) == parent_span_id
    assert echoed["X-Correlation-Id"] == span["attributes"]["staging.correlation_id"]
