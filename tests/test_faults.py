"""Crashes and faults (issue 6), fast versions for CI: a save killed by SIGKILL, a full disk or a
read-only folder when saving, a run that diverges, and a data folder that is missing, empty or
holds corrupt files.

Full and read-only folders are made two ways. Where this process may mount (root with
CAP_SYS_ADMIN, as on this project's machine), a small tmpfs is really filled up or remounted
read-only, so the kernel itself says ENOSPC or EROFS. Everywhere, the same errors are also
injected at the os level (`os.write` runs out of space part-way; `os.open` and friends refuse to
write in the folder), which exercises the same code paths where mounting is not allowed; `chmod`
cannot be used, since root ignores permissions. The shared data folder is only ever read: bad data folders are built in
`tmp_path` from small slices of it.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import gzip
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vaeviz import ModelConfig, TrainConfig, build_model, evaluate, fit, load_checkpoint, load_split
from vaeviz import checkpoint as ckpt
from vaeviz.checkpoint import find_checkpoints, remove_stale_temps, save_checkpoint
from vaeviz.data import DataUnavailable, read_idx
from vaeviz.ui import jobs, store
from vaeviz.ui.jobs import RunSpec, TrainingJob

from .apptest import open_app

ROOT = Path(__file__).resolve().parent.parent
SESSION_MODELS = "vaeviz_session_models"
META = {"dataset": "mnist", "metrics": {"recon": 1.0}}
EXPLORER_PAGES = ["pages/explorer.py", "pages/latent_map.py", "pages/interpolate.py", "pages/draw.py"]
posix_only = pytest.mark.skipif(ckpt.fcntl is None, reason="file locks (fcntl) are POSIX only")


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def weights_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(v).all() for v in model.state_dict().values())


# --- SIGKILL while saving ------------------------------------------------------------------------


@posix_only  # it forks
def test_sigkill_at_random_moments_never_leaves_a_listed_partial_file(tmp_path):
    """The benchmark's own checks, with a handful of kills (`bench/kill_during_save.py`)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "kill_during_save.py"), "--trials", "10", "--dir", str(tmp_path / "k")],
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
save_checkpoint(model, path, {"dataset": "mnist"})
print("finished", flush=True)
"""


@posix_only
@pytest.mark.parametrize("where", ["mid-write", "before-rename"])
def test_sigkill_at_a_chosen_moment_leaves_the_previous_file(tmp_path, where):
    """A child stops itself mid-write (a third of the bytes written) or just before the rename and
    is killed there: the previous file is untouched, nothing partial is listed, and the listing
    removes the dead save's temporary."""
    old = build_model("vae", ModelConfig(arch="conv", latent_dim=16), seed=1)
    path = save_checkpoint(old, tmp_path / "model.safetensors", META)
    before = path.read_bytes()
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, where, str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
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
    path = save_checkpoint(tiny_vae, tmp_path / "m.safetensors", META)
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
    save_checkpoint(tiny_vae, tmp_path / "n.safetensors", META)  # a save tidies up too
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
    path = save_checkpoint(tiny_vae, tmp_path / "m.safetensors", META)
    assert len(made) == 2
    assert weights_equal(load_checkpoint(path), tiny_vae)
    assert temporaries(tmp_path) == []


def test_overwrite_false_never_replaces_a_file(tmp_path, tiny_vae):
    path = save_checkpoint(tiny_vae, tmp_path / "m.safetensors", META)
    before = path.read_bytes()
    other = build_model("vae", ModelConfig(arch="mlp", latent_dim=4, hidden=(32, 16)), seed=5)
    with pytest.raises(FileExistsError):
        save_checkpoint(other, path, META, overwrite=False)
    assert path.read_bytes() == before and temporaries(tmp_path) == []
    fresh = save_checkpoint(other, tmp_path / "n.safetensors", META, overwrite=False)
    assert weights_equal(load_checkpoint(fresh), other)


