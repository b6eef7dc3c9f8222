"""Views that more than one page shows: the pages draw them with their own controls, and the
Lecture reuses them step by step. Each is widgets -> library calls -> layout, like a page.

- `interpolation`: the AE's row above the VAE's, the originals large at both ends, the judge's
  verdict under every frame, each path's distance to its data, and what 500 random pairs show;
- `prior_samples`: decoded draws from N(0, I), with the classes the judge sees among them;
- `posterior`: one image's q(z|x): mu and sigma per dimension, "Resample eps", the two loss terms;
- `code_histograms`, `linear_probe`: two views the notes ask for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from .. import latent
from ..contrast import PathReport, measure_path
from ..figures import charts, strips
from ..figures.palette import AE_COLOUR, VAE_COLOUR
from ..judge import judge
from ..metrics import linear_probe, unit_activity
from ..models import Model, kl_per_dim, recon_nll
from . import present, views
from .cache import (ModelRef, contrast_summary, data_cloud, encoded, get_model, judge_classifier, judges,
                    test_data)


# --- interpolation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    ref: ModelRef
    model: Model
    report: PathReport


def _verdict_captions(report: PathReport, classes) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    if report.label is None:
        return tuple(f"{i}" for i in range(len(report.frames))), ()
    captions = tuple(f"{classes[int(c)]} · {p:.0%}" for c, p in zip(report.label, report.confidence))
    ends = {int(report.label[0]), int(report.label[-1])}
    flagged = tuple(int(c) not in ends or p < 0.5 for c, p in zip(report.label, report.confidence))
    return captions, flagged


def interpolation(refs: list[ModelRef], x: torch.Tensor, steps: int, how: str, *, classes,
                  end_labels: tuple[int | None, int | None] = (None, None), end_names: tuple[str, str] = ("start", "end"),
                  key: str = "interp", width: int | str | None = None, explain: bool = True) -> tuple[list[Row], list[strips.StripRow], np.ndarray]:
    """Both models' paths between the two images x (2, C, H, W), measured and drawn as one labelled strip.

    Returns the rows, the strip's rows and the strip image (for the downloads)."""
    rows = []
    for ref in refs:
        model = get_model(ref)
        codes, _ = latent.encode(model, x)
        cloud = data_cloud(ref)
        classifier = judge_classifier()[0] if judges(ref) else None
        rows.append(Row(ref, model, measure_path(model, cloud, codes[0], codes[1], steps, how, classifier)))
    originals = latent.pictures(x)
    _endpoint_warnings(rows, x, classes, end_labels)
    strip_rows = []
    for row in rows:
        captions, flagged = _verdict_captions(row.report, classes)
        strip_rows.append(strips.StripRow(f"{row.model.kind.upper()} · {row.ref.label}", row.report.frames, captions, flagged))
    strip = strips.interpolation_strip(strip_rows, (originals[0], originals[1]), end_names)
    st.image(strip, width=width or ("stretch" if steps > 8 else present.scale(min(strip.shape[1], 1100))))
    judged = any(r.report.label is not None for r in rows)
    if explain:
        st.caption(("Under each frame: the digit an independent classifier (99 % right on MNIST's test set) sees "
                "in it, and how sure it is; red where it sees a class that is neither end's, or is unsure. "
                    if judged else "") + "The two originals are drawn large at both ends.")
    return rows, strip_rows, strip


def _endpoint_warnings(rows: list[Row], x: torch.Tensor, classes, end_labels) -> None:
    """Say when a model reconstructs an end as another digit: its whole row then starts from that one."""
    classifier = judge_classifier()[0]
    if classifier is None or x.shape[1:] != (1, 28, 28):
        return
    seen = judge(classifier, x)
    for row in rows:
        if row.report.label is None:
            continue
        for end, (index, name) in enumerate(zip((0, -1), ("start", "end"))):
            truth = end_labels[end] if end_labels[end] is not None else int(seen.label[end])
            got = int(row.report.label[index])
            if got != truth:
                st.warning(f"{row.ref.label} reconstructs the {name} ({classes[truth]}) as a {classes[got]} "
                           f"(the judge is {row.report.confidence[index]:.0%} sure), so its row begins from the "
                           "wrong digit. In 2-D the models merge some digits; the 16-D models keep them apart.",
                           icon=":material/warning:")


