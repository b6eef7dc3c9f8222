"""The deterministic autoencoders: the plain one, and the variants of the lecture notes' exercises
(denoising, sparse, contractive), each changing only what differs."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .base import Model, Output
from .layers import DECODERS, ENCODERS, recon_nll


class Autoencoder(Model):
    """A deterministic autoencoder: the code is a point, and training only asks it to reconstruct."""

    kind = "ae"
    title = "Autoencoder"
    summary = "a deterministic code trained to reconstruct: nothing asks its codes to fill any region"

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.encoder = ENCODERS[cfg.arch](cfg, self.code_width())
        self.decoder = DECODERS[cfg.arch](cfg)

    def code_width(self) -> int:
        """Numbers the encoder's last layer gives per image."""
        return self.cfg.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.encoder(x), None

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss(self, x: torch.Tensor, out: Output) -> dict[str, torch.Tensor]:
        """Reconstruction in nats per image (sum over pixels, mean over the batch); total = recon."""
        recon = recon_nll(self.cfg, x, out.logits).mean()
        return {"recon": recon, "total": recon}

    def decoder_layers(self) -> list[nn.Module]:
        # sigmoid(decoder(z)) whatever the likelihood: a Gaussian decoder's mean is sigmoid(logits) too.
        return [*self.decoder, nn.Sigmoid()]


