"""The "graph" architecture: an imported encoder and decoder, built from the layers in `cfg.network`.

`vaeviz.netspec` says what the layers are (and has checked them when the config was made); this module
turns them into standard torch modules in an `nn.Sequential`: nn.Linear, nn.Conv2d, nn.ConvTranspose2d,
nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Flatten / nn.Unflatten for a reshape, and `Affine` for
y = scale * x + shift. As with every vaeviz decoder, the decoder ends in logits (the importer strips the
network's sigmoid). `vaeviz.onnx_import` writes such networks from ONNX files.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..netspec import Layer, Network, Shape, walk


class Affine(nn.Module):
    """y = scale * x + shift, with two fixed numbers (not weights): an exporter's Mul/Add/Sub/Div by a constant."""

    def __init__(self, scale: float = 1.0, shift: float = 0.0) -> None:
        super().__init__()
        self.scale, self.shift = float(scale), float(shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}, shift={self.shift:g}"


def _modules(layer: Layer, shape: Shape) -> list[nn.Module]:
    """The torch modules of one layer, given the shape per image it takes."""
    if layer.op == "linear":
        return [nn.Linear(layer.size_in, layer.size_out)]
    if layer.op == "conv2d":
        return [nn.Conv2d(layer.size_in, layer.size_out, layer.kernel, layer.stride, layer.padding)]
    if layer.op == "conv_transpose2d":
        return [nn.ConvTranspose2d(layer.size_in, layer.size_out, layer.kernel, layer.stride, layer.padding,
                                   layer.output_padding)]
    if layer.op == "reshape":  # activations keep their batch dimension: flatten, then unflatten if needed
        if tuple(layer.shape) == tuple(shape):
            return []
        return ([nn.Flatten()] if len(shape) > 1 else []) + ([nn.Unflatten(1, layer.shape)] if len(layer.shape) > 1 else [])
    simple = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    if layer.op in simple:
        return [simple[layer.op]()]
    if layer.op == "leaky_relu":
        return [nn.LeakyReLU(layer.slope)]
    if layer.op == "affine":
        return [Affine(layer.scale, layer.shift)]
    raise ValueError(f"unknown layer op {layer.op!r}")  # netspec admits no others


def build(layers: tuple[Layer, ...], shape: Shape) -> nn.Sequential:
    """The layers as one nn.Sequential, for inputs of `shape` per image."""
    modules: list[nn.Module] = []
    for layer in layers:
        modules += _modules(layer, shape)
        shape = layer.output_shape(shape)
    return nn.Sequential(*modules)


def graph_encoder(cfg: ModelConfig, out_dim: int) -> nn.Sequential:
    """The imported encoder: images (B, C, H, W) -> (B, out_dim); its width is fixed by the import."""
    net = Network.from_text(cfg.network)
    out = walk(net.encoder, cfg.image_shape, "encoder")
    if out != (out_dim,):
        raise ValueError(f"the imported encoder gives shape {list(out)} per image per image, but this model needs {out_dim} "
                         f"(latent size {cfg.latent_dim}: an AE's code is D numbers, a VAE's μ and log σ² 2·D)")
    return build(net.encoder, cfg.image_shape)


def graph_decoder(cfg: ModelConfig, in_dim: int | None = None) -> nn.Sequential:
    """The imported decoder: codes (B, D) -> logits (B, C, H, W)."""
    net = Network.from_text(cfg.network)
    if in_dim is not None and in_dim != cfg.latent_dim:
        raise ValueError(f"the imported decoder takes codes of {cfg.latent_dim} numbers, not {in_dim}")
    return build(net.decoder, (cfg.latent_dim,))

