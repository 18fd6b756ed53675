"""libtlt.workers.WorkerPool with real forked processes: results, errors, a dying worker, a signal."""

from __future__ import annotations

import os
import signal
import time

import pytest

from libtlt import interrupts
from libtlt.workers import WorkerError, WorkerPool, thread_map


def _square_or_fail(task: int) -> int:
    if task == 7:
        raise ValueError("task 7 is bad")
    if task == 9:
        os._exit(3)
    time.sleep(0.01)
    return task * task


def _slow(task: int) -> int:
    time.sleep(0.05 if task < 1000 else 30)
    return task


def test_results_of_every_task() -> None:
    pool: WorkerPool[int, int] = WorkerPool(_square_or_fail, 3)
    assert sorted(pool.imap_unordered(range(7))) == [i * i for i in range(7)]
    assert pool.abandoned == []


def test_a_task_error_is_raised_after_running_tasks_finish() -> None:
    pool: WorkerPool[int, int] = WorkerPool(_square_or_fail, 2)
    results: list[int] = []
    with pytest.raises(ValueError, match="task 7 is bad"):
        results.extend(pool.imap_unordered(range(8)))
    assert set(results) <= {i * i for i in range(7)} and len(results) >= 5


def test_a_dying_worker_is_an_error_naming_its_task() -> None:
    pool: WorkerPool[int, int] = WorkerPool(_square_or_fail, 2)
    with pytest.raises(WorkerError, match=r"exit code 3\) while working on 9"):
        list(pool.imap_unordered([1, 9, 2]))
    assert pool.abandoned == [9]


def test_a_signal_stops_the_pool_within_the_grace_period() -> None:
    """Tasks in progress get ``grace`` seconds; a task that would take 30 s is killed and reported."""
    pool: WorkerPool[int, int] = WorkerPool(_slow, 2, grace=0.5)
    done: list[int] = []
    started = time.monotonic()
    with interrupts.handlers_installed(), pytest.raises(interrupts.Interrupted) as raised:
        for result in pool.imap_unordered([1, 2, 1000, 3, 4, 5, 6]):
            done.append(result)
            if len(done) == 2:
                os.kill(os.getpid(), signal.SIGTERM)
    assert raised.value.exit_status == 143
    assert time.monotonic() - started < 3.0
    assert pool.abandoned == [1000]


def _check(item: int) -> int:
    if item == 0:
        raise ValueError("item 0 is bad")
    time.sleep(0.02)
    return item


def test_thread_map_keeps_order_and_cancels_queued_calls_on_error() -> None:
    assert thread_map(_check, range(1, 9), 3) == list(range(1, 9))
    started = time.monotonic()
    with pytest.raises(ValueError, match="item 0 is bad"):
        thread_map(_check, range(400), 2)  # 400 × 20 ms on 2 threads would take 4 s
    assert time.monotonic() - started < 1.0
