"""Pictures: image mosaics as figures, data: URIs, and PNG/GIF exports. Arrays in, bytes or figures out."""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from ..latent import to_uint8
from .palette import FONT


def png_data_uri(image: np.ndarray) -> str:
    """An image (H, W) grey or (H, W, 3) colour as a PNG data: URI: uint8 pixels as they are, floats in [0, 1]
    scaled to 0..255. For Plotly layout images and pictures that must not become media files."""
    pixels = image if image.dtype == np.uint8 else to_uint8(image)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def image_grid(mosaic: np.ndarray, *, xs: np.ndarray | None = None, ys: np.ndarray | None = None,
               axis_titles: tuple[str, str] = ("", ""), height: int = 600, title: str = "") -> go.Figure:
    """A mosaic of decoded images (from `latent.mosaic`: grey or colour) with latent coordinates on the axes."""
    pixels = to_uint8(mosaic)
    rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)  # grey (H, W) or colour (H, W, 3)
    fig = go.Figure(go.Image(z=rgb, hoverinfo="skip"))
    rows, cols = (len(ys) if ys is not None else 1), (len(xs) if xs is not None else 1)
    h, w = mosaic.shape[:2]
    cell_w, cell_h = (w + 1) / cols, (h + 1) / rows
    xaxis, yaxis = dict(showticklabels=False, showgrid=False), dict(showticklabels=False, showgrid=False)
    if xs is not None:
        xaxis = dict(tickvals=[(i + 0.5) * cell_w - 0.5 for i in range(cols)], ticktext=[f"{v:.2g}" for v in xs],
                     title=axis_titles[0], showgrid=False)
    if ys is not None:
        yaxis = dict(tickvals=[(i + 0.5) * cell_h - 0.5 for i in range(rows)], ticktext=[f"{v:.2g}" for v in ys[::-1]],
                     title=axis_titles[1], showgrid=False)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10), font=FONT,
                      xaxis=xaxis, yaxis=yaxis, title=title)
    return fig


# --- exports ---------------------------------------------------------------------------------


def png_bytes(image: np.ndarray, scale: int = 4) -> bytes:
    """An image (H, W) or (H, W, 3) in [0, 1] as PNG bytes, enlarged `scale` times (nearest)."""
    img = Image.fromarray(to_uint8(image)).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def gif_bytes(frames: np.ndarray, scale: int = 6, ms_per_frame: int = 120, bounce: bool = True) -> bytes:
    """Frames (K, H, W) or (K, H, W, 3) in [0, 1] as an animated GIF that loops (there and back if `bounce`)."""
    order = list(range(len(frames))) + (list(range(len(frames) - 2, 0, -1)) if bounce else [])
    h, w = frames.shape[1:3]
    images = [Image.fromarray(to_uint8(frames[i])).resize((w * scale, h * scale), Image.NEAREST) for i in order]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()
