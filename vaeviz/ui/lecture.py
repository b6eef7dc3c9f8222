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


def ppca_step(refs: list[ModelRef]) -> None:
    ppca, vae = refs
    model = get_model(ppca)
    m = model.meta.metrics
    x, _ = _exemplars(ppca, 1)
    s2 = float(model.noise_variance)
    st.markdown(
        "Give PCA a probabilistic story: **z ~ N(0, I)**, **x = Wz + μ + noise**, noise ~ N(0, σ²I). This is "
        "probabilistic PCA; its maximum-likelihood fit is closed form (W from the principal directions, σ² the "
        f"mean variance PCA discards: here {s2:.4f}), and its posterior p(z|x) is **exact**, a Gaussian whose σ is "
        "the same for every image. So its ELBO is log p(x) itself: on the test set −ELBO "
        f"{m.neg_elbo:.1f} and the exact −log p(x) {m.extra.get('nll', float('nan')):.1f} nats per image (a Gaussian "
        "density of pixels, so negative). A VAE replaces W by a network, and the exact posterior by an encoder's guess.")
    panels.posterior(ppca, x[0], key="lecture_ppca")


@st.cache_data(max_entries=8, show_spinner="Fitting the posteriors of 20 test images (the E-step) ...")
def _mean_gap(key: str, _model, _images) -> tuple[float, float]:
    from ..inference import optimize_posterior

    fit = optimize_posterior(_model, _images, 200)
    return float(fit.gap.mean()), float(fit.gap.max())


def amortization_step(refs: list[ModelRef]) -> None:
    vae, ppca = refs
    _, _, split, _, _ = encoded(vae)
    gap, most = _mean_gap(vae.key, get_model(vae), split.images[:20])
    ppca_gap, _ = _mean_gap(ppca.key, get_model(ppca), encoded(ppca)[2].images[:20])
    st.markdown(
        "Variational EM fits each image's q(z) by itself (the E-step), then the decoder (the M-step). A VAE's "
        "encoder does the E-step for all images at once: *amortized* inference, fast but not the best for each. "
        f"Fitting each image's own q(z) from the encoder's answer, with the decoder fixed, gains {gap:.2f} nats of "
        f"ELBO per image on 20 test images (at most {most:.2f}): the **amortization gap**. For probabilistic PCA, "
        f"whose encoder is the exact posterior, it is {ppca_gap:.2f}.")
    panels.amortization(vae, split.images[_test_image("lecture_gap_image", len(split.images))], key="lecture_gap")


def _test_image(key: str, n: int) -> int:
    """A test image's number, chosen in a narrow box (0 at first)."""
    st.session_state.setdefault(key, 0)
    return int(st.columns([1, 3])[0].number_input("Test image #", 0, n - 1, key=key))


def denoising_step(refs: list[ModelRef]) -> None:
    ae, dae = refs
    noise = get_model(dae).cfg.noise
    st.markdown(
        f"A **denoising** autoencoder is trained on images with noise added (here σ = {noise:g}) and asked for the "
        "clean ones, so it has to know what digits look like rather than copy pixels. Below, the same noisy "
        "images through a plain AE and the denoising one, each scored against the clean images.")
    st.session_state.setdefault("lecture_denoise_noise", float(noise))
    panels.reconstructions([ae, dae], key="lecture_denoise")


def sparse_step(refs: list[ModelRef]) -> None:
    (sae,) = refs
    model = get_model(sae)
    m = model.meta.metrics
    _, _, split, _, _ = encoded(sae)
    st.markdown(
        f"A **sparse** autoencoder gets a wide code ({model.cfg.latent_dim} numbers) made non-negative by a ReLU and "
        f"an L1 penalty λ·Σz (λ = {model.cfg.sparsity:g}), so each image is built from a few parts: on the test set "
        f"{m.extra.get('active_codes', float('nan')):.1f} codes fire per image, with BCE {m.bce_per_pixel:.3f} per pixel. "
        "(The penalty alone could be dodged by shrinking every code and growing the decoder's weights; the count "
        "of codes that fire does not change with that scale, so it is the measure to trust.)")
    panels.sparse_codes(sae, split.images[_test_image("lecture_sparse_image", len(split.images))], key="lecture_sparse")


@st.cache_data(max_entries=16, show_spinner=False)
def _sensitivity(key: str, _model, _images) -> float:
    from ..metrics import code_sensitivity

    return code_sensitivity(_model, _images)


def contractive_step(refs: list[ModelRef]) -> None:
    ae, cae = refs
    images = encoded(ae)[2].images[:1000]
    rows = []
    for ref in refs:
        m = get_model(ref).meta.metrics
        j2 = m.extra.get("jacobian_frobenius")
        if j2 is None:
            from ..models.autoencoders import jacobian_frobenius

            with torch.enable_grad():
                j2 = float(jacobian_frobenius(get_model(ref), images[:500]).mean())
        rows.append({"model": ref.name, "‖∂z/∂x‖²_F": f"{j2:,.0f}", "code moved by σ = 0.05 noise (relative)":
                     f"{_sensitivity(ref.key, get_model(ref), images):.4f}", "BCE per pixel": f"{m.bce_per_pixel:.3f}"})
    st.markdown(
        "A **contractive** autoencoder adds λ‖∂z/∂x‖²_F to its loss: the code should change little when the image "
        "changes a little, except along the data. The Jacobian's norm can also shrink by scaling the whole code down "
        "(the decoder scales back up), so the second column measures it without the scale: how far small noise "
        "moves a code, compared with how far apart different images' codes are.")
    st.dataframe(rows, hide_index=True, key="lecture_contractive")
    panels.reconstructions([ae, cae], key="lecture_contract", n=8)


