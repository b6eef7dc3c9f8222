"""Bounded memory under many uploads: caches, session models and session state stay within their limits.

A person can upload any number of distinct checkpoints and images, and many people use one server.
These tests upload more than every limit (45 checkpoints over three sessions, 12 through the sidebar,
40 images on the Draw page) and check what the server holds afterwards: at most
`SessionModels.LIMITS["upload"]` uploaded models per session (the selected one always among them), every
`st.cache_resource` / `st.cache_data` function at or below its `max_entries`, no per-image growth of
session state or caches, a let-go upload registers again when it comes back, and the live decoder's
record of what it sent the page stays bounded without the page ever going without a blob.

Cache sizes are read from Streamlit's cache objects (`CachedFunc._info.get_function_cache`, 1.67);
if that internal API moves, `cache_entries` fails loudly rather than passing.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from vaeviz import ModelConfig, build_model, save_checkpoint
from vaeviz.catalogue import SessionModels
from vaeviz.ui import cache as ui_models
from vaeviz.ui import live as live_decoder

from .support.apptest import shown
from .conftest import ROOT
from .support.checkpoints import measured

UPLOAD_LIMIT = SessionModels.LIMITS["upload"]
# Every cached function of the app and the bound it must keep (its max_entries).
CACHED = {
    "cache.file_info": (ui_models.file_info, 256),
    "cache._load_file": (ui_models._load_file, 32),
    "cache.load_uploaded": (ui_models.load_uploaded, 8),
    "cache._load_test": (ui_models._load_test, 6),
    "cache.encodings": (ui_models.encodings, 64),
    "cache.projection": (ui_models.projection, 64),
    "live._live_model": (live_decoder._live_model, 16),
}


def cache_entries(func) -> int:
    """How many values a `st.cache_resource` / `st.cache_data` function holds right now (all sessions)."""
    cache = func._info.get_function_cache(func._function_key)
    store = getattr(cache, "_mem_cache", None)  # cache_resource: a TTL cache of results
    if store is None:
        store = cache.storage._mem_cache  # cache_data: pickled values in its in-memory storage
    return len(store)


def small_checkpoints(folder: Path, n: int) -> list[Path]:
    """n distinct, valid checkpoints (tiny 2-D mlp VAEs, different seeds), about 10 kB each."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        model = build_model("vae", ModelConfig(arch="mlp", latent_dim=2, hidden=(16, 8)), seed=i)
        paths.append(save_checkpoint(model, folder / f"upload-{i:03d}.safetensors", measured(model)))
    return paths


def uploaded_keys(at: AppTest) -> list[str]:
    held = at.session_state[ui_models.SESSION_MODELS].refs() if ui_models.SESSION_MODELS in at.session_state else []
    return [ref.key for ref in held if ref.source == "upload"]


def _upload_script(folder: str, forget_first: bool = False) -> None:
    """Runs inside AppTest: upload every checkpoint in `folder` (then, optionally, forget and re-upload one)."""
    from pathlib import Path

    import streamlit as st

    from vaeviz.ui import cache as models

    paths = sorted(Path(folder).glob("*.safetensors"))
    keys = [models.register_upload(p.name, p.read_bytes()) for p in paths]
    st.session_state["model_key"] = keys[-1][0]  # as the sidebar does: the latest upload is selected
    if forget_first:
        models.forget_session_model(keys[-1][0])
        st.session_state["again"] = models.register_upload(paths[-1].name, paths[-1].read_bytes())
    st.session_state["results"] = keys


@pytest.fixture
def fresh_caches():
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


def test_many_distinct_uploads_stay_within_the_limits(tmp_path, fresh_caches):
    """45 distinct checkpoints in three sessions: each holds at most the limit, the shared cache at most 8."""
    for s in range(3):
        folder = tmp_path / f"session-{s}"
        small_checkpoints(folder, 15)
        at = AppTest.from_function(_upload_script, args=(str(folder),), default_timeout=60).run()
        assert not at.exception, [e.value for e in at.exception]
        results = at.session_state["results"]
        assert all(new for _, new in results)  # every file was distinct, so each was registered
        held = uploaded_keys(at)
        assert len(held) == UPLOAD_LIMIT
        assert held == [k for k, _ in results[-UPLOAD_LIMIT:]]  # the latest ones, oldest let go first
        models = at.session_state[ui_models.SESSION_MODELS]
        assert set(models.uploads.values()) == set(held)
        assert len(models.let_go) == 1  # the last registration let one go
        # Nothing else in session state refers to a let-go model.
        gone = {k for k, _ in results[:-UPLOAD_LIMIT]}
        assert not [name for name in at.session_state.keys() if any(g in str(name) for g in gone)]
        assert cache_entries(ui_models.load_uploaded) <= 8
    assert cache_entries(ui_models.load_uploaded) == 8  # 45 distinct files went through it


