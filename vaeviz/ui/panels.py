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
    if x.shape[-2] < 8:  # points, not pictures: the paths drawn in the data's own plane
        _point_paths(rows, key)
        return rows, [], None
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


def _point_paths(rows: list[Row], key: str) -> None:
    from ..figures import training as training_figures

    for row in rows:
        mu, _, split, _, _ = encoded(row.ref, 2000)
        data = split.images[: len(mu)].flatten(1).numpy()
        st.markdown(f"**{row.model.kind.upper()}** · {row.ref.label}: the path's decoded points over the data")
        st.plotly_chart(training_figures.point_samples(row.report.frames.reshape(len(row.report.frames), -1), data),
                        key=f"{key}_points_{row.ref.key}")


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
    for skey, default in (("zoo_compare_a", sel.model.key if sel and sel.model else keys[0]),
                          ("zoo_compare_b", sel.partner.key if sel and sel.partner else keys[1])):
        if st.session_state.get(skey) not in by_key:
            st.session_state[skey] = default if default in by_key else keys[0]
    c = st.columns(2)
    a = by_key[c[0].selectbox("Model A", keys, key="zoo_compare_a", format_func=lambda k: by_key[k].label)]
    b = by_key[c[1].selectbox("Model B", keys, key="zoo_compare_b", format_func=lambda k: by_key[k].label)]
    names, (col_a, col_b) = views.compare_rows([meta_of(a)[0], meta_of(b)[0]])
    table = {"metric": names, f"A: {a.label}": col_a, f"B: {b.label}": col_b}
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
    from ..folders import allowed_roots

    return load_split(dataset, "train", limit=10_000, roots=allowed_roots())


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
    if model.cfg.height < 8:
        st.info("This model's data are points, not pictures: a grid of decoded images does not apply. The Sliders "
                "tab draws its decoded curve over the data instead.")
        return
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


# --- reconstructions, noisy or clean ------------------------------------------------------------------


def reconstructions(refs: list[ModelRef], *, key: str, n: int = 10) -> None:
    """One test image per class, optionally corrupted, and each model's reconstruction of it, with each
    model's error against the *clean* images (BCE per pixel; RMS error for a Gaussian decoder): noisy in,
    clean out, for a denoising AE."""
    from ..models.autoencoders import corrupt

    models = [get_model(r) for r in refs]
    _, _, split, _, _ = encoded(refs[0])
    if split.images.shape[-1] < 8:
        st.info("These models' data are points, not pictures: see the explorer's curve view.")
        return
    idx = [int(np.flatnonzero(split.labels.numpy() == c)[0]) for c in range(min(n, len(split.classes)))]
    x = split.images[idx]
    default = next((m.cfg.noise for m in models if m.kind == "dae"), 0.0)
    st.session_state.setdefault(f"{key}_noise", float(default))
    c = st.columns([2, 1])
    level = c[0].slider("Gaussian noise added to the inputs (σ)", 0.0, 0.8, step=0.05, key=f"{key}_noise",
                        help="Each pixel gets N(0, σ²) noise, clipped to [0, 1]: what a denoising AE is trained on.")
    noisy = corrupt(x, "gaussian", level, torch.Generator().manual_seed(0)) if level > 0 else x
    rows = [("the test images", latent.pictures(x))] + ([("what the models get", latent.pictures(noisy))] if level else [])
    for ref, model in zip(refs, models):
        with torch.no_grad():
            logits = model.decode_logits(model.encode(noisy)[0])
            if model.cfg.likelihood == "bernoulli":
                error = f"BCE {float(recon_nll(model.cfg, x, logits).mean()) / model.cfg.pixels:.4f} per pixel"
            else:  # a Gaussian decoder's -log p depends on its sigma; the RMS error is the plain measure
                error = f"RMS error {float((torch.sigmoid(logits) - x).pow(2).mean().sqrt()):.3f} per value"
        rows.append((f"{model.kind.upper()} {ref.name}\n{error}, against the clean images",
                     latent.decode(model, latent.encode(model, noisy)[0])))
    st.image(strips.gallery(rows, scale=3, label_width=300), width="stretch")


# --- a sparse code's parts ------------------------------------------------------------------------------


