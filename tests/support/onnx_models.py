"""Networks vaeviz never made, exported to ONNX by PyTorch, for the import tests (and the browser's parity check).

Each pair is a person's own encoder and decoder, with shapes and layers unlike vaeviz's: an MLP VAE with
LeakyReLU whose encoder ends in `.chunk(2, dim=1)`; a convolutional VAE with two linear heads and a decoder
of three transposed convolutions ending in (tanh + 1) / 2; a decoder that keeps LeakyReLU, Tanh and a
scalar affine inside it (what the browser must run). `export` writes one with either of PyTorch's ONNX
exporters: "legacy" (TorchScript, `dynamo=False`) or "dynamo" (torch.export, which needs onnxscript).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
from torch import nn

EXPORTERS = ("legacy", "dynamo")
TOLERANCE = 1e-5  # imported against original: max |difference| of codes and images


class MlpEncoder(nn.Module):
    """784 -> 512 -> 2 x 8, LeakyReLU; returns (mu, logvar) by chunking its last layer."""

    def __init__(self, latent: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.LeakyReLU(0.2), nn.Linear(512, 2 * latent))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu, logvar


class MlpDecoder(nn.Module):
    """8 -> 512 -> 784, LeakyReLU then Sigmoid, viewed as (B, 1, 28, 28)."""

    def __init__(self, latent: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent, 512), nn.LeakyReLU(0.2), nn.Linear(512, 784), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 1, 28, 28)


class ConvEncoder(nn.Module):
    """Two 3x3 stride-2 convolutions, a hidden layer, and two linear heads (mu, logvar), as PyTorch's example VAE."""

    def __init__(self, latent: int = 6) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
                                   nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.ReLU(),
                                   nn.Flatten(), nn.Linear(12 * 7 * 7, 48), nn.ReLU())
        self.mu, self.logvar = nn.Linear(48, latent), nn.Linear(48, latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.mu(h), self.logvar(h)


class ConvTanhDecoder(nn.Module):
    """Linear up to a 5x7x7 map, three ConvTranspose2d layers (one with output_padding), then (tanh + 1) / 2."""

    def __init__(self, latent: int = 6) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent, 5 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (5, 7, 7)),
                                 nn.ConvTranspose2d(5, 6, 4, stride=2, padding=1), nn.ReLU(),
                                 nn.ConvTranspose2d(6, 3, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                                 nn.ConvTranspose2d(3, 1, 3, stride=1, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(self.net(z)) + 1) / 2


class MixedDecoder(nn.Module):
    """LeakyReLU, Tanh and a scalar affine inside the network (not at its end), for the browser's layers."""

    def __init__(self, latent: int = 6) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(latent, 64), nn.LeakyReLU(0.1), nn.Linear(64, 4 * 7 * 7), nn.Tanh())
        self.up = nn.Sequential(nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1), nn.LeakyReLU(0.05),
                                nn.ConvTranspose2d(3, 1, 4, stride=2, padding=1), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z) * 1.5 - 0.25  # an affine between two layers
        return self.up(h.view(-1, 4, 7, 7))


def seeded(module: nn.Module, seed: int) -> nn.Module:
    """`module` with weights drawn from `seed`, spread wide enough that every unit and sign is exercised."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (1.5 / max(1, p[0].numel()) ** 0.5))
    return module.eval()


def export(module: nn.Module, example: torch.Tensor, path: Path, exporter: str, *, dynamic_batch: bool = False,
           **options) -> bytes:
    """Export `module` with one of PyTorch's ONNX exporters to `path`; returns the file's bytes."""
    path = Path(path)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        if exporter == "legacy":
            extra = {"input_names": ["x"], "dynamic_axes": {"x": {0: "batch"}}} if dynamic_batch else {}
            torch.onnx.export(module.eval(), (example,), str(path), dynamo=False, **extra, **options)
        elif exporter == "dynamo":
            extra = {"dynamic_shapes": ({0: torch.export.Dim("batch")},)} if dynamic_batch else {}
            options.setdefault("external_data", False)
            torch.onnx.export(module.eval(), (example,), str(path), dynamo=True, **extra, **options)
        else:
            raise ValueError(f"unknown exporter {exporter!r}")
    return path.read_bytes()


def exported_pair(encoder: nn.Module, decoder: nn.Module, folder: Path, exporter: str, image=(1, 28, 28),
                  **options) -> tuple[bytes, bytes]:
    """The (encoder, decoder) .onnx bytes of a pair, exported with example batches of 2."""
    latent = next(m for m in decoder.modules() if isinstance(m, nn.Linear)).in_features
    enc = export(encoder, torch.rand(2, *image), Path(folder) / f"enc-{exporter}.onnx", exporter, **options)
    dec = export(decoder, torch.randn(2, latent), Path(folder) / f"dec-{exporter}.onnx", exporter, **options)
    return enc, dec


def imported_mixed_vae(folder: Path, exporter: str = "legacy"):
    """A VAE imported from ConvEncoder + MixedDecoder (seeded), and the two PyTorch modules."""
    from vaeviz.onnx_import import import_onnx

    encoder, decoder = seeded(ConvEncoder(), 3), seeded(MixedDecoder(), 4)
    enc, dec = exported_pair(encoder, decoder, folder, exporter)
    return import_onnx(enc, dec, "vae").model, encoder, decoder


def max_differences(model, encoder: nn.Module, decoder: nn.Module, latent: int) -> tuple[float, float]:
    """max |imported - original| of the codes (mu and logvar) and of the decoded images, on seeded inputs."""
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    z = 2 * torch.randn(16, latent, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        mu, logvar = model.encode(x)
        want_mu, want_logvar = encoder(x)
        codes = max(float((mu - want_mu).abs().max()), float((logvar - want_logvar).abs().max()))
        images = float((model.decode(z) - decoder(z)).abs().max())
    return codes, images
