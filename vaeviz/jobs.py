"""Training jobs: one model (or a beta sweep) trained in a background thread, and the server's board.

A `TrainingJob` trains its runs in sequence with `vaeviz.fit`, on freshly built models, in a
daemon thread, so a Streamlit script never blocks on training. Its lifecycle is a `JobStatus`:
queued -> loading data -> training (<-> paused) -> evaluating -> finished, stopped or failed. The
thread's callbacks copy small plain-Python records and a few small numpy pictures into a
lock-protected state; a page reads a consistent copy with `view()` about once a second. Nothing
keeps a tensor per step, every list is bounded, and pictures are replaced, not appended, so memory
stays flat however long a run is.

The `JobBoard` is the server's one list of jobs, keyed by owner (a browser's token or a signed-in
user), so a page reload finds its job again. It runs at most `limit` jobs at once and queues the
rest first come, first served, one job per owner; a queued job whose browser has gone is dropped.
A `TrainingSession` is one browser session's side of it: start, register finished models into the
session's catalogue, save one and promote it there. No streamlit in this module.
"""

from __future__ import annotations

import enum
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

from . import latent
from .catalogue import ModelRef, SessionModels
from .config import ModelConfig, TrainConfig, conv_channels_for, env_whole
from .data import Split, class_exemplars, dataset_spec, dataset_stem, load_split
from .folders import allowed_roots
from .meta import Curves, Metrics, TrainingRun
from .metrics import ACTIVE_UNIT_VARIANCE, evaluate, unit_activity
from .models import MODELS, Model, build_model
from .train import fit, pick_device

MAX_CURVE_POINTS = 2000  # per-step points kept for the live curve (thinned evenly beyond this)
MAX_SAVED_STEPS = 400  # per-step points written into a checkpoint (as the CLI does)
MAX_SWEEP_RUNS = 12  # betas in one sweep
SNAPSHOT_EVERY_S = 2.0  # seconds between refreshes of the live pictures (and at each epoch's end)
MAP_IMAGES = 1000  # test images drawn on the live latent map
PRIOR_SAMPLES = 64  # an 8 x 8 grid of samples from the prior
OWNER_GRACE_S = 60.0  # a job whose browser session is gone this long stops (reconnects keep it)
OWNER_CHECK_EVERY_S = 2.0  # seconds between calls of owner_alive
# Plotly figures hold reference cycles, so the ~3 a second a polling page builds are freed only by
# Python's full (generation 2) collection, which runs rarely: between runs the process's memory
# creeps by ~2 MB a minute. The Trainer page (and bench/trainer_memory.py) run a full collection
# every this many polls (~120 ms each on a busy 2-core machine), which keeps memory flat.
FULL_GC_EVERY_POLLS = 30
TRAINER_KINDS = tuple(MODELS)  # the kinds the Trainer page offers: all of them


class JobStatus(enum.Enum):
    QUEUED = "queued"
    LOADING_DATA = "loading data"
    TRAINING = "training"
    PAUSED = "paused"
    EVALUATING = "evaluating"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """Queued or under way: not yet at an end."""
        return self not in (JobStatus.FINISHED, JobStatus.STOPPED, JobStatus.FAILED)

    @property
    def running(self) -> bool:
        """Holding one of the board's slots (started and not ended)."""
        return self.active and self is not JobStatus.QUEUED


