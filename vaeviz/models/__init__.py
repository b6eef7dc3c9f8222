"""The model kinds and their one registry, `MODELS`.

Every kind implements the interface of `vaeviz.models.base.Model`; the app, the CLI and the
trainer look kinds up here and never dispatch on their names.
"""

from __future__ import annotations

import torch

from ..config import ModelConfig
from .autoencoders import Autoencoder, ContractiveAE, DenoisingAE, SparseAE
from .base import Model, Output
from .layers import kl_per_dim, recon_nll
from .linear import PCA, ProbabilisticPCA
from .variational import VAE, HierarchicalVAE

# In the order the lecture notes walk them: the linear models, the autoencoders, the variational ones.
MODELS: dict[str, type[Model]] = {cls.kind: cls for cls in (
    PCA, ProbabilisticPCA, Autoencoder, DenoisingAE, SparseAE, ContractiveAE, VAE, HierarchicalVAE)}


def build_model(kind: str, cfg: ModelConfig, *, seed: int | None = None) -> Model:
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


__all__ = ["MODELS", "PCA", "VAE", "Autoencoder", "ContractiveAE", "DenoisingAE", "HierarchicalVAE", "Model",
           "Output", "ProbabilisticPCA", "SparseAE", "build_model", "kl_per_dim", "recon_nll"]
