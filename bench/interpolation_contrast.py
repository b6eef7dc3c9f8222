"""AE versus VAE along interpolation paths, over many random test pairs, for the shipped model pairs.

For each pair of shipped models (same data, architecture and latent size, one AE and one VAE), it
draws random pairs of test images, walks the straight path between their codes (the VAE's posterior
means), and measures each path by (a) its mean distance to the model's encoded test images, in units
of that model's typical neighbour distance (`vaeviz.contrast`), over the inner steps, and (b) the
judge's (the shipped MNIST classifier's) mean confidence over all frames. It prints how often the
VAE's path stays closer to its data than the AE's, and those means, whatever they are.

    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.interpolation_contrast [--pairs 1000 --steps 10]
"""

from __future__ import annotations

import argparse
import json
import time

from vaeviz import latent, load_checkpoint, load_split
from vaeviz.checkpoint import SHIPPED_DIR
from vaeviz.contrast import REFERENCE_CODES, compare_paths, data_cloud
from vaeviz.judge import load_classifier

PAIRS = [("mnist-ae-mlp-2", "mnist-vae-mlp-2"), ("mnist-ae-mlp-16", "mnist-vae-mlp-16"),
         ("mnist-ae-conv-16", "mnist-vae-conv-16")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--path", choices=latent.PATHS, default="linear")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    test = load_split("mnist", "test")
    images = test.images[:REFERENCE_CODES]
    judge, record = load_classifier()
    print(f"judge: test accuracy {record['test_accuracy']:.2%}; {args.pairs} random test pairs of the first "
          f"{len(images):,} test images, {args.steps} steps, {args.path} path")
    results = {}
    for ae_name, vae_name in PAIRS:
        started = time.perf_counter()
        models = tuple(load_checkpoint(SHIPPED_DIR / f"{n}.safetensors") for n in (ae_name, vae_name))
        codes = tuple(latent.encode(m, images)[0] for m in models)
        clouds = tuple(data_cloud(c) for c in codes)
        out = compare_paths(models, clouds, codes, n_pairs=args.pairs, steps=args.steps, how=args.path,
                            classifier=judge, seed=args.seed)
        results[f"{ae_name} vs {vae_name}"] = out
        (d_ae, d_vae), (c_ae, c_vae) = out["mean_distance"], out["mean_confidence"]
        print(f"{ae_name:>18} vs {vae_name:<18}  VAE path closer to its data in {out['second_closer']:.1%} of pairs; "
              f"mean distance AE {d_ae:.2f}, VAE {d_vae:.2f} neighbour gaps (medians {out['median_distance'][0]:.2f}, "
              f"{out['median_distance'][1]:.2f}); judge's mean confidence AE {c_ae:.3f}, VAE {c_vae:.3f} "
              f"({time.perf_counter() - started:.0f} s)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
