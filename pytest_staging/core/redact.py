"""Scrubbing secrets (values read through ``${VAR}``) out of everything pytest shows or writes."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterable
from typing import Any

MASK = "***"


class Scrubber:
    """Replace every known secret in a text with ``***``; falsy when there is nothing to hide."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._secrets = ordered
        self._json_forms: tuple[bytes, ...] | None = None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def in_json(self, data: bytes) -> bool:
        """Whether JSON text as ``json.dumps`` writes it (UTF-8, with or without ``ensure_ascii``)
        holds a secret. The encoder escapes a string character by character, so a secret anywhere
        in a string shows up as its own escaped form: looking for those forms misses none."""
        if self._json_forms is None:
            forms = {json.dumps(secret)[1:-1].encode("ascii") for secret in self._secrets}
            for secret in self._secrets:
                try:
                    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1].encode("utf-8"))
                except UnicodeEncodeError:  # a lone surrogate: such text is only written ASCII-escaped
                    pass
            self._json_forms = tuple(forms)
        # A substring search per secret: a few, and much faster than one regex over megabytes.
        return any(form in data for form in self._json_forms)

    def report(self, report) -> None:
        """Scrub a pytest TestReport/CollectReport in place: traceback, crash line, captured output.

        pytest's traceback representations are dataclasses, scrubbed field by field so colours
        and the crash line survive; anything still holding a secret after that is flattened to
        its scrubbed text, which pytest (terminal, JUnit XML, xdist) accepts as well.
        """
        if self._pattern is None:
            return
        longrepr = report.longrepr
        if isinstance(longrepr, tuple) and len(longrepr) == 3:  # skip: (path, lineno, reason)
            path, lineno, reason = longrepr
            report.longrepr = (path, lineno, self(reason))
        elif longrepr is not None and self._pattern.search(str(longrepr)):
            report.longrepr = self._value(longrepr)
            if self._pattern.search(str(report.longrepr)):
                report.longrepr = self(str(report.longrepr))
        if report.sections:
            report.sections = [(title, self(content)) for title, content in report.sections]

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list):
            return [self._value(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self._value(item) for item in value)
        if isinstance(value, dict):
            return {key: self._value(item) for key, item in value.items()}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for field in dataclasses.fields(value):
                object.__setattr__(value, field.name, self._value(getattr(value, field.name)))
        return value


class ScrubbingFormatter(logging.Formatter):
    """Wraps a log handler's formatter so live and file logs never show a secret.

    The formatted text is scrubbed, not the record: records are shared with ``caplog`` and a
    test's own assertions on them must not change.
    """

    def __init__(self, inner: logging.Formatter, scrub: Scrubber) -> None:
        super().__init__()
        self.inner = inner
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(self.inner.format(record))
