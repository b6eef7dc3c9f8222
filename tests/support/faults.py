"""Fault injection for tests: folders that fill up or turn read-only, damaged data folders, and the
small checks the fault tests share.

Full and read-only folders are made two ways. Where this process may mount (root with
CAP_SYS_ADMIN, as on this project's machine), a small tmpfs is really filled up or remounted
read-only, so the kernel itself says ENOSPC or EROFS. Everywhere, the same errors are also
injected at the os level (`os.write` runs out of space part-way; `os.open` and friends refuse to
write in the folder), which exercises the same code paths where mounting is not allowed; `chmod`
cannot be used, since root ignores permissions. The shared data folder is only ever read: bad data
folders are built in `tmp_path` from small slices of it.

Its fixtures (`fault`, `page_fault`, `real_slice`, `offline`) reach every test through
`pytest_plugins` in `tests/conftest.py`.
"""

from __future__ import annotations

import errno
import functools
import gzip
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from vaeviz import ModelConfig, build_model, load_checkpoint
from vaeviz.checkpoint import find_checkpoints, save_checkpoint
from vaeviz.data import read_idx

from .checkpoints import measured

ROOT = Path(__file__).resolve().parent.parent.parent


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def weights_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(v).all() for v in model.state_dict().values())


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
        self.previous = save_checkpoint(self.previous_model, self.folder / "previous.safetensors",
                                        measured(self.previous_model, metrics={"recon": 1.0}))
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


