"""Interpolate: walk a straight or spherical path between two codes; the AE's row above the VAE's.

Under the strip, a scrubber walks the same path continuously, decoded in the browser (both models
at once), so the morph can be dragged, played and paused in front of a class.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from vaeviz import latent
from vaeviz.figures import images as image_figures
from vaeviz.figures import maps
from vaeviz.ui import views
from vaeviz.ui.cache import ModelRef, encoded, get_model
from vaeviz.ui.inputs import digit_input
from vaeviz.ui.live import Released, browser_decoder, live_key, live_scrubber
from vaeviz.ui.sidebar import require_model

SOURCES = ["Test-set indices", "Random pair by label", "Draw", "Upload"]


def pick_pair(split, n_test: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The two images (1, 28, 28) to interpolate between, from the chosen source."""
    source = st.segmented_control("Pick the two images", SOURCES, default=SOURCES[1], key="interp_source")
    if source == "Test-set indices":
        a, b = st.columns(2)
        i = a.number_input("Start: test image #", 0, n_test - 1, 0, key="interp_i")
        j = b.number_input("End: test image #", 0, n_test - 1, 1, key="interp_j")
        return split.images[int(i)], split.images[int(j)]
    if source == "Random pair by label":
        a, b, c = st.columns([1, 1, 0.6])
        classes = list(range(len(split.classes)))
        la = a.selectbox("Start label", classes, 1, format_func=lambda k: split.classes[k], key="interp_la")
        lb = b.selectbox("End label", classes, 7, format_func=lambda k: split.classes[k], key="interp_lb")
        if c.button("Another pair", key="interp_reroll", width="stretch"):
            st.session_state["interp_seed"] = st.session_state.get("interp_seed", 0) + 1
        rng = np.random.default_rng(st.session_state.get("interp_seed", 0))
        labels = split.labels[:n_test].numpy()
        pool_a, pool_b = np.flatnonzero(labels == la), np.flatnonzero(labels == lb)
        if not len(pool_a) or not len(pool_b):
            st.warning("No test image with that label.")
            return None
        return split.images[int(rng.choice(pool_a))], split.images[int(rng.choice(pool_b))]
    a, b = st.columns(2)
    with a:
        st.markdown("**Start**")
        start = digit_input("interp_start", default="Upload" if source == "Upload" else "Draw")
    with b:
        st.markdown("**End**")
        end = digit_input("interp_end", default="Upload" if source == "Upload" else "Draw")
    if start is None or end is None:
        st.info("Give both a start and an end image.")
        return None
    return start, end


def path_map(ref: ModelRef, mu: np.ndarray, labels: np.ndarray, classes, path: np.ndarray, dataset: str):
    """The model's latent map (raw 2-D or PCA) with the interpolation path drawn on it."""
    fig, view = views.model_map(ref, mu, labels, classes, dataset, height=420)
    path2 = view.project(path)
    maps.fit_ranges(fig, view.coords, path2)
    return maps.add_path(fig, path2)


def _scrubbed(released: Released) -> None:
    st.session_state["interp_live_t"] = released.t


@st.fragment
def scrub_panel(refs: list[ModelRef], paths: list[np.ndarray], how: str, steps: int) -> None:
    """A scrubber along each model's path, decoded in the browser; Python hears the position on release."""
    runnable, notes = [], []
    for ref, path in zip(refs, paths):
        live, reason = browser_decoder(ref)
        if live is None:
            notes.append(f"{ref.label}: {reason}")
        else:
            runnable.append((live, (path[0], path[-1])))
    for note in notes:
        st.info(f"No live scrubbing for {note}. The strip above still shows its path.")
    if not runnable:
        return
    live_scrubber([m for m, _ in runnable], [ends for _, ends in runnable], how, ticks=steps,
                  key=live_key("interp", *(m.hash for m, _ in runnable)), t=0.5, on_release=_scrubbed)
    with st.container(key="interp_live_received"):
        t = st.session_state.get("interp_live_t")
        if t is None:
            st.caption("Drag the scrubber (or press Play): every position along the path is decoded as you move; "
                       "the numbers under it are the strip's steps.")
        else:
            st.caption(f"Python received t = {t:.3f}: step {t * (steps - 1):.1f} of the strip's {steps - 1}.")


st.title("Interpolate")
st.caption("Encode two images, walk the latent space from one code to the other, and decode every step. "
           "An autoencoder's straight path often crosses gaps its decoder never learned; a VAE's stays on digits.")
sel = require_model()
refs = sel.refs()
try:
    mu0, _, split, used, note = encoded(refs[0])
except ValueError as exc:
    st.error(str(exc))
    st.stop()
if note:
    st.info(note)

pair = pick_pair(split, len(mu0))
c1, c2 = st.columns(2)
steps = c1.slider("Steps (both ends included)", 2, 30, 10, key="interp_steps")
how = c2.radio("Path", latent.PATHS, horizontal=True, key="interp_path",
               format_func=lambda p: {"linear": "straight line (lerp)", "spherical": "great circle (slerp)"}[p],
               help="slerp keeps the code's length changing smoothly; under a Gaussian prior, typical codes lie "
                    "near a sphere and the straight line dips towards the less typical origin.")
if pair is None:
    st.stop()

x = torch.stack([pair[0], pair[1]])  # (2, 1, 28, 28)
rows, paths = [], []
for ref in refs:
    model = get_model(ref)
    codes, _ = latent.encode(model, x)
    path = latent.interpolate(codes[0], codes[1], steps, how)
    frames = latent.decode(model, path)
    rows.append((ref, model, frames))
    paths.append(path)

st.subheader("The lecture demo")
for ref, model, frames in rows:
    st.markdown(f"**{model.kind.upper()}** · {ref.label}")
    st.image([latent.to_uint8(latent.enlarge(f, 4)) for f in frames], width=84,
             caption=[f"{i}" for i in range(len(frames))])
st.markdown("**Scrub along the path** · decoded in your browser")
scrub_panel(refs, paths, how, steps)
inputs = latent.mosaic(x[:, 0].numpy(), 2, pad=2)
st.image(latent.to_uint8(latent.enlarge(inputs, 3)), caption="the two inputs, as the models see them", width=174)

strip = latent.mosaic(np.concatenate([f for _, _, f in rows]), steps, pad=2)
gif_frames = np.concatenate([f for _, _, f in rows], axis=2)  # (K, H, W * n_models): side by side
d1, d2 = st.columns(2)
d1.download_button("Download the strip (PNG)", image_figures.png_bytes(strip), "interpolation.png", "image/png",
                   key="interp_png", width="stretch")
d2.download_button("Download the animation (GIF)", image_figures.gif_bytes(gif_frames), "interpolation.gif", "image/gif",
                   key="interp_gif", width="stretch")

st.subheader("The path on the latent map")
cols = st.columns(len(refs))
for col, ref, path in zip(cols, refs, paths):
    try:
        mu, _, split_r, used_r, _ = encoded(ref, 2000)
    except ValueError as exc:
        col.error(str(exc))
        continue
    with col:
        st.markdown(f"**{ref.label}**")
        st.plotly_chart(path_map(ref, mu, split_r.labels[: len(mu)].numpy(), split_r.classes, path, used_r),
                        key=f"interp_map::{ref.key}")
