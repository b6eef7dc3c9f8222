"""Which digits the judge sees in each shipped MNIST model's samples from the prior N(0, I).

For each model, 1,000 codes drawn from N(0, I) (seed 0) are decoded, and the shipped classifier
(the judge) labels each; it prints the share the judge is sure of (confidence >= 0.9) and how many
of the 10 digits appear among those.

    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.prior_samples [--samples 1000]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from vaeviz import latent, load_checkpoint
from vaeviz.checkpoint import SHIPPED_DIR, find_checkpoints
from vaeviz.judge import judge, load_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    classifier, record = load_classifier()
    print(f"judge: test accuracy {record['test_accuracy']:.2%}; {args.samples} draws from N(0, I) per model")
    print(f"{'model':<28} {'judge sure':>10}  {'digits seen':>11}  counts of 0..9 among the sure ones")
    for path in find_checkpoints([SHIPPED_DIR]):
        model = load_checkpoint(path)
        if model.meta.dataset != "mnist" or model.cfg.image_shape != (1, 28, 28):
            continue
        z = torch.randn(args.samples, model.cfg.latent_dim, generator=torch.Generator().manual_seed(args.seed)).numpy()
        verdict = judge(classifier, latent.decode(model, z))
        sure = verdict.confidence >= 0.9
        counts = np.bincount(verdict.label[sure], minlength=10)
        print(f"{path.stem:<28} {sure.mean():>10.1%}  {(counts > 0).sum():>8} of 10  {counts.tolist()}")


if __name__ == "__main__":
    main()
