"""Building blocks shared by the model kinds: encoder and decoder networks, the two loss terms.

Shapes come from the config (channels, height, width, hidden sizes, latent size): nothing here
knows that MNIST is 28 x 28. Decoders end in logits; `recon_nll` turns logits into -log p(x|z).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .graph import graph_decoder, graph_encoder


def mlp_encoder(cfg: ModelConfig, out_dim: int) -> nn.Sequential:
    """Flatten, then pixels -> hidden[0] -> hidden[1] ... -> out_dim, ReLU between layers."""
    widths = [cfg.pixels, *cfg.hidden]
    layers: list[nn.Module] = [nn.Flatten()]
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(w_in, w_out), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], out_dim))
    return nn.Sequential(*layers)


def mlp_decoder(cfg: ModelConfig, in_dim: int | None = None) -> nn.Sequential:
    """latent -> reversed(hidden) -> pixels (logits), reshaped to (B, C, H, W)."""
    widths = [in_dim or cfg.latent_dim, *reversed(cfg.hidden)]
    layers: list[nn.Module] = []
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(w_in, w_out), nn.ReLU()]
    layers += [nn.Linear(widths[-1], cfg.pixels), nn.Unflatten(1, cfg.image_shape)]
    return nn.Sequential(*layers)


def feature_shape(cfg: ModelConfig) -> tuple[int, int, int]:
    """Shape of the last conv feature map: each conv (k4, s2, p1) halves height and width."""
    factor = 2 ** len(cfg.conv_channels)
    return (cfg.conv_channels[-1], cfg.height // factor, cfg.width // factor)


def conv_encoder(cfg: ModelConfig, out_dim: int) -> nn.Sequential:
    """Strided convolutions (kernel 4, stride 2, padding 1), a hidden linear layer, the code."""
    chans = [cfg.channels, *cfg.conv_channels]
    layers: list[nn.Module] = []
    for c_in, c_out in zip(chans[:-1], chans[1:]):
        layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
    feat = math.prod(feature_shape(cfg))
    layers += [nn.Flatten(), nn.Linear(feat, cfg.conv_hidden), nn.ReLU()]
    layers.append(nn.Linear(cfg.conv_hidden, out_dim))
    return nn.Sequential(*layers)


def conv_decoder(cfg: ModelConfig, in_dim: int | None = None) -> nn.Sequential:
    """The mirror image: linear layers up to the feature map, then transposed convolutions."""
    shape = feature_shape(cfg)
    layers: list[nn.Module] = [
        nn.Linear(in_dim or cfg.latent_dim, cfg.conv_hidden),
        nn.ReLU(),
        nn.Linear(cfg.conv_hidden, math.prod(shape)),
        nn.ReLU(),
        nn.Unflatten(1, shape),
    ]
    chans = [*reversed(cfg.conv_channels), cfg.channels]
    for i, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:])):
        layers.append(nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1))
        if i < len(chans) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


ENCODERS = {"mlp": mlp_encoder, "conv": conv_encoder, "graph": graph_encoder}  # graph: imported (models/graph.py)
DECODERS = {"mlp": mlp_decoder, "conv": conv_decoder, "graph": graph_decoder}


class Clamp(nn.Module):
    """Clip values to [low, high]: the output function of the linear (PCA) decoders."""

    def __init__(self, low: float = 0.0, high: float = 1.0) -> None:
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(self.low, self.high)


def recon_nll(cfg: ModelConfig, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """-log p(x | z) per image in nats: summed over pixels, *not* averaged. Shape (B,).

    Bernoulli: binary cross-entropy on the logits (x may be grey, as MNIST is; the value is then
    a cross-entropy, not a probability of a binary image). Gaussian: the full negative
    log-density with the fixed std `cfg.sigma`, constant included, so it is a true -log p.
    """
    if cfg.likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        nll = gaussian_nll(x, torch.sigmoid(logits), cfg.sigma)
    return nll.flatten(1).sum(1)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """-log N(x; mean, sigma^2) per element, constant included (nats)."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    return 0.5 * ((x - mean) / sigma) ** 2 + sigma.log() + 0.5 * math.log(2 * math.pi)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per image and dimension, closed form. Shape (B, D)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def kl_gaussians(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) per element, closed form (diagonal Gaussians)."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)
