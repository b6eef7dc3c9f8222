"""Latent maps: codes as a WebGL scatter coloured by class, with paths, points and pictures on top.

Arrays in, `go.Figure` out, no Streamlit. Colours come from `figures.palette`, so a class has the
same colour on every map and page.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .images import png_data_uri
from .palette import FONT, label_colour


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
    uirevision: str | None = None,
) -> go.Figure:
    """A WebGL scatter of 2-D coordinates (N, 2), one trace per class, indices in `customdata`.

    `exemplars`: (x, y, image) triples drawn as small pictures on the map (one per class).
    `uirevision`: keep the person's zoom across redraws of a chart that updates live.
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
    )
    if uirevision:
        fig.update_layout(uirevision=uirevision)
    if axis_titles[1]:  # one unit is as long across as up, so a circle (the prior, a posterior) looks round
        fig.update_yaxes(scaleanchor="x", scaleratio=1, constrain="domain")
        fig.update_xaxes(constrain="domain")
    return fig


def padded_ranges(*coord_sets: np.ndarray, pad: float = 0.06) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis ranges that hold every point of every set, with a margin (for shared axes)."""
    allc = np.concatenate([np.asarray(c)[:, :2] for c in coord_sets if len(c)])
    lo, hi = np.percentile(allc, 0.2, axis=0), np.percentile(allc, 99.8, axis=0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad * span, hi + pad * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def fit_ranges(fig: go.Figure, *coord_sets: np.ndarray) -> go.Figure:
    """Set a map's axis ranges to hold every set of coordinates (the map's points, a path, a marker)."""
    (x0, x1), (y0, y1) = padded_ranges(*coord_sets)
    fig.update_xaxes(range=[x0, x1])
    fig.update_yaxes(range=[y0, y1])
    return fig


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


