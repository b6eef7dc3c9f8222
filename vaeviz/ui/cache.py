"""The app's shared caches: which models exist, loading them, their data, encodings and maps.

Checkpoint files are loaded once per (path, modification time) and shared by every session through
`st.cache_resource`, so they are read-only here. A session's own models (trained or uploaded here)
live in its `SessionModels` (`vaeviz.catalogue`), kept in `st.session_state`. Encodings and
projections are numpy arrays cached under the model's key with `st.cache_data`.

Everything held is bounded, so many users and many distinct uploads cannot grow the server without
limit: every cache has `max_entries` (the encodings also a byte budget), and a session keeps at most
`SessionModels.LIMITS[source]` in-memory models of each source. `tests/test_caches.py` checks the
bounds; `bench/upload_memory.py` measures the server's memory over hundreds of uploads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas  # noqa: F401 - imported here, once, before any page draws a plot: see below
import streamlit as st
import torch

from .. import latent
from ..catalogue import ModelRef, SessionModels, file_ref
from ..checkpoint import SHIPPED_DIR, checkpoint_summary, find_checkpoints, load_checkpoint, user_dir
from ..data import DATASETS, DataUnavailable, Split, load_split
from ..folders import allowed_roots
from ..meta import CheckpointInfo, CheckpointMeta
from ..models import Model
from ..tasks import Task, TaskPool

# Plotly checks its inputs against pandas with `sys.modules.get("pandas")`, never importing it. So
# while one session's page imports pandas for the first time (st.dataframe does, lazily), another
# session building a figure finds the half-imported module and fails ("partially initialized module
# 'pandas' has no attribute 'Series"): seen with ten sessions in bench/load_test.py. Every page
# imports this module first, and Python makes a second importer wait until a module has finished,
# so importing pandas above means no script ever sees it half done.

SESSION_MODELS = "vaeviz_session_models"  # session_state: this session's SessionModels
FALLBACK_DATASET = "digits"  # offline stand-in for MNIST-like data when the files are missing
MAP_POINTS = 5000  # encoded test images drawn on maps


def session_models() -> SessionModels:
    """This browser session's own models (made on first use)."""
    if not isinstance(st.session_state.get(SESSION_MODELS), SessionModels):
        st.session_state[SESSION_MODELS] = SessionModels()
    return st.session_state[SESSION_MODELS]


@st.cache_data(max_entries=256, show_spinner=False)
def file_info(path: str, mtime_ns: int) -> CheckpointInfo:
    """A checkpoint file's listing (validated as a load would be), cached per version of the file."""
    return checkpoint_summary(path)


def _file_ref(path: Path, source: str) -> ModelRef | None:
    try:
        mtime = path.stat().st_mtime_ns
        return file_ref(file_info(str(path), mtime), source, mtime)
    except (ValueError, OSError):
        return None  # unreadable files are listed (with the reason) by the model zoo, not here


def known_models() -> list[ModelRef]:
    """Every model this session can use: shipped, saved by users, trained here, uploaded here."""
    refs = [_file_ref(p, "shipped") for p in find_checkpoints([SHIPPED_DIR])]
    refs += [_file_ref(p, "user") for p in find_checkpoints([user_dir()])]
    refs += session_models().refs()
    return [r for r in refs if r is not None]


def selected_keys() -> set[str]:
    """The keys the sidebar has selected: a session never lets these go."""
    return {k for k in (st.session_state.get("model_key"), st.session_state.get("partner_key")) if k}


def add_session_model(model: Model, label: str, source: str = "session") -> ModelRef:
    """Hold an in-memory model for this session (the oldest unselected ones go beyond the limit)."""
    models = session_models()
    before = set(models.entries)
    ref = models.add(model, label, source, keep=selected_keys())
    for key in before - set(models.entries):
        _clear_page_state(key)
    return ref


def forget_session_model(key: str) -> None:
    """Drop a session model and everything this session keeps about it (codes, slider positions)."""
    session_models().forget(key)
    _clear_page_state(key)


def _clear_page_state(key: str) -> None:
    """Pages key their per-model state by the model's key (`z::<key>`, `slider::<key>::<i>`, ...); the
    key holds a random part, so any session_state key containing it belongs to that model."""
    for name in [n for n in st.session_state.keys() if isinstance(n, str) and key in n]:
        del st.session_state[name]