def test_checkpoint_bytes_need_no_disk_and_load_like_the_file(tmp_path, tiny_vae):
    data = ckpt.checkpoint_bytes(tiny_vae, META)
    path = save_checkpoint(tiny_vae, tmp_path / "m.safetensors", META)
    assert weights_equal(load_checkpoint(data), tiny_vae)
    assert len(data) == path.stat().st_size  # the same file, bar the creation time's digits


def test_a_model_with_nan_weights_is_not_saved(tmp_path, tiny_vae):
    with torch.no_grad():
        next(tiny_vae.parameters())[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        save_checkpoint(tiny_vae, tmp_path / "m.safetensors", META)
    assert list(tmp_path.iterdir()) == []


# --- a full disk or a read-only folder when saving --------------------------------------------------


@functools.lru_cache(maxsize=None)
def mount_refused() -> str | None:
    """None if this process may mount a tmpfs, else why not."""
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "no mount command"
    probe = Path(tempfile.mkdtemp(prefix="vaeviz-mount-probe-"))
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return f"mounting is not permitted here: {done.stderr.strip() or done.returncode}"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    finally:
        probe.rmdir()


class FolderFault:
    """A folder holding one good checkpoint that then fills up ("full") or turns read-only.

    `mechanism` "mount": a real tmpfs (8 MB), filled with a filler file or remounted read-only.
    "injected": os-level errors for this folder only; `os.write` accepts 32 kB, then ENOSPC (a
    disk filling up part-way through a file); `os.open` for writing, `mkdir`, `rename`, `link`,
    `unlink` and `chmod` raise EROFS. `clear()` removes the fault; `close()` also unmounts.
    """

    def __init__(self, kind: str, mechanism: str, folder: Path) -> None:
        self.kind, self.mechanism, self.folder = kind, mechanism, folder
        self.patch = pytest.MonkeyPatch()
        self.mounted = False

    def start(self) -> None:
        self.folder.mkdir(parents=True)
        if self.mechanism == "mount":
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(self.folder)], check=True)
            self.mounted = True
        self.previous_model = build_model("vae", ModelConfig(arch="mlp", latent_dim=4, hidden=(32, 16)), seed=3)
        self.previous = save_checkpoint(self.previous_model, self.folder / "previous.safetensors", META)
        self.previous_bytes = self.previous.read_bytes()
        getattr(self, f"_{self.mechanism}_{self.kind.replace('-', '_')}")()

    @property
    def strerror(self) -> str:
        return os.strerror(errno.ENOSPC if self.kind == "full" else errno.EROFS)

    def _mount_full(self) -> None:
        with open(self.folder / "filler", "wb", buffering=0) as f:  # 64 kB, then 4 kB pieces: under a page is left
            for size in (1 << 16, 1 << 12):
                try:
                    while True:
                        f.write(b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc

    def _mount_read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.folder)], check=True)

    def _inside(self, path) -> bool:
        try:
            real = os.path.realpath(os.fspath(path))
        except TypeError:  # a file descriptor
            return False
        base = os.path.realpath(self.folder)
        return real == base or real.startswith(base + os.sep)

    def _refuse(self, path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    def _injected_read_only(self) -> None:
        real = {name: getattr(os, name) for name in ("open", "mkdir", "replace", "rename", "link", "unlink",
                                                      "remove", "rmdir", "chmod")}
        writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

        def open_(path, flags, *args, **kwargs):
            if flags & writing and self._inside(path):
                self._refuse(path)
            return real["open"](path, flags, *args, **kwargs)

        def mkdir(path, *args, **kwargs):
            if self._inside(path):
                if os.path.exists(path):
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(path))
                self._refuse(path)
            return real["mkdir"](path, *args, **kwargs)

        def two_paths(name):
            def call(src, dst, *args, **kwargs):
                if self._inside(src) or self._inside(dst):
                    self._refuse(dst)
                return real[name](src, dst, *args, **kwargs)
            return call

        def one_path(name):
            def call(path, *args, **kwargs):
                if self._inside(path):
                    self._refuse(path)
                return real[name](path, *args, **kwargs)
            return call

        self.patch.setattr(os, "open", open_)
        self.patch.setattr(os, "mkdir", mkdir)
        for name in ("replace", "rename", "link"):
            self.patch.setattr(os, name, two_paths(name))
        for name in ("unlink", "remove", "rmdir", "chmod"):
            self.patch.setattr(os, name, one_path(name))

    def _injected_full(self) -> None:
        real_write, budget = os.write, [32 * 1024]

        def in_folder(fd: int) -> bool:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return False
            return any(e.inode() == st.st_ino for e in os.scandir(self.folder)) and \
                os.stat(self.folder).st_dev == st.st_dev

        def write(fd, data):
            if in_folder(fd):
                if budget[0] <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                n = min(len(data), budget[0])
                budget[0] -= n
                return real_write(fd, memoryview(data)[:n])
            return real_write(fd, data)

        self.patch.setattr(os, "write", write)

    def clear(self) -> None:
        self.patch.undo()
        if self.mechanism == "mount" and self.kind == "full":
            (self.folder / "filler").unlink()
        elif self.mechanism == "mount":
            subprocess.run(["mount", "-o", "remount,rw", str(self.folder)], check=True)

    def close(self) -> None:
        self.patch.undo()
        if self.mounted:
            if subprocess.run(["umount", str(self.folder)]).returncode != 0:
                subprocess.run(["umount", "-l", str(self.folder)])

    def check_untouched(self) -> None:
        """Only the previous checkpoint (and a mount's filler) is there, byte-identical, and loads."""
        assert self.previous.read_bytes() == self.previous_bytes
        assert temporaries(self.folder) == []
        assert find_checkpoints([self.folder]) == [self.previous]
        assert weights_equal(load_checkpoint(self.previous), self.previous_model)


