"""Reports people look at: HTML from real verdicts, the CI job summary, JUnit properties, Chromium."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from docs_text import DOCS, docs_text

from pytest_staging.cli import main as cli

pytestmark = pytest.mark.usefixtures("staging_env")

VERDICT = "staging-verdict.intoto.json"
FUTURE = (dt.date.today() + dt.timedelta(days=30)).isoformat()

#: A gate suite with a bit of everything: passing smoke tests with latency metrics, a quarantined
#: failure, a flaky test (fails its first attempt in every run), a contract test that fails when
#: ORDERS points at a broken endpoint, and (with LOAD=1) a load run: until it has a series of two
#: seconds (60 s is a ceiling; see locust_until.py), with a threshold no request here can breach.
SUITE = """
import os
import pathlib
import pytest

HERE = pathlib.Path(__file__).parent

@pytest.mark.parametrize("i", range(6))
def test_json(staging_http, i):
    assert staging_http.get("/json").ok

def test_payments_refund():
    assert False, "sandbox flapped"

def test_search_flaky():
    state = HERE / "attempts"
    count = int(state.read_text()) if state.exists() else 0
    state.write_text(str(count + 1))
    assert count % 2 == 1, "first attempt times out"

@pytest.mark.contract
def test_orders(staging_http):
    assert staging_http.get(os.environ.get("ORDERS", "/json")).status_code == 200

@pytest.mark.load
@pytest.mark.skipif(not os.environ.get("LOAD"), reason="LOAD not set")
def test_browse(staging_load):
    staging_load.run("locustfile.py", users=4, spawn_rate=4, duration=60, thresholds=["p(95) < 60000", "rate(failures) < 0.01"])
"""

LOCUSTFILE = """
from locust import HttpUser, constant_throughput, task

class Browse(HttpUser):
    wait_time = constant_throughput(10)
    endpoints = ("/json",)

    @task
    def json(self):
        self.client.get("/json")
