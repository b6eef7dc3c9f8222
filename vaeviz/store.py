"""Keeping models: names, saving into the user folder, ownership, quotas, deleting.

The Trainer and Model zoo pages save, download and delete checkpoints through these few functions,
which hold the rules in one place:

- a name is letters, digits, `-` and `_` only (so it can never climb out of the folder); files are
  written only inside `user_dir()`, atomically;
- the saver is recorded in the file as its owner (`CheckpointMeta.owner`, a one-way hash of who they
  are); only the owner may replace or delete a file, the admin may delete any, and a file copied in
  by hand has no owner, so only the admin may delete it;
- quotas: a number of models and of bytes per owner, and bytes for the whole folder; a save over a
  quota is refused with the limit and how to free space, and nothing is written.

The rules live in the files, not in one process's memory, and a save holds an exclusive lock on the
folder (`.vaeviz.lock`) while it checks and writes, so they hold across processes and across
servers sharing the folder (a network volume with POSIX locks). No streamlit.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .atomic import fcntl, write_atomic
from .checkpoint import SHIPPED_DIR, SUFFIX, find_checkpoints, user_dir
from .checkpoint import checkpoint_bytes as file_bytes
from .config import env_whole, shown
from .models import Model

LOCK_NAME = ".vaeviz.lock"

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")
# Names Windows gives to devices: a file called CON.safetensors cannot be made there (or copied there).
WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"{d}{i}" for d in ("COM", "LPT") for i in range(1, 10))}


def check_name(name: str) -> str:
    """The name, stripped, if it is a valid checkpoint name; else a ValueError saying why."""
    name = (name or "").strip()
    if not name:
        raise ValueError("give the model a name")
    if name.endswith(SUFFIX):
        name = name[: -len(SUFFIX)]
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{shown(name)!r} is not a usable name: use letters, digits, '-' and '_' only (no spaces, dots or "
            "slashes), starting with a letter or digit, at most 80 characters"
        )
    if name.upper() in WINDOWS_DEVICES:
        raise ValueError(f"{name!r} is not a usable name: Windows keeps it for a device; choose another")
    return name


def target_path(name: str, folder: Path | None = None) -> Path:
    """Where a model called `name` is saved: `folder` (default the user folder) / name.safetensors."""
    folder = Path(folder) if folder is not None else user_dir()
    path = folder / f"{check_name(name)}{SUFFIX}"
    if path.resolve().parent != folder.resolve():  # cannot happen with a checked name; keep it so
        raise ValueError(f"{name!r} would be saved outside {folder}")
    return path


@dataclass(frozen=True)
class Quota:
    """What one owner, and everyone together, may keep in the user folder."""

    models_per_owner: int = 20
    bytes_per_owner: int = 100 * 2**20
    bytes_total: int = 2 * 2**30

    @classmethod
    def from_env(cls) -> "Quota":
        """$VAEVIZ_QUOTA_MODELS, $VAEVIZ_QUOTA_MB (per owner) and $VAEVIZ_USER_DIR_MB (the folder)."""
        mb = 2**20
        return cls(env_whole("VAEVIZ_QUOTA_MODELS", cls.models_per_owner),
                   env_whole("VAEVIZ_QUOTA_MB", cls.bytes_per_owner // mb) * mb,
                   env_whole("VAEVIZ_USER_DIR_MB", cls.bytes_total // mb) * mb)


class QuotaExceeded(ValueError):
    """A save that would go over a quota (the message says which, and how to free space)."""


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the user folder's lock: one save at a time checks the quotas and writes, across processes."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def owner_of(path: str | Path) -> str | None:
    """The owner a checkpoint file records (None: shipped, copied in by hand, or unreadable). Reads the
    header only, not the weights."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > 1 << 20:
                return None
            header = json.loads(f.read(length))
        owner = (header.get("__metadata__") or {}).get("owner")
        return owner if isinstance(owner, str) else None
    except (OSError, ValueError, struct.error):
        return None


def usage(folder: Path | None = None) -> dict[str | None, tuple[int, int]]:
    """Per owner (None: no owner): (models, bytes) in the user folder."""
    out: dict[str | None, tuple[int, int]] = {}
    for path in find_checkpoints([Path(folder) if folder is not None else user_dir()]):
        try:
            size = path.stat().st_size
        except OSError:
            continue
        n, total = out.get(owner_of(path), (0, 0))
        out[owner_of(path)] = (n + 1, total + size)
    return out