@st.cache_data(max_entries=16, show_spinner=False)
def atoms(key: str, _model: Model, _mu: np.ndarray) -> np.ndarray:
    """Each code's decoded "atom": decode(a * e_i) - decode(0), a = that code's 90th-percentile activation
    on the test set, shown as what turning the code on adds. (D, H, W), rescaled to [0, 1] together."""
    d = _mu.shape[1]
    strength = np.percentile(_mu, 90, axis=0).clip(min=1e-3)
    base = latent.decode(_model, np.zeros((1, d), np.float32))[0]
    parts = latent.decode(_model, np.diag(strength).astype(np.float32)) - base
    scale = max(float(np.abs(parts).max()), 1e-6)
    return 0.5 + 0.5 * parts / scale  # grey 0.5: no change; lighter: ink added; darker: ink removed


def sparse_codes(ref: ModelRef, x: torch.Tensor, *, key: str) -> None:
    """Which codes fire for one image, and every code's decoded atom (the firing ones first)."""
    model = get_model(ref)
    z = latent.encode(model, x[None])[0][0]
    mu = encoded(ref)[0]
    firing = np.flatnonzero(z > 0)
    left, right = st.columns([1, 1.3], gap="large")
    with left:
        st.plotly_chart(charts.code_bars(z), key=f"{key}_bars", config=views.PLOT_CONFIG)
        st.caption(f"{len(firing)} of its {len(z)} codes fire for this image (on the test set, "
                   f"{float((mu > 0).sum(1).mean()):.1f} on average).")
    with right:
        order = firing[np.argsort(-z[firing])]
        if len(order):
            parts = atoms(ref.key, model, mu)[order]
            st.image(views.as_picture(latent.mosaic(parts, cols=min(8, len(parts)), pad=1, pad_value=1.0), 5),
                     width="stretch")
        never = int((mu.max(0) <= 0).sum())
        st.caption("The atoms of the codes this image uses, strongest first: what switching each on adds to the "
                   "image (light: ink added, dark: ink taken away; grey: no change). "
                   f"{never} of the {len(z)} codes never fire on these {len(mu):,} test images.")


# --- a hierarchical VAE's lower layer -----------------------------------------------------------------


def bottom_layer(ref: ModelRef, z2: np.ndarray, *, key: str, n: int = 8) -> None:
    """For a fixed top code z2: n draws of the lower layer z1 ~ p(z1|z2), decoded."""
    model = get_model(ref)
    if not hasattr(model, "sample_bottom"):
        return
    seed = st.session_state.setdefault(f"{key}_seed", 0)
    draws = model.sample_bottom(torch.as_tensor(np.asarray(z2, np.float32))[None], n,
                                generator=torch.Generator().manual_seed(seed))[0]
    views.image_row(latent.pictures(draws), [f"z1 draw {i + 1}" for i in range(n)], width=present.scale(72))
    c = st.columns([1, 3])
    if c[0].button("New draws of z1", key=f"{key}_new"):
        st.session_state[f"{key}_seed"] = seed + 1
        st.rerun()
    c[1].caption("The top code z2 fixed (the sliders), the lower layer drawn from p(z1|z2): what is left to the "
                 "lower layer (the style, say) varies; what the top code decides stays.")


# --- a model of 2-D points (the circle) ----------------------------------------------------------------


def point_model(ref: ModelRef, z: np.ndarray, *, key: str) -> None:
    """Data points, the decoded curve x(z) across the prior, the point at the code z, and, for a clicked
    data point, its posterior's stretch of the curve and its reconstruction."""
    model = get_model(ref)
    mu, logvar, split, _, _ = encoded(ref, 2000)
    data = split.images[: len(mu)].flatten(1).numpy()
    grid = np.linspace(-3, 3, 301, dtype=np.float32)[:, None] * np.eye(model.cfg.latent_dim, dtype=np.float32)[0]
    curve = latent.decode(model, grid).reshape(len(grid), -1)
    here = latent.decode(model, np.asarray(z, np.float32)[None]).reshape(-1)
    picked = st.session_state.get(f"{key}_picked")
    segment = recon = point = None
    text = "Click a data point to see its posterior."
    if picked is not None and picked < len(mu):
        point = data[picked]
        m, s = mu[picked], np.exp(0.5 * logvar[picked]) if logvar is not None else np.zeros_like(mu[picked])
        span = np.linspace(m - 2 * s, m + 2 * s, 60, dtype=np.float32)
        segment = latent.decode(model, span).reshape(len(span), -1)
        recon = latent.decode(model, m[None]).reshape(-1)
        text = (f"Test point #{picked} at ({point[0]:.3f}, {point[1]:.3f}): q(z|x) = N({m[0]:.2f}, {s[0]:.3f}²); "
                f"its reconstruction x̂(μ) = ({recon[0]:.3f}, {recon[1]:.3f}).")
    fig = charts.point_curve(data, curve, grid[:, 0], here=here, picked=point, segment=segment, recon=recon,
                             height=present.scale(520))
    event = st.plotly_chart(fig, key=f"{key}_chart", on_select="rerun", selection_mode=("points",),
                            config={"scrollZoom": True})
    points = (getattr(getattr(event, "selection", None), "points", None) or [])
    chosen = [p for p in points if (p.get("curve_number") if isinstance(p, dict) else getattr(p, "curve_number", None)) == 0]
    if chosen:
        index = chosen[0]["point_index"] if isinstance(chosen[0], dict) else chosen[0].point_index
        if st.session_state.get(f"{key}_picked") != int(index):
            st.session_state[f"{key}_picked"] = int(index)
            st.rerun()
    st.caption(text + " " + _seam(data, mu))


