"""Evaluation metrics, all in nats per image unless a name says otherwise.

- `evaluate`: every loss term of the model on a data set (sum over pixels and latent dimensions,
  mean over images), per-dimension KL, active units, the mean BCE per pixel that the lecture
  notes quote for autoencoders, and the kind's own figures (`Model.extra_metrics`).
- `iw_nll`: the importance-weighted bound on -log p(x) (Burda et al., 2016) with k samples from
  q(z|x). With k = 1 it is the -ELBO; it tightens towards -log p(x) as k grows. It is an upper
  bound on -log p(x) *in expectation*: one estimate, from finitely many samples, can fall a
  little on either side of the mean of such estimates.
- `active_units`: Burda et al.'s definition, Var_x(E_q[z_d | x]) > 0.01: a dimension whose
  posterior mean does not move with the image carries no information about it.

The one-sample terms of the probabilistic kinds are random; `evaluate` fixes the noise with `seed`,
so the same model gives the same numbers every time.

On grey MNIST the Bernoulli -log p(x|z) is a cross-entropy against pixel values in [0, 1], not the
probability of a binary image: even a perfect decoder pays the pixels' own entropy, about 45.5
nats per test image, so these figures are not comparable with results on binarised MNIST.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from .meta import Metrics
from .models import Model, kl_per_dim

ACTIVE_UNIT_VARIANCE = 0.01  # Burda et al. (2016): Var_x(E_q[z_d]) above this is an active unit


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block with a fixed random seed without disturbing the caller's random state."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def active_units(mu: np.ndarray | torch.Tensor, threshold: float = ACTIVE_UNIT_VARIANCE) -> int:
    """Dimensions whose posterior mean varies across images (N, D) by more than `threshold`."""
    mu = torch.as_tensor(np.asarray(mu) if not isinstance(mu, torch.Tensor) else mu).double()
    return int((mu.var(0) > threshold).sum()) if len(mu) > 1 else 0


def unit_activity(mu: np.ndarray) -> np.ndarray:
    """Var_x(E_q[z_d]) of each dimension (D,): the figure `active_units` thresholds."""
    mu = np.asarray(mu, np.float64)
    return mu.var(0, ddof=1) if len(mu) > 1 else np.zeros(mu.shape[1])


@torch.no_grad()
def evaluate(model: Model, images: torch.Tensor, *, batch_size: int = 1000, seed: int = 0) -> Metrics:
    """Test metrics of `model` on `images` (N, C, H, W) in [0, 1] (see the module docstring)."""
    was_training = model.training
    model.eval()
    device = images.device
    sums: dict[str, float] = {}
    kl_dim_sum = torch.zeros(model.cfg.latent_dim, dtype=torch.float64, device=device)
    mus = []
    try:
        with seeded(seed, device):
            for start in range(0, len(images), batch_size):
                x = images[start : start + batch_size]
                out = model(x)
                for name, value in model.loss(x, out).items():
                    sums[name] = sums.get(name, 0.0) + float(value) * len(x)
                if model.probabilistic:
                    kl_dim_sum += kl_per_dim(out.mu, out.logvar).double().sum(0)
                    mus.append(out.mu.double())
            extra = model.extra_metrics(images)
    finally:
        model.train(was_training)
    n = len(images)
    means = {k: v / n for k, v in sums.items()}
    recon = means.pop("recon")
    total = means.pop("total")
    kl = means.pop("kl", None)
    neg_elbo = means.pop("neg_elbo", None)
    return Metrics(
        recon=recon,
        kl=kl,
        neg_elbo=neg_elbo,
        total=total,
        bce_per_pixel=recon / model.cfg.pixels if model.cfg.likelihood == "bernoulli" else None,
        kl_per_dim=tuple((kl_dim_sum / n).tolist()) if model.probabilistic else None,
        active_units=active_units(torch.cat(mus)) if mus else None,
        activity=tuple(unit_activity(torch.cat(mus).cpu().numpy()).tolist()) if mus else None,
        n_images=n,
        extra={**means, **extra},
    )


@torch.no_grad()
def iw_nll(model: Model, images: torch.Tensor, *, k: int = 100, batch_size: int = 100, seed: int = 0) -> float:
    """Importance-weighted estimate of -log p(x) in nats per image, with k samples per image.

    log p(x) >= E[log (1/k) sum_i p(x, z_i) / q(z_i|x)], z_i ~ q(z|x): the bound holds in
    expectation over the samples. Only for the probabilistic kinds (they have `log_weights`).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not model.probabilistic or not hasattr(model, "log_weights"):
        raise ValueError("the importance-weighted NLL needs a model with a posterior q(z|x) (a VAE)")
    was_training = model.training
    model.eval()
    total = 0.0
    device = images.device
    try:
        with seeded(seed, device):
            for start in range(0, len(images), batch_size):
                x = images[start : start + batch_size]  # (B, C, H, W)
                # Draw the k samples in chunks so memory stays at about batch_size x 100 images.
                log_w = torch.cat([model.log_weights(x, min(100, k - k0)) for k0 in range(0, k, 100)]).double()
                log_px = torch.logsumexp(log_w, 0) - math.log(k)  # (B,)
                total += -log_px.sum().item()
    finally:
        model.train(was_training)
    return total / len(images)


def linear_probe(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray, test_labels: np.ndarray,
                 *, seed: int = 0) -> float:
    """Test accuracy of a multinomial logistic regression (scikit-learn, on standardised codes) trained on
    a representation's codes: how much of the label a linear read-out finds in them."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    probe.fit(np.asarray(train_codes, np.float64), np.asarray(train_labels))
    return float(probe.score(np.asarray(test_codes, np.float64), np.asarray(test_labels)))


@torch.no_grad()
def code_sensitivity(model: Model, images: torch.Tensor, *, sigma: float = 0.05, draws: int = 8, seed: int = 0) -> float:
    """How much a model's code moves when its image does, relative to how much codes differ between
    images: E|z(x + d) - z(x)|^2 / (2 tr Cov_x z), d ~ N(0, sigma^2 I) (unclipped), over the images.

    Unlike ||dz/dx||_F^2 it does not change when the code is merely rescaled (a decoder can undo any
    scale), so it compares a contractive AE with a plain one fairly; 1 means small noise moves a code
    as far as a typical other image's code is."""
    gen = torch.Generator(device=images.device).manual_seed(seed)
    z = model.encode(images)[0]
    spread = 2 * z.double().var(0).sum()
    moved = 0.0
    for _ in range(draws):
        noisy = images + sigma * torch.randn(images.shape, generator=gen, device=images.device)
        moved += float((model.encode(noisy)[0] - z).double().pow(2).sum(1).mean())
    return moved / draws / float(spread)
