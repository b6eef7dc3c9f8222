"""How far an interpolation path leaves a model's data: the measures behind "AE versus VAE".

Two measures, neither of them the models' own:

- **Distance to the data, in the model's own units.** For each code on a path, the distance to the
  nearest encoded test image (a VAE's posterior means), divided by the model's *typical neighbour
  distance*: the median distance from an encoded test image to its nearest other one. A value near 1
  means "as close to the data as data points are to each other"; 3 means three typical gaps away,
  where the decoder saw no image in training. The units make an AE's and a VAE's latent spaces,
  which have different scales, comparable.
- **The judge** (`vaeviz.judge`): an independent classifier's class and confidence for each decoded
  frame.

`telling_pair` searches random test pairs of two classes for the one whose AE path leaves its data
the most relative to the VAE's; `compare_paths` measures many random pairs at once (the figures in
docs/measurements.md come from `python -m bench.interpolation_contrast`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import latent
from .judge import Classifier, judge
from .models import Model

REFERENCE_CODES = 5000  # encoded test images a path's distances are measured against


@dataclass(frozen=True)
class DataCloud:
    """A model's encoded test images and its typical neighbour distance."""

    codes: np.ndarray  # (N, D)
    scale: float  # median nearest-neighbour distance among the codes

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Nearest-neighbour distance of each point (M, D) to the cloud, in units of `scale`: (M,)."""
        return nearest_distance(self.codes, points) / self.scale


def nearest_distance(codes: np.ndarray, points: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Euclidean distance from each point (M, D) to its nearest code (N, D): (M,)."""
    codes = np.asarray(codes, np.float64)
    points = np.atleast_2d(np.asarray(points, np.float64))
    c2 = (codes**2).sum(1)
    out = np.empty(len(points))
    for i in range(0, len(points), chunk):
        p = points[i : i + chunk]
        d2 = (p**2).sum(1)[:, None] - 2 * p @ codes.T + c2[None]  # (m, N)
        out[i : i + chunk] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


def data_cloud(codes: np.ndarray, sample: int = 2000, seed: int = 0) -> DataCloud:
    """The cloud of encoded test images, with the median distance from a code to its nearest other code
    (over a sample of `sample` codes; the code itself excluded)."""
    codes = np.asarray(codes, np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(codes), size=min(sample, len(codes)), replace=False)
    c2 = (codes**2).sum(1)
    nearest = np.empty(len(idx))
    for i in range(0, len(idx), 256):  # in chunks: memory stays at 256 x N
        block = codes[idx[i : i + 256]]
        d2 = (block**2).sum(1)[:, None] - 2 * block @ codes.T + c2[None]
        d2[np.arange(len(block)), idx[i : i + 256]] = np.inf  # not the code itself
        nearest[i : i + 256] = np.sqrt(np.maximum(d2.min(1), 0.0))
    scale = float(np.median(nearest))
    return DataCloud(codes, scale if scale > 0 else 1.0)


@dataclass(frozen=True)
class PathReport:
    """One model's interpolation between two images, measured."""

    codes: np.ndarray  # (K, D) the path
    frames: np.ndarray  # (K, H, W[, C]) decoded
    distance: np.ndarray  # (K,) to the data, in the model's neighbour units
    label: np.ndarray | None  # (K,) the judge's class of each frame (None without a judge)
    confidence: np.ndarray | None  # (K,)

    @property
    def mean_distance(self) -> float:
        """Mean distance to the data over the path's inner steps (its ends are data points)."""
        inner = self.distance[1:-1] if len(self.distance) > 2 else self.distance
        return float(inner.mean())

    @property
    def mean_confidence(self) -> float | None:
        return None if self.confidence is None else float(self.confidence.mean())


def measure_path(model: Model, cloud: DataCloud, z0: np.ndarray, z1: np.ndarray, steps: int, how: str = "linear",
                 classifier: Classifier | None = None) -> PathReport:
    codes = latent.interpolate(z0, z1, steps, how)
    frames = latent.decode(model, codes)
    verdict = judge(classifier, frames) if classifier is not None and frames.ndim == 3 else None
    return PathReport(codes, frames, cloud.distance(codes), verdict.label if verdict else None,
                      verdict.confidence if verdict else None)


def telling_pair(models: tuple[Model, Model], clouds: tuple[DataCloud, DataCloud], codes: tuple[np.ndarray, np.ndarray],
                 labels: np.ndarray, la: int, lb: int, *, tries: int = 200, steps: int = 10, how: str = "linear",
                 seed: int = 0) -> tuple[int, int, float]:
    """Among `tries` random test pairs (class la, class lb), the pair (i, j) where the first model's path
    leaves its data the most relative to the second's: (i, j, that difference in neighbour units)."""
    rng = np.random.default_rng(seed)
    pool_a, pool_b = np.flatnonzero(labels == la), np.flatnonzero(labels == lb)
    if not len(pool_a) or not len(pool_b):
        raise ValueError("no test image with one of those labels")
    best = (int(pool_a[0]), int(pool_b[0]), -np.inf)
    t = latent.interpolate(np.zeros(1), np.ones(1), steps, "linear")[1:-1, 0]  # the inner steps
    for _ in range(tries):
        i, j = int(rng.choice(pool_a)), int(rng.choice(pool_b))
        gaps = []
        for cloud, c in zip(clouds, codes):
            path = latent.interpolate(c[i], c[j], steps, how)[1:-1] if how != "linear" else \
                ((1 - t)[:, None] * c[i][None] + t[:, None] * c[j][None])
            gaps.append(cloud.distance(path).mean())
        if gaps[0] - gaps[1] > best[2]:
            best = (i, j, float(gaps[0] - gaps[1]))
    return best


def compare_paths(models: tuple[Model, Model], clouds: tuple[DataCloud, DataCloud], codes: tuple[np.ndarray, np.ndarray],
                  n_pairs: int = 1000, steps: int = 10, how: str = "linear", classifier: Classifier | None = None,
                  seed: int = 0) -> dict:
    """Over `n_pairs` random test pairs (any classes, i != j): how often the second model's path stays
    closer to its data than the first's, each path's mean distance, and the judge's mean confidence."""
    rng = np.random.default_rng(seed)
    n = min(len(codes[0]), len(codes[1]))
    pairs = [tuple(rng.choice(n, size=2, replace=False)) for _ in range(n_pairs)]
    distances = np.zeros((2, n_pairs))
    confidence = np.zeros((2, n_pairs))
    for p, (i, j) in enumerate(pairs):
        for m, (model, cloud, c) in enumerate(zip(models, clouds, codes)):
            report = measure_path(model, cloud, c[i], c[j], steps, how, classifier)
            distances[m, p] = report.mean_distance
            confidence[m, p] = report.mean_confidence if report.mean_confidence is not None else np.nan
    return {
        "pairs": n_pairs,
        "steps": steps,
        "second_closer": float((distances[1] < distances[0]).mean()),
        "mean_distance": distances.mean(1).tolist(),
        "median_distance": np.median(distances, 1).tolist(),
        "mean_confidence": np.nanmean(confidence, 1).tolist() if classifier is not None else None,
    }