def _seam(data: np.ndarray, mu: np.ndarray) -> str:
    """Where a 1-D code tears: the two neighbouring data points whose codes are furthest apart."""
    if mu.shape[1] != 1:
        return ""
    d2 = ((data[:, None, :] - data[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    nearest = d2.argmin(1)  # each point's nearest other point, in the plane
    jump = np.abs(mu[:, 0] - mu[nearest, 0])
    i = int(jump.argmax())
    return (f"A 1-D code cannot go round a loop and come back: the decoded curve is an open arc. Where its two ends "
            f"meet, neighbouring points ({np.sqrt(d2[i, nearest[i]]):.3f} apart in the plane, near "
            f"({data[i, 0]:.2f}, {data[i, 1]:.2f})) get codes {jump[i]:.2f} apart, while a typical pair of neighbours "
            f"differs by {np.median(jump):.3f}.")


# --- the amortization gap ---------------------------------------------------------------------------------


@st.cache_data(max_entries=64, show_spinner="Fitting this image's own posterior (200 steps of Adam) ...")
def _fitted(key: str, image: bytes, _model: Model, _x: torch.Tensor, steps: int):
    from ..inference import optimize_posterior

    fit = optimize_posterior(_model, _x[None], steps)
    return (fit.encoder_mu[0].numpy(), fit.encoder_logvar[0].numpy(), fit.mu[0].numpy(), fit.logvar[0].numpy(),
            float(fit.elbo_encoder[0]), float(fit.elbo_fitted[0]))


def amortization(ref: ModelRef, x: torch.Tensor, *, key: str, steps: int = 200) -> None:
    """The encoder's q(z|x) for one image beside the q(z) fitted to that image alone (variational EM's
    E-step, the decoder fixed): both on the map, both decoded, and their ELBOs: the gap, in nats."""
    from ..figures import maps
    from ..inference import supports

    model = get_model(ref)
    if not supports(model):
        st.caption(f"{ref.label} has no single Gaussian posterior to fit per image.")
        return
    mu0, lv0, mu1, lv1, elbo0, elbo1 = _fitted(ref.key, x.numpy().tobytes(), model, x, steps)
    mu_test, _, split, used, _ = encoded(ref)
    fig, view = views.model_map(ref, mu_test, split.labels[: len(mu_test)].numpy(), split.classes, used, height=360)
    points = view.project(np.stack([mu0, mu1]))
    ellipses = [p + latent.ellipse_offsets(lv, view.directions) for p, lv in zip(points, (lv0, lv1))]
    maps.fit_ranges(fig, view.coords, points, *ellipses)
    maps.add_point(fig, points[0], name="the encoder's q(z|x)", ellipse=ellipses[0], colour="#d62728")
    maps.add_point(fig, points[1], name="fitted to this image", ellipse=ellipses[1], colour="#2ca02c")
    left, right = st.columns([1.4, 1])
    left.plotly_chart(fig, key=f"{key}_map", config=views.PLOT_CONFIG)
    with right:
        decoded = latent.decode(model, np.stack([mu0, mu1]))
        views.image_row([latent.pictures(x[None])[0], *decoded], ["the image", "from the encoder's μ", "from the fitted μ"],
                        width=present.scale(110))
        st.markdown(f"ELBO with the encoder's q(z|x): **{elbo0:.1f}** nats; with this image's own q(z): "
                    f"**{elbo1:.1f}** nats. The amortization gap: **{elbo1 - elbo0:.2f} nats**, what one encoder "
                    f"for all images gives up on this one ({steps} steps of Adam on μ and log σ², the decoder fixed; "
                    "both ELBOs measured with the same 64 draws of ε).")
