"""Inference without the encoder: each image's own posterior, fitted by gradient ascent on its ELBO.

A VAE's encoder is *amortized* inference: one network gives every image's q(z|x) at once. Variational
EM's E-step instead fits each image's q(z) = N(m, diag(s^2)) by itself, maximising that image's ELBO
with the decoder fixed. `optimize_posterior` does that E-step with the reparameterisation trick
(z = m + s * eps, eps ~ N(0, I), Adam on m and log s^2), starting from the encoder's answer. The
difference between the two ELBOs is the **amortization gap** (Cremer et al., 2018): what the encoder
loses by answering for all images with one network. It is measured with the same noise for both
(common random numbers), and an image whose fit does not improve keeps the encoder's answer, so the
gap is never negative.

For probabilistic PCA the encoder is the exact posterior, so its gap is zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .models import Model


@dataclass(frozen=True)
class FittedPosterior:
    """Each image's Gaussian q(z), before (the encoder's) and after the fit, and their ELBOs in nats."""

    mu: torch.Tensor  # (B, D) fitted
    logvar: torch.Tensor  # (B, D)
    encoder_mu: torch.Tensor  # (B, D)
    encoder_logvar: torch.Tensor  # (B, D)
    elbo_encoder: torch.Tensor  # (B,) nats per image (higher is better)
    elbo_fitted: torch.Tensor  # (B,)

    @property
    def gap(self) -> torch.Tensor:
        """The amortization gap of each image in nats (>= 0)."""
        return self.elbo_fitted - self.elbo_encoder


def supports(model: Model) -> bool:
    """Whether a model has one stochastic layer whose ELBO can be fitted per image."""
    return model.probabilistic and hasattr(model, "elbo")


def optimize_posterior(model: Model, x: torch.Tensor, steps: int = 200, *, lr: float = 0.05, samples: int = 8,
                       eval_samples: int = 64, seed: int = 0) -> FittedPosterior:
    """Fit each image's own q(z) by maximising its ELBO with the decoder fixed, from the encoder's q(z|x).

    `samples` draws of eps per step estimate the gradient; `eval_samples` fixed draws measure both ELBOs.
    """
    if not supports(model):
        raise ValueError(f"a {model.title} has no single Gaussian posterior to fit per image")
    if steps < 0:
        raise ValueError("steps must be 0 or more")
    was_training = model.training
    model.eval()
    frozen = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)  # the decoder is fixed: only the posterior's parameters move
    gen = torch.Generator(device=x.device).manual_seed(seed)
    try:
        with torch.no_grad():
            mu0, logvar0 = model.encode(x)
        mu = mu0.clone().requires_grad_(True)
        logvar = logvar0.clone().requires_grad_(True)
        opt = torch.optim.Adam([mu, logvar], lr=lr)
        for _ in range(steps):
            eps = torch.randn(samples, *mu.shape, generator=gen, device=x.device)
            loss = -model.elbo(x, mu, logvar, eps).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                logvar.clamp_(-20.0, 10.0)  # keep exp() finite
        with torch.no_grad():
            eps = torch.randn(eval_samples, *mu.shape, generator=gen, device=x.device)
            start = model.elbo(x, mu0, logvar0, eps)
            end = model.elbo(x, mu, logvar, eps)
            better = end > start  # an image the fit did not help keeps the encoder's answer
            mu_out = torch.where(better[:, None], mu, mu0)
            logvar_out = torch.where(better[:, None], logvar, logvar0)
    finally:
        for p, flag in zip(model.parameters(), frozen):
            p.requires_grad_(flag)
        model.train(was_training)
    return FittedPosterior(mu_out.detach(), logvar_out.detach(), mu0, logvar0, start, torch.maximum(end, start))


def amortization_gap(model: Model, images: torch.Tensor, steps: int = 200, batch_size: int = 100) -> float:
    """The mean amortization gap in nats per image over `images`."""
    gaps = [optimize_posterior(model, images[i : i + batch_size], steps).gap for i in range(0, len(images), batch_size)]
    return float(torch.cat(gaps).mean())
