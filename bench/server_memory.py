"""The app server's memory, read from /proc: find the `streamlit run` process by its port, sum the
resident memory of it and its children, and sample that in a background thread (start, peak, last);
CPU time used by a set of processes.

Shared by bench/load_test.py and bench/upload_memory.py; Linux only, no dependency beyond the
standard library.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PROC = Path("/proc")


def _cmdline(pid: int) -> list[str]:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _parent(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after the last ")".
    return int(stat.rsplit(")", 1)[1].split()[1])


def _pids() -> list[int]:
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]


def server_pid(url: str, timeout: float = 10.0) -> int:
    """The pid of the `streamlit run` serving `url` (http://127.0.0.1:PORT), found by its --server.port."""
    port = url.rstrip("/").rsplit(":", 1)[1]
    deadline = time.monotonic() + timeout
    while True:
        for pid in _pids():
            args = _cmdline(pid)
            if "streamlit" in " ".join(args) and "--server.port" in args:
                i = args.index("--server.port")
                if i + 1 < len(args) and args[i + 1] == port:
                    return pid
        if time.monotonic() > deadline:
            raise RuntimeError(f"no streamlit process listens on port {port}")
        time.sleep(0.2)


def tree(root: int) -> set[int]:
    """`root` and all its descendants (those alive now)."""
    parents = {pid: _parent(pid) for pid in _pids()}
    found, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid and c not in found]
        found.update(children)
        frontier.extend(children)
    return found


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU time the processes `pids` have used so far (those alive now)."""
    ticks = 0
    for pid in pids:
        try:
            fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss(root: int) -> int:
    """Resident memory (bytes) of `root` and all its descendants; 0 once it has exited."""
    total = 0
    for pid in tree(root):
        try:
            for line in (PROC / str(pid) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024  # kB
                    break
        except OSError:
            pass  # exited meanwhile
    return total


class RssSampler(threading.Thread):
    """Samples `tree_rss(pid)` every `interval` seconds until `stop()`; keeps the first, peak and last."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.first = self.peak = self.last = tree_rss(pid)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def sample(self) -> int:
        rss = tree_rss(self.pid)
        if rss:
            self.last = rss
            self.peak = max(self.peak, rss)
        return rss

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.0f} MiB"
