"""Data sets as whole tensors: the DATASETS registry and `load_split`.

Every data set loads as one `Split`: images (N, C, H, W) float32 in [0, 1] and labels (N,) int64,
already on the device the model trains on, so the trainer draws batches by indexing a tensor and
never runs a per-image Python transform.

- `mnist`, `fashion-mnist`, `kmnist` come through `torchvision.datasets` from a data folder:
  `VAEVIZ_DATA_DIR` if set, else `data/` in the project. The IDX files there (plain or `.gz`) are
  read with numpy; only the asked-for split's two files are needed. Missing files are downloaded
  into a temporary folder and moved into place only when complete, so a failed download leaves
  nothing half-written (not even a data folder it created). A missing folder, no network, or a
  truncated, mislabelled or damaged file is one `DataUnavailable` naming the folder and the file.
- `digits` is scikit-learn's bundled 8x8 handwritten digits, scaled to 28x28 as MNIST was made
  (fit in 20x20, centre in 28x28). It needs no network at all.
- `circle` is the synthetic 2-D data of the lecture notes: points on a noisy circle, stored as
  1x1x2 "images" in [0, 1], labelled by which eighth of the circle they lie in.
- `folder:PATH` is a folder of the user's own pictures, at a chosen size in grey or colour
  (`vaeviz.folders`). The app passes `roots` so that only folders under the allowed roots are read.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import re
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import folders
from .config import shown

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
MAX_IDX_BYTES = 256 * 1024 * 1024  # MNIST's largest file is 47 MB; a bigger one is not an MNIST file
# A download that failed is not tried again for this long: a page asks for its data on every
# rerun, and without a network each attempt costs seconds (minutes behind a firewall that drops
# packets), so a slider would hang. Files put in place meanwhile are used at once.
DOWNLOAD_RETRY_S = 300.0
_failed_downloads: dict[str, tuple[float, str]] = {}  # raw folder -> (monotonic time, message)


def _split_files(split: str) -> tuple[str, str]:
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _idx_file(raw: Path, name: str) -> Path | None:
    """The file for `name` in `raw`: as is, else gzip-compressed (`name.gz`, LeCun's own files)."""
    for candidate in (raw / name, raw / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _torchvision_loader(
    class_name: str, image_hw: tuple[int, int], n_classes: int
) -> Callable[[str, Path], tuple[torch.Tensor, torch.Tensor]]:
    """A loader for one of torchvision's MNIST-like data sets (files in ROOT/<class_name>/raw).

    Files already there (plain or `.gz`) are parsed directly (the IDX format is a few lines of
    numpy), which spares the app importing torchvision at start-up; only the asked-for split's two
    files are needed, so a folder with just the test files serves every page but the Trainer.
    torchvision fetches missing files. Every way the files can be wrong is one `DataUnavailable`
    naming the folder and the file.
    """

    def load(split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
        raw = root / class_name / "raw"
        names = _split_files(split)
        if any(_idx_file(raw, n) is None for n in names):
            _download_atomically(class_name, root)
        images_path, labels_path = (_idx_file(raw, n) for n in names)
        if images_path is None or labels_path is None:  # a download that "worked" but left no files
            raise DataUnavailable(f"{class_name}: {', '.join(names)} are still missing from {raw} after downloading")
        what = f"the {class_name} {split} files in {raw}"
        try:
            images = read_idx(images_path, ndim=3)
            labels = read_idx(labels_path, ndim=1)
        except (OSError, ValueError) as exc:
            raise DataUnavailable(
                f"{what} could not be read: {exc}. Replace them with good copies (or delete them, "
                "and the app downloads fresh ones where it has a network)."
            ) from None
        problem = None
        if len(images) == 0:
            problem = f"{images_path.name} holds no images"
        elif len(images) != len(labels):
            problem = (f"{images_path.name} holds {len(images):,} images but {labels_path.name} "
                       f"{len(labels):,} labels")
        elif images.shape[1:] != image_hw:
            problem = (f"{images_path.name} holds {images.shape[1]}x{images.shape[2]} images; "
                       f"{class_name} images are {image_hw[0]}x{image_hw[1]}")
        elif labels.max() >= n_classes:
            problem = f"{labels_path.name} holds the label {int(labels.max())}; {class_name} has {n_classes} classes"
        if problem:
            raise DataUnavailable(f"{what} are corrupt: {problem}. Replace them with good copies.")
        return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))

    return load


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (LeCun's MNIST format): magic, sizes, then the bytes.

    A gzip-compressed file (`.gz`, or a plain name holding gzip data) is decompressed first. Any
    malformation is a ValueError naming the file and what is wrong with it.
    """
    with open(path, "rb") as f:
        data = f.read(MAX_IDX_BYTES + 1)
    if data[:2] == b"\x1f\x8b":  # gzip's magic number
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(MAX_IDX_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise ValueError(f"{path.name} is a damaged gzip file ({exc})") from None
    if len(data) > MAX_IDX_BYTES:
        raise ValueError(f"{path.name} is larger than {MAX_IDX_BYTES // 2**20} MB: not an MNIST-like IDX file")
    if len(data) < 4 + 4 * ndim or data[:3] != b"\x00\x00\x08" or data[3] != ndim:
        raise ValueError(f"{path.name} is not an IDX file of {ndim} dimension(s) (its first bytes are wrong)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = data[4 + 4 * ndim :]
    if len(body) != math.prod(shape):
        raise ValueError(
            f"{path.name} is truncated or padded: its header promises {math.prod(shape):,} bytes "
            f"(shape {shape}) but {len(body):,} follow"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape).copy()


def _download_atomically(class_name: str, root: Path) -> None:
    """Download into a temporary folder beside the target; move the files in only when complete.

    On failure nothing is left behind, not even a data folder this call created, and the reason
    is remembered for `DOWNLOAD_RETRY_S` so the next request fails at once.
    """
    raw = root / class_name / "raw"
    key = str(raw.resolve())
    failed = _failed_downloads.get(key)
    if failed is not None and time.monotonic() - failed[0] < DOWNLOAD_RETRY_S:
        raise DataUnavailable(failed[1])
    where = (f"the data folder {root} does not exist" if not root.exists()
             else f"{class_name} is not in {raw}")
    expected = (f"Put the files {', '.join(_IDX_FILES)} (or their .gz) in {raw}, or set VAEVIZ_DATA_DIR "
                f"to a folder that has {class_name}/raw/ with them.")
    created = _missing_parents(root)
    try:
        try:
            root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=root))
        except OSError as exc:
            raise DataUnavailable(
                f"{where}, and it cannot be downloaded because the folder cannot be written "
                f"({exc.strerror or exc}). {expected}"
            ) from None
        try:
            import torchvision.datasets as tvd

            cls = getattr(tvd, class_name)
            cls(str(tmp), train=True, download=True)
            cls(str(tmp), train=False, download=True)
            raw.mkdir(parents=True, exist_ok=True)
            for name in _IDX_FILES:
                os.replace(tmp / class_name / "raw" / name, raw / name)
        except Exception as exc:  # URLError, RuntimeError, socket errors ...
            # torchvision's error lists every mirror it tried; its last line is the last reason
            reason = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else type(exc).__name__
            reason = re.sub(r"^<urlopen error (.*)>$", r"\1", reason)
            raise DataUnavailable(f"{where}, and it could not be downloaded ({reason}). {expected}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except DataUnavailable as exc:
        for folder in created:  # deepest first; a folder someone else filled meanwhile stays
            try:
                folder.rmdir()
            except OSError:
                break
        _failed_downloads[key] = (time.monotonic(), str(exc))
        raise
    _failed_downloads.pop(key, None)


def _missing_parents(folder: Path) -> list[Path]:
    """The folders that `folder.mkdir(parents=True)` would create, deepest first."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


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
        DatasetSpec(
            "mnist", "MNIST digits", DIGIT_CLASSES, (1, 28, 28), _torchvision_loader("MNIST", (28, 28), 10), True
        ),
        DatasetSpec(
            "fashion-mnist",
            "Fashion-MNIST",
            ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"),
            (1, 28, 28),
            _torchvision_loader("FashionMNIST", (28, 28), 10),
            True,
        ),
        DatasetSpec(
            "kmnist",
            "Kuzushiji-MNIST",
            ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
            (1, 28, 28),
            _torchvision_loader("KMNIST", (28, 28), 10),
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


def dataset_spec(name: str, *, roots: Sequence[Path] | None = None, **folder_options) -> DatasetSpec:
    """The named data set. `folder:PATH` names one from a folder (`folder_options`: size, channels, seed,
    base for a relative PATH); with `roots`, only under those folders. Unknown names are a ValueError."""
    if name.startswith(folders.PREFIX):
        try:
            return _folder_spec(folders.FolderSet.parse(name, roots=roots, **folder_options))
        except folders.FolderError as exc:
            raise DataUnavailable(str(exc)) from None
    if name not in DATASETS:
        raise ValueError(f"unknown data set {shown(name)!r}; expected one of {', '.join(DATASETS)}, or folder:PATH")
    return DATASETS[name]


def dataset_stem(name: str) -> str:
    """A data set's name for file names: `mnist`, or a folder's as `shapes-32px`."""
    if not name.startswith(folders.PREFIX):
        return name
    folder = folders.FolderSet.parse(name)
    return f"{folder.path.name}-{folder.size}px"


def dataset_label(name: str | None) -> str:
    """A data set's name for a table or caption: a folder's as `shapes/ · 32 px colour`, others as they are."""
    if not name or not name.startswith(folders.PREFIX):
        return name or "?"
    try:
        folder = folders.FolderSet.parse(name)
    except folders.FolderError:
        return shown(name)
    return f"{folder.path.name}/ · {folder.size} px {'colour' if folder.channels == 3 else 'grey'}"


def _folder_spec(folder: folders.FolderSet) -> DatasetSpec:
    try:
        classes = folder.classes()
    except (folders.FolderError, OSError) as exc:
        raise DataUnavailable(str(exc) if isinstance(exc, folders.FolderError) else
                              f"the folder {folder.path} cannot be read ({exc.strerror or exc})") from None

    def load(split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            data = folder.read()
        except folders.FolderError as exc:
            raise DataUnavailable(str(exc)) from None
        except OSError as exc:
            raise DataUnavailable(f"the folder {folder.path} cannot be read ({exc.strerror or exc})") from None
        images, labels = data.train if split == "train" else data.test
        return torch.from_numpy(images), torch.from_numpy(labels)

    # Colour photographs are not near-binary as digits are: a Gaussian decoder is their natural default.
    return DatasetSpec(folder.name, folder.title, classes, folder.image_shape, load, True,
                       likelihood="gaussian" if folder.channels == 3 else "bernoulli")


def load_split(
    name: str,
    split: str = "train",
    *,
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    limit: int | None = None,
    roots: Sequence[Path] | None = None,
) -> Split:
    """Load a whole split as float tensors in [0, 1] on `device` (the first `limit` images if given).

    A `folder:` data set is read only under `roots` when they are given (the app gives them)."""
    spec = dataset_spec(name, roots=roots)
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
