"""The one interface every model kind implements, so the app can put any two side by side.

- `encode(x) -> (mu, logvar)`: x is (B, C, H, W) in [0, 1]; mu is (B, D); logvar is (B, D) for the
  kinds with a posterior q(z|x) (`probabilistic`) and None for the deterministic ones;
- `decode(z) -> x_hat`: (B, C, H, W) pixel probabilities (or means) in [0, 1];
- `forward(x) -> Output` and `loss(x, out) -> {"recon", ..., "total"}`, every term in nats per
  image: summed over pixels (and latent dimensions), averaged over the batch;
- how it is fitted: `fit_method` is "gradient" (`vaeviz.fit` runs Adam on `loss`) or "closed form"
  (`fit_closed_form(images)` computes the answer directly);
- `decoder_layers()`: the modules whose composition is `decode`, for the in-browser decoder.

A new kind is one subclass in the `MODELS` registry (`vaeviz.models`) plus its tests; nothing else
dispatches on a kind's name.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import nn

from ..config import ModelConfig
from ..meta import CheckpointMeta


class Output(NamedTuple):
    """What `forward` returns. For the deterministic kinds `logvar` is None and `z` equals `mu`."""

    logits: torch.Tensor  # (B, C, H, W) decoder logits
    z: torch.Tensor  # (B, D) the code that was decoded (a sample, for the probabilistic kinds)
    mu: torch.Tensor  # (B, D)
    logvar: torch.Tensor | None  # (B, D)
    extra: dict | None = None  # a kind's own tensors for its loss (a hierarchical VAE's lower layer, say)


class Model(nn.Module):
    """Base of every kind. Subclasses set the class attributes and implement the interface."""

    kind: ClassVar[str] = ""  # the registry's name (and the CLI's --model)
    title: ClassVar[str] = ""  # for people
    summary: ClassVar[str] = ""  # one sentence: what this kind does differently
    fit_method: ClassVar[str] = "gradient"  # "gradient" or "closed form"
    probabilistic: ClassVar[bool] = False  # encode gives a posterior q(z|x) = N(mu, exp(logvar))
    uses_beta: ClassVar[bool] = False  # cfg.beta weighs a KL term
    terms: ClassVar[tuple[str, ...]] = ("recon",)  # loss terms besides "total", for curves and tables
    likelihood: ClassVar[str | None] = None  # a likelihood the kind is defined with (pPCA: gaussian); None: the data's

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.meta = CheckpointMeta.for_model(self.kind, cfg, uses_beta=self.uses_beta)

    # --- the interface --------------------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) codes -> (B, C, H, W) pixel probabilities (Bernoulli) or means (Gaussian) in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> Output:
        mu, _ = self.encode(x)
        return Output(self.decode_logits(mu), mu, mu, None)

    def loss(self, x: torch.Tensor, out: Output) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def fit_closed_form(self, images: torch.Tensor) -> None:
        """Fit in closed form on images (N, C, H, W); only for `fit_method == "closed form"`."""
        raise TypeError(f"a {self.title} is trained by gradient descent (vaeviz.fit), not fitted in closed form")

    def decoder_layers(self) -> list[nn.Module]:
        """The modules that, applied in order to z (B, D), give `decode(z)`: for the web decoder."""
        raise NotImplementedError

    @torch.no_grad()
    def extra_metrics(self, images: torch.Tensor) -> dict[str, float]:
        """A kind's own test figures (sparsity, contraction, ...), beyond the loss terms."""
        return {}

    @property
    def device(self) -> torch.device:
        return next(iter(self.state_dict().values())).device
