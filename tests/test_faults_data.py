"""Data folders that are missing, empty or corrupt: one clear error naming the folder and the file,
nothing created, deleted or fetched; no download retried on every request; gzip files and a
folder with only the test split work."""

from __future__ import annotations

import gzip

import pytest
import torch

from vaeviz import load_split
from vaeviz.data import DataUnavailable

from .support.faults import CORRUPTIONS, corrupt, good_folder


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corrupt_files_are_one_clear_error_naming_the_folder_and_file(tmp_path, real_slice, kind, offline):
    raw = good_folder(tmp_path / "data", real_slice)
    culprit = corrupt(kind, raw, real_slice)
    listing = sorted((p.name, p.stat().st_size) for p in raw.iterdir())
    with pytest.raises(DataUnavailable) as info:
        load_split("mnist", "test", root=tmp_path / "data")
    message = str(info.value)
    assert str(raw) in message and culprit in message, message
    assert "Traceback" not in message and len(message) < 600
    assert sorted((p.name, p.stat().st_size) for p in raw.iterdir()) == listing  # nothing deleted or fetched


def test_a_missing_data_folder_is_a_clear_error_and_is_not_created(tmp_path, offline):
    root = tmp_path / "typo" / "data"
    with pytest.raises(DataUnavailable) as info:
        load_split("mnist", "test", root=root)
    message = str(info.value)
    assert f"the data folder {root} does not exist" in message
    assert "t10k-images-idx3-ubyte" in message and "could not be downloaded" in message
    assert not (tmp_path / "typo").exists()


def test_an_empty_data_folder_is_a_clear_error_and_stays_empty(tmp_path, offline):
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataUnavailable) as info:
        load_split("fashion-mnist", "test", root=root)
    message = str(info.value)
    assert f"FashionMNIST is not in {root / 'FashionMNIST' / 'raw'}" in message
    assert "could not be downloaded" in message
    assert list(root.iterdir()) == []


def test_a_failed_download_is_not_retried_on_every_request(tmp_path, real_slice, monkeypatch):
    """Pages ask for data on every rerun: without a network, one attempt, then the same message at once."""
    import torchvision.datasets.mnist as tvm

    calls = []

    def no_network(self, *args, **kwargs):
        calls.append(1)
        raise OSError("no network")

    monkeypatch.setattr(tvm.MNIST, "download", no_network)
    root = tmp_path / "data"
    root.mkdir()
    messages = []
    for _ in range(3):
        with pytest.raises(DataUnavailable) as info:
            load_split("mnist", "test", root=root)
        messages.append(str(info.value))
    assert len(calls) == 1 and len(set(messages)) == 1
    good_folder(root, real_slice)  # the files arrive: they are used at once
    assert len(load_split("mnist", "test", root=root).images) == 60


def test_gzip_files_and_a_test_only_folder_work(tmp_path, real_slice, offline):
    raw = good_folder(tmp_path / "gz", real_slice, train=False)
    for f in list(raw.iterdir()):  # LeCun's own files: gzip-compressed, named .gz
        (raw / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
    split = load_split("mnist", "test", root=tmp_path / "gz")
    assert torch.equal(split.images, torch.from_numpy(real_slice[0]).float().div(255).unsqueeze(1))
    assert torch.equal(split.labels, torch.from_numpy(real_slice[1]).long())
    # No training files: the test split still serves the pages; the train split says what is missing.
    with pytest.raises(DataUnavailable, match="train-images-idx3-ubyte"):
        load_split("mnist", "train", root=tmp_path / "gz")


