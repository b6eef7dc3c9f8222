"""A lecture hall on one server: ownership of saved models (two sessions, and the admin), quotas that
refuse with their limit, a queue of training jobs seen from the Trainer, an explore-only mode, and two
processes saving into one folder at once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vaeviz import ModelConfig, build_model, load_checkpoint, store
from vaeviz.checkpoint import find_checkpoints
from vaeviz.jobs import JobStatus

from .support.apptest import ROOT, job_of, open_app, run_until
from .support.checkpoints import measured

ALICE, BOB = "a" * 32, "b" * 32  # two browsers' owner tokens


@pytest.fixture
def user(tmp_path, monkeypatch):
    folder = tmp_path / "user"
    monkeypatch.setenv("VAEVIZ_USER_DIR", str(folder))
    return folder


def owner(token: str) -> str:
    from vaeviz.ui.identity import browser_owner

    return browser_owner(token).id


def small_model(seed: int = 0):
    model = build_model("vae", ModelConfig(latent_dim=2, hidden=(16, 8)), seed=seed)
    model.meta = measured(model, metrics={"recon": 1.0})
    return model


def select_details(at, stem: str) -> None:
    """Show the details of the model whose label starts with `stem` (the options are the labels shown)."""
    box = at.selectbox(key="zoo_details")
    box.select_index(next(i for i, label in enumerate(box.options) if label.startswith(stem))).run()
    assert not at.exception, at.exception


def test_only_the_owner_or_the_admin_deletes_or_replaces(user, monkeypatch):
    monkeypatch.setenv("VAEVIZ_ADMIN_TOKEN", "lecturer-secret")
    path = store.save_model(small_model(), "alices", owner=owner(ALICE))
    assert load_checkpoint(path).meta.owner == owner(ALICE)
    with pytest.raises(PermissionError, match="someone else"):
        store.save_model(small_model(1), "alices", owner=owner(BOB), replace=True)  # Bob cannot overwrite it
    with pytest.raises(FileExistsError):
        store.save_model(small_model(1), "alices", owner=owner(BOB))

    bob = open_app("pages/zoo.py", token=BOB)
    select_details(bob, "alices")
    assert not any(b.key == "zoo_delete" for b in bob.button)  # no delete button for Bob
    assert any("Saved by someone else" in c.value for c in bob.caption)
    assert bob.get("download_button")  # but he can download it
    with pytest.raises(PermissionError, match="someone else"):
        store.delete_user_file(path, owner=owner(BOB))
    assert path.exists()

    replaced = store.save_model(small_model(2), "alices", owner=owner(ALICE), replace=True)  # Alice can replace it
    assert replaced == path and load_checkpoint(path).state_dict()["decoder.0.bias"].sum() == \
        small_model(2).state_dict()["decoder.0.bias"].sum()

    alice = open_app("pages/zoo.py", token=ALICE)
    select_details(alice, "alices")
    alice.checkbox(key="zoo_delete_confirm").check().run()
    alice.button(key="zoo_delete").click().run()
    assert not alice.exception and not path.exists()  # Alice can delete it

    by_hand = user / "copied-in.safetensors"
    by_hand.write_bytes(store.checkpoint_bytes(small_model()))  # no owner: only the admin may delete it
    with pytest.raises(PermissionError, match="admin"):
        store.delete_user_file(by_hand, owner=owner(ALICE))
    admin = open_app("pages/zoo.py", token=BOB)
    admin.text_input(key="zoo_admin_token").set_value("wrong").run()
    assert any("not this server's admin token" in e.value for e in admin.error)
    admin.text_input(key="zoo_admin_token").set_value("lecturer-secret").run()
    select_details(admin, "copied-in")
    admin.checkbox(key="zoo_delete_confirm").check().run()
    admin.button(key="zoo_delete").click().run()
    assert not admin.exception and not by_hand.exists()


def test_quotas_refuse_with_their_limit_and_write_nothing(user, monkeypatch):
    monkeypatch.setenv("VAEVIZ_QUOTA_MODELS", "2")
    store.save_model(small_model(0), "one", owner=owner(ALICE))
    store.save_model(small_model(1), "two", owner=owner(ALICE))
    with pytest.raises(store.QuotaExceeded, match="the most one person may keep here is 2"):
        store.save_model(small_model(2), "three", owner=owner(ALICE))
    store.save_model(small_model(2), "bobs", owner=owner(BOB))  # Bob has his own quota
    size = (user / "one.safetensors").stat().st_size
    monkeypatch.setenv("VAEVIZ_QUOTA_MODELS", "20")
    monkeypatch.setenv("VAEVIZ_USER_DIR_MB", "0")
    with pytest.raises(store.QuotaExceeded, match="may hold 0.0 MB in all"):
        store.save_model(small_model(3), "four", owner=owner(BOB))
    assert sorted(p.name for p in find_checkpoints([user])) == ["bobs.safetensors", "one.safetensors", "two.safetensors"]
    assert size > 0

    # In the zoo, the refusal says the limit and what to do.
    monkeypatch.setenv("VAEVIZ_USER_DIR_MB", "1000")
    monkeypatch.setenv("VAEVIZ_QUOTA_MODELS", "2")
    at = open_app("pages/zoo.py", token=ALICE)
    at.file_uploader(key="zoo_upload_0").set_value(("mine.safetensors", store.checkpoint_bytes(small_model(4)),
                                                    "application/octet-stream")).run()
    at.text_input(key="zoo_save_name").set_value("three").run()
    at.button(key="zoo_save").click().run()
    (error,) = [e.value for e in at.error]
    assert "the most one person may keep here is 2" in error and "Delete one of your saved models" in error
    assert not (user / "three.safetensors").exists()


def test_the_trainer_shows_a_queued_job_its_place(user, monkeypatch, data_root):
    from vaeviz.ui import training

    board = training.board()
    monkeypatch.setattr(board, "limit", 1)
    first = open_app("pages/trainer.py", token=ALICE)
    first.selectbox(key="trainer_dataset").set_value("digits")
    first.number_input(key="trainer_epochs").set_value(300)
    first.button(key="trainer_start").click().run()
    second = open_app("pages/trainer.py", token=BOB)
    second.selectbox(key="trainer_dataset").set_value("digits")
    second.button(key="trainer_start").click().run()
    try:
        assert job_of(first).status.running and job_of(second).status is JobStatus.QUEUED
        assert any("Queued: number 1 in line" in i.value for i in second.info)
        second.button(key="trainer_stop").click().run()  # cancel while queued
        assert job_of(second).status is JobStatus.STOPPED
        assert len([j for j in board.running()]) <= 1
    finally:
        for at in (first, second):
            job = job_of(at)
            if job is not None:
                job.stop()
                job.join(60)
    run_until(first, lambda: not job_of(first).view().active, timeout=60)


def test_explore_only_mode_offers_no_training_upload_save_or_delete(user, monkeypatch, data_root):
    monkeypatch.setenv("VAEVIZ_MODE", "explore")
    store.save_model(small_model(), "someones", owner=owner(ALICE))
    at = open_app(token=ALICE)
    assert not any(u.key == "sidebar_upload" for u in at.sidebar.get("file_uploader"))
    for page in ("pages/explorer.py", "pages/latent_map.py", "pages/interpolate.py", "pages/zoo.py", "pages/lecture.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        keys = [w.key or "" for kind in ("button", "file_uploader", "text_input", "checkbox") for w in at.get(kind)]
        assert not [k for k in keys if k.startswith(("zoo_upload", "zoo_save", "zoo_delete", "sidebar_upload",
                                                     "trainer_"))], (page, keys)
    with pytest.raises(Exception):
        at.switch_page("pages/trainer.py").run()  # not in the navigation at all
    at = open_app("pages/draw.py")
    at.segmented_control(key="draw::how").set_value("Upload").run()
    assert at.file_uploader(key="draw::upload") is not None  # a picture of a digit can still be encoded


SAVER = r"""
import json, sys
from pathlib import Path
from vaeviz import ModelConfig, build_model
from vaeviz import store
folder, who, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
done = []
for i in range(n):
    model = build_model("vae", ModelConfig(latent_dim=2, hidden=(16, 8)), seed=hash((who, i)) % 1000)
    name = f"shared-{i % 10}" if i % 2 else f"{who}-{i}"  # half the names collide with the other process's
    try:
        store.save_model(model, name, folder, owner=who, quota=store.Quota(1000, 10**9, 10**10))
        done.append(name)
    except FileExistsError:
        pass
print(json.dumps(done))
"""


def test_two_processes_saving_into_one_folder_lose_and_tear_nothing(tmp_path):
    folder = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, "-c", SAVER, str(folder), who, "25"], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT) for who in ("replica-a", "replica-b")]
    outputs = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    saved = {name for out in outputs for name in out}
    assert sum(len(o) for o in outputs) == len(saved)  # no name was saved twice (the loser was told)
    listed = {p.stem for p in find_checkpoints([folder])}
    assert listed == saved and len(saved) >= 25  # every reported save is there; no partial file is listed
    for path in find_checkpoints([folder]):
        load_checkpoint(path)  # none torn: each loads, whole
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_a_signed_in_user_owns_by_their_account(user):
    from streamlit.testing.v1 import AppTest

    from vaeviz.ui.identity import _hashed

    def script():
        import streamlit as st

        from vaeviz.ui.identity import owner

        st.session_state["who"] = owner()

    at = AppTest.from_function(script)
    at.user = {"is_logged_in": True, "email": "lecturer@example.org"}
    at.run()
    who = at.session_state["who"]
    assert who.id == _hashed("user", "lecturer@example.org") and who.name == "lecturer@example.org"
    anonymous = AppTest.from_function(script).run()
    assert anonymous.session_state["who"].name == "this browser"


def test_thirty_sessions_opening_a_t_sne_map_start_one_computation(user, monkeypatch, data_root):
    from vaeviz import latent
    from vaeviz.ui import cache

    calls = []
    real = latent.tsne

    def counted(codes, **kwargs):
        calls.append(len(codes))
        return real(codes, **kwargs)

    monkeypatch.setattr(latent, "tsne", counted)
    sessions = []
    for _ in range(30):
        from streamlit.testing.v1 import AppTest

        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.query_params.update({"model": "mnist-vae-mlp-16", "vs": "nothing", "method": "tsne", "n": "500"})
        at.run()
        at.switch_page("pages/latent_map.py")
        at.query_params.update({"model": "mnist-vae-mlp-16", "vs": "nothing", "method": "tsne", "n": "500"})
        at.run()
        assert not at.exception, at.exception
        sessions.append(at)
    keys = [k for k in cache.tasks()._tasks if k.startswith("tsne:") and "mnist-vae-mlp-16.safetensors" in k
            and k.endswith(":500")]
    assert len(keys) == 1
    cache.tasks().get(keys[0]).wait(120)
    assert calls == [500]  # one computation for thirty sessions
    last = sessions[-1]
    last.run()
    assert any(c.proto.id.endswith("::tsne") for c in last.get("plotly_chart"))  # and every session draws it