@dataclass(frozen=True)
class RunSpec:
    """What to train in one run: the choices the Trainer page offers, nothing more."""

    dataset: str = "mnist"
    kind: str = "vae"
    arch: str = "mlp"
    latent_dim: int = 2  # 2 draws the latent map without a projection
    beta: float = 1.0  # kinds with a KL term only
    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 128
    train_images: int | None = None  # the first N training images; None takes the whole split
    seed: int = 0
    device: str = "auto"
    noise: float = 0.3  # dae: the corruption's level (Gaussian std)
    sparsity: float = 0.1  # sae: the L1 weight
    contraction: float = 0.01  # cae: the Jacobian penalty's weight
    bottom_dim: int = 32  # hvae: the lower layer's size
    kl_warmup: float = 0.0  # epochs over which the KL weight ramps up (kinds with a KL term)

    def model_config(self) -> ModelConfig:
        """The architecture, with the image shape and likelihood of the data set (or the kind's own)."""
        spec = dataset_spec(self.dataset, roots=allowed_roots())
        channels, height, width = spec.image_shape
        cls = MODELS.get(self.kind)
        uses_beta = cls is not None and cls.uses_beta
        larger = {"conv_channels": conv_channels_for(min(height, width))} if self.arch == "conv" and height > 28 else {}
        return ModelConfig(arch=self.arch, latent_dim=self.latent_dim, channels=channels, height=height, **larger,
                           width=width, beta=float(self.beta) if uses_beta else 1.0,
                           likelihood=(cls.likelihood if cls is not None and cls.likelihood else spec.likelihood),
                           noise=self.noise, sparsity=self.sparsity, contraction=self.contraction,
                           bottom_dim=self.bottom_dim)

    def train_config(self, log_every: int = 50) -> TrainConfig:
        uses_beta = self.kind in MODELS and MODELS[self.kind].uses_beta
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                           device=self.device, log_every=log_every, kl_warmup=self.kl_warmup if uses_beta else 0.0,
                           extra={"trained_with": "vaeviz trainer page"})

    def check(self) -> None:
        """Raise ValueError, with a readable message, for settings that cannot be trained."""
        if self.kind not in TRAINER_KINDS:
            raise ValueError(f"the trainer trains {' or '.join(TRAINER_KINDS)}, not {self.kind!r}")
        if self.train_images is not None and self.train_images < 1:
            raise ValueError("use at least one training image")
        self.model_config()
        self.train_config()
        pick_device(self.device)

    def label(self) -> str:
        """A default name: data set, kind, architecture, latent size (and beta where it applies)."""
        name = f"{dataset_stem(self.dataset)}-{self.kind}-{self.arch}-{self.latent_dim}"
        return name + (f"-beta{self.beta:g}".replace(".", "p") if MODELS[self.kind].uses_beta else "")


@dataclass
class RunResult:
    """A finished run: its model (on the CPU, eval mode; `model.meta` filled in) and a summary."""

    run_id: str  # "<job uid>/<index>": names the run in a session's catalogue
    spec: RunSpec
    model: Model
    samples: np.ndarray | None  # uint8 mosaic of prior samples, or None for point data
    sample_points: np.ndarray | None  # (N, 2) decoded prior samples, for point data
    seconds: float

    @property
    def metrics(self) -> Metrics:  # vaeviz.metrics.evaluate on the whole test split, seed 0 (as `vaeviz eval`)
        return self.model.meta.metrics

    @property
    def diverged(self) -> str | None:
        return self.model.meta.train.diverged

    @property
    def stopped(self) -> bool:
        return self.model.meta.train.stopped


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a job's state for a page (read-only; plain Python and numpy)."""

    status: JobStatus
    message: str | None
    run_index: int  # the run being trained (0-based), or the last one
    n_runs: int
    spec: RunSpec
    steps: list[dict]  # {"step", "epoch", <terms>, "total"}, thinned
    epochs: list[dict]  # fit's epoch records of the current run: train and test terms
    kl_per_dim: list[float] | None  # latest window's mean KL per latent dimension (probabilistic kinds)
    progress: dict  # epoch, epochs, step, total_steps, fraction, images_per_s, eta_s, elapsed_s
    visuals: dict  # version, samples, sample_points, holdout, holdout_labels, map_*, activity
    results: list[RunResult]
    queue_position: int | None = None  # 1 = next to start; None when not queued
    queue_wait_s: float | None = None  # an estimate of the wait, from the jobs ahead

    @property
    def active(self) -> bool:
        return self.status.active

    @property
    def active_units(self) -> int | None:
        """Active units of the live model (Burda et al.'s definition, on the map's test images)."""
        activity = self.visuals.get("activity")
        return None if activity is None else int((np.asarray(activity) > ACTIVE_UNIT_VARIANCE).sum())

    @property
    def diverged(self) -> bool:
        return any(r.diverged for r in self.results)


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


def thin(records: Sequence, limit: int) -> list:
    """At most `limit` records, evenly spaced, the last one kept (the rule for checkpoints)."""
    if len(records) <= limit:
        return list(records)
    stride = len(records) / limit
    return [records[int(i * stride)] for i in range(limit - 1)] + [records[-1]]