def make_fault(request, tmp_path, kind: str, mechanism: str) -> FolderFault:
    if mechanism == "mount" and mount_refused():
        pytest.skip(mount_refused())
    fault = FolderFault(kind, mechanism, tmp_path / f"{kind}-{mechanism}")
    request.addfinalizer(fault.close)  # before start(): a mount is undone even if setting up fails
    fault.start()
    return fault


@pytest.fixture(params=[("full", "mount"), ("full", "injected"), ("read-only", "mount"), ("read-only", "injected")],
                ids=lambda p: "-".join(p))
def fault(request, tmp_path):
    return make_fault(request, tmp_path, *request.param)


@pytest.fixture(params=["full", "read-only"])
def page_fault(request, tmp_path):
    """A real mount where this process may mount, else the injected fault."""
    return make_fault(request, tmp_path, request.param, "injected" if mount_refused() else "mount")


def test_save_model_on_a_full_or_read_only_folder(fault, tiny_vae):
    tiny_vae.meta = dict(META)
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


# --- the Trainer page --------------------------------------------------------------------------------


def trainer_page():
    return open_app("pages/trainer.py")


def run_until(at, predicate, timeout: float = 180.0) -> None:
    """Rerun the page (as its polling fragment does) until predicate() holds."""
    deadline = time.monotonic() + timeout
    while True:
        at.run()
        assert not at.exception, at.exception
        if predicate():
            at.run()
            assert not at.exception, at.exception
            return
        assert time.monotonic() < deadline, "the training job did not finish"
        time.sleep(0.3)


def train_on_digits(at, epochs: int = 1) -> None:
    """A real run that takes seconds: scikit-learn's digits (no files needed), one epoch."""
    at.selectbox(key="trainer_dataset").set_value("digits")
    at.number_input(key="trainer_epochs").set_value(epochs)
    at.button(key="trainer_start").click()
    run_until(at, lambda: not at.session_state["trainer_job"].view().active)


def trained_here(at) -> list:
    return [(ref, model) for ref, model in at.session_state[SESSION_MODELS].values() if "trained here" in ref.label]


def save_into_the_fault(at, page_fault, name_key: str, button_key: str, name: str) -> None:
    """Save as `name` with a page's name box and button; the page must say why it could not."""
    at.text_input(key=name_key).set_value(name)
    at.button(key=button_key).click()
    at.run()
    assert not at.exception, at.exception
    (error,) = [e.value for e in at.error]
    assert f"Could not write to {page_fault.folder}: {page_fault.strerror}" in error
    assert "stays usable in this session" in error
    page_fault.check_untouched()


