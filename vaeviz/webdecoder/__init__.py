"""The web decoder: a model's decoder as plain data, and the browser code that runs it.

`decoder_spec(model)` walks `model.decoder_layers()` (the modules whose composition is `decode`)
and writes them down as a list of layers (linear, ReLU, leaky ReLU, tanh, a scalar affine y = a·x + b,
reshape, transposed convolution, and the output function: sigmoid, or a clamp for the linear kinds), with all weights concatenated into one
little-endian float32 buffer that layers point into by offset. The JavaScript forward pass beside
this file (`decoder.js`, with the UI in `component.js` and `style.css`) reads exactly this format;
`forward` below is its NumPy twin, used by tests to check the format itself. A decoder holding
anything else raises `NotRunnable` with a sentence saying why, so a page can fall back to decoding
on the server and tell the person. `vaeviz.ui.live` mounts the browser code in Streamlit; this
package never imports streamlit.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..models import Model
from ..models.graph import Affine
from ..models.layers import Clamp

FORMAT = "vaeviz-webdecoder/1"
MAX_PARAMS = 8_000_000  # 32 MB of float32: more would make the first load of a page crawl
IMAGE_CHANNELS = (1, 3)  # greyscale or RGB: what the browser knows how to draw


class NotRunnable(ValueError):
    """The browser cannot run this model's decoder; the message says why, for the page."""


class _Weights:
    """Collects float32 arrays into one buffer; layers refer to them by element offset."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.size = 0

    def add(self, tensor: torch.Tensor) -> dict[str, int]:
        flat = tensor.detach().to("cpu", torch.float32).contiguous().numpy().reshape(-1)
        ref = {"offset": self.size, "length": int(flat.size)}
        self.parts.append(flat)
        self.size += flat.size
        return ref

    def tobytes(self) -> bytes:
        if not self.parts:
            return b""
        return np.concatenate(self.parts).astype("<f4", copy=False).tobytes()


def _linear(layer: nn.Linear, shape: tuple[int, ...], weights: _Weights) -> tuple[dict, tuple[int, ...]]:
    if math.prod(shape) != layer.in_features:
        raise NotRunnable(f"a linear layer expects {layer.in_features} inputs but gets {math.prod(shape)}")
    spec = {"type": "linear", "in": layer.in_features, "out": layer.out_features,
            "weight": weights.add(layer.weight)}  # weight (out, in), row-major as in PyTorch
    if layer.bias is not None:
        spec["bias"] = weights.add(layer.bias)
    return spec, (layer.out_features,)


def _conv_transpose(layer: nn.ConvTranspose2d, shape: tuple[int, ...], weights: _Weights) -> tuple[dict, tuple[int, ...]]:
    if len(shape) != 3 or shape[0] != layer.in_channels:
        raise NotRunnable(f"a transposed convolution expects ({layer.in_channels}, H, W) input, not {shape}")
    if layer.groups != 1 or tuple(layer.dilation) != (1, 1) or layer.padding_mode != "zeros":
        raise NotRunnable("its transposed convolution uses groups, dilation or non-zero padding, "
                          "which the browser decoder does not implement")
    if isinstance(layer.padding, str):
        raise NotRunnable(f"its transposed convolution uses padding={layer.padding!r}")
    (kh, kw), (sh, sw), (ph, pw), (oph, opw) = (tuple(layer.kernel_size), tuple(layer.stride),
                                                tuple(layer.padding), tuple(layer.output_padding))
    _, h, w = shape
    out_h, out_w = (h - 1) * sh - 2 * ph + kh + oph, (w - 1) * sw - 2 * pw + kw + opw
    spec = {"type": "conv_transpose2d", "in_shape": list(shape), "out_shape": [layer.out_channels, out_h, out_w],
            "kernel": [kh, kw], "stride": [sh, sw], "padding": [ph, pw],
            "weight": weights.add(layer.weight)}  # weight (C_in, C_out, kH, kW), as in PyTorch
    if layer.bias is not None:
        spec["bias"] = weights.add(layer.bias)
    return spec, (layer.out_channels, out_h, out_w)


def _layers(modules: list[nn.Module], latent_dim: int, weights: _Weights) -> tuple[list[dict], tuple[int, ...]]:
    """The decoder's layers in order, with the shape after each; NotRunnable for anything unknown."""
    shape: tuple[int, ...] = (latent_dim,)
    layers: list[dict] = []
    for module in modules:
        if isinstance(module, nn.Linear):
            spec, shape = _linear(module, shape, weights)
        elif isinstance(module, nn.ConvTranspose2d):
            spec, shape = _conv_transpose(module, shape, weights)
        elif isinstance(module, nn.ReLU):
            spec = {"type": "relu"}
        elif isinstance(module, nn.LeakyReLU):
            spec = {"type": "leaky_relu", "slope": float(module.negative_slope)}
        elif isinstance(module, nn.Sigmoid):
            spec = {"type": "sigmoid"}
        elif isinstance(module, nn.Tanh):
            spec = {"type": "tanh"}
        elif isinstance(module, Affine):  # y = scale * x + shift (an imported network's Mul/Add by a constant)
            spec = {"type": "affine", "scale": float(module.scale), "shift": float(module.shift)}
        elif isinstance(module, Clamp):
            spec = {"type": "clamp", "min": float(module.low), "max": float(module.high)}
        elif isinstance(module, (nn.Unflatten, nn.Flatten)):
            # Activations are flat, row-major (C, H, W) arrays in the browser: only the shape changes.
            new = tuple(module(torch.empty(1, *shape)).shape[1:])
            spec, shape = {"type": "reshape", "shape": list(new)}, new
        elif isinstance(module, nn.Identity):
            continue
        else:
            raise NotRunnable(f"its decoder has a {type(module).__name__} layer, which the browser decoder "
                              "does not implement (it runs Linear, ConvTranspose2d, ReLU, LeakyReLU, Sigmoid, Tanh, "
                              "a scalar affine and a clamp)")
        layers.append(spec)
    return layers, shape


