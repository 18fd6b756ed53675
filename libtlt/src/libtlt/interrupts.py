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

A stop signal always ends the process: ``run_tool`` exits with ``os._exit`` once its one line is written (no
interpreter shutdown, where TensorFlow's and multiprocessing's exit hooks can wait on threads forever), and a
watchdog thread, woken by the signal itself (``signal.set_wakeup_fd``, so even while the main thread is stuck in
native code), exits ``STOP_GRACE_SECONDS`` later if the main thread never got that far.

Worker processes call :func:`detach_worker`: they ignore the signals (the parent decides when work
stops) and die with their parent (``PR_SET_PDEATHSIG``), so no worker outlives a killed tool.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType

#: The signals that end a tool; SIGHUP is a closed terminal or ssh session.
SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_PR_SET_PDEATHSIG = 1

#: How long the clean-up after a stop signal may take before the watchdog ends the process regardless.
STOP_GRACE_SECONDS = 20.0


class Interrupted(KeyboardInterrupt):
    """The run was stopped by ``signum``; ``detail`` says what was done (e.g. frames completed)."""

    def __init__(self, signum: int, detail: str = "", *, delivered: bool = False):
        super().__init__(signum)
        self.signum = signum
        self.detail = detail
        #: Raised for a signal the process received (not constructed by code): ``run_tool`` then exits at once.
        self.delivered = delivered

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
        raise Interrupted(signum, delivered=True)


@contextlib.contextmanager
def _installed(arm: bool) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # A signal ignored when the tool started stays ignored: nohup's SIGHUP, a background job's SIGINT.
    previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN}
    was_armed = _State.armed
    watchdog = _Watchdog.start() if arm and not _State.armed else None
    _State.installed += 1
    try:
        if arm:
            _State.armed = True
            if _State.received is not None and _State.depth == 0:  # arrived while only recording
                raise Interrupted(_State.received, delivered=True)
        yield
    finally:
        _State.armed = was_armed
        _State.installed -= 1
        if _State.installed == 0:
            _State.received = None
        for sig, old in previous.items():
            signal.signal(sig, old)
        if watchdog is not None:
            watchdog.stop()


class _Watchdog:
    """Ends the process :data:`STOP_GRACE_SECONDS` after the first stop signal unless the armed block ends first.

    The signal module's C handler writes each signal's number into a pipe (``signal.set_wakeup_fd``) the moment
    it arrives, whatever the main thread is doing; this thread waits on that pipe. Why: the Python handler runs
    only when the main thread executes bytecode, and a clean-up that waits on a thread or lock forever must not
    keep a stopped tool alive (CI saw tlt-train ignore SIGTERM for a minute).
    """

    def __init__(self, read_fd: int, write_fd: int, previous_fd: int):
        self.read_fd, self.write_fd, self.previous_fd = read_fd, write_fd, previous_fd
        self.thread = threading.Thread(target=self._watch, name="tlt-stop-watchdog", daemon=True)

    @classmethod
    def start(cls) -> _Watchdog | None:
        if threading.current_thread() is not threading.main_thread():
            return None
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        try:
            previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        except ValueError:
            os.close(read_fd)
            os.close(write_fd)
            return None
        watchdog = cls(read_fd, write_fd, previous)
        watchdog.thread.start()
        return watchdog

    def stop(self) -> None:
        signal.set_wakeup_fd(self.previous_fd)
        os.close(self.write_fd)  # the thread reads end-of-file and returns
        self.thread.join(timeout=5)

    def _watch(self) -> None:
        stops = {int(sig) for sig in SIGNALS}
        first: int | None = None
        deadline = math.inf
        try:
            while True:
                wait = None if first is None else max(0.0, deadline - time.monotonic())
                ready, _, _ = select.select([self.read_fd], [], [], wait)
                if not ready:
                    assert first is not None
                    _exit_now(128 + first, f"{Interrupted(first).one_line()[:-1]}; the clean-up did not end within "
                                           f"{STOP_GRACE_SECONDS:.0f} s, so the process stops now.")
                data = os.read(self.read_fd, 64)
                if not data:
                    return
                if first is None and stops.intersection(data):
                    first = next(number for number in data if number in stops)
                    deadline = time.monotonic() + STOP_GRACE_SECONDS
        finally:
            os.close(self.read_fd)


def _exit_now(status: int, line: str = "") -> None:
    """Write ``line``, flush what the logs and streams hold, and end the process without interpreter shutdown."""
    import logging

    if line:
        with contextlib.suppress(OSError):
            os.write(2, (line + "\n").encode())
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        for handler in logging.getLogger().handlers:
            handler.flush()
    os._exit(status)


def exit_after(stopped: Interrupted) -> None:
    """The end of a tool stopped by ``stopped``: a delivered signal exits at once with ``128 + signal`` (the
    outputs are already whole or absent; what remains is interpreter shutdown, whose exit hooks can wait on
    TensorFlow's or a pool's threads forever); one raised by code (a test, ``KeyboardInterrupt`` in-process)
    exits through ``SystemExit`` as usual."""
    if stopped.delivered:
        _exit_now(stopped.exit_status)
    sys.exit(stopped.exit_status)


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
            raise Interrupted(signum, delivered=True)


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
