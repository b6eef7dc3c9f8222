"""The deterministic autoencoder, z = encoder(x), x_hat = sigmoid(decoder(z))."""

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
