"""The Model zoo page under AppTest, and the rules for saving and deleting (vaeviz.store)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from vaeviz import Metrics, ModelConfig, TrainConfig, build_model, evaluate, fit, load_checkpoint, save_checkpoint, store
from vaeviz.ui import cache as ui_cache

from .support.apptest import open_app, session_labels
from .support.checkpoints import measured


@pytest.fixture
def folders(model_folders):
    return model_folders


TOKEN = "0123456789abcdef0123456789abcdef"  # a browser's owner token: tests that own files open the app as it


def owner_id(token: str = TOKEN) -> str:
    from vaeviz.ui.identity import browser_owner

    return browser_owner(token).id


def make_checkpoint(path: Path, kind: str, mnist_slice, latent_dim: int = 4, owner: str | None = None) -> Path:
    """A small model trained for one epoch on 2000 real images, saved as the CLI saves it (by `owner`)."""
    train, test = mnist_slice
    model = build_model(kind, ModelConfig(latent_dim=latent_dim, hidden=(64, 32)), seed=0)
    history = fit(model, train, TrainConfig(epochs=1, device="cpu", log_every=4), test=test)
    meta = measured(model, metrics=evaluate(model, test.images), epochs=history.epochs, steps=history.steps,
                    train_images=2000).with_owner(owner)
    return save_checkpoint(model, path, meta)


def zoo_page(token: str | None = None) -> AppTest:
    return open_app("pages/zoo.py", token=token)


def chart_keys(at: AppTest) -> list[str]:
    return [el.proto.id.rsplit("-", 1)[-1] for el in at.get("plotly_chart")]


def has_button(at: AppTest, key: str) -> bool:
    return any(b.key == key for b in at.button)


# --- the page ----------------------------------------------------------------------------------


def test_no_models_at_all(folders):
    at = zoo_page()
    assert at.title[0].value == "Model zoo"
    assert any("No models yet" in i.value for i in at.info)
    assert at.file_uploader(key="zoo_upload_0") is not None


def test_the_table_details_curves_and_samples(folders, mnist_slice):
    _, user = folders
    make_checkpoint(user / "small-vae.safetensors", "vae", mnist_slice, owner=owner_id())
    make_checkpoint(user / "small-ae.safetensors", "ae", mnist_slice, owner=owner_id())
    at = zoo_page(TOKEN)
    table = at.dataframe[0].value
    assert sorted(table["name"]) == ["small-ae (saved)", "small-vae (saved)"]
    row = table[table["name"] == "small-vae (saved)"].iloc[0]
    for column in ("data set", "kind", "arch", "latent", "β", "recon", "KL", "−ELBO", "active units", "size (kB)", "trained"):
        assert column in table.columns
    assert row["kind"] == "VAE" and row["latent"] == "4" and float(row["β"]) == 1.0 and row["data set"] == "mnist"
    assert float(row["−ELBO"]) == pytest.approx(float(row["recon"]) + float(row["KL"]), abs=0.011)
    ae = table[table["name"] == "small-ae (saved)"].iloc[0]
    assert ae["β"] == ae["KL"] == ae["−ELBO"] == ae["active units"] == "–"  # they do not apply to an AE
    vae_ref_key = ref_key("small-vae")
    at.selectbox(key="zoo_details").set_value(vae_ref_key)
    at.run()
    assert not at.exception
    assert {"zoo_curves", "zoo_kl_bars"} <= set(chart_keys(at))
    assert at.image, "the sample grid"
    assert at.get("download_button"), "a download button"
    assert has_button(at, "zoo_delete") and at.button(key="zoo_delete").disabled  # not before confirming


def ref_key(stem: str) -> str:
    """The key the app gives the checkpoint file called `stem` (shipped or user folder)."""
    from vaeviz.checkpoint import find_checkpoints

    for path in find_checkpoints([ui_cache.SHIPPED_DIR, store.user_dir()]):
        if path.stem == stem:
            return ui_cache._file_ref(path, "shipped" if path.parent == ui_cache.SHIPPED_DIR else "user").key
    raise AssertionError(f"no checkpoint {stem}")


def test_delete_needs_a_confirmation_and_never_touches_shipped_files(folders, mnist_slice):
    shipped, user = folders
    shipped_file = make_checkpoint(shipped / "shipped-vae.safetensors", "vae", mnist_slice)
    user_file = make_checkpoint(user / "mine.safetensors", "vae", mnist_slice, owner=owner_id())
    at = zoo_page(TOKEN)
    user_key, shipped_key = ref_key("mine"), ref_key("shipped-vae")

    at.selectbox(key="zoo_details").set_value(shipped_key)
    at.run()
    assert not has_button(at, "zoo_delete")
    assert any("Shipped with the app" in c.value for c in at.caption)

    at.selectbox(key="zoo_details").set_value(user_key)
    at.run()
    assert at.button(key="zoo_delete").disabled
    at.checkbox(key="zoo_delete_confirm").check()
    at.run()
    at.button(key="zoo_delete").click()
    at.run()
    assert not at.exception
    assert not user_file.exists() and shipped_file.exists()
    assert any("Deleted" in s.value for s in at.success), ([s.value for s in at.success], [e.value for e in at.error], at.main)
    assert list(at.dataframe[0].value["name"]) == ["shipped-vae"]
    with pytest.raises(PermissionError):
        store.delete_user_file(shipped_file, admin=True)  # not even the admin deletes a shipped file
    assert shipped_file.exists()


def test_upload_validates_and_keeps_nothing_bad(folders, mnist_slice, tmp_path):
    _, user = folders
    at = zoo_page()
    at.file_uploader(key="zoo_upload_0").set_value(("evil.safetensors", b"\x80\x04pickle-ish bytes", "application/octet-stream"))
    at.run()
    assert at.error and "was not loaded and nothing was kept" in at.error[0].value
    assert session_labels(at) == []  # nothing registered
    assert not user.exists() or not list(user.iterdir())

    good = make_checkpoint(tmp_path / "elsewhere" / "shared-by-a-friend.safetensors", "vae", mnist_slice)
    at.file_uploader(key="zoo_upload_0").set_value((good.name, good.read_bytes(), "application/octet-stream"))
    at.run()
    assert not at.exception and not at.error
    assert session_labels(at) == ["shared-by-a-friend (uploaded)"]
    assert "shared-by-a-friend (uploaded)" in list(at.dataframe[0].value["name"])
    assert not user.exists() or not list(user.iterdir())  # nothing written until saved

    at.text_input(key="zoo_save_name").set_value("friends-vae")
    at.button(key="zoo_save").click()
    at.run()
    assert not at.exception and not at.error
    saved = user / "friends-vae.safetensors"
    assert saved.is_file()
    original, copy = load_checkpoint(good), load_checkpoint(saved)
    for k, v in original.state_dict().items():
        assert torch.equal(v, copy.state_dict()[k]), k
    assert copy.meta.metrics.neg_elbo == original.meta.metrics.neg_elbo
    assert copy.meta.created == original.meta.created  # still says when it was trained
    assert any("Saved as" in m.value for m in at.success)
    assert "shared-by-a-friend (uploaded)" not in list(at.dataframe[0].value["name"])  # not registered again
    assert any("friends-vae" in n for n in at.dataframe[0].value["name"])


def test_compare_two_models(folders, mnist_slice):
    _, user = folders
    make_checkpoint(user / "first.safetensors", "vae", mnist_slice)
    make_checkpoint(user / "second.safetensors", "ae", mnist_slice)
    at = zoo_page()
    table = at.dataframe[1].value  # the compare table (after the zoo table)
    assert len(table.columns) == 3 and table["metric"][0].startswith("reconstruction")
    names = [c for c in table.columns if c != "metric"]
    assert {n.split(": ", 1)[1] for n in names} == {"first (saved)", "second (saved)"}
    assert any("reconstructed by A" in m.value for m in at.markdown)


# --- the rules (no streamlit) ------------------------------------------------------------------


def test_names_are_checked(folders):
    for good in ["my-vae", "vae_2", "A1", "x.safetensors"]:
        assert store.check_name(good)
    for bad in ["", "   ", "../up", "a/b", "/abs", ".hidden", "two words", "é", "x" * 81, "a..b"]:
        with pytest.raises(ValueError):
            store.check_name(bad)


def test_save_stays_in_the_user_folder_and_never_overwrites(folders, tiny_vae):
    _, user = folders
    tiny_vae.meta = measured(tiny_vae, metrics=Metrics(recon=1.0))
    path = store.save_model(tiny_vae, "kept", owner="someone")
    assert path == user / "kept.safetensors" and store.is_user_file(path)
    assert load_checkpoint(path).meta.owner == "someone"  # the saver is recorded
    with pytest.raises(FileExistsError):
        store.save_model(tiny_vae, "kept")
    data = store.checkpoint_bytes(tiny_vae)
    assert load_checkpoint(data).meta.metrics == Metrics(recon=1.0)
    assert not store.is_user_file(user.parent / "kept.safetensors")


def test_a_beta_4_sweep_model_trained_here_shows_its_true_beta_and_epochs(folders, data_root):
    """Once shown as β "None" in the table and "β = 1 ... (1 epochs)" in its header."""
    from .support.apptest import job_of, run_until, start_sweep

    at = open_app("pages/trainer.py")
    start_sweep(at, "0, 4", epochs=2)
    run_until(at, lambda: not job_of(at).status.active, timeout=240)
    at.switch_page("pages/zoo.py")
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    row = table[table["name"].str.contains("beta4")].iloc[0]
    assert row["β"] == "4" and row["epochs"] == "2" and row["kind"] == "VAE"
    beta4 = [r for r in at.session_state["vaeviz_session_models"].refs() if "beta4" in r.label][0]
    at.selectbox(key="zoo_details").set_value(beta4.key)
    at.run()
    header = next(m.value for m in at.markdown if "latent" in m.value and "β" in m.value)
    assert "β = 4" in header and "2 epochs of 1,000 images" in header, header
    ae_like = table[table["kind"] == "VAE"]
    assert set(ae_like["β"]) == {"0", "4"}
