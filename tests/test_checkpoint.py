"""Checkpoints: a round trip tensor by tensor, and every kind of bad file refused safely."""

from __future__ import annotations

import json
import os
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from vaeviz import Metrics, ModelConfig, build_model, load_checkpoint, save_checkpoint
from vaeviz.checkpoint import FORMAT, MAX_FILE_BYTES, checkpoint_summary, find_checkpoints

from .support.checkpoints import measured
from .support.files import WritesAFile, safetensors_header

EPOCHS = [{"epoch": 1, "test": {"neg_elbo": 123.4}}]


def META(model):
    return measured(model, metrics=Metrics(neg_elbo=123.4), epochs=EPOCHS)


@pytest.mark.parametrize("kind", ["ae", "vae", "pca"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_round_trip_tensor_by_tensor(tmp_path, kind, arch):
    torch.manual_seed(0)
    model = build_model(kind, ModelConfig(arch=arch, latent_dim=7, beta=0.5))
    for p in model.buffers():  # give PCA non-zero buffers too
        p.copy_(torch.randn_like(p))
    path = save_checkpoint(model, tmp_path / "m.safetensors", META(model))
    loaded = load_checkpoint(path)
    assert type(loaded) is type(model) and not loaded.training
    ref = model.state_dict()
    got = loaded.state_dict()
    assert list(got) == list(ref)
    for k in ref:
        assert torch.equal(got[k], ref[k]), k
    m = loaded.meta
    assert (m.kind, m.config.arch, m.config.latent_dim, m.dataset) == (kind, arch, 7, "mnist")
    assert m.beta == (0.5 if kind == "vae" else None)
    assert m.metrics == Metrics(neg_elbo=123.4) and list(m.curves.epochs) == EPOCHS and m.epochs == 1
    assert m.version and m.created
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(loaded.decode(loaded.encode(x)[0]), model.eval().decode(model.encode(x)[0]))


def test_load_from_bytes_matches_load_from_path(tmp_path):
    model = build_model("vae", ModelConfig(latent_dim=2))
    path = save_checkpoint(model, tmp_path / "m.safetensors", META(model))
    a, b = load_checkpoint(path), load_checkpoint(path.read_bytes())
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])


def test_save_is_atomic_and_leaves_no_partial_file(tmp_path, monkeypatch):
    model = build_model("ae", ModelConfig(latent_dim=2))
    path = save_checkpoint(model, tmp_path / "m.safetensors", META(model))
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        other = build_model("ae", ModelConfig(latent_dim=3))
        save_checkpoint(other, path, META(other))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def _valid_bytes(tmp_path) -> bytes:
    model = build_model("vae", ModelConfig(latent_dim=2))
    return save_checkpoint(model, tmp_path / "ok.safetensors", META(model)).read_bytes()


def test_pickle_renamed_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned.txt"
    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps({"state_dict": WritesAFile(str(target))}))
    with pytest.raises(ValueError, match="not a vaeviz checkpoint"):
        load_checkpoint(bad)
    # torch.save's zip format too
    torch.save({"w": torch.zeros(2), "x": WritesAFile(str(target))}, tmp_path / "zip.safetensors")
    with pytest.raises(ValueError, match="not a vaeviz checkpoint"):
        load_checkpoint(tmp_path / "zip.safetensors")
    assert not target.exists()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda ok: b"", "only 0 bytes"),
        (lambda ok: os.urandom(4096), "not a vaeviz checkpoint"),
        (lambda ok: ok[: len(ok) // 2], "truncated"),
        (lambda ok: ok[:20], "truncated"),
        (lambda ok: struct.pack("<Q", 5 * 2**30) + b"{}" * 10, "claims"),
        (lambda ok: struct.pack("<Q", 8) + b"not json", "not valid JSON"),
        (lambda ok: safetensors_header({}, {"format": "something-else"}), "not a vaeviz checkpoint"),
        (lambda ok: safetensors_header({}, {"format": FORMAT, "kind": "gan", "config": "{}"}), "unknown model kind"),
        (lambda ok: safetensors_header({}, {"format": FORMAT, "kind": "vae", "config": "{not json"}), "not valid JSON"),
        (lambda ok: safetensors_header({}, {"format": FORMAT, "kind": "vae", "config": json.dumps({"latent_dim": 9999})}),
         "latent size"),
        (lambda ok: safetensors_header({}, {"format": FORMAT, "kind": "vae", "config": json.dumps({"wings": 2})}),
         "unknown model config"),
    ],
)
def test_bad_files_are_refused(tmp_path, make, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(make(_valid_bytes(tmp_path)))
    with pytest.raises(ValueError, match=message):
        load_checkpoint(path)


def _with_tensors(tmp_path, edit) -> str:
    model = build_model("vae", ModelConfig(latent_dim=2))
    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    edit(tensors)
    meta = {"format": FORMAT, "kind": "vae", "config": json.dumps(model.cfg.to_dict())}
    path = tmp_path / "t.safetensors"
    save_file(tensors, str(path), metadata=meta)
    return str(path)


def test_missing_extra_and_misshaped_tensors_are_named(tmp_path):
    with pytest.raises(ValueError, match="missing encoder.1.weight"):
        load_checkpoint(_with_tensors(tmp_path, lambda t: t.pop("encoder.1.weight")))
    with pytest.raises(ValueError, match="unexpected extra"):
        load_checkpoint(_with_tensors(tmp_path, lambda t: t.update(extra=torch.zeros(3))))
    with pytest.raises(ValueError, match=r"encoder.1.weight is \(3, 3\)"):
        load_checkpoint(_with_tensors(tmp_path, lambda t: t.update({"encoder.1.weight": torch.zeros(3, 3)})))
    with pytest.raises(ValueError, match="NaN"):
        load_checkpoint(_with_tensors(tmp_path, lambda t: t["encoder.1.bias"].fill_(float("nan"))))


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "huge.safetensors"
    with open(path, "wb") as f:  # sparse: no real disk used
        f.truncate(MAX_FILE_BYTES + 1)
    read = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: read.append(a) or real_open(*a, **k))
    with pytest.raises(ValueError, match="far larger"):
        load_checkpoint(path)
    assert read == []


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ValueError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(ValueError, match="not a file"):
        load_checkpoint(tmp_path)


def test_find_skips_partial_and_hidden_files(tmp_path):
    _valid_bytes(tmp_path)
    (tmp_path / ".ok.safetensors.abc.part").write_bytes(b"x")
    (tmp_path / ".hidden.safetensors").write_bytes(b"x")
    assert [p.name for p in find_checkpoints([tmp_path])] == ["ok.safetensors"]
    assert checkpoint_summary(tmp_path / "ok.safetensors").meta.kind == "vae"
