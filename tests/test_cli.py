"""The CLI end to end on a small real slice: train, eval, list, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "vaeviz", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_train_eval_list_end_to_end(tmp_path, data_root):
    out = tmp_path / "small.safetensors"
    res = run_cli("train", "--model", "vae", "--arch", "mlp", "--latent-dim", "4", "--epochs", "1",
                  "--limit", "1000", "--test-limit", "200", "--data-dir", str(data_root), "--quiet",
                  "--out", str(out))
    assert res.returncode == 0, res.stderr
    summary = last_json(res.stdout)
    assert summary["checkpoint"] == str(out) and out.is_file()
    assert summary["train_images_per_s"] > 0
    assert summary["test"]["neg_elbo"] == pytest.approx(summary["test"]["recon"] + summary["test"]["kl"])

    res = run_cli("eval", str(out), "--data-dir", str(data_root), "--limit", "200", "--iw-k", "10")
    assert res.returncode == 0, res.stderr
    ev = last_json(res.stdout)
    assert ev["dataset"] == "mnist" and ev["test"]["n_images"] == 200
    # eval on the same images and seed reproduces the metrics stored at training time
    assert ev["test"]["neg_elbo"] == pytest.approx(summary["test"]["neg_elbo"], abs=1e-6)
    assert ev["test"]["iw_nll"] < ev["test"]["neg_elbo"]
    assert len(ev["kl_per_dim"]) == 4

    res = run_cli("list", str(tmp_path))
    assert res.returncode == 0
    assert [r["name"] for r in last_json(res.stdout)["checkpoints"]] == ["small"]


def test_offline_dataset_trains_without_files(tmp_path):
    out = tmp_path / "digits.safetensors"
    res = run_cli("train", "--model", "ae", "--latent-dim", "2", "--epochs", "1", "--dataset", "digits",
                  "--quiet", "--out", str(out), env_extra={"VAEVIZ_DATA_DIR": str(tmp_path / "none")})
    assert res.returncode == 0, res.stderr
    assert last_json(res.stdout)["test"]["bce_per_pixel"] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--latent-dim", "0", "--dataset", "digits"], "latent size"),
        (["train", "--beta", "nan", "--dataset", "digits"], "beta"),
        (["train", "--beta", "-1", "--dataset", "digits"], "beta"),
        (["train", "--lr", "inf", "--dataset", "digits"], "learning rate"),
        (["train", "--epochs", "two"], "invalid int"),
        (["train", "--dataset", "cifar"], "unknown data set 'cifar'"),
        (["eval", "no/such/file.safetensors"], "no such checkpoint"),
        (["train", "--device", "cuda:0", "--dataset", "digits"], "cuda"),
    ],
)
def test_expected_errors_are_one_line_and_non_zero(args, message, tmp_path):
    res = run_cli(*args, "--out" if args[0] == "train" else "--seed", str(tmp_path / "x.safetensors") if args[0] == "train" else "0")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "x.safetensors").exists()


def test_missing_data_is_one_line(tmp_path):
    res = run_cli("train", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"), "--quiet",
                  "--out", str(tmp_path / "x.safetensors"), env_extra={"no_proxy": "*", "https_proxy": "http://127.0.0.1:9"})
    assert res.returncode == 2
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("error:") and "train-images-idx3-ubyte" in line and str(tmp_path / "empty") in line
    assert [p for p in (tmp_path / "empty").rglob("*") if p.is_file()] == []


def test_bad_checkpoint_through_the_cli(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(os.urandom(1000))
    res = run_cli("eval", str(bad))
    assert res.returncode == 2 and "not a vaeviz checkpoint" in res.stderr and "Traceback" not in res.stderr
