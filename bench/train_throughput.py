"""Training throughput: vaeviz's trainer against the classic DataLoader loop, side by side.

The classic loop is PyTorch's own VAE example: a `DataLoader` over `torchvision.datasets.MNIST`
with `transforms.ToTensor()` (one PIL image converted per sample), batch 128, Adam. vaeviz's
`fit` draws batches by indexing a tensor already on the device. Both train the same `mlp` VAE with
the same batch size; trials alternate so that background noise hits both alike. Prints the median
images per second of each and their ratio.

    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.train_throughput [--steps 150 --trials 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


import torch

from vaeviz import ModelConfig, TrainConfig, build_model, fit, load_split
from vaeviz.data import data_dir


def classic_loop(steps: int, batch_size: int, root: Path, device: torch.device) -> float:
    """Images per second of the DataLoader + ToTensor loop, over `steps` training steps."""
    from torchvision import datasets, transforms

    loader = torch.utils.data.DataLoader(
        datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor()),
        batch_size=batch_size,
        shuffle=True,
    )
    model = build_model("vae", ModelConfig(arch="mlp", latent_dim=16), seed=0).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    seen, start = 0, time.perf_counter()
    for i, (x, _) in enumerate(loader):
        if i == steps:
            break
        x = x.to(device)
        opt.zero_grad()
        model.loss(x, model(x))["total"].backward()
        opt.step()
        seen += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def vaeviz_fit(steps: int, batch_size: int, train, device: torch.device) -> float:
    """Images per second of `vaeviz.fit` (training steps only) over `steps` steps."""
    model = build_model("vae", ModelConfig(arch="mlp", latent_dim=16), seed=0)
    subset = train._replace(images=train.images[: steps * batch_size], labels=train.labels[: steps * batch_size])
    cfg = TrainConfig(epochs=1, batch_size=batch_size, device=str(device), log_every=steps)
    return fit(model, subset, cfg).train_images_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    root = data_dir()
    train = load_split("mnist", "train", device=device)
    classic, ours = [], []
    vaeviz_fit(10, args.batch_size, train, device)  # warm-up both paths once
    classic_loop(10, args.batch_size, root, device)
    for trial in range(args.trials):
        classic.append(classic_loop(args.steps, args.batch_size, root, device))
        ours.append(vaeviz_fit(args.steps, args.batch_size, train, device))
        print(f"trial {trial + 1}: classic {classic[-1]:8.0f} img/s   vaeviz {ours[-1]:8.0f} img/s", flush=True)
    c, o = statistics.median(classic), statistics.median(ours)
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch_size}, "
          f"{args.steps} steps x {args.trials} trials")
    print(f"median classic DataLoader+ToTensor: {c:.0f} images/s")
    print(f"median vaeviz fit:                  {o:.0f} images/s")
    print(f"ratio vaeviz / classic:             {o / c:.2f}x")


if __name__ == "__main__":
    main()
