"""Page pieces that more than one page draws: a model's map, rows of labelled images, its training
report (curves, KL bars, prior samples), metric cells, and the one save path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st
import torch

from .. import latent
from ..catalogue import save_and_promote
from ..checkpoint import user_dir
from ..data import dataset_label
from ..figures import images as image_figures
from ..figures import maps, training
from ..models import MODELS, Model
from . import flash
from .cache import ModelRef, known_models, map_view, session_models
from .identity import owner
from .mode import exploring

PLOT_CONFIG = {"displaylogo": False}
SAMPLE_SEED = 0


# --- numbers -----------------------------------------------------------------------------------


def number(value, digits: int = 2) -> str:
    """A metric for a table cell: "–" where it does not apply (None), whole numbers with separators."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def applies(kind: str, metric: str) -> bool:
    """Whether a metric means something for a kind (an AE has no KL, no ELBO, no active units)."""
    cls = MODELS.get(kind)
    if cls is None:
        return True
    if metric in ("kl", "neg_elbo", "active_units", "iw_nll", "kl_per_dim"):
        return cls.probabilistic and (metric != "kl" or "kl" in cls.terms) and (metric != "neg_elbo" or "neg_elbo" in cls.terms)
    return True


def metric(meta, name: str):
    """A checkpoint's metric where it applies to its kind, else None."""
    return meta.metrics.get(name) if applies(meta.kind, name) else None


# --- pictures ----------------------------------------------------------------------------------


def as_picture(image: np.ndarray, scale: int) -> np.ndarray:
    """A decoded image (H, W) or (H, W, C) in [0, 1], enlarged for the screen, as uint8."""
    return latent.to_uint8(latent.enlarge(image, scale))


def image_row(images: Sequence[np.ndarray], captions: Sequence[str] | None = None, *, width: int = 84) -> None:
    """A row of images with captions, each enlarged to about `width` pixels."""
    if not len(images):
        return
    scale = max(1, round(width / images[0].shape[0]))
    st.image([as_picture(im, scale) for im in images], width=width, caption=list(captions) if captions else None)


