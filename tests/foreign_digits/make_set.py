"""Make the foreign-handwriting test set: digits that are not MNIST, drawn the ways people upload them.

Writes small PNGs named `<label>_<source>_<n>.png` beside this file, from four sources (see
README.md): `font` (printed digits in the fonts on this machine, any size, place and colours),
`sklearn` (scikit-learn's bundled 8x8 handwriting, enlarged onto paper), `photo` (some of those,
degraded like a phone photo of paper: uneven light, grey textured paper, blur, low contrast, a small
rotation, JPEG artefacts) and `canvas` (strokes traced along hand-made digit templates with jitter,
on a transparent 280x280 RGBA canvas as streamlit-drawable-canvas returns them). Everything is seeded,
so running it again gives the same files: `.venv/bin/python tests/foreign_digits/make_set.py`.
"""

from __future__ import annotations

import glob
import io
import math
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
SEED = 20240611
PER_DIGIT = {"font": 3, "sklearn": 3, "photo": 2, "canvas": 3}  # images per digit and source

# Fonts of several families and weights; DejaVu ships with Debian. Absent ones are skipped.
FONT_NAMES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-ExtraLight.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerifCondensed-BoldItalic.ttf",
)

# (ink, paper) colours for printed digits: dark on light, light on dark, and coloured.
INK_ON_PAPER = (
    ((0, 0, 0), (255, 255, 255)),
    ((255, 255, 255), (0, 0, 0)),
    ((20, 40, 160), (250, 246, 220)),  # blue pen on cream
    ((200, 30, 30), (255, 255, 255)),  # red on white
    ((240, 240, 200), (30, 90, 60)),  # chalk on a green board
    ((60, 60, 60), (200, 200, 200)),  # dark grey on grey
)


def font_files() -> list[str]:
    """Paths of the fonts in FONT_NAMES found under /usr/share/fonts (empty if none)."""
    found = {Path(p).name: p for p in glob.glob("/usr/share/fonts/**/*.ttf", recursive=True)}
    return [found[name] for name in FONT_NAMES if name in found]


def load_font(path: str | None, size: int) -> ImageFont.FreeTypeFont:
    if path is None:
        return ImageFont.load_default(size=size)  # scalable in Pillow >= 10.1
    return ImageFont.truetype(path, size)


# --- (a) printed digits -------------------------------------------------------------------------


def printed_digit(
    digit: int, rng: random.Random, fonts: list[str | None], colours=INK_ON_PAPER
) -> Image.Image:
    """One digit in a random font, size and place on a large RGB canvas."""
    side = rng.choice((200, 280, 360, 480, 640))
    ink, paper = rng.choice(colours)
    font = load_font(rng.choice(fonts), size=int(side * rng.uniform(0.2, 0.8)))
    canvas = Image.new("RGB", (side, side), paper)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font)
    x = rng.uniform(-left, max(-left, side - right))
    y = rng.uniform(-top, max(-top, side - bottom))
    draw.text((x, y), str(digit), fill=ink, font=font)
    return canvas


# --- (b) scikit-learn's handwriting ------------------------------------------------------------


def sklearn_digit(values: np.ndarray, rng: random.Random) -> Image.Image:
    """An 8x8 scikit-learn digit (0..16) enlarged smoothly, as dark ink on light paper (L mode)."""
    size = rng.choice((96, 128, 160, 200))
    coverage = Image.fromarray((values / 16.0 * 255).astype(np.uint8), "L")
    coverage = coverage.resize((size, size), Image.BICUBIC)
    side = int(size * rng.uniform(1.2, 2.0))
    paper, ink = rng.randint(215, 250), rng.randint(10, 70)
    canvas = np.full((side, side), float(paper), np.float32)
    top, left = rng.randint(0, side - size), rng.randint(0, side - size)
    alpha = np.asarray(coverage, np.float32) / 255.0
    canvas[top : top + size, left : left + size] = paper * (1 - alpha) + ink * alpha
    return Image.fromarray(canvas.clip(0, 255).astype(np.uint8), "L")


