"""The scheduler the gate gives xdist for ``--dist load``: tests stay in tier order."""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadScheduling


class TierLoadScheduling(LoadScheduling):
    """xdist's load scheduling, except that tests a crashed worker left behind go back into the
    queue in collection (tier) order instead of at its end, so no worker ever waits at the tier
    barrier for a test that sits behind it in the queue."""

    _put_back = False

    def remove_node(self, node: Any) -> str | None:
        self._put_back = True
        return super().remove_node(node)

    def mark_test_pending(self, item: str) -> None:
        self._put_back = True
        super().mark_test_pending(item)

    def check_schedule(self, node: Any, duration: float = 0) -> None:
        if self._put_back:
            self.pending.sort()  # indexes into the collection, which is in tier order
            self._put_back = False
        super().check_schedule(node, duration)
