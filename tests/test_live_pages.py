"""The live decoder on the pages, under Streamlit's AppTest (no browser): what each page hands the
component, that weights travel once per session, and the fallback to server-side decoding with a
note when the browser cannot run a model's decoder."""

from __future__ import annotations

import json

import pytest

from vaeviz import webdecoder

from .support.apptest import open_app


@pytest.fixture
def app(tmp_path, monkeypatch, data_root):
    from vaeviz.ui import live as live_decoder

    monkeypatch.setenv("VAEVIZ_USER_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("VAEVIZ_DATA_DIR", str(data_root))
    live_decoder._live_model.clear()  # cached per process: start each test from the real export

    yield open_app
    live_decoder._live_model.clear()


def component_data(at) -> list[dict]:
    """What the page hands each live decoder (not the owner-token component, which every page has)."""
    return [d for d in (json.loads(e.proto.json) for e in at.get("bidi_component")) if "mode" in d]


def go_live(at) -> None:
    at.segmented_control(key="explorer_decode").set_value("live").run()
    assert not at.exception, [e.value for e in at.exception]


def test_explorer_live_panel_gets_the_decoder_once_per_session(app):
    at = app("pages/explorer.py")
    go_live(at)
    [first] = component_data(at)
    assert first["mode"] == "sliders" and first["pad"] is not None
    weights = first["models"][0]["hash"]
    assert weights in first["blobs"]  # the first run carries the weights ...
    at.button(key=next(b.key for b in at.button if b.label == "Random from prior")).click().run()
    [second] = component_data(at)
    assert second["blobs"] == {}  # ... later runs only their hash
    assert second["models"][0]["hash"] == weights
    assert second["z"] != first["z"]  # the server's buttons still move the code
    assert not any(s.label == "z1" for s in at.slider)  # the live panel replaces Streamlit's sliders


def test_map_and_interpolation_pages_mount_their_live_parts(app):
    at = app("pages/latent_map.py")
    [pad] = component_data(at)
    assert pad["mode"] == "pad" and pad["pad"]["points"] in pad["blobs"]
    at.switch_page("pages/interpolate.py").run()
    assert not at.exception
    [scrub] = component_data(at)
    assert scrub["mode"] == "scrubber" and len(scrub["models"]) == 2  # the AE and the VAE
    assert scrub["scrubber"]["ticks"] == at.slider(key="interp_steps").value


def test_a_decoder_the_browser_cannot_run_falls_back_with_a_note(app, monkeypatch):
    monkeypatch.setattr(webdecoder, "MAX_PARAMS", 10)
    at = app("pages/explorer.py")
    go_live(at)
    assert component_data(at) == []
    assert any("not available" in i.value and "million weights" in i.value for i in at.info)
    assert any(s.label == "z1" for s in at.slider)  # the server-side sliders instead
    for page in ("pages/latent_map.py", "pages/interpolate.py"):
        at.switch_page(page).run()
        assert not at.exception and component_data(at) == []
        assert any("million weights" in i.value for i in at.info), page
