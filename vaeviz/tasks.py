"""Heavy work done once per server, in the background, with a progress estimate: t-SNE maps, say.

A `TaskPool` runs each task (a key and a function) at most once, in a daemon thread of its own, and
keeps the result for every session that asks later; thirty sessions opening the same map wait for
one computation. A task knows when it started and how long it is expected to take (from the last
tasks of its kind: seconds per unit of work), so a page can show an honest progress bar while it
runs. The pool is bounded: beyond `limit` finished tasks, the oldest results go. No streamlit.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Task:
    key: str
    kind: str
    size: float  # units of work (codes to embed, say): what the estimate scales with
    started: float = field(default_factory=time.monotonic)
    estimate_s: float | None = None
    finished: float | None = None
    result: Any = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def fraction(self) -> float:
        """Progress, estimated from the elapsed time (at most 0.95 until it is done)."""
        if self.done.is_set():
            return 1.0
        if not self.estimate_s:
            return 0.0
        return min(self.elapsed_s / self.estimate_s, 0.95)

    def wait(self, timeout: float | None = None) -> Any:
        """The result, once done (RuntimeError if the task failed, TimeoutError if still running)."""
        if not self.done.wait(timeout):
            raise TimeoutError(f"{self.kind} is still running")
        if self.error is not None:
            raise RuntimeError(self.error)
        return self.result


class TaskPool:
    """Run each keyed task once, in the background; keep results for everyone who asks."""

    def __init__(self, limit: int = 64, seconds_per_unit: dict[str, float] | None = None) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._tasks: dict[str, Task] = {}
        self._rate = dict(seconds_per_unit or {})  # kind -> measured seconds per unit of work

    def get(self, key: str) -> Task | None:
        with self._lock:
            return self._tasks.get(key)

    def submit(self, key: str, kind: str, size: float, fn: Callable[[], Any]) -> Task:
        """The task for `key`: the one already there (running or done), else `fn` started now."""
        with self._lock:
            task = self._tasks.get(key)
            if task is not None and task.error is None:
                return task
            rate = self._rate.get(kind)
            task = Task(key, kind, size, estimate_s=rate * size if rate else None)
            self._tasks[key] = task
            self._evict()
        threading.Thread(target=self._run, args=(task, fn), name=f"vaeviz-{kind}", daemon=True).start()
        return task

    def _run(self, task: Task, fn: Callable[[], Any]) -> None:
        try:
            task.result = fn()
        except Exception as exc:  # reported to whoever waits, not lost in a thread
            task.error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            task.finished = time.monotonic()
            if task.error is None and task.size > 0:
                with self._lock:
                    self._rate[task.kind] = task.elapsed_s / task.size  # the next estimate learns from this one
            task.done.set()

    def _evict(self) -> None:
        finished = [k for k, t in self._tasks.items() if t.done.is_set()]
        while len(self._tasks) > self.limit and finished:
            del self._tasks[finished.pop(0)]
