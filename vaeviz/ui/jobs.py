"""Background training jobs for the Trainer page: one daemon thread per job, polled by the page.

A `TrainingJob` trains one model, or several in sequence (a beta sweep), with `vaeviz.fit` on its
own freshly built models, in a thread of its own, so a Streamlit script never blocks on training.
The thread's callbacks copy small plain-Python records (floats, short lists) and a few small numpy
pictures into a lock-protected state; the page reads a consistent copy with `view()` about once a
second. Nothing keeps a tensor per step, every list is bounded (the per-step curve is thinned to
`MAX_CURVE_POINTS`), and pictures are replaced, not appended, so memory stays flat however long a
run is. Pause blocks the trainer inside `should_stop`; stop is a flag it sees before the next step.

This module never imports streamlit: the page keeps a job in `st.session_state` (one per browser
session, so two sessions never share a model) and passes `owner_alive`, so a job whose browser
session has gone stops by itself instead of using the CPU for nobody.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import torch

from .. import latent
from ..config import ModelConfig, TrainConfig
from ..data import Split, class_exemplars, dataset_spec, load_split
from ..metrics import ACTIVE_UNIT_KL, evaluate
from ..models import Autoencoder, build_model
from ..train import fit, pick_device

MAX_CURVE_POINTS = 2000  # per-step points kept for the live curve (thinned evenly beyond this)
MAX_SAVED_STEPS = 400  # per-step points written into a checkpoint (as the CLI does)
MAX_SWEEP_RUNS = 12  # betas in one sweep
SNAPSHOT_EVERY_S = 2.0  # seconds between refreshes of the live pictures (and at each epoch's end)
MAP_IMAGES = 1000  # test images drawn on the live latent map
PRIOR_SAMPLES = 64  # an 8 x 8 grid of samples from the prior
OWNER_GRACE_S = 60.0  # a job whose browser session is gone this long stops (reconnects keep it)
OWNER_CHECK_EVERY_S = 2.0  # seconds between calls of owner_alive
ACTIVE = ("starting", "loading data", "training", "paused", "evaluating")
# Plotly figures hold reference cycles, so the ~3 a second a polling page builds are freed only by
# Python's full (generation 2) collection, which runs rarely: between runs the process's memory
# creeps by ~2 MB a minute. The Trainer page (and bench/trainer_memory.py) run a full collection
# every this many polls (~120 ms each on a busy 2-core machine), which keeps memory flat.
FULL_GC_EVERY_POLLS = 30


@dataclass(frozen=True)
class RunSpec:
    """What to train in one run: the choices the Trainer page offers, nothing more."""

    dataset: str = "mnist"
    kind: str = "vae"  # "ae" or "vae"
    arch: str = "mlp"
    latent_dim: int = 2  # 2 draws the latent map without a projection
    beta: float = 1.0  # VAE only
    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 128
    train_images: int | None = None  # the first N training images; None takes the whole split
    seed: int = 0
    device: str = "auto"

    def model_config(self) -> ModelConfig:
        """The architecture, with the image shape and likelihood of the data set."""
        spec = dataset_spec(self.dataset)
        channels, height, width = spec.image_shape
        return ModelConfig(arch=self.arch, latent_dim=self.latent_dim, channels=channels, height=height,
                           width=width, beta=float(self.beta) if self.kind == "vae" else 1.0,
                           likelihood=spec.likelihood)

    def train_config(self, log_every: int = 50) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                           device=self.device, log_every=log_every, extra={"trained_with": "vaeviz trainer page"})

    def check(self) -> None:
        """Raise ValueError, with a readable message, for settings that cannot be trained."""
        if self.kind not in ("ae", "vae"):
            raise ValueError(f"the trainer trains an AE or a VAE, not {self.kind!r}")
        if self.train_images is not None and self.train_images < 1:
            raise ValueError("use at least one training image")
        self.model_config()
        self.train_config()
        pick_device(self.device)

    def label(self) -> str:
        """A default name: data set, kind, architecture, latent size (and beta for a VAE)."""
        name = f"{self.dataset}-{self.kind}-{self.arch}-{self.latent_dim}"
        return name + (f"-beta{self.beta:g}".replace(".", "p") if self.kind == "vae" else "")


@dataclass
class RunResult:
    """A finished run: its model (on the CPU, eval mode) with checkpoint metadata, and a summary."""

    spec: RunSpec
    model: Autoencoder
    metrics: dict  # vaeviz.metrics.evaluate on the whole test split, seed 0 (as `vaeviz eval`)
    samples: np.ndarray | None  # uint8 mosaic of prior samples, or None for point data
    sample_points: np.ndarray | None  # (N, 2) decoded prior samples, for point data
    diverged: str | None
    stopped: bool
    seconds: float


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a job's state for the page (read-only; plain Python and numpy)."""

    status: str
    message: str | None
    run_index: int  # the run being trained (0-based), or the last one
    n_runs: int
    spec: RunSpec
    steps: list[dict]  # {"step", "epoch", "recon", "kl", "total", "neg_elbo"}, thinned
    epochs: list[dict]  # fit's epoch records of the current run: train and test terms
    kl_per_dim: list[float] | None  # latest window's mean KL per latent dimension (VAE)
    progress: dict  # epoch, epochs, step, total_steps, fraction, images_per_s, eta_s, elapsed_s
    visuals: dict  # version, samples, sample_points, holdout, holdout_labels, map_*
    results: list[RunResult]

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def active_units(self) -> int | None:
        if self.kl_per_dim is None:
            return None
        return sum(k > ACTIVE_UNIT_KL for k in self.kl_per_dim)