def distance_chart(rows: list[Row], key: str, *, height: int = 300, explain: bool = True) -> None:
    colours = [AE_COLOUR if not r.model.probabilistic else VAE_COLOUR for r in rows]
    series = [(f"{r.model.kind.upper()} · {r.ref.label}", r.report.distance, c) for r, c in zip(rows, colours)]
    st.plotly_chart(charts.path_distances(series, height=height), key=key, config=views.PLOT_CONFIG)
    if explain:
        st.caption("How far each step's code is from the nearest encoded test image, in units of that model's typical "
                   "gap between neighbouring test images (so an AE's and a VAE's spaces compare). Above 1: further "
                   "from the data than data points are from each other, where the decoder saw no image.")


def contrast_sentence(rows: list[Row], steps: int, how: str) -> None:
    """What 500 random test pairs show for these two models, in words that follow the numbers."""
    if len(rows) != 2 or rows[0].model.probabilistic == rows[1].model.probabilistic:
        return
    ae, vae = (rows[0], rows[1]) if not rows[0].model.probabilistic else (rows[1], rows[0])
    out = contrast_summary((ae.ref.key, vae.ref.key), steps, how, (ae.ref, vae.ref))
    closer, (d_ae, d_vae) = out["second_closer"], out["mean_distance"]
    conf = out["mean_confidence"]
    text = (f"**Over 500 random test pairs** of these two models, the VAE's path stays closer to its data in "
            f"**{closer:.0%}** of pairs (mean distance {d_ae:.2f} typical gaps for the AE, {d_vae:.2f} for the VAE)")
    if conf is not None:
        text += f"; the judge's mean confidence along the rows is {conf[0]:.2f} (AE) and {conf[1]:.2f} (VAE)"
    text += ". "
    if closer >= 0.6 and d_ae - d_vae > 0.5:
        text += "Here the AE's paths cross gaps in its code space that the VAE's do not."
        if conf is not None and abs(conf[0] - conf[1]) < 0.02:
            text += (" Yet the judge is about as sure of both rows' frames: staying near the data does not by itself "
                     "make a frame look like one of the two ends' digits (the VAE's path can pass through a third "
                     "digit's region).")
    elif closer >= 0.6:
        text += ("The VAE's paths are nearly always a little closer to its data, but by a small margin, and the "
                 "frames look alike: at this size both codes are dense enough to walk through. The strongest evidence "
                 "for the VAE is elsewhere: its samples from the prior, and the gaps on the AE's map.")
    elif closer <= 0.4:
        text += "Here the AE's paths stay closer to its data than the VAE's."
    else:
        text += "Here the two models' paths are about as close to their data."
    st.markdown(text)


# --- samples from the prior ----------------------------------------------------------------------------


def prior_samples(refs: list[ModelRef], seed: int, *, n: int = 64, key: str = "prior", width: int | str = "stretch") -> None:
    """Each model's decoded draws from N(0, I) (the same draws for models of one latent size), and which
    digits the judge sees among them."""
    cols = st.columns(len(refs))
    for col, ref in zip(cols, refs):
        model = get_model(ref)
        with col:
            if model.cfg.height < 8:
                st.info("Not an image model: its samples are points (see the Latent map).")
                continue
            st.markdown(f"**{model.kind.upper()}** · {ref.label}")
            images = views.prior_samples(ref.key, model, n, seed)
            st.image(views.as_picture(latent.mosaic(images, cols=int(np.ceil(np.sqrt(n)))), 2), width=width)
            if judges(ref) and images.ndim == 3:
                verdict = judge(judge_classifier()[0], images)
                sure = verdict.confidence >= 0.9
                counts = np.bincount(verdict.label[sure], minlength=10)
                missing = [str(d) for d in range(10) if counts[d] == 0]
                st.caption(f"The judge is sure (≥ 90 %) of {sure.sum()} of these {n}; among them it sees "
                           f"{(counts > 0).sum()} of the 10 digits" + (f" (never {', '.join(missing)})" if missing else "")
                           + ".")


# --- two models side by side --------------------------------------------------------------------------