def forget_let_go() -> list[str]:
    """Labels of the models the last addition let go (once), their page state cleared."""
    models = session_models()
    let_go, models.let_go = models.let_go, []
    return let_go


@st.cache_resource(max_entries=32, show_spinner=False)
def _load_file(path: str, mtime_ns: int) -> Model:
    return load_checkpoint(path)


@st.cache_resource(max_entries=8, show_spinner=False)
def load_uploaded(digest: str, _data: bytes, name: str) -> Model:
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
    models = session_models()
    if models.uploads.get(digest) in models:
        return models.uploads[digest], False
    model = load_uploaded(digest, data, name)
    ref = add_session_model(model, f"{name.removesuffix('.safetensors')} (uploaded)", "upload")
    models.uploads[digest] = ref.key
    return ref.key, True


def get_model(ref: ModelRef) -> Model:
    """The model behind `ref`. Shared file models are read-only: never train or modify them."""
    if ref.path is not None:
        return _load_file(ref.path, ref.mtime_ns)
    return session_models().model(ref.key)


# --- data ------------------------------------------------------------------------------------


@st.cache_resource(max_entries=6, show_spinner="Loading the test images ...")
def _load_test(dataset: str) -> Split:
    return load_split(dataset, "test", roots=allowed_roots())  # a folder only under the server's allowed roots


def test_data(dataset: str, shape: tuple[int, int, int] | None = None) -> tuple[Split, str, str | None]:
    """The test split of `dataset`, or the offline digits if its files are missing (and, given the
    model's image `shape`, the digits fit it; else the reason the data are missing, as a DataUnavailable).

    Returns (split, the data set actually used, a note for the page or None).
    """
    try:
        return _load_test(dataset or "mnist"), dataset or "mnist", None
    except DataUnavailable as exc:
        if shape is not None and shape != DATASETS[FALLBACK_DATASET].image_shape:
            raise
        note = f"{exc} Showing scikit-learn's bundled digits instead (they need no download)."
        return _load_test(FALLBACK_DATASET), FALLBACK_DATASET, note


def data_for(ref: ModelRef) -> tuple[Split, str, str | None]:
    """The test data a model is explored with (its own data set, if its images fit the model)."""
    model = get_model(ref)
    split, used, note = test_data(ref.dataset or "mnist", model.cfg.image_shape)
    if tuple(split.images.shape[1:]) != model.cfg.image_shape:
        raise ValueError(f"the {used} images do not fit this model ({model.cfg.image_shape})")
    return split, used, note