class ThinnedList:
    """A list that keeps at most `limit` items, evenly spread over everything appended.

    When full, every other item is dropped and from then on only every 2nd (4th, ...) new item is
    kept, so a curve keeps its shape over any number of steps in bounded memory. `last` is the
    newest item, kept or not, so a live curve always reaches the present.
    """

    def __init__(self, limit: int) -> None:
        if limit < 2:
            raise ValueError("limit must be at least 2")
        self.limit, self.items, self.stride, self.count = limit, [], 1, 0
        self.last = None

    def append(self, item) -> None:
        if self.count % self.stride == 0:
            self.items.append(item)
            if len(self.items) > self.limit:
                self.items = self.items[::2]
                self.stride *= 2
        self.count += 1
        self.last = item

    def snapshot(self) -> list:
        if self.last is not None and (not self.items or self.items[-1] is not self.last):
            return [*self.items, self.last]
        return list(self.items)


def thin(records: list, limit: int) -> list:
    """At most `limit` records, evenly spaced, the last one kept (the CLI's rule for checkpoints)."""
    if len(records) <= limit:
        return list(records)
    stride = len(records) / limit
    return [records[int(i * stride)] for i in range(limit - 1)] + [records[-1]]


@functools.lru_cache(maxsize=4)
def _whole_split(dataset: str, split: str, device: str) -> Split:
    """Whole splits, kept for the next run (a sweep reads the same data five times). Read-only."""
    return load_split(dataset, split, device=device)


