"""Your own pictures as a data set (`folder:PATH`): reading, skipping, splitting, caching, allowed
roots, the conv architecture at 32 to 128 px, and `vaeviz train` on a generated colour folder.

The folders are made here (tests/support/folders.py): coloured shapes in class folders, plus one of
each kind of bad file. The repository holds no picture data set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaeviz import folders
from vaeviz.config import ModelConfig, conv_channels_for
from vaeviz.data import DataUnavailable, dataset_label, dataset_spec, load_split
from vaeviz.folders import FolderError, FolderSet
from vaeviz.models import build_model

from .conftest import ROOT
from .support.folders import BAD_FILES, SHAPES, add_bad_files, make_shapes


@pytest.fixture(autouse=True)
def _fresh(monkeypatch, tmp_path):
    folders._recent.clear()  # each test reads its folders for itself
    monkeypatch.setenv("VAEVIZ_CACHE_DIR", str(tmp_path / "cache-home"))
    yield
    folders._recent.clear()


@pytest.fixture
def shapes(tmp_path) -> Path:
    return make_shapes(tmp_path / "shapes", per_class=20)


def test_classes_counts_and_one_summary_line_for_what_was_skipped(shapes):
    add_bad_files(shapes / "red-discs")
    (shapes / "loose.png").write_bytes(b"")  # beside the class folders: not in any class
    data = FolderSet.parse(f"folder:{shapes}", size=32, channels=3).read()
    assert data.classes == tuple(sorted(SHAPES))
    n_train, n_test = len(data.train[0]), len(data.test[0])
    assert (n_train, n_test) == (54, 6)  # 60 pictures, a tenth held out
    assert data.train[0].shape[1:] == (3, 32, 32) and data.train[0].dtype == np.uint8
    assert "\n" not in data.summary
    for why, n in {**BAD_FILES, "outside the class folders": 1}.items():
        assert f"{n} {why}" in data.summary, data.summary
    assert "skipped 6" in data.summary and "60 pictures in 3 classes" in data.summary


def test_colours_stay_in_their_channels(tmp_path):
    """A pure red, green and blue picture each land in channel 0, 1 and 2: nothing is channel-swapped."""
    root = tmp_path / "rgb"
    for name, colour in (("r", (255, 0, 0)), ("g", (0, 255, 0)), ("b", (0, 0, 255))):
        (root / name).mkdir(parents=True)
        for i, fmt in enumerate(("PNG", "BMP", "WEBP")):
            Image.new("RGB", (40, 30), colour).save(root / name / f"{i}.{fmt.lower()}", fmt, lossless=True)
    data = FolderSet.parse(f"folder:{root}", size=28, channels=3).read()
    images = np.concatenate([data.train[0], data.test[0]])
    labels = np.concatenate([data.train[1], data.test[1]])
    for label, cls in enumerate(data.classes):
        channel = {"r": 0, "g": 1, "b": 2}[cls]
        mean = images[labels == label].reshape(-1, 3, 28 * 28).mean(axis=(0, 2))
        assert mean[channel] > 250 and np.delete(mean, channel).max() < 5, (cls, mean)


def test_grey_pictures_are_centre_cropped_and_transparency_goes_on_white(tmp_path):
    root = tmp_path / "grey"
    root.mkdir()
    wide = np.zeros((20, 60), np.uint8)
    wide[:, 20:40] = 255  # a white middle third: what a centre crop keeps
    Image.fromarray(wide).save(root / "wide.png")
    Image.new("RGBA", (30, 30), (0, 0, 0, 0)).save(root / "clear.png")  # fully transparent: white
    data = FolderSet.parse(f"folder:{root}", size=28, channels=1, seed=3).read()
    images = np.concatenate([data.train[0], data.test[0]])
    assert images.shape == (2, 1, 28, 28)
    # (a squeezed, uncropped picture would be two thirds black; the edge pixels see a little of the
    # cropped-off black through the Lanczos kernel)
    assert images.min() > 200 and images.mean() > 250, "both pictures should come out white"


def test_train_and_test_folders_are_kept_and_the_seeded_split_is_reproducible(tmp_path, shapes):
    split_root = tmp_path / "split"
    make_shapes(split_root / "train", per_class=8)
    make_shapes(split_root / "test", per_class=2, seed=1)
    data = FolderSet.parse(f"folder:{split_root}", size=28).read()
    assert (len(data.train[0]), len(data.test[0])) == (24, 6)
    first = FolderSet.parse(f"folder:{shapes}", size=28, seed=0).read()
    folders._recent.clear()
    again = FolderSet.parse(f"folder:{shapes}", size=28, seed=0).read()
    other = FolderSet.parse(f"folder:{shapes}", size=28, seed=1).read()
    assert np.array_equal(first.test[0], again.test[0])
    assert not np.array_equal(first.test[0], other.test[0])
    train = {a.tobytes() for a in first.train[0]}
    assert not any(a.tobytes() in train for a in first.test[0]), "a test picture is also in the train split"


def test_the_cache_is_used_until_the_folder_changes(shapes, monkeypatch):
    folder = FolderSet.parse(f"folder:{shapes}", size=32, channels=3)
    first = folder.read()
    assert first.cache == shapes / ".vaeviz-cache-32px-rgb-seed0.npz"
    assert sorted(p.name for p in shapes.iterdir()) == [first.cache.name, *sorted(SHAPES)], "only the cache is written"
    folders._recent.clear()

    def no_decoding(*args):
        raise AssertionError("decoded a picture although the cache was good")

    with monkeypatch.context() as m:
        m.setattr(folders, "_decode", no_decoding)
        cached = folder.read()
    assert np.array_equal(cached.train[0], first.train[0]) and cached.summary == first.summary
    folders._recent.clear()
    make_shapes(shapes / "extra-class", per_class=1)  # a changed folder is read again
    changed = folder.read()
    assert "extra-class" not in first.classes and len(changed.classes) == 4


def test_a_damaged_cache_is_ignored_and_replaced(shapes):
    folder = FolderSet.parse(f"folder:{shapes}", size=28)
    good = folder.read()
    good.cache.write_bytes(good.cache.read_bytes()[:100])
    folders._recent.clear()
    again = folder.read()
    assert np.array_equal(again.train[0], good.train[0])
    assert np.load(again.cache)["train_images"].shape == good.train[0].shape


def test_an_unwritable_folder_gets_its_cache_elsewhere(shapes, monkeypatch, tmp_path):
    real = folders.write_atomic

    def refuse_in_data(path, data, **kw):
        if Path(path).parent == shapes:
            raise PermissionError(13, "Permission denied")
        return real(path, data, **kw)

    monkeypatch.setattr(folders, "write_atomic", refuse_in_data)
    data = FolderSet.parse(f"folder:{shapes}", size=28).read()
    assert data.cache is not None and data.cache.is_relative_to(tmp_path / "cache-home")
    assert not any(p.name.startswith(".vaeviz") for p in shapes.iterdir())


@pytest.mark.parametrize("count", [0, 1])
def test_too_few_pictures_is_a_clear_error(tmp_path, count):
    root = tmp_path / "few"
    root.mkdir()
    add_bad_files(root)
    for i in range(count):
        Image.new("RGB", (10, 10), "white").save(root / f"{i}.png")
    with pytest.raises(DataUnavailable, match=f"has {count} readable picture.*at least two"):
        load_split(f"folder:{root}", "train")


def test_a_missing_folder_and_bad_options_are_clear_errors(tmp_path):
    with pytest.raises(DataUnavailable, match="does not exist"):
        dataset_spec(f"folder:{tmp_path / 'nowhere'}")
    with pytest.raises(FolderError, match="28 to 128"):
        FolderSet.parse(f"folder:{tmp_path}", size=256)
    with pytest.raises(FolderError, match="1 \\(grey\\) or 3"):
        FolderSet.parse(f"folder:{tmp_path}", channels=4)


def test_the_app_reads_only_under_its_allowed_roots(tmp_path, shapes, monkeypatch):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "escape").symlink_to(shapes, target_is_directory=True)  # a link out of the root
    monkeypatch.setenv("VAEVIZ_DATA_DIR", str(allowed))
    monkeypatch.delenv("VAEVIZ_FOLDER_ROOTS", raising=False)
    roots = folders.allowed_roots()
    for name in (f"folder:{shapes}", f"folder:{allowed / 'escape'}", "folder:/etc"):
        with pytest.raises(DataUnavailable, match="outside the folders this server reads"):
            load_split(name, "test", roots=roots)
    monkeypatch.setenv("VAEVIZ_FOLDER_ROOTS", str(shapes))
    assert len(load_split(f"folder:{shapes}", "test", roots=folders.allowed_roots()).images) == 6


def test_names_and_labels(shapes):
    spec = dataset_spec(f"folder:{shapes}", size=64, channels=3)
    assert spec.name == f"folder:{shapes}|64px|rgb|seed0" and spec.image_shape == (3, 64, 64)
    assert spec.likelihood == "gaussian"  # colour photographs; grey folders default to Bernoulli
    assert dataset_spec(spec.name).image_shape == (3, 64, 64), "the full name carries its options"
    assert dataset_label(spec.name) == "shapes/ · 64 px colour" and dataset_label("mnist") == "mnist"


@pytest.mark.parametrize("side, stages", [(28, 2), (32, 3), (64, 4), (128, 5), (48, 3)])
def test_conv_models_for_larger_colour_pictures(side, stages):
    channels = conv_channels_for(side)
    assert len(channels) == stages
    cfg = ModelConfig(arch="conv", latent_dim=8, channels=3, height=side, width=side, conv_channels=channels,
                      likelihood="gaussian")
    model = build_model("vae", cfg, seed=0).eval()
    x = torch.rand(2, 3, side, side)
    mu, logvar = model.encode(x)
    assert mu.shape == (2, 8) and model.decode(mu).shape == (2, 3, side, side)
    terms = model.loss(x, model(x))
    assert torch.isfinite(terms["total"])


def test_vaeviz_train_on_a_colour_folder(shapes, tmp_path):
    add_bad_files(shapes / "green-squares")
    out = tmp_path / "shapes.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "vaeviz", "train", "--dataset", f"folder:{shapes}", "--image-size", "32",
           "--channels", "3", "--arch", "conv", "--latent-dim", "4", "--epochs", "2", "--quiet", "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "skipped 5" in done.stderr and "Traceback" not in done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    from vaeviz.checkpoint import load_checkpoint

    model = load_checkpoint(out)
    assert model.cfg.image_shape == (3, 32, 32) and model.cfg.conv_channels == (32, 64, 128)
    assert model.cfg.likelihood == "gaussian" and result["dataset"] == f"folder:{shapes}|32px|rgb|seed0"
    ev = subprocess.run([sys.executable, "-m", "vaeviz", "eval", str(out), "--iw-k", "0"], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr[-2000:]


def test_folder_options_on_a_named_data_set_are_refused_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "vaeviz", "train", "--dataset", "digits", "--image-size", "64",
                           "--out", str(tmp_path / "x.safetensors")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "for folder: data sets" in done.stderr


def test_the_trainer_trains_on_a_folder_under_the_data_folder_only(tmp_path, monkeypatch):
    from .support.apptest import job_of, open_app, run_until

    data = tmp_path / "data"
    make_shapes(data / "shapes", per_class=12)
    monkeypatch.setenv("VAEVIZ_DATA_DIR", str(data))
    monkeypatch.delenv("VAEVIZ_FOLDER_ROOTS", raising=False)
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(tmp_path / "user"))
    at = open_app("pages/trainer.py")
    at.selectbox(key="trainer_dataset").set_value("folder").run()
    at.text_input(key="trainer_folder").set_value(str(tmp_path)).run()  # above the data folder: refused
    assert any("outside the folders this server reads" in e.value for e in at.error)
    at.text_input(key="trainer_folder").set_value("shapes").run()  # relative to the data folder
    assert not at.error and any("3 classes" in c.value for c in at.caption)
    at.select_slider(key="trainer_size").set_value(32)
    at.selectbox(key="trainer_arch").set_value("conv")
    at.number_input(key="trainer_epochs").set_value(1)
    at.button(key="trainer_start").click().run()
    run_until(at, lambda: not job_of(at).view().active)
    view = job_of(at).view()
    assert view.status.name == "FINISHED", view.message
    model = job_of(at).results[-1].model
    assert model.cfg.image_shape == (3, 32, 32) and model.meta.dataset.endswith("|32px|rgb|seed0")