def decoder_spec(model: Model) -> dict[str, Any]:
    """The decoder of `model` as data: {"format", "latent_dim", "image_shape", "layers", "params",
    "weights" (bytes: float32 little-endian), "hash" (sha256 of layers and weights)}.

    The output is what `model.decode` returns: pixel probabilities (C, H, W) in [0, 1]. Raises
    NotRunnable, with the reason, for a decoder the browser cannot run.
    """
    cfg = model.cfg
    if cfg.channels not in IMAGE_CHANNELS:
        raise NotRunnable(f"its images have {cfg.channels} channels; the browser draws 1 (grey) or 3 (RGB)")
    kind = type(model)
    # decode() is what the pages show: a class that changes it after listing its layers would be
    # drawn wrongly by the browser, so refuse what we cannot follow.
    layers_from, decode_from = _defined_in(kind, "decoder_layers"), _defined_in(kind, "decode")
    if decode_from is not layers_from and issubclass(decode_from, layers_from):
        raise NotRunnable(f"{kind.__name__} decodes in its own way ({decode_from.__name__}.decode), "
                          "which the browser decoder does not know")
    weights = _Weights()
    try:
        modules = model.decoder_layers()
    except NotImplementedError:
        raise NotRunnable(f"{type(model).__name__} does not list its decoder's layers, so the browser "
                          "cannot follow its decode") from None
    layers, shape = _layers(modules, cfg.latent_dim, weights)
    if math.prod(shape) != cfg.pixels:
        raise NotRunnable(f"its decoder makes {math.prod(shape)} numbers, not an image of {cfg.pixels} pixels")
    if weights.size > MAX_PARAMS:
        raise NotRunnable(f"its decoder has {weights.size / 1e6:.1f} million weights, too many to send to a "
                          f"browser (limit {MAX_PARAMS / 1e6:.0f} million)")
    blob = weights.tobytes()
    digest = hashlib.sha256(repr(layers).encode() + blob).hexdigest()[:20]
    return {"format": FORMAT, "latent_dim": cfg.latent_dim, "image_shape": list(cfg.image_shape),
            "layers": layers, "params": weights.size, "weights": blob, "hash": digest}