@functools.lru_cache(maxsize=4)
def _whole_split(dataset: str, split: str, device: str) -> Split:
    """Whole splits, kept for the next run (a sweep reads the same data five times). Read-only."""
    return load_split(dataset, split, device=device, roots=allowed_roots())  # folders: only the allowed roots


def default_threads() -> int:
    """CPU threads for one training job: half the cores, so the server keeps the rest for its pages."""
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
        if b in betas:
            raise ValueError(f"beta {b:g} is listed twice; a sweep trains one model per value")
        betas.append(b)
    if len(betas) > MAX_SWEEP_RUNS:
        raise ValueError(f"a sweep trains at most {MAX_SWEEP_RUNS} models; got {len(betas)} betas")
    return betas


def sweep_specs(base: RunSpec, betas: Sequence[float]) -> list[RunSpec]:
    """One VAE spec per beta, otherwise as `base`."""
    return [replace(base, kind="vae", beta=float(b)) for b in betas]


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
    `owner_alive`: called now and then from the thread (and by the board while queued); once it has
    said False for `OWNER_GRACE_S` seconds in a row the job stops (its browser session is gone).
    """

    def __init__(self, specs: Sequence[RunSpec], *, owner: str | None = None, threads: int | None = None,
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
        self.owner = owner
        self.threads = threads or default_threads()
        self.owner_alive = owner_alive
        self.snapshot_every_s = snapshot_every_s
        self.created = time.time()
        self.uid = uuid.uuid4().hex[:12]
        self.on_end: Callable[[TrainingJob], None] | None = None  # the board's hook: a slot is free
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._go = threading.Event()  # cleared while paused
        self._go.set()
        self._thread: threading.Thread | None = None
        self._owner_gone_since: float | None = None
        self._owner_checked = 0.0
        # --- state below is guarded by _lock ---
        self._status = JobStatus.QUEUED
        self._message: str | None = None
        self._run_index = 0
        self._results: list[RunResult] = []
        self._started: float | None = None
        self._ended: float | None = None
        self._reset_run_state()

    # --- control (any thread) ----------------------------------------------------------------

    def start(self) -> "TrainingJob":
        if self._thread is not None:
            raise RuntimeError("a job starts once")
        with self._lock:
            if self._status is not JobStatus.QUEUED:
                raise RuntimeError(f"a {self._status.value} job cannot start")
            self._started = time.time()
        self._thread = threading.Thread(target=self._main, name="vaeviz-training", daemon=True)
        self._thread.start()
        return self

    def pause(self) -> None:
        self._go.clear()

    def resume(self) -> None:
        self._go.set()

    def stop(self, message: str | None = None) -> None:
        """Stop before the next step (the model so far is kept, and measured); a queued job ends now."""
        with self._lock:
            if message:
                self._message = message
            queued = self._status is JobStatus.QUEUED and self._thread is None
            if queued:
                self._status = JobStatus.STOPPED
                self._message = self._message or "Cancelled before it started."
                self._ended = time.time()
        self._stop.set()
        self._go.set()
        if queued:
            self._ended_hook()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True if the job has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.status.active

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def paused(self) -> bool:
        return not self._go.is_set() and not self._stop.is_set()

    @property
    def status(self) -> JobStatus:
        with self._lock:
            return self._status

    @property
    def results(self) -> list[RunResult]:
        with self._lock:
            return list(self._results)

    def result(self, run_id: str) -> RunResult | None:
        return next((r for r in self.results if r.run_id == run_id), None)

    @property
    def seconds_left(self) -> float | None:
        """Estimated seconds until this job ends (None while nothing is known)."""
        with self._lock:
            if not self._status.running:
                return None
            p = self._progress
            runs_after = len(self.specs) - self._run_index - 1
            eta = p["eta_s"]
            if eta is None:
                return None
            per_run = (p["elapsed_s"] + eta)
            return eta + runs_after * per_run

    def view(self, *, queue_position: int | None = None, queue_wait_s: float | None = None) -> JobView:
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
                queue_position=queue_position,
                queue_wait_s=queue_wait_s,
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

    def _set(self, status: JobStatus, message: str | None = None) -> None:
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
                result = self._train_one(index, spec)
                with self._lock:
                    self._results.append(result)
                if result.diverged:
                    notes.append(result.diverged if len(self.specs) == 1 else f"beta {spec.beta:g}: {result.diverged}")
            if self._stop.is_set():
                final, message = JobStatus.STOPPED, self._message or "Stopped. The model so far is kept: you can save it."
            else:
                final, message = JobStatus.FINISHED, " ".join(notes) or None
            self._set(final, message)
        except Exception as exc:  # report every failure on the page instead of dying silently
            if isinstance(exc, ValueError):  # DataUnavailable, bad settings: a readable message
                message = str(exc)
            else:
                message = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            self._set(JobStatus.FAILED, f"Training failed: {message}")
        finally:
            with self._lock:
                self._ended = time.time()
            self._ended_hook()

    def _ended_hook(self) -> None:
        if self.on_end is not None:
            try:
                self.on_end(self)
            except Exception:  # the board's bookkeeping must not turn a finished job into a failure
                traceback.print_exc()

    def _train_one(self, index: int, spec: RunSpec) -> RunResult:
        started = time.perf_counter()
        device = pick_device(spec.device)
        if device.type == "cpu":
            # Per thread for OpenMP; later threads (other sessions' scripts) inherit it.
            torch.set_num_threads(self.threads)
        self._set(JobStatus.LOADING_DATA)
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
        self._set(JobStatus.TRAINING)
        ctx.last_time = time.perf_counter()

        history = fit(model, train, tcfg, test=test,
                      on_step=lambda info: self._on_step(info, model, ctx),
                      on_epoch=lambda record: self._on_epoch(record, model, ctx),
                      should_stop=self._should_stop)
        self._set(JobStatus.EVALUATING)
        metrics = evaluate(model, test.images, batch_size=tcfg.eval_batch_size, seed=0)
        self._snapshot(model, ctx, epoch=len(history.epochs))
        model.to("cpu").eval()
        run = TrainingRun(tcfg, len(train.images), str(device), images_per_s=history.train_images_per_s,
                          diverged=history.diverged, stopped=history.stopped)
        model.meta = model.meta.with_run(dataset=spec.dataset, train=run, metrics=metrics,
                                         curves=Curves(tuple(thin(history.steps, MAX_SAVED_STEPS)), tuple(history.epochs)))
        with self._lock:
            visuals = dict(self._visuals)
        return RunResult(f"{self.uid}/{index}", spec, model, visuals.get("samples"), visuals.get("sample_points"),
                         time.perf_counter() - started)

    def _context(self, spec: RunSpec, model: Model, test: Split, total_steps: int) -> _RunContext:
        cfg = model.cfg
        device = model.device
        gen = torch.Generator().manual_seed(spec.seed + 1)  # its own generator: training's noise is untouched
        prior_z = torch.randn(PRIOR_SAMPLES, cfg.latent_dim, generator=gen).to(device)
        is_image = cfg.height >= 8 and cfg.width >= 8
        holdout, holdout_labels = None, []
        if is_image:
            idx = class_exemplars(test.labels, len(test.classes))
            holdout = test.images[idx]
            holdout_labels = [test.classes[int(test.labels[i])] for i in idx]
        m = min(MAP_IMAGES, len(test.images))
        return _RunContext(prior_z, holdout, holdout_labels, tuple(test.classes), test.images[:m],
                           test.labels[:m].cpu().numpy(), is_image, total_steps, spec.batch_size)

    @torch.no_grad()
    def _snapshot(self, model: Model, ctx: _RunContext, epoch: int) -> None:
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
            visuals["samples"] = latent.to_uint8(latent.mosaic(latent.pictures(samples), cols=8))
            both = np.concatenate([latent.pictures(ctx.holdout), latent.pictures(recon)])
            visuals["holdout"] = latent.to_uint8(latent.mosaic(both, cols=len(ctx.holdout)))
            visuals["holdout_labels"] = ctx.holdout_labels
            visuals["sample_points"] = None
        else:
            visuals["samples"] = None
            visuals["holdout"] = None
            visuals["sample_points"] = samples.reshape(len(samples), -1)[:, :2].astype(np.float32)
        view = latent.map_view(codes, "raw" if codes.shape[1] <= 2 else "pca")
        visuals.update(map_xy=view.coords.astype(np.float32), map_axes=view.axis_titles, map_labels=ctx.map_labels,
                       map_classes=ctx.classes,
                       activity=unit_activity(codes).tolist() if model.probabilistic else None)
        with self._lock:
            visuals["version"] = self._visuals.get("version", 0) + 1
            self._visuals = visuals

    def _on_step(self, info: dict, model: Model, ctx: _RunContext) -> None:
        now = time.perf_counter()
        step = info["step"]
        dt = max(now - ctx.last_time - self._paused_seconds, 1e-9)
        self._paused_seconds = 0.0
        images = (step - ctx.last_step) * ctx.batch_size
        ctx.last_step, ctx.last_time = step, now
        record = {"step": step, "epoch": info["epoch"] + info["epoch_progress"] - 1.0,
                  **{k: info[k] for k in (*model.terms, "total")}}
        with self._lock:
            self._active_seconds += dt
            rate = images / dt
            old = self._progress["images_per_s"]
            ips = rate if old == 0 else 0.7 * old + 0.3 * rate  # smoothed: steps are noisy
            per_step = self._active_seconds / step
            self._steps.append(record)
            self._kl_per_dim = info["kl_per_dim"] if model.probabilistic else None
            self._progress.update(epoch=info["epoch"], step=step, fraction=step / ctx.total_steps,
                                  images_per_s=ips, eta_s=per_step * (ctx.total_steps - step),
                                  elapsed_s=self._active_seconds)
        if now - ctx.last_snapshot >= self.snapshot_every_s:
            self._snapshot(model, ctx, epoch=info["epoch"])

    def _on_epoch(self, record: dict, model: Model, ctx: _RunContext) -> None:
        rec = {k: (dict(v) if isinstance(v, dict) else v) for k, v in record.items()}
        with self._lock:
            self._epochs.append(rec)
        self._snapshot(model, ctx, epoch=record["epoch"])
        ctx.last_time = time.perf_counter()  # the test evaluation is not training time

    def _should_stop(self) -> bool:
        """Called by fit before every step: blocks while paused; True once stopped."""
        if not self._go.is_set():
            self._set(JobStatus.PAUSED)
            paused_at = time.perf_counter()
            while not self._go.wait(0.25):
                self.check_owner()
            self._paused_seconds += time.perf_counter() - paused_at  # kept out of speed and time left
            with self._lock:
                if self._status is JobStatus.PAUSED:
                    self._status = JobStatus.TRAINING
        self.check_owner()
        return self._stop.is_set()

    def owner_gone(self) -> bool:
        """True once `owner_alive` has said False for `OWNER_GRACE_S` seconds (checked at most every
        `OWNER_CHECK_EVERY_S`)."""
        if self.owner_alive is None:
            return False
        now = time.monotonic()
        if now - self._owner_checked >= OWNER_CHECK_EVERY_S:
            self._owner_checked = now
            try:
                alive = self.owner_alive()
            except Exception:  # a check that fails must not kill training
                alive = True
            self._owner_gone_since = None if alive else (self._owner_gone_since or now)
        return self._owner_gone_since is not None and now - self._owner_gone_since >= OWNER_GRACE_S

    def check_owner(self) -> None:
        if self.owner_gone():
            self.stop("Stopped: the browser session that started this run has closed.")


# --- the server's board ------------------------------------------------------------------------


def default_job_limit() -> int:
    """Training jobs at once: $VAEVIZ_MAX_TRAINING_JOBS, else on a GPU 2, on a CPU the cores minus
    one (at least one), so a class that all presses Start does not slow every slider in the room."""
    default = 2 if pick_device("auto").type != "cpu" else max(1, (os.cpu_count() or 2) - 1)
    return env_whole("VAEVIZ_MAX_TRAINING_JOBS", default, minimum=1)


class JobBoard:
    """Every training job of the server, by owner: at most `limit` run at once, the rest wait FIFO.

    One active job per owner. A job keeps its place on the board after it ends, so its owner (after
    a reload, say) finds it and its models again, until the owner starts another.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit if limit is not None else default_job_limit()
        self._lock = threading.RLock()
        self._jobs: dict[str, TrainingJob] = {}  # owner -> their latest job
        self._queue: list[TrainingJob] = []  # FIFO of queued jobs
        self._durations: list[float] = []  # seconds of the last finished jobs, for the wait estimate

    def submit(self, job: TrainingJob) -> TrainingJob:
        """Queue a job for its owner (it starts at once when a slot is free). ValueError if the owner
        already has an active job."""
        if job.owner is None:
            raise ValueError("a job on the board needs an owner")
        with self._lock:
            current = self._jobs.get(job.owner)
            if current is not None and current.status.active:
                raise ValueError("you already have a training job queued or running; stop it first")
            job.on_end = self._ended
            self._jobs[job.owner] = job
            self._queue.append(job)
            self._schedule()
        return job

    def job_for(self, owner: str | None) -> TrainingJob | None:
        with self._lock:
            return self._jobs.get(owner) if owner is not None else None

    def running(self) -> list[TrainingJob]:
        with self._lock:
            return [j for j in self._jobs.values() if j.status.running]

    def queued(self) -> list[TrainingJob]:
        with self._lock:
            self._drop_abandoned()
            return list(self._queue)

    def position(self, job: TrainingJob) -> int | None:
        """1 for the next job to start, 2 for the one after, ...; None if it is not queued."""
        with self._lock:
            return self._queue.index(job) + 1 if job in self._queue else None

    def estimated_wait_s(self, job: TrainingJob) -> float | None:
        """Seconds until a queued job starts, if the running ones end as estimated and the queued
        ones ahead take as long as recent jobs did (None when nothing is known yet)."""
        with self._lock:
            pos = self.position(job)
            if pos is None:
                return None
            ends = sorted(s for s in (j.seconds_left for j in self.running()) if s is not None)
            typical = float(np.median(self._durations)) if self._durations else None
            if len(ends) < self.limit and typical is None:
                return None
            slots = ends + [0.0] * max(0, self.limit - len(ends))  # free slots start now
            waits = slots[: self.limit]
            for _ in range(pos - 1):  # each job ahead takes the earliest slot for `typical` seconds
                if typical is None:
                    return None
                waits.sort()
                waits[0] += typical
            return min(waits)

    def view(self, job: TrainingJob) -> JobView:
        return job.view(queue_position=self.position(job), queue_wait_s=self.estimated_wait_s(job))

    def cancel(self, job: TrainingJob) -> None:
        job.stop()

    def _ended(self, job: TrainingJob) -> None:
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
            if job._started is not None and job._ended is not None and job.status is JobStatus.FINISHED:
                self._durations = (self._durations + [job._ended - job._started])[-20:]
            self._schedule()

    def _drop_abandoned(self) -> None:
        for job in [j for j in self._queue if j.owner_gone()]:
            job.stop("Dropped from the queue: the browser session that queued it has closed.")

    def _schedule(self) -> None:
        with self._lock:
            self._drop_abandoned()
            while self._queue and len(self.running()) < self.limit:
                job = self._queue.pop(0)
                if job.status is JobStatus.QUEUED:
                    job.start()


