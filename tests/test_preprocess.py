"""Tests of vaeviz.preprocess: pictures and drawings to MNIST layout, and safe opening of uploads.

Glyphs are drawn here with a DejaVu font (PIL's scalable default font where DejaVu is missing), so
every test knows what the picture shows. Centre of mass is in pixel-index coordinates (row, col):
pixel i sits at i, and MNIST's own mean centre is (14.0, 14.0). The last test checks the whole
pipeline against a trusted reference: a fixed nearest-neighbour classifier on real MNIST must read
most of the foreign handwriting in tests/foreign_digits/ after `to_mnist`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from vaeviz.preprocess import BadImage, open_image, stroke_width, to_mnist

from .support.files import bomb_png, encoded, glyph, noisy_picture

FOREIGN_DIR = Path(__file__).resolve().parent / "foreign_digits"


def canvas_strokes(colour=(255, 255, 255), width: int = 18, background=(0, 0, 0, 0)) -> Image.Image:
    """A '7' drawn as a streamlit-drawable-canvas drawing: RGBA, strokes opaque, the rest as given."""
    canvas = Image.new("RGBA", (280, 280), background)
    stroke = [(70, 60), (210, 60), (120, 230)]
    ImageDraw.Draw(canvas).line(stroke, fill=colour + (255,), width=width, joint="curve")
    return canvas


def centre_of_mass(digit: np.ndarray) -> tuple[float, float]:
    rows, cols = np.mgrid[0 : digit.shape[0], 0 : digit.shape[1]]
    return float((digit * rows).sum() / digit.sum()), float((digit * cols).sum() / digit.sum())


def ink_box(digit: np.ndarray, level: float = 1e-3) -> tuple[int, int]:
    """(height, width) of the box around every pixel above `level`."""
    rows = np.flatnonzero((digit > level).any(axis=1))
    cols = np.flatnonzero((digit > level).any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def mnist_of(image: Image.Image) -> np.ndarray:
    return to_mnist(image)[0].numpy()


# --- the output -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [glyph("5"), glyph("5", mode="RGB", ink=(20, 40, 160), paper=(250, 246, 220)), canvas_strokes()],
    ids=["grey", "colour", "canvas"],
)
def test_output_is_one_mnist_image(image):
    digit = to_mnist(image)
    assert isinstance(digit, torch.Tensor)
    assert digit.shape == (1, 28, 28) and digit.dtype == torch.float32
    assert float(digit.min()) >= 0.0 and float(digit.max()) <= 1.0
    assert float(digit.max()) > 0.9  # stroke centres are full ink, as in MNIST


@pytest.mark.parametrize("text", list("0123456789"))
def test_centre_of_mass_sits_at_mnist_centre(text):
    digit = mnist_of(glyph(text, at=(0.3, 0.7)))
    row, col = centre_of_mass(digit)
    assert abs(row - 14.0) <= 0.5 + 1e-6 and abs(col - 14.0) <= 0.5 + 1e-6  # a whole-pixel shift


@pytest.mark.parametrize("text", list("0123456789"))
def test_ink_fits_in_20_by_20_with_the_longer_side_filling_it(text):
    height, width = ink_box(mnist_of(glyph(text, side=500, size=120)))
    assert max(height, width) == 20
    assert min(height, width) <= 20


def test_aspect_is_kept_for_a_tall_thin_one():
    image = Image.new("L", (400, 400), 255)
    ImageDraw.Draw(image).rectangle((190, 50, 215, 350), fill=0)  # 26 x 301 px: a bare "1"
    height, width = ink_box(mnist_of(image))
    assert height == 20
    assert width <= 4  # 26/301 of 20 is under 2 px; MNIST-width strokes are 2-3 px


def test_a_wide_bar_stays_wide():
    image = Image.new("L", (400, 400), 255)
    ImageDraw.Draw(image).rectangle((50, 190, 350, 215), fill=0)
    height, width = ink_box(mnist_of(image))
    assert width == 20 and height <= 4


def test_position_and_size_on_the_canvas_do_not_matter():
    reference = mnist_of(glyph("4", side=300, size=200))
    small_in_corner = mnist_of(glyph("4", side=900, size=150, at=(0.2, 0.8)))
    assert np.abs(small_in_corner - reference).mean() < 0.05


# --- polarity, colour, transparency ---------------------------------------------------------------


def test_polarity_black_on_white_equals_white_on_black():
    dark_on_light = mnist_of(glyph("2", ink=0, paper=255))
    light_on_dark = mnist_of(glyph("2", ink=255, paper=0))
    assert np.abs(dark_on_light - light_on_dark).max() < 0.02


@pytest.mark.parametrize(
    "ink, paper",
    [
        ((20, 40, 160), (250, 246, 220)),
        ((200, 30, 30), (255, 255, 255)),
        ((240, 240, 200), (30, 90, 60)),
        ((255, 230, 0), (255, 255, 255)),
    ],
    ids=["blue-on-cream", "red-on-white", "chalk-on-green", "yellow-on-white"],
)
def test_coloured_ink_on_coloured_paper(ink, paper):
    reference = mnist_of(glyph("2"))
    coloured = mnist_of(glyph("2", mode="RGB", ink=ink, paper=paper))
    assert np.abs(coloured - reference).mean() < 0.03


@pytest.mark.parametrize("colour", [(255, 255, 255), (0, 0, 0), (230, 20, 60)], ids=["white", "black", "red"])
def test_transparent_canvas_takes_the_ink_from_alpha(colour):
    white_strokes = mnist_of(canvas_strokes((255, 255, 255)))
    assert np.abs(mnist_of(canvas_strokes(colour)) - white_strokes).max() < 1e-6
    # the same strokes in black on an opaque white canvas read the same
    opaque = canvas_strokes((0, 0, 0), background=(255, 255, 255, 255))
    assert np.abs(mnist_of(opaque) - white_strokes).mean() < 0.01


def test_mnist_itself_comes_back_nearly_unchanged(mnist_slice):
    """MNIST is already in MNIST layout: only stroke width and a pixel of position may change."""
    train, _ = mnist_slice
    correlations = []
    for original in train.images[:20, 0].numpy():
        picture = Image.fromarray((original * 255).round().astype(np.uint8))
        correlations.append(np.corrcoef(mnist_of(picture).ravel(), original.ravel())[0, 1])
    assert np.mean(correlations) > 0.85 and min(correlations) > 0.5


# --- photos and thin strokes ----------------------------------------------------------------------


def photo_of(image: Image.Image, seed: int = 0) -> Image.Image:
    """Grey paper, light from one side (0.55 to 1.0), a soft bright spot, noise, a little blur."""
    rng = np.random.default_rng(seed)
    ink = 1.0 - np.asarray(image.convert("L"), np.float32) / 255.0
    height, width = ink.shape
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    light = 0.55 + 0.45 * xx + 0.1 * np.exp(-((xx - 0.8) ** 2 + (yy - 0.2) ** 2) / 0.05)
    values = 190 * light * (1 - 0.5 * ink) + rng.normal(0, 4, ink.shape)
    photo = Image.fromarray(values.clip(0, 255).astype(np.uint8))
    return photo.resize((width // 2, height // 2), Image.BILINEAR)


@pytest.mark.parametrize("text", ["3", "6", "8"])
def test_photo_with_uneven_light_and_noise_reads_like_the_clean_picture(text):
    clean = mnist_of(glyph(text, side=400, size=260))
    photo = mnist_of(photo_of(glyph(text, side=400, size=260)))
    assert np.corrcoef(clean.ravel(), photo.ravel())[0, 1] > 0.85


def test_thin_strokes_at_a_large_size_stay_visible():
    thin = Image.new("L", (1200, 1200), 255)
    ImageDraw.Draw(thin).ellipse((339, 189, 861, 1011), outline=0, width=3)  # a "0" in fine pen
    thick = Image.new("L", (1200, 1200), 255)
    ImageDraw.Draw(thick).ellipse((300, 150, 900, 1050), outline=0, width=80)  # same centre line
    thin_digit, thick_digit = mnist_of(thin), mnist_of(thick)
    assert thin_digit.max() > 0.9
    assert 1.8 <= stroke_width(thin_digit > 0.5) <= 3.2  # MNIST: 2.1-2.9 px (quartiles) measured so
    assert 0.75 < thin_digit.sum() / thick_digit.sum() < 1.33
    assert np.corrcoef(thin_digit.ravel(), thick_digit.ravel())[0, 1] > 0.6


@pytest.mark.parametrize("side", [12, 28, 40, 100])
def test_small_digital_pictures(side):
    """Icons and 28x28 images from other data sets: flat paper, few pixels, ink covering much."""
    large = glyph("5", side=300, size=200)
    small = large.resize((side, side), Image.BOX)
    assert np.corrcoef(mnist_of(small).ravel(), mnist_of(large).ravel())[0, 1] > 0.8


def test_a_stray_dot_far_from_the_digit_is_ignored():
    clean = glyph("7", side=400, size=220)
    dotted = clean.copy()
    ImageDraw.Draw(dotted).ellipse((370, 370, 376, 376), fill=0)
    assert np.abs(mnist_of(dotted) - mnist_of(clean)).max() < 1e-6


# --- blank pictures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (200, 200), 255),
        Image.new("L", (200, 200), 0),
        Image.new("RGBA", (280, 280), (0, 0, 0, 0)),
        Image.new("RGBA", (280, 280), (255, 255, 255, 255)),
        Image.new("RGB", (300, 120), (120, 200, 30)),
        Image.new("L", (1, 1), 90),
        Image.fromarray(np.random.default_rng(0).normal(180, 5, (300, 300)).clip(0, 255).astype(np.uint8)),
    ],
    ids=["white", "black", "transparent", "opaque-white-canvas", "uniform-colour", "1x1", "noisy-grey-paper"],
)
def test_blank_pictures_raise_bad_image(image):
    with pytest.raises(BadImage, match="blank"):
        to_mnist(image)


# --- image modes, orientation, animation ----------------------------------------------------------


def test_sixteen_bit_png_matches_eight_bit():
    eight = glyph("3")
    sixteen = Image.fromarray(np.asarray(eight).astype(np.uint16) * 257)  # full 16-bit range
    opened = open_image(encoded(sixteen))
    assert opened.mode.startswith("I")
    assert np.abs(mnist_of(opened) - mnist_of(eight)).max() < 0.02


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_png(transparent):
    picture = glyph("3", mode="RGB", ink=(20, 40, 160), paper=(250, 246, 220)).quantize(16)
    options = {"transparency": int(np.asarray(picture)[0, 0])} if transparent else {}
    opened = open_image(encoded(picture, **options))
    assert opened.mode == "P"
    assert np.abs(mnist_of(opened) - mnist_of(glyph("3"))).mean() < 0.03


def test_cmyk_jpeg():
    picture = glyph("3", mode="RGB", ink=(20, 40, 160), paper=(250, 246, 220)).convert("CMYK")
    opened = open_image(encoded(picture, "JPEG", quality=95))
    assert opened.mode == "CMYK"
    assert np.abs(mnist_of(opened) - mnist_of(glyph("3"))).mean() < 0.03


@pytest.mark.parametrize("mode", ["LA", "1", "I", "F"])
def test_other_modes(mode):
    picture = glyph("3")
    if mode == "LA":
        picture = picture.convert("LA")
    elif mode == "1":
        picture = picture.convert("1", dither=Image.Dither.NONE)
    else:
        picture = picture.convert(mode)
    assert np.abs(mnist_of(picture) - mnist_of(glyph("3"))).mean() < 0.03


@pytest.mark.parametrize("format", ["GIF", "WEBP"])
def test_animated_image_uses_its_first_frame(format):
    frames = [glyph("3", mode="RGB"), glyph("7", mode="RGB")]
    data = encoded(frames[0], format, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    opened = open_image(data)
    assert getattr(opened, "n_frames", 1) == 2
    three = mnist_of(glyph("3"))
    assert np.abs(mnist_of(opened) - three).mean() < 0.03
    opened.seek(1)  # even when the caller left it on another frame
    assert np.abs(mnist_of(opened) - three).mean() < 0.03
    assert opened.tell() == 1  # and the caller's image is left where it was


@pytest.mark.parametrize(
    "orientation, turn",
    [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270), (3, Image.Transpose.ROTATE_180)],
)
def test_exif_orientation_is_applied(orientation, turn):
    upright = glyph("4", mode="RGB")
    as_stored = upright.transpose(turn)  # how the camera stored it; the tag says how to undo it
    exif = Image.Exif()
    exif[0x0112] = orientation
    opened = open_image(encoded(as_stored, "JPEG", quality=95, exif=exif))
    assert np.abs(mnist_of(opened) - mnist_of(upright)).mean() < 0.03


def test_to_mnist_leaves_the_picture_unchanged():
    picture = glyph("9", mode="RGBA")
    before = np.asarray(picture).copy()
    to_mnist(picture)
    assert np.array_equal(np.asarray(picture), before) and picture.mode == "RGBA"


# --- opening uploads ------------------------------------------------------------------------------


@pytest.mark.parametrize("format", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_open_image_accepts_the_usual_formats(format):
    opened = open_image(encoded(glyph("5", mode="RGB"), format))
    assert opened.format == format
    assert np.abs(mnist_of(opened) - mnist_of(glyph("5"))).mean() < 0.03


def test_open_image_rejects_zero_bytes():
    with pytest.raises(BadImage, match="empty"):
        open_image(b"")


def test_open_image_rejects_text_named_png():
    with pytest.raises(BadImage, match="not an image"):
        open_image(b"just some notes, saved as digit.png\n" * 20)


def test_open_image_rejects_formats_outside_the_list_and_names_them():
    with pytest.raises(BadImage, match=r"TIFF.*PNG, JPEG, GIF, BMP, WEBP"):
        open_image(encoded(glyph("5"), "TIFF"))


@pytest.mark.parametrize("format", ["PNG", "JPEG", "GIF"])
def test_open_image_rejects_truncated_files(format):
    data = encoded(noisy_picture(), format)
    with pytest.raises(BadImage, match="truncated or corrupt"):
        open_image(data[: len(data) // 2])


def test_open_image_rejects_a_decompression_bomb_before_decoding():
    data = bomb_png(30_000)  # 900 million pixels
    assert len(data) < 5_000
    with pytest.raises(BadImage, match="too large"):
        open_image(data)


def test_open_image_checks_its_own_pixel_limit():
    data = encoded(Image.new("L", (2000, 1000), 255))
    with pytest.raises(BadImage, match="too large.*2000x1000"):
        open_image(data, max_pixels=1_000_000)
    assert open_image(data, max_pixels=2_000_000).size == (2000, 1000)


def test_one_pixel_image_opens_and_is_blank():
    opened = open_image(encoded(Image.new("L", (1, 1), 0)))
    assert opened.size == (1, 1)
    with pytest.raises(BadImage, match="blank"):
        to_mnist(opened)


# --- foreign handwriting against a trusted reference ---------------------------------------------

FOREIGN_ACCURACY_BAR = 0.85  # measured 0.873 (96 of 110): see bench/foreign_accuracy.py


def test_foreign_digits_are_recognised(data_root):
    """1-NN in pixel space on the first 10,000 MNIST training images reads the foreign set."""
    from vaeviz import load_split

    train = load_split("mnist", "train", root=data_root, limit=10_000)
    reference = train.images.reshape(len(train.images), -1)  # (10000, 784)
    paths = sorted(FOREIGN_DIR.glob("*.png"))
    assert len(paths) >= 60
    labels = torch.tensor([int(p.stem.split("_")[0]) for p in paths])
    queries = []
    for path in paths:
        with Image.open(path) as image:
            queries.append(to_mnist(image).reshape(-1))
    nearest = torch.cdist(torch.stack(queries), reference).argmin(dim=1)
    accuracy = (train.labels[nearest] == labels).float().mean().item()
    assert accuracy >= FOREIGN_ACCURACY_BAR, f"1-NN accuracy on the foreign set {accuracy:.3f}"
