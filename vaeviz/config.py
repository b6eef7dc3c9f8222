"""Configuration dataclasses for models and training.

A `ModelConfig` says everything needed to rebuild a model's layers (it is stored in every
checkpoint as JSON and fed back to `ModelConfig(**...)` on load), and a `TrainConfig` says how a
model was trained. Both validate themselves on construction, so a bad value from the CLI, a page or
an uploaded checkpoint fails early with a message a person understands (a `ValueError`).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .checks import shown
from .checks import whole as _check_int
from .netspec import Network

ARCHS = ("mlp", "conv", "graph")  # graph: an imported network, its layers in `network` (vaeviz.onnx_import)
LIKELIHOODS = ("bernoulli", "gaussian")
CORRUPTIONS = ("gaussian", "mask")
MAX_LATENT_DIM = 256
MAX_BETA = 1000.0
MAX_SIDE = 256  # the largest image side a model may be built for (keeps layers a sane size)
MAX_LAYERS = 8  # hidden layers (mlp) or convolutions (conv); the shipped models have 2


def env_whole(name: str, default: int, minimum: int = 0) -> int:
    """The whole number in environment variable `name` (unset or blank: `default`); a ValueError naming
    the variable for anything else, so a server's bad setting says which one it is."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def conv_channels_for(side: int) -> tuple[int, ...]:
    """Default channels of the conv architecture's stride-2 stages for square images of `side` pixels.

    28 px (MNIST): two stages, 16 and 32 (the shipped models). Larger: one stage per halving while the
    map stays at least 4 px and even, widths 32, 64, 128, 256, 256 (32 px: 3 stages to 4x4; 64: 4; 128: 5).
    """
    if side <= 28:
        return (16, 32)
    stages = 0
    while side % 2 == 0 and side // 2 >= 4 and stages < 5:
        side, stages = side // 2, stages + 1
    if stages == 0:
        raise ValueError(f"the conv architecture halves the image, so its side must be even, got {side}")
    return tuple(min(32 * 2 ** i, 256) for i in range(stages))


def _check_float(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):  # (ints are finite, and may be too
        raise ValueError(f"{name} must be a finite number, got {value}")  # long for a float)
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low:g}, {high:g}], got {shown(value)}")


