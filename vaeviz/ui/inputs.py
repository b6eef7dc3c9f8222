"""Image inputs shared by pages: a drawing canvas and a file upload, turned into a model's format.

`drawn_digit` and `uploaded_digit` return a (1, 28, 28) tensor in [0, 1] (white ink on black), or
None with a clear message in the page when there is nothing usable; `picture_input` offers them to
28x28 grey models and, to models of other pictures (colour, any size), `uploaded_picture`. Uploads are read in memory and
never written to disk.
"""

from __future__ import annotations

import re

import numpy as np
import streamlit as st
import torch
from PIL import Image

from ..preprocess import BadImage, open_image, to_mnist

UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp"]
CANVAS_PX = 280  # 10x MNIST's 28: big enough to draw with a mouse or a finger
MAX_UPLOAD_MB = 20
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: str) -> str:
    """`text` with Markdown's special characters escaped, for messages that quote what a person
    typed or uploaded: a file called `[x](http://…).png` is shown as its name, not as a link."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


def drawn_digit(key: str, *, size: int = CANVAS_PX) -> torch.Tensor | None:
    """A canvas (white ink on black, like MNIST); returns the drawing in MNIST format, or None."""
    from streamlit_drawable_canvas import st_canvas  # a v2 component: import only inside the app

    width = st.slider("Pen width", 8, 40, 20, key=f"{key}::pen")
    result = st_canvas(stroke_width=width, stroke_color="#ffffff", background_color="#000000",
                       height=size, width=size, drawing_mode="freedraw", return_image_data=True,
                       key=key)
    data = result.image_data if result is not None else None
    if data is None or not (result.json_data or {}).get("objects"):
        st.caption("Draw a digit on the canvas above.")
        return None
    try:
        return to_mnist(Image.fromarray(np.asarray(data, dtype=np.uint8)))
    except BadImage as exc:
        st.warning(str(exc))
        return None


def picture_input(key: str, shape: tuple[int, int, int], *, default: str = "Draw") -> torch.Tensor | None:
    """An input for models of `shape` (C, H, W): a digit drawn or uploaded for 28x28 grey models, else an
    uploaded picture prepared as a folder's pictures are (`uploaded_picture`). (C, H, W) in [0, 1], or None."""
    if shape == (1, 28, 28):
        return digit_input(key, default=default)
    return uploaded_picture(f"{key}::picture", shape)


def uploaded_picture(key: str, shape: tuple[int, int, int]) -> torch.Tensor | None:
    """A file upload turned into an image of `shape` as `vaeviz.folders` turns a folder's pictures into a
    data set (upright, centre-cropped to a square, resized; grey or colour), or None."""
    from ..folders import fit_picture

    c, h, w = shape
    file = st.file_uploader(f"Upload a picture ({'colour' if c == 3 else 'grey'}, shown to the model at {h}×{w})",
                            type=UPLOAD_TYPES, key=key, max_upload_size=MAX_UPLOAD_MB,
                            help="Cropped to its centre square and resized, as the model's training pictures were.")
    if file is None:
        return None
    if h != w or c not in (1, 3):
        st.error(f"This model takes {c}x{h}x{w} images; uploads are prepared for square grey or colour ones.")
        return None
    try:
        pixels = fit_picture(open_image(file.getvalue()), h, c)
    except BadImage as exc:
        st.error(plain(f"{file.name}: {exc}"))
        return None
    return torch.from_numpy(pixels).float().div_(255.0)


def uploaded_digit(key: str, label: str = "Upload a picture of a digit") -> torch.Tensor | None:
    """A file upload (PNG, JPEG, GIF, BMP, WebP); returns it in MNIST format, or None."""
    file = st.file_uploader(label, type=UPLOAD_TYPES, key=key, max_upload_size=MAX_UPLOAD_MB,
                            help="Any size; dark ink on light paper or the reverse; transparent PNGs too.")
    if file is None:
        return None
    try:
        return to_mnist(open_image(file.getvalue()))
    except BadImage as exc:
        st.error(plain(f"{file.name}: {exc}"))
        return None


def digit_input(key: str, *, default: str = "Draw") -> torch.Tensor | None:
    """Let the person choose: draw on a canvas or upload a file."""
    how = st.segmented_control("Input", ["Draw", "Upload"], default=default, key=f"{key}::how",
                               label_visibility="collapsed")
    if how == "Upload":
        return uploaded_digit(f"{key}::upload")
    return drawn_digit(f"{key}::canvas")
