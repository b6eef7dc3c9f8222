"""Every explorer page under Streamlit's AppTest: no exception on any shipped checkpoint, and the
main interactions change what they should."""

from __future__ import annotations

import base64
import json

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vaeviz.checkpoint import SHIPPED_DIR, find_checkpoints

from streamlit.testing.v1 import AppTest

from .support.apptest import shown
from .conftest import ROOT

EXPLORER_PAGES = ["pages/explorer.py", "pages/latent_map.py", "pages/interpolate.py", "pages/draw.py"]
SHIPPED = [p.stem for p in find_checkpoints([SHIPPED_DIR])]


@pytest.fixture
def app(tmp_path, monkeypatch, data_root):
    """A fresh AppTest of the whole app, with an empty user folder (only shipped models)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("VAEVIZ_USER_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("VAEVIZ_DATA_DIR", str(data_root))

    def make(page: str | None = None, model: str | None = None):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        if model is not None:
            choose_model(at, model)
        if page is not None:
            at.switch_page(page)
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return make


def choose_model(at, name: str) -> None:
    box = at.selectbox(key="model_key")
    box.select_index(list(box.options).index(name)).run()  # options are the shown labels


def image_urls(at) -> list[str]:
    return [url for img in at.get("image") for url in img.value]


def test_at_least_the_issue_s_checkpoints_are_shipped():
    expected = {"mnist-ae-mlp-2", "mnist-vae-mlp-2", "mnist-ae-mlp-16", "mnist-vae-mlp-16", "mnist-ae-conv-16",
                "mnist-vae-conv-16"}
    assert expected <= set(SHIPPED)
    assert any(name.startswith("fashion-mnist-vae") for name in SHIPPED)


@pytest.mark.parametrize("model", SHIPPED)
@pytest.mark.parametrize("page", EXPLORER_PAGES)
def test_every_page_on_every_shipped_checkpoint(app, page, model):
    at = app(page, model)
    assert not at.exception
    assert at.title[0].value  # the page drew its title
    assert not at.error, [e.value for e in at.error]


def test_pages_work_offline_without_data_files(app, monkeypatch, tmp_path):
    """No MNIST files and no network: pages fall back to the bundled digits and say so."""
    import streamlit as st

    st.cache_resource.clear()  # models and data outlive each AppTest in this process
    st.cache_data.clear()
    monkeypatch.setenv("VAEVIZ_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # any download attempt fails at once
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    for page in EXPLORER_PAGES:
        from streamlit.testing.v1 import AppTest

        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        if page != "pages/draw.py":  # the draw page needs no data until something is drawn
            assert any("digits instead" in i.value for i in at.info), page


def test_slider_moves_the_decoded_image(app):
    at = app("pages/explorer.py")
    before = image_urls(at)[0]
    at.slider(key=next(s.key for s in at.slider if s.label == "z1")).set_value(2.0).run()
    after = image_urls(at)[0]
    assert after != before
    at.button(key=next(b.key for b in at.button if b.label == "Reset to origin")).click().run()
    assert image_urls(at)[0] == before  # back at the origin, the same image


def test_random_from_prior_moves_the_sliders(app):
    at = app("pages/explorer.py")
    at.button(key=next(b.key for b in at.button if b.label == "Random from prior")).click().run()
    values = [s.value for s in at.slider if s.label.startswith("z")]
    assert any(abs(v) > 0 for v in values)


def test_latent_grid_and_map_render_charts(app):
    at = app("pages/latent_map.py")
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # the AE's map beside the VAE's


@pytest.mark.parametrize("steps", [4, 10, 17])
def test_interpolation_has_the_frames_asked_for(app, steps):
    at = app("pages/interpolate.py")
    at.slider(key="interp_steps").set_value(steps).run()
    assert not at.exception, at.exception
    # One strip holds both rows (so they stay aligned); the distance chart has one path per row, a point per frame.
    chart = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith("-interp_distance"))
    rows = [t for t in chart["data"] if t.get("mode") == "lines+markers"]
    assert [t["name"].split(" · ")[0] for t in rows] == ["AE", "VAE"]  # AE row and VAE row, in that order
    assert all(len(plotted(t["x"])) == steps for t in rows)
    assert len(at.get("download_button")) == 2


def plotted(values) -> np.ndarray:
    """A trace's values from a figure's JSON: a list, or Plotly's typed-array form {"dtype", "bdata"}."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values)


