"""Charts for the teaching views: distance to the data along a path, a posterior's mu and sigma per
dimension, per-dimension histograms of the codes against N(0, 1), and a linear probe's accuracies.
Arrays in, `go.Figure` out."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .palette import ACTIVE_COLOUR, FONT, INACTIVE_COLOUR, TEST_COLOUR, TRAIN_COLOUR


def path_distances(series: Sequence[tuple[str, np.ndarray, str]], height: int = 300) -> go.Figure:
    """Distance to the data along each path, in the model's typical neighbour distance: (label, (K,), colour)."""
    fig = go.Figure()
    for label, distance, colour in series:
        t = np.linspace(0, 1, len(distance))
        fig.add_trace(go.Scatter(x=t, y=distance, mode="lines+markers", name=label, line=dict(color=colour, width=3),
                                 hovertemplate="t = %{x:.2f}<br>%{y:.2f} typical gaps<extra>" + label + "</extra>"))
    fig.add_hline(y=1.0, line=dict(color="#999999", dash="dot"),
                  annotation_text="a typical gap between test images", annotation_position="top left")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), font=FONT, hovermode="x unified",
                      xaxis=dict(title="position along the path (t)", range=[-0.02, 1.02]),
                      yaxis=dict(title="distance to the nearest test code", rangemode="tozero"),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def posterior_bars(mu: np.ndarray, sigma: np.ndarray, active: np.ndarray | None = None, draws: np.ndarray | None = None,
                   height: int = 300) -> go.Figure:
    """q(z|x) per dimension: mu with a +-2 sigma bar; `draws` (S, D) marked on top; grey for inactive units."""
    d = len(mu)
    names = [f"z{i + 1}" for i in range(d)]
    colours = [ACTIVE_COLOUR if active is None or active[i] else INACTIVE_COLOUR for i in range(d)]
    fig = go.Figure(go.Scatter(x=names, y=mu, mode="markers", name="μ ± 2σ",
                               marker=dict(size=11, color=colours, symbol="line-ew-open", line=dict(width=3)),
                               error_y=dict(type="data", array=2 * sigma, color="#888888", thickness=2, width=6),
                               customdata=np.stack([mu, sigma], 1),
                               hovertemplate="%{x}: μ = %{customdata[0]:.2f}, σ = %{customdata[1]:.2f}<extra></extra>"))
    if draws is not None and len(draws):
        for s, z in enumerate(draws):
            fig.add_trace(go.Scatter(x=names, y=z, mode="markers", name="z = μ + σ·ε" if s == 0 else None,
                                     showlegend=s == 0, marker=dict(size=7, color=TEST_COLOUR, opacity=0.8),
                                     hovertemplate="%{x}: %{y:.2f}<extra>draw</extra>"))
    fig.add_hrect(y0=-2, y1=2, fillcolor="#999999", opacity=0.08, line_width=0)  # where the prior puts 95 %
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), font=FONT, showlegend=True,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
                      xaxis=dict(title="latent dimension", type="category"), yaxis=dict(title="z"))
    return fig


def code_histograms(panels: Sequence[tuple[str, np.ndarray, Sequence[int]]], height: int = 360,
                    bins: int = 40) -> go.Figure:
    """Per-dimension histograms (as densities) of codes, one row per model (label, codes (N, D), its
    dimensions to show), with the N(0, 1) density over each."""
    rows, cols = len(panels), max(len(p[2]) for p in panels)
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=False, horizontal_spacing=0.02, vertical_spacing=0.12,
                        subplot_titles=[f"{label} · z{d + 1}" for label, _, dims in panels for d in dims])
    grid = np.linspace(-4, 4, 161)
    density = np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi)
    for r, (label, codes, dims) in enumerate(panels, start=1):
        for c, d in enumerate(dims, start=1):
            values = np.asarray(codes)[:, d]
            lo, hi = min(values.min(), -4.0), max(values.max(), 4.0)
            fig.add_trace(go.Histogram(x=values, histnorm="probability density", nbinsx=bins, showlegend=False,
                                       marker_color=TRAIN_COLOUR, opacity=0.75, xbins=dict(start=lo, end=hi,
                                                                                          size=(hi - lo) / bins)),
                          row=r, col=c)
            fig.add_trace(go.Scatter(x=grid, y=density, mode="lines", line=dict(color=TEST_COLOUR, width=2),
                                     name="N(0, 1)", showlegend=(r == 1 and c == 1)), row=r, col=c)
            fig.update_xaxes(range=[lo, hi], row=r, col=c)
            fig.update_yaxes(showticklabels=c == 1, row=r, col=c)
    fig.update_layout(height=height * rows // 2 + 60, margin=dict(l=10, r=10, t=40, b=10), font=dict(size=12),
                      legend=dict(orientation="h", yanchor="bottom", y=1.04, x=0), bargap=0.02)
    fig.update_annotations(font_size=12)
    return fig


