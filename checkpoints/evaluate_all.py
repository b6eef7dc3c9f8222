"""Measure every shipped checkpoint with `python -m vaeviz eval` and write checkpoints/README.md.

    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python checkpoints/evaluate_all.py [--iw-k 1000]

The table's numbers are the JSON that `eval` prints, on the full test split of each model's data
set; the training command of each comes from train_all.sh.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iw-k", type=int, default=1000)
    args = parser.parse_args()
    commands = training_commands()
    rows = []
    for path in sorted(HERE.glob("*.safetensors")):
        res = subprocess.run([sys.executable, "-m", "vaeviz", "eval", str(path.relative_to(ROOT)), "--iw-k",
                              str(args.iw_k)], cwd=ROOT, capture_output=True, text=True, check=True)
        out = json.loads(res.stdout.strip().splitlines()[-1])
        out["size_mb"] = path.stat().st_size / 2**20
        rows.append((path.stem, out))
        print(path.stem, json.dumps(out["test"]), flush=True)
    lines = [
        "# Shipped checkpoints",
        "",
        "Trained by the project's own CLI on the full training set (60,000 images), on this project's CPU",
        "machine; `bash checkpoints/train_all.sh` retrains them all. Every number below is measured on the",
        "full test set (10,000 images) by `python -m vaeviz eval CHECKPOINT --iw-k "
        f"{args.iw_k}` and written here by `checkpoints/evaluate_all.py`. Units: nats per image (sum over",
        "pixels, mean over images); BCE/pixel = recon / 784; IW-NLL = importance-weighted estimate of",
        f"−log p(x) with k = {args.iw_k} samples (VAEs only); active units = latent dimensions with KL > 0.01 nats.",
        "",
        "| checkpoint | kind | arch | z | β | recon | KL | −ELBO | IW-NLL | BCE/pixel | active | MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, out in rows:
        t = out["test"]
        fmt = lambda v, d=2: "–" if v is None else f"{v:.{d}f}"
        lines.append(
            f"| `{name}` | {out['kind']} | {out['arch']} | {out['latent_dim']} | {fmt(out['beta'], 1)} | "
            f"{fmt(t['recon'])} | {fmt(t['kl'])} | {fmt(t['neg_elbo'] if out['kind'] == 'vae' else None)} | {fmt(t.get('iw_nll'))} | "
            f"{fmt(t['bce_per_pixel'], 4)} | {t['active_units'] if t['active_units'] is not None else '–'} | "
            f"{out['size_mb']:.1f} |")
    lines += ["", "## How each was trained", ""]
    for name, _ in rows:
        steps = commands.get(name, ["see train_all.sh"])
        lines.append(f"- `{name}`: " + ", then ".join(f"`{c}`" for c in steps))
    (HERE / "README.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'README.md'}")


if __name__ == "__main__":
    main()
