"""pytest-staging: run a pytest suite as a staging acceptance gate.

The user guide is README.md and docs/ (a MkDocs site); the contract (options, markers, fixtures,
verdict) is stable.
The exceptions a test may catch are exported here (``pytest_staging.ContractError``,
``pytest_staging.SensitiveRedirectError``), loaded on first use: a run that never touches them
never imports requests or jsonschema.

PYTEST_DONT_REWRITE: the plugin asserts nothing for users, so pytest need not rewrite it (and
must not warn about it when the plugin's own tests run pytest in-process).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["ContractError", "SensitiveRedirectError", "__version__"]

_EXPORTS = {"ContractError": "fixtures.contract", "SensitiveRedirectError": "fixtures.http"}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
