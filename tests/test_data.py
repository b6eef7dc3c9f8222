"""Data: real MNIST slices, the offline sets, KMNIST's loader, and a clear error without files."""

from __future__ import annotations

import gzip
import struct
import urllib.error

import numpy as np
import pytest
import torch

from vaeviz import DATASETS, DataUnavailable, load_split
from vaeviz.data import data_dir


def test_mnist_slice_is_float_images_in_unit_range(mnist_slice):
    train, test = mnist_slice
    assert train.images.shape == (2000, 1, 28, 28) and train.images.dtype == torch.float32
    assert 0 <= train.images.min() and train.images.max() <= 1 and train.images.max() > 0.99
    assert train.labels.dtype == torch.int64 and set(train.labels.tolist()) == set(range(10))
    assert test.images.shape == (500, 1, 28, 28)
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # MNIST's well-known first labels


def test_fashion_mnist_loads(data_root):
    if not (data_root / "FashionMNIST" / "raw").is_dir():
        pytest.skip("Fashion-MNIST not in the data folder")
    split = load_split("fashion-mnist", "test", root=data_root, limit=10)
    assert split.images.shape == (10, 1, 28, 28) and split.classes[0] == "T-shirt"


def test_registry_names():
    assert set(DATASETS) == {"mnist", "fashion-mnist", "kmnist", "digits", "circle"}


def test_digits_is_offline_and_mnist_shaped():
    train, test = load_split("digits", "train"), load_split("digits", "test")
    assert train.images.shape[1:] == (1, 28, 28) and len(train.images) + len(test.images) == 1797
    # Fitted in 20x20, centred in 28x28: the 4-pixel border is empty, as in MNIST.
    assert train.images[:, :, :4].max() == 0 and train.images[:, :, -4:].max() == 0
    assert 0 <= train.images.min() and train.images.max() <= 1


def test_circle_points_lie_on_a_circle():
    split = load_split("circle", "train")
    pts = split.images.view(-1, 2)
    radius = (pts - 0.5).norm(dim=1)
    assert split.images.shape[1:] == (1, 1, 2)
    assert abs(radius.mean().item() - 0.35) < 0.01 and radius.std().item() < 0.03
    assert set(split.labels.tolist()) == set(range(8))


def _write_idx(path, array: np.ndarray) -> None:
    dims = array.shape
    magic = {1: 0x0801, 3: 0x0803}[len(dims)]
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims))
        f.write(array.astype(np.uint8).tobytes())


def test_kmnist_loader_reads_idx_files(tmp_path):
    raw = tmp_path / "KMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))
    train = load_split("kmnist", "train", root=tmp_path)
    test = load_split("kmnist", "test", root=tmp_path)
    assert train.images.shape == (12, 1, 28, 28) and test.images.shape == (5, 1, 28, 28)
    assert train.classes[0] == "o"


def test_missing_data_without_network_is_one_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tvm

    def fail_download(self, *args, **kwargs):
        # Leave a partial file behind, as an interrupted download would.
        (self.raw_folder).mkdir(parents=True, exist_ok=True)
        with gzip.open(f"{self.raw_folder}/train-images-idx3-ubyte.gz", "wb") as f:
            f.write(b"partial")
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tvm.MNIST, "download", fail_download)
    with pytest.raises(DataUnavailable) as info:
        load_split("mnist", "train", root=tmp_path / "data")
    message = str(info.value)
    assert str(tmp_path / "data" / "MNIST" / "raw") in message
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        assert name in message
    leftovers = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert leftovers == []


def test_corrupt_files_give_a_clear_error(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"garbage")
    with pytest.raises(DataUnavailable, match="could not be read"):
        load_split("mnist", "test", root=tmp_path)


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VAEVIZ_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("VAEVIZ_DATA_DIR")
    assert data_dir().name == "data"


def test_bad_names_and_limits():
    with pytest.raises(ValueError, match="unknown data set"):
        load_split("cifar", "train")
    with pytest.raises(ValueError, match="unknown split"):
        load_split("digits", "valid")
    with pytest.raises(ValueError, match="limit"):
        load_split("digits", "train", limit=0)


def test_idx_reader_matches_torchvision(data_root):
    from torchvision.datasets import MNIST

    ref = MNIST(str(data_root), train=False, download=False)
    ours = load_split("mnist", "test", root=data_root)
    assert torch.equal((ours.images[:, 0] * 255).round().to(torch.uint8), ref.data)
    assert torch.equal(ours.labels, ref.targets)