def _digit_png(polarity: str = "dark-on-light") -> bytes:
    img = Image.new("L", (300, 400), 255 if polarity == "dark-on-light" else 0)
    draw = ImageDraw.Draw(img)
    ink = 0 if polarity == "dark-on-light" else 255
    draw.line([(80, 60), (220, 60), (120, 340)], fill=ink, width=28)  # a "7"
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_upload_produces_a_reconstruction(app):
    at = app("pages/draw.py")
    at.segmented_control(key="draw::how").set_value("Upload").run()
    at.file_uploader(key="draw::upload").set_value(("seven.png", _digit_png(), "image/png")).run()
    assert not at.exception and not at.error
    captions = [c for img in at.get("image") for c in img.captions]
    assert sum(c == "reconstruction" for c in captions) == 2  # AE and VAE
    assert len(at.get("plotly_chart")) == 2


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"this is not an image at all", "not"),
    (_digit_png()[:200], ""),
])
def test_bad_upload_is_a_message_not_an_exception(app, content, message):
    at = app("pages/draw.py")
    at.segmented_control(key="draw::how").set_value("Upload").run()
    at.file_uploader(key="draw::upload").set_value(("bad.png", content, "image/png")).run()
    assert not at.exception
    assert at.error and message in at.error[0].value.lower()
    assert not any(c == "reconstruction" for img in at.get("image") for c in img.captions)


def test_sidebar_upload_checks_the_file_and_selects_the_model(app):
    at = app()
    bad = at.file_uploader(key="sidebar_upload").set_value(("evil.safetensors", b"\x80\x04not a checkpoint", "application/octet-stream"))
    bad.run()
    assert not at.exception and any("Not loaded: evil.safetensors" in shown(e.value) for e in at.error)
    good = (ROOT / "checkpoints" / "mnist-ae-mlp-2.safetensors").read_bytes()
    at.file_uploader(key="sidebar_upload").set_value(("mine.safetensors", good, "application/octet-stream")).run()
    assert not at.exception
    assert any("Loaded mine.safetensors" in shown(s.value) for s in at.success)
    assert at.selectbox(key="model_key").value.startswith("upload:")


@pytest.fixture(scope="module")
def one_of_each_kind(tmp_path_factory, mnist_slice):
    """A small model of every kind (one epoch on 2,000 real images), saved in a user folder of its own."""
    from vaeviz import MODELS, ModelConfig, TrainConfig, build_model, evaluate, fit, save_checkpoint

    from .support.checkpoints import measured

    train, test = mnist_slice
    folder = tmp_path_factory.mktemp("kinds")
    for kind in MODELS:
        cfg = ModelConfig(latent_dim=4, hidden=(64, 32), bottom_dim=6, sparsity=0.1, contraction=0.01,
                          likelihood=MODELS[kind].likelihood or "bernoulli")
        model = build_model(kind, cfg, seed=0)
        history = fit(model, train, TrainConfig(epochs=1, device="cpu"), test=test)
        model.meta = measured(model, metrics=evaluate(model, test.images), epochs=history.epochs)
        save_checkpoint(model, folder / f"tiny-{kind}.safetensors")
    return folder


@pytest.mark.parametrize("page", EXPLORER_PAGES + ["pages/zoo.py"])
def test_every_page_shows_every_kind(one_of_each_kind, monkeypatch, data_root, page):
    from vaeviz import MODELS

    monkeypatch.setenv("VAEVIZ_USER_DIR", str(one_of_each_kind))
    monkeypatch.setenv("VAEVIZ_DATA_DIR", str(data_root))
    for kind in MODELS:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.query_params["model"] = f"tiny-{kind} (saved)"
        at.run()
        at.switch_page(page)
        at.query_params["model"] = f"tiny-{kind} (saved)"
        for view in (["sliders", "grid", "prior", "recon"] if page.endswith("explorer.py") else [None]):
            if view:
                at.query_params["view"] = view
            at.run()
            assert not at.exception, (kind, page, view, [e.value for e in at.exception])
            assert not at.error, (kind, page, view, [e.value for e in at.error])
        assert f"tiny-{kind}" in at.session_state["model_key"], kind
