"""Checkpoints: one `.safetensors` file holding a model's tensors and its `CheckpointMeta`.

Saving writes the file atomically (`vaeviz.atomic.write_atomic`): a crash, even SIGKILL mid-write,
never leaves a half-written checkpoint under the real name. Loading never unpickles anything: the
file is checked byte by byte (size, header length, header JSON, tensor offsets), its metadata is
validated field by field (`CheckpointMeta.from_header`), and the tensor shapes its config needs are
compared with the header's before anything is allocated, so an uploaded file cannot run code, and
every way a file can be wrong is a `ValueError` with a message a person understands.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import __version__
from .atomic import fcntl, remove_stale_temps, write_atomic  # noqa: F401 - fcntl: tests ask whether locks exist
from .config import shown
from .meta import FORMAT, CheckpointInfo, CheckpointMeta  # noqa: F401 - FORMAT: part of this module's API
from .models import MODELS, Model

MAX_FILE_BYTES = 64 * 1024 * 1024  # far above any real vaeviz checkpoint (they are ~1-3 MB)
MAX_HEADER_BYTES = 1024 * 1024  # the JSON header; real ones are a few kB (curves included)
SUFFIX = ".safetensors"
_DTYPES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}  # float tensors only: a model has no others


def save_checkpoint(
    model: Model, path: str | os.PathLike, meta: CheckpointMeta | None = None, *, overwrite: bool = True
) -> Path:
    """Write `model`'s tensors and metadata (default `model.meta`) to `path` atomically.

    With `overwrite=False` an existing file is never replaced (FileExistsError), even by a save
    racing this one. Raises ValueError for a model or metadata that would make a file no one can
    load (NaN weights), OSError when the folder cannot be written. Returns the final path.
    """
    path = Path(path)
    if path.suffix != SUFFIX:
        raise ValueError(f"a checkpoint file name must end in {SUFFIX}: {path.name}")
    write_atomic(path, checkpoint_bytes(model, meta), overwrite=overwrite)
    return path


def checkpoint_bytes(model: Model, meta: CheckpointMeta | None = None) -> bytes:
    """The bytes of the file `save_checkpoint` writes, made in memory (a download needs no disk).

    Raises ValueError for NaN weights or metadata that JSON cannot hold.
    """
    module = getattr(model, "_orig_mod", model)  # the uncompiled module's names
    meta = meta if meta is not None else module.meta
    if meta.kind != module.kind or meta.config != module.cfg:
        meta = replace(meta, kind=module.kind, config=module.cfg, uses_beta=module.uses_beta)  # the tensors decide
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}
    # The loader refuses non-finite weights, so such a file could never be opened again: say so now.
    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise ValueError(f"not saved: the weight {bad} holds NaN or infinite values (did the training diverge?)")
    return st_save(tensors, metadata=meta.to_header(__version__))


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


def load_checkpoint(
    source: str | os.PathLike | bytes, *, device: str | torch.device = "cpu", name: str | None = None
) -> Model:
    """Load a checkpoint (a path or the file's bytes) into a model in eval mode on `device`.

    The model's `meta` is the file's `CheckpointMeta`. Raises ValueError, with a readable message,
    for anything that is not a valid checkpoint.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), name or "the uploaded file"
    else:
        path = Path(source)
        data, label = read_checkpoint_bytes(path), name or path.name
    meta, tensors = _validated(data, label)
    model = MODELS[meta.kind](meta.config)
    model.load_state_dict(tensors, strict=True)
    model.to(device).eval()
    model.meta = meta
    return model


def _validated(data: bytes, label: str) -> tuple[CheckpointMeta, dict[str, torch.Tensor]]:
    """Every check of a checkpoint's bytes, short of building the model: (meta, tensors)."""
    header = _parse_header(data, label)
    meta = CheckpointMeta.from_header(header.get("__metadata__"), label)
    if meta.kind not in MODELS:
        raise ValueError(f"{label}: unknown model kind {shown(meta.kind)!r}; expected one of {', '.join(MODELS)}")
    meta = replace(meta, uses_beta=MODELS[meta.kind].uses_beta)
    # The config comes from the file, and a valid one can describe billions of weights: compare
    # the tensors it needs with those the header lists on a model without storage first, so a
    # few-kB file cannot make the loader allocate gigabytes. Matching tensors fit in the file.
    with torch.device("meta"):
        skeleton = MODELS[meta.kind](meta.config)
    listed = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    _check_shapes({k: tuple(v.shape) for k, v in skeleton.state_dict().items()}, listed, label)
    try:
        tensors = st_load(data)  # the shapes safetensors reads are the header's, checked above
    except Exception as exc:  # safetensors raises its own error type for malformed files
        raise ValueError(f"{label} is not a valid safetensors file ({exc})") from None
    _check_finite(tensors, label)
    return meta, tensors


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


def checkpoint_summary(path: str | os.PathLike) -> CheckpointInfo:
    """A checkpoint's metadata without building the model (for tables). Raises ValueError.

    The file gets every check `load_checkpoint` makes, so a listed checkpoint can be loaded.
    """
    path = Path(path)
    data = read_checkpoint_bytes(path)
    meta, _ = _validated(data, path.name)
    return CheckpointInfo(meta, str(path), path.stem, len(data))


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
