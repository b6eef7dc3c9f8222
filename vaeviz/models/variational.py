"""The variational autoencoder: a diagonal Gaussian posterior q(z|x) and the prior N(0, I)."""

from __future__ import annotations

import torch

from .autoencoders import Autoencoder
from .base import Output
from .layers import kl_per_dim, log_normal, recon_nll


class VAE(Autoencoder):
    """A variational autoencoder (Kingma & Welling, 2014).

    The encoder's last layer gives mu and log sigma^2 side by side; `cfg.beta` weighs the KL term
    (beta = 1 is the ELBO; beta = 0 is an AE with noise; large beta collapses the posterior onto
    the prior).
    """

    kind = "vae"
    title = "Variational autoencoder"
    summary = "each image becomes a Gaussian q(z|x), pulled towards the prior N(0, I) by a KL term"
    probabilistic = True
    uses_beta = True
    terms = ("recon", "kl", "neg_elbo")

    def code_width(self) -> int:
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
        neg_elbo = recon + kl, total = recon + beta * kl (the -ELBO when beta = 1).
        """
        recon = recon_nll(self.cfg, x, out.logits).mean()
        kl = kl_per_dim(out.mu, out.logvar).sum(1).mean()
        return {"recon": recon, "kl": kl, "neg_elbo": recon + kl, "total": recon + self.cfg.beta * kl}

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x, z_i) - log q(z_i|x) for k samples z_i ~ q(z|x): (k, B). For the IW bound."""
        mu, logvar = self.encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn(k, *mu.shape, device=mu.device)  # (k, B, D)
        logits = self.decode_logits(z.flatten(0, 1))
        x_rep = x.unsqueeze(0).expand(k, *x.shape).flatten(0, 1)
        log_px_z = -recon_nll(self.cfg, x_rep, logits).view(k, -1)
        log_pz = log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        return log_px_z + log_pz - log_normal(z, mu, logvar)