def test_trainer_page_save_on_a_full_or_read_only_folder(page_fault, monkeypatch):
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(page_fault.folder))
    at = trainer_page()
    train_on_digits(at)
    job = at.session_state["trainer_job"]
    assert job.view().status == "done", job.view().message
    save_into_the_fault(at, page_fault, "trainer_save_name", "trainer_save", "after-the-fault")
    assert not at.button(key="trainer_save").disabled  # it can be tried again

    # Still usable: it is in the sidebar, and the explorer draws it.
    ((ref, model),) = trained_here(at)
    box = at.selectbox(key="model_key")
    box.select_index(list(box.options).index(ref.label)).run()
    at.switch_page("pages/explorer.py")
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["model_key"] == ref.key and at.get("image")

    # The fault goes away: the same model saves, from the Trainer page again.
    page_fault.clear()
    at.switch_page("pages/trainer.py")
    at.run()
    at.text_input(key="trainer_save_name").set_value("after-the-fault")
    at.button(key="trainer_save").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    saved = page_fault.folder / "after-the-fault.safetensors"
    assert weights_equal(load_checkpoint(saved), model)
    assert trained_here(at) == []  # the saved file took the session copy's place in the sidebar


def test_zoo_save_on_a_full_or_read_only_folder(page_fault, monkeypatch, tiny_vae):
    """The zoo saves uploaded (and trained) models the same way: a clear message, the model kept."""
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(page_fault.folder))
    at = open_app("pages/zoo.py")
    upload = ckpt.checkpoint_bytes(tiny_vae, META)
    at.file_uploader(key="zoo_upload_0").set_value(("friends-vae.safetensors", upload, "application/octet-stream"))
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    save_into_the_fault(at, page_fault, "zoo_save_name", "zoo_save", "friends-vae")
    labels = [ref.label for ref, _ in at.session_state[SESSION_MODELS].values()]
    assert labels == ["friends-vae (uploaded)"]  # still listed, still the details shown
    assert at.selectbox(key="zoo_details").value == next(iter(at.session_state[SESSION_MODELS]))

    page_fault.clear()
    at.text_input(key="zoo_save_name").set_value("friends-vae")
    at.button(key="zoo_save").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert weights_equal(load_checkpoint(page_fault.folder / "friends-vae.safetensors"), tiny_vae)


def test_a_save_click_for_a_run_that_is_gone_saves_nothing(tmp_path, monkeypatch):
    """Save clicked on a page drawn before Start replaced the run: it raised IndexError."""
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(tmp_path / "user"))
    at = trainer_page()
    train_on_digits(at)
    at.session_state["trainer_job"] = TrainingJob([RunSpec(dataset="digits", latent_dim=2, epochs=1)])  # not started
    at.button(key="trainer_save").click()  # the button of the page as drawn for the finished run
    at.run()
    assert not at.exception, at.exception
    assert any("no longer here" in e.value for e in at.error), [e.value for e in at.error]
    assert not (tmp_path / "user").exists() or list((tmp_path / "user").iterdir()) == []


# --- a run that diverges -------------------------------------------------------------------------


def test_a_diverging_fit_stops_and_keeps_finite_weights(mnist_slice, tiny_vae):
    train, test = mnist_slice
    snapshots = []
    history = fit(tiny_vae, train, TrainConfig(epochs=2, lr=10.0, log_every=5, device="cpu"), test=test,
                  on_step=lambda info: snapshots.append(info["step"]))
    assert history.diverged and "last good weights were restored" in history.diverged
    assert "smaller learning rate" in history.diverged
    assert history.steps == [] or history.steps[-1]["step"] == snapshots[-1]  # stopped at the bad window
    assert len(history.epochs) < 2  # it did not go on training
    assert finite(tiny_vae)
    assert np.isfinite(evaluate(tiny_vae, test.images)["neg_elbo"])


