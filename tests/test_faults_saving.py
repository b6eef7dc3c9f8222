"""Crashes and faults while saving (fast versions for CI): a save killed by SIGKILL at a random or a
chosen moment, stale temporaries, a full disk or a read-only folder. `bench/kill_during_save.py`
is the long version of the SIGKILL check."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile

import pytest
import torch

from vaeviz import ModelConfig, build_model, load_checkpoint, store
from vaeviz import checkpoint as ckpt
from vaeviz.checkpoint import find_checkpoints, remove_stale_temps, save_checkpoint

from .support.checkpoints import measured
from .support.faults import ROOT, temporaries, weights_equal

posix_only = pytest.mark.skipif(ckpt.fcntl is None, reason="file locks (fcntl) are POSIX only")


def META(model):
    return measured(model, metrics={"recon": 1.0})


@posix_only  # it forks
def test_sigkill_at_random_moments_never_leaves_a_listed_partial_file(tmp_path):
    """The benchmark's own checks, with a handful of kills (`bench/kill_during_save.py`)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.kill_during_save", "--trials", "10", "--dir", str(tmp_path / "k")],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "previous file intact (byte-identical, or wholly the new save): 10/10" in out.stdout
    assert "partial files listed): 0 of" in out.stdout
    assert "left after the next listing: 0" in out.stdout


KILLED_CHILD = r"""
import os, sys, time
from pathlib import Path
from vaeviz import ModelConfig, build_model
from vaeviz.checkpoint import save_checkpoint

where, path = sys.argv[1], Path(sys.argv[2])
model = build_model("vae", ModelConfig(arch="conv", latent_dim=16), seed=2)
real_write, real_replace = os.write, os.replace

def stop_here():
    print("stopped", flush=True)  # the parent kills us now
    time.sleep(600)

def write(fd, data):
    if where == "mid-write":
        real_write(fd, bytes(memoryview(data)[: len(data) // 3]))
        stop_here()
    return real_write(fd, data)

def replace(src, dst):
    if where == "before-rename":
        stop_here()
    return real_replace(src, dst)

os.write, os.replace = write, replace
save_checkpoint(model, path)
print("finished", flush=True)
"""


@posix_only
@pytest.mark.parametrize("where", ["mid-write", "before-rename"])
def test_sigkill_at_a_chosen_moment_leaves_the_previous_file(tmp_path, where):
    """A child stops itself mid-write (a third of the bytes written) or just before the rename and
    is killed there: the previous file is untouched, nothing partial is listed, and the listing
    removes the dead save's temporary."""
    old = build_model("vae", ModelConfig(arch="conv", latent_dim=16), seed=1)
    path = save_checkpoint(old, tmp_path / "model.safetensors", META(old))
    before = path.read_bytes()
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, where, str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT,
                             env=dict(os.environ))
    try:
        line = child.stdout.readline().strip()
        assert line == "stopped", child.stderr.read()
        (temp,) = temporaries(tmp_path)
        size = (tmp_path / temp).stat().st_size
        assert (size < len(before)) if where == "mid-write" else (size > 0)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert temporaries(tmp_path) == [temp]  # still there: nothing has looked at the folder yet
    assert find_checkpoints([tmp_path]) == [path]
    assert weights_equal(load_checkpoint(path), old)
    assert temporaries(tmp_path) == []  # the listing removed it


@posix_only
def test_stale_temporaries_go_but_a_live_save_s_stays(tmp_path, tiny_vae):
    path = save_checkpoint(tiny_vae, tmp_path / "m.safetensors", META(tiny_vae))
    dead = tmp_path / ".m.safetensors.abcd1234.part"
    dead.write_bytes(path.read_bytes()[:100])
    live = tmp_path / ".m.safetensors.live5678.part"
    live.write_bytes(b"being written")
    other = tmp_path / "notes.part"  # not one of ours: never touched
    other.write_text("mine")
    fd = os.open(live, os.O_RDONLY)
    try:
        ckpt.fcntl.flock(fd, ckpt.fcntl.LOCK_EX)  # as a save in progress holds it
        assert find_checkpoints([tmp_path]) == [path]
        assert not dead.exists() and live.exists() and other.exists()
    finally:
        os.close(fd)  # the writer died: its lock is gone
    save_checkpoint(tiny_vae, tmp_path / "n.safetensors", META(tiny_vae))  # a save tidies up too
    assert temporaries(tmp_path) == ["notes.part"]


@posix_only
def test_a_save_whose_temporary_a_cleaner_took_takes_another(tmp_path, tiny_vae, monkeypatch):
    """The race between a save that has just created its file (not yet locked) and a cleaner."""
    real_mkstemp, made = tempfile.mkstemp, []

    def mkstemp_then_a_cleaner_runs(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        made.append(name)
        if len(made) == 1:
            assert remove_stale_temps(tmp_path) == 1  # unlocked, so it looked dead and went
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_then_a_cleaner_runs)
    path = save_checkpoint(tiny_vae, tmp_path / "m.safetensors", META(tiny_vae))
    assert len(made) == 2
    assert weights_equal(load_checkpoint(path), tiny_vae)
    assert temporaries(tmp_path) == []


def test_overwrite_false_never_replaces_a_file(tmp_path, tiny_vae):
    path = save_checkpoint(tiny_vae, tmp_path / "m.safetensors", META(tiny_vae))
    before = path.read_bytes()
    other = build_model("vae", ModelConfig(arch="mlp", latent_dim=4, hidden=(32, 16)), seed=5)
    with pytest.raises(FileExistsError):
        save_checkpoint(other, path, META(other), overwrite=False)
    assert path.read_bytes() == before and temporaries(tmp_path) == []
    fresh = save_checkpoint(other, tmp_path / "n.safetensors", META(other), overwrite=False)
    assert weights_equal(load_checkpoint(fresh), other)


def test_checkpoint_bytes_need_no_disk_and_load_like_the_file(tmp_path, tiny_vae):
    data = ckpt.checkpoint_bytes(tiny_vae, META(tiny_vae))
    path = save_checkpoint(tiny_vae, tmp_path / "m.safetensors", META(tiny_vae))
    assert weights_equal(load_checkpoint(data), tiny_vae)
    assert len(data) == path.stat().st_size  # the same file, bar the creation time's digits


def test_a_model_with_nan_weights_is_not_saved(tmp_path, tiny_vae):
    with torch.no_grad():
        next(tiny_vae.parameters())[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        save_checkpoint(tiny_vae, tmp_path / "m.safetensors", META(tiny_vae))
    assert list(tmp_path.iterdir()) == []


def test_save_model_on_a_full_or_read_only_folder(fault, tiny_vae):
    tiny_vae.meta = META(tiny_vae)
    before = {k: v.clone() for k, v in tiny_vae.state_dict().items()}
    with pytest.raises(OSError) as info:
        store.save_model(tiny_vae, "new-model", folder=fault.folder)
    assert info.value.errno == (errno.ENOSPC if fault.kind == "full" else errno.EROFS)
    assert info.value.strerror == fault.strerror  # what the pages show
    fault.check_untouched()
    # The model in memory is as it was and still works.
    assert all(torch.equal(v, before[k]) for k, v in tiny_vae.state_dict().items())
    assert torch.isfinite(tiny_vae.decode(torch.zeros(2, 4))).all()
    fault.clear()
    path = store.save_model(tiny_vae, "new-model", folder=fault.folder)
    assert weights_equal(load_checkpoint(path), tiny_vae)
    assert temporaries(fault.folder) == []


