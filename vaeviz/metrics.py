"""Evaluation metrics, all in nats per image unless a name says otherwise.

- `evaluate`: reconstruction, KL and -ELBO on a data set (sum over pixels and latent dimensions,
  mean over images), per-dimension KL, the number of active units, and the mean BCE per pixel that
  the lecture notes quote for autoencoders.
- `iw_nll`: the importance-weighted estimate of -log p(x) (Burda et al., 2016) with k samples from
  q(z|x); with k = 1 it is the -ELBO, and it tightens towards -log p(x) as k grows.

The VAE's one-sample terms are random; `evaluate` fixes the noise with `seed`, so the same model
gives the same numbers every time.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch

from .models import Autoencoder, kl_per_dim, recon_nll

ACTIVE_UNIT_KL = 0.01  # nats: a latent dimension whose mean KL is above this carries information


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block with a fixed random seed without disturbing the caller's random state."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def evaluate(
    model: Autoencoder, images: torch.Tensor, *, batch_size: int = 1000, seed: int = 0
) -> dict[str, object]:
    """Test metrics of `model` on `images` (N, C, H, W) in [0, 1].

    Returns recon, kl, neg_elbo, total (recon + beta * kl) in nats per image; bce_per_pixel
    (recon divided by the number of pixels: the notes' "mean BCE"); kl_per_dim (list of D floats,
    nats); active_units (dimensions with KL > 0.01 nats); n_images.
    """
    was_training = model.training
    model.eval()
    device = images.device
    recon_sum = kl_sum = 0.0
    kl_dim_sum = torch.zeros(model.cfg.latent_dim, dtype=torch.float64, device=device)
    try:
        with seeded(seed, device):
            for start in range(0, len(images), batch_size):
                x = images[start : start + batch_size]
                out = model(x)
                recon_sum += recon_nll(model.cfg, x, out.logits).double().sum().item()
                if out.logvar is not None:
                    kl_d = kl_per_dim(out.mu, out.logvar).double()  # (B, D)
                    kl_dim_sum += kl_d.sum(0)
                    kl_sum += kl_d.sum().item()
    finally:
        model.train(was_training)
    n = len(images)
    recon, kl = recon_sum / n, kl_sum / n
    kl_dims = (kl_dim_sum / n).tolist()
    beta = model.cfg.beta if out.logvar is not None else 0.0
    return {
        "recon": recon,
        "kl": kl,
        "neg_elbo": recon + kl,
        "total": recon + beta * kl,
        "bce_per_pixel": recon / model.cfg.pixels,
        "kl_per_dim": kl_dims,
        "active_units": sum(k > ACTIVE_UNIT_KL for k in kl_dims) if out.logvar is not None else None,
        "n_images": n,
    }


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


@torch.no_grad()
def iw_nll(
    model: Autoencoder, images: torch.Tensor, *, k: int = 100, batch_size: int = 100, seed: int = 0
) -> float:
    """Importance-weighted estimate of -log p(x) in nats per image, with k samples per image.

    log p(x) >= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x). Only for VAEs.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    was_training = model.training
    model.eval()
    total = 0.0
    device = images.device
    try:
        with seeded(seed, device):
            for start in range(0, len(images), batch_size):
                x = images[start : start + batch_size]  # (B, C, H, W)
                mu, logvar = model.encode(x)
                if logvar is None:
                    raise ValueError("the importance-weighted NLL needs a VAE (a posterior q(z|x))")
                std = (0.5 * logvar).exp()
                log_w = []
                # Draw the k samples in chunks so memory stays at about batch_size x 100 images.
                for k0 in range(0, k, 100):
                    kk = min(100, k - k0)
                    z = mu.unsqueeze(0) + std.unsqueeze(0) * torch.randn(kk, *mu.shape, device=device)
                    logits = model.decode_logits(z.flatten(0, 1))  # (kk*B, C, H, W)
                    x_rep = x.unsqueeze(0).expand(kk, *x.shape).flatten(0, 1)
                    log_px_z = -recon_nll(model.cfg, x_rep, logits).view(kk, -1)  # (kk, B)
                    log_pz = log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
                    log_qz = log_normal(z, mu.unsqueeze(0), logvar.unsqueeze(0))
                    log_w.append(log_px_z + log_pz - log_qz)
                log_w_all = torch.cat(log_w).double()  # (k, B)
                log_px = torch.logsumexp(log_w_all, 0) - math.log(k)
                total += -log_px.sum().item()
    finally:
        model.train(was_training)
    return total / len(images)
