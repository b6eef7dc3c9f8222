"""Figure and picture helpers: what goes into a PNG is the image given, in either pixel format."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from vaeviz.figures.images import png_data_uri


def decoded(uri: str) -> np.ndarray:
    head, data = uri.split(",", 1)
    assert head == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


def test_png_data_uri_keeps_uint8_pixels_and_scales_floats():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(28, 56), dtype=np.uint8)
    np.testing.assert_array_equal(decoded(png_data_uri(pixels)), pixels)  # not saturated by a second scaling
    floats = pixels / 255.0
    np.testing.assert_array_equal(decoded(png_data_uri(floats)), pixels)
