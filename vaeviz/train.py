"""The trainer: `fit(model, data, cfg, ...) -> History`.

Batches are drawn by indexing the whole training tensor, already on the device (no DataLoader, no
per-image transforms), which is what makes it fast on a CPU. Every `cfg.log_every` steps it syncs
once: it checks the loss is finite, keeps the weights the checked losses were computed with as the
last good ones, and calls `on_step` with the mean loss terms and the per-dimension KL since the
last call. A NaN or inf loss stops the run, restores the last good weights and says so in
`History.diverged`. `should_stop` is called every step, so a page can stop a run at once (or pause
it, by blocking inside the call).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .config import TrainConfig
from .data import Split
from .metrics import evaluate
from .models import Model, kl_per_dim


MAX_STEP_RECORDS = 4000  # per-step records kept in a History; thinned evenly beyond this


def pick_device(name: str = "auto") -> torch.device:
    """"auto" picks CUDA, then Apple MPS, then the CPU; any other name is used as given."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; try auto, cpu, cuda or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but no CUDA GPU is available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device mps was asked for, but Apple MPS is not available here")
    return device


@dataclass
class History:
    """What happened during `fit`: per-log-step and per-epoch records, and how it ended."""

    steps: list[dict] = field(default_factory=list)  # {"step", "epoch", <the model's terms>, "total"}
    epochs: list[dict] = field(default_factory=list)  # {"epoch", "train": {...}, "test": {...}}
    stopped: bool = False  # should_stop asked it to stop
    diverged: str | None = None  # why it stopped on a non-finite loss (weights restored)
    train_seconds: float = 0.0  # time in training steps only, without evaluation
    train_images: int = 0

    @property
    def train_images_per_s(self) -> float:
        return self.train_images / self.train_seconds if self.train_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "steps": self.steps,
            "epochs": self.epochs,
            "stopped": self.stopped,
            "diverged": self.diverged,
            "train_seconds": self.train_seconds,
            "train_images": self.train_images,
            "train_images_per_s": self.train_images_per_s,
        }


def _lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    if cfg.lr_schedule == "cosine":
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * min(step / max(total_steps, 1), 1.0)))
    return cfg.lr