def compare(refs: list[ModelRef], sel) -> None:
    """Two models' metrics side by side, and the same test images reconstructed by both."""
    from ..data import class_exemplars
    from .cache import meta_of, test_data

    st.subheader("Compare two models")
    if len(refs) < 2:
        st.info("Compare needs two models: train or upload another one.")
        return
    keys, by_key = [r.key for r in refs], {r.key: r for r in refs}
    for skey, default in (("zoo_compare_a", sel.model.key if sel.model else keys[0]),
                          ("zoo_compare_b", sel.partner.key if sel.partner else keys[1])):
        if st.session_state.get(skey) not in by_key:
            st.session_state[skey] = default if default in by_key else keys[0]
    c = st.columns(2)
    a = by_key[c[0].selectbox("Model A", keys, key="zoo_compare_a", format_func=lambda k: by_key[k].label)]
    b = by_key[c[1].selectbox("Model B", keys, key="zoo_compare_b", format_func=lambda k: by_key[k].label)]
    table = {"metric": [name for name, _ in views.COMPARED],
             f"A: {a.label}": views.compare_column(meta_of(a)[0]), f"B: {b.label}": views.compare_column(meta_of(b)[0])}
    st.dataframe(table, hide_index=True, key="zoo_compare_table")
    ma, mb = get_model(a), get_model(b)
    if ma.cfg.image_shape != mb.cfg.image_shape:
        st.warning(f"These two models take different images ({ma.cfg.image_shape} and {mb.cfg.image_shape}); "
                   "only their metrics can be compared.")
        return
    if ma.cfg.height < 8:
        return
    if a.dataset and b.dataset and a.dataset != b.dataset:
        st.warning(f"A was trained on {a.dataset} and B on {b.dataset}: below, both reconstruct {a.dataset}'s test "
                   f"images, which B never saw in training.")
    split, used, note = test_data(a.dataset or b.dataset or "mnist")
    if tuple(split.images.shape[1:]) != ma.cfg.image_shape:
        st.warning("The test images do not fit these models.")
        return
    if note:
        st.caption(note)
    idx = class_exemplars(split.labels, len(split.classes))
    x = split.images[idx]
    rows = [latent.decode(m, latent.encode(m, x)[0]) for m in (ma, mb)]
    originals = x.numpy().transpose(0, 2, 3, 1)
    originals = originals[..., 0] if originals.shape[-1] == 1 else originals
    st.markdown(f"**The same {len(idx)} test images of {used}** (top), **reconstructed by A** (middle) "
                "**and by B** (bottom), each from its mean code")
    st.image(views.as_picture(latent.mosaic(np.concatenate([originals, *rows]), cols=len(idx)), 3), output_format="PNG")


# --- one image's posterior ---------------------------------------------------------------------------


def posterior(ref: ModelRef, x: torch.Tensor, *, key: str, draws: int = 6) -> None:
    """For one image: q(z|x) per dimension, z = mu + sigma * eps redrawn on a button, each draw decoded,
    and the two loss terms for this image in nats."""
    model = get_model(ref)
    mu, logvar = (v[0] if v is not None else None for v in latent.encode(model, x[None]))
    if logvar is None:
        st.info(f"{ref.label} is deterministic: its code for an image is one point, with no σ to draw from.")
        return
    sigma = np.exp(0.5 * logvar)
    mu_test = encoded(ref)[0]
    active = unit_activity(mu_test) > 0.01
    seed = st.session_state.setdefault(f"{key}_eps", 0)
    c = st.columns([1, 3], vertical_alignment="center")
    if c[0].button("Resample ε", key=f"{key}_resample", icon=":material/casino:", width="stretch"):
        st.session_state[f"{key}_eps"] = seed = seed + 1
    c[1].caption("z = μ + σ ⊙ ε with ε ~ N(0, I): the reparameterisation trick. The noise is outside the network, "
                 "so gradients flow through μ and σ.")
    eps = np.random.default_rng(seed).standard_normal((draws, len(mu))).astype(np.float32)
    z = mu[None] + sigma[None] * eps
    left, right = st.columns([1.4, 1], gap="large")
    with left:
        st.plotly_chart(charts.posterior_bars(mu, sigma, active, z), key=f"{key}_bars", config=views.PLOT_CONFIG)
        st.caption(f"Green: the {active.sum()} active units (their μ varies across test images); grey: collapsed "
                   f"ones, where q(z|x) is the prior N(0, 1) whatever the image (σ ≈ 1, μ ≈ 0). Active units' σ "
                   f"here: median {np.median(sigma[active]) if active.any() else float('nan'):.2f}.")
    with right:
        frames = latent.decode(model, z)
        views.image_row([latent.pictures(x[None])[0], *frames], ["the image"] + [f"draw {i + 1}" for i in range(draws)],
                        width=present.scale(84))
        with torch.no_grad():
            logits = model.decode_logits(torch.from_numpy(z))
            recon = float(recon_nll(model.cfg, x[None].expand(len(z), *x.shape), logits).mean())
        kl = float(kl_per_dim(torch.from_numpy(mu), torch.from_numpy(logvar)).sum())
        st.markdown(f"For this image: reconstruction **{recon:.1f}** nats (−log p(x|z), the mean over these "
                    f"{draws} draws), KL **{kl:.1f}** nats (KL(q(z|x) ‖ N(0, I)), in closed form): an estimate of its "
                    f"−ELBO, {recon + kl:.1f} nats.")


