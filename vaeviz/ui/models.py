"""The app's model and data access: which models exist, cached loading, cached encodings.

Models come from four places: checkpoints shipped in `checkpoints/`, ones saved by users
(`checkpoints/user/`), ones trained in this browser session, and uploaded files. Files are loaded
once per (path, modification time) and shared by every session through `st.cache_resource`, so they
are read-only here. Session and uploaded models live in `st.session_state` and are seen by that
session only. Encodings and projections are numpy arrays cached with `st.cache_data` under the
model's key.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from .. import latent
from ..checkpoint import SHIPPED_DIR, checkpoint_summary, find_checkpoints, load_checkpoint, user_dir
from ..data import DataUnavailable, Split, load_split
from ..models import Autoencoder

SESSION_MODELS = "vaeviz_session_models"  # session_state: key -> (ModelRef, model)
FALLBACK_DATASET = "digits"  # offline stand-in for MNIST-like data when the files are missing
MAP_POINTS = 5000  # encoded test images drawn on maps


@dataclass(frozen=True)
class ModelRef:
    """A pointer to one model the app knows; `key` is unique and stable while the model is."""

    key: str
    label: str
    source: str  # "shipped" | "user" | "session" | "upload"
    path: str | None = None
    kind: str = ""
    arch: str = ""
    latent_dim: int = 0
    dataset: str = ""

    @property
    def pair_signature(self) -> tuple:
        """What two models share to be compared side by side: data, architecture, latent size."""
        return (self.dataset, self.arch, self.latent_dim)


def _file_ref(path: Path, source: str) -> ModelRef | None:
    try:
        s = _summary(str(path), path.stat().st_mtime_ns)
    except (ValueError, OSError):
        return None  # unreadable files are listed (with the reason) by the model zoo, not here
    label = path.stem if source == "shipped" else f"{path.stem} (saved)"
    return ModelRef(f"file:{path}:{path.stat().st_mtime_ns}", label, source, str(path),
                    s["kind"], s["arch"] or "", s["latent_dim"] or 0, s.get("dataset") or "")


@st.cache_data(max_entries=256, show_spinner=False)
def _summary(path: str, mtime_ns: int) -> dict:
    return checkpoint_summary(path)


def known_models() -> list[ModelRef]:
    """Every model this session can use: shipped, saved by users, trained here, uploaded here."""
    refs = [_file_ref(p, "shipped") for p in find_checkpoints([SHIPPED_DIR])]
    refs += [_file_ref(p, "user") for p in find_checkpoints([user_dir()])]
    refs += [ref for ref, _ in st.session_state.get(SESSION_MODELS, {}).values()]
    return [r for r in refs if r is not None]


def register_session_model(model: Autoencoder, label: str, source: str = "session") -> ModelRef:
    """Make an in-memory model (trained or uploaded here) available to this session's pages."""
    models = st.session_state.setdefault(SESSION_MODELS, {})
    key = f"{source}:{uuid.uuid4().hex[:12]}"
    ref = ModelRef(key, label, source, None, model.kind, model.cfg.arch, model.cfg.latent_dim,
                   model.meta.get("dataset") or "")
    models[key] = (ref, model)
    return ref


def forget_session_model(key: str) -> None:
    st.session_state.get(SESSION_MODELS, {}).pop(key, None)


@st.cache_resource(max_entries=32, show_spinner=False)
def _load_file(path: str, mtime_ns: int) -> Autoencoder:
    return load_checkpoint(path)


@st.cache_resource(max_entries=8, show_spinner=False)
def load_uploaded(digest: str, data: bytes, name: str) -> Autoencoder:
    """Load uploaded checkpoint bytes (validated; nothing written to disk), cached by content."""
    return load_checkpoint(data, name=name)


def upload_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


UPLOADS_SEEN = "vaeviz_uploads_seen"  # session_state: digest -> model key (avoid re-registering)


def register_upload(name: str, data: bytes) -> tuple[str, bool]:
    """Validate uploaded checkpoint bytes and add the model to this session, once per content.

    Returns (model key, whether it is new to the session). A bad file raises ValueError and
    nothing is kept.
    """
    digest = upload_digest(data)
    seen = st.session_state.setdefault(UPLOADS_SEEN, {})
    if digest in seen:
        return seen[digest], False
    model = load_uploaded(digest, data, name)
    ref = register_session_model(model, f"{name.removesuffix('.safetensors')} (uploaded)", "upload")
    seen[digest] = ref.key
    return ref.key, True


def get_model(ref: ModelRef) -> Autoencoder:
    """The model behind `ref`. Shared file models are read-only: never train or modify them."""
    if ref.path is not None:
        return _load_file(ref.path, int(ref.key.rsplit(":", 1)[1]))
    return st.session_state[SESSION_MODELS][ref.key][1]


# --- data ------------------------------------------------------------------------------------


@st.cache_resource(max_entries=6, show_spinner="Loading the test images ...")
def _load_test(dataset: str) -> Split:
    return load_split(dataset, "test")


def test_data(dataset: str) -> tuple[Split, str, str | None]:
    """The test split of `dataset`, or the offline digits if its files are missing.

    Returns (split, the data set actually used, a note for the page or None).
    """
    try:
        return _load_test(dataset or "mnist"), dataset or "mnist", None
    except DataUnavailable as exc:
        note = f"{exc} Showing scikit-learn's bundled digits instead (they need no download)."
        return _load_test(FALLBACK_DATASET), FALLBACK_DATASET, note


def data_for(ref: ModelRef) -> tuple[Split, str, str | None]:
    """The test data a model is explored with (its own data set, if its images fit the model)."""
    model = get_model(ref)
    split, used, note = test_data(ref.dataset or "mnist")
    if tuple(split.images.shape[1:]) != model.cfg.image_shape:
        raise ValueError(f"the {used} images do not fit this model ({model.cfg.image_shape})")
    return split, used, note


@st.cache_data(max_entries=64, show_spinner="Encoding the test set ...")
def encodings(key: str, dataset: str, n: int, _model: Autoencoder, _images: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
    """(mu, logvar) of the first n test images under the model `key` names."""
    return latent.encode(_model, _images[:n])


def encoded(ref: ModelRef, n: int = MAP_POINTS) -> tuple[np.ndarray, np.ndarray | None, Split, str, str | None]:
    """Encodings of the first n test images of a model's data set, with the split and any note."""
    split, used, note = data_for(ref)
    n = min(n, len(split.images))
    mu, logvar = encodings(ref.key, used, n, get_model(ref), split.images)
    return mu, logvar, split, used, note


@st.cache_data(max_entries=64, show_spinner=False)
def projection(key: str, dataset: str, n: int, _mu: np.ndarray) -> latent.Projection:
    """PCA of a model's encoded test set (mean codes for a VAE)."""
    return latent.pca(_mu)


@st.cache_data(max_entries=16, show_spinner="Running t-SNE (about 10-30 s) ...")
def tsne_coords(key: str, dataset: str, n: int, _mu: np.ndarray) -> np.ndarray:
    return latent.tsne(_mu)


def slider_ranges(mu: np.ndarray) -> np.ndarray:
    """Per-dimension slider range (D, 2): at least [-3, 3] (the prior), wider for spread-out codes."""
    lo = np.minimum(np.percentile(mu, 0.5, axis=0), -3.0)
    hi = np.maximum(np.percentile(mu, 99.5, axis=0), 3.0)
    return np.stack([np.floor(lo), np.ceil(hi)], 1)
