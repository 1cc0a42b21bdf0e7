"""Secrets out of what pytest shows beyond the reports: warnings and log records. Registered
only when there is a secret to hide (a value read through ``${VAR}``, a URL's user info); the
reports themselves are scrubbed where they are made (:mod:`.accounting`, :mod:`.collection`)."""

from __future__ import annotations

from typing import Any

import pytest

from ..core.redact import Scrubber, ScrubbingFormatter


class Scrubbing:
    def __init__(self, scrub: Scrubber) -> None:
        self.scrub = scrub

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        logging_plugin = session.config.pluginmanager.get_plugin("logging-plugin")
        for name in ("log_cli_handler", "log_file_handler"):
            handler = getattr(logging_plugin, name, None)
            if handler is not None and handler.formatter is not None:
                handler.setFormatter(ScrubbingFormatter(handler.formatter, self.scrub))

    @pytest.hookimpl(tryfirst=True)
    def pytest_warning_recorded(self, warning_message: Any) -> None:
        message = warning_message.message
        text = str(message)
        scrubbed = self.scrub(text)
        if scrubbed != text:
            warning_message.message = type(message)(scrubbed) if isinstance(message, Warning) else scrubbed
