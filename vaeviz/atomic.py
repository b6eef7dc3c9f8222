"""Atomic file writes that survive crashes, other processes and other hosts sharing the folder.

`write_atomic(path, data)` leaves `path` holding its old content or all of `data`, never a mix, even
if the process is killed mid-write: the bytes go to a locked hidden temporary in the same folder,
are flushed to disk, then renamed into place (or hard-linked, which never replaces an existing
file). A dead save's temporary is removed by the next save or listing (`remove_stale_temps`);
`bench/kill_during_save.py` measures this. No streamlit, no torch.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

try:
    import fcntl  # file locks tell a live save's temporary file from a dead one's
except ImportError:  # Windows
    fcntl = None

# A save writes `.NAME.XXXXXXXX.part` (mkstemp's 8 random characters): hidden and with another
# suffix, so no listing ever shows it. Its writer holds an exclusive lock on it until the rename;
# the kernel drops the lock when a process dies, even by SIGKILL, so a temporary whose lock can be
# taken is a dead save's and can go. Without file locks (Windows) only old ones are removed.
TEMP_SUFFIX = ".part"
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.part")
STALE_TEMP_AGE_S = 3600.0  # Windows only: a temporary this old has no live writer
WRITE_CHUNK = 1 << 20  # bytes per write call: large files go out in pieces, partial writes retried


def write_atomic(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Write bytes to `path` so that it holds its old content or all of `data`, never a mix.

    The bytes go to a locked temporary file in the same folder, are flushed to disk (fsync), and
    the file is renamed over `path` (`os.replace`); then the folder is flushed, so the new name
    survives a power cut too. A crash at any point leaves `path` as it was, or complete.
    `overwrite=False` links the file into place instead, which fails (FileExistsError) if `path`
    exists, atomically. Temporaries of saves that died are removed first (`remove_stale_temps`).
    """
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder)
    fd, tmp = _locked_temp(folder, path.name)
    closed = False
    try:
        view = memoryview(data)
        while view:  # os.write may write less than asked (signals, pipes); ENOSPC raises here
            view = view[os.write(fd, view[:WRITE_CHUNK]):]
        os.fsync(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        if fcntl is None:  # Windows cannot rename a file that is open
            os.close(fd)
            closed = True
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)  # still locked: no cleaner can mistake it for a dead save's
        raise
    finally:
        if not closed:
            os.close(fd)  # releases the lock; by now the temporary's name is gone
    _fsync_folder(folder)


def _locked_temp(folder: Path, name: str) -> tuple[int, str]:
    """A new temporary file for `name` in `folder`, open and locked: (fd, path)."""
    while True:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=TEMP_SUFFIX, dir=folder)
        if fcntl is None:
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a cleaner that saw it unlocked deletes it
        if os.fstat(fd).st_nlink > 0:
            return fd, tmp
        os.close(fd)  # a cleaner took it between its creation and our lock: take another name


def _link_new(tmp: str, path: Path) -> None:
    """Put `tmp` at `path` only if nothing is there (a hard link fails on an existing name)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path.name} already exists in {path.parent}") from None
    except OSError:  # a file system without hard links: check, then rename (a tiny race remains)
        if path.exists():
            raise FileExistsError(f"{path.name} already exists in {path.parent}") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk. Best effort: the file is already in place,
    and some systems cannot open a folder (Windows) or flush one (a few network file systems)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temps(folder: str | os.PathLike) -> int:
    """Delete the temporary files of saves into `folder` that died mid-write; returns how many.

    Safe while other processes save there: a live save's temporary is locked and is left alone.
    Errors (a read-only folder) are ignored: stale temporaries are invisible, only wasted space.
    """
    try:
        entries = [e for e in os.scandir(folder) if _TEMP_NAME.fullmatch(e.name)]
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if fcntl is None:
                if time.time() - entry.stat().st_mtime > STALE_TEMP_AGE_S:
                    os.unlink(entry.path)
                    removed += 1
                continue
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: a live save's
                os.unlink(entry.path)  # while locked, so its writer (if it just began) takes another
                removed += 1
            finally:
                os.close(fd)
        except OSError:
            continue
    return removed


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; done once, at import, before any threads
    os.umask(mask)
    return mask


_UMASK = _read_umask()


