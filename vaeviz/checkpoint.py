"""Checkpoints: one `.safetensors` file holding a model's tensors and JSON metadata.

Saving writes a temporary file in the destination folder, flushes it to disk, then renames it over
the destination (`os.replace`), so a crash, even SIGKILL mid-write, never leaves a half-written
checkpoint under the real name; a dead save's hidden temporary is removed by the next save or
listing (`bench/kill_during_save.py` measures this). Loading never unpickles anything: the file is
checked byte by byte (size, header length, header JSON, tensor offsets) before safetensors parses
it, so an uploaded file cannot run code, and every way a file can be wrong is a `ValueError` with a
message a person understands.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import fcntl  # file locks tell a live save's temporary file from a dead one's (write_atomic)
except ImportError:  # Windows
    fcntl = None

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import __version__
from .config import ModelConfig, shown
from .models import MODELS, Autoencoder

FORMAT = "vaeviz-checkpoint/1"
MAX_FILE_BYTES = 64 * 1024 * 1024  # far above any real vaeviz checkpoint (they are ~1-3 MB)
MAX_HEADER_BYTES = 1024 * 1024  # the JSON header; real ones are a few kB (curves included)
SUFFIX = ".safetensors"
_DTYPES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}  # float tensors only: a model has no others
_META_JSON_KEYS = ("config", "train_config", "metrics", "history", "dataset_info")


def save_checkpoint(
    model: Autoencoder, path: str | os.PathLike, meta: dict[str, Any], *, overwrite: bool = True
) -> Path:
    """Write `model`'s tensors and `meta` to `path` atomically. Returns the final path.

    `meta` holds: dataset, train_config, metrics, history (and anything else JSON-able); kind,
    config, format, version and creation time are filled in here. With `overwrite=False` an
    existing file is never replaced (FileExistsError), even by a save racing this one.
    Raises ValueError for a model or metadata that would make a file no one can load (NaN
    weights), OSError when the folder cannot be written.
    """
    path = Path(path)
    if path.suffix != SUFFIX:
        raise ValueError(f"a checkpoint file name must end in {SUFFIX}: {path.name}")
    write_atomic(path, checkpoint_bytes(model, meta), overwrite=overwrite)
    return path


def checkpoint_bytes(model: Autoencoder, meta: dict[str, Any]) -> bytes:
    """The bytes of the file `save_checkpoint` writes, made in memory (a download needs no disk).

    Raises ValueError for NaN weights or metadata that JSON cannot hold.
    """
    module = getattr(model, "_orig_mod", model)  # the uncompiled module's names
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}
    # The loader refuses non-finite weights, so such a file could never be opened again: say so now.
    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise ValueError(f"not saved: the weight {bad} holds NaN or infinite values (did the training diverge?)")
    header = {
        "format": FORMAT,
        "kind": module.kind,
        "config": module.cfg.to_dict(),
        "vaeviz_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **{k: v for k, v in meta.items() if k not in ("kind", "config", "format")},
    }
    metadata = {}
    for key, value in header.items():
        try:
            metadata[key] = value if isinstance(value, str) else json.dumps(value, allow_nan=False)
        except ValueError:  # json's own words ("Out of range float values ...") say nothing to a person
            raise ValueError(f"not saved: the {key} to store with the model hold NaN or infinite numbers") from None
    return st_save(tensors, metadata=metadata)


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


def read_checkpoint_bytes(path: str | os.PathLike) -> bytes:
    """Read a checkpoint file, refusing missing, odd or oversized files before reading them."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no such checkpoint: {path}")
    if not path.is_file():
        raise ValueError(f"not a file: {path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(
            f"{path.name} is {_megabytes(size)}, far larger than any vaeviz checkpoint "
            f"(they are a few MB; the limit is {_megabytes(MAX_FILE_BYTES)}); not read"
        )
    with open(path, "rb") as f:
        return f.read(MAX_FILE_BYTES + 1)


def _megabytes(n: int) -> str:
    return f"{n / 2**20:,.1f} MB".replace(".0 MB", " MB")


def _pickle_format(data: bytes) -> str | None:
    """What kind of pickle the bytes are, by their first bytes, or None (only asked of non-safetensors)."""
    if data[:4] == b"PK\x03\x04":
        return "a zip archive, as torch.save writes (a pickle inside)"
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle (a .pt, .pth or .pkl file)"
    return None


