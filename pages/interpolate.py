"""Interpolate: walk a straight or great-circle path between two codes; the AE's row above the VAE's,
with the two originals large at both ends, an independent judge's verdict under every frame, and
how far each path strays from its model's data, for this pair and over 500 random pairs.

Under the strip, a scrubber walks the same paths continuously, decoded in the browser.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from vaeviz import latent
from vaeviz.contrast import telling_pair
from vaeviz.figures import maps, strips
from vaeviz.ui import panels, urlstate, views
from vaeviz.ui.cache import ModelRef, data_cloud, encoded, get_model
from vaeviz.ui.inputs import picture_input
from vaeviz.ui.live import Released, browser_decoder, live_key, live_scrubber
from vaeviz.ui.sidebar import require_model

SOURCES = ["Test-set indices", "Random pair by label", "Draw", "Upload"]
PATH_NAMES = {"linear": "straight line (lerp)", "spherical": "great circle (slerp)"}


def defaults(n_test: int, n_classes: int) -> None:
    for key, value in (("interp_source", SOURCES[1]), ("interp_la", 1), ("interp_lb", 7), ("interp_steps", 10),
                       ("interp_path", "linear")):
        st.session_state.setdefault(key, value)
    for key, fallback in (("interp_la", min(1, n_classes - 1)), ("interp_lb", n_classes - 1)):
        if not 0 <= st.session_state[key] < n_classes:  # 1 and 7 are digits' defaults; fewer classes: others
            st.session_state[key] = fallback
            st.session_state.pop("interp_i" if key == "interp_la" else "interp_j", None)
    for end in ("interp_i", "interp_j"):
        if st.session_state.get(end, 0) >= n_test:  # from a model with a larger test set
            st.session_state.pop(end)
    if "interp_i" not in st.session_state or "interp_j" not in st.session_state:
        draw_pair(n_test, only_missing=True)  # the first random pair of the default labels


def draw_pair(n_test: int, only_missing: bool = False) -> None:
    """Random test images of the chosen labels as the pair (a callback: before the widgets); with
    `only_missing`, only an end the URL did not give."""
    labels = st.session_state["interp_labels"][:n_test]
    rng = np.random.default_rng(st.session_state.get("interp_seed", 0))
    for end, label in (("interp_i", "interp_la"), ("interp_j", "interp_lb")):
        pool = np.flatnonzero(labels == st.session_state[label])
        choice = int(rng.choice(pool)) if len(pool) else 0
        if not (only_missing and end in st.session_state):
            st.session_state[end] = choice


def another_pair(n_test: int) -> None:
    st.session_state["interp_seed"] = st.session_state.get("interp_seed", 0) + 1
    draw_pair(n_test)


def find_telling_pair(refs: list[ModelRef], n_test: int) -> None:
    """Among 200 random pairs of the chosen labels, the one whose AE path leaves its data most, relative to the VAE's."""
    ae, vae = refs
    codes = tuple(encoded(r, n_test)[0] for r in refs)
    i, j, gap = telling_pair((get_model(ae), get_model(vae)), (data_cloud(ae), data_cloud(vae)), codes,
                             st.session_state["interp_labels"][:n_test], st.session_state["interp_la"],
                             st.session_state["interp_lb"], tries=200, steps=st.session_state["interp_steps"],
                             how=st.session_state["interp_path"], seed=st.session_state.get("interp_seed", 0))
    st.session_state["interp_i"], st.session_state["interp_j"] = i, j
    st.session_state["interp_telling"] = (f"Of 200 random pairs of these labels, test images #{i} and #{j}: the AE's path "
                                          f"strays {gap:+.2f} typical gaps further from its data than the VAE's, on average.")


def pick_pair(split, n_test: int, refs: list[ModelRef]):
    """(the two images (2, C, H, W), their labels or None, their names), or None when not given yet."""
    shape = tuple(split.images.shape[1:])
    options = SOURCES if shape == (1, 28, 28) else [s for s in SOURCES if s != "Draw"]  # drawing: digits only
    if st.session_state.get("interp_source") not in options:
        st.session_state["interp_source"] = "Upload"
    source = st.segmented_control("Pick the two images", options, key="interp_source", required=True)
    classes = list(range(len(split.classes)))
    if source in SOURCES[:2]:
        a, b, c, d = st.columns([1, 1, 0.8, 1])
        if source == SOURCES[0]:
            a.number_input("Start: test image #", 0, n_test - 1, key="interp_i", help=f"0 to {n_test - 1:,}")
            b.number_input("End: test image #", 0, n_test - 1, key="interp_j", help=f"0 to {n_test - 1:,}")
        else:
            a.selectbox("Start label", classes, format_func=lambda k: split.classes[k], key="interp_la",
                        on_change=draw_pair, args=(n_test,))
            b.selectbox("End label", classes, format_func=lambda k: split.classes[k], key="interp_lb",
                        on_change=draw_pair, args=(n_test,))
            c.button("Another pair", key="interp_reroll", on_click=another_pair, args=(n_test,), width="stretch")
            if len(refs) == 2 and get_model(refs[0]).probabilistic != get_model(refs[1]).probabilistic:
                d.button("Find a telling pair", key="interp_telling_btn", on_click=find_telling_pair,
                         args=(refs, n_test), width="stretch", icon=":material/search:",
                         help="Among 200 random pairs of these labels, the one where the AE's path leaves its data "
                              "the most compared with the VAE's.")
            if note := st.session_state.pop("interp_telling", None):
                st.caption(note)
        i, j = st.session_state["interp_i"], st.session_state["interp_j"]
        names = (f"#{i}, a {split.classes[int(split.labels[i])]}", f"#{j}, a {split.classes[int(split.labels[j])]}")
        return torch.stack([split.images[i], split.images[j]]), (int(split.labels[i]), int(split.labels[j])), names
    a, b = st.columns(2)
    with a:
        st.markdown("**Start**")
        start = picture_input("interp_start", shape, default="Upload" if source == "Upload" else "Draw")
    with b:
        st.markdown("**End**")
        end = picture_input("interp_end", shape, default="Upload" if source == "Upload" else "Draw")
    if start is None or end is None:
        st.info("Give both a start and an end image.")
        return None
    return torch.stack([start, end]), (None, None), ("yours", "yours")