def test_a_diverging_fit_restores_weights_whose_loss_was_seen_finite(mnist_slice, tiny_vae):
    """With one step a window (as the Trainer uses for small runs) the restored weights must be
    ones a finite loss was computed from, not the update that produced the NaN."""
    train, test = mnist_slice
    history = fit(tiny_vae, train, TrainConfig(epochs=1, lr=10.0, log_every=1, device="cpu"))
    assert history.diverged
    assert np.isfinite(evaluate(tiny_vae, train.images[:500])["neg_elbo"])


def test_a_diverged_job_keeps_a_model_that_can_be_measured_and_saved(tmp_path):
    job = TrainingJob([RunSpec(dataset="digits", latent_dim=2, epochs=2, lr=10.0)], threads=1).start()
    assert job.join(120)
    view = job.view()
    assert view.status == "diverged" and "last good weights were restored" in view.message
    (result,) = view.results
    assert finite(result.model) and np.isfinite(result.metrics["neg_elbo"])
    path = store.save_model(result.model, "diverged", folder=tmp_path)
    assert weights_equal(load_checkpoint(path), result.model)


def test_non_finite_live_pictures_never_fail_the_run(monkeypatch):
    """Weights on their way to diverging can give NaN codes between two checks of the loss; the
    live map's PCA raised on them, ending the run as 'failed' and losing the model."""
    real_build = jobs.build_model

    def build_with_nan_codes_in_eval(kind, cfg, seed=None):
        model = real_build(kind, cfg, seed=seed)
        real_encode = model.encode

        def encode(x):
            mu, logvar = real_encode(x)
            return (mu if model.training else mu * float("nan")), logvar  # training itself stays sound

        model.encode = encode
        return model

    monkeypatch.setattr(jobs, "build_model", build_with_nan_codes_in_eval)
    job = TrainingJob([RunSpec(dataset="digits", latent_dim=8, epochs=1)], threads=1, snapshot_every_s=0.0).start()
    assert job.join(120)
    view = job.view()
    assert view.status == "done", view.message
    assert len(view.results) == 1 and finite(view.results[0].model)
    assert "map_xy" not in view.visuals  # no picture of NaN codes was drawn


def test_trainer_page_reports_a_diverging_run(tmp_path, monkeypatch):
    """An absurd learning rate (10; the page offers at most 0.01) blows the loss up for real."""
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(tmp_path / "user"))
    real_fit = jobs.fit
    monkeypatch.setattr(jobs, "fit",
                        lambda model, data, cfg, **kw: real_fit(model, data, dataclasses.replace(cfg, lr=10.0), **kw))
    at = trainer_page()
    train_on_digits(at, epochs=3)
    view = at.session_state["trainer_job"].view()
    assert view.status == "diverged" and view.progress["epoch"] <= 1
    errors = [e.value for e in at.error]
    assert any("The run diverged: the loss became nan" in e and "last good weights" in e for e in errors), errors
    ((ref, model),) = trained_here(at)  # kept, in the sidebar, with finite weights
    assert finite(model)
    assert not at.button(key="trainer_start").disabled  # a new run can start
    assert at.button(key="trainer_save") is not None


# --- data folders that are missing, empty or corrupt ----------------------------------------------


def write_idx(path: Path, array: np.ndarray, *, count: int | None = None, magic: bytes | None = None) -> bytes:
    """An IDX file: magic (0, 0, 8, ndim), big-endian sizes (the first one overridable), bytes."""
    array = np.asarray(array, dtype=np.uint8)
    shape = list(array.shape)
    if count is not None:
        shape[0] = count
    data = (magic or bytes([0, 0, 8, array.ndim])) + b"".join(int(s).to_bytes(4, "big") for s in shape)
    data += array.tobytes()
    path.write_bytes(data)
    return data


