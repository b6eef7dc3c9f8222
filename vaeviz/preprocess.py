"""Turn an uploaded picture or a canvas drawing of a digit into an MNIST-style 28x28 image.

MNIST was made by cropping each NIST digit to its ink, fitting it in a 20x20 box with its aspect
kept (antialiased), and placing it in 28x28 so that its centre of mass sits at the centre. A model
trained on MNIST only understands pictures made the same way, so `to_mnist` repeats those steps on
arbitrary input: it finds the ink (the alpha channel of a transparent canvas, or whatever stands out
from the paper in a photo or scan, dark or light, after removing uneven lighting), crops it,
brings its strokes to MNIST's width, fits and centres it. `open_image` opens uploaded bytes safely
(format allow-list, size check before decoding, full decode to catch truncation) and raises
`BadImage` with a message meant for a person. numpy and PIL only; never imports streamlit.
"""

from __future__ import annotations

import io
import math
import re
from typing import Callable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

ACCEPTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
MNIST_SIDE = 28  # output side
BOX_SIDE = 20  # the ink's longer side in the output, as in MNIST
CENTRE = 14.0  # where MNIST's centre of mass sits, in pixel-index coordinates (measured: 14.0 +- 0.3)
SMALL_SIDE = 64  # pictures with a shorter side below this are taken as digital: flat paper
GRAIN = 0.002  # pixel-to-pixel noise (in [0, 1], half a grey level) that marks a photo or scan
WORK_SIDE = 320  # larger inputs are box-reduced to about this before any per-pixel work (speed)
MID_SCALE = 4  # strokes are adjusted on a canvas 4x the 20x20 box, then box-reduced (antialiasing)
# MNIST stroke width at the 20-px scale, as `stroke_width` measures it on MNIST: 25%, 50%, 75%.
STROKE_WIDTH_LOW, STROKE_WIDTH_TARGET, STROKE_WIDTH_HIGH = 2.1, 2.5, 2.95


EXIF_ORIENTATION = 0x0112  # the EXIF tag saying how a camera held the picture
EXIF_TRANSPOSE = {  # orientation -> the turn that makes the picture upright (as ImageOps.exif_transpose)
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class BadImage(ValueError):
    """An upload or drawing that cannot be turned into a digit; the message is for a person."""


# --- opening uploads ----------------------------------------------------------------------------


def open_image(data: bytes, *, max_pixels: int = 40_000_000) -> Image.Image:
    """Open uploaded bytes as a fully decoded PIL image, or raise BadImage saying why not.

    Only PNG, JPEG, GIF, BMP and WebP are accepted. The size in the header is checked before any
    pixel is decoded, so a small file that claims to be huge (a decompression bomb) costs
    nothing: the limit is `max_pixels`, and never more than PIL's own MAX_IMAGE_PIXELS (above
    which PIL only warns: here that counts as an error). Nothing is written to disk.
    """
    accepted = ", ".join(ACCEPTED_FORMATS)
    if not data:
        raise BadImage("The file is empty (0 bytes). Please choose a picture of a digit.")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # (the warning if made an error)
        claimed = re.search(r"\((\d+) pixels\)", str(exc))  # PIL: "Image size (900000000 pixels) exceeds ..."
        raise BadImage(_too_large_message(int(claimed[1]) if claimed else None, max_pixels)) from None
    except UnidentifiedImageError:
        raise BadImage(_unaccepted_format_message(data, accepted)) from None
    except Exception as exc:  # damaged headers raise assorted types (SyntaxError, struct.error, ...)
        raise BadImage(f"The file looks like an image but its header is damaged ({_reason(exc)}).") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise BadImage(f"The image has no pixels ({width}x{height}).")
    # PIL's limit is applied here rather than by turning its warning into an error: changing
    # warning filters is process-wide and not thread-safe, and Streamlit serves sessions in threads.
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    if width * height > limit:
        raise BadImage(_too_large_message((width, height), limit))
    try:
        image.load()  # decode everything now, so a truncated or corrupt file fails here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(_too_large_message((width, height), limit)) from None
    except Exception as exc:  # OSError("image file is truncated"), SyntaxError, zlib errors ...
        raise BadImage(
            f"The {image.format} file is truncated or corrupt and cannot be read ({_reason(exc)}). "
            "Try saving or exporting it again."
        ) from None
    return image


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:120]