def path_map(ref: ModelRef, path: np.ndarray):
    """The model's latent map (raw 2-D or PCA) with the interpolation path drawn on it."""
    mu, _, split, used, _ = encoded(ref, 2000)
    fig, view = views.model_map(ref, mu, split.labels[: len(mu)].numpy(), split.classes, used, height=420)
    path2 = view.project(path)
    maps.fit_ranges(fig, view.coords, path2)
    return maps.add_path(fig, path2)


def _scrubbed(released: Released) -> None:
    st.session_state["interp_live_t"] = released.t


@st.fragment
def scrub_panel(refs: list[ModelRef], paths: list[np.ndarray], how: str, steps: int) -> None:
    """A scrubber along each model's path, decoded in the browser; Python hears the position on release."""
    runnable = []
    for ref, path in zip(refs, paths):
        live, reason = browser_decoder(ref)
        if live is None:
            st.info(f"No live scrubbing for {ref.label}: {reason}. The strip above still shows its path.")
        else:
            runnable.append((live, (path[0], path[-1])))
    if not runnable:
        return
    live_scrubber([m for m, _ in runnable], [ends for _, ends in runnable], how, ticks=steps,
                  key=live_key("interp", *(m.hash for m, _ in runnable)), t=0.5, on_release=_scrubbed)
    with st.container(key="interp_live_received"):
        t = st.session_state.get("interp_live_t")
        st.caption("Drag the scrubber (or press Play): every position along the path is decoded as you move; the "
                   "numbers under it are the strip's steps." if t is None else
                   f"Python received t = {t:.3f}: step {t * (steps - 1):.1f} of the strip's {steps - 1}.")


st.title("Interpolate")
sel = require_model()
refs = sel.refs()
try:
    mu0, _, split, used, note = encoded(refs[0])
except ValueError as exc:
    st.error(str(exc))
    st.stop()
n_test = len(split.images)
st.session_state["interp_labels"] = split.labels.numpy()
urlstate.note(urlstate.bind(
    "interpolate",
    urlstate.state("source", "interp_source", urlstate.choice(SOURCES[:2], lambda s: "indices" if s == SOURCES[0] else "labels"),
                   lambda s: "indices" if s == SOURCES[0] else "labels" if s == SOURCES[1] else "indices"),
    urlstate.state("i", "interp_i", urlstate.whole(0, n_test - 1)),
    urlstate.state("j", "interp_j", urlstate.whole(0, n_test - 1)),
    urlstate.state("la", "interp_la", urlstate.whole(0, len(split.classes) - 1)),
    urlstate.state("lb", "interp_lb", urlstate.whole(0, len(split.classes) - 1)),
    urlstate.state("steps", "interp_steps", urlstate.whole(2, 30)),
    urlstate.state("path", "interp_path", urlstate.choice(list(latent.PATHS))),
))
defaults(n_test, len(split.classes))
st.caption("Encode two images, walk the latent space from one code to the other, and decode every step. Whether a "
           "model's path stays among the images it knows is measured below, for this pair and for 500 random ones.")
if note:
    st.info(note)
pair = pick_pair(split, n_test, refs)
c1, c2 = st.columns(2)
steps = c1.slider("Steps (both ends included)", 2, 30, key="interp_steps")
how = c2.radio("Path", latent.PATHS, horizontal=True, key="interp_path", format_func=PATH_NAMES.get,
               help="slerp moves the code's direction along a great circle and its length linearly. It assumes a "
                    "Gaussian prior: in many dimensions typical prior codes lie in a shell, and a straight line between "
                    "two of them dips inside it. In 2-D there is no such shell; for an AE it is just another path.")
if pair is None:
    st.stop()
x, end_labels, end_names = pair
rows, strip_rows, strip = panels.interpolation(refs, x, steps, how, classes=split.classes, end_labels=end_labels,
                                               end_names=(f"start: {end_names[0]}", f"end: {end_names[1]}"))
panels.distance_chart(rows, key="interp_distance")
panels.contrast_sentence(rows, steps, how)
if strip is not None:
    d1, d2 = st.columns(2)
    originals = latent.pictures(x)
    d1.download_button("Download the strip (PNG)", strips.png_bytes(strip), "interpolation.png", "image/png",
                       key="interp_png", width="stretch")
    d2.download_button("Download the animation (GIF)", strips.interpolation_gif(strip_rows, (originals[0], originals[1])),
                       "interpolation.gif", "image/gif", key="interp_gif", width="stretch")
st.markdown("**Scrub along the path** · decoded in your browser")
scrub_panel(refs, [r.report.codes for r in rows], how, steps)
st.subheader("The path on the latent map")
for col, row in zip(st.columns(len(rows)), rows):
    with col:
        st.markdown(f"**{row.ref.label}**")
        st.plotly_chart(path_map(row.ref, row.report.codes), key=f"interp_map::{row.ref.key}")
