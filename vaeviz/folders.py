"""A data set from a folder of pictures: `folder:PATH`, any size, grey or colour.

`FolderSet.parse("folder:PATH", size=32, channels=3)` names one; `read()` gives both splits' images as
uint8 (N, C, size, size) with their labels, through a tensor cache beside the data:

- PNG, JPEG, WebP and BMP files, found recursively. Class sub-folders become labels (sorted by name);
  a folder without sub-folders is one class. A folder with `train/` and `test/` sub-folders keeps that
  split; otherwise a fixed fraction is held out by a seeded permutation of the sorted file list, so the
  same folder and seed always give the same split.
- Every picture is turned upright (EXIF), centre-cropped to a square and resized (Lanczos) to
  `size` x `size`, in grey (L) or colour (RGB; transparency composited on white).
- Unreadable, truncated, huge (decompression bombs), zero-byte and non-image files are skipped and
  counted in one summary line (`FolderData.summary`). An empty folder, or one with a single picture,
  is a `DataUnavailable` that says so.
- The decoded pictures are cached in one `.npz` file per (size, channels, seed) beside the data
  (`.vaeviz-cache-32px-rgb-seed0.npz`), written atomically and keyed by the file list, sizes and
  modification times: a changed folder is read again. Where the folder cannot be written, the cache
  goes to $VAEVIZ_CACHE_DIR (default ~/.cache/vaeviz). Nothing else is ever written. A cache file
  that is damaged or does not match is ignored and replaced.

The app reads folders only under `allowed_roots()` (the data folder and $VAEVIZ_FOLDER_ROOTS), so a
visitor, or a checkpoint naming a folder, cannot make the server read the rest of its disk.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageOps

from .atomic import write_atomic

PREFIX = "folder:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
FORMATS = ("PNG", "JPEG", "WEBP", "BMP")  # what PIL may open them as (a .png that is a JPEG is fine)
SIZES = (28, 128)  # the smallest and largest side a folder's pictures are resized to
MAX_FILE_BYTES = 64 * 2**20  # a picture file larger than this is skipped as too large
MAX_PIXELS = 40_000_000  # ... and so is one whose header claims more pixels (a decompression bomb)
MAX_IMAGES = 1_000_000
TEST_FRACTION = 0.1  # held out when the folder has no train/ and test/ sub-folders
CACHE_VERSION = 1


class FolderError(ValueError):
    """The folder cannot be a data set; the message says why (vaeviz.data turns it into DataUnavailable)."""


def allowed_roots() -> list[Path]:
    """Folders the app may read pictures under: the data folder and each entry of $VAEVIZ_FOLDER_ROOTS."""
    from .data import data_dir

    extra = [p for p in os.environ.get("VAEVIZ_FOLDER_ROOTS", "").split(os.pathsep) if p.strip()]
    return [Path(p).expanduser().resolve() for p in (data_dir(), *extra)]


@dataclass(frozen=True)
class FolderSet:
    """One folder of pictures at one size, grey or colour, with one split seed. `name` is its data set id."""

    path: Path  # absolute
    size: int
    channels: int
    seed: int = 0

    @classmethod
    def parse(cls, name: str, *, size: int | None = None, channels: int | None = None,
              seed: int | None = None, roots: Sequence[Path] | None = None, base: Path | None = None) -> "FolderSet":
        """`folder:PATH` (options from the arguments) or a full id `folder:PATH|32px|rgb|seed0`.

        A relative PATH is taken from `base` (the data folder, when given). With `roots`, PATH must lie
        under one of them (after following links), else FolderError.
        """
        if not name.startswith(PREFIX):
            raise FolderError(f"a folder data set is named folder:PATH, not {name[:60]!r}")
        text, *options = name[len(PREFIX):].split("|")
        for option in options:
            if option.endswith("px") and option[:-2].isdigit():
                size = size or int(option[:-2])
            elif option in ("rgb", "grey"):
                channels = channels or (3 if option == "rgb" else 1)
            elif option.startswith("seed") and option[4:].isdigit():
                seed = int(option[4:]) if seed is None else seed
            else:
                raise FolderError(f"unknown folder option {option[:30]!r} (expected e.g. 32px, rgb or grey, seed0)")
        if not text.strip():
            raise FolderError("folder: needs a path, e.g. folder:shapes or folder:/data/celeba")
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        path = path.resolve()
        size = 28 if size is None else size
        if isinstance(size, bool) or not isinstance(size, int) or not SIZES[0] <= size <= SIZES[1]:
            raise FolderError(f"the image size must be a whole number from {SIZES[0]} to {SIZES[1]}, got {size!r}")
        channels = 1 if channels is None else channels
        if channels not in (1, 3):
            raise FolderError(f"channels must be 1 (grey) or 3 (colour), got {channels!r}")
        if roots is not None and not any(path.is_relative_to(r) for r in roots):
            raise FolderError(f"{path} is outside the folders this server reads pictures from "
                              f"({', '.join(str(r) for r in roots)}); the server's VAEVIZ_FOLDER_ROOTS sets them")
        return cls(path, size, channels, seed or 0)

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.path}|{self.size}px|{'rgb' if self.channels == 3 else 'grey'}|seed{self.seed}"

    @property
    def title(self) -> str:
        return f"Pictures in {self.path.name}/ ({self.size} px, {'colour' if self.channels == 3 else 'grey'})"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)

    def classes(self) -> tuple[str, ...]:
        """Class names from the sub-folders (without reading a picture)."""
        return _layout(self.path)[1]

    def read(self, progress: Callable[[int, int], None] | None = None) -> "FolderData":
        """Both splits (from the cache when the folder has not changed); `progress(done, total)` while decoding."""
        return read_folder(self, progress)


@dataclass(frozen=True)
class FolderData:
    train: tuple[np.ndarray, np.ndarray]  # uint8 (N, C, H, W), int64 (N,)
    test: tuple[np.ndarray, np.ndarray]
    classes: tuple[str, ...]
    summary: str  # one line: how many pictures were read, and what was skipped and why
    cache: Path | None  # where the decoded pictures are kept (None: could not be written anywhere)


# --- what is in the folder ------------------------------------------------------------------------


def _visible(entries) -> list[os.DirEntry]:
    return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def _files_under(folder: Path) -> list[Path]:
    """Every visible file under `folder`, recursively, in a fixed order (hidden files and folders skipped)."""
    found: list[Path] = []
    stack = [folder]
    while stack:
        here = stack.pop()
        try:
            with os.scandir(here) as it:
                entries = _visible(it)
        except OSError:
            continue
        found += [Path(e.path) for e in entries if e.is_file()]
        stack += [Path(e.path) for e in reversed(entries) if e.is_dir()]
    return sorted(found)


def _layout(root: Path) -> tuple[dict[str, list[tuple[Path, int]]] | None, tuple[str, ...], list[Path]]:
    """({"train": [(file, label)], "test": [...]} or {"all": [...]}, class names, loose files ignored)."""
    if not root.is_dir():
        raise FolderError(f"{root} is not a folder" if root.exists() else f"the folder {root} does not exist")
    with os.scandir(root) as it:
        top = _visible(it)
    names = {e.name for e in top if e.is_dir()}
    splits = ("train", "test") if {"train", "test"} <= names else ("all",)
    parts = {s: root / s for s in splits} if splits != ("all",) else {"all": root}
    class_names: set[str] = set()
    for folder in parts.values():
        with os.scandir(folder) as it:
            class_names |= {e.name for e in _visible(it) if e.is_dir()}
    classes = tuple(sorted(class_names)) or (root.name or "pictures",)
    files: dict[str, list[tuple[Path, int]]] = {}
    ignored: list[Path] = []
    for split, folder in parts.items():
        files[split] = []
        if class_names:
            for label, cls in enumerate(classes):
                if (folder / cls).is_dir():
                    files[split] += [(f, label) for f in _files_under(folder / cls)]
            with os.scandir(folder) as it:
                ignored += [Path(e.path) for e in _visible(it) if e.is_file()]
        else:
            files[split] = [(f, 0) for f in _files_under(folder)]
    return files, classes, ignored


def _fingerprint(folder: FolderSet, files: dict[str, list[tuple[Path, int]]]) -> str:
    """A key for the cache: the options, and every file's name, label, size and modification time."""
    h = hashlib.sha256(f"v{CACHE_VERSION}|{folder.size}|{folder.channels}|{folder.seed}".encode())
    for split in sorted(files):
        for path, label in files[split]:
            try:
                st = path.stat()
                h.update(f"{split}|{path.relative_to(folder.path)}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{split}|{path}|gone\n".encode())
    return h.hexdigest()


