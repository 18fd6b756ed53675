"""libtlt.interrupts: signals recorded while parsing, held in deferred blocks, never lost when swallowed."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import pytest

from libtlt import interrupts


@pytest.fixture(autouse=True)
def signals_as_in_a_terminal() -> Iterator[None]:
    """Run under ``nohup`` or as a background job, the suite inherits SIGHUP/SIGINT ignored, and
    handlers_installed rightly keeps them so; these tests need the dispositions of a terminal."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_a_signal_while_recording_is_raised_when_the_tool_starts() -> None:
    ran = False
    with interrupts.recording():
        os.kill(os.getpid(), signal.SIGTERM)  # recorded, not raised: click is parsing
        with pytest.raises(interrupts.Interrupted) as raised, interrupts.handlers_installed():
            ran = True
    assert not ran and raised.value.exit_status == 143
    assert interrupts.pending() is None  # reset when the outermost handlers go


def test_a_deferred_block_is_never_cut_and_raises_at_its_end() -> None:
    steps = []
    with pytest.raises(interrupts.Interrupted) as raised, interrupts.handlers_installed():
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("after the signal")
            assert interrupts.pending() == signal.SIGINT
        steps.append("never")
    assert steps == ["after the signal"] and raised.value.one_line() == "Interrupted by SIGINT."


def test_a_swallowed_interrupt_is_raised_again_at_the_next_safe_point() -> None:
    with pytest.raises(interrupts.Interrupted), interrupts.handlers_installed():
        with contextlib.suppress(BaseException):  # code that swallows everything, as a __del__ would
            os.kill(os.getpid(), signal.SIGHUP)
        with interrupts.deferred():
            pass


def test_a_signal_ignored_at_start_stays_ignored() -> None:
    """``nohup`` ignores SIGHUP and a shell's background job SIGINT; the tool must keep it that way."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with interrupts.handlers_installed():
            os.kill(os.getpid(), signal.SIGHUP)
            with interrupts.deferred():
                pass
            assert interrupts.pending() is None
    finally:
        signal.signal(signal.SIGHUP, previous)