def hierarchical_step(refs: list[ModelRef]) -> None:
    (hvae,) = refs
    model = get_model(hvae)
    m = model.meta.metrics
    x, _ = _exemplars(hvae, 10)
    st.markdown(
        "A **hierarchical** VAE has two layers of latent variables: p(z2) p(z1|z2) p(x|z1). Here z2 has "
        f"{model.cfg.latent_dim} dimensions and z1 {model.cfg.bottom_dim}; −ELBO {m.neg_elbo:.1f} nats per test image, "
        f"of which KL {m.extra.get('kl2', float('nan')):.1f} for the top layer and {m.extra.get('kl1', float('nan')):.1f} "
        f"for the lower one; {m.active_units} top and {m.extra.get('active_units_bottom', '?')} lower units active. "
        "Fix the top code of a test image and draw the lower layer: what varies is left to z1.")
    c = st.columns([1, 3])
    pick = c[0].selectbox("Top code of", range(10), key="lecture_hvae_digit", format_func=lambda d: f"a test {d}")
    z2 = latent.encode(model, x[pick : pick + 1])[0][0]
    with c[1]:
        views.image_row([latent.pictures(x[pick : pick + 1])[0], latent.decode(model, z2[None])[0]],
                        ["the test image", "decoded from its z2"], width=present.scale(96))
    panels.bottom_layer(hvae, z2, key="lecture_hvae", n=10)


def circle_step(refs: list[ModelRef]) -> None:
    (circle,) = refs
    st.markdown(
        "The notes' toy: 2-D points near a circle, and a VAE with a 1-D code. Its decoder draws one curve x̂(z) "
        "through the plane, the prior spreading z along it; the encoder gives each point a stretch of that curve.")
    st.session_state.setdefault("lecture_circle_z", 0.0)
    z = st.slider("z", -3.0, 3.0, step=0.05, key="lecture_circle_z")
    panels.point_model(circle, np.array([z], np.float32), key="lecture_circle")


def compare_step(refs: list[ModelRef]) -> None:
    from .cache import known_models

    shipped_refs = [r for r in known_models() if r.source == "shipped" and r.dataset == "mnist"]
    st.markdown("Any two models side by side: their test metrics (each kind's own too) and the same test images "
                "through both.")
    names = {r.key: r.label for r in shipped_refs}
    keys = list(names)
    st.session_state.setdefault("zoo_compare_a", next((r.key for r in shipped_refs if r.name == "mnist-ae-mlp-16"), keys[0]))
    st.session_state.setdefault("zoo_compare_b", next((r.key for r in shipped_refs if r.name == "mnist-vae-mlp-16"), keys[-1]))
    panels.compare(shipped_refs, None)


STEPS = [
    Step("pca", "PCA is the linear autoencoder", ("mnist-pca-2", "mnist-pca-16"), pca_step),
    Step("ppca", "Probabilistic PCA: a posterior in closed form", ("mnist-ppca-16", "mnist-vae-mlp-16"), ppca_step),
    Step("autoencoder", "An autoencoder learns a better code, with gaps",
         ("mnist-pca-16", "mnist-ae-mlp-16", "mnist-ae-mlp-2", "mnist-vae-mlp-2"), ae_step),
    Step("prior", "Sampling from the prior: AE beside VAE", ("mnist-ae-mlp-2", "mnist-vae-mlp-2"), prior_step),
    Step("posterior", "The VAE encodes a distribution", ("mnist-vae-mlp-16",), posterior_step),
    Step("amortization", "Amortized inference and its gap", ("mnist-vae-mlp-16", "mnist-ppca-16"), amortization_step),
    Step("beta", "β: how hard the prior pulls",
         ("mnist-vae-mlp-16-beta0", "mnist-vae-mlp-16", "mnist-vae-mlp-16-beta10"), beta_step),
    Step("interpolation", "Interpolation, measured", ("mnist-ae-mlp-2", "mnist-vae-mlp-2"), interpolation_step),
    Step("grid", "The latent grid", ("mnist-ae-mlp-16", "mnist-vae-mlp-16"), grid_step),
    Step("rate-distortion", "Rate and distortion",
         ("mnist-vae-mlp-16-beta0", "mnist-vae-mlp-16-beta0p1", "mnist-vae-mlp-16", "mnist-vae-mlp-16-beta4",
          "mnist-vae-mlp-16-beta10"), rate_step),
    Step("histograms", "Codes against the prior", ("mnist-ae-mlp-16", "mnist-vae-mlp-16"), histogram_step),
    Step("probe", "Which code is more useful?", ("mnist-pca-16", "mnist-ae-mlp-16", "mnist-vae-mlp-16"), probe_step),
    Step("denoising", "A denoising autoencoder", ("mnist-ae-mlp-16", "mnist-dae-mlp-16"), denoising_step),
    Step("sparse", "A sparse autoencoder: codes as parts", ("mnist-sae-mlp-64",), sparse_step),
    Step("contractive", "A contractive autoencoder", ("mnist-ae-mlp-16", "mnist-cae-mlp-16"), contractive_step),
    Step("hierarchical", "A hierarchical VAE", ("mnist-hvae-mlp-16",), hierarchical_step),
    Step("circle", "Points on a circle, a 1-D code", ("circle-vae-mlp-1",), circle_step),
    Step("compare", "Any two models side by side", ("mnist-ae-mlp-16", "mnist-vae-mlp-16"), compare_step),
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
