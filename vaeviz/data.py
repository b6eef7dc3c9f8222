"""Data sets as whole tensors: the DATASETS registry and `load_split`.

Every data set loads as one `Split`: images (N, C, H, W) float32 in [0, 1] and labels (N,) int64,
already on the device the model trains on, so the trainer draws batches by indexing a tensor and
never runs a per-image Python transform.

- `mnist`, `fashion-mnist`, `kmnist` come through `torchvision.datasets` from a data folder:
  `VAEVIZ_DATA_DIR` if set, else `data/` in the project. Missing files are downloaded into a
  temporary folder and moved into place only when complete, so a failed download leaves nothing
  half-written; with no network it fails with one message naming the folder and the files.
- `digits` is scikit-learn's bundled 8x8 handwritten digits, scaled to 28x28 as MNIST was made
  (fit in 20x20, centre in 28x28). It needs no network at all.
- `circle` is the synthetic 2-D data of the lecture notes: points on a noisy circle, stored as
  1x1x2 "images" in [0, 1], labelled by which eighth of the circle they lie in.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPLITS = ("train", "test")


class DataUnavailable(ValueError):
    """A data set's files are missing and could not be downloaded, or are corrupt."""


class Split(NamedTuple):
    images: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    labels: torch.Tensor  # (N,) int64
    classes: tuple[str, ...]  # name of each label


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]  # (C, H, W)
    load: Callable[[str, Path], tuple[torch.Tensor, torch.Tensor]]  # (split, root) -> uint8/float, labels
    needs_files: bool  # True if it reads a data folder (and may download)
    likelihood: str = "bernoulli"  # the natural decoder likelihood for this data


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data folder: the argument, else $VAEVIZ_DATA_DIR, else `data/` in the project."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("VAEVIZ_DATA_DIR")
    return Path(env).expanduser() if env else PROJECT_ROOT / "data"


# --- torchvision data sets --------------------------------------------------------------------

