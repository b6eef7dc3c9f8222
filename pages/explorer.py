"""Latent explorer: sliders over the latent dimensions, a 2-D grid of decoded images, prior samples.

The sliders come in two kinds: Streamlit's own, decoded on the server on release, and a live panel
whose sliders and 2-D pad decode in the browser on every frame of a drag (vaeviz.ui.live). Both move
the same code (`vaeviz.ui.codes`), which the URL keeps, as it keeps the view and the grid's settings.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from vaeviz import latent
from vaeviz.ui import codes, panels, present, urlstate, views
from vaeviz.ui.cache import ModelRef, encoded, get_model, slider_ranges
from vaeviz.ui.live import LiveModel, Released, browser_decoder, live_key, live_sliders, pad_over_dims
from vaeviz.ui.sidebar import require_model

IMAGE_PX = 336  # 28 x 12: big enough for the back row of a lecture hall
DECODE_MODES = {"server": "On the server", "live": "Live (in your browser)"}
LIVE_PX = 300  # image and pad side by side, sliders beside them on a laptop screen
PAD_POINTS = 2000  # test codes drawn under the live pad: enough to see the clusters, quick to draw
VIEWS = {"sliders": "Sliders", "grid": "Latent grid", "prior": "Samples from the prior", "recon": "Reconstructions"}


def _dim_name(i: int) -> str:
    return f"z{i + 1}"


@st.fragment
def slider_panel(ref: ModelRef, mu: np.ndarray | None, n_test: int) -> None:
    model = get_model(ref)
    dim = model.cfg.latent_dim
    z = codes.current_code(ref, dim)
    ranges = slider_ranges(mu) if mu is not None else np.tile([-3.0, 3.0], (dim, 1))
    codes.buttons(ref, mu, n_test, dim)
    shown = codes.shown_dims(ref, dim)
    left, right = st.columns([1, 1.4], gap="large")
    with right:
        cols = st.columns(2 if len(shown) > 4 else 1)
        for n, i in enumerate(shown):
            key = codes.slider_key(ref, i)
            lo, hi = float(ranges[i, 0]), float(ranges[i, 1])
            st.session_state[key] = float(np.clip(st.session_state.get(key, 0.0), lo, hi))
            z[i] = cols[n % len(cols)].slider(_dim_name(i), lo, hi, step=0.05, key=key)
    with left:
        if model.cfg.height < 8:
            panels.point_model(ref, z, key=f"points::{ref.key}")
        else:
            image = latent.decode(model, z[None])[0]
            st.image(views.as_picture(image, IMAGE_PX // image.shape[0]), width=present.scale(IMAGE_PX), caption="decode(z)")
        st.caption(f"|z| = {float(np.linalg.norm(z)):.2f}. {latent.prior_norm(dim).sentence()}")
    if hasattr(model, "sample_bottom"):
        panels.bottom_layer(ref, z, key=f"bottom::{ref.key}")
    urlstate.publish()


def _received_from_browser(ref: ModelRef, released: Released) -> None:
    """The browser let go of a code: the server's code (and its sliders) move there too."""
    codes.set_code(ref, released.z)
    st.session_state[f"live_received::{ref.key}"] = released.z


@st.fragment
def live_panel(ref: ModelRef, live: LiveModel, mu: np.ndarray | None, labels: np.ndarray | None,
               classes: tuple[str, ...], n_test: int) -> None:
    """Sliders and a 2-D pad decoded in the browser on every frame; the code returns on release."""
    dim = live.latent_dim
    z = codes.current_code(ref, dim)
    ranges = slider_ranges(mu) if mu is not None else np.tile([-3.0, 3.0], (dim, 1))
    codes.buttons(ref, mu, n_test, dim)
    shown = codes.shown_dims(ref, dim)
    dims: tuple[int, int | None] = (0, None)
    if dim >= 2:
        # The two dimensions the test codes spread over most (a VAE leaves some unused), the lower one across.
        first, second = codes.most_active(mu, dim)
        st.session_state.setdefault(f"live_dx::{ref.key}", first)
        st.session_state.setdefault(f"live_dy::{ref.key}", second)
        a, b = st.columns(2)
        dims = (a.selectbox("Pad: across", range(dim), key=f"live_dx::{ref.key}", format_func=_dim_name),
                b.selectbox("Pad: up", range(dim), key=f"live_dy::{ref.key}", format_func=_dim_name))
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
                 on_release=partial(_received_from_browser, ref), image_px=LIVE_PX, pad_px=LIVE_PX)
    with st.container(key="live_received"):
        got = st.session_state.get(f"live_received::{ref.key}")
        if got is None:
            st.caption("Drag the pad or a slider: the image follows at once, and when you let go the code "
                       "comes back to Python (the server-side sliders move there too).")
        else:
            st.caption("Python received z = (" + ", ".join(f"{v:.2f}" for v in got) + ")")
    urlstate.publish()


def sliders_tab(ref: ModelRef, mu: np.ndarray | None, labels: np.ndarray | None, classes: tuple[str, ...],
                n_test: int) -> None:
    """The Sliders tab: Streamlit's sliders decoded on the server, or the live panel."""
    mode = st.segmented_control("Decode", list(DECODE_MODES), key="explorer_decode", required=True,
                                format_func=DECODE_MODES.get,
                                help="Live: the decoder runs in your browser and redraws on every movement of a "
                                     "drag, with no round trip to the server.")
    if mode == "live":
        live, reason = browser_decoder(ref)
        if live is not None:
            live_panel(ref, live, mu, labels, classes, n_test)
            return
        st.info(f"Live decoding is not available for {ref.label}: {reason}. Here are the server-side sliders.")
    st.caption(f"Move a slider to change one coordinate of the code z; the image is the decoder's output for {ref.label}.")
    slider_panel(ref, mu, n_test)


def prior_panel(refs: list[ModelRef]) -> None:
    st.markdown(
        "Decode codes drawn from the prior **N(0, I)**. A VAE is trained so that its codes look like draws from this "
        "prior, so what it decodes from them is what it learned. A plain autoencoder never sees the prior: its codes "
        "sit wherever training put them, at their own scale, so the same draws land on some of its clusters and miss "
        "others (some digits rarely or never appear), or, where its codes are spread far wider than N(0, I), away from "
        "its data altogether, where it decodes no digit. Under each grid, an independent classifier says what it finds.")
    seed = st.session_state.setdefault("prior_seed", 0)
    if st.button("New samples", key="prior_new", icon=":material/casino:"):
        st.session_state["prior_seed"] = seed = seed + 1
    panels.prior_samples(refs, seed)


st.title("Latent explorer")
sel = require_model()
ref = sel.model
dim = get_model(ref).cfg.latent_dim
try:
    mu, _, split, used, note = encoded(ref)
    n_test = len(mu)
    labels, classes = split.labels[:n_test].numpy(), split.classes
except ValueError as exc:
    st.warning(f"No test data for this model ({exc}); the sliders and the prior still work.")
    mu, labels, classes, note, n_test = None, None, (), None, 0
if note:
    st.info(note)
st.session_state.setdefault("explorer_view", VIEWS["sliders"])
st.session_state.setdefault("explorer_decode", "server")
view_names = {title: name for name, title in VIEWS.items()}
urlstate.note(urlstate.bind(
    "explorer",
    urlstate.state("view", "explorer_view", urlstate.choice(list(VIEWS.values()), view_names.get), view_names.get,
                   default=VIEWS["sliders"]),
    urlstate.state("decode", "explorer_decode", urlstate.choice(list(DECODE_MODES)), default="server"),
    codes.url_param(ref, dim),
    *panels.grid_state(ref, mu, dim, max(n_test, 1)),
))
sliders, grid_tab, prior_tab, recon_tab = st.tabs(list(VIEWS.values()), key="explorer_view", on_change="rerun")
if sliders.open:
    with sliders:
        sliders_tab(ref, mu, labels, classes, n_test)
if grid_tab.open:
    with grid_tab:
        st.caption("Decoded images on an n×n grid through latent space: the model's learned manifold.")
        panels.latent_grid(ref, mu, n_test)
if prior_tab.open:
    with prior_tab:
        prior_panel(sel.refs())
if recon_tab.open:
    with recon_tab:
        st.caption("One test image of each class through each model; add noise to see which model denoises.")
        panels.reconstructions(sel.refs(), key="explorer_recon")
        if get_model(ref).kind == "sae" and mu is not None:
            st.subheader("Which codes fire", anchor=False)
            st.session_state.setdefault("explorer_sparse_image", 0)
            index = codes.test_image_picker("explorer_sparse_image", n_test, st.columns(4)[0])
            panels.sparse_codes(ref, split.images[index], key="explorer_sparse")