def probe_bars(results: Sequence[tuple[str, float]], chance: float, height: int = 300) -> go.Figure:
    """Test accuracy of a logistic regression on each representation's codes."""
    labels = [r[0] for r in results]
    acc = [100 * r[1] for r in results]
    fig = go.Figure(go.Bar(x=acc, y=labels, orientation="h", marker_color=TRAIN_COLOUR, text=[f"{a:.1f} %" for a in acc],
                           textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x:.1f} % of test images right<extra></extra>"))
    fig.add_vline(x=100 * chance, line=dict(color="#999999", dash="dot"), annotation_text="chance",
                  annotation_position="bottom right")
    fig.update_layout(height=height, margin=dict(l=10, r=40, t=10, b=10), font=FONT,
                      xaxis=dict(title="test accuracy of a linear classifier on the codes (%)", range=[0, 105]),
                      yaxis=dict(autorange="reversed"))
    return fig


def code_bars(z: np.ndarray, height: int = 260) -> go.Figure:
    """A code's values, one bar per dimension (a sparse code: most are zero)."""
    names = [f"z{i + 1}" for i in range(len(z))]
    fig = go.Figure(go.Bar(x=names, y=z, marker_color=[ACTIVE_COLOUR if v > 0 else INACTIVE_COLOUR for v in z],
                           hovertemplate="%{x}: %{y:.2f}<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), font=FONT, showlegend=False,
                      xaxis=dict(title="code", type="category", showticklabels=len(z) <= 32),
                      yaxis=dict(title="activation"), bargap=0.15)
    return fig


def point_curve(data: np.ndarray, curve: np.ndarray, curve_z: np.ndarray, *, here: np.ndarray | None = None,
                picked: np.ndarray | None = None, segment: np.ndarray | None = None, recon: np.ndarray | None = None,
                height: int = 520) -> go.Figure:
    """A model of 2-D points: the data (grey), the decoded curve x(z) coloured by z, the point at the
    sliders' z, and a picked data point with its posterior's stretch of the curve and its reconstruction."""
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=data[:, 0], y=data[:, 1], mode="markers", name="data (test points)",
                               marker=dict(size=4, color=INACTIVE_COLOUR, opacity=0.6), customdata=np.arange(len(data)),
                               hovertemplate="test point #%{customdata}<extra></extra>"))
    fig.add_trace(go.Scatter(x=curve[:, 0], y=curve[:, 1], mode="markers", name="decoded x̂(z), z from −3 to 3",
                             marker=dict(size=5, color=curve_z, colorscale="Viridis", showscale=True,
                                         colorbar=dict(title="z", thickness=12)),
                             hovertemplate="z = %{marker.color:.2f}<extra></extra>"))
    if segment is not None:
        fig.add_trace(go.Scatter(x=segment[:, 0], y=segment[:, 1], mode="lines", name="x̂(z) for z in μ ± 2σ of q(z|x)",
                                 line=dict(color=TEST_COLOUR, width=6)))
    if picked is not None:
        fig.add_trace(go.Scatter(x=[picked[0]], y=[picked[1]], mode="markers", name="the picked point x",
                                 marker=dict(size=14, color="#d62728", symbol="x")))
    if recon is not None:
        fig.add_trace(go.Scatter(x=[recon[0]], y=[recon[1]], mode="markers", name="its reconstruction x̂(μ)",
                                 marker=dict(size=14, color="#d62728", symbol="circle-open", line=dict(width=3))))
    if here is not None:
        fig.add_trace(go.Scatter(x=[here[0]], y=[here[1]], mode="markers", name="x̂ at the slider's z",
                                 marker=dict(size=16, color="#111111", symbol="star")))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), font=FONT, dragmode="pan",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig
