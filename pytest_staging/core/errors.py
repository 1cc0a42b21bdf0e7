"""The one exception type the pure core raises for a user mistake.

The pytest skin turns it into ``pytest.UsageError`` (exit code 4, one line); the CLI prints it
and exits non-zero. Keeping it free of pytest lets the core be tested and reused on its own.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A user mistake in a file, option or environment variable.

    ``where`` names the source (a file path, ``--option`` or ``ENV_VAR``), ``field`` the
    offending field inside it (may be empty), ``problem`` what is wrong and how to fix it.
    """

    def __init__(self, where: str, field: str, problem: str) -> None:
        self.where = where
        self.field = field
        self.problem = problem
        super().__init__(self.line())

    def line(self) -> str:
        location = f"{self.where}: {self.field}" if self.field else self.where
        return f"pytest-staging: {location}: {self.problem}"
