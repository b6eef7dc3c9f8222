"""Measure every shipped checkpoint with `python -m vaeviz eval` and write checkpoints/README.md.

    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python checkpoints/evaluate_all.py [--iw-k 1000] [--gap-images 1000]

Each checkpoint's result is kept in bench/out/evaluate_all.json (not committed), keyed by its file's
size and modification time and the two settings, so a second run measures only what changed.

The table's numbers are the JSON that `eval` prints, on the full test split of each model's data
set (VAEs also get `--gap-images`: the amortization gap on the first N test images); the judge's
accuracy is measured here on MNIST's test set; the training command of each comes from train_all.sh.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = ROOT / "bench" / "out" / "evaluate_all.json"
GAP_KINDS = ("vae",)  # kinds whose amortization gap `eval --gap-images` measures


def training_commands() -> dict[str, list[str]]:
    """name -> the CLI commands that trained it, in order, read from train_all.sh's `run` lines."""
    commands: dict[str, list[str]] = {}
    script = (HERE / "train_all.sh").read_text().replace("\\\n", " ")  # join continued lines
    for line in script.splitlines():
        m = re.match(r"\s*run (\S+)\s+(.*)$", line)
        if m:
            name, args = m.groups()
            commands.setdefault(name, []).append(
                f"python -m vaeviz train {' '.join(args.split())} --lr-schedule cosine "
                f"--out checkpoints/{name}.safetensors")
    return commands