def _check_widths(name: str, values: Any, high: int) -> tuple[int, ...]:
    """A list of 1 to MAX_LAYERS layer sizes, each between 1 and `high`, as a tuple."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise ValueError(f"{name} must be a list of layer sizes, got {shown(values)}")
    if not 1 <= len(values) <= MAX_LAYERS:
        raise ValueError(f"{name} must list 1 to {MAX_LAYERS} layer sizes, got {len(values)}")
    for size in values:
        _check_int(name, size, 1, high)
    return tuple(values)


@dataclass(frozen=True)
class ModelConfig:
    """The architecture of one model, of any kind. One field a line; every field is stored. A kind reads
    only the fields it needs (a denoising AE its corruption, a sparse AE its L1 weight, ...)."""

    arch: str = "mlp"  # "mlp" (the lecture notes' network) or "conv" (strided convolutions)
    latent_dim: int = 16  # size of the code z; 2 lets the latent map be drawn without PCA
    channels: int = 1  # image shape comes from here, never from a hard-coded 784
    height: int = 28
    width: int = 28
    hidden: tuple[int, ...] = (256, 128)  # mlp: widths of the encoder layers (decoder mirrors)
    conv_channels: tuple[int, ...] = (16, 32)  # conv: channels of the stride-2 convolutions
    conv_hidden: int = 128  # conv: the linear layer between the feature map and the code
    beta: float = 1.0  # VAE only: weight of the KL term (beta-VAE); 1 gives the true ELBO
    likelihood: str = "bernoulli"  # decoder p(x|z): "bernoulli" (BCE, as the notes) or "gaussian"
    sigma: float = 0.1  # gaussian only: the decoder's fixed std, so MSE becomes a -log p in nats
    corruption: str = "gaussian"  # dae: "gaussian" noise (std `noise`, clipped to [0, 1]) or "mask" (a fraction)
    noise: float = 0.3  # dae: the noise's std, or the fraction of pixels masked to 0
    sparsity: float = 0.0  # sae: weight of the L1 penalty on the (ReLU) codes, per image
    contraction: float = 0.0  # cae: weight of the penalty ||dz/dx||_F^2, per image
    bottom_dim: int = 32  # hvae: size of the lower stochastic layer z1 (latent_dim is the top layer z2)
    network: str = ""  # graph only: the imported layers as canonical JSON (vaeviz.netspec); a string stays hashable

    def __post_init__(self) -> None:
        # JSON round trips turn tuples into lists; store tuples so the config stays hashable.
        object.__setattr__(self, "hidden", _check_widths("hidden", self.hidden, 4096))
        object.__setattr__(self, "conv_channels", _check_widths("conv channels", self.conv_channels, 512))
        if self.arch not in ARCHS:
            raise ValueError(f"unknown architecture {shown(self.arch)!r}; expected one of {', '.join(ARCHS)}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(
                f"unknown likelihood {shown(self.likelihood)!r}; expected one of {', '.join(LIKELIHOODS)}"
            )
        _check_int("latent size", self.latent_dim, 1, MAX_LATENT_DIM)
        _check_int("channels", self.channels, 1, 4)
        _check_int("height", self.height, 1, MAX_SIDE)
        _check_int("width", self.width, 1, MAX_SIDE)
        _check_float("beta", self.beta, 0.0, MAX_BETA)
        _check_float("sigma", self.sigma, 0.0, 100.0, low_open=True)
        _check_int("conv hidden", self.conv_hidden, 1, 4096)
        if self.corruption not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {shown(self.corruption)!r}; expected one of {', '.join(CORRUPTIONS)}")
        _check_float("noise", self.noise, 0.0, 1.0)
        _check_float("sparsity weight", self.sparsity, 0.0, 100.0)
        _check_float("contraction weight", self.contraction, 0.0, 100.0)
        _check_int("bottom latent size", self.bottom_dim, 1, MAX_LATENT_DIM)
        if self.arch == "graph" and not self.network:
            raise ValueError("the graph architecture (an imported model) needs its network")
        if self.arch != "graph" and self.network != "":
            raise ValueError(f"only the graph architecture (an imported model) has a network, not {self.arch}")
        if self.arch == "graph":  # a checkpoint's network is checked here, on load, before anything is built
            Network.from_text(self.network).check(self.image_shape, self.latent_dim)
        if self.arch == "conv":
            factor = 2 ** len(self.conv_channels)
            if self.height % factor or self.width % factor:
                raise ValueError(
                    f"the conv architecture halves the image {len(self.conv_channels)} times, so "
                    f"height and width must be multiples of {factor}; got {self.height}x{self.width}"
                )

    @property
    def pixels(self) -> int:
        """Numbers per image: channels x height x width."""
        return self.channels * self.height * self.width

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        # An empty network is left out, so other architectures' headers stay as older versions read them.
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
                if k != "network" or v}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Build from a checkpoint's JSON; unknown fields are an error, not silently dropped."""
        if not isinstance(data, dict):
            raise ValueError("the model config must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config field(s): {', '.join(shown(k) for k in unknown[:5])}")
        return cls(**data)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: the optimiser's settings and the bookkeeping around it."""

    epochs: int = 10
    batch_size: int = 128  # the notes' batch size; also the speed benchmark's
    lr: float = 1e-3  # Adam's step size
    lr_schedule: str = "constant"  # "constant" or "cosine" (decays to 0; helps the last nats)
    seed: int = 0  # seeds batch order and the VAE's noise (and the weights, via build_model)
    device: str = "auto"  # "auto" picks CUDA, then Apple MPS, then the CPU
    log_every: int = 50  # steps between callbacks (and NaN checks, which force a device sync)
    grad_clip: float = 0.0  # max gradient norm; 0 turns clipping off
    kl_warmup: float = 0.0  # epochs over which the KL weight ramps from 0 up to beta (VAE only):
    # early on the decoder learns to use the code before the KL term can switch latent units off
    ema: float = 0.0  # decay of an exponential moving average of the weights (e.g. 0.999); the
    # average is what gets evaluated and kept, which smooths the last steps' noise. 0 turns it off
    eval_batch_size: int = 1000
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept with the run

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, 1, 10_000)
        _check_int("batch size", self.batch_size, 1, 65_536)
        _check_float("learning rate", self.lr, 0.0, 10.0, low_open=True)
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"unknown lr schedule {self.lr_schedule!r}; expected constant or cosine")
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("log every", self.log_every, 1, 1_000_000)
        _check_float("grad clip", self.grad_clip, 0.0, 1e6)
        _check_float("kl warm-up", self.kl_warmup, 0.0, 10_000.0)
        _check_float("ema decay", self.ema, 0.0, 1.0)
        if self.ema == 1.0:
            raise ValueError("ema decay must be below 1 (1 would never move the average)")
        _check_int("eval batch size", self.eval_batch_size, 1, 1_000_000)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
