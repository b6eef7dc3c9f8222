"""Views in the URL (AppTest): what a page shows is written into its address, read back from it in a
new session, and a bad or stale value is left out with a note, never an exception."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from .support.apptest import ROOT


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(tmp_path / "user"))


def opened(page: str | None = None, **params: str) -> AppTest:
    """A new session opened at a link: app.py (and a page) with these query parameters."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(params)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.query_params.update(params)
        at.run()
    assert not at.exception, at.exception
    return at


def notes(at: AppTest) -> list[str]:
    return [i.value for i in at.info if i.value.startswith("This link's")]


def test_the_model_and_its_partner_travel_in_the_link(user_dir, data_root):
    at = opened(model="mnist-vae-mlp-16", vs="mnist-ae-conv-16")  # not the default partner (mnist-ae-mlp-16)
    assert "mnist-vae-mlp-16" in at.session_state["model_key"] and "mnist-ae-conv-16" in at.session_state["partner_key"]
    assert at.query_params["model"] == "mnist-vae-mlp-16" and at.query_params["vs"] == "mnist-ae-conv-16"
    at.selectbox(key="model_key").select("mnist-ae-mlp-2").run()  # the address follows the sidebar
    assert at.query_params["model"] == "mnist-ae-mlp-2" and at.query_params["vs"] == "mnist-vae-mlp-2"


def test_a_stale_model_falls_back_with_a_note(user_dir, data_root):
    at = opened(model="a-model-deleted-yesterday", present="maybe")
    assert "mnist-vae-mlp-2" in at.session_state["model_key"]  # the default
    (note,) = notes(at)
    assert "model=a-model-deleted-yesterday" in note and "present=maybe" in note
    assert at.query_params["model"] == "mnist-vae-mlp-2" and "present" not in at.query_params


def test_the_explorers_code_and_view_are_restored(user_dir, data_root):
    at = opened("pages/explorer.py", model="mnist-vae-mlp-2", z="1.5,-0.75")
    z = [s.value for s in at.slider if s.label in ("z1", "z2")]
    assert z == [1.5, -0.75]
    assert at.query_params["z"] == "1.5,-0.75"
    bad = opened("pages/explorer.py", model="mnist-vae-mlp-2", z="1,2,3")
    assert any("z=1,2,3" in n and "has 3 numbers" in n for n in notes(bad))
    assert [s.value for s in bad.slider if s.label in ("z1", "z2")] == [0.0, 0.0]
    grid = opened("pages/explorer.py", model="mnist-vae-mlp-16", view="grid", gx="4", gy="15")
    assert grid.session_state["explorer_view"] == "Latent grid"
    assert (grid.selectbox(key=next(k for k in [b.key for b in grid.selectbox] if k.startswith("gx::"))).value,
            grid.selectbox(key=next(k for k in [b.key for b in grid.selectbox] if k.startswith("gy::"))).value) == (4, 15)


def test_the_interpolation_pair_and_steps_are_restored(user_dir, data_root):
    at = opened("pages/interpolate.py", i="12", j="345", steps="7", path="spherical", source="indices")
    assert (at.session_state["interp_i"], at.session_state["interp_j"]) == (12, 345)
    assert at.slider(key="interp_steps").value == 7 and at.radio(key="interp_path").value == "spherical"
    bad = opened("pages/interpolate.py", i="99999", j="5", steps="lots")
    messages = notes(bad)
    assert any("i=99999" in n and "out of range" in n for n in messages) and any("steps=lots" in n for n in messages)
    assert bad.session_state["interp_j"] == 5 and bad.slider(key="interp_steps").value == 10


def test_a_lecture_step_has_its_own_address(user_dir, data_root):
    from vaeviz.ui.lecture import STEPS

    slugs = [s.slug for s in STEPS]
    n = slugs.index("beta") + 1
    at = opened(step="beta")
    assert at.title[0].value.startswith(f"{n}. β")
    at.button(key="lecture_next").click().run()
    assert at.query_params["step"] == slugs[n] and at.title[0].value.startswith(f"{n + 1}.")
    bad = opened(step="no-such-step")
    assert bad.title[0].value.startswith("1.") and any("step=no-such-step" in n for n in notes(bad))


def test_presentation_mode_from_the_link(user_dir, data_root):
    at = opened(present="1")
    assert at.session_state["present"] is True
    assert any(b.key == "present_leave" for b in at.button)
    at.button(key="present_leave").click().run()
    assert at.session_state["present"] is False and "present" not in at.query_params