def _parse_header(data: bytes, name: str) -> dict[str, Any]:
    """Check the safetensors framing by hand: header length, JSON, offsets within the file."""
    not_ckpt = f"{name} is not a vaeviz checkpoint"
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{name} is {_megabytes(len(data))}, far larger than any vaeviz checkpoint "
                         f"(they are a few MB; the limit is {_megabytes(MAX_FILE_BYTES)})")
    if len(data) < 8:
        raise ValueError(f"{not_ckpt}: it is only {len(data)} bytes long")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > MAX_HEADER_BYTES:
        foreign = _pickle_format(data)
        if foreign:  # the usual mistake: a PyTorch .pt/.pth file renamed
            raise ValueError(f"{not_ckpt}: it is {foreign}; it was not loaded, since loading a pickle can run "
                             "any code. Save the model's weights with safetensors instead")
        raise ValueError(
            f"{not_ckpt}: its header claims {header_len:,} bytes (a safetensors header is a few kB); "
            "it may be a pickle or another format, and was not loaded"
        )
    if 8 + header_len > len(data):
        raise ValueError(f"{not_ckpt}: the file is truncated (the header runs past its end)")
    try:
        header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{not_ckpt}: its header is not valid JSON") from None
    except RecursionError:  # "[[[[..." a hundred thousand deep: valid JSON, but no header is like it
        raise ValueError(f"{not_ckpt}: its header is JSON nested far too deeply") from None
    if not isinstance(header, dict):
        raise ValueError(f"{not_ckpt}: its header is not a JSON object")
    body = len(data) - 8 - header_len
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(info, dict) or not isinstance(info.get("dtype"), str) or info["dtype"] not in _DTYPES:
            raise ValueError(f"{not_ckpt}: tensor {shown(key)} is not a float tensor")
        offsets, shape = info.get("data_offsets"), info.get("shape")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and o >= 0 for o in offsets)
            or not isinstance(shape, list)
            or not all(isinstance(s, int) and s >= 0 for s in shape)
        ):
            raise ValueError(f"{not_ckpt}: tensor {shown(key)} has a malformed entry")
        if offsets[1] > body:
            raise ValueError(f"{name} is truncated: tensor {shown(key)} runs past the end of the file")
    return header


def _read_meta(header: dict[str, Any], name: str) -> dict[str, Any]:
    raw = header.get("__metadata__")
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ValueError(
            f"{name} is a safetensors file but not a vaeviz checkpoint (no '{FORMAT}' metadata)"
        )
    meta: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(value, str):  # safetensors metadata is text; anything else is hand-made
            raise ValueError(f"{name}: the metadata field {key!r} is not text")
        if key in _META_JSON_KEYS:
            try:
                meta[key] = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(f"{name}: the metadata field {key!r} is not valid JSON") from None
            except RecursionError:
                raise ValueError(f"{name}: the metadata field {key!r} is JSON nested far too deeply") from None
            if not isinstance(meta[key], dict) and (key == "config" or meta[key] is not None):
                raise ValueError(f"{name}: the metadata field {key!r} is not a JSON object")
        else:
            meta[key] = value
    if "config" not in meta or "kind" not in meta:
        raise ValueError(f"{name}: the metadata lacks the model kind or config")
    return meta


