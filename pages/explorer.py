"""Latent explorer: sliders over the latent dimensions, a 2-D grid of decoded images, prior samples.

The sliders come in two kinds: Streamlit's own, decoded on the server on release, and a live panel
whose sliders and 2-D pad decode in the browser on every frame of a drag (vaeviz.ui.live_decoder).
Both move the same code, `st.session_state["z::<model key>"]`.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from vaeviz import latent
from vaeviz.figures import images as image_figures
from vaeviz.ui import views
from vaeviz.ui.cache import ModelRef, encoded, get_model, map_view, slider_ranges
from vaeviz.ui.live import LiveModel, Released, browser_decoder, live_key, live_sliders, pad_over_dims
from vaeviz.ui.sidebar import require_model

MAX_SLIDERS = 16
IMAGE_PX = 336  # 28 x 12: big enough for the back row of a lecture hall
DECODE_MODES = ("On the server", "Live (in your browser)")
LIVE_PX = 300  # image and pad side by side, sliders beside them on a laptop screen
PAD_POINTS = 2000  # test codes drawn under the live pad: enough to see the clusters, quick to draw


def _slider_key(ref: ModelRef, i: int) -> str:
    return f"slider::{ref.key}::{i}"


def _set_code(ref: ModelRef, z: np.ndarray) -> None:
    """Move every slider (shown or not) to the code z: a callback, so it runs before widgets draw."""
    st.session_state[f"z::{ref.key}"] = np.asarray(z, np.float64).copy()
    for i, v in enumerate(z):
        st.session_state[_slider_key(ref, i)] = float(np.round(v, 2))


def current_code(ref: ModelRef, dim: int) -> np.ndarray:
    """The code being explored (shared by the server sliders and the live panel), made if missing."""
    zkey = f"z::{ref.key}"
    if zkey not in st.session_state:
        _set_code(ref, np.zeros(dim))
    return st.session_state[zkey]


def code_buttons(ref: ModelRef, mu: np.ndarray | None, n_test: int, dim: int) -> None:
    """Reset, random from the prior, start from a test image: each moves the code (a callback)."""
    buttons = st.columns([1, 1, 1.2, 1.2])
    buttons[0].button("Reset to origin", on_click=_set_code, args=(ref, np.zeros(dim)), key=f"reset::{ref.key}",
                      width="stretch")
    rng = np.random.default_rng()
    buttons[1].button("Random from prior", on_click=lambda: _set_code(ref, rng.standard_normal(dim)),
                      key=f"random::{ref.key}", width="stretch",
                      help="Draw z from N(0, I), the prior a VAE is trained towards.")
    if mu is not None:
        index = buttons[2].number_input("Test image #", 0, n_test - 1, 0, key=f"idx::{ref.key}",
                                        label_visibility="collapsed")
        buttons[3].button("Start from test image", on_click=lambda: _set_code(ref, mu[int(index)]),
                          key=f"fromimg::{ref.key}", width="stretch",
                          help="Set the sliders to this test image's code (the mean code for a VAE).")


def shown_dims(ref: ModelRef, dim: int) -> list[int]:
    """The dimensions that get sliders: all of them, or up to MAX_SLIDERS chosen by the person."""
    if dim > MAX_SLIDERS:
        return st.multiselect(f"Dimensions with sliders (up to {MAX_SLIDERS} of {dim})", list(range(dim)),
                              default=list(range(MAX_SLIDERS)), max_selections=MAX_SLIDERS,
                              key=f"dims::{ref.key}", format_func=lambda i: f"z{i + 1}")
    return list(range(dim))


@st.fragment
def slider_panel(ref: ModelRef, mu: np.ndarray | None, n_test: int) -> None:
    model = get_model(ref)
    dim = model.cfg.latent_dim
    z = current_code(ref, dim)
    ranges = slider_ranges(mu) if mu is not None else np.tile([-3.0, 3.0], (dim, 1))

    code_buttons(ref, mu, n_test, dim)
    shown = shown_dims(ref, dim)

    left, right = st.columns([1, 1.4], gap="large")
    with right:
        cols = st.columns(2 if len(shown) > 4 else 1)
        for n, i in enumerate(shown):
            key = _slider_key(ref, i)
            lo, hi = float(ranges[i, 0]), float(ranges[i, 1])
            st.session_state[key] = float(np.clip(st.session_state.get(key, 0.0), lo, hi))
            value = cols[n % len(cols)].slider(f"z{i + 1}", lo, hi, step=0.05, key=key)
            z[i] = value
    with left:
        image = latent.decode(model, z[None])[0]
        st.image(latent.to_uint8(latent.enlarge(image, IMAGE_PX // image.shape[0])) if image.ndim == 2 else image,
                 width=IMAGE_PX, caption="decode(z)")
        norm = float(np.linalg.norm(z))
        st.caption(f"‖z‖ = {norm:.2f}  ·  for a VAE the prior puts most codes near ‖z‖ ≈ √{dim} = {np.sqrt(dim):.1f}")


def _dim_name(i: int) -> str:
    return f"z{i + 1}"


def _received_from_browser(ref: ModelRef, released: Released) -> None:
    """The browser let go of a code: the server's code (and its sliders) move there too."""
    _set_code(ref, released.z)
    st.session_state[f"live_received::{ref.key}"] = released.z


