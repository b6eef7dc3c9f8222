"""Heavy work once per server: a task asked for by thirty sessions at once runs once, its progress is
estimated from the last task of its kind, and the pool stays bounded."""

from __future__ import annotations

import threading
import time

import pytest

from vaeviz.tasks import TaskPool


def test_thirty_sessions_asking_at_once_start_one_computation():
    pool = TaskPool()
    runs = []

    def work():
        runs.append(1)
        time.sleep(0.3)
        return "the map"

    tasks, barrier = [], threading.Barrier(30)

    def session():
        barrier.wait()
        tasks.append(pool.submit("tsne:model:mnist:2000", "t-SNE", 2000, work))

    threads = [threading.Thread(target=session) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(t) for t in tasks}) == 1  # one task object for everyone
    assert tasks[0].wait(5) == "the map" and runs == [1]


def test_progress_is_estimated_from_the_last_task_of_its_kind():
    pool = TaskPool(seconds_per_unit={"t-SNE": 0.001})
    first = pool.submit("a", "t-SNE", 200, lambda: time.sleep(0.2))
    assert first.estimate_s == pytest.approx(0.2)
    assert 0 <= first.fraction <= 0.95
    first.wait(5)
    assert first.fraction == 1.0
    second = pool.submit("b", "t-SNE", 400, lambda: None)
    assert second.estimate_s == pytest.approx(2 * first.elapsed_s, rel=0.01)  # learnt: seconds per code


def test_a_failed_task_says_why_and_is_tried_again():
    pool = TaskPool()
    failing = pool.submit("x", "t-SNE", 1, lambda: 1 / 0)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        failing.wait(5)
    assert pool.submit("x", "t-SNE", 1, lambda: "fine").wait(5) == "fine"


def test_the_pool_keeps_at_most_its_limit_of_finished_tasks():
    pool = TaskPool(limit=4)
    for i in range(10):
        pool.submit(f"k{i}", "t-SNE", 1, lambda: None).wait(5)
    assert sum(pool.get(f"k{i}") is not None for i in range(10)) <= 5
    assert pool.get("k9") is not None
