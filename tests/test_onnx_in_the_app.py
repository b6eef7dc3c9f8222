"""An imported ONNX model in the app: the explorer, the map and the interpolation page run on one
imported with `vaeviz import-onnx` (AppTest, the whole app), and the Model zoo's import form imports a
pair, refuses a truncated file with one message, saves the import as its owner's, and is absent in
explore-only mode. The conversion itself is tested in test_onnx_import.py."""

from __future__ import annotations

import pytest

from vaeviz import load_checkpoint
from vaeviz.__main__ import main

from .support.onnx_models import TOLERANCE, MlpDecoder, MlpEncoder, exported_pair, max_differences, seeded


@pytest.mark.parametrize("page", ["pages/explorer.py", "pages/latent_map.py", "pages/interpolate.py"])
def test_an_imported_vae_is_explored_on_the_pages(tmp_path, data_root, monkeypatch, page):
    """Imported into the user folder, the VAE is a model like any other: the explorer, the map and the
    interpolation page run on it (AppTest, the whole app) and show its decoded images."""
    from streamlit.testing.v1 import AppTest

    from .conftest import ROOT

    exported_pair(seeded(MlpEncoder(), 0), seeded(MlpDecoder(), 0), tmp_path, "dynamo")
    user = tmp_path / "user"
    assert main(["import-onnx", "--encoder", str(tmp_path / "enc-dynamo.onnx"), "--decoder",
                 str(tmp_path / "dec-dynamo.onnx"), "--kind", "vae", "--out", str(user / "mine.safetensors"),
                 "--data-dir", str(data_root), "--test-limit", "200"]) == 0
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(user))
    monkeypatch.setenv("VAEVIZ_DATA_DIR", str(data_root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    box = at.selectbox(key="model_key")
    box.select_index(list(box.options).index("mine (saved)")).run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.get("image") or at.get("plotly_chart"), "nothing drawn"


# --- the Model zoo's import form --------------------------------------------------------------


@pytest.fixture
def zoo_folders(model_folders):
    """The user folder of an empty model folder pair (conftest's model_folders): the zoo lists only what a test makes."""
    return model_folders[1]


def _upload(at, key: str, name: str, data: bytes) -> None:
    at.file_uploader(key=key).set_value((name, data, "application/octet-stream"))


def test_zoo_imports_a_pair_refuses_a_bad_one_and_saves_it_as_its_owner(tmp_path, zoo_folders):
    from vaeviz.ui.identity import browser_owner

    from .support.apptest import open_app, session_labels

    token = "0123456789abcdef0123456789abcdef"
    enc, dec = exported_pair(seeded(MlpEncoder(), 0), seeded(MlpDecoder(), 1), tmp_path, "dynamo")
    at = open_app("pages/zoo.py", token=token)
    _upload(at, "onnx_encoder_0", "my-encoder.onnx", enc[: len(enc) // 2])  # truncated
    _upload(at, "onnx_decoder_0", "my-decoder.onnx", dec)
    at.run()
    at.button(key="onnx_import").click()
    at.run()
    assert not at.exception and at.error and "Not imported" in at.error[0].value
    assert "my-encoder.onnx is not an ONNX model" in at.error[0].value.replace("\\", "")
    assert session_labels(at) == []

    _upload(at, "onnx_encoder_0", "my-encoder.onnx", enc)
    at.run()
    at.button(key="onnx_import").click()
    at.run()
    assert not at.exception and not at.error
    assert session_labels(at) == ["my-encoder (imported)"]
    assert "my-encoder (imported)" in list(at.dataframe[0].value["name"])
    assert not zoo_folders.exists() or not list(zoo_folders.iterdir())  # nothing written until saved
    at.text_input(key="zoo_save_name").set_value("my-own-vae")
    at.button(key="zoo_save").click()
    at.run()
    assert not at.exception and not at.error
    saved = load_checkpoint(zoo_folders / "my-own-vae.safetensors")
    assert saved.cfg.arch == "graph" and saved.meta.owner == browser_owner(token).id
    assert saved.meta.imported.startswith("ONNX: my-encoder.onnx + my-decoder.onnx")
    assert max(max_differences(saved, seeded(MlpEncoder(), 0), seeded(MlpDecoder(), 1), 8)) <= TOLERANCE


def test_an_explore_only_zoo_has_no_import_form(zoo_folders, monkeypatch):
    from .support.apptest import open_app

    monkeypatch.setenv("VAEVIZ_MODE", "explore")
    at = open_app("pages/zoo.py")
    assert not any(u.key == "onnx_encoder_0" for u in at.get("file_uploader"))
