"""Stopping signals in this process, without a gate run: SIGTERM and SIGHUP become
KeyboardInterrupt, a signal the run was started to ignore stays ignored, and while a verdict is
written they are ignored. ``signal.raise_signal`` delivers at once, so nothing here waits.
(Whole runs stopped by signals, xdist included, are in test_fail_closed and test_fault_matrix.)"""

from __future__ import annotations

import signal

import pytest

from pytest_staging.core.interrupts import StopSignals

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP: POSIX only")

SIGNALS = (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM))


@pytest.fixture
def handlers():
    """Every handler this test may change is put back. SIGINT starts out as Python's own
    handler, SIGTERM and SIGHUP recorded (never the default, which would end this process)."""
    saved = {signum: signal.getsignal(signum) for signum in SIGNALS}
    received: list[int] = []
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, frame: received.append(signum))
    yield received
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def interrupt(signum: int) -> str | None:
    """Deliver ``signum`` here and now: the KeyboardInterrupt's words, or None when there was none
    (caught here, so a wrong result fails the test instead of stopping this pytest run)."""
    try:
        signal.raise_signal(signum)
    except KeyboardInterrupt as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_stopping_signal_is_a_keyboard_interrupt_until_restored(handlers, name):
    signum = getattr(signal, name)
    stop = StopSignals()
    stop.install()
    assert interrupt(signum) == f"{name} received"
    stop.restore()
    assert interrupt(signum) is None
    assert handlers == [signum]  # the handler from before is back


def test_a_signal_the_run_was_started_to_ignore_stays_ignored(handlers):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup starts it
    stop = StopSignals()
    stop.install()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    assert interrupt(signal.SIGHUP) is None
    assert interrupt(signal.SIGTERM) == "SIGTERM received"  # the other one is still caught
    stop.restore()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


def test_while_held_every_stopping_signal_is_ignored_then_acts_again(handlers):
    stop = StopSignals()
    stop.install()
    try:
        with stop.held():
            # Ctrl-C too: a second Ctrl-C must not cut the verdict short.
            assert [interrupt(signum) for signum in SIGNALS] == [None, None, None]
        # Ignored, not queued: held() guards the verdicts of a run that is already stopping or ending.
        assert interrupt(signal.SIGTERM) == "SIGTERM received"
        assert interrupt(signal.SIGINT) is not None  # Python's own Ctrl-C handler is back
    finally:
        stop.restore()
    assert handlers == []