def _too_large_message(size: tuple[int, int] | int | None, max_pixels: int) -> str:
    """Say how large it claims to be: width x height, or a pixel count (all PIL tells for the largest)."""
    if isinstance(size, tuple):
        claimed = f"{size[0]}x{size[1]} pixels"
    else:
        claimed = f"{size / 1e6:,.0f} million pixels" if size else "too many pixels"
    return (
        f"The image is too large ({claimed}); the limit is {max_pixels / 1e6:g} million pixels. "
        "Please resize it or crop it to the digit."
    )


def _unaccepted_format_message(data: bytes, accepted: str) -> str:
    """Name the format if PIL knows it (reading only its header), else say it is not an image."""
    try:
        with Image.open(io.BytesIO(data)) as other:
            name = other.format
    except Exception:  # not an image at all, or a damaged one: either way, not accepted
        name = None
    if name:
        return f"{name} images are not accepted; please upload one of: {accepted}."
    return f"The file is not an image (or not one that can be read). Please upload one of: {accepted}."


# --- from a picture to an ink map ---------------------------------------------------------------


def to_mnist(image: Image.Image) -> torch.Tensor:
    """An MNIST-style digit (1, 28, 28) float32 in [0, 1], white ink on black, from any picture.

    Raises BadImage if the picture has no ink (blank, uniform, fully transparent).
    """
    ink = ink_map(image)  # (H, W) in [0, 1], 1 = ink, at a working resolution
    digit = mnist_layout(ink)  # (28, 28)
    return torch.from_numpy(digit).unsqueeze(0)


def ink_map(image: Image.Image) -> np.ndarray:
    """Where the ink is: (H, W) float32 in [0, 1], paper 0 and stroke centres 1.

    The picture is first brought to an upright single frame in one of a few modes and reduced to at
    most about WORK_SIDE pixels a side. A transparent canvas gives its ink in the alpha channel.
    Otherwise the ink is what differs from the paper (see `_ink_signal`), and a threshold-like
    stretch sends paper to 0 and stroke centres to 1.
    """
    picture = _work_copy(image)
    pixels = np.asarray(picture, dtype=np.float32)
    if picture.mode == "F":
        pixels = pixels[..., None]
    else:
        pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], -1) / 255.0  # (H, W, C)
    has_alpha = picture.mode in ("LA", "RGBA")
    if has_alpha:
        alpha = pixels[..., -1]
        colour = pixels[..., :-1]
        opaque = alpha > 0.5
        if opaque.all() or alpha.max() - alpha.min() < 0.05:
            pixels = colour  # alpha carries nothing: a plain picture
        elif opaque.mean() < 0.6:
            # A drawing canvas: transparent background, strokes of any colour. The ink is the alpha.
            return _stretch(alpha)
        else:
            # Mostly opaque with transparent holes (rounded corners, a cut-out): paint the holes
            # the paper's colour so they do not look like ink.
            paper = np.median(colour[opaque], axis=0)
            pixels = colour * alpha[..., None] + paper * (1.0 - alpha[..., None])
    if pixels.shape[-1] == 3 and np.ptp(_sample(pixels), axis=-1).max() < 0.04:
        pixels = pixels.mean(axis=-1, keepdims=True)  # a grey picture stored as colour
    return _stretch(_ink_signal(pixels))


def _work_copy(image: Image.Image) -> Image.Image:
    """The first frame, upright, as L/LA/RGB/RGBA (8-bit) or F (deeper), at most ~WORK_SIDE a side."""
    if image.tell() != 0:  # on another frame (n_frames is not asked: it walks a whole GIF)
        frame_now = image.tell()
        image.seek(0)
        first = image.copy()
        image.seek(frame_now)  # leave the caller's image as it was
        image = first
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    mode = image.mode
    has_transparency = "transparency" in image.info
    try:
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
            image = _as_float_image(image)
        elif mode in ("LA", "La", "PA") or (mode in ("L", "1") and has_transparency):
            image = image.convert("RGBA").convert("LA") if mode == "PA" else image.convert("LA")
        elif mode in ("RGBA", "RGBa") or (mode in ("P", "RGB") and has_transparency):
            image = image.convert("RGBA")
        elif mode in ("L", "1"):
            image = image.convert("L")
        elif mode != "RGB":
            image = image.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV ...
    except (ValueError, OSError) as exc:
        raise BadImage(f"Pictures in colour mode {mode} cannot be read ({_reason(exc)}).") from None
    factor = math.ceil(max(image.size) / WORK_SIDE)
    if factor > 1:
        image = image.reduce(factor)  # box average: keeps faint thin strokes as faint lines
    if orientation in EXIF_TRANSPOSE:
        # What ImageOps.exif_transpose does, done after the reduction: far cheaper on big photos.
        image = image.transpose(EXIF_TRANSPOSE[orientation])
    return image


