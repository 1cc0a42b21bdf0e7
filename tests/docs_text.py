"""The user documentation as the tests read it: README.md and the pages under docs/.

Tests that hold the documentation to the real output (the openssl recipe, the release step, the
broken-contract failure, the guarantees table, ...) read it through here, so a section can move
between pages without its check going stale.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def docs_text(page: str | None = None) -> str:
    """The text of one page (a path under docs/, such as ``"verdict.md"``), or without one, of
    README.md and every page under docs/."""
    if page is not None:
        return (DOCS / page).read_text(encoding="utf-8")
    return "\n".join(path.read_text(encoding="utf-8") for path in [README, *sorted(DOCS.rglob("*.md"))])


def docs_block(marker: str) -> str:
    """The fenced block right after ``<!-- marker -->`` in the documentation, exactly as printed.
    The marker must occur exactly once, in README.md or a page under docs/."""
    parts = docs_text().split(f"<!-- {marker} -->")
    assert len(parts) == 2, f"<!-- {marker} --> occurs {len(parts) - 1} times in README.md and docs/, not once"
    block = re.match(r"\s*```\w*\n(.*?)```", parts[1], re.S)
    assert block is not None, f"no fenced block right after <!-- {marker} -->"
    return block.group(1)
