"""Plotly figure builders for the explorer pages: arrays in, `go.Figure` out, no Streamlit.

Colours are one fixed qualitative palette indexed by label, so a class has the same colour on
every map and page. Images on figures are greyscale, ink white on black as the models see them.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from .latent import to_uint8

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")
FONT = dict(size=15)


def label_colour(label: int) -> str:
    return PALETTE[int(label) % len(PALETTE)]


def png_data_uri(image: np.ndarray) -> str:
    """A greyscale image (H, W) as a PNG data: URI: uint8 pixels as they are, floats in [0, 1]
    scaled to 0..255. For Plotly layout images and pictures that must not become media files."""
    pixels = image if image.dtype == np.uint8 else to_uint8(image)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def latent_scatter(
    coords: np.ndarray,
    labels: np.ndarray,
    classes: tuple[str, ...],
    *,
    title: str = "",
    axis_titles: tuple[str, str] = ("z1", "z2"),
    exemplars: list[tuple[float, float, np.ndarray]] | None = None,
    ranges: tuple[tuple[float, float], tuple[float, float]] | None = None,
    height: int = 560,
    marker_size: int = 4,
) -> go.Figure:
    """A WebGL scatter of 2-D coordinates (N, 2), one trace per class, indices in `customdata`.

    `exemplars`: (x, y, image) triples drawn as small pictures on the map (one per class).
    """
    fig = go.Figure()
    index = np.arange(len(coords))
    for c, name in enumerate(classes):
        mask = labels == c
        if not mask.any():
            continue
        fig.add_trace(go.Scattergl(
            x=coords[mask, 0], y=coords[mask, 1], mode="markers", name=name,
            marker=dict(size=marker_size, color=label_colour(c), opacity=0.75),
            customdata=index[mask],
            hovertemplate=f"label {name}<br>test image #%{{customdata}}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
        ))
    if ranges is None:
        ranges = padded_ranges(coords)
    if exemplars:
        size = 0.09 * min(ranges[0][1] - ranges[0][0], ranges[1][1] - ranges[1][0])
        for x, y, image in exemplars:
            fig.add_layout_image(dict(source=png_data_uri(image), x=x, y=y, xref="x", yref="y",
                                      sizex=size, sizey=size, xanchor="center", yanchor="middle",
                                      layer="above", opacity=0.95))
    fig.update_layout(
        title=dict(text=title, font=dict(size=18)), height=height, font=FONT,
        margin=dict(l=10, r=10, t=50 if title else 10, b=10),
        legend=dict(itemsizing="constant", title="label"), dragmode="pan",
        xaxis=dict(title=axis_titles[0], range=ranges[0], zeroline=True),
        yaxis=dict(title=axis_titles[1], range=ranges[1], zeroline=True),
        plot_bgcolor="#fafafa",
    )
    return fig


def padded_ranges(*coord_sets: np.ndarray, pad: float = 0.06) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis ranges that hold every point of every set, with a margin (for shared axes)."""
    allc = np.concatenate([np.asarray(c)[:, :2] for c in coord_sets if len(c)])
    lo, hi = np.percentile(allc, 0.2, axis=0), np.percentile(allc, 99.8, axis=0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad * span, hi + pad * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def add_path(fig: go.Figure, path: np.ndarray, *, name: str = "path", colour: str = "#111") -> go.Figure:
    """Draw an interpolation path (K, 2) on a map: a line with numbered steps, start and end marked."""
    # Scattergl, like the map's points: WebGL traces are drawn above every SVG trace.
    fig.add_trace(go.Scattergl(x=path[:, 0], y=path[:, 1], mode="lines+markers", name=name,
                             line=dict(color=colour, width=3), marker=dict(size=8, color=colour),
                             hovertemplate="step %{pointNumber}<extra></extra>"))
    for i, text in ((0, "start"), (len(path) - 1, "end")):
        fig.add_trace(go.Scattergl(x=[path[i, 0]], y=[path[i, 1]], mode="markers+text", text=[text],
                                 textposition="top center", showlegend=False, hoverinfo="skip",
                                 marker=dict(size=16, color=colour, symbol="star")))
    return fig


def add_point(fig: go.Figure, xy: np.ndarray, *, name: str, ellipse: np.ndarray | None = None,
              colour: str = "#d62728") -> go.Figure:
    """Mark one code on a map (a large star), with an optional ellipse (K, 2) around it."""
    if ellipse is not None:
        fig.add_trace(go.Scattergl(x=ellipse[:, 0], y=ellipse[:, 1], mode="lines", name=f"{name}: 2σ",
                                 line=dict(color=colour, width=2, dash="dash"), hoverinfo="skip"))
    fig.add_trace(go.Scattergl(x=[xy[0]], y=[xy[1]], mode="markers", name=name,
                             marker=dict(size=20, color=colour, symbol="star", line=dict(color="white", width=1.5))))
    return fig


def image_grid(mosaic: np.ndarray, *, xs: np.ndarray | None = None, ys: np.ndarray | None = None,
               axis_titles: tuple[str, str] = ("", ""), height: int = 600, title: str = "") -> go.Figure:
    """A mosaic of decoded images (from `latent.mosaic`) with latent coordinates on the axes."""
    fig = go.Figure(go.Image(z=np.repeat(to_uint8(mosaic)[..., None], 3, axis=2), hoverinfo="skip"))
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
    """A greyscale image (H, W) in [0, 1] as PNG bytes, enlarged `scale` times (nearest)."""
    img = Image.fromarray(to_uint8(image)).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def gif_bytes(frames: np.ndarray, scale: int = 6, ms_per_frame: int = 120, bounce: bool = True) -> bytes:
    """Frames (K, H, W) in [0, 1] as an animated GIF that loops (there and back if `bounce`)."""
    order = list(range(len(frames))) + (list(range(len(frames) - 2, 0, -1)) if bounce else [])
    h, w = frames.shape[1:3]
    images = [Image.fromarray(to_uint8(frames[i])).resize((w * scale, h * scale), Image.NEAREST) for i in order]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()