@st.fragment
def live_panel(ref: ModelRef, live: LiveModel, mu: np.ndarray | None, labels: np.ndarray | None,
               classes: tuple[str, ...], n_test: int) -> None:
    """Sliders and a 2-D pad decoded in the browser on every frame; the code returns on release."""
    dim = live.latent_dim
    z = current_code(ref, dim)
    ranges = slider_ranges(mu) if mu is not None else np.tile([-3.0, 3.0], (dim, 1))
    code_buttons(ref, mu, n_test, dim)
    shown = shown_dims(ref, dim)
    dims: tuple[int, int | None] = (0, None)
    if dim >= 2:
        # Start on the two dimensions the test codes spread over most: a VAE leaves some unused.
        first, second = np.argsort(-mu.var(0))[:2] if mu is not None else (0, 1)
        a, b = st.columns(2)
        dims = (a.selectbox("Pad: across", range(dim), int(first), key=f"live_dx::{ref.key}", format_func=_dim_name),
                b.selectbox("Pad: up", range(dim), int(second), key=f"live_dy::{ref.key}", format_func=_dim_name))
        if dims[0] == dims[1]:
            st.warning("Pick two different dimensions for the pad.")
            return
    extent = (*ranges[dims[0]], *(ranges[dims[1]] if dims[1] is not None else (-1.0, 1.0)))
    points = None
    if mu is not None:
        across = mu[:PAD_POINTS, dims[0]]
        points = np.stack([across, mu[:PAD_POINTS, dims[1]] if dims[1] is not None else np.zeros_like(across)], 1)
    has_prior = get_model(ref).probabilistic
    pad = pad_over_dims(dim, dims, extent, points=points, labels=labels[:PAD_POINTS] if points is not None else None,
                        classes=classes, rings=has_prior, caption="dots: test images' codes in these two dimensions"
                                                 + ("; rings: 1, 2, 3 σ of the prior" if has_prior else ""))
    live_sliders(live, z, ranges=ranges, dims=shown, pad=pad, key=live_key("explorer", ref.key),
                 on_release=partial(_received_from_browser, ref), image_px=LIVE_PX,
                 pad_px=LIVE_PX)
    with st.container(key="live_received"):
        got = st.session_state.get(f"live_received::{ref.key}")
        if got is None:
            st.caption("Drag the pad or a slider: the image follows at once, and when you let go the code "
                       "comes back to Python (the server-side sliders move there too).")
        else:
            st.caption("Python received z = (" + ", ".join(f"{v:.2f}" for v in got) + ")")


def sliders_tab(ref: ModelRef, mu: np.ndarray | None, labels: np.ndarray | None, classes: tuple[str, ...],
                n_test: int) -> None:
    """The Sliders tab: Streamlit's sliders decoded on the server, or the live panel."""
    mode = st.segmented_control("Decode", DECODE_MODES, default=DECODE_MODES[0], key="explorer_decode",
                                help="Live: the decoder runs in your browser and redraws on every movement of a "
                                     "drag, with no round trip to the server.")
    if mode == DECODE_MODES[1]:
        live, reason = browser_decoder(ref)
        if live is not None:
            live_panel(ref, live, mu, labels, classes, n_test)
            return
        st.info(f"Live decoding is not available for {ref.label}: {reason}. Here are the server-side sliders.")
    st.caption(f"Move a slider to change one coordinate of the code z; the image is the decoder's output for {ref.label}.")
    slider_panel(ref, mu, n_test)