""" + (Path(__file__).with_name("locust_until.py")).read_text()

QUARANTINE = f"""
[[quarantine]]
test = "test_gate.py::test_payments_refund"
reason = "sandbox flaps"
owner = "payments-team"
until = "{FUTURE}"
ticket = "PAY-123"
"""

# Loose on purpose: the PROMOTE run must not depend on how busy the machine is (a loaded CI box
# made a 1 ms call 6 ms and the comparison fail); min_shift keeps such shifts a PASS.
PYPROJECT = """
[tool.pytest_staging.metrics."GET /*"]
min_samples = 5
allowed = 5
critical_ratio = 50
min_shift = 200
"""


class StrictHTML(HTMLParser):
    """Well-formedness: every element closed in order (void elements excepted), one <html>."""

    VOID = {"meta", "link", "br", "img", "hr", "input", "rect", "line", "polyline", "circle"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.seen: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.seen.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> StrictHTML:
    assert html.startswith("<!DOCTYPE html>")
    parser = StrictHTML()
    parser.feed(html)
    parser.close()
    assert parser.stack == [], parser.stack
    assert parser.seen.count("html") == 1 and "script" not in parser.seen
    assert "http://" not in html.split("<body>")[0] and "<link" not in html  # nothing fetched
    return parser


def statement_of(path: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory, httpbin_url, keys) -> dict[str, Path]:
    """Real verdicts of every decision kind from one project: PROMOTE (with a baseline and a
    load run), HOLD (the contract tier deselected), REJECT (the contract test fails)."""
    project = tmp_path_factory.mktemp("gate")
    (project / "test_gate.py").write_text(SUITE)
    (project / "locustfile.py").write_text(LOCUSTFILE)
    (project / "staging-quarantine.toml").write_text(QUARANTINE)
    (project / "pyproject.toml").write_text(PYPROJECT)
    # The load test runs in the PROMOTE run only: the load tier is not required.
    (project / "pytest.ini").write_text("[pytest]\nstaging_required_tiers = smoke contract\n")
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("STAGING_", "GITHUB_", "PYTEST_XDIST"))
    }
    common = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--staging-target={httpbin_url}",
        "--staging-reruns=1",
        f"--staging-signing-key={keys[0]}",
        "--staging-release=2.0.1",
    ]

    def run(name: str, *args: str, **extra: str) -> Path:
        result = subprocess.run(
            [*common, f"--staging-verdict={name}.json", *args],
            cwd=project,
            env={**env, **extra},
            capture_output=True,
            text=True,
        )
        assert result.returncode in (0, 1, 6), result.stdout + result.stderr
        return project / f"{name}.json"

    run("first", "--staging-save-baseline=baseline.json")
    found = {
        "PROMOTE": run("promote", "--staging-baseline=baseline.json", LOAD="1"),
        "HOLD": run("hold", "--staging-tier=smoke"),
        "REJECT": run("reject", "--staging-baseline=baseline.json", ORDERS="/status/500"),
    }
    for decision, path in found.items():
        predicate = statement_of(path)["predicate"]
        assert predicate["decision"] == decision, predicate["reasons"]
    return found


@pytest.mark.parametrize("decision", ["PROMOTE", "HOLD", "REJECT"])
def test_html_report_of_each_decision(verdicts, keys, tmp_path, decision, capsys):
    out = tmp_path / "report.html"
    assert cli(["report", str(verdicts[decision]), "--html", str(out), "--key", str(keys[1])]) == 0
    assert f"wrote {out}: {decision}; signature verified with key" in capsys.readouterr().out
    html = out.read_text()
    text = " ".join(parse(html).text)
    predicate = statement_of(verdicts[decision])["predicate"]
    css = {"PROMOTE": "promote", "HOLD": "hold", "REJECT": "reject"}[decision]
    assert f'<section class="banner {css}" aria-labelledby="decision"><div class="decision" id="decision">' in html
    assert html.split('id="decision">', 1)[1].split("</div>", 1)[0].endswith(f"</span> {decision}")
    assert 'id="signature"' in html and "Signature: verified with key" in text
    for tier in ("smoke", "contract", "load"):
        assert f"<tr><td>{tier}</td><td>{predicate['tiers'][tier]['result']}</td>" in html
    for reason in predicate["reasons"]:
        assert reason["text"] in text
    failing = [t["nodeid"] for t in predicate["tests"] if t["outcome"] in ("failed", "error", "crashed")]
    flaky = [t["nodeid"] for t in predicate["flaky"]]
    quarantined = [t["nodeid"] for t in predicate["quarantine"]["tests"]]
    assert flaky == ["test_gate.py::test_search_flaky"] and quarantined == ["test_gate.py::test_payments_refund"]
    for nodeid in failing + flaky + quarantined:
        assert nodeid in text
    assert "payments-team" in text and FUTURE in text and "first attempt times out" in text
    if decision == "REJECT":
        assert failing == ["test_gate.py::test_orders"]
    metrics = (predicate.get("baseline") or {}).get("metrics", [])
    if decision != "HOLD":
        assert {m["name"] for m in metrics} >= {"GET /json"}
    for metric in metrics:
        assert metric["name"] in text
        assert f"<title>{metric['name']} — baseline: median" in html or metric["result"] == "NODATA"
    if decision == "PROMOTE":
        assert predicate["load"]["runs"] and "Requests per second (rps)" in text and "<polyline" in html
        assert "✓</span> ok</td><td><code>p(95) &lt; 60000</code>" in html


@pytest.mark.parametrize("decision", ["PROMOTE", "HOLD", "REJECT"])
def test_markdown_summary_of_each_decision(verdicts, keys, decision, capsys):
    assert cli(["show", str(verdicts[decision]), "--format", "markdown", "--key", str(keys[1])]) == 0
    text = capsys.readouterr().out
    icon = {"PROMOTE": "✅", "HOLD": "⏸️", "REJECT": "❌"}[decision]
    assert text.startswith(f"## {icon} Staging gate: {decision}\n") and "- **Signature** verified with key" in text
    predicate = statement_of(verdicts[decision])["predicate"]
    shown = [t["nodeid"] for t in predicate["tests"] if t["outcome"] == "failed"] + [
        t["nodeid"] for t in predicate["flaky"]
    ]
    for nodeid in shown + [t["nodeid"] for t in predicate["quarantine"]["tests"]]:
        assert f"| <code>{nodeid.replace('_', chr(92) + '_')}</code> |" in text
    assert "| active | xfailed | payments\\-team |" in text or "| active | xfailed | payments-team |" in text
    assert "Decided " in text and "Verified " not in text


def test_a_tampered_verdict_is_not_shown_as_the_gate_s_word(verdicts, keys, tmp_path, capsys):
    envelope = json.loads(verdicts["HOLD"].read_text())
    statement = statement_of(verdicts["HOLD"])
    statement["predicate"]["decision"], statement["predicate"]["verificationResult"] = "PROMOTE", "PASSED"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(envelope))
    out = tmp_path / "t.html"
    assert cli(["report", str(tampered), "--html", str(out), "--key", str(keys[1])]) == 1
    html = out.read_text()
    assert (
        '<section class="banner hold"' in html
        and "UNVERIFIED — claims PROMOTE" in html
        and "banner promote" not in html
    )
    assert "Signature: NOT VERIFIED" in html
    capsys.readouterr()
    assert cli(["show", str(tampered), "--format", "markdown", "--key", str(keys[1])]) == 1
    assert capsys.readouterr().out.startswith("## ⚠️ Staging gate: UNVERIFIED (the verdict claims PROMOTE")
    # Text: the signature's status first, and the decision it does not prove labelled so.
    assert cli(["show", str(tampered), "--key", str(keys[1])]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("signature: NOT VERIFIED")
    assert "decision: PROMOTE (NOT VERIFIED: the signature does not match; do not act on it)" in lines
    assert "decision: PROMOTE" not in lines


def test_an_older_verdict_with_plain_string_reasons_still_reads(verdicts, keys, tmp_path, capsys):
    """Verdicts issued before each reason carried its code (plain strings, the codes in
    ``reasonCodes``) still verify, show, render and feed ``quarantine suggest``."""
    from pytest_staging.verdict import dsse
    from pytest_staging.verdict.files import envelope_bytes

    statement = statement_of(verdicts["REJECT"])
    texts = [reason["text"] for reason in statement["predicate"]["reasons"]]
    statement["predicate"]["reasons"] = texts
    old = tmp_path / "old.json"
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    old.write_bytes(envelope_bytes(dsse.envelope(payload, dsse.load_private_key(keys[0].read_bytes(), "key"))))
    assert cli(["verify", str(old), "--key", str(keys[1]), "--expect", "REJECT"]) == 0
    assert cli(["verify", str(old), "--key", str(keys[1]), "--expect", "PROMOTE"]) == 1
    assert capsys.readouterr().err.startswith(f"FAILED: decision is REJECT, expected PROMOTE ({texts[0]}")
    assert cli(["show", str(old), "--key", str(keys[1])]) == 0
    assert f"  - {texts[0]}" in capsys.readouterr().out.splitlines()
    assert cli(["show", str(old), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.split("\n")[2].startswith("- 1 test failed: ")
    out = tmp_path / "old.html"
    assert cli(["report", str(old), "--html", str(out), "--key", str(keys[1])]) == 0
    assert texts[0] in " ".join(parse(out.read_text()).text)
    assert cli(["quarantine", "suggest", str(old), str(verdicts["PROMOTE"]), "--key", str(keys[1])]) == 0


def test_signature_status_not_verified_and_unsigned(verdicts, other_keys, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert cli(["report", str(verdicts["PROMOTE"]), "--html", str(out), "--key", str(other_keys[1])]) == 1
    assert "Signature: NOT VERIFIED:" in " ".join(parse(out.read_text()).text)
    unsigned = tmp_path / "unsigned.json"
    envelope = json.loads(verdicts["PROMOTE"].read_text())
    unsigned.write_text(json.dumps({**envelope, "signatures": []}))
    assert cli(["report", str(unsigned), "--html", str(out)]) == 0
    assert 'class="signature unsigned"' in out.read_text() and "Signature: UNSIGNED" in out.read_text()
    assert cli(["report", str(verdicts["PROMOTE"]), "--html", str(out)]) == 0
    assert "Signature: 1 signature(s), not checked (pass --key)" in out.read_text()
    assert cli(["report", str(tmp_path / "missing.json"), "--html", str(out)]) == 2


HOSTILE = "t.py::test_x[<b>|`](javascript:x)\r\n# heading <!-- *a* & _b_"


def test_verdict_text_stays_text_in_html_and_markdown(verdicts):
    """Names, errors and reasons can come from the target's answers: none of it becomes markup."""
    from pytest_staging.report.html import render
    from pytest_staging.report.text import markdown

    statement = statement_of(verdicts["REJECT"])
    predicate = statement["predicate"]
    predicate["reasons"] = [{"code": "test-failed", "text": HOSTILE}]
    failing = next(t for t in predicate["tests"] if t["outcome"] == "failed")
    failing["nodeid"], failing["error"] = HOSTILE, HOSTILE
    predicate["flaky"][0]["nodeid"] = HOSTILE
    predicate["baseline"]["metrics"][0]["name"] = HOSTILE
    html = render(statement)
    parse(html)
    assert "<b>" not in html and "<!--" not in html and "&lt;b&gt;|`](javascript:x)" in html
    text = markdown(statement)
    body = text.split("\n", 1)[1]
    assert "<b>" not in body and "<!--" not in body and "\r" not in text and "javascript:x)" not in text
    assert not any(line.startswith("#") for line in body.splitlines())
    for line in text.splitlines():
        if line.startswith("| ") and HOSTILE[:5] in line.replace("\\", ""):
            assert line.count(" | ") == line.replace("\\|", "").count(" | ")  # no pipe split a cell


