"""A small process pool that a signal can always stop, and whose workers never outlive the tool.

``concurrent.futures.ProcessPoolExecutor`` keeps a management thread, a feeder thread and locks shared
with its workers; a ``KeyboardInterrupt`` landing in the wrong place left tlt-augment's parent waiting
on a lock forever, and a SIGKILLed parent left its workers running. Here each worker has one pipe,
the parent has no threads, and everything runs under :func:`libtlt.interrupts.deferred`:

* workers ignore SIGINT/SIGTERM and get SIGKILL when the parent dies (``detach_worker``);
* on a signal the parent stops handing out tasks (queued ones are skipped, a shared flag tells the
  workers), lets running tasks finish for at most ``grace`` seconds, SIGKILLs what is left and raises
  :class:`~libtlt.interrupts.Interrupted`;
  :attr:`WorkerPool.abandoned` then lists the tasks that were in progress in a killed worker (their
  outputs may be incomplete; tasks queued behind them never started);
* on a task's error the running tasks finish (their outputs are whole) and the error is raised.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar, cast

from libtlt import interrupts

T = TypeVar("T")
R = TypeVar("R")

#: Seconds the running tasks get to finish after a signal before their workers are killed.
DEFAULT_GRACE = 1.0
_POLL = 0.05


def thread_map(func: Callable[[T], R], items: Iterable[T], threads: int) -> list[R]:
    """``[func(item) for item in items]`` on ``threads`` threads, in order.

    Why not ``with ThreadPoolExecutor() as pool: pool.map(...)``: leaving that block by an error or
    Ctrl-C waits until every *queued* call has run (minutes for a large image folder) before the
    interrupt is reported. Here queued calls are cancelled; only the running ones finish.
    """
    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        return list(pool.map(func, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class WorkerError(RuntimeError):
    """A worker raised an exception that could not be sent back as itself (its traceback is the message)."""


_OK, _FAILED, _SKIPPED = 0, 1, 2


def _worker_main(conn: Connection, func: Callable[[Any], Any], initializer: Callable[..., None] | None,
                 initargs: tuple[Any, ...], parent_pid: int, stop: Any) -> None:
    interrupts.detach_worker(parent_pid)
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        if stop.value:  # the parent is stopping: queued tasks are not started
            conn.send((_SKIPPED, None))
            continue
        try:
            reply: tuple[int, Any] = (_OK, func(message))
        except BaseException as err:  # every failure goes back to the parent
            reply = (_FAILED, err)
        try:
            conn.send(reply)
        except Exception:  # an unpicklable exception or result
            conn.send((_FAILED, WorkerError(traceback.format_exc())))


class WorkerPool(Generic[T, R]):
    """``workers`` forked processes running ``func``; :meth:`imap_unordered` yields results as they finish."""

    def __init__(self, func: Callable[[T], R], workers: int, *, initializer: Callable[..., None] | None = None,
                 initargs: tuple[Any, ...] = (), per_worker: int = 4, grace: float = DEFAULT_GRACE):
        self.func = func
        self.workers = workers
        self.initializer = initializer
        self.initargs = initargs
        self.per_worker = per_worker
        self.grace = grace
        self.abandoned: list[T] = []

    def imap_unordered(self, tasks: Iterable[T]) -> Iterator[R]:
        # fork: a worker starts in milliseconds with everything imported and nothing re-imported.
        context: Any = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        queue = iter(tasks)
        procs: list[Any] = []
        conns: list[Connection] = []
        outstanding: dict[Connection, deque[T]] = {}
        error: BaseException | None = None
        stop = context.RawValue("b", 0)  # shared with the workers: start no queued task
        with interrupts.deferred():
            try:
                for _ in range(self.workers):
                    parent_end, child_end = context.Pipe()
                    proc = context.Process(target=_worker_main, daemon=True,
                                           args=(child_end, self.func, self.initializer, self.initargs, os.getpid(), stop))
                    # Signals stay blocked across the fork, so a child never runs the parent's handler.
                    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, interrupts.SIGNALS)
                    try:
                        proc.start()
                    finally:
                        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                    child_end.close()
                    procs.append(proc)
                    conns.append(parent_end)
                    outstanding[parent_end] = deque()
                exhausted = False
                deadline: float | None = None
                while True:
                    while error is None and interrupts.pending() is None and not exhausted:
                        hungry = [c for c in conns if len(outstanding[c]) < self.per_worker]
                        if not hungry:
                            break
                        for conn in hungry:  # round robin: short task lists spread over all workers
                            task = next(queue, None)
                            if task is None:
                                exhausted = True
                                break
                            outstanding[conn].append(task)
                            conn.send(task)
                    busy = [c for c in conns if outstanding[c]]
                    if not busy:
                        break
                    timeout = _POLL
                    if error is not None or interrupts.pending() is not None:
                        stop.value = 1
                    if interrupts.pending() is not None:  # let running tasks finish, for a moment
                        deadline = deadline or time.monotonic() + self.grace
                        timeout = deadline - time.monotonic()
                        if timeout <= 0:
                            timeout = 0.0  # collect what is ready, then stop
                    for ready in wait(busy, timeout=min(timeout, _POLL)):
                        conn = cast(Connection, ready)
                        kind, value = self._receive(conn, outstanding, procs[conns.index(conn)])
                        if kind == _OK:
                            yield value
                        elif kind == _FAILED and error is None:
                            error = value
                    if deadline is not None and time.monotonic() >= deadline:
                        break
            finally:
                self._stop(procs, conns, outstanding)
        if error is not None:
            raise error

    def _receive(self, conn: Connection, outstanding: dict[Connection, deque[T]],
                 proc: Any) -> tuple[int, Any]:
        try:
            kind, value = conn.recv()
        except (EOFError, OSError):
            proc.join(1.0)
            lost = outstanding[conn][0]
            self.abandoned.append(lost)  # the rest of its queue never started
            outstanding[conn].clear()
            return _FAILED, WorkerError(f"a worker process died (exit code {proc.exitcode}) while working on {lost}")
        outstanding[conn].popleft()
        return kind, value

    def _stop(self, procs: list[Any], conns: list[Connection],
              outstanding: dict[Connection, deque[T]]) -> None:
        """Close the pipes (idle workers exit), SIGKILL any worker still busy, reap them all."""
        for conn in conns:
            if outstanding[conn]:
                self.abandoned.append(outstanding[conn][0])  # in progress; the rest never started
            else:
                with contextlib.suppress(OSError):
                    conn.send(None)
        for proc, conn in zip(procs, conns, strict=True):
            if outstanding[conn]:
                proc.kill()
        deadline = time.monotonic() + 1.0
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        for conn in conns:
            conn.close()