# --- two views the notes ask for ------------------------------------------------------------------------


def code_histograms(refs: list[ModelRef], *, key: str, dims: int = 4) -> None:
    """Per-dimension histograms of each model's codes of the test images against the N(0, 1) density, on
    each model's most active dimensions, AE beside VAE. For a VAE the codes are one draw z ~ q(z|x) per image,
    so the histogram is its aggregate posterior, the distribution the prior should match."""
    panels = []
    for ref in refs:
        mu, logvar, _, _, _ = encoded(ref)
        codes = mu if logvar is None else mu + np.exp(0.5 * logvar) * np.random.default_rng(0).standard_normal(mu.shape)
        order = sorted(np.argsort(-unit_activity(mu))[: min(dims, mu.shape[1])].tolist())
        panels.append((f"{get_model(ref).kind.upper()} {ref.name}", codes, order))
    st.plotly_chart(charts.code_histograms(panels), key=key, config=views.PLOT_CONFIG)
    st.caption("Codes of 5,000 test images, each model's most active dimensions, with the prior's density in "
               "orange. For a VAE, one draw z = μ + σε per image: its aggregate posterior, which its KL term pulls "
               "towards N(0, 1), so prior samples land where it has data. An AE's codes sit at whatever scale and "
               "place training left them, so draws from N(0, 1) land where it has none.")


@st.cache_resource(show_spinner=False)
def _probe_train(dataset: str):
    from ..data import load_split

    return load_split(dataset, "train", limit=10_000)


@st.cache_data(max_entries=32, show_spinner="Training a linear probe on each model's codes ...")
def probe_accuracy(key: str, dataset: str, _model: Model) -> float:
    """Computed once per server and model: a logistic regression on 10,000 training codes, scored on the test set."""
    train = _probe_train(dataset)
    test, _, _ = test_data(dataset)
    train_codes = latent.encode(_model, train.images)[0]
    test_codes = latent.encode(_model, test.images)[0]
    return linear_probe(train_codes, train.labels.numpy(), test_codes, test.labels.numpy())


def linear_probe_panel(refs: list[ModelRef], *, key: str) -> None:
    results = []
    for ref in refs:
        try:
            results.append((f"{get_model(ref).kind.upper()} · {ref.label}", probe_accuracy(ref.key, ref.dataset, get_model(ref))))
        except Exception as exc:  # no training images here (a folder with only the test split, say)
            st.info(f"No probe for {ref.label}: {exc}")
    if results:
        st.plotly_chart(charts.probe_bars(results, chance=0.1), key=key, config=views.PLOT_CONFIG)
        st.caption("A logistic regression trained on the codes of 10,000 training images, tested on the 10,000 test "
                   "images: how much of the digit a linear read-out finds in each representation.")


# --- the latent grid -------------------------------------------------------------------------------

GRID_AXES = {"dims": "Two latent dimensions", "pcs": "Two principal directions"}
GRID_HOLDS = {"origin": "the origin", "mean": "the mean test code", "image": "a test image's code"}
GRID_SPACINGS = {"linear": "linear", "quantile": "prior quantiles"}


def grid_state(ref: ModelRef, mu: np.ndarray | None, dim: int, n_test: int) -> list:
    """The grid's widget state, with defaults (the two most active units), and its URL parameters."""
    from . import urlstate
    from .codes import most_active

    k = ref.key
    first, second = most_active(mu, dim)
    for name, value in (("gaxes", "dims"), ("gx", first), ("gy", second), ("gn", 15), ("gspace", "linear"),
                        ("ghold", "origin"), ("gidx", 0)):
        st.session_state.setdefault(f"{name}::{k}", value)
    return [
        urlstate.state("axes", f"gaxes::{k}", urlstate.choice(list(GRID_AXES))),
        urlstate.state("gx", f"gx::{k}", urlstate.whole(0, dim - 1)),
        urlstate.state("gy", f"gy::{k}", urlstate.whole(0, dim - 1)),
        urlstate.state("gn", f"gn::{k}", urlstate.whole(3, 25)),
        urlstate.state("spacing", f"gspace::{k}", urlstate.choice(list(GRID_SPACINGS))),
        urlstate.state("hold", f"ghold::{k}", urlstate.choice(list(GRID_HOLDS))),
        urlstate.state("gidx", f"gidx::{k}", urlstate.whole(0, max(n_test - 1, 0))),
    ]


