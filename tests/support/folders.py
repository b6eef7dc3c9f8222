"""Folders of pictures the tests make themselves: coloured shapes in class folders, and bad files.

`make_shapes(root, per_class)` writes three classes (red discs, green squares, blue triangles) on
light backgrounds, in PNG, JPEG, WebP and BMP, at sizes that are not square (so cropping matters).
`add_bad_files(folder)` drops in one of each kind of file a folder reader must skip.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = {"blue-triangles": (30, 60, 220), "green-squares": (30, 170, 60), "red-discs": (220, 40, 40)}
FORMATS = (("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP"), ("bmp", "BMP"))


def shape_picture(kind: str, rng: np.random.Generator, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """One picture of `kind` on a light, slightly varied background."""
    w, h = size
    background = tuple(int(v) for v in rng.integers(200, 245, 3))
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    r = int(rng.integers(9, 15))
    cx, cy = int(rng.integers(r + 4, w - r - 4)), int(rng.integers(r + 2, h - r - 2))
    colour = tuple(int(np.clip(c + rng.integers(-20, 21), 0, 255)) for c in SHAPES[kind])
    if kind == "red-discs":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif kind == "green-squares":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return image


def make_shapes(root: Path, per_class: int = 60, seed: int = 0) -> Path:
    """root/<class>/NNN.<ext>: `per_class` pictures of each of the three shapes, formats in turn."""
    rng = np.random.default_rng(seed)
    for kind in SHAPES:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            ext, fmt = FORMATS[i % len(FORMATS)]
            shape_picture(kind, rng).save(folder / f"{i:03d}.{ext}", fmt, **({"quality": 95} if fmt != "BMP" else {}))
    return root


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's signature)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


BAD_FILES = {"empty": 1, "truncated": 1, "too large": 1, "unreadable": 1, "not a picture": 1}


def add_bad_files(folder: Path) -> dict[str, int]:
    """One file of each kind a reader must skip, in `folder`; returns how many of each reason."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero.png").write_bytes(b"")
    good = io.BytesIO()
    shape_picture("red-discs", np.random.default_rng(1)).save(good, "PNG")
    (folder / "cut.png").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    (folder / "bomb.png").write_bytes(_png_claiming(100_000, 100_000))
    (folder / "fake.jpg").write_bytes(b"this is not a JPEG at all" * 10)
    (folder / "notes.txt").write_text("not a picture")
    return dict(BAD_FILES)