# --- (c) photos of paper ------------------------------------------------------------------------


def photograph(picture: Image.Image, rng: random.Random, np_rng: np.random.Generator) -> Image.Image:
    """Make a clean dark-on-light digit look like a phone photo of paper (grey, L mode)."""
    grey = picture.convert("L")
    side = 200
    grey = grey.resize((side, side), Image.BILINEAR)
    angle = rng.uniform(-8, 8)
    border = np.concatenate([np.asarray(grey)[[0, -1]].ravel(), np.asarray(grey)[:, [0, -1]].ravel()])
    # The sheet turns under the camera: what comes into view is more paper.
    grey = grey.rotate(angle, resample=Image.BILINEAR, fillcolor=int(np.median(border)))
    grey = grey.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.6)))
    ink_fraction = 1.0 - np.asarray(grey, np.float32) / 255.0  # 1 on ink
    yy, xx = np.mgrid[0:side, 0:side] / side
    # Uneven light: a tilted plane plus a soft spot, between dim and bright.
    theta = rng.uniform(0, 2 * math.pi)
    tilt = (xx - 0.5) * math.cos(theta) + (yy - 0.5) * math.sin(theta)
    light = 0.75 + 0.25 * tilt * rng.uniform(0.8, 1.6)
    cx, cy = rng.uniform(0, 1), rng.uniform(0, 1)
    light = light + 0.15 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.1)
    paper = rng.uniform(150, 215)  # grey paper
    contrast = rng.uniform(0.35, 0.65)  # pencil-faint to pen-dark
    texture = np.asarray(
        Image.fromarray(np_rng.normal(0, 1, (side // 8, side // 8)).astype(np.float32), "F").resize(
            (side, side), Image.BICUBIC
        )
    )
    values = paper * light * (1 - contrast * ink_fraction) + 6 * texture + np_rng.normal(0, 3.5, (side, side))
    photo = Image.fromarray(values.clip(0, 255).astype(np.uint8), "L")
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=rng.randint(40, 75))  # JPEG blocks, as a phone would save it
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


# --- (d) drawings on a transparent canvas -------------------------------------------------------


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 24) -> list:
    """Points along an ellipse from `start` to `stop` degrees (0 = right, 90 = down, as on screen)."""
    return [
        (cx + rx * math.cos(math.radians(t)), cy + ry * math.sin(math.radians(t)))
        for t in np.linspace(start, stop, n)
    ]


# Strokes of each digit in a unit box (x right, y down); two styles where people differ.
TEMPLATES: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [[_arc(0.5, 0.5, 0.3, 0.45, -90, 275)]],
    1: [[[(0.5, 0.05), (0.5, 0.95)]], [[(0.32, 0.22), (0.52, 0.05), (0.5, 0.95)]]],
    2: [
        [_arc(0.5, 0.3, 0.27, 0.25, 180, 400) + [(0.2, 0.95), (0.85, 0.95)]],
        [_arc(0.48, 0.3, 0.28, 0.25, 200, 380) + [(0.2, 0.92), (0.5, 0.88), (0.85, 0.95)]],
    ],
    3: [[_arc(0.47, 0.27, 0.24, 0.22, 200, 450) + _arc(0.47, 0.72, 0.28, 0.24, -90, 160)]],
    4: [
        [[(0.68, 0.95), (0.68, 0.05), (0.15, 0.66), (0.88, 0.66)]],
        [[(0.25, 0.05), (0.2, 0.55), (0.82, 0.55)], [(0.66, 0.2), (0.66, 0.95)]],
    ],
    5: [[[(0.8, 0.05), (0.3, 0.05), (0.27, 0.45)] + _arc(0.47, 0.68, 0.3, 0.27, -130, 155)]],
    6: [[[(0.7, 0.05), (0.45, 0.2), (0.3, 0.45), (0.24, 0.7)] + _arc(0.48, 0.7, 0.24, 0.25, 180, 540)]],
    7: [
        [[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)]],
        [[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)], [(0.35, 0.5), (0.8, 0.5)]],
    ],
    8: [[_arc(0.5, 0.27, 0.21, 0.22, 90, 450), _arc(0.5, 0.71, 0.27, 0.24, -90, 270)]],
    9: [[_arc(0.5, 0.3, 0.25, 0.25, 0, 360) + [(0.75, 0.3), (0.7, 0.95)]]],
}