@pytest.fixture(scope="module")
def real_slice() -> tuple[np.ndarray, np.ndarray]:
    """60 real MNIST test images and labels (read, never written: the shared folder stays as it is)."""
    env = os.environ.get("VAEVIZ_DATA_DIR")
    raw = Path(env or ROOT / "data") / "MNIST" / "raw"
    if not (raw / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("real MNIST not found: set VAEVIZ_DATA_DIR")
    return read_idx(raw / "t10k-images-idx3-ubyte", 3)[:60], read_idx(raw / "t10k-labels-idx1-ubyte", 1)[:60]


def good_folder(root: Path, real_slice, *, train: bool = True) -> Path:
    """root/MNIST/raw with a small real slice as both splits (train: the same images)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images, labels = real_slice
    for prefix in ("t10k", "train") if train else ("t10k",):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return raw


def corrupt(kind: str, raw: Path, real_slice) -> str:
    """Damage the test split in one way; returns the name of the file at fault."""
    images, labels = real_slice
    img, lab = raw / "t10k-images-idx3-ubyte", raw / "t10k-labels-idx1-ubyte"
    if kind == "truncated":
        img.write_bytes(img.read_bytes()[: 16 + 28 * 28 * 30 + 100])
    elif kind == "padded":
        img.write_bytes(img.read_bytes() + b"\0" * 28 * 28)
    elif kind == "wrong-magic":
        write_idx(img, images, magic=b"PK\x03\x04")  # a zip file
    elif kind == "wrong-counts":
        write_idx(lab, labels[:-7])
        return lab.name
    elif kind == "wrong-size":
        write_idx(img, np.zeros((len(images), 32, 32)))
    elif kind == "bad-labels":
        write_idx(lab, np.where(np.arange(len(labels)) == 5, 12, labels))
        return lab.name
    elif kind == "gzip-garbage":  # only LeCun's .gz files, and the images one is not gzip at all inside
        img.unlink()
        (raw / f"{img.name}.gz").write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(2000))
        return f"{img.name}.gz"
    elif kind == "gzip-truncated":  # a plain name that holds an interrupted gzip stream
        img.write_bytes(gzip.compress(img.read_bytes())[:3000])
    else:
        raise AssertionError(kind)
    return img.name


@pytest.fixture
def offline(monkeypatch):
    """Any download attempt fails at once, as on a machine without a network."""
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)


CORRUPTIONS = ["truncated", "padded", "wrong-magic", "wrong-counts", "wrong-size", "bad-labels", "gzip-garbage",
               "gzip-truncated"]


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corrupt_files_are_one_clear_error_naming_the_folder_and_file(tmp_path, real_slice, kind, offline):
    raw = good_folder(tmp_path / "data", real_slice)
    culprit = corrupt(kind, raw, real_slice)
    listing = sorted((p.name, p.stat().st_size) for p in raw.iterdir())
    with pytest.raises(DataUnavailable) as info:
        load_split("mnist", "test", root=tmp_path / "data")
    message = str(info.value)
    assert str(raw) in message and culprit in message, message
    assert "Traceback" not in message and len(message) < 600
    assert sorted((p.name, p.stat().st_size) for p in raw.iterdir()) == listing  # nothing deleted or fetched


def test_a_missing_data_folder_is_a_clear_error_and_is_not_created(tmp_path, offline):
    root = tmp_path / "typo" / "data"
    with pytest.raises(DataUnavailable) as info:
        load_split("mnist", "test", root=root)
    message = str(info.value)
    assert f"the data folder {root} does not exist" in message
    assert "t10k-images-idx3-ubyte" in message and "could not be downloaded" in message
    assert not (tmp_path / "typo").exists()


def test_an_empty_data_folder_is_a_clear_error_and_stays_empty(tmp_path, offline):
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataUnavailable) as info:
        load_split("fashion-mnist", "test", root=root)
    message = str(info.value)
    assert f"FashionMNIST is not in {root / 'FashionMNIST' / 'raw'}" in message
    assert "could not be downloaded" in message
    assert list(root.iterdir()) == []


def test_a_failed_download_is_not_retried_on_every_request(tmp_path, real_slice, monkeypatch):
    """Pages ask for data on every rerun: without a network, one attempt, then the same message at once."""
    import torchvision.datasets.mnist as tvm

    calls = []

    def no_network(self, *args, **kwargs):
        calls.append(1)
        raise OSError("no network")

    monkeypatch.setattr(tvm.MNIST, "download", no_network)
    root = tmp_path / "data"
    root.mkdir()
    messages = []
    for _ in range(3):
        with pytest.raises(DataUnavailable) as info:
            load_split("mnist", "test", root=root)
        messages.append(str(info.value))
    assert len(calls) == 1 and len(set(messages)) == 1
    good_folder(root, real_slice)  # the files arrive: they are used at once
    assert len(load_split("mnist", "test", root=root).images) == 60


def test_gzip_files_and_a_test_only_folder_work(tmp_path, real_slice, offline):
    raw = good_folder(tmp_path / "gz", real_slice, train=False)
    for f in list(raw.iterdir()):  # LeCun's own files: gzip-compressed, named .gz
        (raw / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
    split = load_split("mnist", "test", root=tmp_path / "gz")
    assert torch.equal(split.images, torch.from_numpy(real_slice[0]).float().div(255).unsqueeze(1))
    assert torch.equal(split.labels, torch.from_numpy(real_slice[1]).long())
    # No training files: the test split still serves the pages; the train split says what is missing.
    with pytest.raises(DataUnavailable, match="train-images-idx3-ubyte"):
        load_split("mnist", "train", root=tmp_path / "gz")


# --- every page with a bad data folder ------------------------------------------------------------


@pytest.fixture(params=["missing", "empty", "corrupt"])
def bad_data(request, tmp_path, real_slice, monkeypatch, offline):
    import streamlit as st

    root = tmp_path / "data"
    if request.param == "empty":
        root.mkdir()
    elif request.param == "corrupt":
        raw = good_folder(root, real_slice)
        corrupt("truncated", raw, real_slice)
        (raw / "train-images-idx3-ubyte").write_bytes(b"\x1f\x8b garbage")
    monkeypatch.setenv("VAEVIZ_DATA_DIR", str(root))
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(tmp_path / "user"))
    st.cache_resource.clear()  # data and models outlive each AppTest in this process
    st.cache_data.clear()
    jobs._whole_split.cache_clear()
    yield request.param, root
    st.cache_resource.clear()  # no later test may see this folder's fallback
    st.cache_data.clear()
    jobs._whole_split.cache_clear()


def test_every_page_with_a_bad_data_folder(bad_data):
    """Pages that need data say why they show the offline digits instead; the Trainer says why it
    cannot train; what needs only a checkpoint (sliders, samples, the zoo) keeps working."""
    from streamlit.testing.v1 import AppTest

    kind, root = bad_data
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    for page in EXPLORER_PAGES:
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        if page != "pages/draw.py":  # the draw page needs no data until something is drawn
            notes = [i.value for i in at.info if "digits instead" in i.value]
            assert notes and str(root) in notes[0], (page, [i.value for i in at.info])

    # The explorer's sliders need only the checkpoint: a slider still moves the image.
    at.switch_page("pages/explorer.py")
    at.run()
    before = [u for img in at.get("image") for u in img.value][0]
    at.slider(key=next(s.key for s in at.slider if s.label == "z1")).set_value(2.0).run()
    assert not at.exception
    assert [u for img in at.get("image") for u in img.value][0] != before

    # The zoo: table, details and samples from the checkpoints; the comparison says where its images come from.
    at.switch_page("pages/zoo.py")
    at.run()
    assert not at.exception, at.exception
    assert at.get("arrow_data_frame") or at.dataframe
    assert at.get("image")
    assert any("digits instead" in c.value for c in at.caption)

    # The Trainer cannot train on MNIST, and says why, naming the folder.
    at.switch_page("pages/trainer.py")
    at.run()
    assert not at.exception, at.exception
    at.button(key="trainer_start").click()
    run_until(at, lambda: not at.session_state["trainer_job"].view().active, timeout=120)
    view = at.session_state["trainer_job"].view()
    assert view.status == "failed"
    errors = [e.value for e in at.error]
    assert any(e.startswith("Training failed:") and str(root) in e for e in errors), errors
    if root.exists():
        assert [p for p in root.rglob("*") if p.name.startswith(".download")] == []
