"""The Lecture: the story of the lecture notes in steps, each a sentence or two over a live view of
the shipped models. Every number a step's text quotes is read from the models or measured here, at
the moment the step is shown; nothing is a screenshot.

A step is a `Step`: a slug (its URL, `?step=<slug>`), a title, the shipped models it needs, and a
function that draws it. `pages/lecture.py` shows one step at a time with Previous and Next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import streamlit as st
import torch

from .. import latent
from ..data import class_exemplars
from ..figures import images as image_figures
from ..figures import strips, training
from ..metrics import unit_activity
from . import panels, present, views
from ..contrast import telling_pair
from .cache import ModelRef, data_cloud, encoded, get_model, map_view, shipped


@dataclass(frozen=True)
class Step:
    slug: str
    title: str
    needs: tuple[str, ...]  # shipped checkpoints, by name
    show: Callable[[list[ModelRef]], None]


def _exemplars(ref: ModelRef, n: int = 10) -> tuple[torch.Tensor, list[int]]:
    """One test image per class (the first of each), as the models see them."""
    _, _, split, _, _ = encoded(ref)
    idx = class_exemplars(split.labels, len(split.classes))[:n]
    return split.images[idx], idx


def _reconstructions(refs: list[ModelRef], x: torch.Tensor) -> list[tuple[str, np.ndarray]]:
    rows = [("the test images", latent.pictures(x))]
    for ref in refs:
        model = get_model(ref)
        m = model.meta.metrics
        rows.append((f"{ref.name}\nBCE {m.bce_per_pixel:.3f} per pixel", latent.decode(model, latent.encode(model, x)[0])))
    return rows


def _gallery(rows, scale: int = 3) -> None:
    st.image(strips.gallery(rows, scale=scale, label_width=230), width="stretch")


# --- the steps -----------------------------------------------------------------------------------


def pca_step(refs: list[ModelRef]) -> None:
    pca2, pca16 = refs
    x, _ = _exemplars(pca16)
    split = encoded(pca16)[2]
    total = float(split.images.flatten(1).var(0).sum())  # the test images' variance, summed over pixels
    kept = [float(encoded(r)[0].var(0).sum()) / total for r in refs]  # the share their codes keep
    st.markdown(
        "PCA encodes an image by its coordinates along the D directions in which the training images vary most, "
        "**z = Wᵀ(x − μ)**, and decodes with **x̂ = μ + Wz**. It is the best *linear* autoencoder in squared error, and "
        f"it is fitted in closed form. Here 2 directions keep **{kept[0]:.0%}** of the test images' pixel variance, "
        f"16 keep **{kept[1]:.0%}**.")
    _gallery(_reconstructions([pca2, pca16], x))


def ae_step(refs: list[ModelRef]) -> None:
    pca16, ae16, ae2, vae2 = refs
    x, _ = _exemplars(ae16)
    bce = [get_model(r).meta.metrics.bce_per_pixel for r in (pca16, ae16)]
    st.markdown(
        f"With the same 16 numbers a non-linear encoder and decoder reconstruct better than PCA (BCE {bce[1]:.3f} "
        f"against {bce[0]:.3f} per pixel). But nothing in an autoencoder's training says *where* its codes should go: "
        "its 2-D map (left) has islands and empty gaps between them; the VAE's (right) is pulled into one round cloud.")
    _gallery(_reconstructions([pca16, ae16], x), scale=2)
    cols = st.columns(2)
    for col, ref in zip(cols, (ae2, vae2)):
        mu, _, split, used, _ = encoded(ref, 3000)
        fig, _ = views.model_map(ref, mu, split.labels[: len(mu)].numpy(), split.classes, used, height=present.scale(270),
                                 marker_size=3, title=f"{ref.name}: codes of 3,000 test images")
        col.plotly_chart(fig, key=f"lecture_map_{ref.name}", config={"displayModeBar": False})


def prior_step(refs: list[ModelRef]) -> None:
    st.markdown(
        "Decode codes drawn from the prior **N(0, I)**. A VAE is trained so that its codes look like such draws, so "
        "every region the prior samples from holds digits. An autoencoder's codes live at their own scale and place: "
        "the same draws land on a few of its clusters, or between them. Below each grid, an independent classifier "
        "says which digits it finds.")
    panels.prior_samples(refs, seed=st.session_state.setdefault("lecture_prior_seed", 0), n=36, width=present.scale(320))
    if st.button("New samples", key="lecture_prior_new", icon=":material/casino:"):
        st.session_state["lecture_prior_seed"] += 1
        st.rerun()


def posterior_step(refs: list[ModelRef]) -> None:
    (vae,) = refs
    _, _, split, _, _ = encoded(vae)
    st.markdown(
        "A VAE's encoder gives each image a distribution, **q(z|x) = N(μ(x), σ(x)²)**: where its code is, and how "
        "sure. Training draws **z = μ + σ ⊙ ε**, decodes it, and pays two terms: how badly the draw reconstructs "
        "the image, and how far q(z|x) is from the prior (the KL).")
    index = st.columns([1, 3])[0].number_input("Test image #", 0, len(split.images) - 1, key="lecture_image",
                                               help=f"Any of the {len(split.images):,} test images")
    panels.posterior(vae, split.images[int(index)], key="lecture_posterior")


def beta_step(refs: list[ModelRef]) -> None:
    x, _ = _exemplars(refs[0], 6)
    metas = [get_model(r).meta for r in refs]
    facts = [f"β = {m.beta:g}: KL {m.metrics.kl:.1f}, reconstruction {m.metrics.recon:.1f} nats, "
             f"{m.metrics.active_units} of {m.config.latent_dim} units active" for m in metas]
    st.markdown(
        "**β** weighs the KL term: the loss is recon + β·KL. With β = 0 nothing pulls q(z|x) towards the prior; "
        "with a large β the code may say little about the image. The same network, 16-D, trained three ways: "
        + "; ".join(facts) + ".")
    cols = st.columns(len(refs))
    for col, ref, meta in zip(cols, refs, metas):
        model = get_model(ref)
        with col:
            st.markdown(f"**β = {meta.beta:g}** · {ref.name}")
            recon = latent.decode(model, latent.encode(model, x)[0])
            st.image(views.as_picture(latent.mosaic(np.concatenate([latent.pictures(x), recon]), cols=len(x)), 2),
                     caption="test images (top), reconstructed (bottom)", width=present.scale(300))
            st.image(views.as_picture(views.prior_mosaic(ref, model, n=16), 2), caption="16 samples from the prior",
                     width=present.scale(200))


def interpolation_step(refs: list[ModelRef]) -> None:
    ae, vae = refs
    _, _, split, _, _ = encoded(vae)
    st.markdown(
        "Walk a straight line between two images' codes and decode each step: the AE's row above the VAE's, the "
        "two images at both ends, what an independent classifier sees under each frame. The chart measures how far "
        "each path is from its model's data.")
    labels = split.labels.numpy()
    st.session_state.setdefault("lecture_from", 1)
    st.session_state.setdefault("lecture_to", 7)
    c = st.columns([1, 1, 2], vertical_alignment="bottom")
    a = c[0].selectbox("From", range(10), key="lecture_from")
    b = c[1].selectbox("To", range(10), key="lecture_to")
    pick = c[2].segmented_control("Which pair", ["the first of each", "the most telling of 200"], required=True,
                                  key="lecture_pick", default="the first of each",
                                  help="The most telling: among 200 random pairs of these digits, the one where the AE's "
                                       "path strays furthest from its data compared with the VAE's.")
    i, j = int(np.flatnonzero(labels == a)[0]), int(np.flatnonzero(labels == b)[1 if a == b else 0])
    if pick != "the first of each":
        codes = tuple(encoded(r, len(labels))[0] for r in refs)
        i, j, _ = telling_pair((get_model(ae), get_model(vae)), (data_cloud(ae), data_cloud(vae)), codes, labels, a, b,
                               tries=200, steps=8)
    x = torch.stack([split.images[i], split.images[j]])
    left, right = st.columns([1.6, 1], gap="medium")
    with left:
        rows, _, _ = panels.interpolation([ae, vae], x, 8, "linear", classes=split.classes, end_labels=(a, b),
                                          end_names=(f"#{i}", f"#{j}"), width="stretch", explain=False)
    with right:
        panels.distance_chart(rows, key="lecture_distance", height=present.scale(240), explain=False)
        panels.contrast_sentence(rows, 8, "linear")


def grid_step(refs: list[ModelRef]) -> None:
    ae, vae = refs
    st.markdown(
        "Decode a grid of codes through two directions of latent space, the other coordinates held at the mean code. "
        "For the VAE, its two most active units; an AE has no units to rank, so its two principal directions. "
        "Kingma & Welling drew their manifolds this way.")
    cols = st.columns(2)
    for col, ref in zip(cols, refs):
        model = get_model(ref)
        mu = encoded(ref)[0]
        if model.probabilistic:
            dims = tuple(int(d) for d in np.argsort(-unit_activity(mu))[:2])
            view = latent.map_view(mu, "raw", dims)
            xs = ys = latent.axis_values(9, 2.0)
            base = mu.mean(0)
        else:
            view = map_view(ref, mu, "test", "pca")
            spread = float(np.percentile(np.abs(view.coords), 97))
            xs = ys = latent.axis_values(9, spread)
            base = view.lift(np.zeros((1, 2)), mu.mean(0))[0]
        codes = latent.latent_grid(base, view.directions, xs, ys)
        mosaic = latent.mosaic(latent.decode(model, codes), cols=len(xs))
        with col:
            st.markdown(f"**{model.kind.upper()}** · {ref.name} · {view.axis_titles[0]} across, {view.axis_titles[1]} up")
            st.plotly_chart(image_figures.image_grid(mosaic, xs=xs, ys=ys, axis_titles=view.axis_titles,
                                                     height=present.scale(400)), key=f"lecture_grid_{ref.name}",
                            config={"displayModeBar": False})


def rate_step(refs: list[ModelRef]) -> None:
    metas = [get_model(r).meta for r in refs]
    points = [{"beta": m.beta, "recon": m.metrics.recon, "kl": m.metrics.kl} for m in metas]
    best = min(metas, key=lambda m: m.metrics.neg_elbo)
    st.markdown(
        "Each β gives one model: a **rate** (KL, the nats its code spends on an image) and a **distortion** (the "
        "reconstruction's nats). Lower β buys detail with rate; higher β saves rate and blurs. Along a dotted line "
        "the sum, the −ELBO, is the same. β = 1 is the one that optimises the ELBO itself; "
        + (f"of these models it has the lowest −ELBO ({best.metrics.neg_elbo:.1f} nats)." if best.beta == 1 else
           f"of these models the lowest −ELBO is β = {best.beta:g}'s ({best.metrics.neg_elbo:.1f} nats)."))
    st.plotly_chart(training.rate_distortion(points, height=present.scale(420)), key="lecture_rate",
                    config={"displayModeBar": False})


def histogram_step(refs: list[ModelRef]) -> None:
    st.markdown(
        "Are the codes distributed like the prior? Each model's test codes, one dimension at a time, against the N(0, 1) "
        "density. Choosing β, as the ARENA notes suggest, is making the VAE's histograms match the prior's closely "
        "enough to sample from, without giving up the reconstructions.")
    panels.code_histograms(refs, key="lecture_histograms", dims=4)


def probe_step(refs: list[ModelRef]) -> None:
    st.markdown(
        "Which representation is more useful downstream? Train a linear classifier (logistic regression) on each "
        "model's 16 numbers per image and test it: the assignment's question, answered by measurement.")
    panels.linear_probe_panel(refs, key="lecture_probe")


STEPS = [
    Step("pca", "PCA is the linear autoencoder", ("mnist-pca-2", "mnist-pca-16"), pca_step),
    Step("autoencoder", "An autoencoder learns a better code, with gaps",
         ("mnist-pca-16", "mnist-ae-mlp-16", "mnist-ae-mlp-2", "mnist-vae-mlp-2"), ae_step),
    Step("prior", "Sampling from the prior: AE beside VAE", ("mnist-ae-mlp-2", "mnist-vae-mlp-2"), prior_step),
    Step("posterior", "The VAE encodes a distribution", ("mnist-vae-mlp-16",), posterior_step),
    Step("beta", "β: how hard the prior pulls",
         ("mnist-vae-mlp-16-beta0", "mnist-vae-mlp-16", "mnist-vae-mlp-16-beta10"), beta_step),
    Step("interpolation", "Interpolation, measured", ("mnist-ae-mlp-2", "mnist-vae-mlp-2"), interpolation_step),
    Step("grid", "The latent grid", ("mnist-ae-mlp-16", "mnist-vae-mlp-16"), grid_step),
    Step("rate-distortion", "Rate and distortion",
         ("mnist-vae-mlp-16-beta0", "mnist-vae-mlp-16-beta0p1", "mnist-vae-mlp-16", "mnist-vae-mlp-16-beta4",
          "mnist-vae-mlp-16-beta10"), rate_step),
    Step("histograms", "Codes against the prior", ("mnist-ae-mlp-16", "mnist-vae-mlp-16"), histogram_step),
    Step("probe", "Which code is more useful?", ("mnist-pca-16", "mnist-ae-mlp-16", "mnist-vae-mlp-16"), probe_step),
]
BY_SLUG = {s.slug: s for s in STEPS}


def show(step: Step) -> None:
    """Draw a step, or say which shipped models it needs and are missing."""
    refs = shipped(*step.needs)
    if refs is None:
        st.warning("This step shows the shipped models " + ", ".join(step.needs) + "; some are not in checkpoints/. "
                   "`bash checkpoints/train_all.sh` trains them.")
        return
    note = encoded(refs[0])[4]
    if note:  # no MNIST files here: the offline digits stand in, and the numbers are theirs
        st.info(note)
    step.show(refs)