def fit(
    model: Model,
    data: Split,
    cfg: TrainConfig,
    *,
    test: Split | None = None,
    on_step: Callable[[dict], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: bool = False,
) -> History:
    """Train `model` in place with Adam on `data` (a whole split). Returns the `History`.

    The model is moved to the device `cfg.device` names; the data too, if it is not there yet.
    `on_step(info)` gets every `cfg.log_every` steps: step, epoch, epoch_progress (0..1), the
    model's loss terms and total (means over the steps since the last call, nats per image),
    kl_per_dim (list, probabilistic kinds), images_per_s and lr. `on_epoch(record)` gets each
    epoch's record (train and test terms). A closed-form kind is fitted in one go instead.
    """
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model.to(device)
    images = data.images.to(device)
    n = len(images)
    if n == 0:
        raise ValueError("no training images")
    history = History()
    if model.fit_method == "closed form":  # PCA, pPCA: no steps to take
        start = time.perf_counter()
        model.fit_closed_form(images)
        history.train_seconds, history.train_images = time.perf_counter() - start, n
        history.epochs.append(_epoch_record(model, 1, images, test, cfg, history))
        return history

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = round(cfg.kl_warmup * steps_per_epoch)
    beta = model.cfg.beta if model.uses_beta else 0.0  # kinds without a KL term: no ramp
    # The weights a loss has been computed with: a window's losses vouch for the weights at its
    # start, not for those after its last step (with one step a window, those gave the NaN).
    last_good = copy.deepcopy(model.state_dict())
    window_start = last_good
    average = _WeightAverage(model, cfg.ema) if cfg.ema > 0 else None
    bar = _progress_bar(total_steps) if progress else None
    step = 0
    sums = _Window(model, device)
    model.train()
    try:
        for epoch in range(1, cfg.epochs + 1):
            epoch_start = time.perf_counter()
            epoch_sums = _Window(model, device)
            order = torch.randperm(n, device=device, generator=gen)
            for start in range(0, n, cfg.batch_size):
                if should_stop is not None and should_stop():
                    history.stopped = True
                    return history
                t0 = time.perf_counter()
                x = images[order[start : start + cfg.batch_size]]  # (B, C, H, W)
                for group in opt.param_groups:
                    group["lr"] = _lr_at(cfg, step, total_steps)
                out = model(x)
                terms = model.loss(x, out)
                objective = terms["total"]
                if step < warmup_steps and beta > 0:  # KL warm-up: weigh the KL by step/warmup_steps of beta
                    objective = objective - (1 - step / warmup_steps) * beta * terms["kl"]
                opt.zero_grad(set_to_none=True)
                objective.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                if average is not None:
                    average.update(model)
                step += 1
                kl_d = kl_per_dim(out.mu.detach(), out.logvar.detach()).mean(0) if out.logvar is not None else None
                sums.add(terms, kl_d, len(x))
                epoch_sums.add(terms, kl_d, len(x))
                if step % cfg.log_every == 0 or start + cfg.batch_size >= n:
                    info = sums.flush()  # syncs with the device once per window
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    history.train_seconds += time.perf_counter() - t0
                    if not math.isfinite(info["total"]):
                        model.load_state_dict(last_good)
                        history.diverged = (
                            f"the loss became {info['total']} at step {step} (epoch {epoch}); "
                            "training stopped and the last good weights were restored. "
                            "Try a smaller learning rate."
                        )
                        return history
                    last_good = window_start
                    window_start = copy.deepcopy(model.state_dict())
                    elapsed = time.perf_counter() - epoch_start
                    done = min(start + cfg.batch_size, n)
                    info.update(
                        step=step,
                        epoch=epoch,
                        epoch_progress=done / n,
                        images_per_s=done / elapsed if elapsed > 0 else 0.0,
                        lr=opt.param_groups[0]["lr"],
                    )
                    history.steps.append({k: info[k] for k in ("step", "epoch", *sums.names)})
                    if len(history.steps) > MAX_STEP_RECORDS:  # long runs: keep every other record
                        history.steps[:] = history.steps[::2]
                    if on_step is not None:
                        on_step(info)
                    if bar is not None:
                        bar.set_postfix(total=f"{info['total']:.2f}", kl=f"{info['kl']:.2f}")
                else:
                    history.train_seconds += time.perf_counter() - t0
                history.train_images += len(x)
                if bar is not None:
                    bar.update(1)
            running = epoch_sums.flush()
            with average.swapped_in(model) if average is not None else contextlib.nullcontext():
                record = _epoch_record(model, epoch, images, test, cfg, history, running)
            record["seconds"] = time.perf_counter() - epoch_start
            history.epochs.append(record)
            if on_epoch is not None:
                on_epoch(record)
        if average is not None:  # a finished run keeps the averaged weights
            average.copy_to(model)
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    return history


class _WeightAverage:
    """An exponential moving average of a model's parameters (Polyak averaging), bias-corrected.

    Adam's last steps jitter the weights around a minimum; their average usually sits closer to
    it. The average starts at zero and is divided by 1 - decay^t after t steps (as Adam corrects its
    moments), so it is a weighted mean of the weights seen so far, not of the random initial ones:
    an uncorrected average started at the initial weights still mostly describes the untrained
    model after the first epoch (1 - 0.999^469 = 37 % of the way). Buffers are not averaged (the
    models have none that learn).
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.steps = 0
        self.params = [torch.zeros_like(p, dtype=torch.float32).detach() for p in model.parameters()]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.steps += 1
        for avg, p in zip(self.params, model.parameters()):
            avg.lerp_(p.float(), 1 - self.decay)

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        if self.steps == 0:
            return  # nothing averaged yet: the weights are their own average
        correction = 1.0 - self.decay**self.steps
        for avg, p in zip(self.params, model.parameters()):
            p.copy_(avg / correction)

    @contextlib.contextmanager
    def swapped_in(self, model: torch.nn.Module):
        """Evaluate with the averaged weights, then put the trained ones back."""
        current = [p.detach().clone() for p in model.parameters()]
        self.copy_to(model)
        try:
            yield
        finally:
            with torch.no_grad():
                for saved, p in zip(current, model.parameters()):
                    p.copy_(saved)


class _Window:
    """Running sums of a model's loss terms on the device, read (one sync) when flushed."""

    def __init__(self, model: Model, device: torch.device) -> None:
        self.names = (*model.terms, "total")
        self.latent_dim, self.device = model.cfg.latent_dim, device
        self.reset()

    def reset(self) -> None:
        self.terms = torch.zeros(len(self.names), dtype=torch.float64, device=self.device)
        self.kl_dims = torch.zeros(self.latent_dim, dtype=torch.float64, device=self.device)
        self.count = 0

    def add(self, terms: dict[str, torch.Tensor], kl_dims: torch.Tensor | None, batch: int) -> None:
        stacked = torch.stack([terms[name].detach() for name in self.names])
        self.terms += stacked.double() * batch
        if kl_dims is not None:
            self.kl_dims += kl_dims.double() * batch
        self.count += batch

    def flush(self) -> dict:
        count = max(self.count, 1)
        info = dict(zip(self.names, (self.terms / count).tolist()))
        info["kl_per_dim"] = (self.kl_dims / count).tolist()
        self.reset()
        return info


def _epoch_record(
    model: Model,
    epoch: int,
    images: torch.Tensor,
    test: Split | None,
    cfg: TrainConfig,
    history: History,
    train_running: dict | None = None,
) -> dict:
    """One epoch's record: running train means (during the epoch) and the test metrics."""
    record: dict = {"epoch": epoch, "step": len(history.steps) and history.steps[-1]["step"]}
    names = (*model.terms, "total")
    if train_running is not None:
        record["train"] = {k: train_running[k] for k in names}
    if test is not None:
        metrics = evaluate(model, test.images.to(images.device), batch_size=cfg.eval_batch_size)
        record["test"] = {k: metrics.get(k) for k in names}
    return record


def _progress_bar(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", dynamic_ncols=True, leave=False)
