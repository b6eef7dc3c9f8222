"""The linear autoencoders, fitted in closed form: PCA (and, later, probabilistic PCA)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .base import Model, Output
from .layers import Clamp, recon_nll


@torch.no_grad()
def principal_directions(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean (P,), top-k eigenvectors (k, P), all eigenvalues descending (P,)) of the covariance of
    images (N, C, H, W), in float64; each direction's sign fixed (largest |entry| positive)."""
    flat = x.flatten(1).double()  # (N, P)
    mean = flat.mean(0)
    centred = flat - mean
    cov = centred.T @ centred / max(len(flat) - 1, 1)  # (P, P), n - 1 as scikit-learn
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    order = evals.argsort(descending=True)
    comps = evecs[:, order[:k]].T  # (k, P)
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    return mean, comps * signs, evals[order].clamp_min(0)


class PCA(Model):
    """The linear autoencoder, fitted in closed form: the top principal directions of the data.

    encode(x) = (x - mean) @ W.T, decode(z) = clamp(z @ W + mean, 0, 1), where W holds the first
    `latent_dim` principal directions as rows. This is the best linear code in squared error, the
    baseline every AE should beat. It has no gradients to follow.
    """

    kind = "pca"
    title = "PCA (linear autoencoder)"
    summary = "the best linear code in squared error, fitted in closed form"
    fit_method = "closed form"
    _eps = 1e-6  # clamp for the Bernoulli loss: PCA's output can hit 0 or 1 exactly

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.register_buffer("mean", torch.zeros(cfg.pixels))  # (P,)
        self.register_buffer("components", torch.zeros(cfg.latent_dim, cfg.pixels))  # (D, P)
        self.register_buffer("explained_variance", torch.zeros(cfg.latent_dim))  # (D,)

    def fit_closed_form(self, images: torch.Tensor) -> None:
        mean, comps, evals = principal_directions(images, self.cfg.latent_dim)
        self.mean.copy_(mean.float())
        self.components.copy_(comps.float())
        self.explained_variance.copy_(evals[: self.cfg.latent_dim].float())

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return (x.flatten(1) - self.mean) @ self.components.T, None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        flat = z @ self.components + self.mean
        return flat.clamp(0.0, 1.0).view(-1, *self.cfg.image_shape)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return torch.logit(self.decode(z), eps=self._eps)

    def loss(self, x: torch.Tensor, out: Output) -> dict[str, torch.Tensor]:
        """Reconstruction in nats per image under the model's likelihood; no KL."""
        recon = recon_nll(self.cfg, x, out.logits).mean()
        return {"recon": recon, "total": recon}

    def decoder_layers(self) -> list[nn.Module]:
        linear = nn.Linear(self.cfg.latent_dim, self.cfg.pixels)
        with torch.no_grad():
            linear.weight.copy_(self.components.T)
            linear.bias.copy_(self.mean)
        return [linear, nn.Unflatten(1, self.cfg.image_shape), Clamp(0.0, 1.0)]