def test_odd_but_valid_verdicts_render_or_fail_in_one_line(verdicts, tmp_path, capsys):
    from pytest_staging.report.html import render
    from pytest_staging.report.text import markdown

    statement = statement_of(verdicts["PROMOTE"])
    predicate = statement["predicate"]
    metric = predicate["baseline"]["metrics"][0]
    metric["ci"], metric["current"]["p5"] = None, None
    run = predicate["load"]["runs"][0]
    run["total"]["rps"], run["aborted"] = None, {}
    run["series"][0]["t"] = None
    predicate["quarantine"]["tests"][0]["quarantine"] = None
    predicate["session"]["durationSeconds"] = 10**400
    html = render(statement)
    parse(html)
    assert "A part of this report could not be shown" in html and "PROMOTE" in html
    markdown(statement)
    envelope = json.loads(verdicts["PROMOTE"].read_text())
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps(envelope))
    code = cli(["report", str(odd), "--html", str(tmp_path / "odd.html")])
    err = capsys.readouterr().err
    assert code in (0, 1) and "Traceback" not in err


def test_trace_link_and_escaping(verdicts, tmp_path):
    statement = statement_of(verdicts["REJECT"])
    statement["predicate"]["traceId"] = "4bf92f3577b34da6a3ce929d0e0e4736"
    statement["predicate"]["reasons"] = [{"code": "test-failed", "text": "<script>alert(1)</script> & more"}]
    from pytest_staging.report.html import render

    html = render(statement, trace_url="https://tracing.example/trace/{trace_id}")
    parse(html)
    assert '<a href="https://tracing.example/trace/4bf92f3577b34da6a3ce929d0e0e4736">' in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_report_summary_and_job_summary_at_the_end_of_a_run(pytester, httpbin_url, keys, staging_env, xdist):
    pytester.makepyfile(test_gate="def test_ok(staging_http):\n    assert staging_http.get('/get').ok\n")
    step = pytester.path / "step-summary.md"
    step.write_text("## earlier step\n")
    staging_env.setenv("GITHUB_STEP_SUMMARY", str(step))
    args = [
        f"--staging-target={httpbin_url}",
        f"--staging-signing-key={keys[0]}",
        "--staging-report=out/report.html",
        "--staging-summary=summary.md",
        "-o",
        "staging_trace_url=https://tracing.example/trace/{trace_id}",
    ]
    for _ in range(2):
        result = pytester.runpytest_subprocess(*args, *xdist)
        assert result.ret == 0
    result.stdout.fnmatch_lines(["report: out/report.html", "summary: summary.md", "job summary: step-summary.md"])
    html = (pytester.path / "out" / "report.html").read_text()
    assert "Signature: verified with the gate&#x27;s key" in html and "PROMOTE" in html
    parse(html)
    summary = (pytester.path / "summary.md").read_text()
    assert summary.startswith("## ✅ Staging gate: PROMOTE") and "- **Signature** verified" in summary
    steps = step.read_text()
    assert steps.startswith("## earlier step\n") and steps.count("Staging gate: PROMOTE") == 2  # appended, once a run
    # Without a key the summary says so, never "verified".
    result = pytester.runpytest_subprocess(f"--staging-target={httpbin_url}", "--staging-summary=summary.md", *xdist)
    assert result.ret == 0 and "- **Signature** UNSIGNED: no signing key" in (pytester.path / "summary.md").read_text()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["--staging-report=staging-verdict.intoto.json"],
            "--staging-report: staging-verdict.intoto.json is also the verdict",
        ),
        (["--staging-summary=step.md"], "--staging-summary: step.md is also GITHUB_STEP_SUMMARY"),
        (["--staging-report=r.html", "--staging-summary=r.html"], "--staging-summary: r.html is also --staging-report"),
    ],
)
def test_outputs_never_overwrite_each_other(pytester, httpbin_url, usage_error, staging_env, args, fragment):
    staging_env.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "step.md"))
    pytester.makepyfile("def test_never(): raise SystemExit('ran')")
    usage_error.check(pytester.runpytest(f"--staging-target={httpbin_url}", *args), fragment)