def canvas_drawing(digit: int, rng: random.Random) -> Image.Image:
    """Jittered strokes of `digit` on a transparent 280x280 RGBA canvas (antialiased, round joins)."""
    side, supersample = 280, 2
    strokes = rng.choice(TEMPLATES[digit])
    height = rng.uniform(120, 240)
    width_scale = height * rng.uniform(0.65, 0.95)
    slant, angle = rng.uniform(-0.3, 0.15), math.radians(rng.uniform(-10, 10))
    left = rng.uniform(10, side - 10 - width_scale)
    top = rng.uniform(10, side - 10 - height)
    wobble_x, wobble_y = rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)

    def place(point: tuple[float, float]) -> tuple[float, float]:
        x, y = point
        x += 0.03 * math.sin(7 * y + wobble_x) + rng.gauss(0, 0.006)  # a hand does not draw true
        y += 0.03 * math.sin(7 * x + wobble_y) + rng.gauss(0, 0.006)
        x, y = x - 0.5 - slant * (y - 0.5), y - 0.5
        x, y = x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle)
        return ((left + (x + 0.5) * width_scale) * supersample, (top + (y + 0.5) * height) * supersample)

    colour = rng.choice(((255, 255, 255), (0, 0, 0), (30, 30, 200), (230, 20, 60)))
    pen = rng.randint(10, 25) * supersample
    big = Image.new("RGBA", (side * supersample, side * supersample), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    for stroke in strokes:
        points = [place(p) for p in stroke]
        draw.line(points, fill=colour + (255,), width=pen, joint="curve")
        for x, y in (points[0], points[-1]):  # round caps, like a canvas pen
            draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=colour + (255,))
    return big.resize((side, side), Image.LANCZOS)


# --- the set ------------------------------------------------------------------------------------


def make_set(folder: Path = HERE) -> list[Path]:
    """Write the whole set into `folder` (old PNGs there are replaced); return the paths written."""
    from sklearn.datasets import load_digits

    rng, np_rng = random.Random(SEED), np.random.default_rng(SEED)
    fonts: list[str | None] = font_files() or [None]
    digits = load_digits()
    by_label = {d: np.flatnonzero(digits.target == d) for d in range(10)}
    for old in folder.glob("*.png"):
        old.unlink()
    written: list[Path] = []
    counters: dict[str, int] = {}

    def save(image: Image.Image, digit: int, source: str) -> None:
        n = counters.get(source, 0)
        counters[source] = n + 1
        path = folder / f"{digit}_{source}_{n:02d}.png"
        image.save(path, optimize=True)
        written.append(path)

    def sklearn_pick(digit: int) -> np.ndarray:
        return digits.images[rng.choice(list(by_label[digit]))]

    for digit in range(10):
        for _ in range(PER_DIGIT["font"]):
            save(printed_digit(digit, rng, fonts), digit, "font")
        for _ in range(PER_DIGIT["sklearn"]):
            save(sklearn_digit(sklearn_pick(digit), rng), digit, "sklearn")
        dark_on_light = INK_ON_PAPER[:1] + INK_ON_PAPER[2:4]
        for i in range(PER_DIGIT["photo"]):
            if i % 2 == 0:
                clean = printed_digit(digit, rng, fonts, dark_on_light)
            else:
                clean = sklearn_digit(sklearn_pick(digit), rng)
            save(photograph(clean, rng, np_rng), digit, "photo")
        for _ in range(PER_DIGIT["canvas"]):
            save(canvas_drawing(digit, rng), digit, "canvas")
    return written


if __name__ == "__main__":
    paths = make_set()
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} images, {total / 1024:.0f} KiB, into {HERE}")