def test_a_let_go_or_forgotten_upload_registers_again(tmp_path, fresh_caches):
    small_checkpoints(tmp_path, 3)
    at = AppTest.from_function(_upload_script, args=(str(tmp_path), True), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    key, new = at.session_state["again"]
    assert new and key != at.session_state["results"][-1][0]
    assert key in uploaded_keys(at)


def test_sidebar_uploads_keep_the_selected_model_and_say_what_was_let_go(tmp_path, monkeypatch, data_root, fresh_caches):
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("VAEVIZ_DATA_DIR", str(data_root))
    paths = small_checkpoints(tmp_path / "uploads", UPLOAD_LIMIT + 4)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/trainer.py")  # a page that only lists models: each upload is one quick run
    at.run()
    for path in paths:
        at.file_uploader(key="sidebar_upload").set_value((path.name, path.read_bytes(), "application/octet-stream")).run()
        assert not at.exception, [e.value for e in at.exception]
    held = uploaded_keys(at)
    assert len(held) == UPLOAD_LIMIT
    assert at.selectbox(key="model_key").value == held[-1]  # the last upload is selected and kept
    labels = at.selectbox(key="model_key").options
    assert "upload-000 (uploaded)" not in labels and f"{paths[-1].stem} (uploaded)" in labels
    assert any("let go of upload-003 (uploaded)" in i.value for i in at.sidebar.info), [i.value for i in at.sidebar.info]

    # The first file again: it was let go, so it comes back as a new upload and is selected.
    at.file_uploader(key="sidebar_upload").set_value((paths[0].name, paths[0].read_bytes(), "application/octet-stream")).run()
    assert not at.exception
    assert any(f"Loaded {paths[0].name}" in shown(s.value) for s in at.sidebar.success)
    assert len(uploaded_keys(at)) == UPLOAD_LIMIT
    assert "upload-000 (uploaded)" in at.selectbox(key="model_key").options
    for name, (func, bound) in CACHED.items():
        assert cache_entries(func) <= bound, name


def _digit_png(i: int) -> bytes:
    """A distinct picture of a digit-like stroke: its angle and thickness follow i."""
    img = Image.new("L", (200 + i, 240), 255)
    draw = ImageDraw.Draw(img)
    draw.line([(60 + i, 40), (150, 60 + 2 * i), (90, 200)], fill=0, width=14 + i % 10)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_many_distinct_image_uploads_hold_nothing_per_image(tmp_path, monkeypatch, data_root, fresh_caches):
    """40 distinct images on the Draw page: session state and every cache stop growing after the first."""
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("VAEVIZ_DATA_DIR", str(data_root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/draw.py")
    at.run()
    at.segmented_control(key="draw::how").set_value("Upload").run()
    snapshots = []
    for i in range(40):
        at.file_uploader(key="draw::upload").set_value((f"digit-{i}.png", _digit_png(i), "image/png")).run()
        assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
        assert sum(c == "reconstruction" for img in at.get("image") for c in img.captions) == 2  # it was used
        if i in (1, 39):
            snapshots.append((sorted(map(str, at.session_state.keys())),
                              {name: cache_entries(func) for name, (func, _) in CACHED.items()}))
    (keys_2, caches_2), (keys_40, caches_40) = snapshots
    assert keys_40 == keys_2  # no key per image
    assert caches_40 == caches_2  # no cache entry per image


def _live_script(count: int) -> None:
    """Runs inside AppTest: mount live sliders for `count` distinct (tiny) decoders, then the first and
    the last of them again, as a page showing an earlier model would."""
    import base64

    import numpy as np

    from vaeviz.ui import live as live_decoder

    def model(i: int) -> live_decoder.LiveModel:
        weights = base64.b64encode(np.float32(i).tobytes()).decode("ascii")
        return live_decoder.LiveModel(f"hash{i:04d}", f"model {i}", 1, [], (1, 1, 1), weights)

    for key, i in [(f"live_{i}", i) for i in range(count)] + [("again_first", 0), ("again_last", count - 1)]:
        live_decoder.live_sliders(model(i), np.zeros(1), ranges=np.array([[-3.0, 3.0]]), dims=[0], key=key)


def test_the_live_decoder_remembers_a_bounded_number_of_sent_blobs():
    """100 decoders in one session: at most MAX_SENT hashes remembered; a forgotten one is sent again."""
    import json

    at = AppTest.from_function(_live_script, args=(100,), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    sent = at.session_state[live_decoder.SENT]
    assert len(sent) == live_decoder.MAX_SENT
    data = [json.loads(e.proto.json) for e in at.get("bidi_component")]
    assert all(list(d["blobs"]) == [f"hash{i:04d}"] for i, d in enumerate(data[:100]))  # each sent once
    again_first, again_last = data[100:]
    assert list(again_first["blobs"]) == ["hash0000"]  # let go from the record, so sent again
    assert again_last["blobs"] == {}  # still remembered: only its hash travels
