"""An independent judge of decoded images: a small MNIST classifier trained by the project's own code.

The interpolation page asks it, for every frame of both rows, which digit it sees and how sure it is,
so a claim such as "the VAE's path stays on the digits" is measured by something that is neither of
the two models. It is a plain convolutional network (two 3x3 convolutions with max pooling, a
128-unit hidden layer, dropout), trained with Adam on the 60,000 training images and measured on the
10,000 test images. Its file is a `.safetensors` checkpoint with format `vaeviz-classifier/1`,
loaded with the same checks as a model's (never unpickled).

    vaeviz train-judge --out checkpoints/judge/mnist-classifier.safetensors
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from . import __version__
from .atomic import write_atomic
from .checkpoint import SHIPPED_DIR, _check_finite, _check_shapes, _parse_header, read_checkpoint_bytes
from .data import Split

FORMAT = "vaeviz-classifier/1"
JUDGE_PATH = SHIPPED_DIR / "judge" / "mnist-classifier.safetensors"


class Classifier(nn.Module):
    """28x28 grey digits -> logits over 10 classes."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (64, 7, 7)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
                                  nn.Dropout(0.25), nn.Linear(128, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass(frozen=True)
class Verdict:
    """What the judge sees in each image: its class and its probability (N,) each."""

    label: np.ndarray
    confidence: np.ndarray


@torch.no_grad()
def judge(classifier: Classifier, images: np.ndarray | torch.Tensor, batch_size: int = 2000) -> Verdict:
    """The judge's verdict on images (N, 28, 28) or (N, 1, 28, 28) in [0, 1]."""
    x = torch.as_tensor(np.asarray(images, np.float32)) if not isinstance(images, torch.Tensor) else images.float()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    classifier.eval()
    probs = torch.cat([F.softmax(classifier(x[i : i + batch_size]), 1) for i in range(0, len(x), batch_size)])
    confidence, label = probs.max(1)
    return Verdict(label.numpy(), confidence.numpy())


@torch.no_grad()
def accuracy(classifier: Classifier, split: Split) -> float:
    return float((judge(classifier, split.images).label == split.labels.cpu().numpy()).mean())


def train_classifier(train: Split, test: Split, *, epochs: int = 6, batch_size: int = 128, lr: float = 1e-3,
                     seed: int = 0, progress=None) -> tuple[Classifier, dict]:
    """Adam with a cosine schedule and light augmentation (shifts of up to 2 pixels, since decoded
    digits are not always centred as MNIST's are). Returns the model and its record."""
    torch.manual_seed(seed)
    model = Classifier(len(train.classes))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(train.images)
    steps = epochs * math.ceil(n / batch_size)
    gen = torch.Generator().manual_seed(seed)
    step, started = 0, time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            x = _shifted(train.images[idx], gen)
            for group in opt.param_groups:
                group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / steps))
            loss = F.cross_entropy(model(x), train.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        if progress is not None:
            progress(epoch + 1, accuracy(model, test))
    model.eval()
    record = {"test_accuracy": accuracy(model, test), "train_images": n, "test_images": len(test.images),
              "epochs": epochs, "seconds": time.perf_counter() - started}
    return model, record


def _shifted(x: torch.Tensor, gen: torch.Generator, most: int = 2) -> torch.Tensor:
    """Each image moved by up to `most` pixels in each direction (zeros shifted in)."""
    padded = F.pad(x, (most, most, most, most))
    dy, dx = torch.randint(0, 2 * most + 1, (2,), generator=gen).tolist()
    return padded[..., dy : dy + x.shape[-2], dx : dx + x.shape[-1]]


def save_classifier(model: Classifier, path: str | Path, record: dict) -> Path:
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "vaeviz_version": __version__, "record": json.dumps(record)}
    write_atomic(path, st_save(tensors, metadata=meta))
    return path


def load_classifier(path: str | Path = JUDGE_PATH) -> tuple[Classifier, dict]:
    """The classifier and its record (test accuracy, ...). ValueError for anything else."""
    path = Path(path)
    data = read_checkpoint_bytes(path)
    header = _parse_header(data, path.name)
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path.name} is not a vaeviz classifier (no '{FORMAT}' metadata)")
    model = Classifier()
    listed = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    _check_shapes({k: tuple(v.shape) for k, v in model.state_dict().items()}, listed, path.name)
    tensors = st_load(data)
    _check_finite(tensors, path.name)
    model.load_state_dict(tensors, strict=True)
    try:
        record = json.loads(meta.get("record", "{}"))
    except json.JSONDecodeError:
        raise ValueError(f"{path.name}: its record is not valid JSON") from None
    return model.eval(), record if isinstance(record, dict) else {}
