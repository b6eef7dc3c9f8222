"""The decoder export for the browser (vaeviz.webdecoder): the spec, run by its NumPy twin, gives
what `model.decode` gives for every kind and architecture; what it cannot run is refused with a
reason. (The JavaScript forward pass is checked against PyTorch in test_live_decoder.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vaeviz import ModelConfig, build_model, webdecoder
from vaeviz.checkpoint import SHIPPED_DIR, find_checkpoints, load_checkpoint

CONFIGS = {
    "mlp": ModelConfig(arch="mlp", latent_dim=5, hidden=(32, 16)),
    "conv": ModelConfig(arch="conv", latent_dim=3, conv_channels=(8, 16, 4), conv_hidden=24, height=32, width=24),
    "conv-rgb": ModelConfig(arch="conv", latent_dim=4, channels=3, conv_channels=(6, 5), conv_hidden=12),
    "gaussian": ModelConfig(arch="mlp", latent_dim=2, hidden=(8,), likelihood="gaussian", sigma=0.2),
}


def _decode(model, z: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.decode(torch.from_numpy(z)).numpy()


@pytest.mark.parametrize("kind", ["ae", "vae", "pca"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_spec_decodes_as_the_model_does(kind, name):
    model = build_model(kind, CONFIGS[name], seed=0).eval()
    if kind == "pca":  # give the closed-form model non-trivial weights
        torch.manual_seed(0)
        model.components.normal_()
        model.mean.uniform_()
    spec = webdecoder.decoder_spec(model)
    z = np.random.default_rng(1).standard_normal((16, model.cfg.latent_dim)).astype(np.float32) * 2
    assert np.abs(webdecoder.forward(spec, z) - _decode(model, z)).max() < 1e-5
    assert len(spec["weights"]) == 4 * spec["params"]
    assert spec["layers"][-1]["type"] == ("clamp" if kind == "pca" else "sigmoid")


def test_spec_of_every_shipped_checkpoint():
    for path in find_checkpoints([SHIPPED_DIR]):
        model = load_checkpoint(path)
        spec = webdecoder.decoder_spec(model)
        z = np.random.default_rng(0).standard_normal((8, model.cfg.latent_dim)).astype(np.float32)
        assert np.abs(webdecoder.forward(spec, z) - _decode(model, z)).max() < 1e-5, path.name


def test_hash_follows_the_weights():
    model = build_model("ae", CONFIGS["mlp"], seed=0)
    before = webdecoder.decoder_spec(model)["hash"]
    assert webdecoder.decoder_spec(model)["hash"] == before  # stable: the browser's cache key
    with torch.no_grad():
        model.decoder[0].bias.add_(1e-3)
    assert webdecoder.decoder_spec(model)["hash"] != before


def test_unknown_layer_is_refused_with_a_reason():
    model = build_model("ae", CONFIGS["mlp"], seed=0)
    model.decoder[1] = nn.GELU()
    spec, reason = webdecoder.runnable(model)
    assert spec is None and "GELU" in reason


def test_custom_decode_is_refused():
    class Squared(type(build_model("ae", CONFIGS["mlp"]))):
        def decode(self, z):
            return super().decode(z) ** 2

    spec, reason = webdecoder.runnable(Squared(CONFIGS["mlp"]))
    assert spec is None and "Squared" in reason


def test_too_many_weights_is_refused(monkeypatch):
    monkeypatch.setattr(webdecoder, "MAX_PARAMS", 100)
    spec, reason = webdecoder.runnable(build_model("vae", CONFIGS["mlp"], seed=0))
    assert spec is None and "million weights" in reason
