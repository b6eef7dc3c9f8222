"""Draw and encode: draw or upload a digit, see it as the models see it, their reconstructions,
where its code lands on the latent map (a VAE's posterior with its 2σ ellipse), and its nearest
test images in latent space."""

from __future__ import annotations

import numpy as np
import streamlit as st

from vaeviz import latent
from vaeviz.figures import maps
from vaeviz.ui import views
from vaeviz.ui.cache import ModelRef, encoded, get_model
from vaeviz.ui.inputs import digit_input
from vaeviz.ui.sidebar import require_model

NEIGHBOURS = 6  # one row beside each map


def code_map(ref: ModelRef, mu_test: np.ndarray, labels, classes, dataset: str, code: np.ndarray,
             logvar: np.ndarray | None):
    """The latent map with the drawing's code marked (and the VAE's 2σ ellipse)."""
    fig, view = views.model_map(ref, mu_test, labels, classes, dataset, height=440)
    point = view.project(code)[0]
    ellipse = point + latent.ellipse_offsets(logvar, view.directions) if logvar is not None else None
    maps.fit_ranges(fig, view.coords, point[None], *([ellipse] if ellipse is not None else []))
    return maps.add_point(fig, point, name="your digit", ellipse=ellipse)


st.title("Draw and encode")
sel = require_model()
refs = sel.refs()

left, right = st.columns([1, 2], gap="large")
with left:
    st.markdown("Draw a digit, or upload a photo or scan of one.")
    x = digit_input("draw")
    if x is not None:
        st.image(latent.to_uint8(latent.enlarge(x[0].numpy(), 8)), width=224,
                 caption="as the models see it: cropped, fitted in 20×20, centred by mass in 28×28")
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
        col.image(latent.to_uint8(latent.enlarge(recon, 8)), width=224, caption="reconstruction")
        if logvar is not None:
            col.caption(f"posterior σ: {np.exp(0.5 * logvar[0]).mean():.2f} on average over {len(mu[0])} dimensions")

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
        st.markdown(f"**{ref.label}**" + (" · dashed: 2σ of q(z|x), projected" if logvar is not None else ""))
        st.plotly_chart(code_map(ref, mu_test, labels, split.classes, used, code, logvar), key=f"draw_map::{ref.key}")
        idx = latent.nearest(mu_test, code, NEIGHBOURS)
        st.caption(f"Nearest test images in latent space ({'mean codes' if logvar is not None else 'codes'}):")
        views.image_row(latent.pictures(split.images[idx]), [split.classes[int(labels[i])] for i in idx], width=72)