# --- one browser session's side ------------------------------------------------------------------


class TrainingSession:
    """One browser session's training: its owner's job on the board and the session's catalogue.

    Finished runs are registered in the catalogue once each, by whichever script run notices them
    first (the Trainer's poll, or any page's sidebar). Saving one is `catalogue.save_and_promote`
    with the key `catalogue.run_key(run_id)`: the file then replaces the session copy.
    """

    def __init__(self, board: JobBoard, owner: str, catalogue: SessionModels) -> None:
        self.board, self.owner, self.catalogue = board, owner, catalogue

    @property
    def job(self) -> TrainingJob | None:
        return self.board.job_for(self.owner)

    def view(self) -> JobView | None:
        job = self.job
        return self.board.view(job) if job is not None else None

    def start(self, specs: Sequence[RunSpec], *, owner_alive: Callable[[], bool] | None = None) -> TrainingJob:
        """Queue a job (ValueError for bad settings, or while this owner's last job is active)."""
        return self.board.submit(TrainingJob(specs, owner=self.owner, owner_alive=owner_alive))

    def register_finished(self, keep: set[str] = frozenset()) -> list[ModelRef]:
        """Add every finished run not yet registered to the catalogue; returns the new refs."""
        job = self.job
        if job is None:
            return []
        when = time.strftime("%H:%M", time.localtime(job.created))
        new = []
        for result in job.results:
            ref = self.catalogue.register_run(result.run_id, result.model,
                                              f"{result.spec.label()} (trained here {when})", keep=keep)
            if ref is not None:
                new.append(ref)
        return new