def evaluate(path: Path, iw_k: int, gap_images: int) -> dict:
    head = subprocess.run([sys.executable, "-m", "vaeviz", "list", str(path.parent)], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    kind = next(r["kind"] for r in json.loads(head.stdout.splitlines()[-1])["checkpoints"] if r["name"] == path.stem)
    cmd = [sys.executable, "-m", "vaeviz", "eval", str(path.relative_to(ROOT)), "--iw-k", str(iw_k)]
    if kind in GAP_KINDS and gap_images:
        cmd += ["--gap-images", str(gap_images)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["size_mb"] = path.stat().st_size / 2**20
    return out


def own_measure(out: dict) -> str:
    """The figure each kind is shipped for (the bars of the issue that asked for it)."""
    t, kind = out["test"], out["kind"]
    fmt = lambda v, d=2: "–" if v is None else f"{v:.{d}f}"
    if kind == "dae":
        return f"BCE/pixel from noisy inputs (σ = 0.3): {fmt(t.get('noisy_bce'), 4)}"
    if kind == "sae":
        return f"codes above zero per image: {fmt(t.get('active_codes'), 1)} of {out['latent_dim']}"
    if kind == "cae":
        return f"‖∂z/∂x‖²_F: {fmt(t.get('jacobian_frobenius'), 1)}"
    if kind == "hvae":
        return (f"KL top {fmt(t.get('kl2'))} + bottom {fmt(t.get('kl1'))}; active units: top {t.get('active_units')}, "
                f"bottom {t.get('active_units_bottom')} of 32")
    if kind == "ppca":
        return f"exact −log p(x): {fmt(t.get('nll'))}"
    if kind == "vae" and "amortization_gap" in t:
        return f"amortization gap: {fmt(t['amortization_gap'])} nats (first {t.get('gap_images')} images)"
    return ""


def judge_row() -> str:
    code = ("import json; from vaeviz.judge import load_classifier, accuracy; from vaeviz import load_split; "
            "t = load_split('mnist', 'test'); print(json.dumps(accuracy(load_classifier()[0], t)))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        return "- the judge could not be measured: " + res.stderr.strip().splitlines()[-1]
    acc = json.loads(res.stdout.strip().splitlines()[-1])
    size = (HERE / "judge" / "mnist-classifier.safetensors").stat().st_size / 2**20
    return (f"- `judge/mnist-classifier` ({size:.1f} MB): a small conv classifier the interpolation views use to name "
            f"the digit in each frame; test accuracy **{100 * acc:.2f} %** on MNIST's 10,000 test images. Trained by "
            "`python -m vaeviz train-judge`.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iw-k", type=int, default=1000)
    parser.add_argument("--gap-images", type=int, default=1000)
    args = parser.parse_args()
    commands = training_commands()
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    rows = []
    for path in sorted(HERE.glob("*.safetensors")):
        stat = path.stat()
        key = f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}:{args.iw_k}:{args.gap_images}"
        out = cache.get(key) or evaluate(path, args.iw_k, args.gap_images)
        cache[key] = out
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        CACHE.write_text(json.dumps(cache))
        rows.append((path.stem, out))
        print(path.stem, json.dumps({k: v for k, v in out["test"].items() if not isinstance(v, list)}), flush=True)
    fmt = lambda v, d=2: "–" if v is None else f"{v:.{d}f}"
    lines = [
        "# Shipped checkpoints",
        "",
        "Trained by the project's own CLI on each data set's full training split, on this project's 2-core CPU",
        "machine; `bash checkpoints/train_all.sh` retrains them all. Every number below is measured on the",
        f"full test split by `python -m vaeviz eval CHECKPOINT --iw-k {args.iw_k}` (VAEs with `--gap-images "
        f"{args.gap_images}`) and written here by",
        "`checkpoints/evaluate_all.py`.",
        "",
        "- **Units:** nats per image (summed over pixels and latent dimensions, averaged over images).",
        "  BCE/pixel = recon / 784 (Bernoulli decoders).",
        "- **A floor.** On MNIST's grey pixels the Bernoulli −log p(x|z) is a cross-entropy against values in",
        "  [0, 1], not a probability of a binary image: its floor is the pixels' own entropy, 45.5 nats per test",
        "  image, so these figures are not comparable with published results on binarised MNIST.",
        f"- **IW-NLL** is the importance-weighted bound with k = {args.iw_k} samples (Burda et al.): an upper bound",
        "  on −log p(x) *in expectation* (one run's estimate can fall either side by its noise); for pPCA,",
        "  whose posterior is exact, it equals the exact −log p(x). PCA and the autoencoders have no density.",
        "- **Active units** (Burda et al.): latent dimensions whose posterior mean varies across test images by",
        "  more than 0.01. Negative nats are densities of continuous data (pPCA's Gaussian on pixels, the",
        "  circle's 2-D points), not probabilities.",
        "- **Amortization gap:** the −ELBO of the encoder's q(z|x) minus that of a q(z) fitted to each image",
        "  alone (200 Adam steps from the encoder's answer, decoder fixed): what amortized inference costs.",
        "",
        "| checkpoint | data | kind | arch | z | β | recon | KL | −ELBO | IW-NLL | BCE/pixel | active | MB | the kind's own measure |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, out in rows:
        t = out["test"]
        probabilistic = t.get("neg_elbo") is not None
        lines.append(
            f"| `{name}` | {out['dataset']} | {out['kind']} | {out['arch']} | {out['latent_dim']} | "
            f"{fmt(out['beta'], 1) if out['beta'] is not None else '–'} | {fmt(t['recon'])} | "
            f"{fmt(t.get('kl')) if probabilistic else '–'} | {fmt(t.get('neg_elbo'))} | {fmt(t.get('iw_nll'))} | "
            f"{fmt(t.get('bce_per_pixel'), 4)} | {t['active_units'] if t.get('active_units') is not None else '–'} | "
            f"{out['size_mb']:.1f} | {own_measure(out)} |")
    total = sum(p.stat().st_size for p in HERE.rglob("*.safetensors")) / 2**20
    lines += ["", f"All checkpoints together: {total:.1f} MB.", "", "## The judge", "", judge_row(),
              "", "## How each was trained", ""]
    for name, _ in rows:
        steps = commands.get(name, ["see train_all.sh"])
        lines.append(f"- `{name}`: " + ", then ".join(f"`{c}`" for c in steps))
    (HERE / "README.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'README.md'}")


if __name__ == "__main__":
    main()
