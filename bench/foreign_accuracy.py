"""How well does `to_mnist` bring foreign handwriting to MNIST? Accuracy of a fixed pixel-space classifier.

A 1-nearest-neighbour classifier in pixel space, fitted on the first 10,000 MNIST training images,
labels every image of the foreign set (tests/foreign_digits/, see its README) after `to_mnist`, and
again after a naive preprocessing (grey, resize to 28x28, invert if the picture is light) for
comparison. Prints accuracy overall and per source, and how long `to_mnist` takes (on the set, and
on a 1000x1000 colour photo). The classifier never changes, so a better figure means the
preprocessing made the pictures look more like MNIST.

Usage: VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.foreign_accuracy
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent

from vaeviz import load_split
from vaeviz.preprocess import to_mnist

FOREIGN_DIR = ROOT / "tests" / "foreign_digits"
N_REFERENCE = 10_000  # MNIST training images the classifier remembers


def naive_mnist(image: Image.Image) -> np.ndarray:
    """What one gets without care: grey, squashed to 28x28, inverted if the picture is light."""
    grey = np.asarray(image.convert("L").resize((28, 28), Image.BILINEAR), np.float32) / 255.0
    return 1.0 - grey if grey.mean() > 0.5 else grey


def nearest_neighbour_labels(reference: np.ndarray, labels: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """1-NN in pixel space: reference (N, 784), queries (M, 784) -> (M,) labels of the nearest."""
    distances = (queries**2).sum(1)[:, None] - 2 * queries @ reference.T + (reference**2).sum(1)[None, :]
    return labels[distances.argmin(axis=1)]


def large_photo() -> Image.Image:
    """A 1000x1000 colour picture: blue ink on cream paper, light from one side, sensor noise."""
    canvas = Image.new("RGB", (1000, 1000), (245, 240, 225))
    strokes = [(300, 250), (700, 250), (450, 800)]  # a "7"
    ImageDraw.Draw(canvas).line(strokes, fill=(30, 40, 150), width=30, joint="curve")
    rng = np.random.default_rng(0)
    light = np.linspace(0.7, 1.0, 1000, dtype=np.float32)[None, :, None]
    pixels = np.asarray(canvas, np.float32) * light + rng.normal(0, 4, (1000, 1000, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def best_time_ms(image: Image.Image, repeats: int = 20) -> float:
    """The fastest of `repeats` runs of to_mnist, in milliseconds (the machine may be busy)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        to_mnist(image)
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main() -> None:
    torch.set_num_threads(1)
    train = load_split("mnist", "train", limit=N_REFERENCE)
    reference = train.images.reshape(len(train.images), -1).numpy()
    reference_labels = train.labels.numpy()
    paths = sorted(FOREIGN_DIR.glob("*.png"))
    labels = np.array([int(p.stem.split("_")[0]) for p in paths])
    sources = [p.stem.split("_")[1] for p in paths]

    prepared, naive, seconds = [], [], 0.0
    for path in paths:
        with Image.open(path) as image:
            image.load()
            start = time.perf_counter()
            prepared.append(to_mnist(image).numpy().ravel())
            seconds += time.perf_counter() - start
            naive.append(naive_mnist(image).ravel())
    results = {
        "to_mnist": nearest_neighbour_labels(reference, reference_labels, np.stack(prepared)) == labels,
        "naive": nearest_neighbour_labels(reference, reference_labels, np.stack(naive)) == labels,
    }

    by_source: dict[str, list[int]] = defaultdict(list)
    for i, source in enumerate(sources):
        by_source[source].append(i)
    print(f"foreign set: {len(paths)} images in {FOREIGN_DIR.relative_to(ROOT)}; "
          f"1-NN on the first {N_REFERENCE} MNIST training images")
    print(f"{'source':<10}{'n':>5}{'to_mnist':>11}{'naive':>9}")
    for source, rows in sorted(by_source.items()):
        prepared_accuracy, naive_accuracy = results["to_mnist"][rows].mean(), results["naive"][rows].mean()
        print(f"{source:<10}{len(rows):>5}{prepared_accuracy:>11.1%}{naive_accuracy:>9.1%}")
    print(f"{'all':<10}{len(paths):>5}{results['to_mnist'].mean():>11.1%}{results['naive'].mean():>9.1%}")
    print(f"to_mnist: {1000 * seconds / len(paths):.1f} ms per image of the set on average, "
          f"{best_time_ms(large_photo()):.1f} ms for a 1000x1000 colour photo (best of 20)")
    wrong = [p.name for p, ok in zip(paths, results["to_mnist"]) if not ok]
    print("misread after to_mnist:", " ".join(wrong) if wrong else "none")


if __name__ == "__main__":
    main()
