"""The family's shipped models, each against the measure it is shipped for, in one run.

- probabilistic PCA: its exact test log-likelihood against scikit-learn's `PCA(16).fit(train).score(test)`
  (the same model, fitted by scikit-learn on the same 60,000 training images);
- the denoising AE: BCE per pixel against the clean test images from σ = 0.3 noisy ones, beside the plain AE's;
- the sparse AE: codes above zero per test image, and its BCE;
- the contractive AE: mean ‖∂z/∂x‖²_F on 1,000 test images, beside the plain AE's, and its BCE; the
  same divided by the codes' total variance (a measure a rescaled code cannot dodge), with the DAE's too;
- the hierarchical VAE: test −ELBO per layer, beside the flat VAE's.

    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.family
"""

from __future__ import annotations

import time

import torch

from vaeviz import evaluate, load_checkpoint, load_split
from vaeviz.checkpoint import SHIPPED_DIR
from vaeviz.models.autoencoders import denoising_bce, jacobian_frobenius


def shipped(name: str):
    return load_checkpoint(SHIPPED_DIR / f"{name}.safetensors")


def main() -> None:
    from sklearn.decomposition import PCA

    torch.manual_seed(0)
    train, test = load_split("mnist", "train"), load_split("mnist", "test")
    x = test.images
    t0 = time.perf_counter()
    ppca = shipped("mnist-ppca-16")
    with torch.no_grad():
        ours = -float(ppca.nll(x).double().mean())
    reference = PCA(n_components=16, svd_solver="full").fit(train.images.flatten(1).double().numpy())
    theirs = float(reference.score(x.flatten(1).double().numpy()))
    print(f"ppca: test log-likelihood {ours:.4f} nats per image; scikit-learn's score {theirs:.4f} "
          f"(relative difference {abs(ours - theirs) / abs(theirs):.1e}); noise variance {float(ppca.noise_variance):.5f}, "
          f"scikit-learn's {reference.noise_variance_:.5f}")

    ae = shipped("mnist-ae-mlp-16")
    noisy = {name: denoising_bce(m, x, "gaussian", 0.3) for name, m in (("dae", shipped("mnist-dae-mlp-16")), ("ae", ae))}
    print(f"dae: BCE per pixel from σ = 0.3 noisy test images against the clean ones: dae {noisy['dae']:.4f}, "
          f"plain ae {noisy['ae']:.4f}")

    sae = shipped("mnist-sae-mlp-64")
    with torch.no_grad():
        codes = torch.cat([sae.encode(x[i:i + 2000])[0] for i in range(0, len(x), 2000)])
    print(f"sae: {float((codes > 0).float().sum(1).mean()):.2f} of {codes.shape[1]} codes above zero per test image, "
          f"{int((codes > 0).any(0).sum())} fire for some image; BCE {evaluate(sae, x).bce_per_pixel:.4f} per pixel")

    cae, dae = shipped("mnist-cae-mlp-16"), shipped("mnist-dae-mlp-16")
    j2, scaled = {}, {}
    for name, m in (("cae", cae), ("ae", ae), ("dae", dae)):
        j2[name] = float(jacobian_frobenius(m, x[:1000]).detach().mean())
        with torch.no_grad():
            spread = float(m.encode(x[:1000])[0].var(0).sum())  # the codes' total variance over the images
        scaled[name] = j2[name] / spread  # unchanged when the whole code is scaled: J^2 and the variance scale alike
    print(f"cae: mean ‖∂z/∂x‖²_F on 1,000 test images: cae {j2['cae']:.1f}, plain ae {j2['ae']:.1f} "
          f"(ratio {j2['cae'] / j2['ae']:.3f}); cae BCE {evaluate(cae, x).bce_per_pixel:.4f} per pixel")
    print(f"     without the code's scale, ‖∂z/∂x‖²_F / total variance of the codes: cae {scaled['cae']:.2f}, "
          f"plain ae {scaled['ae']:.2f}, denoising ae {scaled['dae']:.2f}")

    hvae, vae = evaluate(shipped("mnist-hvae-mlp-16"), x, seed=0), evaluate(shipped("mnist-vae-mlp-16"), x, seed=0)
    print(f"hvae: test −ELBO {hvae.neg_elbo:.2f} nats per image (recon {hvae.recon:.2f}, KL top {hvae.extra['kl2']:.2f}, "
          f"bottom {hvae.extra['kl1']:.2f}; active units top {hvae.active_units}, bottom "
          f"{hvae.extra['active_units_bottom']}); flat vae {vae.neg_elbo:.2f}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
