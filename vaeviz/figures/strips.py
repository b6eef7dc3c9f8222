"""Labelled picture strips drawn with PIL: an interpolation's rows (model labels, the two originals
large at both ends, a judge's caption under every frame) as one image, for the page and the PNG
download, and its animated GIF. One image keeps the rows aligned at any number of steps.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..latent import to_uint8

PAPER = (255, 255, 255)
INK = (40, 40, 40)
MUTED = (120, 120, 120)
WARN = (200, 40, 40)
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@lru_cache(maxsize=8)
def font(size: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(str(DEJAVU), size) if DEJAVU.is_file() else ImageFont.load_default(size=size)
    except OSError:
        return ImageFont.load_default(size=size)


@dataclass(frozen=True)
class StripRow:
    """One model's row: its label, frames (K, H, W) or (K, H, W, C) in [0, 1], and a caption per frame."""

    label: str
    frames: np.ndarray
    captions: tuple[str, ...] = ()
    flagged: tuple[bool, ...] = ()  # captions drawn in red (the judge sees another class, say)


def _picture(image: np.ndarray, scale: int) -> Image.Image:
    pixels = to_uint8(image)
    mode = "L" if pixels.ndim == 2 else "RGB"
    pic = Image.fromarray(pixels, mode)
    return pic.resize((pic.width * scale, pic.height * scale), Image.NEAREST).convert("RGB")


def interpolation_strip(rows: list[StripRow], originals: tuple[np.ndarray, np.ndarray],
                        original_captions: tuple[str, str] = ("start", "end"), *, scale: int = 3,
                        original_scale: int = 5, gap: int = 6, panel_gap: int = 18) -> np.ndarray:
    """All rows one under the other, each: label, then [start original] frames [end original].

    Returns an RGB uint8 image (H, W, 3) on white, the same for the page and the PNG download.
    """
    h, w = rows[0].frames.shape[1:3]
    fw, fh = w * scale, h * scale
    ow, oh = w * original_scale, h * original_scale
    small, large = max(13, fw // 5), max(16, fw // 4)  # type that stays legible when the strip is shrunk
    label_h, caption_h = large + 8, small + 6
    k = max(len(r.frames) for r in rows)
    width = 2 * ow + 2 * panel_gap + k * fw + (k - 1) * gap + 2 * gap
    row_h = label_h + max(oh, fh + caption_h) + caption_h + gap
    canvas = Image.new("RGB", (width, len(rows) * row_h + gap), PAPER)
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        top = gap + r * row_h
        draw.text((gap, top), row.label, fill=INK, font=font(large))
        body = top + label_h
        frames_top = body + (max(oh, fh) - fh) // 2
        for side, (image, text) in enumerate(zip(originals, original_captions)):
            x = gap if side == 0 else width - gap - ow
            canvas.paste(_picture(image, original_scale), (x, body))
            draw.text((x + ow // 2, body + oh + 2), text, fill=MUTED, font=font(small), anchor="ma")
        left = gap + ow + panel_gap
        for i, frame in enumerate(row.frames):
            x = left + i * (fw + gap)
            canvas.paste(_picture(frame, scale), (x, frames_top))
            if i < len(row.captions):
                flagged = i < len(row.flagged) and row.flagged[i]
                draw.text((x + fw // 2, frames_top + fh + 2), row.captions[i], fill=WARN if flagged else INK,
                          font=font(small), anchor="ma")
    return np.asarray(canvas)


def interpolation_gif(rows: list[StripRow], originals: tuple[np.ndarray, np.ndarray], *, scale: int = 6,
                      ms_per_frame: int = 120, bounce: bool = True) -> bytes:
    """An animated GIF of the rows side by side (labelled, with the frame's caption), the two
    originals small beneath, looping there and back."""
    h, w = rows[0].frames.shape[1:3]
    fw, fh, gap = w * scale, h * scale, 16
    small = max(2, scale // 2)
    width = len(rows) * fw + (len(rows) + 1) * gap
    height = 24 + fh + 20 + h * small + 30
    k = len(rows[0].frames)
    order = list(range(k)) + (list(range(k - 2, 0, -1)) if bounce else [])
    pictures = []
    for i in order:
        canvas = Image.new("RGB", (width, height), PAPER)
        draw = ImageDraw.Draw(canvas)
        for r, row in enumerate(rows):
            x = gap + r * (fw + gap)
            draw.text((x, 4), row.label, fill=INK, font=font(14))
            canvas.paste(_picture(row.frames[i], scale), (x, 24))
            caption = row.captions[i] if i < len(row.captions) else f"step {i}"
            draw.text((x + fw // 2, 24 + fh + 2), caption, fill=INK, font=font(12), anchor="ma")
        y = 24 + fh + 24
        for side, image in enumerate(originals):
            pic = _picture(image, small)
            x = gap if side == 0 else width - gap - pic.width
            canvas.paste(pic, (x, y))
        draw.text((width // 2, y + h * small // 2), f"start → end · step {i} of {k - 1}", fill=MUTED,
                  font=font(12), anchor="mm")
        pictures.append(canvas.convert("P", palette=Image.ADAPTIVE, colors=256))
    buf = io.BytesIO()
    pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB (or grey) uint8 image as PNG bytes, as it is."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def gallery(rows: list[tuple[str, np.ndarray]], *, scale: int = 3, gap: int = 4, label_width: int = 170) -> np.ndarray:
    """Rows of images (K, H, W[, C]) with a label on the left of each: originals over reconstructions,
    say. Returns an RGB uint8 image on white."""
    h, w = rows[0][1].shape[1:3]
    fw, fh = w * scale, h * scale
    k = max(len(images) for _, images in rows)
    canvas = Image.new("RGB", (label_width + k * (fw + gap) + gap, len(rows) * (fh + gap) + gap), PAPER)
    draw = ImageDraw.Draw(canvas)
    for r, (label, images) in enumerate(rows):
        top = gap + r * (fh + gap)
        lines = label.split("\n")
        for n, line in enumerate(lines):
            draw.text((gap, top + fh // 2 + (n - (len(lines) - 1) / 2) * 17), line, fill=INK if n == 0 else MUTED,
                      font=font(15 if n == 0 else 12), anchor="lm")
        for i, image in enumerate(images):
            canvas.paste(_picture(image, scale), (label_width + i * (fw + gap), top))
    return np.asarray(canvas)
