"""Latent map: the encoded test set as a scatter, coloured by label, AE and VAE side by side.

Below the maps, a live pad lies over one model's map: drag anywhere, the gaps between clusters
included, and the decoder (running in the browser) shows the image under the finger at once.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from vaeviz import latent
from vaeviz.figures import maps
from vaeviz.ui import urlstate, views
from vaeviz.ui.cache import ModelRef, Pending, encoded, get_model, map_view
from vaeviz.ui.live import PadFrame, Released, browser_decoder, live_key, live_pad
from vaeviz.ui.sidebar import require_model

METHODS = {"pca": "PCA", "raw": "Raw coordinates", "tsne": "t-SNE"}
NEIGHBOURS = 8  # test images shown nearest to where the pad was let go


def show_selection(ref: ModelRef, event, mu: np.ndarray, images) -> None:
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else \
        getattr(getattr(event, "selection", None), "points", [])
    if not points:
        st.caption("Click a point (or drag a box) to see its image and decoding here.")
        return
    idx = int(points[0]["customdata"] if isinstance(points[0], dict) else points[0].customdata)
    model = get_model(ref)
    recon = latent.decode(model, mu[idx][None])[0]
    c1, c2 = st.columns(2)
    c1.image(views.as_picture(latent.pictures(images[idx : idx + 1])[0], 8), caption=f"test image #{idx}",
             width="stretch")
    c2.image(views.as_picture(recon, 8), caption="decoded from its (mean) code", width="stretch")


def pad_frame(ref: ModelRef, mu: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], method: str,
              comps: tuple[int, int], dataset: str) -> tuple[PadFrame, np.ndarray, str]:
    """The live pad's frame over this model's map, the code it starts at, and a note on the axes.

    Raw 2-D codes are their own map. PCA maps invert: moving the pad moves the code along the two
    principal directions and keeps its other coordinates. t-SNE has no inverse, so its pad uses PCA.
    """
    dim = mu.shape[1]
    note = ""
    if method == "tsne":
        method, comps = ("raw" if dim <= 2 else "pca"), (0, 1)
        note = ("t-SNE has no way back from the plane to codes, so the pad lies over the "
                + ("raw coordinates." if dim <= 2 else "PCA map (PC1, PC2)."))
    view = map_view(ref, mu, dataset, method, comps)
    (x0, x1), (y0, y1) = maps.padded_ranges(view.coords)
    caption = (f"{view.axis_titles[0]} across, {view.axis_titles[1]} up; the other coordinates stay at those of "
               "the mean code" if view.method == "pca" else "")
    frame = PadFrame(view.origin, view.directions, (x0, x1, y0, y1), view.axis_titles, view.coords, labels, classes,
                     caption=caption)
    return frame, (view.origin if view.method == "pca" else mu.mean(0)), note


def _let_go(model_key: str, pad_key: str, released: Released) -> None:
    # One release kept per model (named with its key, so forgetting the model clears it too).
    st.session_state[f"received::{model_key}"] = (pad_key, released)


@st.fragment
def live_map_panel(refs: list[ModelRef], method: str, comps: tuple[int, int], n_points: int) -> None:
    """A pad over one model's map, decoded in the browser; where it is let go, the nearest test images."""
    ref = refs[0]
    if len(refs) > 1:
        by_key = {r.key: r for r in refs}
        ref = by_key[st.segmented_control("Model under the pad", list(by_key), default=refs[0].key,
                                          format_func=lambda k: by_key[k].label,
                                          key="map_live_model::" + "|".join(sorted(by_key)))
                     or refs[0].key]
    if method == "pca" and comps[0] == comps[1] and ref.latent_dim > 1:
        st.info("Pick two different principal directions to drag over.")
        return
    live, reason = browser_decoder(ref)
    if live is None:
        st.info(f"The live pad is not available for {ref.label}: {reason}. Click points on the maps above instead.")
        return
    try:
        mu, _, split, used, _ = encoded(ref, n_points)
    except ValueError as exc:
        st.info(f"No map to drag over for {ref.label}: {exc}")
        return
    labels = split.labels[: len(mu)].numpy()
    frame, start, note = pad_frame(ref, mu, labels, split.classes, method, comps, used)
    # One pad per model and axes. _let_go runs in the callback phase: a release is here on the run it causes.
    key = live_key("map", ref.key, method, str(comps))
    kept_key, released = st.session_state.get(f"received::{ref.key}", (None, None))
    released = released if kept_key == key else None
    live_pad(live, released.z if released is not None else start, frame, note=note, pad_px=460, image_px=280,
             key=key, on_release=partial(_let_go, ref.key, key))
    with st.container(key="map_live_received"):
        if released is None:
            st.caption("Let go anywhere on the pad: Python receives the code and shows the test images nearest to it.")
            return
        where = f"({released.xy[0]:.2f}, {released.xy[1]:.2f})" if released.xy else ""
        st.caption(f"Python received the code at {where} on the map. The test images whose codes are nearest to it "
                   "(far ones mean you let go in a gap the data never reached):")
        idx = latent.nearest(mu, released.z, NEIGHBOURS)
        dist = np.linalg.norm(mu[idx] - released.z[None], axis=1)
        views.image_row(latent.pictures(split.images[idx]), [f"{split.classes[int(labels[i])]} · {d:.2f}"
                                                                    for i, d in zip(idx, dist)])


