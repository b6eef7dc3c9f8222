"""Draw and encode: draw or upload a digit (or upload a picture, for models of other pictures), see it as
the models see it, their reconstructions,
where its code lands on the latent map (a VAE's posterior with its 2σ ellipse), and its nearest
test images in latent space."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from vaeviz import latent
from vaeviz.metrics import unit_activity
from vaeviz.figures import maps
from vaeviz.inference import supports
from vaeviz.ui import panels, views
from vaeviz.ui.cache import ModelRef, encoded, get_model
from vaeviz.ui.inputs import picture_input
from vaeviz.ui.sidebar import require_model

NEIGHBOURS = 6  # one row beside each map


def code_map(ref: ModelRef, mu_test: np.ndarray, labels, classes, dataset: str, code: np.ndarray,
             logvar: np.ndarray | None):
    """The latent map with the drawing's code marked (and the VAE's 2σ ellipse); and a note on the
    ellipse's size when it would hide under the marker."""
    fig, view = views.model_map(ref, mu_test, labels, classes, dataset, height=440)
    point = view.project(code)[0]
    ellipse, note = None, ""
    if logvar is not None:
        ellipse = point + latent.ellipse_offsets(logvar, view.directions)
        sigma = np.sqrt(np.diag(view.directions @ np.diag(np.exp(logvar)) @ view.directions.T))  # along each axis
        span = np.ptp(view.coords, axis=0)
        if (2 * sigma < 0.02 * span).all():  # under about a marker's width: say what it is instead
            note = (f"The 2σ ellipse is smaller than the marker: σ = {sigma[0]:.3f} across and {sigma[1]:.3f} up, "
                    "in this map's units.")
    maps.fit_ranges(fig, view.coords, point[None], *([ellipse] if ellipse is not None else []))
    return maps.add_point(fig, point, name="your digit", ellipse=ellipse), note


st.title("Draw and encode")
sel = require_model()
refs = sel.refs()

shapes = {get_model(r).cfg.image_shape for r in refs}
shape = next(iter(shapes))
if len(shapes) > 1 or shape[1] < 8:
    st.info("Draw and encode needs the models to take pictures of one shape; "
            + (f"{refs[0].label} takes points, not pictures." if shape[1] < 8 else
               "these two take different ones: compare models of the same data."))
    st.stop()
digits = shape == (1, 28, 28)
left, right = st.columns([1, 2], gap="large")
with left:
    st.markdown("Draw a digit, or upload a photo or scan of one." if digits else
                f"Upload a picture: it is cropped to its centre square and resized to {shape[1]}×{shape[2]}, as "
                "the model's training pictures were. (Drawing is for models of 28×28 grey digits.)")
    x = picture_input("draw", shape)
    scale = max(1, 224 // shape[1])
    if x is not None:
        st.image(views.as_picture(latent.pictures(x[None])[0], scale), width=224,
                 caption="as the models see it: " + ("cropped, fitted in 20×20, centred by mass in 28×28" if digits
                                                     else f"{shape[1]}×{shape[2]}"))
        level = st.slider("Add noise (σ)", 0.0, 0.8, 0.0, 0.05, key="draw_noise",
                          help="Gaussian noise on every pixel, clipped to [0, 1]: noisy in, and what comes out? "
                               "A denoising AE was trained for this.")
        if level > 0:
            from vaeviz.models.autoencoders import corrupt

            x = corrupt(x, "gaussian", level, torch.Generator().manual_seed(0))
            st.image(views.as_picture(latent.pictures(x[None])[0], scale), width=224,
                     caption=f"with noise σ = {level:g}: what the models get")
if x is None:
    st.stop()

with right:
    cols = st.columns(len(refs))
    results = []
    for col, ref in zip(cols, refs):
        model = get_model(ref)
        mu, logvar = latent.encode(model, x[None])
        recon = latent.decode(model, mu)[0]
        results.append((ref, model, mu[0], None if logvar is None else logvar[0]))
        col.markdown(f"**{model.kind.upper()}** · {ref.label}")
        col.image(views.as_picture(recon, scale), width=224, caption="reconstruction")
        if logvar is not None:
            active = unit_activity(encoded(ref)[0]) > 0.01
            sigma = np.exp(0.5 * logvar[0])
            col.caption(f"posterior σ: median {np.median(sigma[active]):.2f} over the {active.sum()} active units "
                        f"(the {len(sigma) - active.sum()} collapsed ones sit at the prior's σ ≈ 1)" if active.any() else
                        f"posterior σ: median {np.median(sigma):.2f} (no unit is active)")

st.subheader("Where it lands")
cols = st.columns(len(results))
for col, (ref, model, code, logvar) in zip(cols, results):
    try:
        mu_test, _, split, used, note = encoded(ref, 5000)
    except ValueError as exc:
        col.error(str(exc))
        continue
    labels = split.labels[: len(mu_test)].numpy()
    with col:
        if note:
            st.info(note)
        st.markdown(f"**{ref.label}**" + (" · dashed: the 2σ ellipse of q(z|x) in this plane, which holds 86 % of "
                                          "its mass there (1 − e⁻²)" if logvar is not None else ""))
        fig, note = code_map(ref, mu_test, labels, split.classes, used, code, logvar)
        st.plotly_chart(fig, key=f"draw_map::{ref.key}")
        if note:
            st.caption(note)
        idx = latent.nearest(mu_test, code, NEIGHBOURS)
        st.caption(f"Nearest test images in latent space ({'mean codes' if logvar is not None else 'codes'}):")
        views.image_row(latent.pictures(split.images[idx]), [split.classes[int(labels[i])] for i in idx], width=72)

vaes = [r for r in refs if supports(get_model(r))]
if vaes:
    st.subheader("The encoder's answer, and the best answer for this image alone")
    st.caption("A VAE's encoder is amortized inference: one network gives every image's q(z|x). Variational EM "
               "instead fits each image's q(z) by itself (its E-step). Fit it for your digit and compare.")
    for ref in vaes:
        if st.toggle(f"Fit its own q(z) with {ref.label}", key=f"draw_fit::{ref.key}"):
            panels.amortization(ref, x[0] if x.ndim == 4 else x, key=f"draw_gap::{ref.key}")