@st.fragment
def latent_grid(ref: ModelRef, mu: np.ndarray | None, n_test: int) -> None:
    """An n x n grid of decoded codes through two latent dimensions or two principal directions."""
    from . import urlstate
    from .cache import map_view

    model = get_model(ref)
    dim, k = model.cfg.latent_dim, ref.key
    c1, c2, c3, c4 = st.columns(4)
    axes_options = ["dims"] + (["pcs"] if mu is not None and dim > 2 else [])
    if st.session_state[f"gaxes::{k}"] not in axes_options:
        st.session_state[f"gaxes::{k}"] = "dims"
    axes = c1.radio("Axes", axes_options, key=f"gaxes::{k}", format_func=GRID_AXES.get)
    hold = c2.radio("Other coordinates at", list(GRID_HOLDS) if mu is not None else ["origin"], key=f"ghold::{k}",
                    format_func=GRID_HOLDS.get)
    n = c3.slider("Images per side (n)", 3, 25, key=f"gn::{k}")
    spacing = c4.radio("Spacing", list(GRID_SPACINGS), key=f"gspace::{k}", format_func=GRID_SPACINGS.get,
                       help="Prior quantiles: Φ⁻¹ of probabilities 0.05 ... 0.95, as in Kingma & Welling's manifold "
                            "figures: each cell holds the same share of the prior, from −1.64 to +1.64.")
    activity = unit_activity(mu) if mu is not None else None
    if axes == "dims":
        if dim >= 2:
            a, b = st.columns(2)
            dx = a.selectbox("Horizontal axis", range(dim), key=f"gx::{k}", format_func=lambda i: f"z{i + 1}")
            dy = b.selectbox("Vertical axis", range(dim), key=f"gy::{k}", format_func=lambda i: f"z{i + 1}")
            if dx == dy:
                st.warning("Pick two different dimensions.")
                return
            view = latent.map_view(mu if mu is not None else np.zeros((2, dim), np.float32), "raw", (dx, dy))
            if activity is not None and model.probabilistic:
                dead = [f"z{d + 1}" for d in (dx, dy) if activity[d] <= 0.01]
                if dead:
                    st.warning(f"{' and '.join(dead)} {'is a collapsed unit' if len(dead) == 1 else 'are collapsed units'}: "
                               "its code barely changes from image to image, so moving along it changes little. The "
                               f"most active units are z{np.argsort(-activity)[0] + 1} and z{np.argsort(-activity)[1] + 1}.",
                               icon=":material/warning:")
        else:
            view = latent.map_view(np.zeros((2, 1), np.float32), "raw")
        spread = float(np.abs(view.project(mu)).max()) if mu is not None else 3.0
    else:
        view = map_view(ref, mu, "test", "pca")
        spread = float(np.abs(view.coords).max())
    base = np.zeros(dim, np.float32)
    if hold == "mean":
        base = mu.mean(0)
    elif hold == "image":
        base = mu[int(st.number_input("Test image #", 0, n_test - 1, key=f"gidx::{k}", help=f"0 to {n_test - 1:,}"))]
    if spacing == "linear":
        default_span = 3.0 if model.probabilistic else float(np.clip(np.ceil(spread), 1, 50))
        st.session_state.setdefault(f"gspan::{k}", default_span)
        span = st.slider("Range (± along each axis)", 0.5, max(6.0, default_span * 2), step=0.5, key=f"gspan::{k}")
    else:
        span = None
    xs = latent.axis_values(n, span or 3.0, spacing)
    ys = xs if dim >= 2 else np.zeros(1)
    base = view.lift(np.zeros((1, 2)), base)[0]  # the chosen base, off the plane; the grid spans the plane
    codes = latent.latent_grid(base, view.directions, xs, ys)
    mosaic = latent.mosaic(latent.decode(model, codes), cols=len(xs), pad=1)
    from ..figures import images as image_figures

    st.plotly_chart(image_figures.image_grid(mosaic, xs=xs, ys=ys if dim >= 2 else None, axis_titles=view.axis_titles,
                                             height=present.scale(720)), key=f"grid::{k}", config={"displayModeBar": False})
    urlstate.publish()