def default_threads() -> int:
    """CPU threads for training: half the cores, so the server keeps the rest for its pages."""
    return max(1, (os.cpu_count() or 2) // 2)


def parse_betas(text: str) -> list[float]:
    """'0, 0.1, 1, 4, 10' -> [0.0, 0.1, 1.0, 4.0, 10.0]; ValueError with a readable message."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    if not parts:
        raise ValueError("give at least one beta, for example 0, 0.1, 1, 4, 10")
    betas = []
    for p in parts:
        try:
            b = float(p)
        except ValueError:
            raise ValueError(f"{p.strip()!r} is not a number") from None
        if not math.isfinite(b) or b < 0 or b > 1000:
            raise ValueError(f"beta must be between 0 and 1000, got {p.strip()}")
        betas.append(b)
    if len(betas) > MAX_SWEEP_RUNS:
        raise ValueError(f"a sweep trains at most {MAX_SWEEP_RUNS} models; got {len(betas)} betas")
    return betas


@dataclass
class _RunContext:
    """Fixed inputs of the live pictures, made once per run (on the training device)."""

    prior_z: torch.Tensor  # (PRIOR_SAMPLES, D): the same codes all run long, so changes are the model's
    holdout: torch.Tensor | None  # (K, C, H, W): one test image per class
    holdout_labels: list[str]
    classes: tuple[str, ...]
    map_images: torch.Tensor  # (M, C, H, W)
    map_labels: np.ndarray  # (M,) int
    is_image: bool
    total_steps: int
    batch_size: int
    last_snapshot: float = 0.0
    last_step: int = 0
    last_time: float = 0.0


class TrainingJob:
    """Train the runs in `specs` one after another in a daemon thread; see the module docstring.

    `threads`: torch CPU threads for training (default: half the cores; unused on a GPU).
    `owner_alive`: called now and then from the thread; once it has said False for
    `OWNER_GRACE_S` seconds in a row the job stops (its browser session is gone).
    """

    def __init__(self, specs: Sequence[RunSpec], *, threads: int | None = None,
                 owner_alive: Callable[[], bool] | None = None,
                 snapshot_every_s: float = SNAPSHOT_EVERY_S) -> None:
        specs = list(specs)
        if not specs:
            raise ValueError("nothing to train")
        if len(specs) > MAX_SWEEP_RUNS:
            raise ValueError(f"a job trains at most {MAX_SWEEP_RUNS} models")
        for spec in specs:
            spec.check()
        self.specs = specs
        self.threads = threads or default_threads()
        self.owner_alive = owner_alive
        self.snapshot_every_s = snapshot_every_s
        self.created = time.time()
        self.uid = uuid.uuid4().hex[:12]  # names this job in session state (registered models)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._go = threading.Event()  # cleared while paused
        self._go.set()
        self._thread: threading.Thread | None = None
        self._owner_gone_since: float | None = None
        self._owner_checked = 0.0
        # --- state below is guarded by _lock ---
        self._status = "starting"
        self._message: str | None = None
        self._run_index = 0
        self._results: list[RunResult] = []
        self._reset_run_state()

    # --- control (any thread) ----------------------------------------------------------------

    def start(self) -> "TrainingJob":
        if self._thread is not None:
            raise RuntimeError("a job starts once")
        self._thread = threading.Thread(target=self._main, name="vaeviz-training", daemon=True)
        self._thread.start()
        return self

    def pause(self) -> None:
        self._go.clear()

    def resume(self) -> None:
        self._go.set()

    def stop(self) -> None:
        """Ask the job to stop before its next step; the model so far is kept (and evaluated)."""
        self._stop.set()
        self._go.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True if it has finished."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def paused(self) -> bool:
        return not self._go.is_set() and not self._stop.is_set()

    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    @property
    def results(self) -> list[RunResult]:
        with self._lock:
            return list(self._results)

    def view(self) -> JobView:
        with self._lock:
            return JobView(
                status=self._status,
                message=self._message,
                run_index=self._run_index,
                n_runs=len(self.specs),
                spec=self.specs[min(self._run_index, len(self.specs) - 1)],
                steps=self._steps.snapshot(),
                epochs=self._epochs.snapshot(),
                kl_per_dim=self._kl_per_dim,
                progress=dict(self._progress),
                visuals=dict(self._visuals),
                results=list(self._results),
            )

    # --- the thread ----------------------------------------------------------------------------

    def _reset_run_state(self) -> None:
        self._steps = ThinnedList(MAX_CURVE_POINTS)
        self._epochs = ThinnedList(MAX_CURVE_POINTS)  # one record an epoch; bounded for very long runs
        self._kl_per_dim: list[float] | None = None
        self._progress = {"epoch": 0, "epochs": 0, "step": 0, "total_steps": 0, "fraction": 0.0,
                          "images_per_s": 0.0, "eta_s": None, "elapsed_s": 0.0}
        self._visuals: dict = {"version": 0}
        self._active_seconds = 0.0  # training time of this run, pauses excluded
        self._paused_seconds = 0.0  # pause time since the last on_step (training thread only)

    def _set(self, status: str, message: str | None = None) -> None:
        with self._lock:
            self._status = status
            if message is not None:
                self._message = message

    def _main(self) -> None:
        notes = []
        try:
            for index, spec in enumerate(self.specs):
                if self._stop.is_set():
                    break
                with self._lock:
                    self._run_index = index
                    self._reset_run_state()
                result = self._train_one(spec)
                with self._lock:
                    self._results.append(result)
                if result.diverged:
                    notes.append(result.diverged if len(self.specs) == 1 else f"beta {spec.beta:g}: {result.diverged}")
            if self._stop.is_set():
                final, message = "stopped", self._message or "Stopped. The model so far is kept: you can save it."
            elif notes:
                final, message = ("diverged" if len(self.specs) == 1 else "done"), " ".join(notes)
            else:
                final, message = "done", None
            self._set(final, message)
        except Exception as exc:  # report every failure on the page instead of dying silently
            if isinstance(exc, ValueError):  # DataUnavailable, bad settings: a readable message
                message = str(exc)
            else:
                message = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            self._set("failed", f"Training failed: {message}")

    def _train_one(self, spec: RunSpec) -> RunResult:
        started = time.perf_counter()
        device = pick_device(spec.device)
        if device.type == "cpu":
            # Per thread for OpenMP; later threads (other sessions' scripts) inherit it.
            torch.set_num_threads(self.threads)
        self._set("loading data")
        train = _whole_split(spec.dataset, "train", str(device))
        test = _whole_split(spec.dataset, "test", str(device))
        if spec.train_images is not None:
            train = train._replace(images=train.images[: spec.train_images], labels=train.labels[: spec.train_images])
        model = build_model(spec.kind, spec.model_config(), seed=spec.seed).to(device)
        steps_per_epoch = math.ceil(len(train.images) / spec.batch_size)
        # About 40 points an epoch, at most every 25 steps: live curves without a sync every step.
        tcfg = spec.train_config(log_every=max(1, min(25, steps_per_epoch // 40)))
        ctx = self._context(spec, model, test, steps_per_epoch * spec.epochs)
        with self._lock:
            self._progress.update(epochs=spec.epochs, total_steps=ctx.total_steps)
        self._snapshot(model, ctx, epoch=0)
        self._set("training")
        ctx.last_time = time.perf_counter()

        history = fit(model, train, tcfg, test=test,
                      on_step=lambda info: self._on_step(info, model, ctx),
                      on_epoch=lambda record: self._on_epoch(record, model, ctx),
                      should_stop=self._should_stop)
        self._set("evaluating")
        metrics = evaluate(model, test.images, batch_size=tcfg.eval_batch_size, seed=0)
        self._snapshot(model, ctx, epoch=len(history.epochs))
        model.to("cpu").eval()
        meta = {
            "dataset": spec.dataset,
            "train_config": {**tcfg.to_dict(), "train_images": len(train.images), "device": str(device)},
            "metrics": metrics,
            "history": {
                "epochs": history.epochs,
                "steps": thin(history.steps, MAX_SAVED_STEPS),
                "train_images_per_s": history.train_images_per_s,
                "diverged": history.diverged,
                "stopped": history.stopped,
            },
        }
        cfg = model.cfg
        model.meta = {**meta, "kind": model.kind, "arch": cfg.arch, "latent_dim": cfg.latent_dim,
                      "beta": cfg.beta if model.kind == "vae" else None, "name": spec.label(), "path": None}
        with self._lock:
            visuals = dict(self._visuals)
        return RunResult(spec, model, metrics, visuals.get("samples"), visuals.get("sample_points"),
                         history.diverged, history.stopped, time.perf_counter() - started)

    def _context(self, spec: RunSpec, model: Autoencoder, test: Split, total_steps: int) -> _RunContext:
        cfg = model.cfg
        device = next(model.parameters()).device
        gen = torch.Generator().manual_seed(spec.seed + 1)  # its own generator: training's noise is untouched
        prior_z = torch.randn(PRIOR_SAMPLES, cfg.latent_dim, generator=gen).to(device)
        is_image = cfg.height >= 8 and cfg.width >= 8
        holdout, holdout_labels = None, []
        if is_image:
            idx = class_exemplars(test.labels, len(test.classes))
            holdout = test.images[idx]
            holdout_labels = [test.classes[int(test.labels[i])] for i in idx]
        m = min(MAP_IMAGES, len(test.images))
        return _RunContext(prior_z, holdout, holdout_labels, tuple(test.classes), test.images[:m], test.labels[:m].cpu().numpy(),
                           is_image, total_steps, spec.batch_size)

    @torch.no_grad()
    def _snapshot(self, model: Autoencoder, ctx: _RunContext, epoch: int) -> None:
        """Refresh the live pictures from the model as it is now (in the training thread)."""
        was_training = model.training
        model.eval()  # no layer here behaves differently, but decoding is inference: say so
        try:
            samples = model.decode(ctx.prior_z).float().cpu().numpy()  # (S, C, H, W)
            codes = model.encode(ctx.map_images)[0].float().cpu().numpy()  # (M, D)
            recon = None
            if ctx.holdout is not None:
                recon = model.decode(model.encode(ctx.holdout)[0]).float().cpu().numpy()
        finally:
            model.train(was_training)
        ctx.last_snapshot = time.perf_counter()
        if not all(np.isfinite(a).all() for a in (samples, codes, recon) if a is not None):
            # Weights on their way to diverging (the trainer's guard stops the run at its next
            # check, or has restored weights that still overflow): keep the last pictures. A NaN
            # code would also make the map's PCA raise and turn a divergence into a failed run.
            return
        visuals: dict = {"epoch": epoch}
        if ctx.is_image:
            visuals["samples"] = latent.to_uint8(latent.mosaic(_hw(samples), cols=8))
            originals = ctx.holdout.float().cpu().numpy()
            both = np.concatenate([_hw(originals), _hw(recon)])
            visuals["holdout"] = latent.to_uint8(latent.mosaic(both, cols=len(originals)))
            visuals["holdout_labels"] = ctx.holdout_labels
            visuals["sample_points"] = None
        else:
            visuals["samples"] = None
            visuals["holdout"] = None
            visuals["sample_points"] = samples.reshape(len(samples), -1)[:, :2].astype(np.float32)
        visuals.update(_map_coords(codes))
        visuals["map_labels"] = ctx.map_labels
        visuals["map_classes"] = ctx.classes
        with self._lock:
            visuals["version"] = self._visuals.get("version", 0) + 1
            self._visuals = visuals

    def _on_step(self, info: dict, model: Autoencoder, ctx: _RunContext) -> None:
        now = time.perf_counter()
        step = info["step"]
        dt = max(now - ctx.last_time - self._paused_seconds, 1e-9)
        self._paused_seconds = 0.0
        images = (step - ctx.last_step) * ctx.batch_size
        ctx.last_step, ctx.last_time = step, now
        record = {"step": step, "epoch": info["epoch"] + info["epoch_progress"] - 1.0,
                  "recon": info["recon"], "kl": info["kl"], "total": info["total"],
                  "neg_elbo": info["recon"] + info["kl"]}
        with self._lock:
            self._active_seconds += dt
            rate = images / dt
            old = self._progress["images_per_s"]
            ips = rate if old == 0 else 0.7 * old + 0.3 * rate  # smoothed: steps are noisy
            per_step = self._active_seconds / step
            self._steps.append(record)
            self._kl_per_dim = info["kl_per_dim"] if model.kind == "vae" else None
            self._progress.update(epoch=info["epoch"], step=step, fraction=step / ctx.total_steps,
                                  images_per_s=ips, eta_s=per_step * (ctx.total_steps - step),
                                  elapsed_s=self._active_seconds)
        if now - ctx.last_snapshot >= self.snapshot_every_s:
            self._snapshot(model, ctx, epoch=info["epoch"])

    def _on_epoch(self, record: dict, model: Autoencoder, ctx: _RunContext) -> None:
        rec = {k: (dict(v) if isinstance(v, dict) else v) for k, v in record.items()}
        for part in ("train", "test"):
            if part in rec and "neg_elbo" not in rec[part]:
                rec[part]["neg_elbo"] = rec[part]["recon"] + rec[part]["kl"]
        with self._lock:
            self._epochs.append(rec)
        self._snapshot(model, ctx, epoch=record["epoch"])
        ctx.last_time = time.perf_counter()  # the test evaluation is not training time

    def _should_stop(self) -> bool:
        """Called by fit before every step: blocks while paused; True once stopped."""
        if not self._go.is_set():
            self._set("paused")
            paused_at = time.perf_counter()
            while not self._go.wait(0.25):
                self._check_owner()
            self._paused_seconds += time.perf_counter() - paused_at  # kept out of speed and time left
            with self._lock:
                if self._status == "paused":
                    self._status = "training"
        self._check_owner()
        return self._stop.is_set()

    def _check_owner(self) -> None:
        if self.owner_alive is None:
            return
        now = time.monotonic()
        if now - self._owner_checked < OWNER_CHECK_EVERY_S:
            return
        self._owner_checked = now
        try:
            alive = self.owner_alive()
        except Exception:  # a check that fails must not kill training
            alive = True
        if alive:
            self._owner_gone_since = None
        else:
            self._owner_gone_since = self._owner_gone_since or now
        if not alive and now - self._owner_gone_since >= OWNER_GRACE_S:
            with self._lock:
                self._message = "Stopped: the browser session that started this run has closed."
            self.stop()


def _hw(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W) for grey images, (N, H, W, C) for colour."""
    return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)


def _map_coords(codes: np.ndarray) -> dict:
    """2-D coordinates of codes (M, D) for the live map: the codes themselves, or their PCA."""
    d = codes.shape[1]
    if d == 1:
        return {"map_xy": np.c_[codes[:, 0], np.zeros(len(codes), np.float32)], "map_axes": ("z1", "")}
    if d == 2:
        return {"map_xy": codes.astype(np.float32), "map_axes": ("z1", "z2")}
    proj = latent.pca(codes, 2)
    r = proj.explained_variance_ratio
    return {"map_xy": proj.transform(codes).astype(np.float32),
            "map_axes": (f"PC 1 ({r[0]:.0%} of variance)", f"PC 2 ({r[1]:.0%})")}


def sweep_specs(base: RunSpec, betas: Sequence[float]) -> list[RunSpec]:
    """One VAE spec per beta, otherwise as `base`."""
    return [replace(base, kind="vae", beta=float(b)) for b in betas]


__all__ = ["JobView", "RunResult", "RunSpec", "ThinnedList", "TrainingJob", "parse_betas", "sweep_specs", "thin",
           "default_threads"]