@st.cache_data(max_entries=64, show_spinner=False)
def prior_samples(key: str, _model: Model, n: int = 64, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Decoded samples of z ~ N(0, I), the same codes for every model of a latent size: (n, H, W[, C])."""
    z = torch.randn(n, _model.cfg.latent_dim, generator=torch.Generator().manual_seed(seed)).numpy()
    return latent.decode(_model, z)


def prior_mosaic(ref: ModelRef, model: Model, n: int = 64, seed: int = SAMPLE_SEED) -> np.ndarray:
    images = prior_samples(ref.key, model, n, seed)
    return latent.mosaic(images, cols=int(np.ceil(np.sqrt(n))))


# --- maps --------------------------------------------------------------------------------------


def model_map(ref: ModelRef, mu: np.ndarray, labels: np.ndarray, classes, dataset: str, *, method: str = "pca",
              dims: tuple[int, int] = (0, 1), height: int = 440, marker_size: int = 3, extra: Sequence = (),
              ranges=None, title: str = "", exemplar_images=None):
    """(figure, view): a model's encoded test set on its map, with `extra` coordinate sets kept in range.

    `exemplar_images` (N, H, W): a typical image of each class is drawn where the class sits.
    """
    view = map_view(ref, mu, dataset, method, dims)
    coords = view.coords
    ex = []
    if exemplar_images is not None:
        for i in typical_members(coords, labels, len(classes)):
            ex.append((coords[i, 0], coords[i, 1], exemplar_images[i]))
    ranges = ranges or maps.padded_ranges(coords, *[np.atleast_2d(e) for e in extra])
    fig = maps.latent_scatter(coords, labels, classes, axis_titles=view.axis_titles, height=height,
                              marker_size=marker_size, ranges=ranges, title=title, exemplars=ex)
    return fig, view


def typical_members(coords: np.ndarray, labels: np.ndarray, n_classes: int) -> list[int]:
    """For each class, the member nearest the class's median position: where the class sits on the map."""
    found = []
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        if len(members):
            centre = np.median(coords[members], axis=0)
            found.append(int(members[np.argmin(((coords[members] - centre) ** 2).sum(1))]))
    return found


# --- a model's training report --------------------------------------------------------------------


def curves(steps, epochs, terms: Sequence[str], key: str, caption: str) -> None:
    st.plotly_chart(training.loss_curves(steps, epochs, terms=terms), key=key, config=PLOT_CONFIG)
    st.caption(caption)


def kl_panel(kl_per_dim, activity, key: str, where: str) -> None:
    """Per-dimension KL bars, coloured by Burda et al.'s active units, with what they mean."""
    st.plotly_chart(training.kl_bars(kl_per_dim, activity), key=key, config=PLOT_CONFIG)
    st.caption(f"KL of each latent dimension ({where}). Green: an active unit, whose mean code varies from image "
               "to image (variance above 0.01). A grey, near-zero bar is a collapsed unit: its posterior is the "
               "prior whatever the image, so it carries no information. Large β collapses more.")


def training_caption(terms: Sequence[str], beta: float | None) -> str:
    text = ("Nats per image. Thin line: training loss as it trains; dotted: each epoch's training mean (the first "
            "epoch's averages its early, worse steps, so it sits above the test point); orange: the test set after "
            "each epoch.")
    if "kl" in terms and beta is not None:
        text += (" The panels show recon, KL and their sum, the −ELBO." if beta == 1 else
                 f" Training minimised recon + {beta:g}·KL; the third panel is recon + KL, the −ELBO, which this "
                 "β-VAE did not minimise directly.")
    return text


# --- saving --------------------------------------------------------------------------------------


def save_session_model(key: str | None, model: Model, name: str, place: str, *, replace: bool = False):
    """The one save path of the pages: save into the user folder, promote, select the file, say so.

    Returns (path, the file's ref or None) once saved; None when it was not (the reason is flashed).
    """
    if exploring():
        flash.flash("error", "This server is explore-only: nothing can be saved here.", place)
        return None
    try:
        path, file = save_and_promote(session_models(), key, model, name, owner=owner().id, listing=known_models,
                                      replace=replace)
    except (ValueError, FileExistsError, PermissionError) as exc:  # QuotaExceeded is a ValueError
        flash.flash("error", str(exc), place)
        return None
    except OSError as exc:
        flash.flash("error", f"Could not write to {user_dir()}: {exc.strerror or exc}. The model stays usable in this "
                             "session (it is in the sidebar); try another folder (set VAEVIZ_USER_DIR) or free some "
                             "space.", place)
        return None
    if file is not None and key is not None and st.session_state.get("model_key") == key:
        st.session_state["model_key"] = file.key
    flash.flash("success", f"Saved as {path}. It is in the sidebar of every page as “{path.stem} (saved)”.", place)
    return path, file


def png(image: np.ndarray) -> str:
    """A picture as a data: URI (no media file a lagging browser could ask for after it is replaced)."""
    return image_figures.png_data_uri(image)


# --- the model zoo's tables -------------------------------------------------------------------------


def when(created: str | None) -> str:
    import datetime as dt

    if not created:
        return "this session"
    try:
        return dt.datetime.fromisoformat(created).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return created


def zoo_row(ref: ModelRef, meta, size_bytes: int | None) -> dict:
    """One model's row in the zoo's table: its true β, epochs and metrics; None where one does not apply."""
    from ..catalogue import SOURCE_TITLES

    if meta is None:
        return {"name": ref.label, "source": SOURCE_TITLES.get(ref.source, ref.source)}
    return {
        "name": ref.label,
        "source": SOURCE_TITLES.get(ref.source, ref.source),
        "data set": dataset_label(meta.dataset),
        "kind": meta.kind.upper(),
        "arch": meta.config.arch,
        "latent": meta.config.latent_dim,
        "β": meta.beta,
        "epochs": meta.epochs,
        "recon": metric(meta, "recon"),
        "KL": metric(meta, "kl"),
        "−ELBO": metric(meta, "neg_elbo"),
        "active units": metric(meta, "active_units"),
        "size (kB)": round(size_bytes / 1024) if size_bytes else None,
        "trained": when(meta.created),
    }


def zoo_table(rows: list[dict]) -> list[dict]:
    """The zoo's rows for display: numbers as text, and "–" where a value does not apply (st.dataframe
    would print None)."""
    def cell(column: str, value):
        if column in ("recon", "KL", "−ELBO"):
            return number(value)
        if column == "β":
            return "–" if value is None else f"{value:g}"
        if column in ("latent", "epochs", "active units", "size (kB)"):
            return number(value)
        return value

    return [{k: cell(k, v) for k, v in row.items()} for row in rows]


# A kind's own figures (Metrics.extra), with what they are and their units.
EXTRA_METRICS = {
    "nll": "−log p(x), computed exactly (nats per image)",
    "noisy_bce": "BCE per pixel from inputs with the training noise added, against the clean images",
    "active_codes": "codes above zero per test image, on average",
    "l1": "the L1 penalty λ·Σz (nats per image)",
    "jacobian_frobenius": "‖∂z/∂x‖²_F per test image (first 2,000)",
    "contraction": "the contraction penalty λ·‖∂z/∂x‖²_F (nats per image)",
    "kl1": "KL of the lower layer, q(z1|x,z2) from p(z1|z2) (nats per image)",
    "kl2": "KL of the top layer, q(z2|x) from N(0, I) (nats per image)",
    "active_units_bottom": "active units of the lower layer z1",
    "amortization_gap": "amortization gap: ELBO of each image's own fitted q minus the encoder's (nats per image)",
    "gap_images": "test images the gap was measured on",
}


def own_metrics(meta) -> list[dict]:
    """A model's own figures as table rows (what each is, its value)."""
    return [{"figure": EXTRA_METRICS.get(k, k), "value": number(v, 4 if isinstance(v, float) and abs(v) < 1 else 2)}
            for k, v in meta.metrics.extra.items() if not isinstance(v, tuple)]


COMPARED = [("reconstruction (nats)", "recon"), ("KL (nats)", "kl"), ("−ELBO (nats)", "neg_elbo"),
            ("active units", "active_units"), ("BCE per pixel", "bce_per_pixel"), ("test images", "n_images")]


def compare_rows(metas: list) -> tuple[list[str], list[list[str]]]:
    """The compare table: the standard metrics, then the kinds' own figures; "–" where one does not apply."""
    extras = [k for k in EXTRA_METRICS if any(m is not None and k in m.metrics.extra for m in metas)]
    names = [label for label, _ in COMPARED] + [EXTRA_METRICS[k] for k in extras]
    columns = []
    for meta in metas:
        if meta is None:
            columns.append(["–"] * len(names))
            continue
        values = [number(metric(meta, name), 4 if name == "bce_per_pixel" else 2) for _, name in COMPARED]
        values += [number(meta.metrics.extra.get(k), 4 if k in ("noisy_bce",) else 2) for k in extras]
        columns.append(values)
    return names, columns


def facts_line(ref: ModelRef, meta) -> str:
    """**VAE** · mlp · 16-D latent · β = 4 · data set **mnist** · 5 epochs of 10,000 images."""
    facts = [f"**{meta.kind.upper()}**", meta.config.arch, f"{meta.config.latent_dim}-D latent"]
    if meta.beta is not None:
        facts.append(f"β = {meta.beta:g}")
    facts.append(f"data set **{dataset_label(meta.dataset)}**")
    if meta.imported:
        facts.append("imported from ONNX (its own layers)")
    epochs = meta.epochs
    if epochs is not None:
        run = f"{epochs} epoch{'' if epochs == 1 else 's'}"
        images = meta.train.images if meta.train is not None else None
        facts.append(f"{run} of {images:,} images" if images else run)
    return " · ".join(facts)
