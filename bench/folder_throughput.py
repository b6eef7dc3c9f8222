"""What a folder of photographs costs on this machine: reading it once, reading it from the cache, and
an epoch of the conv VAE at 64 px in colour (the CelebA recipe of docs/bring-your-own-data.md).

Writes `--images` JPEGs of CelebA's aligned size (178x218, coloured shapes on noisy backgrounds, so
the JPEG decoder has real work) into a temporary folder, then times, in this order:
1. the first `FolderSet.read()`: decode, centre-crop, resize to 64 px, and write the cache;
2. a second read from the cache, in a fresh reader (the in-process memo cleared);
3. one training epoch of `vaeviz train --arch conv --image-size 64 --channels 3 --latent-dim 64`'s model
   (batch 128, Adam) on those pictures, with 1 thread and with every core.
Each figure is also scaled to CelebA's 182,339 training pictures (90 % of its 202,599; vaeviz holds out
a tenth), which assumes time grows linearly with the count.

    .venv/bin/python -m bench.folder_throughput [--images 3000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vaeviz import folders
from vaeviz.config import ModelConfig, TrainConfig, conv_channels_for
from vaeviz.data import load_split
from vaeviz.models import build_model
from vaeviz.train import fit

from tests.support.folders import shape_picture

CELEBA_TRAIN = 182_339


def write_photos(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        kind = ("red-discs", "green-squares", "blue-triangles")[i % 3]
        picture = np.asarray(shape_picture(kind, rng, size=(178, 218)), np.float32)
        picture += rng.normal(0, 12, picture.shape)  # grain, as in photographs
        (root / kind).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(root / kind / f"{i:06d}.jpg", quality=90)


def epoch_seconds(name: str, threads: int) -> tuple[float, int]:
    torch.set_num_threads(threads)
    train = load_split(name, "train")
    cfg = ModelConfig(arch="conv", latent_dim=64, channels=3, height=64, width=64, conv_channels=conv_channels_for(64),
                      likelihood="gaussian")
    model = build_model("vae", cfg, seed=0)
    history = fit(model, train, TrainConfig(epochs=1, device="cpu", log_every=10_000))
    return history.train_seconds, len(train.images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, torch {torch.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="vaeviz-folder-bench-"))
    try:
        root = tmp / "photos"
        write_photos(root, args.images)
        folder = folders.FolderSet.parse(f"folder:{root}", size=64, channels=3)
        t0 = time.perf_counter()
        data = folder.read()
        first = time.perf_counter() - t0
        folders._recent.clear()
        t0 = time.perf_counter()
        folder.read()
        cached = time.perf_counter() - t0
        n = args.images
        print(data.summary)
        print(f"first read (decode {n:,} JPEGs 178x218 -> 64x64, write the cache): {first:.2f} s, "
              f"{n / first:,.0f} pictures/s -> CelebA {CELEBA_TRAIN / 0.9 / (n / first) / 60:.1f} min")
        print(f"cached read: {cached:.3f} s ({data.cache.stat().st_size / 2**20:.1f} MB cache file)")
        for threads in sorted({1, os.cpu_count() or 1}):
            seconds, n_train = epoch_seconds(folder.name, threads)
            rate = n_train / seconds
            print(f"one epoch, conv VAE 64 px RGB, {threads} thread(s): {n_train:,} pictures in {seconds:.1f} s, "
                  f"{rate:,.0f} pictures/s -> a CelebA epoch {CELEBA_TRAIN / rate / 60:.1f} min")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
