"""pytest-staging: run a pytest suite as a staging acceptance gate.

See README.md for the user guide; the contract (options, markers, fixtures, verdict) is stable.
"""

from __future__ import annotations

__version__ = "0.1.0"
