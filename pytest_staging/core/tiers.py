"""Tiers: which tier a test is in, the run order, and the fail-fast gate between tiers.

Under pytest-xdist the same gate becomes a barrier between processes: :mod:`..gate.barrier`.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import ConfigError

TIERS = ("smoke", "contract", "load")
ORDER = {tier: index for index, tier in enumerate(TIERS)}


def parse_tiers(text: str, where: str, field: str = "") -> tuple[str, ...]:
    """Tier names separated by commas or spaces (``--staging-tier``, ini ``staging_required_tiers``)."""
    names = tuple(t.strip() for t in text.replace(",", " ").split() if t.strip())
    for name in names:
        check_tier(name, where, field)
    if not names:
        raise ConfigError(where, field, f"no tier given; choose from {', '.join(TIERS)}")
    return names


def check_tier(name: str, where: str, field: str = "") -> str:
    if name not in TIERS:
        raise ConfigError(where, field, f"unknown tier {name!r}; choose from {', '.join(TIERS)}")
    return name


def tier_markers(marker_names: Iterable[str]) -> list[str]:
    return [name for name in TIERS if name in marker_names]


def skip_reason(failed_tier: str) -> str:
    return f"staging: {failed_tier} tier failed"


class TierGate:
    """Serial fail-fast: a blocking failure in a tier skips every later tier."""

    def __init__(self, fail_fast: bool) -> None:
        self.fail_fast = fail_fast
        self.failed_tiers: set[str] = set()

    def finished(self, nodeid: str, tier: str, failed: bool) -> None:
        if failed:
            self.failed_tiers.add(tier)

    def before(self, tier: str) -> str | None:
        """A skip reason when an earlier tier failed, else None."""
        if not self.fail_fast or not self.failed_tiers:
            return None
        for earlier in TIERS[: ORDER[tier]]:
            if earlier in self.failed_tiers:
                return skip_reason(earlier)
        return None
