"""Faults seen through the pages: saving into a full or read-only folder from the Trainer and the
Model zoo, a Save click for a run that is gone, a diverging run on the Trainer, and every page with
a data folder that is missing, empty or corrupt."""

from __future__ import annotations

import dataclasses

import pytest

from vaeviz import checkpoint as ckpt
from vaeviz import jobs, load_checkpoint
from vaeviz.jobs import JobStatus

from .support.apptest import SESSION_MODELS, job_of, open_app, run_until
from .support.checkpoints import measured
from .support.faults import ROOT, corrupt, finite, good_folder, weights_equal

EXPLORER_PAGES = ["pages/explorer.py", "pages/latent_map.py", "pages/interpolate.py", "pages/draw.py"]


def trainer_page():
    return open_app("pages/trainer.py")


def train_on_digits(at, epochs: int = 1) -> None:
    """A real run that takes seconds: scikit-learn's digits (no files needed), one epoch."""
    at.selectbox(key="trainer_dataset").set_value("digits")
    at.number_input(key="trainer_epochs").set_value(epochs)
    at.button(key="trainer_start").click()
    run_until(at, lambda: not job_of(at).view().active)


def trained_here(at) -> list:
    return [(ref, model) for ref, model in at.session_state[SESSION_MODELS].entries.values() if "trained here" in ref.label]


def save_into_the_fault(at, page_fault, name_key: str, button_key: str, name: str) -> None:
    """Save as `name` with a page's name box and button; the page must say why it could not."""
    at.text_input(key=name_key).set_value(name)
    at.button(key=button_key).click()
    at.run()
    assert not at.exception, at.exception
    (error,) = [e.value for e in at.error]
    assert f"Could not write to {page_fault.folder}: {page_fault.strerror}" in error
    assert "stays usable in this session" in error
    page_fault.check_untouched()


def test_trainer_page_save_on_a_full_or_read_only_folder(page_fault, monkeypatch):
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(page_fault.folder))
    at = trainer_page()
    train_on_digits(at)
    job = job_of(at)
    assert job.view().status is JobStatus.FINISHED, job.view().message
    save_into_the_fault(at, page_fault, "trainer_save_name", "trainer_save", "after-the-fault")
    assert not at.button(key="trainer_save").disabled  # it can be tried again

    # Still usable: it is in the sidebar, and the explorer draws it.
    ((ref, model),) = trained_here(at)
    box = at.selectbox(key="model_key")
    box.select_index(list(box.options).index(ref.label)).run()
    at.switch_page("pages/explorer.py")
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["model_key"] == ref.key and at.get("image")

    # The fault goes away: the same model saves, from the Trainer page again.
    page_fault.clear()
    at.switch_page("pages/trainer.py")
    at.run()
    at.text_input(key="trainer_save_name").set_value("after-the-fault")
    at.button(key="trainer_save").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    saved = page_fault.folder / "after-the-fault.safetensors"
    assert weights_equal(load_checkpoint(saved), model)
    assert trained_here(at) == []  # the saved file took the session copy's place in the sidebar


def test_zoo_save_on_a_full_or_read_only_folder(page_fault, monkeypatch, tiny_vae):
    """The zoo saves uploaded (and trained) models the same way: a clear message, the model kept."""
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(page_fault.folder))
    at = open_app("pages/zoo.py")
    upload = ckpt.checkpoint_bytes(tiny_vae, measured(tiny_vae, metrics={"recon": 1.0}))
    at.file_uploader(key="zoo_upload_0").set_value(("friends-vae.safetensors", upload, "application/octet-stream"))
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    save_into_the_fault(at, page_fault, "zoo_save_name", "zoo_save", "friends-vae")
    refs = at.session_state[SESSION_MODELS].refs()
    assert [r.label for r in refs] == ["friends-vae (uploaded)"]  # still listed, still the details shown
    assert at.selectbox(key="zoo_details").value == refs[0].key

    page_fault.clear()
    at.text_input(key="zoo_save_name").set_value("friends-vae")
    at.button(key="zoo_save").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert weights_equal(load_checkpoint(page_fault.folder / "friends-vae.safetensors"), tiny_vae)


def test_a_save_click_for_a_run_that_is_gone_saves_nothing(tmp_path, monkeypatch):
    """Save clicked on a page drawn before Start replaced the run: it raised IndexError."""
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(tmp_path / "user"))
    at = trainer_page()
    train_on_digits(at)
    from vaeviz.ui.identity import browser_owner
    from vaeviz.ui.training import board

    from .support.apptest import token_of

    replaced = board()._jobs  # Start, clicked in another tab of this browser, replaced the run
    replaced[browser_owner(token_of(at)).id] = jobs.TrainingJob([jobs.RunSpec(dataset="digits", latent_dim=2, epochs=1)])
    at.button(key="trainer_save").click()  # the button of the page as drawn for the finished run
    at.run()
    assert not at.exception, at.exception
    assert any("no longer here" in e.value for e in at.error), [e.value for e in at.error]
    assert not (tmp_path / "user").exists() or list((tmp_path / "user").iterdir()) == []


def test_trainer_page_reports_a_diverging_run(tmp_path, monkeypatch):
    """An absurd learning rate (10; the page offers at most 0.01) blows the loss up for real."""
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(tmp_path / "user"))
    real_fit = jobs.fit
    monkeypatch.setattr(jobs, "fit",
                        lambda model, data, cfg, **kw: real_fit(model, data, dataclasses.replace(cfg, lr=10.0), **kw))
    at = trainer_page()
    train_on_digits(at, epochs=3)
    view = job_of(at).view()
    assert view.status is JobStatus.FINISHED and view.diverged and view.progress["epoch"] <= 1
    errors = [e.value for e in at.error]
    assert any("The run diverged: the loss became nan" in e and "last good weights" in e for e in errors), errors
    ((ref, model),) = trained_here(at)  # kept, in the sidebar, with finite weights
    assert finite(model)
    assert not at.button(key="trainer_start").disabled  # a new run can start
    assert at.button(key="trainer_save") is not None


@pytest.fixture(params=["missing", "empty", "corrupt"])
def bad_data(request, tmp_path, real_slice, monkeypatch, offline):
    import streamlit as st

    root = tmp_path / "data"
    if request.param == "empty":
        root.mkdir()
    elif request.param == "corrupt":
        raw = good_folder(root, real_slice)
        corrupt("truncated", raw, real_slice)
        (raw / "train-images-idx3-ubyte").write_bytes(b"\x1f\x8b garbage")
    monkeypatch.setenv("VAEVIZ_DATA_DIR", str(root))
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(tmp_path / "user"))
    st.cache_resource.clear()  # data and models outlive each AppTest in this process
    st.cache_data.clear()
    jobs._whole_split.cache_clear()
    yield request.param, root
    st.cache_resource.clear()  # no later test may see this folder's fallback
    st.cache_data.clear()
    jobs._whole_split.cache_clear()


def test_every_page_with_a_bad_data_folder(bad_data):
    """Pages that need data say why they show the offline digits instead; the Trainer says why it
    cannot train; what needs only a checkpoint (sliders, samples, the zoo) keeps working."""
    from streamlit.testing.v1 import AppTest

    kind, root = bad_data
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    for page in EXPLORER_PAGES:
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        if page != "pages/draw.py":  # the draw page needs no data until something is drawn
            notes = [i.value for i in at.info if "digits instead" in i.value]
            assert notes and str(root) in notes[0], (page, [i.value for i in at.info])

    # The explorer's sliders need only the checkpoint: a slider still moves the image.
    at.switch_page("pages/explorer.py")
    at.run()
    before = [u for img in at.get("image") for u in img.value][0]
    at.slider(key=next(s.key for s in at.slider if s.label == "z1")).set_value(2.0).run()
    assert not at.exception
    assert [u for img in at.get("image") for u in img.value][0] != before

    # The zoo: table, details and samples from the checkpoints; the comparison says where its images come from.
    at.switch_page("pages/zoo.py")
    at.run()
    assert not at.exception, at.exception
    assert at.get("arrow_data_frame") or at.dataframe
    assert at.get("image")
    assert any("digits instead" in c.value for c in at.caption)

    # The Trainer cannot train on MNIST, and says why, naming the folder.
    at.switch_page("pages/trainer.py")
    at.run()
    assert not at.exception, at.exception
    at.button(key="trainer_start").click()
    run_until(at, lambda: not job_of(at).view().active, timeout=120)
    view = job_of(at).view()
    assert view.status is JobStatus.FAILED
    errors = [e.value for e in at.error]
    assert any(e.startswith("Training failed:") and str(root) in e for e in errors), errors
    if root.exists():
        assert [p for p in root.rglob("*") if p.name.startswith(".download")] == []
