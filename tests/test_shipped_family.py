"""The shipped members of the family meet the bars they were shipped for, measured here on MNIST's test
set (not read from their metadata), and each checkpoint is small enough to ship.

- `mnist-dae-mlp-16` reconstructs clean digits from noisy ones (σ = 0.3) better than the plain AE does;
- `mnist-sae-mlp-64` fires at most 16 of its 64 codes per image on average, with BCE ≤ 0.100 per pixel;
- `mnist-cae-mlp-16`'s mean ‖∂z/∂x‖²_F is at most half the plain AE's, with BCE ≤ 0.110 per pixel;
- `mnist-ppca-16`'s −ELBO equals its exact −log p(x) (its posterior is exact);
- `mnist-hvae-mlp-16`'s −ELBO is below the flat `mnist-vae-mlp-16`'s, on the same test images;
- every checkpoint is under 3 MB and the folder under 40 MB.
"""

from __future__ import annotations

import pytest
import torch

from vaeviz import load_checkpoint, load_split
from vaeviz.checkpoint import SHIPPED_DIR
from vaeviz.metrics import evaluate
from vaeviz.models.autoencoders import denoising_bce, jacobian_frobenius


def shipped(name: str):
    return load_checkpoint(SHIPPED_DIR / f"{name}.safetensors")


@pytest.fixture(scope="module")
def test_images(data_root):
    return load_split("mnist", "test", root=data_root).images


def bce_per_pixel(model, images) -> float:
    return evaluate(model, images).bce_per_pixel


def test_the_denoising_ae_denoises_better_than_the_plain_one(test_images):
    dae, ae = shipped("mnist-dae-mlp-16"), shipped("mnist-ae-mlp-16")
    noisy = {name: denoising_bce(m, test_images, "gaussian", 0.3) for name, m in (("dae", dae), ("ae", ae))}
    print(f"BCE per pixel from σ = 0.3 noise, against the clean images: {noisy}")
    assert noisy["dae"] < noisy["ae"]


def test_the_sparse_ae_fires_few_codes(test_images):
    sae = shipped("mnist-sae-mlp-64")
    with torch.no_grad():
        codes = torch.cat([sae.encode(test_images[i:i + 2000])[0] for i in range(0, len(test_images), 2000)])
    active = float((codes > 0).float().sum(1).mean())
    bce = bce_per_pixel(sae, test_images)
    print(f"sae: {active:.2f} of 64 codes above zero per image, BCE {bce:.4f} per pixel")
    assert active <= 16 and bce <= 0.100


def test_the_contractive_ae_is_less_sensitive_than_the_plain_one(test_images):
    cae, ae = shipped("mnist-cae-mlp-16"), shipped("mnist-ae-mlp-16")
    x = test_images[:1000]
    j2 = {name: float(jacobian_frobenius(m, x).detach().mean()) for name, m in (("cae", cae), ("ae", ae))}
    bce = bce_per_pixel(cae, test_images)
    print(f"mean ‖∂z/∂x‖²_F on 1,000 test images: {j2}; cae BCE {bce:.4f} per pixel")
    assert j2["cae"] <= 0.5 * j2["ae"] and bce <= 0.110


def test_probabilistic_pca_has_an_exact_posterior(test_images):
    ppca = shipped("mnist-ppca-16")
    m = evaluate(ppca, test_images[:2000])
    with torch.no_grad():
        exact = float(ppca.nll(test_images[:2000]).mean())
    print(f"ppca on 2,000 test images: -ELBO {m.neg_elbo:.3f}, exact -log p(x) {exact:.3f}")
    assert abs(m.neg_elbo - exact) < 1e-2 * abs(exact)


def test_the_hierarchical_vae_beats_the_flat_one(test_images):
    hvae, vae = shipped("mnist-hvae-mlp-16"), shipped("mnist-vae-mlp-16")
    elbo = {name: evaluate(m, test_images, seed=0).neg_elbo for name, m in (("hvae", hvae), ("vae", vae))}
    print(f"test -ELBO, nats per image: {elbo}")
    assert elbo["hvae"] < elbo["vae"]


def test_every_checkpoint_is_small_enough_to_ship():
    sizes = {p.relative_to(SHIPPED_DIR).as_posix(): p.stat().st_size for p in SHIPPED_DIR.rglob("*.safetensors")
             if "user" not in p.relative_to(SHIPPED_DIR).parts}
    assert sizes and max(sizes.values()) < 3 * 2**20, {k: v for k, v in sizes.items() if v >= 3 * 2**20}
    assert sum(sizes.values()) < 40 * 2**20, f"{sum(sizes.values()) / 2**20:.1f} MB in all"
