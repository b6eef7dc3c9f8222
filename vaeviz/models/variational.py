"""The variational autoencoders: one stochastic layer (the VAE, beta a field of its config) and two
(the hierarchical VAE)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .autoencoders import Autoencoder
from .base import Model, Output
from .layers import DECODERS, ENCODERS, kl_gaussians, kl_per_dim, log_normal, recon_nll


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

    def elbo(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The ELBO (beta = 1) of images x (B, ...) under any Gaussian q(z) = N(mu, exp(logvar)), estimated
        with the noise eps (S, B, D): nats per image, (B,). What `inference.optimize_posterior` maximises."""
        z = mu.unsqueeze(0) + (0.5 * logvar).exp().unsqueeze(0) * eps  # (S, B, D)
        x_rep = x.unsqueeze(0).expand(len(eps), *x.shape).flatten(0, 1)
        recon = recon_nll(self.cfg, x_rep, self.decode_logits(z.flatten(0, 1))).view(len(eps), -1).mean(0)
        return -(recon + kl_per_dim(mu, logvar).sum(1))

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x, z_i) - log q(z_i|x) for k samples z_i ~ q(z|x): (k, B). For the IW bound."""
        mu, logvar = self.encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn(k, *mu.shape, device=mu.device)  # (k, B, D)
        logits = self.decode_logits(z.flatten(0, 1))
        x_rep = x.unsqueeze(0).expand(k, *x.shape).flatten(0, 1)
        log_px_z = -recon_nll(self.cfg, x_rep, logits).view(k, -1)
        log_pz = log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        return log_px_z + log_pz - log_normal(z, mu, logvar)


class HierarchicalVAE(Model):
    """A VAE with two stochastic layers: p(z2) p(z1|z2) p(x|z1), z2 the top code (`latent_dim`, what
    the pages explore) and z1 the lower one (`bottom_dim`).

    Inference is top-down, as in ladder VAEs (Sønderby et al., 2016), without their precision-weighted
    merge: a shared trunk h(x) gives q(z2|x), then q(z1|x, z2) from h and the sampled z2, so inference
    follows the generative order and both KL terms are closed forms given the sample of z2:
    -ELBO = E_q[-log p(x|z1)] + KL(q(z2|x) || N(0, I)) + E_q(z2|x)[KL(q(z1|x,z2) || p(z1|z2))].
    `decode(z2)` decodes the mean of p(z1|z2); `sample_bottom` shows what z1 adds for a fixed z2.
    """

    kind = "hvae"
    title = "Hierarchical VAE"
    summary = "two stochastic layers, p(z2) p(z1|z2) p(x|z1): the top code says what, the lower one how"
    probabilistic = True
    uses_beta = True
    terms = ("recon", "kl", "kl1", "kl2", "neg_elbo")

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        width = cfg.hidden[-1] if cfg.arch == "mlp" else cfg.conv_hidden
        d1, d2 = cfg.bottom_dim, cfg.latent_dim
        self.trunk = nn.Sequential(ENCODERS[cfg.arch](cfg, width), nn.ReLU())  # h(x), (B, width)
        self.q_top = nn.Linear(width, 2 * d2)  # q(z2|x)
        self.q_bottom = nn.Sequential(nn.Linear(width + d2, width), nn.ReLU(), nn.Linear(width, 2 * d1))  # q(z1|x,z2)
        self.p_bottom = nn.Sequential(nn.Linear(d2, width), nn.ReLU(), nn.Linear(width, 2 * d1))  # p(z1|z2)
        self.decoder = DECODERS[cfg.arch](cfg, d1)  # p(x|z1), logits

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.q_top(self.trunk(x)).chunk(2, dim=1)
        return mu, logvar

    def prior_bottom(self, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z1|z2): (mean, log variance), (B, bottom_dim) each."""
        mu, logvar = self.p_bottom(z2).chunk(2, dim=1)
        return mu, logvar

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.prior_bottom(z)[0])

    def forward(self, x: torch.Tensor) -> Output:
        h = self.trunk(x)
        mu2, logvar2 = self.q_top(h).chunk(2, dim=1)
        z2 = mu2 + torch.randn_like(mu2) * (0.5 * logvar2).exp()
        mu1, logvar1 = self.q_bottom(torch.cat([h, z2], 1)).chunk(2, dim=1)
        z1 = mu1 + torch.randn_like(mu1) * (0.5 * logvar1).exp()
        prior1 = self.prior_bottom(z2)
        return Output(self.decoder(z1), z2, mu2, logvar2,
                      {"z1": z1, "mu1": mu1, "logvar1": logvar1, "prior_mu1": prior1[0], "prior_logvar1": prior1[1]})

    def loss(self, x: torch.Tensor, out: Output) -> dict[str, torch.Tensor]:
        """Nats per image: recon = -log p(x|z1); kl2 = KL(q(z2|x) || N(0, I)); kl1 = KL(q(z1|x,z2) ||
        p(z1|z2)) at the sampled z2; kl = kl1 + kl2; neg_elbo = recon + kl; total = recon + beta * kl."""
        e = out.extra
        recon = recon_nll(self.cfg, x, out.logits).mean()
        kl2 = kl_per_dim(out.mu, out.logvar).sum(1).mean()
        kl1 = kl_gaussians(e["mu1"], e["logvar1"], e["prior_mu1"], e["prior_logvar1"]).sum(1).mean()
        kl = kl1 + kl2
        return {"recon": recon, "kl": kl, "kl1": kl1, "kl2": kl2, "neg_elbo": recon + kl,
                "total": recon + self.cfg.beta * kl}

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x, z1, z2) - log q(z1, z2|x) for k samples of q: (k, B). For the IW bound."""
        h = self.trunk(x)
        mu2, logvar2 = self.q_top(h).chunk(2, dim=1)
        z2 = mu2 + (0.5 * logvar2).exp() * torch.randn(k, *mu2.shape, device=x.device)  # (k, B, D2)
        h_rep = h.unsqueeze(0).expand(k, *h.shape)
        mu1, logvar1 = self.q_bottom(torch.cat([h_rep, z2], -1)).chunk(2, dim=-1)
        z1 = mu1 + (0.5 * logvar1).exp() * torch.randn_like(mu1)
        pmu1, plogvar1 = self.p_bottom(z2).chunk(2, dim=-1)
        logits = self.decoder(z1.flatten(0, 1))
        x_rep = x.unsqueeze(0).expand(k, *x.shape).flatten(0, 1)
        log_px = -recon_nll(self.cfg, x_rep, logits).view(k, -1)
        zeros = torch.zeros_like(z2)
        return (log_px + log_normal(z1, pmu1, plogvar1) + log_normal(z2, zeros, zeros)
                - log_normal(z2, mu2, logvar2) - log_normal(z1, mu1, logvar1))

    @torch.no_grad()
    def sample_bottom(self, z2: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n decodings of z1 ~ p(z1|z2) for each top code (B, D2): (B, n, C, H, W). The top code fixed,
        what the lower layer varies."""
        mu1, logvar1 = self.prior_bottom(z2)
        eps = torch.randn(n, *mu1.shape, generator=generator, device=mu1.device)
        z1 = mu1.unsqueeze(0) + (0.5 * logvar1).exp().unsqueeze(0) * eps  # (n, B, D1)
        return torch.sigmoid(self.decoder(z1.flatten(0, 1))).view(n, len(z2), *self.cfg.image_shape).transpose(0, 1)

    @torch.no_grad()
    def extra_metrics(self, images: torch.Tensor) -> dict[str, float]:
        """`active_units_bottom`: z1's units whose mean, with z2 at its posterior mean, varies across the
        test images by more than 0.01 (Burda et al.); the top layer's are `active_units`."""
        means = []
        for i in range(0, len(images), 1000):
            h = self.trunk(images[i : i + 1000])
            mu2, _ = self.q_top(h).chunk(2, dim=1)
            means.append(self.q_bottom(torch.cat([h, mu2], 1)).chunk(2, dim=1)[0])
        mu1 = torch.cat(means).double()
        return {"active_units_bottom": int((mu1.var(0) > 0.01).sum())}

    def decoder_layers(self) -> list[nn.Module]:
        """p(z1|z2)'s network, its last layer cut to the mean's half, then the decoder and a sigmoid."""
        first, act, last = self.p_bottom
        mean_half = nn.Linear(last.in_features, self.cfg.bottom_dim)
        with torch.no_grad():
            mean_half.weight.copy_(last.weight[: self.cfg.bottom_dim])
            mean_half.bias.copy_(last.bias[: self.cfg.bottom_dim])
        return [first, act, mean_half, *self.decoder, nn.Sigmoid()]
