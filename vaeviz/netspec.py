"""The layer language of an imported network: what `ModelConfig.network` holds for the "graph" architecture.

A network is an encoder and a decoder, each a list of layers in JSON, e.g.
`{"encoder": [{"op": "reshape", "shape": [784]}, {"op": "linear", "in": 784, "out": 16}, ...], "decoder": [...]}`,
kept as one canonical string so the config stays hashable. The ops are the ones vaeviz's own networks
are made of: linear, conv2d, conv_transpose2d, relu, leaky_relu, sigmoid, tanh, a scalar affine
(y = scale * x + shift) and reshape (per image: the batch dimension is never touched). The weights are not
here: they are the checkpoint's tensors, checked by shape against the model built from this.

Everything read from a file is checked here, strictly and before anything is built: known ops and keys
only, whole numbers within bounds, each layer's input shape what the layer before gives, and budgets on
the weights and on each layer's activations per image, so a hostile checkpoint of a few kB cannot make the
server allocate gigabytes. Plain Python (no torch): `vaeviz.config` validates with it, and
`vaeviz.models.graph` builds the layers from it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .checks import shown as _shown
from .checks import whole as _whole

OPS = ("linear", "conv2d", "conv_transpose2d", "relu", "leaky_relu", "sigmoid", "tanh", "affine", "reshape")
MAX_TEXT = 50_000  # characters of the JSON; a 64-layer network is about 6,000
MAX_LAYERS = 64  # per side (encoder, decoder)
MAX_PARAMS = 16_000_000  # encoder + decoder: 64 MB of float32, the checkpoint file's own limit
MAX_ACTIVATION = 2**20  # numbers per image after any layer (4 MB; the shipped conv models peak at 6,272)
MAX_FEATURES = 65_536  # a linear layer's width
MAX_CHANNELS = 4096
MAX_KERNEL = 31  # kernel, stride and padding sizes
MAX_FACTOR = 1e6  # |slope|, |scale|, |shift|

# The keys each op takes besides "op" (all required): the language has no optional fields.
_KEYS: dict[str, tuple[str, ...]] = {
    "linear": ("in", "out"),
    "conv2d": ("in", "out", "kernel", "stride", "padding"),
    "conv_transpose2d": ("in", "out", "kernel", "stride", "padding", "output_padding"),
    "relu": (),
    "leaky_relu": ("slope",),
    "sigmoid": (),
    "tanh": (),
    "affine": ("scale", "shift"),
    "reshape": ("shape",),
}

Shape = tuple[int, ...]


def _pair(where: str, value: Any, low: int, high: int) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"{where} must be a list of two whole numbers (height, width), got {_shown(value)}")
    return (_whole(where, value[0], low, high), _whole(where, value[1], low, high))


def _factor(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or abs(value) > MAX_FACTOR:
        raise ValueError(f"{where} must be a finite number of size at most {MAX_FACTOR:g}, got {_shown(value)}")
    return float(value)


@dataclass(frozen=True)
class Layer:
    """One layer. Only the fields of its op mean anything; the others keep their defaults."""

    op: str
    size_in: int = 0  # linear: features in; convolutions: channels in
    size_out: int = 0
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    output_padding: tuple[int, int] = (0, 0)
    slope: float = 0.01  # leaky_relu: the negative slope
    scale: float = 1.0  # affine: y = scale * x + shift
    shift: float = 0.0
    shape: Shape = ()  # reshape: the shape per image, (C, H, W) or (N,)

    def to_json(self) -> dict[str, Any]:
        values = {"in": self.size_in, "out": self.size_out, "kernel": list(self.kernel), "stride": list(self.stride),
                  "padding": list(self.padding), "output_padding": list(self.output_padding), "slope": self.slope,
                  "scale": self.scale, "shift": self.shift, "shape": list(self.shape)}
        return {"op": self.op, **{k: values[k] for k in _KEYS[self.op]}}

    @classmethod
    def from_json(cls, where: str, data: Any) -> "Layer":
        if not isinstance(data, dict) or not isinstance(data.get("op"), str):
            raise ValueError(f"{where} must be a JSON object with an \"op\"")
        op = data["op"]
        if op not in _KEYS:
            raise ValueError(f"{where}: unknown op {_shown(op)!r}; expected one of {', '.join(OPS)}")
        keys = set(data) - {"op"}
        if keys != set(_KEYS[op]):
            missing, extra = sorted(set(_KEYS[op]) - keys), sorted(keys - set(_KEYS[op]))
            raise ValueError(f"{where} ({op}): " + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else [])
                + ([f"unexpected {', '.join(_shown(k) for k in extra[:5])}"] if extra else [])))
        at = f"{where} ({op})"
        if op == "linear":
            return cls(op, _whole(f"{at} in", data["in"], 1, MAX_FEATURES), _whole(f"{at} out", data["out"], 1, MAX_FEATURES))
        if op in ("conv2d", "conv_transpose2d"):
            stride = _pair(f"{at} stride", data["stride"], 1, MAX_KERNEL)
            extra = {}
            if op == "conv_transpose2d":  # PyTorch's rule: output padding below the stride
                extra["output_padding"] = _pair(f"{at} output_padding", data["output_padding"], 0, MAX_KERNEL)
                if any(p >= s for p, s in zip(extra["output_padding"], stride)):
                    raise ValueError(f"{at} output_padding must be smaller than the stride {list(stride)}")
            return cls(op, _whole(f"{at} in", data["in"], 1, MAX_CHANNELS), _whole(f"{at} out", data["out"], 1, MAX_CHANNELS),
                       kernel=_pair(f"{at} kernel", data["kernel"], 1, MAX_KERNEL), stride=stride,
                       padding=_pair(f"{at} padding", data["padding"], 0, MAX_KERNEL), **extra)
        if op == "leaky_relu":
            return cls(op, slope=_factor(f"{at} slope", data["slope"]))
        if op == "affine":
            return cls(op, scale=_factor(f"{at} scale", data["scale"]), shift=_factor(f"{at} shift", data["shift"]))
        if op == "reshape":
            shape = data["shape"]
            if not isinstance(shape, list) or len(shape) not in (1, 3):
                raise ValueError(f"{at} shape must list 1 or 3 sizes (per image), got {_shown(shape)}")
            return cls(op, shape=tuple(_whole(f"{at} shape", s, 1, MAX_ACTIVATION) for s in shape))
        return cls(op)

    def params(self) -> int:
        """Weights and biases of this layer."""
        if self.op == "linear":
            return self.size_in * self.size_out + self.size_out
        if self.op in ("conv2d", "conv_transpose2d"):
            return self.size_in * self.size_out * self.kernel[0] * self.kernel[1] + self.size_out
        return 0

    def output_shape(self, shape: Shape) -> Shape:
        """The shape per image this layer makes from `shape`; ValueError, saying why, if it cannot take it."""
        if self.op == "linear":
            if shape != (self.size_in,):
                raise ValueError(f"a linear layer takes {self.size_in} numbers per image, not shape {list(shape)}")
            return (self.size_out,)
        if self.op in ("conv2d", "conv_transpose2d"):
            if len(shape) != 3 or shape[0] != self.size_in:
                raise ValueError(f"a {self.op} layer takes ({self.size_in}, H, W) per image, not {list(shape)}")
            (kh, kw), (sh, sw), (ph, pw), (oh, ow) = self.kernel, self.stride, self.padding, self.output_padding
            if self.op == "conv2d":
                out = ((shape[1] + 2 * ph - kh) // sh + 1, (shape[2] + 2 * pw - kw) // sw + 1)
            else:
                out = ((shape[1] - 1) * sh - 2 * ph + kh + oh, (shape[2] - 1) * sw - 2 * pw + kw + ow)
            if min(out) < 1:
                raise ValueError(f"a {self.op} layer with kernel {list(self.kernel)} cannot take an image of "
                                 f"{shape[1]}x{shape[2]}")
            return (self.size_out, *out)
        if self.op == "reshape":
            if math.prod(self.shape) != math.prod(shape):
                raise ValueError(f"a reshape to {list(self.shape)} cannot take shape {list(shape)} "
                                 f"({math.prod(shape)} numbers, not {math.prod(self.shape)})")
            return self.shape
        return shape  # element-wise


def walk(layers: tuple[Layer, ...], shape: Shape, side: str) -> Shape:
    """The shape per image after `layers`, starting from `shape`; ValueError naming the layer that cannot
    take its input, or whose output is over the activation budget."""
    for i, layer in enumerate(layers):
        try:
            shape = layer.output_shape(shape)
        except ValueError as exc:
            raise ValueError(f"the {side}'s layer {i + 1}: {exc}") from None
        if math.prod(shape) > MAX_ACTIVATION:
            raise ValueError(f"the {side}'s layer {i + 1} makes {math.prod(shape):,} numbers per image "
                             f"(the limit is {MAX_ACTIVATION:,})")
    return shape


@dataclass(frozen=True)
class Network:
    """An imported encoder and decoder, as layers."""

    encoder: tuple[Layer, ...]
    decoder: tuple[Layer, ...]

    def params(self) -> int:
        return sum(layer.params() for layer in (*self.encoder, *self.decoder))

    def to_text(self) -> str:
        """The canonical JSON string (what ModelConfig.network holds): the same network, the same text."""
        return json.dumps({"encoder": [layer.to_json() for layer in self.encoder],
                           "decoder": [layer.to_json() for layer in self.decoder]}, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: Any) -> "Network":
        """Parse and check each layer by itself (shapes are checked by `check`)."""
        if not isinstance(text, str) or not text:
            raise ValueError("the network must be a JSON text (an imported model's layers)")
        if len(text) > MAX_TEXT:
            raise ValueError(f"the network is {len(text):,} characters long; the limit is {MAX_TEXT:,}")
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            raise ValueError("the network is not valid JSON") from None
        if not isinstance(data, dict) or set(data) != {"encoder", "decoder"}:
            raise ValueError("the network must be a JSON object with exactly \"encoder\" and \"decoder\"")
        sides = []
        for side in ("encoder", "decoder"):
            layers = data[side]
            if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
                raise ValueError(f"the network's {side} must be a list of 1 to {MAX_LAYERS} layers")
            sides.append(tuple(Layer.from_json(f"the {side}'s layer {i + 1}", v) for i, v in enumerate(layers)))
        net = cls(*sides)
        if net.params() > MAX_PARAMS:
            raise ValueError(f"the network has {net.params():,} weights; the limit is {MAX_PARAMS:,}")
        return net

    def check(self, image_shape: Shape, latent_dim: int) -> None:
        """The encoder takes `image_shape` and gives D or 2·D numbers (an AE's code, or a VAE's μ and
        log σ²); the decoder takes D numbers and gives `image_shape`. ValueError saying which disagree."""
        out = walk(self.encoder, image_shape, "encoder")
        if out not in ((latent_dim,), (2 * latent_dim,)):
            raise ValueError(f"the network's encoder gives shape {list(out)} per image; with latent size "
                             f"{latent_dim} it must give {latent_dim} (an AE) or {2 * latent_dim} (a VAE) numbers")
        image = walk(self.decoder, (latent_dim,), "decoder")
        if image != tuple(image_shape):
            raise ValueError(f"the network's decoder makes shape {list(image)} per image, not the images' "
                             f"{list(image_shape)}")
