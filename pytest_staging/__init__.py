"""pytest-staging: run a pytest suite as a staging acceptance gate.

See README.md for the user guide; the contract (options, markers, fixtures, verdict) is stable.

PYTEST_DONT_REWRITE: the plugin asserts nothing for users, so pytest need not rewrite it (and
must not warn about it when the plugin's own tests run pytest in-process).
"""

from __future__ import annotations

__version__ = "0.1.0"
