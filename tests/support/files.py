"""Files made in memory for tests, benchmarks and the hostile-input catalogue: pictures drawn with a
known glyph, encoded images, decompression bombs, safetensors headers by hand, a pickle that would
run code. Nothing here is written to disk unless a caller does it.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(DEJAVU), size) if DEJAVU.is_file() else ImageFont.load_default(size=size)


def glyph(
    text: str, *, side: int = 300, size: int = 200, ink=0, paper=255, mode: str = "L", at=(0.5, 0.5)
) -> Image.Image:
    """`text` drawn with its centre at fractions `at` of a side x side canvas."""
    canvas = Image.new(mode, (side, side), paper)
    draw = ImageDraw.Draw(canvas)
    x, y = at[0] * side, at[1] * side
    draw.text((x, y), text, fill=ink, font=font(size), anchor="mm")
    return canvas


def encoded(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def noisy_picture() -> Image.Image:
    """Noise compresses badly, so the encoded file is long and cutting it loses real pixels."""
    return Image.fromarray(np.random.default_rng(1).integers(0, 256, (200, 200), dtype=np.uint8))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(side: int) -> bytes:
    """A PNG header claiming side x side 1-bit pixels, with one compressed row of data: a few bytes."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    one_row = zlib.compress(b"\x00" * (1 + (side + 7) // 8), 9)
    chunks = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", one_row) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def safetensors_header(tensors: dict, metadata: dict) -> bytes:
    """The first bytes of a safetensors file: the header's length, then the header JSON."""
    header = json.dumps({"__metadata__": metadata, **tensors}).encode()
    return struct.pack("<Q", len(header)) + header


class WritesAFile:
    """Unpickling this creates a file: proof that a loader ran code."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))