def _as_float_image(image: Image.Image) -> Image.Image:
    """16- or 32-bit greys as a float image in [0, 1] (PIL's own conversion clips to 8 bits)."""
    values = np.asarray(image).astype(np.float32)
    if image.mode.startswith("I;16"):
        full_scale = 65535.0
    else:
        top = float(values.max(initial=0.0))  # 32-bit data says nothing of its range: guess from it
        if image.mode == "F" and top <= 1.0:
            full_scale = 1.0
        else:
            full_scale = next((scale for scale in (255.0, 65535.0) if top <= scale), top)
    return Image.fromarray(np.clip(values / full_scale, 0.0, 1.0), mode="F")


def _ink_signal(pixels: np.ndarray) -> np.ndarray:
    """How much each pixel is ink rather than paper: (H, W), ~0 on paper, > 0 on ink.

    1. Colour pictures are reduced to one channel: the colour direction along which pixels differ
       most from the paper, so blue pen on cream paper counts as much as black on white.
    2. Block medians (a thin stroke does not move a median) and a robust quadratic fit to them
       model the paper under uneven light; blocks of thick ink fall out of the fit as outliers.
    3. Polarity: ink is on the side (darker or lighter than the paper) whose excess over the
       noise adds up to more; glare or a shadow is smooth and mostly absorbed by the fit.
    4. What the quadratic misses (a lamp's spot, a shadow's edge) is followed by a local median
       of the paper blocks, leaving out blocks that look like ink.
    """
    if pixels.shape[-1] > 1:
        pixels = (pixels @ _ink_direction(pixels))[..., None]
    values = pixels[..., 0]  # (H, W)
    height, width = values.shape
    if min(height, width) < SMALL_SIDE:
        # A small picture is digital (an icon, a 28x28 image): no lighting to model, and too few
        # pixels to model it from. The paper is its most common value.
        difference = values - _paper_level(values.ravel())
        return _polarity(difference) * difference
    grid, block = _block_medians(pixels)  # (rows, cols, 1)
    rows, cols = grid.shape[:2]
    surface, grid_surface = _paper_fit(grid, block, (height, width))
    surface, grid, grid_surface = surface[..., 0], grid[..., 0], grid_surface[..., 0]
    sign = _polarity(values - surface)
    signal = sign * (values - surface)
    correction = _local_correction(sign * (grid - grid_surface))  # (rows, cols), ink side > 0
    if correction is not None:
        smooth = Image.fromarray(correction, mode="F").resize((cols * block, rows * block), Image.BILINEAR)
        margin = ((0, height - rows * block), (0, width - cols * block))  # blocks stop short of the edge
        signal -= np.pad(np.asarray(smooth), margin, mode="edge")
    return signal


