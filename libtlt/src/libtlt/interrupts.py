"""Signals that end a tool (SIGINT, SIGTERM, SIGHUP): one exception, raised where it is safe.

``run_tool`` installs handlers that raise :class:`Interrupted` (a ``KeyboardInterrupt``), so the usual
``with``/``finally`` clean-up runs and the tool exits with ``128 + signal`` and one line; while a
command's arguments are parsed (``tool_command``) a signal is only recorded, and raised as soon as
``run_tool`` starts. Only a signal during Python's own start-up (importing the tool) gets Python's
default: the process dies by that signal, which a shell reports as the same 130/143. Code that
must not be cut in half (renaming a set of files into place, a worker pool's book-keeping) runs under
:func:`deferred`: a signal arriving there is recorded and raised when the block ends, and polling loops
ask :func:`pending`. Asynchronous exceptions inside ``concurrent.futures`` or ``multiprocessing``
internals are what left tlt-augment hanging on a lock; nothing here raises inside them.

Worker processes call :func:`detach_worker`: they ignore the signals (the parent decides when work
stops) and die with their parent (``PR_SET_PDEATHSIG``), so no worker outlives a killed tool.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

#: The signals that end a tool; SIGHUP is a closed terminal or ssh session.
SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_PR_SET_PDEATHSIG = 1


class Interrupted(KeyboardInterrupt):
    """The run was stopped by ``signum``; ``detail`` says what was done (e.g. frames completed)."""

    def __init__(self, signum: int, detail: str = ""):
        super().__init__(signum)
        self.signum = signum
        self.detail = detail

    @property
    def exit_status(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum

    def one_line(self) -> str:
        name = signal.Signals(self.signum).name
        return f"Interrupted by {name}" + (f": {self.detail}" if self.detail else "") + "."


class _State:
    depth = 0  # nesting of deferred() blocks
    armed = False  # inside run_tool: a signal raises Interrupted (outside, it is only recorded)
    installed = 0  # nesting of recording()/handlers_installed()
    received: int | None = None


def _handler(signum: int, frame: FrameType | None) -> None:
    # Recorded first: a raise that lands in code which swallows exceptions (a __del__, a bare except)
    # is not lost, the next deferred() exit or pending() check sees it.
    _State.received = _State.received or signum
    if _State.armed and _State.depth == 0 and threading.current_thread() is threading.main_thread():
        raise Interrupted(signum)


@contextlib.contextmanager
def _installed(arm: bool) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # A signal ignored when the tool started stays ignored: nohup's SIGHUP, a background job's SIGINT.
    previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN}
    was_armed = _State.armed
    _State.installed += 1
    try:
        if arm:
            _State.armed = True
            if _State.received is not None and _State.depth == 0:  # arrived while only recording
                raise Interrupted(_State.received)
        yield
    finally:
        _State.armed = was_armed
        _State.installed -= 1
        if _State.installed == 0:
            _State.received = None
        for sig, old in previous.items():
            signal.signal(sig, old)


def recording() -> contextlib.AbstractContextManager[None]:
    """Record SIGINT/SIGTERM/SIGHUP without raising (a command's argument parsing); the
    :func:`handlers_installed` block inside raises a recorded one as soon as it starts."""
    return _installed(arm=False)


def handlers_installed() -> contextlib.AbstractContextManager[None]:
    """Route SIGINT/SIGTERM/SIGHUP to :class:`Interrupted` for the duration of the block (main thread only)."""
    return _installed(arm=True)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold signals for the block; one that arrived is raised as :class:`Interrupted` when it ends."""
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
        if _State.depth == 0 and _State.received is not None and _State.armed:
            signum, _State.received = _State.received, None
            raise Interrupted(signum)


def pending() -> int | None:
    """The signal recorded inside a :func:`deferred` block, if any (for loops that should stop early)."""
    return _State.received


def detach_worker(parent_pid: int) -> None:
    """In a freshly started worker: ignore the stop signals and die when the parent does.

    The parent handles SIGINT/SIGTERM and stops its workers itself; a terminal's Ctrl-C (sent to the
    whole process group) therefore never cuts a worker's output in half. ``PR_SET_PDEATHSIG`` makes the
    kernel send SIGKILL when the parent dies, even by SIGKILL; if the parent died before the call took
    effect the worker exits at once.
    """
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    _State.depth, _State.armed, _State.installed, _State.received = 0, False, 0, None  # the parent's, not ours
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # WorkerPool blocks them across the fork
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)
