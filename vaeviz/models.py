"""The models: autoencoder (AE), variational autoencoder (VAE) and a PCA baseline.

Every model has the same interface, so the app can put them side by side:

- `encode(x) -> (mu, logvar)`: x is (B, C, H, W) in [0, 1]; mu is (B, D); logvar is (B, D) for a
  VAE and None for the deterministic AE and PCA;
- `decode(z) -> x_hat`: (B, C, H, W) pixel probabilities (or means) in [0, 1];
- `forward(x) -> Output` and `loss(x, out) -> {"recon", "kl", "total"}` in nats per image.

Decoders produce logits; the Bernoulli loss uses `binary_cross_entropy_with_logits` on them, which
is stable where `log(sigmoid(.))` is not. `MODELS` is the one registry of kinds.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


class Output(NamedTuple):
    """What `forward` returns. For the AE and PCA `logvar` is None and `z` equals `mu`."""

    logits: torch.Tensor  # (B, C, H, W) decoder logits (PCA: logit of its clamped output)
    z: torch.Tensor  # (B, D) the code that was decoded (a sample for the VAE)
    mu: torch.Tensor  # (B, D)
    logvar: torch.Tensor | None  # (B, D)


# --- building blocks -------------------------------------------------------------------------


def mlp_encoder(cfg: ModelConfig, out_dim: int) -> nn.Sequential:
    """Flatten, then pixels -> hidden[0] -> hidden[1] ... -> out_dim, ReLU between layers."""
    widths = [cfg.pixels, *cfg.hidden]
    layers: list[nn.Module] = [nn.Flatten()]
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(w_in, w_out), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], out_dim))
    return nn.Sequential(*layers)


def mlp_decoder(cfg: ModelConfig) -> nn.Sequential:
    """latent -> reversed(hidden) -> pixels (logits), reshaped to (B, C, H, W)."""
    widths = [cfg.latent_dim, *reversed(cfg.hidden)]
    layers: list[nn.Module] = []
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(w_in, w_out), nn.ReLU()]
    layers += [nn.Linear(widths[-1], cfg.pixels), nn.Unflatten(1, cfg.image_shape)]
    return nn.Sequential(*layers)


def _feature_shape(cfg: ModelConfig) -> tuple[int, int, int]:
    """Shape of the last conv feature map: each conv (k4, s2, p1) halves height and width."""
    factor = 2 ** len(cfg.conv_channels)
    return (cfg.conv_channels[-1], cfg.height // factor, cfg.width // factor)


def conv_encoder(cfg: ModelConfig, out_dim: int) -> nn.Sequential:
    """Strided convolutions (kernel 4, stride 2, padding 1), a hidden linear layer, the code."""
    chans = [cfg.channels, *cfg.conv_channels]
    layers: list[nn.Module] = []
    for c_in, c_out in zip(chans[:-1], chans[1:]):
        layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
    feat = math.prod(_feature_shape(cfg))
    layers += [nn.Flatten(), nn.Linear(feat, cfg.conv_hidden), nn.ReLU()]
    layers.append(nn.Linear(cfg.conv_hidden, out_dim))
    return nn.Sequential(*layers)


def conv_decoder(cfg: ModelConfig) -> nn.Sequential:
    """The mirror image: linear layers up to the feature map, then transposed convolutions."""
    shape = _feature_shape(cfg)
    layers: list[nn.Module] = [
        nn.Linear(cfg.latent_dim, cfg.conv_hidden),
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


ENCODERS = {"mlp": mlp_encoder, "conv": conv_encoder}
DECODERS = {"mlp": mlp_decoder, "conv": conv_decoder}


def recon_nll(cfg: ModelConfig, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """-log p(x | z) per image in nats: summed over pixels, *not* averaged. Shape (B,).

    Bernoulli: binary cross-entropy on the logits (x may be grey, as MNIST is; the value is then
    a cross-entropy, not a probability of a binary image). Gaussian: the full negative
    log-density with the fixed std `cfg.sigma`, constant included, so it is a true -log p.
    """
    if cfg.likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        mean = torch.sigmoid(logits)
        sigma = cfg.sigma
        nll = 0.5 * ((x - mean) / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)
    return nll.flatten(1).sum(1)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per image and dimension, closed form. Shape (B, D)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


# --- models ----------------------------------------------------------------------------------


class Autoencoder(nn.Module):
    """A deterministic autoencoder: z = encoder(x), x_hat = sigmoid(decoder(z))."""

    kind = "ae"
    title = "Autoencoder"
    trainable = True  # False for models fitted in closed form (PCA)

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ENCODERS[cfg.arch](cfg, self._code_width())
        self.decoder = DECODERS[cfg.arch](cfg)
        self.meta: dict = {}  # filled by load_checkpoint / training; never read by the model

    def _code_width(self) -> int:
        return self.cfg.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.encoder(x), None

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) codes -> (B, C, H, W) pixel probabilities in [0, 1]."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> Output:
        mu, _ = self.encode(x)
        return Output(self.decode_logits(mu), mu, mu, None)

    def loss(self, x: torch.Tensor, out: Output) -> dict[str, torch.Tensor]:
        """Loss terms in nats per image: summed over pixels and dimensions, mean over the batch.

        For the AE `kl` is zero and `total` is the reconstruction term.
        """
        recon = recon_nll(self.cfg, x, out.logits).mean()
        zero = recon.new_zeros(())
        return {"recon": recon, "kl": zero, "total": recon}


class VAE(Autoencoder):
    """A variational autoencoder with a diagonal Gaussian posterior q(z|x) and prior N(0, I).

    The encoder's last layer gives mu and log sigma^2 side by side; `cfg.beta` weighs the KL term
    (beta = 1 is the ELBO of Kingma & Welling; beta = 0 is an AE with noise; large beta collapses
    the posterior onto the prior).
    """

    kind = "vae"
    title = "Variational autoencoder"

    def _code_width(self) -> int:
        return 2 * self.cfg.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # (B, D) each
        return mu, logvar

    def forward(self, x: torch.Tensor) -> Output:
        """One reparameterised sample z = mu + sigma * eps, eps ~ N(0, I); in training and eval."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return Output(self.decode_logits(z), z, mu, logvar)

    def loss(self, x: torch.Tensor, out: Output) -> dict[str, torch.Tensor]:
        """Loss terms in nats per image (sum over pixels/dimensions, mean over the batch).

        recon = E_q[-log p(x|z)] (one-sample estimate), kl = KL(q(z|x) || p(z)) in closed form,
        total = recon + beta * kl, which is -ELBO when beta = 1.
        """
        recon = recon_nll(self.cfg, x, out.logits).mean()
        kl = kl_per_dim(out.mu, out.logvar).sum(1).mean()
        return {"recon": recon, "kl": kl, "total": recon + self.cfg.beta * kl}