def load_checkpoint(
    source: str | os.PathLike | bytes, *, device: str | torch.device = "cpu", name: str | None = None
) -> Autoencoder:
    """Load a checkpoint (a path or the file's bytes) into a model in eval mode on `device`.

    The model's `meta` dict carries kind, arch, latent_dim, beta, dataset, metrics, config,
    train_config, history, vaeviz_version, created, and path (None for bytes).
    Raises ValueError, with a readable message, for anything that is not a valid checkpoint.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, path, label = bytes(source), None, name or "the uploaded file"
    else:
        path = Path(source)
        data, label = read_checkpoint_bytes(path), name or path.name
    meta, cfg, tensors = _validated(data, label)
    kind = meta["kind"]
    model = MODELS[kind](cfg)
    model.load_state_dict(tensors, strict=True)
    model.to(device).eval()
    model.meta = {
        **meta,
        "arch": cfg.arch,
        "latent_dim": cfg.latent_dim,
        "beta": cfg.beta if kind == "vae" else None,
        "path": str(path) if path is not None else None,
        "name": path.stem if path is not None else (name or "uploaded"),
        "size_bytes": len(data),
    }
    model.meta.setdefault("metrics", {})
    model.meta.setdefault("dataset", None)
    return model


def _validated(data: bytes, label: str) -> tuple[dict[str, Any], ModelConfig, dict[str, torch.Tensor]]:
    """Every check of a checkpoint's bytes, short of building the model: (meta, config, tensors)."""
    header = _parse_header(data, label)
    meta = _read_meta(header, label)
    kind = meta["kind"]
    if kind not in MODELS:
        raise ValueError(f"{label}: unknown model kind {shown(kind)!r}; expected one of {', '.join(MODELS)}")
    try:
        cfg = ModelConfig.from_dict(meta["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{label}: invalid model config: {exc}") from None
    # The config comes from the file, and a valid one can describe billions of weights: compare
    # the tensors it needs with those the header lists on a model without storage first, so a
    # few-kB file cannot make the loader allocate gigabytes. Matching tensors fit in the file.
    with torch.device("meta"):
        skeleton = MODELS[kind](cfg)
    listed = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    _check_shapes({k: tuple(v.shape) for k, v in skeleton.state_dict().items()}, listed, label)
    try:
        tensors = st_load(data)  # the shapes safetensors reads are the header's, checked above
    except Exception as exc:  # safetensors raises its own error type for malformed files
        raise ValueError(f"{label} is not a valid safetensors file ({exc})") from None
    _check_finite(tensors, label)
    return meta, cfg, tensors


def _check_shapes(expected: dict[str, tuple], found: dict[str, tuple], label: str) -> None:
    """Compare tensor names and shapes with those the config needs; say exactly what differs."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = [
        f"{k} is {found[k]} but the config needs {expected[k]}"
        for k in sorted(set(expected) & set(found))
        if found[k] != expected[k]
    ]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    if extra:  # names from the file: shortened, so a hostile one cannot flood the message
        problems.append("unexpected " + ", ".join(shown(k) for k in extra[:5]) + (" ..." if len(extra) > 5 else ""))
    problems += wrong[:5]
    if problems:
        raise ValueError(f"{label}: its tensors do not match its model config: " + "; ".join(problems))


def _check_finite(tensors: dict[str, torch.Tensor], label: str) -> None:
    bad = [k for k, v in tensors.items() if not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{label}: tensor {bad[0]} holds NaN or infinite values")


def checkpoint_summary(path: str | os.PathLike) -> dict[str, Any]:
    """Metadata of a checkpoint without building the model (for tables). Raises ValueError.

    The file gets every check `load_checkpoint` makes, so a listed checkpoint can be loaded.
    """
    path = Path(path)
    data = read_checkpoint_bytes(path)
    meta, cfg, _ = _validated(data, path.name)
    return {
        **meta,
        "name": path.stem,
        "path": str(path),
        "arch": cfg.arch,
        "latent_dim": cfg.latent_dim,
        "beta": cfg.beta if meta["kind"] == "vae" else None,
        "size_bytes": len(data),
    }


# --- where checkpoints live -------------------------------------------------------------------

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"


def user_dir() -> Path:
    """Where models trained in the app are saved: $VAEVIZ_USER_DIR, else checkpoints/user/."""
    env = os.environ.get("VAEVIZ_USER_DIR")
    return Path(env).expanduser() if env else SHIPPED_DIR / "user"


def find_checkpoints(folders: list[Path] | None = None) -> list[Path]:
    """Every `*.safetensors` in the folders (shipped, then user), skipping hidden and partial files.

    A folder that cannot be read is skipped (every page lists models: one bad folder must not
    break them). Temporaries left by saves that died are removed here too, since a listing is
    the first look the app takes at a folder after a crash.
    """
    folders = folders if folders is not None else [SHIPPED_DIR, user_dir()]
    found: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        try:
            if not folder.is_dir():
                continue
            remove_stale_temps(folder)
            found += sorted(p for p in folder.glob(f"*{SUFFIX}") if not p.name.startswith(".") and p.is_file())
        except OSError:
            continue
    return found
