"""The app's model and data access: which models exist, cached loading, cached encodings.

Models come from four places: checkpoints shipped in `checkpoints/`, ones saved by users
(`checkpoints/user/`), ones trained in this browser session, and uploaded files. Files are loaded
once per (path, modification time) and shared by every session through `st.cache_resource`, so they
are read-only here. Session and uploaded models live in `st.session_state` and are seen by that
session only. Encodings and projections are numpy arrays cached with `st.cache_data` under the
model's key.

Everything held is bounded, so many users and many distinct uploads cannot grow the server without
limit: every cache has `max_entries` (the encodings also a byte budget), and a session keeps at most
`SESSION_LIMITS[source]` in-memory models of each source, letting the oldest go (never the model or
partner currently selected). `tests/test_caches.py` checks the bounds; `bench/upload_memory.py`
measures the server's memory over hundreds of uploads.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas  # noqa: F401 - imported here, once, before any page draws a plot: see below
import streamlit as st
import torch

from .. import latent
from ..checkpoint import SHIPPED_DIR, checkpoint_summary, find_checkpoints, load_checkpoint, user_dir
from ..data import DataUnavailable, Split, load_split
from ..models import Autoencoder

# Plotly checks its inputs against pandas with `sys.modules.get("pandas")`, never importing it. So
# while one session's page imports pandas for the first time (st.dataframe does, lazily), another
# session building a figure finds the half-imported module and fails ("partially initialized module
# 'pandas' has no attribute 'Series"): seen with ten sessions in bench/load_test.py. Every page
# imports this module first, and Python makes a second importer wait until a module has finished,
# so importing pandas above means no script ever sees it half done.

SESSION_MODELS = "vaeviz_session_models"  # session_state: key -> (ModelRef, model), oldest first
# In-memory models one session keeps, per source. An upload costs what its file does (up to 64 MB)
# and a person can upload any number, so uploads are kept few; trained models take minutes each and
# a sweep makes up to 12, so they get more room. Saving a model to the user folder keeps it for good.
SESSION_LIMITS = {"upload": 8, "session": 32}
UPLOADS_SEEN = "vaeviz_uploads_seen"  # session_state: digest -> model key of the uploads still held
LET_GO = "vaeviz_models_let_go"  # session_state: labels of the models the last registration let go
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
    """Make an in-memory model (trained or uploaded here) available to this session's pages.

    If the session then holds more than `SESSION_LIMITS[source]` models of that source, the oldest
    ones that are not selected are let go; their labels go to `st.session_state[LET_GO]` for the
    sidebar to mention.
    """
    models = st.session_state.setdefault(SESSION_MODELS, {})
    key = f"{source}:{uuid.uuid4().hex[:12]}"
    ref = ModelRef(key, label, source, None, model.kind, model.cfg.arch, model.cfg.latent_dim,
                   model.meta.get("dataset") or "")
    models[key] = (ref, model)
    let_go = _enforce_limit(source, keep={key})
    if let_go:
        st.session_state[LET_GO] = let_go
    return ref


def _enforce_limit(source: str, keep: set[str]) -> list[str]:
    """Forget the oldest models of `source` beyond its limit; returns their labels."""
    limit = SESSION_LIMITS.get(source)
    if limit is None:
        return []
    models = st.session_state.get(SESSION_MODELS, {})
    keep = keep | {st.session_state.get("model_key"), st.session_state.get("partner_key")}
    mine = [k for k, (ref, _) in models.items() if ref.source == source]  # dicts keep insertion order
    let_go = []
    for key in mine:
        if len(mine) - len(let_go) <= limit:
            break
        if key not in keep:
            let_go.append(models[key][0].label)
            forget_session_model(key)
    return let_go


def forget_session_model(key: str) -> None:
    """Drop a session model and everything this session keeps about it (codes, slider positions).

    Pages key their per-model state by the model's key (`z::<key>`, `slider::<key>::<i>`, ...); the
    key holds a random part, so any session_state key containing it belongs to this model.
    """
    st.session_state.get(SESSION_MODELS, {}).pop(key, None)
    seen = st.session_state.get(UPLOADS_SEEN, {})
    for digest in [d for d, k in seen.items() if k == key]:
        del seen[digest]  # so uploading the same file again registers it again
    for name in [n for n in st.session_state.keys() if isinstance(n, str) and key in n]:
        del st.session_state[name]


@st.cache_resource(max_entries=32, show_spinner=False)
def _load_file(path: str, mtime_ns: int) -> Autoencoder:
    return load_checkpoint(path)


@st.cache_resource(max_entries=8, show_spinner=False)
def load_uploaded(digest: str, _data: bytes, name: str) -> Autoencoder:
    """Load uploaded checkpoint bytes (validated; nothing written to disk), cached by content.

    Keyed by the bytes' SHA-256 (`digest`), not the bytes themselves, which Streamlit would hash
    again on every call. Shared by sessions that upload the same file: treat as read-only.
    """
    return load_checkpoint(_data, name=name)


def upload_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def register_upload(name: str, data: bytes) -> tuple[str, bool]:
    """Validate uploaded checkpoint bytes and add the model to this session, once per content.

    Returns (model key, whether it is new to the session). A bad file raises ValueError and
    nothing is kept.
    """
    digest = upload_digest(data)
    seen = st.session_state.setdefault(UPLOADS_SEEN, {})
    if seen.get(digest) in st.session_state.get(SESSION_MODELS, {}):
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


# Each entry is (n, D) float32 means and log-variances: 80 kB for a 2-D model, 640 kB for 16-D,
# 10 MB at the largest latent size (256); the byte budget caps the worst case as well as the count.
@st.cache_data(max_entries=64, max_size="256MB", show_spinner="Encoding the test set ...")
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