# Each entry is (n, D) float32 means and log-variances: 80 kB for a 2-D model, 640 kB for 16-D,
# 10 MB at the largest latent size (256); the byte budget caps the worst case as well as the count.
@st.cache_data(max_entries=64, max_size="256MB", show_spinner="Encoding the test set ...")
def encodings(key: str, dataset: str, n: int, _model: Model, _images: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
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


_TASKS = TaskPool(limit=32, seconds_per_unit={"t-SNE": 0.008})  # ~8 ms a code here, until measured
TSNE_POINTS = 2000  # the map's default: what the start-up warm-up computes


def tasks() -> TaskPool:
    """The server's background work (t-SNE maps): each computed once, for every session that asks.
    A plain module-level pool, so the start-up warm-up (no session, no script) shares it too."""
    return _TASKS


def warm_tsne() -> None:
    """At start-up, one after another: the t-SNE maps of every shipped image model's first 2,000 test
    codes, so the first person to open a t-SNE map finds it ready. Runs in the warm-up thread."""
    for path in find_checkpoints([SHIPPED_DIR]):
        try:
            info = checkpoint_summary(path)
            if info.meta.config.latent_dim < 2 or info.meta.config.height < 8 or not info.meta.dataset:
                continue
            ref = file_ref(info, "shipped", path.stat().st_mtime_ns)
            split = load_split(ref.dataset, "test", limit=TSNE_POINTS, roots=allowed_roots())
            mu = latent.encode(load_checkpoint(path), split.images)[0]
            tsne_task(ref, ref.dataset, mu).done.wait()
        except (OSError, ValueError):  # a model without its data here: its map is computed when asked
            continue


def tsne_task(ref: ModelRef, dataset: str, mu: np.ndarray) -> Task:
    """The t-SNE of a model's first len(mu) test codes: started if nobody has yet, shared by everyone."""
    codes = np.array(mu, copy=True)  # the thread's own copy: nothing it reads can change under it
    return tasks().submit(f"tsne:{ref.key}:{dataset}:{len(mu)}", "t-SNE", len(mu), lambda: latent.tsne(codes))


class Pending(Exception):
    """A map whose coordinates are still being computed (`task` says how far it is)."""

    def __init__(self, task: Task) -> None:
        super().__init__(f"{task.kind} is still running")
        self.task = task


def map_view(ref: ModelRef, mu: np.ndarray, dataset: str, method: str = "pca",
             dims: tuple[int, int] = (0, 1)) -> latent.MapView:
    """The one map of a model's encoded test set, with its PCA cached and its t-SNE computed once per
    server (`Pending` while it runs)."""
    n = len(mu)
    if method == "tsne" and mu.shape[1] > 1:
        task = tsne_task(ref, dataset, mu)
        if not task.done.is_set():
            raise Pending(task)
        return latent.map_view(mu, "tsne", tsne_coords=task.wait())
    if method == "pca" and mu.shape[1] > 1:
        return latent.map_view(mu, "pca", dims, projection=projection(ref.key, dataset, n, mu))
    return latent.map_view(mu, "raw", dims)


def slider_ranges(mu: np.ndarray) -> np.ndarray:
    """Per-dimension slider range (D, 2): at least [-3, 3] (the prior), wider for spread-out codes."""
    lo = np.minimum(np.percentile(mu, 0.5, axis=0), -3.0)
    hi = np.maximum(np.percentile(mu, 99.5, axis=0), 3.0)
    return np.stack([np.floor(lo), np.ceil(hi)], 1)


def meta_of(ref: ModelRef) -> tuple[CheckpointMeta | None, int | None]:
    """A model's metadata and size in bytes: from its file's header (no model built), or in memory."""
    if ref.path is not None:
        try:
            info = file_info(ref.path, ref.mtime_ns)
        except (OSError, ValueError):
            return None, None
        return info.meta, info.size_bytes
    model = get_model(ref)
    return model.meta, sum(t.numel() * t.element_size() for t in model.state_dict().values())


def unreadable_checkpoints() -> list[str]:
    """Checkpoint files the sidebar skips because they cannot be read, with the reason."""
    problems = []
    for path in find_checkpoints():
        try:
            file_info(str(path), path.stat().st_mtime_ns)
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
    return problems


# --- what the comparisons need ------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def judge_classifier():
    """The shipped MNIST classifier and its record, shared by every session; (None, reason) if missing."""
    from ..judge import JUDGE_PATH, load_classifier

    try:
        return load_classifier(JUDGE_PATH)
    except (OSError, ValueError) as exc:
        return None, {"problem": str(exc)}


def judges(ref: ModelRef) -> bool:
    """Whether the MNIST judge applies: the model's images are MNIST digits."""
    return ref.dataset == "mnist" and judge_classifier()[0] is not None


@st.cache_resource(max_entries=32, show_spinner=False)
def _cloud(key: str, dataset: str, n: int, _mu: np.ndarray):
    from ..contrast import data_cloud

    return data_cloud(_mu)


def data_cloud(ref: ModelRef):
    """A model's encoded test images (the first 5,000) with its typical neighbour distance."""
    from ..contrast import REFERENCE_CODES

    mu, _, _, used, _ = encoded(ref, REFERENCE_CODES)
    return _cloud(ref.key, used, len(mu), mu)


@st.cache_data(max_entries=32, show_spinner="Measuring 500 random test pairs ...")
def contrast_summary(keys: tuple[str, str], steps: int, how: str, _refs: tuple[ModelRef, ModelRef]) -> dict:
    """Over 500 random test pairs, how the two models' paths compare (computed once per server)."""
    from ..contrast import REFERENCE_CODES, compare_paths

    models = tuple(get_model(r) for r in _refs)
    codes = tuple(encoded(r, REFERENCE_CODES)[0] for r in _refs)
    clouds = tuple(data_cloud(r) for r in _refs)
    judge = judge_classifier()[0] if all(judges(r) for r in _refs) else None
    return compare_paths(models, clouds, codes, n_pairs=500, steps=steps, how=how, classifier=judge)


def shipped(*names: str) -> list[ModelRef] | None:
    """The shipped models of these names, in order; None if any is missing (a lecture step then says so)."""
    by_name = {r.name: r for r in known_models() if r.source == "shipped"}
    found = [by_name.get(n) for n in names]
    return None if any(r is None for r in found) else found
