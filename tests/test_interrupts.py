"""libtlt.interrupts: signals recorded while parsing, held in deferred blocks, never lost when swallowed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
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


def _run_script(source: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True,
                          timeout=timeout)


def test_a_stopped_tool_exits_even_when_a_thread_would_hold_interpreter_shutdown() -> None:
    """A non-daemon thread that never ends makes ``sys.exit`` wait forever at shutdown; after a delivered signal
    run_tool exits without that shutdown."""
    done = _run_script("""
        import os, signal, threading, time
        from libtlt.cli_options import run_tool

        def body():
            threading.Thread(target=lambda: time.sleep(3600)).start()
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(3600)

        run_tool(body)
    """)
    assert done.returncode == 143, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == "Interrupted by SIGTERM."


def test_the_watchdog_ends_a_clean_up_that_never_ends() -> None:
    done = _run_script("""
        import os, signal, time
        from libtlt import interrupts

        interrupts.STOP_GRACE_SECONDS = 1.0
        with interrupts.handlers_installed():
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(3600)
            finally:
                while True:  # a clean-up stuck for good (a lock, a thread join)
                    try:
                        time.sleep(3600)
                    except BaseException:
                        pass
    """)
    assert done.returncode == 130, done.stderr[-2000:]
    assert "the clean-up did not end within 1 s" in done.stderr


def test_the_watchdog_leaves_a_block_that_ended_alone() -> None:
    done = _run_script("""
        import os, signal, time
        from libtlt import interrupts

        interrupts.STOP_GRACE_SECONDS = 0.5
        try:
            with interrupts.handlers_installed():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(3600)
        except interrupts.Interrupted:
            pass
        time.sleep(1.5)
        print("still here")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "still here", done.stderr[-2000:]


def test_a_signal_during_the_tensorflow_import_waits_for_its_end() -> None:
    """Raised inside TensorFlow's import, the interrupt left half-imported modules and an AttributeError (exit 1)."""
    done = _run_script("""
        import os, signal, threading
        from libtlt.cli_options import run_tool

        def body():
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
            try:
                import tensorflow
                raise AssertionError("the signal should be raised when the import ends")
            finally:  # a clean-up that needs TensorFlow (tlt-train's failure record did)
                import sys
                print("imported whole:", "tensorflow" in sys.modules)
                import tensorflow as tf
                tf.data.Dataset.range(1)

        run_tool(body)
    """, timeout=240)
    assert done.returncode == 143, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1] == "Interrupted by SIGTERM."
    assert done.stdout.strip() == "imported whole: True"
