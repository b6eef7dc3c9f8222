"""The linear models, fitted in closed form: PCA (the linear autoencoder) and probabilistic PCA (the
linear Gaussian latent-variable model the notes derive the VAE from)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ModelConfig
from .base import Model, Output
from .layers import Clamp, kl_per_dim, log_normal, recon_nll


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


class ProbabilisticPCA(Model):
    """Probabilistic PCA (Tipping & Bishop, 1999): x = W z + mu + noise, z ~ N(0, I), noise ~ N(0, s2 I),
    fitted by maximum likelihood in closed form on pixel values in [0, 1].

    W = U (Lambda - s2 I)^(1/2), with U the top principal directions, Lambda their variances, and s2
    the mean of the discarded variances. Its posterior is exact: p(z|x) = N(M^-1 W^T (x - mu), s2 M^-1)
    with M = W^T W + s2 I = Lambda (diagonal for this W), so `encode` returns it in the (mu, log var)
    form of a VAE's encoder, and its ELBO *is* log p(x) (the KL to the true posterior is 0). `decode`
    is the mean W z + mu, clipped to [0, 1] for display; the likelihood uses it unclipped. Gaussian
    densities of pixels can exceed 1, so its nats per image are negative.
    """

    kind = "ppca"
    title = "Probabilistic PCA"
    summary = "a linear Gaussian latent-variable model: the VAE whose encoder and decoder are linear, solved exactly"
    fit_method = "closed form"
    probabilistic = True
    terms = ("recon", "kl", "neg_elbo")
    likelihood = "gaussian"

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.register_buffer("mean", torch.zeros(cfg.pixels))  # (P,)
        self.register_buffer("components", torch.zeros(cfg.latent_dim, cfg.pixels))  # (D, P): U, unit rows
        self.register_buffer("eigenvalues", torch.ones(cfg.latent_dim))  # (D,): Lambda
        self.register_buffer("noise_variance", torch.ones(()))  # s2

    def fit_closed_form(self, images: torch.Tensor) -> None:
        d = self.cfg.latent_dim
        mean, comps, evals = principal_directions(images, d)
        s2 = evals[d:].mean() if len(evals) > d else evals.new_tensor(1e-6)
        self.mean.copy_(mean.float())
        self.components.copy_(comps.float())
        self.eigenvalues.copy_(torch.maximum(evals[:d], s2 * (1 + 1e-6)).float())  # Lambda > s2: W is real
        self.noise_variance.copy_(s2.clamp_min(1e-12).float())

    @property
    def scales(self) -> torch.Tensor:
        """The lengths of W's columns: sqrt(Lambda - s2), (D,)."""
        return (self.eigenvalues - self.noise_variance).clamp_min(0).sqrt()

    def weight(self) -> torch.Tensor:
        """W, (P, D)."""
        return (self.components * self.scales[:, None]).T

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        projection = (x.flatten(1) - self.mean) @ self.components.T  # U^T (x - mu), (B, D)
        mu = projection * self.scales / self.eigenvalues  # M^-1 W^T (x - mu)
        logvar = (self.noise_variance / self.eigenvalues).log().expand_as(mu)  # s2 M^-1
        return mu, logvar

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """W z + mu, flat and unclipped: (B, P)."""
        return (z * self.scales) @ self.components + self.mean

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.mean_image(z).clamp(0.0, 1.0).view(-1, *self.cfg.image_shape)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return torch.logit(self.decode(z), eps=1e-6)

    def forward(self, x: torch.Tensor) -> Output:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return Output(self.decode_logits(z), z, mu, logvar)

    def _terms(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(recon, kl) per image for any Gaussian q(z) = N(mu, exp(logvar)), exactly: recon =
        E_q[-log N(x; W z + mu_x, s2 I)] = (|x - W mu - mu_x|^2 + tr(W S W^T)) / 2 s2 + P/2 log(2 pi s2)."""
        s2 = self.noise_variance
        residual = x.flatten(1) - self.mean_image(mu)  # (B, P)
        spread = (logvar.exp() * self.scales.pow(2)).sum(1)  # tr(W S W^T)
        recon = 0.5 * (residual.pow(2).sum(1) + spread) / s2 + 0.5 * self.cfg.pixels * torch.log(2 * math.pi * s2)
        return recon, kl_per_dim(mu, logvar).sum(1)

    def loss(self, x: torch.Tensor, out: Output) -> dict[str, torch.Tensor]:
        """In nats per image, exactly (no sampling): recon = E_q[-log p(x|z)], kl = KL(q(z|x) || N(0, I));
        their sum is -log p(x), since q is the true posterior."""
        recon, kl = (t.mean() for t in self._terms(x, out.mu, out.logvar))
        return {"recon": recon, "kl": kl, "neg_elbo": recon + kl, "total": recon + kl}

    def elbo(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """The ELBO of x under any Gaussian q(z), exactly (the noise is not needed): (B,) nats."""
        recon, kl = self._terms(x, mu, logvar)
        return -(recon + kl)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """-log p(x) per image in nats, exactly: x ~ N(mu, W W^T + s2 I), whose eigenvalues are Lambda
        along U and s2 elsewhere."""
        centred = x.flatten(1).double() - self.mean.double()
        proj = centred @ self.components.double().T  # (B, D)
        s2, lam = self.noise_variance.double(), self.eigenvalues.double()
        quad = (centred.pow(2).sum(1) - proj.pow(2).sum(1)) / s2 + (proj.pow(2) / lam).sum(1)
        logdet = lam.log().sum() + (self.cfg.pixels - self.cfg.latent_dim) * s2.log()
        return (0.5 * (self.cfg.pixels * math.log(2 * math.pi) + logdet + quad)).float()

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x, z_i) - log q(z_i|x) for k samples of the posterior: (k, B); each equals log p(x)."""
        mu, logvar = self.encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn(k, *mu.shape, device=mu.device)
        s2 = self.noise_variance
        mean = self.mean_image(z.flatten(0, 1)).view(k, len(x), -1)
        log_px_z = -(0.5 * (x.flatten(1)[None] - mean).pow(2) / s2 + 0.5 * torch.log(2 * math.pi * s2)).sum(-1)
        return log_px_z + log_normal(z, torch.zeros_like(z), torch.zeros_like(z)) - log_normal(z, mu, logvar)

    @torch.no_grad()
    def extra_metrics(self, images: torch.Tensor) -> dict[str, float]:
        """`nll`: -log p(x) per test image in nats, computed exactly (equal to the -ELBO: no gap)."""
        return {"nll": float(torch.cat([self.nll(images[i : i + 1000]) for i in range(0, len(images), 1000)]).mean())}

    def decoder_layers(self) -> list[nn.Module]:
        linear = nn.Linear(self.cfg.latent_dim, self.cfg.pixels)
        with torch.no_grad():
            linear.weight.copy_(self.weight())
            linear.bias.copy_(self.mean)
        return [linear, nn.Unflatten(1, self.cfg.image_shape), Clamp(0.0, 1.0)]
