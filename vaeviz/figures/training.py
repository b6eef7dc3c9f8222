"""Plotly figures for training: loss curves, per-dimension KL bars, the rate-distortion plane.

Plain lists, dicts and numpy arrays in, `go.Figure` out; no streamlit, no torch, so the Trainer and
Model zoo pages (and a notebook) draw the same pictures. Every loss is in nats per image. The curve
records are the ones `vaeviz.fit` and the trainer job produce and checkpoints store:
per-step {"step", "recon", "kl", ...} and per-epoch {"epoch", "step", "train": {...}, "test": {...}}.
Every figure sets `uirevision`, so a chart redrawn each second keeps the user's zoom.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .palette import ACTIVE_COLOUR, INACTIVE_COLOUR, TEST_COLOUR, TRAIN_COLOUR
# Titles of the loss terms the model kinds report (`Model.terms`); a term not listed shows its name.
TERMS = {
    "recon": "Reconstruction  −log p(x|z)",
    "kl": "KL( q(z|x) ‖ p(z) )",
    "neg_elbo": "Sum: −ELBO = recon + KL",
}
ACTIVE_UNIT_VARIANCE = 0.01  # Burda et al.'s threshold on Var_x(E_q[z]); as vaeviz.metrics (torch-free here)


def _term(record: dict, term: str) -> float | None:
    """One loss term of a record; -ELBO is recon + KL where a record does not carry it."""
    if term in record:
        return record[term]
    if term == "neg_elbo" and "recon" in record and "kl" in record:
        return record["recon"] + record["kl"]
    return None


def _upper(values: list[float]) -> float | None:
    """A y-axis top that ignores the first, huge losses of an untrained model."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if len(finite) < 4:
        return None
    tail = finite[len(finite) // 10 :]
    lo, hi = min(finite), max(tail)
    return hi + 0.08 * max(hi - lo, 1e-6)


def loss_curves(steps: Sequence[dict], epochs: Sequence[dict], *, terms: Sequence[str] = ("recon",),
                height: int = 330) -> go.Figure:
    """Each loss term of a model (`Model.terms`) against the training step, one panel a term.

    Thin line: the training loss, a running mean over each logging window. Dashed markers: the
    training mean of each epoch. Solid markers: the test set after each epoch.
    """
    terms = list(terms)
    titles = [TERMS.get(t, t) for t in terms]
    if terms == ["recon"]:
        titles = ["Reconstruction −log p(x|z) (no KL term: the code is a point)"]
    fig = make_subplots(rows=1, cols=len(terms), subplot_titles=titles, horizontal_spacing=0.07)
    for col, term in enumerate(terms, start=1):
        first = col == 1
        sx = [s["step"] for s in steps]
        sy = [_term(s, term) for s in steps]
        fig.add_trace(go.Scatter(x=sx, y=sy, mode="lines", name="train, per step", legendgroup="step",
                                 showlegend=first, line=dict(color=TRAIN_COLOUR, width=1.2), opacity=0.75,
                                 hovertemplate="step %{x}<br>%{y:.2f} nats<extra>train</extra>"), row=1, col=col)
        ep = [e for e in epochs if "train" in e]
        fig.add_trace(go.Scatter(x=[e["step"] for e in ep], y=[_term(e["train"], term) for e in ep],
                                 mode="lines+markers", name="train, per epoch", legendgroup="train_epoch",
                                 showlegend=first, line=dict(color=TRAIN_COLOUR, dash="dot", width=1.5),
                                 marker=dict(size=7, symbol="circle-open"),
                                 customdata=[e["epoch"] for e in ep],
                                 hovertemplate="epoch %{customdata}<br>%{y:.2f} nats<extra>train (epoch)</extra>"),
                      row=1, col=col)
        et = [e for e in epochs if "test" in e]
        fig.add_trace(go.Scatter(x=[e["step"] for e in et], y=[_term(e["test"], term) for e in et],
                                 mode="lines+markers", name="test, per epoch", legendgroup="test_epoch",
                                 showlegend=first, line=dict(color=TEST_COLOUR, width=2), marker=dict(size=8),
                                 customdata=[e["epoch"] for e in et],
                                 hovertemplate="epoch %{customdata}<br>%{y:.2f} nats<extra>test</extra>"),
                      row=1, col=col)
        top = _upper(sy + [_term(e["test"], term) for e in et])
        if top is not None:
            bottom = min(v for v in sy + [_term(e["test"], term) for e in et] if v is not None and np.isfinite(v))
            pad = 0.05 * max(top - bottom, 1e-6)
            fig.update_yaxes(range=[max(bottom - pad, 0 if term == "kl" else bottom - pad), top], row=1, col=col)
        fig.update_xaxes(title_text="training step", row=1, col=col)
    fig.update_yaxes(title_text="nats per image", row=1, col=1)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), uirevision="loss_curves",
                      legend=dict(orientation="h", yanchor="bottom", y=-0.42, x=0), hovermode="closest")
    fig.update_annotations(font_size=13)
    return fig


