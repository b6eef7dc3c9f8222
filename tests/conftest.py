"""Shared fixtures: real data slices from $VAEVIZ_DATA_DIR, small models, temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from vaeviz import ModelConfig, build_model

ROOT = Path(__file__).resolve().parent.parent
# Shared fixtures: fault, page_fault, real_slice, offline; app_url and browser for real-browser tests.
pytest_plugins = ["tests.support.faults", "tests.support.browser_fixtures"]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long tests, run with -m slow")
    config.addinivalue_line("markers", "browser: tests that drive a real Chromium")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    if os.environ.get("VAEVIZ_DATA_DIR"):  # some tests change directory: pin a relative path now
        os.environ["VAEVIZ_DATA_DIR"] = str(Path(os.environ["VAEVIZ_DATA_DIR"]).resolve())


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder with real MNIST (torchvision layout); tests that need it skip without it."""
    env = os.environ.get("VAEVIZ_DATA_DIR")
    root = Path(env) if env else ROOT / "data"
    if not (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("real MNIST not found: set VAEVIZ_DATA_DIR (../shared/data here)")
    return root


@pytest.fixture(scope="session")
def mnist_slice(data_root):
    """2000 training and 500 test MNIST images, as tensors."""
    from vaeviz import load_split

    train = load_split("mnist", "train", root=data_root, limit=2000)
    test = load_split("mnist", "test", root=data_root, limit=500)
    return train, test


@pytest.fixture
def tiny_vae():
    torch.manual_seed(0)
    return build_model("vae", ModelConfig(arch="mlp", latent_dim=4, hidden=(32, 16)))


@pytest.fixture
def model_folders(tmp_path, monkeypatch):
    """An empty 'shipped' folder and an empty user folder, so a page sees only what a test puts there."""
    from vaeviz import store
    from vaeviz.ui import cache as ui_cache

    shipped, user = tmp_path / "shipped", tmp_path / "user"
    shipped.mkdir()
    monkeypatch.setattr(ui_cache, "SHIPPED_DIR", shipped)
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(user))
    return shipped, user
