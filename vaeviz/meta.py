"""What a checkpoint says about itself, as typed dataclasses: `CheckpointMeta` and its parts.

A model carries its `CheckpointMeta` as `model.meta` from the moment it is built; training fills in
the data set, the run and the metrics, and saving writes it into the file's header. It is built in
one place (`CheckpointMeta.for_model`, then `with_run`) and read by attribute everywhere (CLI,
trainer, zoo, sidebar). `from_header` is the only way back from a file: it validates every field
it reads, so a hostile header is a `ValueError` with a readable message, never a crash later.

On disk the header keeps the names of format `vaeviz-checkpoint/1`: `train_config` holds the
training run, `history` the curves; every value is a JSON string (safetensors metadata is text).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .config import ModelConfig, TrainConfig, shown

FORMAT = "vaeviz-checkpoint/1"
MAX_CURVE_RECORDS = 10_000  # per list in a header; real checkpoints keep a few hundred


def _number(label: str, value: Any, *, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{label} must be a finite number, got {shown(value)}")
    return value


def _text(label: str, value: Any, limit: int = 400) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{label} must be a short text, got {shown(value)}")
    return value


def _numbers(label: str, value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 10_000:
        raise ValueError(f"{label} must be a list of numbers")
    return tuple(_number(label, v, allow_none=False) for v in value)


@dataclass(frozen=True)
class Metrics:
    """Test-set metrics, nats per image unless the name says otherwise; None where one does not apply.

    `extra` holds a kind's own figures (sparsity for a sparse AE, the contraction for a CAE, per-layer
    KL for a hierarchical VAE); each kind documents its keys.
    """

    recon: float | None = None  # -log p(x|z), summed over pixels, mean over images
    kl: float | None = None  # KL(q(z|x) || p(z)); None for kinds without a posterior
    neg_elbo: float | None = None  # recon + kl: the bound on -log p(x) (exact for pPCA)
    total: float | None = None  # what training minimised (recon + beta * kl, plus any penalty)
    bce_per_pixel: float | None = None  # recon / pixels: the number the notes quote for AEs
    kl_per_dim: tuple[float, ...] | None = None  # mean KL of each latent dimension
    active_units: int | None = None  # dimensions with Var_x(E_q[z]) above 0.01 (Burda et al.)
    activity: tuple[float, ...] | None = None  # Var_x(E_q[z_d]) of each dimension: what active_units counts
    iw_nll: float | None = None  # importance-weighted estimate of -log p(x), k samples
    iw_k: int | None = None
    n_images: int | None = None
    extra: dict[str, float | tuple[float, ...]] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        """A metric by name, standard or extra; None if absent."""
        if name in _METRIC_FIELDS:
            return getattr(self, name)
        return self.extra.get(name)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "extra" and v is not None}
        out.update(self.extra)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: Any, label: str = "metrics") -> "Metrics":
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError(f"{label} must be a JSON object")
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            name = f"{label}.{shown(key)}"
            if key in ("kl_per_dim", "activity"):
                known[key] = _numbers(name, value)
            elif key in ("active_units", "iw_k", "n_images"):
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                    raise ValueError(f"{name} must be a whole number, got {shown(value)}")
                known[key] = value
            elif key in _METRIC_FIELDS:
                known[key] = _number(name, value)
            elif len(extra) < 64 and isinstance(key, str) and len(key) <= 40:
                extra[key] = _numbers(name, value) if isinstance(value, list) else _number(name, value)
        return cls(**known, extra=extra)


_METRIC_FIELDS = {f.name for f in fields(Metrics)} - {"extra"}


@dataclass(frozen=True)
class TrainingRun:
    """How a model was trained: the settings, and the facts of the run."""

    config: TrainConfig
    images: int | None = None  # training images used
    device: str | None = None
    init_from: str | None = None  # the checkpoint whose weights it started from (fine-tuning)
    images_per_s: float | None = None  # training steps only
    diverged: str | None = None  # why it stopped on a non-finite loss (last good weights kept)
    stopped: bool = False  # stopped by hand before its last epoch

    def to_dict(self) -> dict[str, Any]:
        return {**self.config.to_dict(), "train_images": self.images, "device": self.device,
                "init_from": self.init_from}

    @classmethod
    def from_dict(cls, data: Any, history: dict, label: str = "train_config") -> "TrainingRun | None":
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ValueError(f"{label} must be a JSON object")
        data = dict(data)
        images = data.pop("train_images", None)
        if images is not None and (isinstance(images, bool) or not isinstance(images, int) or images < 0):
            raise ValueError(f"{label}.train_images must be a whole number, got {shown(images)}")
        device = _text(f"{label}.device", data.get("device"), 40)
        init_from = _text(f"{label}.init_from", data.pop("init_from", None))
        allowed = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"{label} has unknown field(s): {', '.join(shown(k) for k in unknown[:5])}")
        try:
            config = TrainConfig(**data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{label}: {exc}") from None
        return cls(config, images, device, init_from, _number("history.train_images_per_s", history.get("train_images_per_s")),
                   _text("history.diverged", history.get("diverged"), 1000), bool(history.get("stopped", False)))


@dataclass(frozen=True)
class Curves:
    """Training curves: per-step records {"step", "epoch", "recon", "kl", "total", ...} and per-epoch
    records {"epoch", "step", "train": {...}, "test": {...}}, as `vaeviz.fit` makes them."""

    steps: tuple[dict, ...] = ()
    epochs: tuple[dict, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.steps or self.epochs)

    @classmethod
    def from_dict(cls, data: Any, label: str = "history") -> "Curves":
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError(f"{label} must be a JSON object")
        parts = {}
        for part in ("steps", "epochs"):
            records = data.get(part) or []
            if not isinstance(records, list) or len(records) > MAX_CURVE_RECORDS:
                raise ValueError(f"{label}.{part} must be a list of at most {MAX_CURVE_RECORDS:,} records")
            for record in records:
                _check_record(f"{label}.{part}", record)
            parts[part] = tuple(records)
        return cls(**parts)


def _check_record(label: str, record: Any, depth: int = 0) -> None:
    """A curve record: a JSON object of numbers (and, one level down, objects of numbers)."""
    if not isinstance(record, dict) or len(record) > 64:
        raise ValueError(f"{label} holds a record that is not a small JSON object")
    for key, value in record.items():
        if isinstance(value, dict) and depth == 0:
            _check_record(label, value, 1)
        elif isinstance(value, list):
            _numbers(f"{label}.{shown(key)}", value)
        elif value is not None:
            _number(f"{label}.{shown(key)}", value)


@dataclass(frozen=True)
class CheckpointMeta:
    """Everything a checkpoint says about its model (the tensors aside)."""

    kind: str
    config: ModelConfig
    dataset: str | None = None
    train: TrainingRun | None = None
    metrics: Metrics = field(default_factory=Metrics)
    curves: Curves = field(default_factory=Curves)
    created: str | None = None  # ISO time of the save that first wrote it
    version: str | None = None  # the vaeviz version that wrote it
    owner: str | None = None  # who saved it into the shared user folder (None: shipped or hand-copied)
    imported: str | None = None  # where its weights came from when not trained by vaeviz ("ONNX: enc.onnx + ...")
    # Derived from the kind, not stored: whether config.beta weighs a KL term (set by the model's
    # class, `for_model`, and by the loader, which looks the kind up in the registry).
    uses_beta: bool = field(default=False, compare=False)

    # --- built in one place -------------------------------------------------------------------

    @classmethod
    def for_model(cls, kind: str, config: ModelConfig, *, uses_beta: bool = False) -> "CheckpointMeta":
        """A new model's metadata: its kind and config, nothing measured yet."""
        return cls(kind, config, uses_beta=uses_beta)

    def with_run(self, *, dataset: str, train: TrainingRun, metrics: Metrics, curves: Curves) -> "CheckpointMeta":
        """The metadata after training (or fitting) on `dataset` and measuring on its test split."""
        return replace(self, dataset=dataset, train=train, metrics=metrics, curves=curves)

    def with_owner(self, owner: str | None) -> "CheckpointMeta":
        return replace(self, owner=owner)

    # --- read by attribute --------------------------------------------------------------------

    @property
    def beta(self) -> float | None:
        """The KL weight, for kinds that have a KL term; None for the others."""
        return self.config.beta if self.uses_beta else None

    @property
    def epochs(self) -> int | None:
        """Epochs actually trained (a stopped run counts what it finished), or None if unknown."""
        if self.curves.epochs:
            return max(int(e.get("epoch", 0)) for e in self.curves.epochs)
        return self.train.config.epochs if self.train is not None else None

    # --- the file's header --------------------------------------------------------------------

    def to_header(self, version: str) -> dict[str, str]:
        """The safetensors metadata: every value a string (JSON for the structured ones)."""
        train = self.train
        history = {"steps": list(self.curves.steps), "epochs": list(self.curves.epochs)}
        if train is not None:
            history.update(train_images_per_s=train.images_per_s, diverged=train.diverged, stopped=train.stopped)
        header = {
            "format": FORMAT,
            "kind": self.kind,
            "config": self.config.to_dict(),
            "vaeviz_version": version,
            "created": self.created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "dataset": self.dataset,
            "train_config": train.to_dict() if train is not None else None,
            "metrics": self.metrics.to_dict(),
            "history": history,
            "owner": self.owner,
            "imported": self.imported,
        }
        out = {}
        for key, value in header.items():
            if value is None:
                continue
            try:
                out[key] = value if isinstance(value, str) else json.dumps(value, allow_nan=False)
            except ValueError:  # json's own words ("Out of range float values ...") say nothing to a person
                raise ValueError(f"not saved: the {key} to store with the model hold NaN or infinite numbers") from None
        return out

    @classmethod
    def from_header(cls, raw: Any, label: str) -> "CheckpointMeta":
        """Read and validate a file's metadata; ValueError, naming the file and field, if anything is off."""
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ValueError(f"{label} is a safetensors file but not a vaeviz checkpoint (no '{FORMAT}' metadata)")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if not isinstance(value, str):  # safetensors metadata is text; anything else is hand-made
                raise ValueError(f"{label}: the metadata field {shown(key)!r} is not text")
            if key in ("config", "train_config", "metrics", "history"):
                try:
                    values[key] = json.loads(value)
                except json.JSONDecodeError:
                    raise ValueError(f"{label}: the metadata field {key!r} is not valid JSON") from None
                except RecursionError:
                    raise ValueError(f"{label}: the metadata field {key!r} is JSON nested far too deeply") from None
                if values[key] is not None and not isinstance(values[key], dict):
                    raise ValueError(f"{label}: the metadata field {key!r} is not a JSON object")
            else:
                values[key] = value
        if not isinstance(values.get("config"), dict) or "kind" not in values:
            raise ValueError(f"{label}: the metadata lacks the model kind or config")
        try:
            config = ModelConfig.from_dict(values["config"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{label}: invalid model config: {exc}") from None
        history = values.get("history") or {}
        try:
            return cls(
                kind=_text("kind", values["kind"], 40),
                config=config,
                dataset=_text("dataset", values.get("dataset"), 300),
                train=TrainingRun.from_dict(values.get("train_config"), history),
                metrics=Metrics.from_dict(values.get("metrics")),
                curves=Curves.from_dict(history),
                created=_text("created", values.get("created"), 64),
                version=_text("vaeviz_version", values.get("vaeviz_version"), 64),
                owner=_text("owner", values.get("owner"), 200),
                imported=_text("imported", values.get("imported"), 400),
            )
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint file as a listing sees it: its metadata, where it is, how big."""

    meta: CheckpointMeta
    path: str | None
    name: str
    size_bytes: int
