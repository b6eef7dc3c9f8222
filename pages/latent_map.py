"""Latent map: the encoded test set as a scatter, coloured by label, AE and VAE side by side."""

from __future__ import annotations

import numpy as np
import streamlit as st

from vaeviz import latent, plots
from vaeviz.ui.models import ModelRef, encoded, get_model, projection, tsne_coords
from vaeviz.ui.sidebar import selected

METHODS = {"pca": "PCA", "raw": "Raw coordinates", "tsne": "t-SNE"}


def map_coords(ref: ModelRef, mu: np.ndarray, method: str, comps: tuple[int, int], n: int, dataset: str):
    """(coords (N, 2), axis titles) of codes under the chosen method."""
    dim = mu.shape[1]
    if method == "raw" or dim == 1:
        if dim == 1:
            return np.stack([mu[:, 0], np.zeros(len(mu))], 1), ("z1", "")
        return mu[:, :2], ("z1", "z2")
    if method == "tsne":
        return tsne_coords(ref.key, dataset, n, mu), ("t-SNE 1", "t-SNE 2")
    proj = projection(ref.key, dataset, n, mu)
    coords = proj.transform(mu)
    ratio = proj.explained_variance_ratio
    a, b = comps
    return coords[:, [a, b]], (f"PC{a + 1} ({ratio[a]:.1%} of variance)", f"PC{b + 1} ({ratio[b]:.1%})")


def typical_members(coords: np.ndarray, labels: np.ndarray, n_classes: int) -> list[int]:
    """For each class, the member nearest the class's median position: where the class sits on the map."""
    found = []
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        if len(members):
            centre = np.median(coords[members], axis=0)
            found.append(int(members[np.argmin(((coords[members] - centre) ** 2).sum(1))]))
    return found


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
    c1.image(latent.to_uint8(latent.enlarge(images[idx, 0].numpy(), 8)), caption=f"test image #{idx}",
             width="stretch")
    c2.image(latent.to_uint8(latent.enlarge(recon, 8)), caption="decoded from its (mean) code",
             width="stretch")


st.title("Latent map")
sel = selected()
if sel.model is None:
    st.info("No model selected: pick one in the sidebar.")
    st.stop()
refs = [r for r in sel.pair() if r is not None]

controls = st.columns([1.2, 1, 1, 1, 1])
n_points = controls[0].select_slider("Test images on the map", [500, 1000, 2000, 5000], 2000, key="map_n")
dims = [get_model(r).cfg.latent_dim for r in refs]
methods = (["raw"] if max(dims) <= 2 else []) + ["pca", "tsne"]
method = controls[1].radio("Coordinates", methods, format_func=METHODS.get, key="map_method",
                           help="Latents above 2-D are projected: PCA (linear, with explained variance on the "
                                "axes) or t-SNE (non-linear; keeps neighbours, not distances).")
n_pc = min(dims)
pcx = controls[2].selectbox("Horizontal", range(n_pc), 0, format_func=lambda i: f"PC{i + 1}", key="map_pcx",
                            disabled=method != "pca")
pcy = controls[3].selectbox("Vertical", range(n_pc), min(1, n_pc - 1), format_func=lambda i: f"PC{i + 1}",
                            key="map_pcy", disabled=method != "pca")
shared = controls[4].toggle("Same axes", value=method == "raw", key="map_shared",
                            help="Use the same axis ranges for both maps, to compare how far the codes spread.")
exemplars_on = controls[4].toggle("Exemplars", value=True, key="map_exemplars", help="One image per class on the map.")

data = []
for ref in refs:
    try:
        mu, logvar, split, used, note = encoded(ref, n_points)
    except ValueError as exc:
        st.error(f"{ref.label}: {exc}")
        continue
    if note:
        st.info(note)
    coords, titles = map_coords(ref, mu, method, (pcx, pcy), len(mu), used)
    data.append((ref, mu, split, coords, titles))

ranges = plots.padded_ranges(*[d[3] for d in data]) if shared and data else None
cols = st.columns(len(data)) if data else []
for col, (ref, mu, split, coords, titles) in zip(cols, data):
    labels = split.labels[: len(mu)].numpy()
    ex = []
    if exemplars_on:
        for i in typical_members(coords, labels, len(split.classes)):
            ex.append((coords[i, 0], coords[i, 1], split.images[i, 0].numpy()))
    kind = get_model(ref).kind
    subtitle = "mean codes μ(x)" if kind == "vae" else "codes z(x)"
    fig = plots.latent_scatter(coords, labels, split.classes, title=f"{ref.label} · {subtitle}",
                               axis_titles=titles, exemplars=ex, ranges=ranges)
    with col:
        event = st.plotly_chart(fig, key=f"map::{ref.key}::{method}", on_select="rerun",
                                selection_mode=("points", "box", "lasso"), config={"scrollZoom": True})
        show_selection(ref, event, mu, split.images)
