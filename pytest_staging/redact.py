"""Scrubbing secrets (values read through ``${VAR}``) out of everything pytest shows or writes."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"


class Scrubber:
    """Replace every known secret in a text with ``***``; falsy when there is nothing to hide."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def report(self, report) -> None:
        """Scrub a pytest TestReport/CollectReport in place: traceback, crash line, captured output.

        A traceback holding a secret is flattened to its text: pytest (terminal, JUnit XML,
        xdist) all accept a string ``longrepr``, and the structured form has too many places
        a secret can hide in.
        """
        if self._pattern is None:
            return
        longrepr = report.longrepr
        if isinstance(longrepr, tuple) and len(longrepr) == 3:  # skip: (path, lineno, reason)
            path, lineno, reason = longrepr
            report.longrepr = (path, lineno, self(reason))
        elif longrepr is not None:
            text = str(longrepr)
            if self._pattern.search(text):
                report.longrepr = self(text)
        if report.sections:
            report.sections = [(title, self(content)) for title, content in report.sections]


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
