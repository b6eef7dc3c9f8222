"""Checkpoints: one `.safetensors` file holding a model's tensors and JSON metadata.

Saving writes a temporary file in the destination folder, flushes it to disk, then renames it over
the destination (`os.replace`), so a crash never leaves a half-written checkpoint under the real
name. Loading never unpickles anything: the file is checked byte by byte (size, header length,
header JSON, tensor offsets) before safetensors parses it, so an uploaded file cannot run code, and
every way a file can be wrong is a `ValueError` with a message a person understands.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import __version__
from .config import ModelConfig
from .models import MODELS, Autoencoder

FORMAT = "vaeviz-checkpoint/1"
MAX_FILE_BYTES = 64 * 1024 * 1024  # far above any real vaeviz checkpoint (they are ~1-3 MB)
MAX_HEADER_BYTES = 1024 * 1024  # the JSON header; real ones are a few kB (curves included)
SUFFIX = ".safetensors"
_DTYPES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}  # float tensors only: a model has no others
_META_JSON_KEYS = ("config", "train_config", "metrics", "history", "dataset_info")


def save_checkpoint(model: Autoencoder, path: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """Write `model`'s tensors and `meta` to `path` atomically. Returns the final path.

    `meta` holds: dataset, train_config, metrics, history (and anything else JSON-able); kind,
    config, format, version and creation time are filled in here.
    """
    path = Path(path)
    if path.suffix != SUFFIX:
        raise ValueError(f"a checkpoint file name must end in {SUFFIX}: {path.name}")
    module = getattr(model, "_orig_mod", model)  # the uncompiled module's names
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}
    header = {
        "format": FORMAT,
        "kind": module.kind,
        "config": module.cfg.to_dict(),
        "vaeviz_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **{k: v for k, v in meta.items() if k not in ("kind", "config", "format")},
    }
    metadata = {k: v if isinstance(v, str) else json.dumps(v, allow_nan=False) for k, v in header.items()}
    blob = st_save(tensors, metadata=metadata)
    write_atomic(path, blob)
    return path


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to `path` via a temporary file in the same folder and `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


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
            f"{path.name} is {size / 2**20:.0f} MB, far larger than any vaeviz checkpoint "
            f"(limit {MAX_FILE_BYTES // 2**20} MB); not read"
        )
    with open(path, "rb") as f:
        return f.read(MAX_FILE_BYTES + 1)


def _parse_header(data: bytes, name: str) -> dict[str, Any]:
    """Check the safetensors framing by hand: header length, JSON, offsets within the file."""
    not_ckpt = f"{name} is not a vaeviz checkpoint"
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{name} is larger than any vaeviz checkpoint (limit {MAX_FILE_BYTES // 2**20} MB)")
    if len(data) < 8:
        raise ValueError(f"{not_ckpt}: it is only {len(data)} bytes long")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > MAX_HEADER_BYTES:
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
    if not isinstance(header, dict):
        raise ValueError(f"{not_ckpt}: its header is not a JSON object")
    body = len(data) - 8 - header_len
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(info, dict) or info.get("dtype") not in _DTYPES:
            raise ValueError(f"{not_ckpt}: tensor {key!r} is not a float tensor")
        offsets, shape = info.get("data_offsets"), info.get("shape")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and o >= 0 for o in offsets)
            or not isinstance(shape, list)
            or not all(isinstance(s, int) and s >= 0 for s in shape)
        ):
            raise ValueError(f"{not_ckpt}: tensor {key!r} has a malformed entry")
        if offsets[1] > body:
            raise ValueError(f"{name} is truncated: tensor {key!r} runs past the end of the file")
    return header


def _read_meta(header: dict[str, Any], name: str) -> dict[str, Any]:
    raw = header.get("__metadata__")
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ValueError(
            f"{name} is a safetensors file but not a vaeviz checkpoint (no '{FORMAT}' metadata)"
        )
    meta: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _META_JSON_KEYS:
            try:
                meta[key] = json.loads(value)
            except (TypeError, json.JSONDecodeError):
                raise ValueError(f"{name}: the metadata field {key!r} is not valid JSON") from None
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
    header = _parse_header(data, label)
    meta = _read_meta(header, label)
    kind = meta["kind"]
    if kind not in MODELS:
        raise ValueError(f"{label}: unknown model kind {kind!r}; expected one of {', '.join(MODELS)}")
    try:
        cfg = ModelConfig.from_dict(meta["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{label}: invalid model config: {exc}") from None
    model = MODELS[kind](cfg)
    try:
        tensors = st_load(data)
    except Exception as exc:  # safetensors raises its own error type for malformed files
        raise ValueError(f"{label} is not a valid safetensors file ({exc})") from None
    _check_tensors(model, tensors, label)
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


def _check_tensors(model: Autoencoder, tensors: dict[str, torch.Tensor], label: str) -> None:
    """Compare names and shapes with the model the config describes; say exactly what differs."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    wrong = [
        f"{k} is {tuple(tensors[k].shape)} but the config needs {expected[k]}"
        for k in sorted(set(expected) & set(tensors))
        if tuple(tensors[k].shape) != expected[k]
    ]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    if extra:
        problems.append("unexpected " + ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else ""))
    problems += wrong[:5]
    if problems:
        raise ValueError(f"{label}: its tensors do not match its model config: " + "; ".join(problems))
    bad = [k for k, v in tensors.items() if not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{label}: tensor {bad[0]} holds NaN or infinite values")


def checkpoint_summary(path: str | os.PathLike) -> dict[str, Any]:
    """Metadata of a checkpoint without building the model (for tables). Raises ValueError."""
    path = Path(path)
    data = read_checkpoint_bytes(path)
    meta = _read_meta(_parse_header(data, path.name), path.name)
    cfg = meta.get("config", {})
    return {
        **meta,
        "name": path.stem,
        "path": str(path),
        "arch": cfg.get("arch"),
        "latent_dim": cfg.get("latent_dim"),
        "beta": cfg.get("beta") if meta.get("kind") == "vae" else None,
        "size_bytes": len(data),
    }


# --- where checkpoints live -------------------------------------------------------------------

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"


def user_dir() -> Path:
    """Where models trained in the app are saved: $VAEVIZ_USER_DIR, else checkpoints/user/."""
    env = os.environ.get("VAEVIZ_USER_DIR")
    return Path(env).expanduser() if env else SHIPPED_DIR / "user"


def find_checkpoints(folders: list[Path] | None = None) -> list[Path]:
    """Every `*.safetensors` in the folders (shipped, then user), skipping hidden and partial files."""
    folders = folders if folders is not None else [SHIPPED_DIR, user_dir()]
    found: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            found += sorted(p for p in folder.glob(f"*{SUFFIX}") if not p.name.startswith(".") and p.is_file())
    return found
