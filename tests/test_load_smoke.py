"""Many users at once, in small: bench/load_test.py with three browser sessions, and what it found.

`test_three_sessions_at_once` runs the load test itself (three Chromium contexts for 15 s, one of them
uploading and training) and asserts what must hold on any machine: no error of any kind and no
session seeing another's run, models or drawing. It prints the bench's figures but asserts no time.

`test_sockets_lecture_hall_in_small` runs its websocket mode (four light sessions, three of which
train: one job runs, one is cancelled in the queue, one leaves the queue with its browser) and
`test_two_replicas_save_at_once` runs bench/replicas.py (two servers, one user folder, colliding
saves); both assert what must hold (no error, the queue's rules, nothing lost or torn), no time.

`test_pandas_is_whole_before_any_page_runs` guards the race that the ten-session load test found:
plotly reads `sys.modules["pandas"]` without importing it, so a figure built while another session
imported pandas for the first time failed. `vaeviz.ui.models`, which every page imports first,
imports pandas itself; a fresh interpreter shows it is then complete.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .support.browser import CHROMIUM
from .conftest import ROOT


def test_pandas_is_whole_before_any_page_runs():
    code = ("import sys, vaeviz.ui.cache; p = sys.modules.get('pandas'); "
            "print(p is not None and hasattr(p, 'Series') and hasattr(p, 'Index'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.browser
@pytest.mark.slow
def test_three_sessions_at_once(data_root):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser at {CHROMIUM}")
    cmd = [sys.executable, "-m", "bench.load_test", "--mode", "browser", "--sessions", "3", "--seconds", "15",
           "--train-images", "1000", "--train-epochs", "1", "--timeout", "120"]
    env = {**os.environ, "VAEVIZ_DATA_DIR": str(data_root)}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    print(out.stdout)  # the figures, for -s
    assert "errors: 0" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
    assert "isolation: ok (2 other sessions" in out.stdout, out.stdout[-3000:]
    assert out.returncode == 0, out.stderr[-3000:]
    for kind in ("slider", "draw", "upload", "train start"):
        assert f"{kind} " in out.stdout.split("actions: ", 1)[1].splitlines()[0], kind  # each kind was done


@pytest.mark.slow
def test_sockets_lecture_hall_in_small(data_root):
    # Five epochs (several seconds a job): the first job must still be running when the second trainer,
    # queued behind it, leaves after 2 s (bench.load_sockets.LEAVE_AFTER_S); one epoch was sometimes done first.
    cmd = [sys.executable, "-m", "bench.load_test", "--mode", "sockets", "--sessions", "4", "--trainers", "3",
           "--seconds", "8", "--think", "0.5", "--train-images", "1000", "--train-epochs", "5", "--stagger", "0.5",
           "--cancel-after", "1", "--timeout", "120"]
    env = {**os.environ, "VAEVIZ_DATA_DIR": str(data_root)}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    print(out.stdout)
    assert "errors: 0" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
    assert "problems:" not in out.stdout, out.stdout[-3000:]
    assert out.returncode == 0, out.stderr[-3000:]
    actions = out.stdout.split("actions: ", 1)[1].splitlines()[0]
    for kind in ("slider", "page switch", "train start", "train cancel", "train leave", "come back"):
        assert f"{kind} " in actions, kind
    assert "trainer 2 (cancelled): " in out.stdout and "> cancelled" in out.stdout, out.stdout[-3000:]


@pytest.mark.slow
def test_two_replicas_save_at_once(data_root):
    cmd = [sys.executable, "-m", "bench.replicas", "--savers", "2", "--rounds", "1", "--timeout", "120"]
    env = {**os.environ, "VAEVIZ_DATA_DIR": str(data_root)}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    print(out.stdout)
    assert "problems: 0" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.returncode == 0, out.stderr[-3000:]
    assert "3 saved, 1 refused" in out.stdout, out.stdout[-3000:]
    for replica in "AB":
        assert f"replica {replica}: a fresh session's Model box lists 3 of the 3 saved models" in out.stdout