@st.fragment
def grid_panel(ref: ModelRef, mu: np.ndarray | None, n_test: int) -> None:
    model = get_model(ref)
    dim = model.cfg.latent_dim
    c1, c2, c3, c4 = st.columns(4)
    modes = ["Two latent dimensions"] + (["First two principal directions"] if mu is not None and dim > 2 else [])
    mode = c1.radio("Axes", modes, key=f"gmode::{ref.key}")
    holds = ["the origin"] + (["the mean test code", "a test image's code"] if mu is not None else [])
    hold = c2.radio("Other coordinates at", holds, key=f"ghold::{ref.key}")
    n = c3.slider("Images per side (n)", 3, 25, 15, key=f"gn::{ref.key}")
    spacing = c4.radio("Spacing", latent.SPACINGS, key=f"gspace::{ref.key}",
                       format_func=lambda s: {"linear": "linear", "quantile": "Gaussian quantiles"}[s],
                       help="Gaussian quantiles: Φ⁻¹ of evenly spaced probabilities, as in Kingma & Welling's "
                            "manifold figures; they put more images where the prior has more mass.")

    if mode == "Two latent dimensions":
        if dim >= 2:
            a, b = st.columns(2)
            dx = a.selectbox("Horizontal axis", range(dim), 0, key=f"gdx::{ref.key}", format_func=lambda i: f"z{i + 1}")
            dy = b.selectbox("Vertical axis", range(dim), 1, key=f"gdy::{ref.key}", format_func=lambda i: f"z{i + 1}")
            if dx == dy:
                st.warning("Pick two different dimensions.")
                return
            directions, titles = latent.unit_directions(dim, (dx, dy)), (f"z{dx + 1}", f"z{dy + 1}")
        else:
            directions, titles = np.stack([np.ones(1), np.zeros(1)]).astype(np.float32), ("z1", "")
        spread = np.abs(mu[:, list(np.flatnonzero(directions.any(0)))]).max() if mu is not None else 3.0
    else:
        view = map_view(ref, mu, "test", "pca")
        directions, titles = view.directions, view.axis_titles
        spread = np.abs(view.coords).max()

    if hold == "the origin":
        base = np.zeros(dim, np.float32)
    elif hold == "the mean test code":
        base = mu.mean(0)
    else:
        idx = st.number_input("Test image #", 0, n_test - 1, 0, key=f"gidx::{ref.key}")
        base = mu[int(idx)]
    default_span = 3.0 if model.probabilistic else float(np.clip(np.ceil(spread), 1, 50))
    span = st.slider("Range (± along each axis)", 0.5, max(6.0, default_span * 2), default_span, 0.5,
                     key=f"gspan::{ref.key}")
    xs = latent.axis_values(n, span, spacing)
    ys = latent.axis_values(n, span, spacing) if dim >= 2 else np.zeros(1)
    if mode != "Two latent dimensions":
        # PCA coordinates are relative to the mean code; keep the chosen base off the plane.
        base = view.lift(np.zeros((1, 2)), base)[0]
    codes = latent.latent_grid(base, directions, xs, ys)
    images = latent.decode(model, codes)
    mosaic = latent.mosaic(images, cols=len(xs), pad=1)
    st.plotly_chart(image_figures.image_grid(mosaic, xs=xs, ys=ys if dim >= 2 else None, axis_titles=titles, height=720),
                    key=f"grid::{ref.key}", config={"displayModeBar": False})


def prior_panel(refs: list[ModelRef]) -> None:
    st.markdown(
        "Decode codes drawn from the prior **N(0, I)**. A VAE is trained so that its codes fill this "
        "prior, so almost every draw decodes to a plausible image. A plain autoencoder never sees that "
        "constraint: its codes sit wherever training put them, with **gaps** where the decoder never "
        "learned anything, so many draws decode to blurry mixtures or nothing at all."
    )
    seed = st.session_state.setdefault("prior_seed", 0)
    if st.button("New samples", key="prior_new"):
        st.session_state["prior_seed"] = seed = seed + 1
    cols = st.columns(len(refs))
    for col, ref in zip(cols, refs):
        model = get_model(ref)
        if model.cfg.height < 8:
            col.info("Not an image model.")
            continue
        col.markdown(f"**{ref.label}** · {model.kind.upper()}")
        col.image(views.as_picture(views.prior_mosaic(ref, model, seed=seed), 2), width="stretch")


st.title("Latent explorer")
sel = require_model()
ref = sel.model
try:
    mu, _, split, used, note = encoded(ref)
    n_test = len(mu)
    labels, classes = split.labels[:n_test].numpy(), split.classes
except ValueError as exc:
    st.warning(f"No test data for this model ({exc}); the sliders and the prior still work.")
    mu, labels, classes, note, n_test = None, None, (), None, 0
if note:
    st.info(note)

sliders, grid_tab, prior_tab = st.tabs(["Sliders", "Latent grid", "Samples from the prior"])
with sliders:
    sliders_tab(ref, mu, labels, classes, n_test)
with grid_tab:
    st.caption("Decoded images on an n×n grid through latent space: the model's learned manifold.")
    grid_panel(ref, mu, n_test)
with prior_tab:
    prior_panel(sel.refs())