def kl_bars(kl_per_dim: Sequence[float], activity: Sequence[float] | None = None, height: int = 300,
            title: str | None = None) -> go.Figure:
    """Mean KL of each latent dimension (log scale), green for the active units.

    `activity`: Var_x(E_q[z_d]) of each dimension (`metrics.unit_activity`); a unit is active above
    0.01, as `metrics.active_units` counts them. Without it, no unit is called active or not. A
    dimension at ~0 nats is unused: its posterior equals the prior (posterior collapse).
    """
    kl = np.asarray(kl_per_dim, dtype=float)
    known = activity is not None
    active = np.asarray(activity, float) > ACTIVE_UNIT_VARIANCE if known else np.ones(len(kl), bool)
    threshold = 0.01  # nats: where the log axis starts to matter
    floor = threshold / 10
    names = [f"z{i + 1}" for i in range(len(kl))]
    colours = np.where(active, ACTIVE_COLOUR, INACTIVE_COLOUR) if known else ACTIVE_COLOUR
    fig = go.Figure(go.Bar(x=names, y=np.maximum(kl, floor), marker_color=colours,
                           customdata=kl, hovertemplate="%{x}: %{customdata:.4f} nats<extra></extra>"))
    top = max(float(kl.max(initial=0.0)), threshold * 10)
    if title is None:
        title = (f"{int(active.sum())} of {len(kl)} latent units active (Var of the mean code > 0.01)" if known
                 else f"KL of each of the {len(kl)} latent dimensions")
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=40, b=10), uirevision="kl_bars", showlegend=False,
        title=dict(text=title, font_size=14),
        yaxis=dict(type="log", title="KL, nats per image", range=[np.log10(floor), np.log10(top * 1.5)],
                   dtick=1, tickformat="~g"),  # one labelled tick per power of ten
        xaxis=dict(title="latent dimension", type="category"),
        bargap=0.3 if len(kl) > 4 else 0.6,
    )
    return fig


def rate_distortion(points: Sequence[dict], height: int = 380) -> go.Figure:
    """Final reconstruction (distortion) against KL (rate) of each model of a beta sweep.

    `points`: {"beta", "recon", "kl"} each. Dotted lines are constant -ELBO (recon + KL): moving
    along one trades reconstruction for rate at the same bound. beta = 1 optimises the ELBO itself.
    """
    pts = sorted(points, key=lambda p: p["beta"])
    kl = [p["kl"] for p in pts]
    recon = [p["recon"] for p in pts]
    fig = go.Figure()
    if pts:
        y_lo, y_hi = min(recon), max(recon)
        pad = max(0.12 * (y_hi - y_lo), 5.0)  # a single point still gets a readable range
        (x0, x1), (y0, y1) = (-0.05 * max(max(kl), 1.0), max(kl) * 1.25 + 2.0), (y_lo - pad, y_hi + pad)
        elbo = np.array(kl) + np.array(recon)
        for level in np.unique(np.round(np.linspace(elbo.min(), elbo.max(), 4))):
            # recon + KL = level: enter the plot at its top edge (or left edge), leave at the bottom or right
            x_in = max(x0, level - y1)
            x_out = min(x1, level - y0)
            if x_in >= x_out:
                continue
            xs = np.array([x_in, x_out])
            fig.add_trace(go.Scatter(x=xs, y=level - xs, mode="lines", line=dict(color="#cccccc", dash="dot", width=1),
                                     hoverinfo="skip", showlegend=False))
            fig.add_annotation(x=x_in, y=level - x_in, text=f"−ELBO {level:.0f}", showarrow=False, xanchor="left",
                               yanchor="top", xshift=4, font=dict(size=11, color="#999999"))
        fig.update_xaxes(range=[x0, x1])
        fig.update_yaxes(range=[y0, y1])
    fig.add_trace(go.Scatter(
        x=kl, y=recon, mode="lines+markers+text", text=[f"β = {p['beta']:g}" for p in pts],
        textposition="top right", marker=dict(size=11, color=[np.log10(p["beta"] + 0.01) for p in pts],
                                              colorscale="Viridis", line=dict(width=1, color="white")),
        line=dict(color="#888888", width=1), showlegend=False, cliponaxis=False,
        customdata=[[p["beta"], p["recon"] + p["kl"]] for p in pts],
        hovertemplate="β = %{customdata[0]:g}<br>KL %{x:.2f} nats<br>recon %{y:.2f} nats<br>−ELBO %{customdata[1]:.2f}<extra></extra>",
    ))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), uirevision="rate_distortion",
                      title=dict(text="Rate–distortion: each β-VAE's test reconstruction against its KL", font_size=14),
                      xaxis_title="rate: KL, nats per image", yaxis_title="distortion: reconstruction, nats per image")
    return fig


def point_samples(points: np.ndarray, data: np.ndarray | None = None, height: int = 320) -> go.Figure:
    """Decoded prior samples of a model of 2-D points (the circle data), over the data if given."""
    fig = go.Figure()
    if data is not None:
        fig.add_trace(go.Scatter(x=data[:, 0], y=data[:, 1], mode="markers", name="data",
                                 marker=dict(size=4, color=INACTIVE_COLOUR)))
    fig.add_trace(go.Scatter(x=points[:, 0], y=points[:, 1], mode="markers", name="samples",
                             marker=dict(size=6, color=TRAIN_COLOUR)))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), uirevision="point_samples")
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig
