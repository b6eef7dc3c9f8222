"""The Trainer page under AppTest: a short real run gets curves, stops, saves, and agrees with the CLI."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import pytest
from streamlit.testing.v1 import AppTest

from vaeviz import evaluate, load_checkpoint, load_split
from vaeviz.__main__ import main as cli_main
from vaeviz.jobs import JobStatus

from .support.apptest import job_of, open_app, run_until, session_labels, start_sweep, token_of


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """Nothing is written into the repository: the user folder is a temporary one."""
    folder = tmp_path / "user"
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(folder))
    return folder


def trainer_page() -> AppTest:
    return open_app("pages/trainer.py")


def small_run(at: AppTest, *, epochs: int = 1, images: int = 2000) -> None:
    at.select_slider(key="trainer_images").set_value(images)
    at.number_input(key="trainer_epochs").set_value(epochs)


def chart(at: AppTest, key: str) -> dict:
    """The plotly figure (as JSON) of the chart with this key."""
    for el in at.get("plotly_chart"):
        if el.proto.id.endswith(f"-{key}"):
            return json.loads(el.proto.spec)
    raise AssertionError(f"no chart {key}; charts: {[el.proto.id for el in at.get('plotly_chart')]}")


def name_box(at: AppTest):
    return at.text_input(key="trainer_save_name")


def job(at: AppTest):
    return job_of(at)


def test_the_page_starts_with_settings_and_no_job(user_dir):
    at = trainer_page()
    assert at.title[0].value == "Trainer"
    for key in ("trainer_latent", "trainer_beta", "trainer_lr", "trainer_batch", "trainer_images"):
        assert at.select_slider(key=key) is not None
    assert at.select_slider(key="trainer_beta").options[0] == "0"  # beta = 0 is allowed
    assert not at.button(key="trainer_start").disabled
    assert not at.get("plotly_chart")


def test_train_watch_save_and_agree_with_the_cli(user_dir, data_root):
    at = trainer_page()
    small_run(at)
    at.button(key="trainer_start").click()
    at.run()
    assert job(at) is not None and at.button(key="trainer_start").disabled
    run_until(at, lambda: not job(at).view().active)
    view = job(at).view()
    assert view.status is JobStatus.FINISHED, view.message

    # The curves got points: per step (train) and per epoch (train and test).
    curves = chart(at, "trainer_curves")
    by_name = {}
    for trace in curves["data"]:
        by_name.setdefault(trace["name"], trace)
    assert len(by_name["train, per step"]["x"]) >= 10
    assert len(by_name["test, per epoch"]["x"]) == 1
    chart(at, "trainer_kl_bars")
    chart(at, "trainer_latent_map")
    assert len(at.image) >= 2  # the prior samples and the held-out reconstructions

    # The model is in this session's model list (the sidebar of every page) before it is saved.
    assert any("trained here" in label for label in session_labels(at))

    # Save it under a name; then load the file and check it against the CLI's `eval`.
    name_box(at).set_value("my-first-vae")
    at.button(key="trainer_save").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    path = user_dir / "my-first-vae.safetensors"
    assert path.is_file()
    assert any("Saved as" in s.value for s in at.success)
    assert at.button(key="trainer_save").disabled  # saved once
    assert not any("trained here" in label for label in session_labels(at))

    model = load_checkpoint(path)
    test = load_split("mnist", "test", root=data_root)
    fresh = evaluate(model, test.images, seed=0)
    assert model.meta.metrics.neg_elbo == pytest.approx(fresh.neg_elbo, abs=1e-3)
    page_curve = view.epochs[-1]["test"]["neg_elbo"]  # what the page's test curve shows last
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        assert cli_main(["eval", str(path), "--iw-k", "0", "--device", "cpu", "--data-dir", str(data_root)]) == 0
    cli = json.loads(out.getvalue().splitlines()[-1])
    assert abs(cli["test"]["neg_elbo"] - page_curve) < 1.0
    assert model.meta.curves.epochs and model.meta.train.images == 2000 and model.meta.epochs == 1

    # One click selects the saved model and opens the explorer with it.
    at.button(key="trainer_explore").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["model_key"].startswith(f"file:{path}:")
    assert at.title and at.title[0].value == "Latent explorer"


def test_stop_keeps_the_model_so_far(user_dir, data_root):
    at = trainer_page()
    small_run(at, epochs=200, images=2000)
    at.button(key="trainer_start").click()
    run_until(at, lambda: job(at).view().progress["step"] > 3)
    at.button(key="trainer_pause").click()
    run_until(at, lambda: job(at).view().status is JobStatus.PAUSED)
    assert at.button(key="trainer_resume") is not None
    at.button(key="trainer_stop").click()
    run_until(at, lambda: not job(at).view().active, timeout=60)
    view = job(at).view()
    assert view.status is JobStatus.STOPPED and view.progress["epoch"] < 200
    assert at.warning and "Stopped" in at.warning[0].value
    assert at.button(key="trainer_save") is not None  # the stopped model can be saved
    assert not at.button(key="trainer_start").disabled


def test_bad_names_and_unwritable_folders_give_clear_errors(tmp_path, monkeypatch, data_root):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the user folder should be")
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(blocker / "user"))
    at = trainer_page()
    small_run(at, images=1000)
    at.button(key="trainer_start").click()
    run_until(at, lambda: not job(at).view().active)
    for bad in ["../escape", "/etc/passwd", "two words", ".hidden"]:
        name_box(at).set_value(bad)
        at.button(key="trainer_save").click()
        at.run()
        assert at.error and "not a usable name" in at.error[0].value, bad
    name_box(at).set_value("fine-name")
    at.button(key="trainer_save").click()
    at.run()
    assert at.error and "stays usable in this session" in at.error[0].value
    assert any("trained here" in label for label in session_labels(at))
    assert list(tmp_path.rglob("*.safetensors")) == []


def test_a_beta_sweep_draws_the_rate_distortion_plane(user_dir, data_root):
    at = trainer_page()
    start_sweep(at, "0, 10")
    run_until(at, lambda: not job(at).view().active, timeout=240)
    assert job(at).view().status is JobStatus.FINISHED
    rd = chart(at, "trainer_rate_distortion")
    points = [t for t in rd["data"] if t.get("text")]
    assert points and [s for s in points[0]["text"]] == ["β = 0", "β = 10"]
    assert sum("trained here" in label for label in session_labels(at)) == 2


def test_a_bad_sweep_list_is_refused(user_dir):
    at = trainer_page()
    at.button_group(key="trainer_mode").set_value("β sweep")
    at.run()
    at.text_input(key="sweep_betas").set_value("0, lots")
    at.button(key="trainer_start").click()
    at.run()
    assert at.error and "Cannot start" in at.error[0].value
    assert job(at) is None


def test_a_reload_mid_run_finds_the_job_again(user_dir, data_root):
    at = trainer_page()
    small_run(at, epochs=200, images=2000)
    at.button(key="trainer_start").click()
    run_until(at, lambda: job(at).view().progress["step"] > 3)
    running = job(at)
    # A reload is a new session of the same browser: the same owner token, nothing else carried over.
    again = open_app("pages/trainer.py", token=token_of(at))
    try:
        assert job(again) is running and running.status.active
        assert again.button(key="trainer_start").disabled and again.button(key="trainer_stop") is not None
        assert any("Training job" in str(p.proto) for p in again.get("progress"))  # the sidebar says so too
        again.button(key="trainer_stop").click()
        run_until(again, lambda: not running.view().active, timeout=60)
        assert any("trained here" in label for label in session_labels(again))  # its model, in the new session
    finally:
        running.stop()
        running.join(60)
    # Another browser (another token) sees no job of its own.
    assert job(open_app("pages/trainer.py")) is None