def test_report_trace_url_must_be_a_web_link(verdicts, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli(
            [
                "report",
                str(verdicts["PROMOTE"]),
                "--html",
                str(tmp_path / "r.html"),
                "--trace-url",
                "javascript:alert(1)//{trace_id}",
            ]
        )
    assert exit_info.value.code == 2 and "is not an http(s) URL with {trace_id}" in capsys.readouterr().err


@pytest.mark.parametrize("template", ["https://tracing.example/trace/", "tracing.example/{trace_id}"])
def test_bad_trace_url_template(pytester, httpbin_url, usage_error, template):
    pytester.makepyfile("def test_never(): raise SystemExit('ran')")
    result = pytester.runpytest(f"--staging-target={httpbin_url}", "-o", f"staging_trace_url={template}")
    usage_error.check(result, "staging_trace_url", "with {trace_id} in it")


def test_unwritable_report_is_a_line_not_a_lost_verdict(pytester, httpbin_url):
    pytester.makepyfile(test_gate="def test_ok(): pass\n")
    (pytester.path / "blocked").write_text("a file, not a directory")
    result = pytester.runpytest(f"--staging-target={httpbin_url}", "--staging-report=blocked/report.html")
    assert result.ret == 0 and (pytester.path / VERDICT).exists()
    result.stdout.fnmatch_lines(["report: could not write blocked/report.html: *"])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_junit_properties_for_flaky_and_quarantined(pytester, httpbin_url, xdist):
    pytester.makepyfile(test_gate=SUITE)
    pytester.makefile(".toml", **{"staging-quarantine": QUARANTINE})
    result = pytester.runpytest_subprocess(
        f"--staging-target={httpbin_url}", "--staging-reruns=1", "--junitxml=junit.xml", "--staging-tier=smoke", *xdist
    )
    assert result.ret == 0, result.stdout.str()
    import xml.etree.ElementTree as ET

    cases = {case.get("name"): case for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")}
    props = {name: {p.get("name"): p.get("value") for p in case.iter("property")} for name, case in cases.items()}
    assert props["test_payments_refund"] == {
        "tier": "smoke",
        "quarantine_owner": "payments-team",
        "quarantine_until": FUTURE,
    }
    assert props["test_search_flaky"] == {"tier": "smoke", "flaky_attempts": "2"}
    assert props["test_json[0]"]["tier"] == "smoke" and len(props["test_json[0]"]["correlation_id"]) == 32


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("STAGING_REQUIRE_CHROMIUM"):
            pytest.fail(
                "chromium is not installed (STAGING_REQUIRE_CHROMIUM is set: .ci/run installs Debian's chromium)"
            )
        pytest.skip(
            "chromium is not installed, so the HTML report's rendering is not checked here; install it "
            "(Debian/Ubuntu: apt-get install chromium; macOS: brew install --cask chromium). CI requires it."
        )
    return found


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def test_chromium_renders_the_report(verdicts, keys, tmp_path):
    browser = chromium()
    out = tmp_path / "report.html"
    assert cli(["report", str(verdicts["REJECT"]), "--html", str(out), "--key", str(keys[1])]) == 0
    url = out.as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run(
        [browser, *CHROMIUM_FLAGS, *profile, "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<div class="decision" id="decision">' in dom.stdout and "REJECT" in dom.stdout
    assert "test_gate.py::test_orders" in dom.stdout and "<svg" in dom.stdout
    shot = tmp_path / "report.png"
    taken = subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            *profile,
            "--hide-scrollbars",
            "--window-size=1200,1800",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    data = shot.read_bytes()
    assert _png_size(data) == (1200, 1800)
    # A blank page compresses to a few kilobytes; a rendered report with text and charts does not.
    assert len(data) > 60_000, len(data)


def test_the_reports_page_shows_the_screenshot():
    assert "](assets/report.png)" in docs_text("reports.md")  # an image: ![alt](path)
    assert _png_size((DOCS / "assets/report.png").read_bytes())[0] >= 800


def test_without_chromium_the_skip_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("STAGING_REQUIRE_CHROMIUM", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install chromium.*CI requires it"):
        chromium()
    monkeypatch.setenv("STAGING_REQUIRE_CHROMIUM", "1")  # CI: a missing chromium fails, never skips
    with pytest.raises(pytest.fail.Exception, match="STAGING_REQUIRE_CHROMIUM is set"):
        chromium()


def test_baseline_rows_most_severe_first(verdicts):
    """A FAIL or MARGINAL row is never buried among INCONCLUSIVE ones in alphabetical order."""
    import copy

    from pytest_staging.report.html import render
    from pytest_staging.report.text import baseline_lines

    statement = statement_of(verdicts["REJECT"])
    template = statement["predicate"]["baseline"]["metrics"][0]
    results = {
        "a-inconclusive": "INCONCLUSIVE",
        "b-pass": "PASS",
        "c-inconclusive": "INCONCLUSIVE",
        "y-marginal": "MARGINAL",
        "z-fail": "FAIL",
    }  # alphabetical order buries the FAIL
    statement["predicate"]["baseline"]["metrics"] = [
        {**copy.deepcopy(template), "name": name, "result": result} for name, result in results.items()
    ]
    expected = ["z-fail", "y-marginal", "a-inconclusive", "c-inconclusive", "b-pass"]
    html = render(statement)
    assert sorted(expected, key=lambda name: html.index(f"<code>{name}</code>")) == expected
    text = "\n".join(baseline_lines(statement))
    assert sorted(expected, key=text.index) == expected