def corrupt(x: torch.Tensor, how: str, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A corrupted copy of images x in [0, 1]: Gaussian noise of std `level`, clipped to [0, 1], or
    a fraction `level` of the pixels set to 0 ("mask")."""
    if how == "gaussian":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) if generator is not None \
            else torch.randn_like(x)
        return (x + level * noise).clamp(0.0, 1.0)
    keep = (torch.rand(x.shape, generator=generator, device=x.device) if generator is not None
            else torch.rand_like(x)) >= level
    return x * keep


class DenoisingAE(Autoencoder):
    """A denoising autoencoder (Vincent et al., 2008): it sees a corrupted image and is asked for the
    clean one, so it must learn what digits look like, not copy pixels. The corruption (`cfg.corruption`,
    `cfg.noise`) is applied in training only; `encode` takes whatever it is given."""

    kind = "dae"
    title = "Denoising autoencoder"
    summary = "trained to reconstruct the clean image from a corrupted one"

    def forward(self, x: torch.Tensor) -> Output:
        x_in = corrupt(x, self.cfg.corruption, self.cfg.noise) if self.training else x
        mu, _ = self.encode(x_in)
        return Output(self.decode_logits(mu), mu, mu, None)

    @torch.no_grad()
    def extra_metrics(self, images: torch.Tensor) -> dict[str, float]:
        """`noisy_bce`: BCE per pixel against the clean test images, from their corrupted copies (seed 0)."""
        return {"noisy_bce": denoising_bce(self, images, self.cfg.corruption, self.cfg.noise)}


@torch.no_grad()
def denoising_bce(model: Model, images: torch.Tensor, how: str, level: float, seed: int = 0,
                  batch_size: int = 1000) -> float:
    """BCE per pixel of any model's reconstructions of corrupted images against the clean ones (the
    same corruption for every model with the same seed): how well it denoises."""
    gen = torch.Generator(device=images.device).manual_seed(seed)
    total = 0.0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        mu, _ = model.encode(corrupt(x, how, level, gen))
        total += float(recon_nll(model.cfg, x, model.decode_logits(mu)).sum())
    return total / len(images) / model.cfg.pixels


class SparseAE(Autoencoder):
    """A sparse autoencoder: non-negative (ReLU) codes with an L1 penalty, `cfg.sparsity` * sum(z), so
    each image is drawn from a few of many codes, each code a part (an "atom") of the images."""

    kind = "sae"
    title = "Sparse autoencoder"
    summary = "a wide ReLU code with an L1 penalty: each image uses a few of many parts"
    terms = ("recon", "l1")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return torch.relu(self.encoder(x)), None

    def loss(self, x: torch.Tensor, out: Output) -> dict[str, torch.Tensor]:
        """recon in nats per image; l1 = sparsity * sum_d z_d per image (z >= 0); total = recon + l1."""
        recon = recon_nll(self.cfg, x, out.logits).mean()
        l1 = self.cfg.sparsity * out.mu.sum(1).mean()
        return {"recon": recon, "l1": l1, "total": recon + l1}

    @torch.no_grad()
    def extra_metrics(self, images: torch.Tensor) -> dict[str, float]:
        """`active_codes`: codes above zero per test image, on average (of `latent_dim`)."""
        codes = torch.cat([self.encode(images[i : i + 1000])[0] for i in range(0, len(images), 1000)])
        return {"active_codes": float((codes > 0).float().sum(1).mean())}


class ContractiveAE(Autoencoder):
    """A contractive autoencoder (Rifai et al., 2011): the penalty `cfg.contraction` * ||dz/dx||_F^2
    makes the code insensitive to small changes of the image, except along the data.

    The Jacobian is computed exactly. For the mlp encoder in closed form: with ReLU layers
    z = W_L relu(... relu(W_1 x)), dz/dx = W_L D_{L-1} W_{L-1} ... D_1 W_1, D_l the 0/1 diagonal of
    the units that are on. For the conv encoder, by autograd (one vector-Jacobian product per code
    dimension)."""

    kind = "cae"
    title = "Contractive autoencoder"
    summary = "penalises how fast the code changes with the image (the Jacobian's Frobenius norm)"
    terms = ("recon", "contraction")

    def loss(self, x: torch.Tensor, out: Output) -> dict[str, torch.Tensor]:
        """recon in nats per image; contraction = weight * ||dz/dx||_F^2 per image; total = their sum."""
        recon = recon_nll(self.cfg, x, out.logits).mean()
        penalty = self.cfg.contraction * jacobian_frobenius(self, x).mean()
        return {"recon": recon, "contraction": penalty, "total": recon + penalty}

    @torch.no_grad()
    def extra_metrics(self, images: torch.Tensor) -> dict[str, float]:
        """`jacobian_frobenius`: ||dz/dx||_F^2 per test image, on average (of the first 2,000)."""
        with torch.enable_grad():
            return {"jacobian_frobenius": float(jacobian_frobenius(self, images[:2000]).detach().mean())}


def jacobian_frobenius(model: Model, x: torch.Tensor) -> torch.Tensor:
    """||d encode(x) / dx||_F^2 per image (B,), exactly: in closed form for an mlp encoder (Linear
    layers with ReLUs between, as `mlp_encoder` builds), else by autograd. Differentiable (for training).

    Closed form: z = W_L D_{L-1} W_{L-1} ... D_1 W_1 x, so dz/dx is that product, multiplied from the
    code's side ((B, D, width) at every step: D is small, so this costs about one forward pass)."""
    layers = [m for m in getattr(model, "encoder", []) if not isinstance(m, nn.Flatten)]
    kinds = [type(m) for m in layers]
    alternating = kinds[::2] == [nn.Linear] * len(kinds[::2]) and kinds[1::2] == [nn.ReLU] * len(kinds[1::2])
    if layers and alternating and kinds[-1] is nn.Linear:
        h, masks = x.flatten(1), []
        for m in layers:
            if isinstance(m, nn.ReLU):
                masks.append((h > 0).to(h.dtype))
            h = m(h)
        weights = [m.weight for m in layers if isinstance(m, nn.Linear)]
        jac = weights[-1].unsqueeze(0).expand(len(h), -1, -1)  # (B, D, width)
        if isinstance(model, SparseAE):
            jac = jac * (h > 0).to(h.dtype).unsqueeze(2)  # its code is relu(encoder(x))
        for weight, on in zip(reversed(weights[:-1]), reversed(masks)):
            jac = (jac * on.unsqueeze(1)) @ weight
        return jac.pow(2).sum((1, 2))
    x = x.detach().requires_grad_(True)
    z, _ = model.encode(x)
    total = x.new_zeros(len(x))
    for d in range(z.shape[1]):  # one backward pass per code dimension: J's rows
        (grad,) = torch.autograd.grad(z[:, d].sum(), x, create_graph=True)
        total = total + grad.pow(2).flatten(1).sum(1)
    return total