class PCA(Autoencoder):
    """The linear autoencoder, fitted in closed form: the top principal directions of the data.

    encode(x) = (x - mean) @ W.T, decode(z) = clamp(z @ W + mean, 0, 1), where W holds the first
    `latent_dim` principal directions as rows. This is the best linear code in squared error, the
    baseline every AE should beat. `fit` replaces training; it has no gradients to follow.
    """

    kind = "pca"
    title = "PCA (linear autoencoder)"
    trainable = False
    _eps = 1e-6  # clamp for the Bernoulli loss: PCA's output can hit 0 or 1 exactly

    def __init__(self, cfg: ModelConfig) -> None:
        nn.Module.__init__(self)
        self.cfg = cfg
        self.meta = {}
        self.register_buffer("mean", torch.zeros(cfg.pixels))  # (P,)
        self.register_buffer("components", torch.zeros(cfg.latent_dim, cfg.pixels))  # (D, P)
        self.register_buffer("explained_variance", torch.zeros(cfg.latent_dim))  # (D,)

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> "PCA":
        """Fit on images (N, C, H, W): eigenvectors of the covariance, in float64 for accuracy."""
        flat = x.flatten(1).double()  # (N, P)
        mean = flat.mean(0)
        centred = flat - mean
        cov = centred.T @ centred / max(len(flat) - 1, 1)  # (P, P)
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        top = evals.argsort(descending=True)[: self.cfg.latent_dim]
        comps = evecs[:, top].T  # (D, P)
        # Fix each direction's sign (largest |entry| positive) so fits are reproducible.
        signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
        self.mean.copy_(mean.float())
        self.components.copy_((comps * signs).float())
        self.explained_variance.copy_(evals[top].clamp_min(0).float())
        return self

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return (x.flatten(1) - self.mean) @ self.components.T, None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        flat = z @ self.components + self.mean
        return flat.clamp(0.0, 1.0).view(-1, *self.cfg.image_shape)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return torch.logit(self.decode(z), eps=self._eps)

    def loss(self, x: torch.Tensor, out: Output) -> dict[str, torch.Tensor]:
        """As the AE: reconstruction in nats per image under the model's likelihood; no KL."""
        return super().loss(x, out)


MODELS: dict[str, type[Autoencoder]] = {cls.kind: cls for cls in (Autoencoder, VAE, PCA)}


def build_model(kind: str, cfg: ModelConfig, *, seed: int | None = None) -> Autoencoder:
    """Look `kind` up in `MODELS` and build it; unknown kinds are a readable ValueError.

    With `seed`, the initial weights come from that seed (and the global random state is left
    as it was), so the same seed gives the same model.
    """
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(MODELS)}")
    if seed is None:
        return MODELS[kind](cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[kind](cfg)