def _defined_in(cls: type, name: str) -> type:
    """The class in `cls`'s MRO whose body defines `name`."""
    return next(c for c in cls.__mro__ if name in vars(c))


def runnable(model: Model) -> tuple[dict[str, Any] | None, str | None]:
    """(spec, None) if the browser can run the decoder, else (None, the reason)."""
    try:
        return decoder_spec(model), None
    except NotRunnable as exc:
        return None, str(exc)


def forward(spec: dict[str, Any], z: np.ndarray) -> np.ndarray:
    """Run a spec in NumPy (float64): codes (N, D) -> images (N, C, H, W). The browser's twin.

    It reads the layer list exactly as the JavaScript does, so a test that compares this with
    `model.decode` checks the exported format, independently of the browser.
    """
    w = np.frombuffer(spec["weights"], dtype="<f4").astype(np.float64)

    def take(ref: dict[str, int]) -> np.ndarray:
        return w[ref["offset"]: ref["offset"] + ref["length"]]

    x = np.asarray(z, np.float64).reshape(len(z), -1)  # (N, features), flat like the browser's arrays
    for layer in spec["layers"]:
        kind = layer["type"]
        if kind == "linear":
            x = x @ take(layer["weight"]).reshape(layer["out"], layer["in"]).T
            if "bias" in layer:
                x = x + take(layer["bias"])
        elif kind == "relu":
            x = np.maximum(x, 0.0)
        elif kind == "leaky_relu":
            x = np.where(x > 0, x, x * layer["slope"])
        elif kind == "sigmoid":
            x = 1.0 / (1.0 + np.exp(-x))
        elif kind == "tanh":
            x = np.tanh(x)
        elif kind == "affine":
            x = x * layer["scale"] + layer["shift"]
        elif kind == "clamp":
            x = np.clip(x, layer["min"], layer["max"])
        elif kind == "reshape":
            pass
        elif kind == "conv_transpose2d":
            x = _conv_transpose_np(x, layer, take)
        else:
            raise ValueError(f"unknown layer type {kind!r}")
    return x.reshape(len(x), *spec["image_shape"])


def _conv_transpose_np(x: np.ndarray, layer: dict, take) -> np.ndarray:
    """Transposed convolution as scatter-add: each input pixel adds a weighted kernel to the output."""
    c_in, h, w_ = layer["in_shape"]
    c_out, out_h, out_w = layer["out_shape"]
    kh, kw = layer["kernel"]
    (sh, sw), (ph, pw) = layer["stride"], layer["padding"]
    weight = take(layer["weight"]).reshape(c_in, c_out, kh, kw)
    n = len(x)
    x = x.reshape(n, c_in, h, w_)
    # Every kernel placement, before the padding is cropped (output_padding may reach past it).
    full = np.zeros((n, c_out, max((h - 1) * sh + kh, ph + out_h), max((w_ - 1) * sw + kw, pw + out_w)))
    contrib = np.einsum("nchw,cokl->nohwkl", x, weight)  # (N, C_out, H, W, kH, kW)
    for ky in range(kh):
        for kx in range(kw):
            full[:, :, ky: ky + (h - 1) * sh + 1: sh, kx: kx + (w_ - 1) * sw + 1: sw] += contrib[..., ky, kx]
    out = full[:, :, ph: ph + out_h, pw: pw + out_w]
    if "bias" in layer:
        out = out + take(layer["bias"])[None, :, None, None]
    return out.reshape(n, -1)


ASSET_DIR = Path(__file__).resolve().parent


def browser_module() -> str:
    """The browser code as one ES module: the forward pass (`decoder.js`), then the UI."""
    return "\n".join((ASSET_DIR / name).read_text(encoding="utf-8") for name in ("decoder.js", "component.js"))


def browser_css() -> str:
    return (ASSET_DIR / "style.css").read_text(encoding="utf-8")