_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _torchvision_loader(class_name: str) -> Callable[[str, Path], tuple[torch.Tensor, torch.Tensor]]:
    """A loader for one of torchvision's MNIST-like data sets (files in ROOT/<class_name>/raw).

    torchvision fetches missing files; files already there are parsed directly (the IDX format
    is a few lines of numpy), which spares the app importing torchvision at start-up.
    """

    def load(split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
        raw = root / class_name / "raw"
        if not all((raw / f).is_file() for f in _IDX_FILES):
            import torchvision.datasets as tvd

            _download_atomically(getattr(tvd, class_name), class_name, root)
        prefix = "train" if split == "train" else "t10k"
        try:
            images = read_idx(raw / f"{prefix}-images-idx3-ubyte", ndim=3)
            labels = read_idx(raw / f"{prefix}-labels-idx1-ubyte", ndim=1)
        except (OSError, ValueError) as exc:
            raise DataUnavailable(
                f"the {class_name} files in {raw} could not be read ({exc}); delete them to "
                "download fresh copies"
            ) from None
        if len(images) != len(labels) or len(images) == 0:
            raise DataUnavailable(f"the {class_name} files in {raw} are corrupt (images and labels disagree)")
        return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))

    return load


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (LeCun's MNIST format): magic, sizes, then the bytes."""
    data = path.read_bytes()
    if len(data) < 4 + 4 * ndim or data[:3] != b"\x00\x00\x08" or data[3] != ndim:
        raise ValueError(f"{path.name} is not an IDX file of {ndim} dimension(s)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = data[4 + 4 * ndim :]
    if len(body) != math.prod(shape):
        raise ValueError(f"{path.name} is truncated or padded: {len(body)} bytes for shape {shape}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape).copy()


def _download_atomically(cls: type, class_name: str, root: Path) -> None:
    """Download into a temporary folder beside the target; move the files in only when complete."""
    raw = root / class_name / "raw"
    expected = ", ".join(_IDX_FILES)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=root))
    except OSError as exc:
        raise DataUnavailable(
            f"{class_name} is not in {raw} and the folder cannot be written ({exc.strerror}); "
            f"expected the files {expected}"
        ) from None
    try:
        try:
            cls(str(tmp), train=True, download=True)
            cls(str(tmp), train=False, download=True)
        except Exception as exc:  # URLError, RuntimeError, socket errors ...
            raise DataUnavailable(
                f"{class_name} is not in {raw} and could not be downloaded ({type(exc).__name__}). "
                f"Put the files {expected} there, or set VAEVIZ_DATA_DIR to a folder that has "
                f"{class_name}/raw/ with them."
            ) from None
        raw.mkdir(parents=True, exist_ok=True)
        for name in _IDX_FILES:
            os.replace(tmp / class_name / "raw" / name, raw / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- offline data sets ------------------------------------------------------------------------


def _load_digits(split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 8x8 digits (values 0..16), fitted in 20x20 and centred in 28x28."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    images = F.interpolate(images, size=(20, 20), mode="bilinear", align_corners=False)
    images = F.pad(images, (4, 4, 4, 4)).clamp(0, 1)  # (N, 1, 28, 28)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    n_test = len(images) // 5  # a fixed 80/20 split
    idx = order[n_test:] if split == "train" else order[:n_test]
    return images[idx], labels[idx]


CIRCLE_SIZES = {"train": 10_000, "test": 2_000}


def _load_circle(split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on a circle of radius 0.35 around (0.5, 0.5) with a little noise: (N, 1, 1, 2)."""
    gen = torch.Generator().manual_seed(0 if split == "train" else 1)
    n = CIRCLE_SIZES[split]
    angle = torch.rand(n, generator=gen) * 2 * torch.pi
    radius = 0.35 + 0.02 * torch.randn(n, generator=gen)
    points = torch.stack([0.5 + radius * angle.cos(), 0.5 + radius * angle.sin()], dim=1)
    labels = (angle / (2 * torch.pi) * 8).long().clamp(0, 7)  # which eighth of the circle
    return points.clamp(0, 1).view(n, 1, 1, 2), labels


DIGIT_CLASSES = tuple(str(i) for i in range(10))
DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("mnist", "MNIST digits", DIGIT_CLASSES, (1, 28, 28), _torchvision_loader("MNIST"), True),
        DatasetSpec(
            "fashion-mnist",
            "Fashion-MNIST",
            ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"),
            (1, 28, 28),
            _torchvision_loader("FashionMNIST"),
            True,
        ),
        DatasetSpec(
            "kmnist",
            "Kuzushiji-MNIST",
            ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
            (1, 28, 28),
            _torchvision_loader("KMNIST"),
            True,
        ),
        DatasetSpec("digits", "scikit-learn digits (offline)", DIGIT_CLASSES, (1, 28, 28), _load_digits, False),
        DatasetSpec(
            "circle",
            "Points on a circle (2-D)",
            tuple(f"{45 * i}-{45 * (i + 1)} deg" for i in range(8)),
            (1, 1, 2),
            _load_circle,
            False,
            likelihood="gaussian",
        ),
    )
}


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


def load_split(
    name: str,
    split: str = "train",
    *,
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    limit: int | None = None,
) -> Split:
    """Load a whole split as float tensors in [0, 1] on `device` (the first `limit` images if given)."""
    spec = dataset_spec(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected train or test")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive whole number, got {limit!r}")
    images, labels = spec.load(split, data_dir(root))
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if images.dtype == torch.uint8:
        images = images.float().div_(255.0)
    if images.ndim == 3:  # (N, H, W) -> (N, 1, H, W)
        images = images.unsqueeze(1)
    return Split(images.to(device).contiguous(), labels.long().to(device), spec.classes)


def class_exemplars(labels: torch.Tensor | np.ndarray, n_classes: int) -> list[int]:
    """The index of the first example of each class present (for one-per-class displays)."""
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    found = []
    for c in range(n_classes):
        hits = np.flatnonzero(labels == c)
        if len(hits):
            found.append(int(hits[0]))
    return found