def _check_quota(folder: Path, owner: str | None, new_bytes: int, replacing: Path | None, quota: Quota) -> None:
    used = usage(folder)
    if replacing is not None:  # the file being replaced frees its own room
        n, b = used.get(owner, (0, 0))
        used[owner] = (n - 1, b - replacing.stat().st_size)
    models, mine = used.get(owner, (0, 0))
    everyone = sum(b for _, b in used.values())
    free = " Delete one of your saved models in the Model zoo to make room."
    if owner is not None and models + 1 > quota.models_per_owner:
        raise QuotaExceeded(f"not saved: you have {models} saved models, the most one person may keep here is "
                            f"{quota.models_per_owner}.{free}")
    if owner is not None and mine + new_bytes > quota.bytes_per_owner:
        raise QuotaExceeded(f"not saved: your saved models take {_megabytes(mine)}; with this one "
                            f"({_megabytes(new_bytes)}) they would pass the {_megabytes(quota.bytes_per_owner)} one "
                            f"person may keep here.{free}")
    if everyone + new_bytes > quota.bytes_total:
        raise QuotaExceeded(f"not saved: the user folder holds {_megabytes(everyone)} and may hold "
                            f"{_megabytes(quota.bytes_total)} in all; this model needs {_megabytes(new_bytes)}. Delete "
                            "models you no longer need, or ask whoever runs this server to raise VAEVIZ_USER_DIR_MB.")


def save_model(model: Model, name: str, folder: Path | None = None, *, owner: str | None = None, replace: bool = False,
               quota: Quota | None = None) -> Path:
    """Save `model` as `name` in the user folder (atomic), owned by `owner`.

    A taken name is refused (FileExistsError) unless `replace` is set and the file is the same
    owner's (else PermissionError). Over a quota: QuotaExceeded. A bad name: ValueError. A folder that
    cannot be written: OSError. In every case nothing is written.
    """
    path = target_path(name, folder)
    quota = quota if quota is not None else Quota.from_env()
    data = file_bytes(model, model.meta.with_owner(owner))
    with folder_lock(path.parent):
        replacing = None
        if path.exists():
            if not replace:
                raise FileExistsError(f"a checkpoint called {path.stem} already exists in {path.parent}; choose "
                                      "another name" + (" (or replace yours)" if owner is not None and owner_of(path) == owner else ""))
            if owner is None or owner_of(path) != owner:
                raise PermissionError(f"{path.stem} belongs to someone else (or to no one: copied in by hand); only "
                                      "its owner may replace it. Choose another name.")
            replacing = path
        _check_quota(path.parent, owner, len(data), replacing, quota)
        # Under the lock no save of ours races this one; overwrite=False still guards against writers
        # that do not take the lock (a file copied in by hand meanwhile).
        write_atomic(path, data, overwrite=replacing is not None)
    return path


def checkpoint_bytes(model: Model) -> bytes:
    """The `.safetensors` file of an in-memory model (for a download), made in memory."""
    return file_bytes(model)


def safe_stem(label: str) -> str:
    """A default file name from a label: letters, digits, - and _ only."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", label.split(" (")[0]).strip("-_")
    return stem[:80] or "model"


def is_user_file(path: str | Path) -> bool:
    """True for a checkpoint file directly inside the user folder (the only deletable ones)."""
    path = Path(path)
    try:
        return path.suffix == SUFFIX and path.resolve().parent == user_dir().resolve()
    except OSError:
        return False


def is_shipped_file(path: str | Path) -> bool:
    try:
        return Path(path).resolve().parent == SHIPPED_DIR.resolve()
    except OSError:
        return False


def may_delete(path: str | Path, owner: str | None, admin: bool = False) -> bool:
    """Whether `owner` (or the admin) may delete this file: a user-saved file of theirs."""
    return is_user_file(path) and (admin or (owner is not None and owner_of(path) == owner))


def delete_user_file(path: str | Path, *, owner: str | None = None, admin: bool = False) -> None:
    """Delete a user-saved checkpoint of `owner`'s (any one, for the admin). Anything else (a shipped
    file, a path elsewhere, someone else's file, a file with no owner) is refused: PermissionError."""
    path = Path(path)
    if not is_user_file(path):
        raise PermissionError(f"{path.name} is not a user-saved checkpoint; only files in {user_dir()} can be deleted")
    if not admin:
        recorded = owner_of(path)
        if recorded is None:
            raise PermissionError(f"{path.name} has no owner (it was copied in by hand); only the admin may delete it")
        if recorded != owner:
            raise PermissionError(f"{path.name} belongs to someone else; you can use and download it, not delete it")
    with folder_lock(path.parent):
        path.unlink()
