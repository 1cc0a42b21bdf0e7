"""Stopping signals: SIGTERM and SIGHUP stop a gate run the way Ctrl-C does (SPEC §12).

A CI time-out sends SIGTERM; a closed terminal or SSH session, SIGHUP. Python's default for
either is to die on the spot, which would leave only the ``incomplete`` HOLD at the verdict path.
Raised as KeyboardInterrupt instead, they take pytest's interrupt path: the run stops, the
verdict is written (HOLD, or REJECT when failure evidence already exists) and the exit status
is pytest's INTERRUPTED (2).

From the first interrupt until the verdict is written, further stopping signals (SIGINT too)
are noted and ignored: a second Ctrl-C during the ending must not turn a verdict that is nearly
written into a traceback. SIGKILL still stops the run at once, leaving the ``incomplete`` HOLD.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

#: Signals that stop a run like Ctrl-C, where the platform has them.
STOPPING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"{signal.Signals(signum).name} received")


def _swap(signals: tuple[int, ...], handler: Any) -> dict[int, Any]:
    """Install ``handler`` for each signal; the previous handlers, to put back. Signals can only
    be handled on the main thread (an in-process run on another thread keeps the defaults)."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for signum in signals:
        try:
            previous[signum] = signal.signal(signum, handler)
        except (OSError, ValueError):  # not settable here
            continue
    return previous


def _restore(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


class StopSignals:
    """The run's stopping signals: SIGTERM/SIGHUP raise KeyboardInterrupt from :meth:`install`;
    :meth:`hold` ignores every stopping signal; :meth:`restore` puts the original handlers back."""

    def __init__(self) -> None:
        self._original: dict[int, Any] = {}
        #: Signals that arrived while held back.
        self.held: list[int] = []

    def install(self) -> None:
        self._keep(_swap(STOPPING, _stop))

    def hold(self) -> None:
        self._keep(_swap((signal.SIGINT, *STOPPING), lambda signum, frame: self.held.append(signum)))

    def restore(self) -> None:
        _restore(self._original)
        self._original = {}

    def _keep(self, previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            self._original.setdefault(signum, handler)
