"""The scrubber on its own: masking, reports (stand-ins and pytest's own), JSON, log lines."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from types import SimpleNamespace

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pytest_staging.core.redact import MASK, Scrubber, ScrubbingFormatter


def test_longest_first_masks_a_secret_that_contains_another_whole():
    scrub = Scrubber(["abc", "abcdef", "cd"])
    assert scrub("x abcdefg x") == "x ***g x"
    assert scrub("abc and cd") == "*** and ***"


def test_overlapping_secrets_leave_neither_whole():
    scrub = Scrubber(["abcd", "cdef"])
    assert scrub("abcdef") == "***ef"
    assert scrub("xcdefab") == "x***ab"


def test_secrets_are_literal_text_not_patterns():
    scrub = Scrubber(["a.c", "(x|y)", "\\d+"])
    assert scrub("abc a.c (x|y) x 12 \\d+") == "abc *** *** x 12 ***"


def test_nothing_to_hide():
    for scrub in (Scrubber(), Scrubber([""]), Scrubber(["", ""])):
        assert not scrub
        assert scrub("anything") == "anything"
        assert not scrub.in_json(b'{"a": ""}')
    scrub = Scrubber(["s"])
    assert scrub
    assert scrub("") == ""
    assert scrub("sss") == "***" * 3  # a one-character secret masks every occurrence


SECRET_TEXT = st.text(alphabet="abc", min_size=1, max_size=4)


@given(st.lists(SECRET_TEXT, max_size=4), st.text(alphabet="abcx", max_size=30))
def test_no_secret_survives_masking(secrets, text):
    # A small alphabet, so secrets overlap, contain each other and repeat.
    scrubbed = Scrubber(secrets)(text)
    for secret in secrets:
        assert secret not in scrubbed
    assert (scrubbed == text) == (not any(secret in text for secret in secrets))
    assert len(scrubbed.replace(MASK, "")) < len(text) or scrubbed == text


# -- reports -----------------------------------------------------------------------------------


def stand_in(longrepr, sections=()) -> SimpleNamespace:
    return SimpleNamespace(longrepr=longrepr, sections=list(sections))


def test_a_skip_reason_is_scrubbed_and_its_location_kept():
    report = stand_in(("tests/test_a.py", 7, "Skipped: token hunter2 expired"))
    Scrubber(["hunter2"]).report(report)
    assert report.longrepr == ("tests/test_a.py", 7, "Skipped: token *** expired")


def test_a_string_longrepr_and_the_captured_sections_are_scrubbed():
    report = stand_in(
        "E   assert 'hunter2' == ''", [("Captured stdout call", "pw=hunter2\n"), ("Captured log call", "ok\n")]
    )
    Scrubber(["hunter2"]).report(report)
    assert report.longrepr == "E   assert '***' == ''"
    assert report.sections == [("Captured stdout call", "pw=***\n"), ("Captured log call", "ok\n")]


def test_a_report_without_a_secret_is_left_as_it_was():
    longrepr = object()
    report = stand_in(longrepr, [("Captured stdout call", "fine")])
    Scrubber(["hunter2"]).report(report)
    assert report.longrepr is longrepr
    report = stand_in(None)
    Scrubber(["hunter2"]).report(report)
    assert report.longrepr is None and report.sections == []
    report = stand_in("hunter2", [("out", "hunter2")])
    Scrubber().report(report)  # nothing to hide: nothing touched
    assert (report.longrepr, report.sections) == ("hunter2", [("out", "hunter2")])


@dataclasses.dataclass(frozen=True)
class Entry:
    lines: list[str]
    style: str


@dataclasses.dataclass
class Chain:
    entries: list[Entry]
    extra: dict[str, tuple[str, ...]]
    crash: str

    def __str__(self) -> str:
        return "\n".join([*(line for entry in self.entries for line in entry.lines), self.crash, *self.extra])


def test_a_dataclass_longrepr_is_scrubbed_field_by_field():
    chain = Chain([Entry(["E   hunter2", "ok"], "long")], {"note": ("hunter2", "x")}, "ValueError: hunter2")
    report = stand_in(chain)
    Scrubber(["hunter2"]).report(report)
    assert report.longrepr is chain  # kept, so pytest renders it as before (colours, crash line)
    assert chain.entries == [Entry(["E   ***", "ok"], "long")]
    assert chain.extra == {"note": ("***", "x")}
    assert chain.crash == "ValueError: ***"


class Opaque:
    """A longrepr whose secret no field holds: only its text does."""

    def __str__(self) -> str:
        return "computed from hunter2"


def test_a_longrepr_still_holding_a_secret_is_flattened_to_scrubbed_text():
    report = stand_in(Opaque())
    Scrubber(["hunter2"]).report(report)
    assert report.longrepr == "computed from ***"


def test_pytests_own_traceback_representation():
    def call_target(token):
        raise ValueError(f"401 for token {token}")

    try:
        call_target("hunter2")
    except ValueError:
        info = pytest.ExceptionInfo.from_current()
    longrepr = info.getrepr(style="long")
    report = stand_in(longrepr)
    Scrubber(["hunter2"]).report(report)
    text = str(report.longrepr)
    assert "hunter2" not in text
    assert "ValueError: 401 for token ***" in text
    assert report.longrepr is longrepr  # still pytest's representation, not flattened
    assert longrepr.reprcrash.message == "ValueError: 401 for token ***"


# -- JSON --------------------------------------------------------------------------------------

ANY_TEXT = st.characters(exclude_categories=())  # lone surrogates and control characters too
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))


def holding(secret: str):
    """JSON data with the secret somewhere inside a string (a key or a value)."""
    around = st.tuples(st.text(ANY_TEXT, max_size=5), st.text(ANY_TEXT, max_size=5)).map(
        lambda pair: pair[0] + secret + pair[1]
    )
    return st.recursive(
        around,
        lambda inner: st.one_of(
            st.tuples(st.lists(JSON_LEAF, max_size=2), inner, st.lists(JSON_LEAF, max_size=2)).map(
                lambda t: [*t[0], t[1], *t[2]]
            ),
            st.tuples(around, JSON_LEAF).map(lambda pair: {pair[0]: pair[1]}),
            st.tuples(st.text(max_size=5), inner).map(lambda pair: {pair[0]: pair[1]}),
        ),
        max_leaves=4,
    )


@given(st.data(), st.text(ANY_TEXT, min_size=1, max_size=12), st.booleans(), st.sampled_from([None, 2]))
def test_a_secret_anywhere_in_written_json_is_found(data, secret, ensure_ascii, indent):
    value = data.draw(holding(secret))
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)
    try:
        written = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate cannot be written as UTF-8 unescaped
        assume(False)
    assert Scrubber([secret, "unrelated secret"]).in_json(written)


ESCAPED = ['pa"ss', "back\\slash", "new\nline", "tab\there", "wörd", "emoji😀x", "\x00nul", "a\u2028b", "</script>"]


@pytest.mark.parametrize(
    ("secret", "ensure_ascii"),
    [*((secret, True) for secret in ESCAPED), *((secret, False) for secret in ESCAPED), ("lone\ud800", True)],
)
def test_escaped_characters_are_found(secret, ensure_ascii):
    written = json.dumps({"key": f"before {secret} after"}, ensure_ascii=ensure_ascii).encode("utf-8")
    scrub = Scrubber([secret])
    assert scrub.in_json(written)
    assert not scrub.in_json(json.dumps({"key": "before after"}, ensure_ascii=ensure_ascii).encode("utf-8"))


def test_json_without_the_secret():
    scrub = Scrubber(["hunter2", "s3cr3t"])
    assert not scrub.in_json(b'{"password": "***", "note": "hunter 2"}')
    assert scrub.in_json(b'{"password": "hunter2"}')


# -- log lines ---------------------------------------------------------------------------------


def log_record(msg: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("staging", logging.WARNING, "t.py", 1, msg, args, exc_info)


def test_the_formatted_log_line_is_scrubbed_and_the_record_is_not():
    formatter = ScrubbingFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"), Scrubber(["hunter2"]))
    record = log_record("login with %s", "hunter2")
    assert formatter.format(record) == "WARNING staging: login with ***"
    assert (record.msg, record.args) == ("login with %s", ("hunter2",))  # caplog still sees the original
    assert record.getMessage() == "login with hunter2"


def test_a_logged_traceback_is_scrubbed_too():
    try:
        raise RuntimeError("refused hunter2")
    except RuntimeError:
        exc_info = sys.exc_info()
    formatter = ScrubbingFormatter(logging.Formatter("%(message)s"), Scrubber(["hunter2"]))
    line = formatter.format(log_record("call failed", exc_info=exc_info))
    assert "hunter2" not in line
    assert line.startswith("call failed\nTraceback") and line.endswith("RuntimeError: refused ***")


def test_the_inner_formatter_decides_the_layout():
    inner = logging.Formatter("[%(levelname)s] %(message)s")
    formatter = ScrubbingFormatter(inner, Scrubber())
    record = log_record("plain %d", 5)
    assert formatter.format(record) == inner.format(record) == "[WARNING] plain 5"
