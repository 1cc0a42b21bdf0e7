"""Stopping signals: SIGTERM and SIGHUP stop a gate run the way Ctrl-C does, under xdist too.

A CI time-out sends SIGTERM; a closed terminal or SSH session, SIGHUP. Python's default for
either is to die on the spot, which would leave only the ``incomplete`` HOLD at the verdict path.
Raised as KeyboardInterrupt instead, they take pytest's interrupt path: the run stops, the
verdict is written (HOLD, or REJECT when failure evidence already exists) and the exit status
is pytest's INTERRUPTED (2). A signal the run was started to ignore (``nohup`` ignores SIGHUP)
stays ignored.

While a verdict is being written, every stopping signal (SIGINT too) is ignored until it is on
disk: a second Ctrl-C must not turn a verdict that is nearly written into a traceback. Nothing is
lost by ignoring it: verdicts are written then only once the run is already stopping or ending.
Outside that moment they act at once, so a hung teardown can still be stopped. SIGKILL always
stops the run, leaving the last verdict written (at worst the ``incomplete`` HOLD).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Signals that stop a run like Ctrl-C, where the platform has them.
STOPPING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"{signal.Signals(signum).name} received")


def _swap(signals: tuple[int, ...], handler: Any) -> dict[int, Any]:
    """Install ``handler`` for each signal that is not ignored; the previous handlers, to put
    back. Signals can only be handled on the main thread (a run on another keeps the defaults)."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for signum in signals:
        try:
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue
            previous[signum] = signal.signal(signum, handler)
        except (OSError, ValueError):  # not settable here
            continue
    return previous


def _restore(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


class StopSignals:
    """SIGTERM/SIGHUP raise KeyboardInterrupt from :meth:`install` until :meth:`restore`."""

    def __init__(self) -> None:
        self._original: dict[int, Any] = {}

    def install(self) -> None:
        self._original = _swap(STOPPING, _stop)

    def restore(self) -> None:
        _restore(self._original)
        self._original = {}

    @contextmanager
    def held(self) -> Iterator[None]:
        """Inside the block, stopping signals are ignored (the verdict being written comes first)."""
        previous = _swap((signal.SIGINT, *STOPPING), signal.SIG_IGN)
        try:
            yield
        finally:
            _restore(previous)
