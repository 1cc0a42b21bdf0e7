"""The ledger from plain data: reports folded into records, the session's end, the crash line
of a failure, and the one-pass tally the decision and the verdict are counted from.

Reports are stand-ins (``SimpleNamespace``): ``TestRecord.absorb`` reads only ``when``,
``outcome``, ``duration``, ``longrepr`` and whether ``wasxfail`` is in the report's ``__dict__``.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_staging.core.ledger import (
    ERROR_LIMIT,
    FAILING,
    OUTCOMES,
    RAN,
    Attempt,
    Ledger,
    Metric,
    Tally,
    TestRecord,
    clip,
    short_error,
)


def report(
    when: str, outcome: str, duration: float | None = 0.5, longrepr=None, xfail: bool = False
) -> SimpleNamespace:
    fields = {"when": when, "outcome": outcome, "duration": duration, "longrepr": longrepr}
    if xfail:
        fields["wasxfail"] = ""  # pytest sets it (to the reason) only on xfail reports
    return SimpleNamespace(**fields)


def skip_longrepr(reason: str) -> tuple[str, int, str]:
    return ("tests/test_a.py", 3, f"Skipped: {reason}")


def absorbed(*reports: SimpleNamespace, measured=None) -> TestRecord:
    record = TestRecord("tests/test_a.py::test_a", "smoke")
    for item in reports:
        record.absorb(item, measured)
    return record


FAILURE = "def test_a():\n>       assert 1 == 2\nE       assert 1 == 2\n\ntests/test_a.py:2: AssertionError"

# What pytest reports for one test: setup, then call if the setup passed, then teardown.
PROTOCOLS = [
    # (setup, call, teardown) -> outcome
    ((("passed", False), ("passed", False), "passed"), "passed"),
    ((("passed", False), ("passed", True), "passed"), "xpassed"),
    ((("passed", False), ("failed", False), "passed"), "failed"),
    ((("passed", False), ("skipped", False), "passed"), "skipped"),
    ((("passed", False), ("skipped", True), "passed"), "xfailed"),
    ((("passed", False), ("passed", False), "failed"), "error"),
    ((("passed", False), ("passed", True), "failed"), "error"),
    ((("passed", False), ("failed", False), "failed"), "failed"),  # the call's failure stands
    ((("passed", False), ("skipped", False), "failed"), "error"),
    ((("passed", False), ("skipped", True), "failed"), "error"),
    ((("failed", False), None, "passed"), "error"),
    ((("failed", False), None, "failed"), "error"),
    ((("skipped", False), None, "passed"), "skipped"),
    ((("skipped", True), None, "passed"), "xfailed"),  # xfail(run=False)
    ((("skipped", False), None, "failed"), "error"),
    ((("passed", False), None, "passed"), "error"),  # no call (--setup-only, a crashed call): never "passed"
]


def protocol_reports(protocol) -> list[SimpleNamespace]:
    (setup, setup_xfail), call, teardown = protocol
    longrepr = {"passed": None, "failed": FAILURE, "skipped": skip_longrepr("not today")}
    reports = [report("setup", setup, longrepr=longrepr[setup], xfail=setup_xfail)]
    if call is not None:
        reports.append(report("call", call[0], longrepr=longrepr[call[0]], xfail=call[1]))
    reports.append(report("teardown", teardown, longrepr=longrepr[teardown]))
    return reports


@pytest.mark.parametrize(("protocol", "outcome"), PROTOCOLS)
def test_a_protocol_ends_in_one_outcome_and_one_attempt(protocol, outcome):
    reports = protocol_reports(protocol)
    record = absorbed(*reports)
    assert record.outcome == outcome
    assert record.duration == pytest.approx(0.5 * len(reports))
    assert record.attempts == [Attempt(outcome, record.duration, record.error)]
    assert record.flaky is False
    assert (record.error == "assert 1 == 2") == any(r.outcome == "failed" for r in reports)
    assert (record.error is None) == (not any(r.outcome == "failed" for r in reports))
    assert record.blocking == (outcome in FAILING)


def test_a_skip_keeps_its_reason_without_the_prefix():
    record = absorbed(
        report("setup", "skipped", longrepr=skip_longrepr("staging: smoke tier failed")), report("teardown", "passed")
    )
    assert (record.outcome, record.skip_reason) == ("skipped", "staging: smoke tier failed")
    # A reason pytest does not prefix is kept whole.
    record = absorbed(
        report("setup", "skipped", longrepr=("f.py", 1, "no Skipped: here")), report("teardown", "passed")
    )
    assert record.skip_reason == "no Skipped: here"


def test_the_first_failure_names_the_error():
    record = absorbed(
        report("setup", "passed"),
        report("call", "failed", longrepr="E   ValueError: first"),
        report("teardown", "failed", longrepr="E   RuntimeError: second"),
    )
    assert (record.outcome, record.error) == ("failed", "ValueError: first")


def test_a_missing_duration_counts_as_zero():
    record = absorbed(
        report("setup", "passed", duration=None),
        report("call", "passed", duration=1.25),
        report("teardown", "passed", duration=None),
    )
    assert record.duration == 1.25


def test_a_worker_crash_is_crashed_and_carries_what_the_worker_measured():
    measured = {
        "correlationId": "c0ffee",
        "spanId": "00f067aa0ba902b7",
        "destructive": True,
        "metrics": [["latency", 12.5, "ms"]],
        "quarantine": {"status": "active", "owner": "ops"},
        "validations": [3, 1],
        "dataContracts": [{"schema": "s", "ok": True}],
        "loadRuns": [{"name": "r"}],
    }
    record = absorbed(
        report("setup", "passed"),
        report("???", "failed", duration=0.0, longrepr="worker 'gw0' crashed while running 'tests/test_a.py::test_a'"),
        measured=measured,
    )
    assert record.outcome == "crashed"
    assert record.error == "worker 'gw0' crashed while running 'tests/test_a.py::test_a'"
    assert (record.correlation_id, record.span_id, record.destructive) == ("c0ffee", "00f067aa0ba902b7", True)
    assert record.metrics == [Metric("latency", 12.5, "ms")]
    assert record.quarantined and not record.blocking
    assert (record.validations, record.validation_failures) == (3, 1)
    assert record.data_contracts == [{"schema": "s", "ok": True}]
    assert record.load_runs == [{"name": "r"}]
    assert record.attempts == [Attempt("crashed", 0.5, record.error)]


def test_a_crash_overrides_an_earlier_failure():
    record = absorbed(
        report("setup", "passed"),
        report("call", "failed", longrepr="E   boom"),
        report("???", "failed", longrepr="crashed"),
    )
    assert (record.outcome, record.error) == ("crashed", "boom")


def test_measurements_are_read_only_at_the_end_of_the_protocol():
    measured = {"correlationId": "abc", "destructive": False, "metrics": []}
    record = TestRecord("t", "smoke")
    record.absorb(report("setup", "passed"), measured)
    record.absorb(report("call", "passed"), measured)
    assert record.correlation_id_value is None
    record.absorb(report("teardown", "passed"), measured)
    assert record.correlation_id_value == "abc"


def test_what_a_worker_measured_crosses_to_the_controller_unchanged():
    worker = TestRecord("t", "contract", destructive=True, quarantine={"status": "expired", "owner": "qa"})
    _ = worker.correlation_id  # made on first use
    worker.span_id = "0123456789abcdef"
    worker.add_metric("rps", 40, "1/s")
    worker.count_validation(True)
    worker.count_validation(False)
    worker.add_data_contract({"schema": "rows", "ok": False})
    worker.add_load_run({"name": "checkout"})
    worker.attempts = [Attempt("failed", 0.25, "AssertionError: x")]  # an earlier attempt of a re-run
    controller = TestRecord("t", "contract")
    for item in (report("setup", "passed"), report("call", "passed"), report("teardown", "passed")):
        controller.absorb(item, worker.measured() if item.when == "teardown" else None)
    for field in (
        "correlation_id_value",
        "span_id",
        "destructive",
        "metrics",
        "quarantine",
        "validations",
        "validation_failures",
        "data_contracts",
        "load_runs",
    ):
        assert getattr(controller, field) == getattr(worker, field), field
    assert controller.attempts == [Attempt("failed", 0.25, "AssertionError: x"), Attempt("passed", 1.5, None)]
    assert controller.flaky is True
    assert controller.blocking is False
    assert controller.to_dict()["validations"] == {"passed": 1, "failed": 1}


@pytest.mark.parametrize(("last", "flaky"), [("passed", True), ("failed", False)])
def test_a_rerun_that_passes_at_last_is_flaky(last, flaky):
    record = TestRecord(
        "t", "smoke", attempts=[Attempt("failed", 0.1, "AssertionError: 1"), Attempt("error", 0.1, "fixture")]
    )
    absorbed_reports = [
        report("setup", "passed"),
        report("call", last, longrepr="E   AssertionError: 3" if last == "failed" else None),
        report("teardown", "passed"),
    ]
    for item in absorbed_reports:
        record.absorb(item)
    assert record.flaky is flaky
    assert [a.outcome for a in record.attempts] == ["failed", "error", last]
    if flaky:
        assert record.to_dict()["flaky"] is True
    # Without earlier attempts, a pass is just a pass.
    assert absorbed(*absorbed_reports).flaky is False


@given(
    st.lists(st.sampled_from(["passed", "failed", "error"]), max_size=4),
    st.sampled_from(["passed", "failed", "skipped"]),
)
def test_flaky_means_earlier_attempts_and_a_final_pass(earlier, last):
    record = TestRecord("t", "smoke", attempts=[Attempt(outcome, 0.1) for outcome in earlier])
    for item in (
        report("setup", "passed"),
        report("call", last, longrepr="E   x" if last == "failed" else None),
        report("teardown", "passed"),
    ):
        record.absorb(item)
    assert record.flaky == (bool(earlier) and last == "passed")
    assert len(record.attempts) == len(earlier) + 1


# -- the session's end ---------------------------------------------------------------------------


def test_close_turns_an_unfinished_test_into_notrun():
    ledger = Ledger()
    ledger.expect(
        [
            ("a", "smoke", False, None),
            ("b", "smoke", False, None),
            ("c", "contract", True, {"status": "active"}),
            ("d", "smoke", False, None),
        ]
    )
    ledger.records["a"].absorb(report("setup", "passed"))  # Ctrl-C during its call
    ledger.add_report(report("setup", "failed", longrepr="E   KeyboardInterrupt"), "b")
    ledger.add_report(report("setup", "passed"), "d")
    ledger.add_report(report("call", "passed"), "d")
    ledger.add_report(report("teardown", "passed"), "d")
    ledger.close()
    outcomes = {nodeid: (record.outcome, record.error) for nodeid, record in ledger.records.items()}
    assert outcomes == {
        "a": ("notrun", "interrupted before it finished"),
        "b": ("error", "KeyboardInterrupt"),
        "c": ("notrun", None),
        "d": ("passed", None),
    }
    assert ledger.records["c"].destructive and ledger.records["c"].quarantined


def test_close_keeps_the_error_an_unfinished_test_already_had():
    record = TestRecord("a", "smoke", outcome="running", error="AssertionError: before")
    ledger = Ledger({"a": record})
    ledger.close()
    assert (record.outcome, record.error) == ("notrun", "AssertionError: before")


def test_a_report_for_an_unexpected_test_makes_its_record():
    ledger = Ledger()
    ledger.expect([("a", "load", False, None)])
    ledger.expect([("a", "smoke", False, None)])  # expected twice: the first stands
    ledger.add_report(report("setup", "passed"), "new", None)
    ledger.add_report(report("setup", "passed"), "a", "contract")
    assert (ledger.records["new"].tier, ledger.records["a"].tier) == ("smoke", "contract")
    assert {tier: [r.nodeid for r in records] for tier, records in ledger.by_tier().items()} == {
        "contract": ["a"],
        "smoke": ["new"],
    }


# -- short_error -------------------------------------------------------------------------------


def test_the_crash_line_comes_from_reprcrash():
    longrepr = SimpleNamespace(reprcrash=SimpleNamespace(message="AssertionError: assert 1 == 2\n +  where 1 = f()"))
    assert short_error(SimpleNamespace(longrepr=longrepr)) == "AssertionError: assert 1 == 2 + where 1 = f()"


def test_a_real_pytest_longrepr():
    try:
        raise ValueError("the\ttarget   said\nno")
    except ValueError:
        info = pytest.ExceptionInfo.from_current()
    assert short_error(SimpleNamespace(longrepr=info.getrepr())) == "ValueError: the target said no"


@pytest.mark.parametrize(
    ("longrepr", "error"),
    [
        (FAILURE, "assert 1 == 2"),
        ("E   first\nE   second\nfile.py:3: Error", "second"),  # the last explained line
        ("setup failed\n\n   fixture 'db' not found  \n\n", "fixture 'db' not found"),  # else the last line
        ("", ""),
        ("\n  \n", ""),
        (None, ""),
        (("f.py", 1, "Skipped: x"), "('f.py', 1, 'Skipped: x')"),
    ],
)
def test_a_plain_longrepr(longrepr, error):
    assert short_error(SimpleNamespace(longrepr=longrepr)) == error


def test_a_long_message_is_cut():
    exact = "x" * ERROR_LIMIT
    assert short_error(SimpleNamespace(longrepr=f"E   {exact}")) == exact
    cut = short_error(SimpleNamespace(longrepr=f"E   {exact}y"))
    assert len(cut) == ERROR_LIMIT and cut == "x" * (ERROR_LIMIT - 1) + "…"


def test_a_long_message_is_cut_between_words():
    words = "AssertionError: assert 500 == 200 " + "+ where 500 = <Response [500]>.status_code " * 20
    cut = short_error(SimpleNamespace(longrepr=f"E   {words}"))
    assert len(cut) <= ERROR_LIMIT and cut.endswith("…")
    assert " ".join(words.split()).startswith(cut[:-1] + " ")  # ends where a word ended


@given(st.text(alphabet=st.sampled_from("ab "), max_size=60), st.integers(min_value=2, max_value=40))
def test_clip(text, limit):
    clipped = clip(text, limit)
    assert len(clipped) <= limit
    if len(text) <= limit:
        assert clipped == text
    else:
        kept = clipped[:-1]
        assert clipped.endswith("…") and text.startswith(kept)
        # cut before a space, unless no space lies in the second half of what fits
        at_word_end = text[len(kept) :].startswith(" ")
        assert at_word_end or " " not in text[limit // 2 : limit - 1]


def test_flaky_attempt_errors_are_cut_between_words():
    from pytest_staging.report.text import flaky_quarantine_lines

    error = "AssertionError: assert 500 == 200 + where 500 = <Response [500]>.status_code in the checkout call"
    statement = {
        "predicate": {
            "flaky": [
                {
                    "nodeid": "t.py::t",
                    "attempts": [
                        {"outcome": "failed", "duration": 0.5, "error": error},
                        {"outcome": "passed", "duration": 0.1},
                    ],
                }
            ]
        }
    }
    line = next(line for line in flaky_quarantine_lines(statement) if "attempts:" in line)
    shown = line.split("(", 1)[1].rsplit(")", 1)[0]
    assert shown.endswith("…") and error.startswith(shown[:-1] + " ")


@given(st.text())
def test_an_error_is_one_short_line(message):
    error = short_error(SimpleNamespace(longrepr=SimpleNamespace(reprcrash=SimpleNamespace(message=message))))
    whole = " ".join(message.split())
    assert len(error) <= ERROR_LIMIT
    assert error == (whole if len(whole) <= ERROR_LIMIT else whole[: ERROR_LIMIT - 1] + "…")
    assert not any(character.isspace() and character != " " for character in error)


# -- the tally -----------------------------------------------------------------------------------

QUARANTINES = [None, {"status": "active", "owner": "ops"}, {"status": "expired", "owner": "ops"}]
SKIP_REASONS = [
    None,
    "staging: destructive test not run on sensitive target prod",
    "staging: smoke tier failed",
    "not today",
]


@st.composite
def records(draw):
    made = []
    for index in range(draw(st.integers(0, 30))):
        made.append(
            TestRecord(
                f"t{index}",
                draw(st.sampled_from(["smoke", "contract", "load", "custom"])),
                outcome=draw(st.sampled_from([*OUTCOMES, "running"])),
                duration=draw(st.floats(0, 100, allow_nan=False)),
                quarantine=draw(st.sampled_from(QUARANTINES)),
                flaky=draw(st.booleans()),
                skip_reason=draw(st.sampled_from(SKIP_REASONS)),
            )
        )
    return made


@given(records())
def test_the_tally_agrees_with_a_naive_recount(made):
    tally = Tally(made)
    assert set(tally.tiers) == {r.tier for r in made}
    for name, tier in tally.tiers.items():
        mine = [r for r in made if r.tier == name]
        assert tier.total == len(mine)
        for outcome in OUTCOMES:
            expected = sum(r.outcome == outcome or (outcome == "notrun" and r.outcome == "running") for r in mine)
            assert tier.counts[outcome] == expected, outcome
        assert tier.duration == pytest.approx(sum(r.duration for r in mine))
        assert tier.ran == sum(r.outcome in RAN for r in mine)
        assert tier.quarantined == sum(r.quarantine is not None and r.quarantine["status"] == "active" for r in mine)
        assert tier.blocking == sum(r.blocking for r in mine)
        assert tier.skip_reasons == {r.skip_reason for r in mine if r.skip_reason}
        assert tier.destructive_skipped == sum(
            r.outcome == "skipped" and (r.skip_reason or "").startswith("staging: destructive") for r in mine
        )
    for outcome in FAILING:
        assert tally.blocking[outcome] == [r for r in made if r.outcome == outcome and r.blocking]
    assert tally.ran == sum(r.outcome in RAN for r in made)
    assert tally.notrun == [r.nodeid for r in made if r.outcome in ("notrun", "running")]
    assert tally.flaky == [r.nodeid for r in made if r.flaky and not r.quarantined]
    assert tally.tier("absent").total == 0


@given(st.sampled_from([*OUTCOMES, "running"]), st.sampled_from(QUARANTINES))
def test_blocking_is_a_failure_outside_an_active_quarantine(outcome, quarantine):
    record = TestRecord("t", "smoke", outcome=outcome, quarantine=quarantine)
    active = quarantine is not None and quarantine["status"] == "active"
    assert record.blocking == (outcome in {"failed", "error", "crashed"} and not active)
    assert record.quarantined == active