def _block_medians(pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """Medians of square blocks about 1/16 of the shorter side: (rows, cols, C), and the block side."""
    height, width, channels = pixels.shape
    block = max(1, min(height, width) // 16)
    rows, cols = height // block, width // block
    blocks = pixels[: rows * block, : cols * block].reshape(rows, block, cols, block, channels)
    return np.median(blocks, axis=(1, 3)), block


def _paper_fit(grid: np.ndarray, block: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The robust quadratic paper surface at every pixel (H, W, C) and at the blocks (rows, cols, C)."""
    (height, width), (rows, cols) = shape, grid.shape[:2]
    y_grid = ((np.arange(rows) + 0.5) * block / height * 2 - 1).astype(np.float32)  # in [-1, 1]
    x_grid = ((np.arange(cols) + 0.5) * block / width * 2 - 1).astype(np.float32)
    y_full = ((np.arange(height) + 0.5) / height * 2 - 1).astype(np.float32)
    x_full = ((np.arange(width) + 0.5) / width * 2 - 1).astype(np.float32)
    coefficients = _robust_surface_fit(grid, y_grid, x_grid, quadratic=min(rows, cols) >= 5)  # (T, C)
    return (
        _evaluate_surface(coefficients, y_full, x_full),
        _evaluate_surface(coefficients, y_grid, x_grid),
    )


def _surface_terms(y: np.ndarray, x: np.ndarray, quadratic: bool) -> np.ndarray:
    """1, y, x, y^2, yx, x^2 at every point of the grid y (rows) by x (cols): (rows * cols, terms)."""
    yy, xx = (a.ravel() for a in np.meshgrid(y, x, indexing="ij"))
    terms = [np.ones_like(yy), yy, xx, yy * yy, yy * xx, xx * xx] if quadratic else [np.ones_like(yy)]
    return np.stack(terms, axis=1)


def _robust_surface_fit(grid: np.ndarray, y: np.ndarray, x: np.ndarray, quadratic: bool) -> np.ndarray:
    """Least squares of a quadratic surface to (rows, cols, C) block values, outliers dropped."""
    terms = _surface_terms(y, x, quadratic)  # (N, T)
    values = grid.reshape(-1, grid.shape[-1])  # (N, C)
    level = np.median(values, axis=0)
    coefficients = np.zeros((terms.shape[1], values.shape[1]), np.float32)
    coefficients[0] = level
    residual = np.linalg.norm(values - level, axis=1)
    inliers = residual <= max(3.0 * 1.4826 * float(np.median(residual)), 1e-3)
    for _ in range(4):
        if inliers.sum() < 2 * terms.shape[1]:
            break
        coefficients = np.linalg.lstsq(terms[inliers], values[inliers], rcond=None)[0].astype(np.float32)
        residual = np.linalg.norm(values - terms @ coefficients, axis=1)
        inliers = residual <= max(3.0 * 1.4826 * float(np.median(residual[inliers])), 1e-3)
    return coefficients


def _evaluate_surface(coefficients: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The fitted surface on the grid y (rows) by x (cols): (rows, cols, C), built separably."""
    c = coefficients[:, None, None, :]  # (terms, 1, 1, C)
    y, x = y[:, None, None], x[None, :, None]
    if len(coefficients) == 1:
        return np.broadcast_to(c[0], (len(y), x.shape[1], c.shape[-1])).astype(np.float32)
    # 1, y, x, y^2, yx, x^2 as (c0 + c1 y + c3 y^2) + (c2 + c4 y) x + c5 x^2
    return ((c[0] + c[1] * y + c[3] * y * y) + (c[2] + c[4] * y) * x + c[5] * x * x).astype(np.float32)


def _ink_direction(pixels: np.ndarray) -> np.ndarray:
    """The colour direction (C,) along which pixels differ most from the paper (+: lighter).

    Worked out on a regular subsample: the paper fit there, then the main axis of the 2% of
    pixels farthest from it.
    """
    step = max(1, math.isqrt(pixels.shape[0] * pixels.shape[1] // 4096))
    small = pixels[::step, ::step]
    grid, block = _block_medians(small)
    surface, _ = _paper_fit(grid, block, small.shape[:2])
    difference = (small - surface).reshape(-1, pixels.shape[-1])
    size = np.linalg.norm(difference, axis=1)
    strong = difference[size >= np.quantile(size, 0.98)]
    _, _, right = np.linalg.svd(strong, full_matrices=False)
    direction = right[0]
    return direction if direction.sum() >= 0 else -direction


def _polarity(difference: np.ndarray) -> float:
    """+1 if the ink is lighter than the paper, -1 if darker: the side with more excess over noise.

    Measured from the median with the MAD as noise: where the paper is not one level (a shadow's
    edge the fit missed) the median sits between its levels and the MAD spans them, so only ink
    stands out.
    """
    sample = _sample(difference)
    deviation = sample - float(np.median(sample))
    noise = 1.4826 * float(np.median(np.abs(deviation)))
    above = np.maximum(deviation - 3 * noise, 0).sum()
    below = np.maximum(-deviation - 3 * noise, 0).sum()
    return 1.0 if above > below else -1.0


def _local_correction(residual: np.ndarray) -> np.ndarray | None:
    """What the quadratic missed of the paper (a lamp's spot, a shadow), per block.

    `residual` (rows, cols) is block median minus the fit, ink side positive. Blocks that stand
    out on the ink side, and their neighbours (a block at a stroke's edge is partly ink), are left
    out; the rest is paper, and each block takes the median of the paper blocks in its 5x5
    neighbourhood (none there: no correction). None if the grid is too small for this.
    """
    rows, cols = residual.shape
    if min(rows, cols) < 5:
        return None
    spread = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    inky = _rank_filter(residual > max(2.0 * spread, 0.01), 3, np.max)
    paper = np.where(inky, np.nan, residual).astype(np.float32)
    padded = np.pad(paper, 2, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (5, 5)).reshape(rows, cols, 25).copy()
    windows[np.isnan(windows).all(axis=-1)] = 0.0  # no paper around: no correction (and no warning)
    return np.nanmedian(windows, axis=-1).astype(np.float32)


def _stretch(signal: np.ndarray) -> np.ndarray:
    """Ink in [0, 1] from a difference to the paper (H, W), ink positive; BadImage if there is none.

    Noisy pictures (photos, scans) are smoothed a little first, since strokes are wider than the
    grain. There is ink only if at least twice as much stands out on the ink side as on the other
    (noise is symmetric, ink is not) and its darkest (or lightest) point is well clear of the
    noise. Paper goes to 0 and stroke centres to 1.
    """
    centre, noise = _centre_and_noise(signal)
    grainy = noise > 0.01 and _grain(signal) > GRAIN  # a photo or scan, not a drawing
    if grainy:
        signal, centre, noise = _denoise(signal, centre, noise)
    deviation = (signal - centre).astype(np.float32)
    floor = max(4.0 * noise, 0.02)
    excess = np.maximum(np.abs(deviation) - floor, 0.0)
    ink_side, other_side = float(excess[deviation > 0].sum()), float(excess[deviation < 0].sum())
    if (deviation > floor).sum() < 8 or ink_side < 2 * other_side:
        raise BadImage("The picture is blank: no digit could be found (nothing stands out from the paper).")
    peak = float(np.quantile(deviation[deviation > floor], 0.95))
    # In photos, blotchy paper reaches about 7 noise widths (measured), pencil at least 10. In
    # clean pictures the "noise" is mostly where the paper model misfits, and says nothing.
    if peak < 0.04 or (grainy and float(deviation.max()) < 8.0 * noise):
        raise BadImage("The picture is blank: no digit could be found (the marks are too faint).")
    low = max(2.0 * noise, 0.2 * peak)
    high = max(0.75 * peak, low + 2.0 * noise, low + 0.02)
    return np.clip((deviation - low) / (high - low), 0.0, 1.0)


def _grain(signal: np.ndarray) -> float:
    """Pixel-to-pixel noise (robust standard deviation): what a photo or scan has and a drawing not.

    From second differences along rows, which a smooth shading does not reach.
    """
    step = max(1, signal.shape[0] // 64)
    rows = signal[::step]  # a few rows are plenty
    return 1.4826 * float(np.median(np.abs(np.diff(rows, n=2, axis=1)))) / math.sqrt(6)


def _denoise(signal: np.ndarray, centre: float, noise: float) -> tuple[np.ndarray, float, float]:
    """Smooth a noisy signal at the scale where the ink stands out most from the noise.

    Strokes are wider than the grain of paper or sensor; how much wider is not known, so a few
    blur widths are tried and the one with the best ink-to-noise ratio (top 0.5% over the noise)
    is kept. Returns the smoothed signal with its paper level and noise.
    """
    best = (float(np.quantile(_sample(signal), 0.995)) - centre) / noise, signal, centre, noise
    for radius in (1, 2, 4):
        smooth = _box_mean(_box_mean(signal, radius), radius)  # ~ a Gaussian of sigma 1.2 r
        smooth_centre, smooth_noise = _centre_and_noise(smooth)
        ratio = (float(np.quantile(_sample(smooth), 0.995)) - smooth_centre) / max(smooth_noise, 1e-6)
        if ratio > best[0]:
            best = ratio, smooth, smooth_centre, smooth_noise
    return best[1], best[2], best[3]


def _sample(values: np.ndarray, size: int = 8192) -> np.ndarray:
    """A regular subsample of at most about `size` pixels of (H, W, ...): (N, ...), for statistics."""
    step = max(1, math.isqrt(values.shape[0] * values.shape[1] // size))
    return values[::step, ::step].reshape(-1, *values.shape[2:])


def _centre_and_noise(signal: np.ndarray) -> tuple[float, float]:
    """The paper's level and noise (robust standard deviation) in an ink-positive signal.

    The level is the most common value (ink is spread over many values, paper is not), so a
    digit covering much of the picture does not move it; the noise is read from the side below
    the level, where there is no ink.
    """
    sample = _sample(signal)
    centre = _paper_level(sample)
    below = centre - sample[sample <= centre]
    return centre, 1.4826 * float(np.median(below)) if below.size else 0.0


def _paper_level(sample: np.ndarray) -> float:
    """The most common value of a 1-D sample: the peak of a 64-bin histogram, refined by a median."""
    low, high = (float(q) for q in np.quantile(sample, [0.005, 0.995]))
    if high - low < 1e-6:
        return float(np.median(sample))
    counts, edges = np.histogram(sample, bins=64, range=(low, high))
    peak = int(np.convolve(counts, [1, 2, 1], mode="same").argmax())
    near = sample[(sample >= edges[max(peak - 1, 0)]) & (sample <= edges[min(peak + 2, 64)])]
    return float(np.median(near))


# --- from an ink map to MNIST's layout ----------------------------------------------------------


def mnist_layout(ink: np.ndarray) -> np.ndarray:
    """Crop ink (H, W) to its extent, bring strokes to MNIST width, fit in 20x20, centre: (28, 28)."""
    ink = _without_stray_marks(ink)
    top, bottom, left, right = _ink_extent(ink)
    crop = ink[top:bottom, left:right]
    width_here = stroke_width(crop > 0.5)
    mid = _resize(crop, MID_SCALE * BOX_SIDE)  # longer side 80
    mid = _normalise_strokes(mid, width_here * MID_SCALE * BOX_SIDE / max(crop.shape))
    top, bottom, left, right = _ink_extent(mid)
    digit = _resize(mid[top:bottom, left:right], BOX_SIDE)  # longer side 20
    return _place_by_centre_of_mass(digit)


def _without_stray_marks(ink: np.ndarray) -> np.ndarray:
    """The ink with small marks apart from the digit removed (dust, a stray dot, a shadow's edge).

    Parts are found on a coarse grid (at most 48 cells a side, grown by one cell so that a broken
    stroke stays one part); parts with less than a tenth of the largest part's ink are dropped.
    """
    height, width = ink.shape
    cell = max(1, math.ceil(max(height, width) / 48))
    rows, cols = math.ceil(height / cell), math.ceil(width / cell)
    padded = np.pad(ink, ((0, rows * cell - height), (0, cols * cell - width)))
    coarse = padded.reshape(rows, cell, cols, cell).mean(axis=(1, 3))  # (rows, cols) ink per cell
    parts = _connected_parts(_rank_filter(coarse > 0.05, 3, np.max))
    mass = np.bincount(parts.ravel(), weights=coarse.ravel())
    mass[0] = 0.0  # label 0 is paper
    if (mass > 0).sum() <= 1:
        return ink
    keep = mass >= 0.1 * mass.max()
    keep[0] = False
    kept = np.repeat(np.repeat(keep[parts], cell, axis=0), cell, axis=1)[:height, :width]
    return np.where(kept, ink, 0.0).astype(np.float32)


def _connected_parts(mask: np.ndarray) -> np.ndarray:
    """Label 8-connected parts of a small boolean mask: (rows, cols) int, 0 = outside the mask.

    Each cell starts labelled with its own index and repeatedly takes the largest label around it,
    then the label that its label's cell holds (pointer jumping, so long parts converge quickly).
    """
    rows, cols = mask.shape
    labels = np.where(mask, np.arange(mask.size).reshape(rows, cols), -1)
    for _ in range(mask.size):
        padded = np.pad(labels, 1, constant_values=-1)
        around = labels.copy()
        for dy in range(3):
            for dx in range(3):
                np.maximum(around, padded[dy : dy + rows, dx : dx + cols], out=around)
        around = np.where(mask, around, -1)
        jumped = np.where(mask, around.ravel()[np.maximum(around, 0)], -1)  # a label is a cell index
        if np.array_equal(jumped, labels):
            break
        labels = jumped
    _, compact = np.unique(labels, return_inverse=True)
    return (compact.reshape(rows, cols) + (0 if (~mask).any() else 1)).astype(np.int64)


def _ink_extent(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the ink: where it is over half strength, else anywhere."""
    mask = ink > 0.5
    if not mask.any():
        mask = ink > 0.05
    if not mask.any():
        raise BadImage("The picture is blank: no digit could be found.")
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)x(2r+1) window around each pixel, the edge repeated outside."""
    k = 2 * radius + 1
    padded = np.pad(values.astype(np.float32), radius, mode="edge")
    integral = np.pad(padded.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return (integral[k:, k:] - integral[:-k, k:] - integral[k:, :-k] + integral[:-k, :-k]) / (k * k)


def stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width in pixels of a binary ink mask: 2 * area / perimeter.

    The perimeter counts ink/paper transitions along rows and columns, which overstates slanted
    edges by 4/pi on average, hence the correction. MNIST measures 2.5 (median) this way.
    """
    area = float(mask.sum())
    if area == 0:
        return 0.0
    padded = np.pad(mask, 1)
    transitions = float((padded[1:, :] != padded[:-1, :]).sum() + (padded[:, 1:] != padded[:, :-1]).sum())
    return 2.0 * area / transitions * 4.0 / math.pi


def _normalise_strokes(mid: np.ndarray, width: float) -> np.ndarray:
    """Thicken thin strokes (or thin thick ones) on the 80-px canvas toward MNIST's stroke width.

    A pen line that is thin at a large size would vanish at 28x28; after the box reduction to this
    canvas it is a faint line, so it is first brought back to full strength, then dilated.
    """
    low, target, high = (MID_SCALE * w for w in (STROKE_WIDTH_LOW, STROKE_WIDTH_TARGET, STROKE_WIDTH_HIGH))
    if width < 1.0:
        mid = np.clip(mid / max(0.6 * width, 0.05), 0.0, 1.0)  # a faint 1-px line -> a full one
        width = 1.0
    if width < low:
        return _rank_filter(mid, _odd(target - width), np.max)
    if width > high:
        return _rank_filter(mid, _odd(min(width - target, width / 2)), np.min)
    return mid


def _odd(size: float) -> int:
    return max(1, 2 * int(round((size - 1) / 2)) + 1)


def _rank_filter(values: np.ndarray, size: int, reduce: Callable[..., np.ndarray]) -> np.ndarray:
    """Max (dilation) or min (erosion) over a size x size square, separably; outside counts as 0."""
    if size <= 1:
        return values
    r = size // 2
    padded = np.pad(values, r)
    windows = np.lib.stride_tricks.sliding_window_view(padded, size, axis=0)
    rows = reduce(windows, axis=-1)  # (H, W + 2r)
    windows = np.lib.stride_tricks.sliding_window_view(rows, size, axis=1)
    return reduce(windows, axis=-1)


def _resize(values: np.ndarray, longer_side: int) -> np.ndarray:
    """Resize (H, W) in [0, 1] so its longer side is `longer_side`, keeping the aspect (antialiased)."""
    height, width = values.shape
    scale = longer_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))  # PIL: (W, H)
    # BOX averages areas when shrinking (how MNIST's antialiasing behaves); BILINEAR when growing.
    resample = Image.BOX if scale < 1 else Image.BILINEAR
    resized = Image.fromarray(values.astype(np.float32), mode="F").resize(size, resample)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _place_by_centre_of_mass(digit: np.ndarray) -> np.ndarray:
    """Put (h, w) <= (20, 20) into 28x28 with its centre of mass on CENTRE, by a whole-pixel shift.

    A whole-pixel shift keeps the strokes crisp and the ink inside 20x20; where centring would push
    ink off the canvas (a very lopsided digit), the shift is limited so no ink is lost.
    """
    height, width = digit.shape
    mass = float(digit.sum())
    if mass <= 0:
        raise BadImage("The picture is blank: no digit could be found.")
    rows = (digit.sum(axis=1) * np.arange(height)).sum() / mass
    cols = (digit.sum(axis=0) * np.arange(width)).sum() / mass
    top = min(max(int(round(CENTRE - rows)), 0), MNIST_SIDE - height)
    left = min(max(int(round(CENTRE - cols)), 0), MNIST_SIDE - width)
    canvas = np.zeros((MNIST_SIDE, MNIST_SIDE), np.float32)
    canvas[top : top + height, left : left + width] = digit
    return canvas