# --- reading pictures ---------------------------------------------------------------------------


def _decode(path: Path, size: int, channels: int) -> np.ndarray | str:
    """One picture as uint8 (C, size, size), or the reason it was skipped (a key of REASONS)."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return "not a picture"
    try:
        nbytes = path.stat().st_size
        if nbytes == 0:
            return "empty"
        if nbytes > MAX_FILE_BYTES:
            return "too large"
        with open(path, "rb") as f:
            data = f.read()
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        w, h = image.size
        if w < 1 or h < 1:
            return "unreadable"
        if w * h > MAX_PIXELS:
            return "too large"
        image.draft("RGB" if channels == 3 else "L", (size * 2, size * 2))  # JPEG: decode at a smaller scale
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return "too large"
    except OSError as exc:
        return "truncated" if "truncated" in str(exc) else "unreadable"
    except Exception:  # damaged headers raise assorted types (SyntaxError, struct.error, ...)
        return "unreadable"
    return fit_picture(image, size, channels)


def fit_picture(image: Image.Image, size: int, channels: int) -> np.ndarray:
    """A decoded picture as a data set's image: upright (EXIF), transparency on white, centre-cropped to
    a square and resized to `size` (Lanczos), grey or RGB. uint8 (C, size, size). Uploads use it too."""
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a damaged EXIF block: keep the picture as stored
        pass
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    image = image.convert("RGB" if channels == 3 else "L")
    image = ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS)  # centre crop to a square, then resize
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def _read_all(items: list[tuple[Path, int]], folder: FolderSet, progress, done_before: int, total: int):
    images, labels, skipped = [], [], Counter()
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:  # PIL decodes without the GIL
        for i, (result, (_, label)) in enumerate(zip(
                pool.map(lambda item: _decode(item[0], folder.size, folder.channels), items), items)):
            if isinstance(result, str):
                skipped[result] += 1
            else:
                images.append(result)
                labels.append(label)
            if progress is not None and (i % 256 == 0 or i == len(items) - 1):
                progress(done_before + i + 1, total)
    shape = (0, *folder.image_shape)
    array = np.stack(images) if images else np.zeros(shape, np.uint8)
    return array, np.asarray(labels, np.int64), skipped


def _split(images: np.ndarray, labels: np.ndarray, seed: int):
    """A seeded hold-out: TEST_FRACTION of the pictures (at least one) for the test split."""
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = max(1, round(len(images) * TEST_FRACTION))
    test, train = order[:n_test], order[n_test:]
    return (images[train], labels[train]), (images[test], labels[test])


def _summary(folder: FolderSet, counts: dict[str, int], skipped: Counter, ignored: int, n_classes: int) -> str:
    read = sum(counts.values())
    text = (f"{folder.path}: {read:,} pictures in {n_classes} class{'es' if n_classes != 1 else ''} "
            f"({counts['train']:,} train, {counts['test']:,} test) at {folder.size}x{folder.size} "
            f"{'colour' if folder.channels == 3 else 'grey'}")
    skipped = skipped + Counter({"outside the class folders": ignored} if ignored else {})
    if skipped:
        text += f"; skipped {sum(skipped.values()):,}: " + ", ".join(f"{n:,} {why}" for why, n in sorted(skipped.items()))
    return text


def read_folder(folder: FolderSet, progress: Callable[[int, int], None] | None = None) -> FolderData:
    """Read (or take from the cache) every picture of `folder`. FolderError when it has too few."""
    files, classes, ignored = _layout(folder.path)
    total = sum(len(v) for v in files.values())
    if total > MAX_IMAGES:
        raise FolderError(f"{folder.path} holds {total:,} files; the limit is {MAX_IMAGES:,}")
    key = _fingerprint(folder, files)
    recent = _recent.get(folder)
    if recent is not None and recent[0] == key:
        return recent[1]
    for place in _cache_places(folder):
        cached = _read_cache(place, key)
        if cached is not None:
            return _remember(folder, key, FolderData(*cached, cache=place))
    parts, skipped, done = {}, Counter(), 0
    for split, items in files.items():
        images, labels, why = _read_all(items, folder, progress, done, total)
        parts[split], skipped, done = (images, labels), skipped + why, done + len(items)
    n = sum(len(p[0]) for p in parts.values())
    if n < 2:
        found = f"{n} readable picture" + ("" if n == 1 else "s")
        raise FolderError(f"{folder.path} has {found} (of {total:,} files); a data set needs at least two: "
                          f"PNG, JPEG, WebP or BMP files, in one sub-folder per class or all together")
    if "all" in parts:
        train, test = _split(*parts["all"], folder.seed)
    else:
        train, test = parts["train"], parts["test"]
        if not len(train[0]) or not len(test[0]):
            raise FolderError(f"{folder.path}/{'train' if not len(train[0]) else 'test'} has no readable picture")
    summary = _summary(folder, {"train": len(train[0]), "test": len(test[0])}, skipped, len(ignored), len(classes))
    where = None
    for place in _cache_places(folder):
        if _write_cache(place, key, train, test, classes, summary):
            where = place
            break
    return _remember(folder, key, FolderData(train, test, classes, summary, where))


_recent: dict[FolderSet, tuple[str, FolderData]] = {}  # the last folders read, so train and test read once


def _remember(folder: FolderSet, key: str, data: FolderData) -> FolderData:
    while len(_recent) >= 2:
        _recent.pop(next(iter(_recent)), None)
    _recent[folder] = (key, data)
    return data


# --- the cache --------------------------------------------------------------------------------------


def _cache_places(folder: FolderSet) -> list[Path]:
    """Beside the data first, then the user's cache folder (named after the data folder's path)."""
    name = f".vaeviz-cache-{folder.size}px-{'rgb' if folder.channels == 3 else 'grey'}-seed{folder.seed}.npz"
    home = Path(os.environ.get("VAEVIZ_CACHE_DIR") or Path.home() / ".cache" / "vaeviz").expanduser()
    tag = hashlib.sha256(str(folder.path).encode()).hexdigest()[:16]
    return [folder.path / name, home / "folders" / f"{tag}-{name[1:]}"]


def _read_cache(path: Path, key: str):
    """(train, test, classes, summary) from a cache file that matches `key`; None for anything else."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            train = (z["train_images"], z["train_labels"].astype(np.int64))
            test = (z["test_images"], z["test_labels"].astype(np.int64))
            classes, summary = tuple(str(c) for c in z["classes"]), str(z["summary"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    ok = all(a.dtype == np.uint8 and a.ndim == 4 and len(a) == len(b) and (len(b) == 0 or 0 <= b.min() and
             b.max() < len(classes)) for a, b in (train, test))
    return (train, test, classes, summary) if ok else None


def _write_cache(path: Path, key: str, train, test, classes, summary: str) -> bool:
    buffer = io.BytesIO()
    np.savez(buffer, key=np.array(key), train_images=train[0], train_labels=train[1], test_images=test[0],
             test_labels=test[1], classes=np.array(classes), summary=np.array(summary))
    try:
        write_atomic(path, buffer.getvalue())
        return True
    except OSError:
        return False