@st.fragment(run_every=1.0)
def tsne_progress(pending: list) -> None:
    """While a t-SNE runs (once per server, whoever asked first), its progress; the page redraws when done."""
    for ref, task in pending:
        if task.done.is_set():
            continue
        st.progress(task.fraction, text=f"t-SNE of {int(task.size):,} codes of {ref.label}: {task.elapsed_s:.0f} s"
                    + (f" of about {task.estimate_s:.0f} s" if task.estimate_s else "")
                    + ". It runs once for every session of this server; the other maps stay usable.")
    if all(task.done.is_set() for _, task in pending):
        st.rerun()


st.title("Latent map")
sel = require_model()
refs = sel.refs()
dims = [get_model(r).cfg.latent_dim for r in refs]
methods = (["raw"] if max(dims) <= 2 else []) + ["pca", "tsne"]
n_pc = min(dims)
for key, value in (("map_n", 2000), ("map_method", methods[0]), ("map_pcx", 0), ("map_pcy", min(1, n_pc - 1)),
                   ("map_shared", False), ("map_exemplars", True)):
    st.session_state.setdefault(key, value)
urlstate.note(urlstate.bind(
    "latent_map",
    urlstate.state("n", "map_n", urlstate.choice([500, 1000, 2000, 5000], str)),
    urlstate.state("method", "map_method", urlstate.choice(methods)),
    urlstate.state("pcx", "map_pcx", urlstate.whole(0, n_pc - 1)),
    urlstate.state("pcy", "map_pcy", urlstate.whole(0, n_pc - 1)),
    urlstate.state("same", "map_shared", urlstate.flag, lambda v: "1" if v else "0"),
    urlstate.state("exemplars", "map_exemplars", urlstate.flag, lambda v: "1" if v else "0"),
))
if st.session_state["map_method"] not in methods:  # a 2-D model's "raw" kept when a 16-D one is chosen
    st.session_state["map_method"] = "pca"
controls = st.columns([1.2, 1, 1, 1, 1])
n_points = controls[0].select_slider("Test images on the map", [500, 1000, 2000, 5000], key="map_n")
method = controls[1].radio("Coordinates", methods, format_func=METHODS.get, key="map_method",
                           help="Latents above 2-D are projected: PCA (linear, with explained variance on the "
                                "axes) or t-SNE (non-linear; keeps neighbours, not distances).")
pcx = controls[2].selectbox("Horizontal", range(n_pc), format_func=lambda i: f"PC{i + 1}", key="map_pcx",
                            disabled=method != "pca")
pcy = controls[3].selectbox("Vertical", range(n_pc), format_func=lambda i: f"PC{i + 1}", key="map_pcy",
                            disabled=method != "pca")
shared = controls[4].toggle("Same axes", key="map_shared",
                            help="Use the same axis ranges for both maps, to compare how far the codes spread.")
exemplars_on = controls[4].toggle("Exemplars", key="map_exemplars", help="One image per class on the map.")

data, pending = [], []
for ref in refs:
    try:
        mu, logvar, split, used, note = encoded(ref, n_points)
        view = map_view(ref, mu, used, method, (pcx, pcy))
    except Pending as wait:
        pending.append((ref, wait.task))
        continue
    except ValueError as exc:
        st.error(f"{ref.label}: {exc}")
        continue
    if note:
        st.info(note)
    data.append((ref, mu, split, used, view))
if pending:
    tsne_progress(pending)

ranges = maps.padded_ranges(*[d[4].coords for d in data]) if shared and data else None
cols = st.columns(len(data)) if data else []
for col, (ref, mu, split, used, view) in zip(cols, data):
    labels = split.labels[: len(mu)].numpy()
    subtitle = "mean codes μ(x)" if get_model(ref).probabilistic else "codes z(x)"
    fig, _ = views.model_map(ref, mu, labels, split.classes, used, method=method, dims=(pcx, pcy), height=560,
                             marker_size=4, ranges=ranges, title=f"{ref.label} · {subtitle}",
                             exemplar_images=latent.pictures(split.images[: len(mu)]) if exemplars_on else None)
    with col:
        event = st.plotly_chart(fig, key=f"map::{ref.key}::{method}", on_select="rerun",
                                selection_mode=("points", "box", "lasso"), config={"scrollZoom": True})
        show_selection(ref, event, mu, split.images)

if data:
    st.subheader("Drag over the map")
    st.caption("The decoder runs in your browser: drag anywhere on the map, the empty space between clusters "
               "included, and the image follows your finger.")
    live_map_panel([sel.model] + [r for r in refs if r.key != sel.model.key], method, (pcx, pcy), n_points)
