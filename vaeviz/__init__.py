"""vaeviz: train, load and look inside autoencoders and variational autoencoders.

The public API, used by the app, the CLI and people's own scripts:

    from vaeviz import load_checkpoint
    m = load_checkpoint("checkpoints/mnist-vae-mlp-16.safetensors")   # eval mode, on the CPU
    mu, logvar = m.encode(x)   # x: (B, 1, 28, 28) in [0, 1]; logvar is None for an AE
    x_hat = m.decode(mu)       # (B, 1, 28, 28) pixel probabilities in [0, 1]
    m.meta                     # CheckpointMeta: kind, config, dataset, train, metrics, curves, ...

This package never imports streamlit, except in `vaeviz.ui`.
"""

__version__ = "0.2.0"

from .checkpoint import checkpoint_summary, load_checkpoint, save_checkpoint  # noqa: E402
from .config import ModelConfig, TrainConfig  # noqa: E402
from .data import DATASETS, DataUnavailable, Split, load_split  # noqa: E402
from .meta import CheckpointInfo, CheckpointMeta, Curves, Metrics, TrainingRun  # noqa: E402
from .metrics import evaluate, iw_nll  # noqa: E402
from .models import MODELS, PCA, VAE, Autoencoder, Model, build_model  # noqa: E402
from .train import History, fit, pick_device  # noqa: E402

__all__ = [
    "DATASETS",
    "MODELS",
    "PCA",
    "VAE",
    "Autoencoder",
    "CheckpointInfo",
    "CheckpointMeta",
    "Curves",
    "DataUnavailable",
    "History",
    "Metrics",
    "Model",
    "ModelConfig",
    "Split",
    "TrainConfig",
    "TrainingRun",
    "build_model",
    "checkpoint_summary",
    "evaluate",
    "fit",
    "iw_nll",
    "load_checkpoint",
    "load_split",
    "pick_device",
    "save_checkpoint",
    "__version__",
]
