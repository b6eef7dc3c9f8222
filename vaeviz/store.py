"""Keeping models: names, saving into the user folder, checkpoint bytes, deleting user files.

The Trainer and Model zoo pages save, download and delete checkpoints through these few functions,
which hold the rules in one place: a name is letters, digits, `-` and `_` only (so it can never
climb out of the folder); files are written only inside `user_dir()`, atomically, never over an
existing one; the saver is recorded as the file's owner; only files in `user_dir()` can be deleted
(shipped checkpoints never). No streamlit.
"""

from __future__ import annotations

import re
from pathlib import Path

from .checkpoint import SHIPPED_DIR, SUFFIX, save_checkpoint, user_dir
from .checkpoint import checkpoint_bytes as file_bytes
from .config import shown
from .models import Model

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


def save_model(model: Model, name: str, folder: Path | None = None, *, owner: str | None = None) -> Path:
    """Save `model` as `name` in the user folder (atomic), owned by `owner`. Never overwrites a file.

    Raises ValueError for a bad name, FileExistsError for a taken one, OSError when the folder
    cannot be written (read-only, full disk).
    """
    path = target_path(name, folder)
    taken = FileExistsError(f"a checkpoint called {path.stem} already exists in {path.parent}; choose another name")
    if path.exists():
        raise taken
    try:  # overwrite=False also closes the race with a save of the same name in another session
        return save_checkpoint(model, path, model.meta.with_owner(owner), overwrite=False)
    except FileExistsError:
        raise taken from None


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


def delete_user_file(path: str | Path) -> None:
    """Delete a user-saved checkpoint. Anything else (a shipped file, a path elsewhere) is refused."""
    path = Path(path)
    if not is_user_file(path):
        raise PermissionError(f"{path.name} is not a user-saved checkpoint; only files in {user_dir()} can be deleted")
    path.unlink()
