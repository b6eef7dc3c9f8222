"""The family of the lecture notes, each kind against a trusted reference: probabilistic PCA against
scikit-learn, the contractive penalty against an autograd Jacobian, the hierarchical VAE's KL terms
against torch.distributions, the amortization gap never negative; and what the denoising and sparse
autoencoders change."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaeviz import MODELS, ModelConfig, build_model, evaluate, iw_nll
from vaeviz.inference import amortization_gap, optimize_posterior
from vaeviz.models.autoencoders import corrupt, denoising_bce, jacobian_frobenius


# --- probabilistic PCA -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ppca_and_sklearn(mnist_slice):
    from sklearn.decomposition import PCA as SkPCA

    train, test = mnist_slice
    model = build_model("ppca", ModelConfig(latent_dim=16, likelihood="gaussian"))
    model.fit_closed_form(train.images)
    reference = SkPCA(n_components=16, svd_solver="full").fit(train.images.flatten(1).double().numpy())
    return model, reference, test


def test_ppca_is_scikit_learns_model(ppca_and_sklearn):
    model, ref, _ = ppca_and_sklearn
    dots = (model.components.double().numpy() * ref.components_).sum(1)
    np.testing.assert_allclose(np.abs(dots), 1.0, atol=1e-4)  # the same directions, up to sign
    assert float(model.noise_variance) == pytest.approx(ref.noise_variance_, rel=1e-4)
    np.testing.assert_allclose(model.eigenvalues.numpy(), ref.explained_variance_, rtol=1e-4)
    cov = model.weight().double() @ model.weight().double().T + model.noise_variance.double() * torch.eye(784, dtype=torch.float64)
    np.testing.assert_allclose(cov.numpy(), ref.get_covariance(), atol=1e-6)  # W W^T + s2 I, the same Gaussian


def test_ppca_test_log_likelihood_is_exact_and_equals_scikit_learns_score(ppca_and_sklearn):
    model, ref, test = ppca_and_sklearn
    x = test.images
    ours = -float(model.nll(x).double().mean())
    theirs = ref.score(x.flatten(1).double().numpy())  # mean log-likelihood per image
    assert ours == pytest.approx(theirs, rel=1e-3)
    metrics = evaluate(model, x)
    assert metrics.neg_elbo == pytest.approx(metrics.extra["nll"], rel=1e-4)  # the posterior is exact: no gap
    assert iw_nll(model, x[:50], k=5) == pytest.approx(float(model.nll(x[:50]).mean()), rel=1e-4)


def test_ppca_posterior_is_the_exact_one(ppca_and_sklearn):
    model, _, test = ppca_and_sklearn
    x = test.images[:3].flatten(1).double()
    w, s2 = model.weight().double(), model.noise_variance.double()
    m = w.T @ w + s2 * torch.eye(16, dtype=torch.float64)
    mean = torch.linalg.solve(m, w.T @ (x - model.mean.double()).T).T
    mu, logvar = model.encode(test.images[:3])
    torch.testing.assert_close(mu.double(), mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logvar.exp().double()[0], torch.diagonal(s2 * torch.linalg.inv(m)), rtol=1e-4, atol=1e-8)
    fitted = optimize_posterior(model, test.images[:20], steps=30)
    assert float(fitted.gap.max()) == pytest.approx(0.0, abs=1e-3)  # nothing to gain on the exact posterior


# --- contractive, denoising, sparse ------------------------------------------------------------------


def autograd_frobenius(model, x):
    jac = torch.autograd.functional.jacobian(lambda v: model.encode(v)[0].sum(0), x)  # (D, B, C, H, W)
    return jac.pow(2).flatten(2).sum((0, 2))


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_the_contractive_penalty_is_the_exact_jacobian_norm(arch):
    model = build_model("cae", ModelConfig(arch=arch, latent_dim=5, hidden=(32, 16), conv_channels=(4, 8),
                                           conv_hidden=12, contraction=0.5), seed=0)
    x = torch.rand(6, 1, 28, 28)
    torch.testing.assert_close(jacobian_frobenius(model, x), autograd_frobenius(model, x), rtol=1e-4, atol=1e-5)
    terms = model.loss(x, model(x))
    torch.testing.assert_close(terms["contraction"], 0.5 * autograd_frobenius(model, x).mean(), rtol=1e-4, atol=1e-5)
    terms["total"].backward()  # the penalty trains the encoder
    assert model.encoder[1 if arch == "mlp" else 0].weight.grad.abs().sum() > 0


def test_a_sparse_codes_are_non_negative_and_pay_their_l1():
    model = build_model("sae", ModelConfig(latent_dim=12, hidden=(32, 16), sparsity=0.25), seed=0)
    x = torch.rand(8, 1, 28, 28)
    z, _ = model.encode(x)
    assert (z >= 0).all() and (z == 0).any()
    terms = model.loss(x, model(x))
    torch.testing.assert_close(terms["l1"], 0.25 * z.sum(1).mean())
    torch.testing.assert_close(jacobian_frobenius(model, x), autograd_frobenius(model, x), rtol=1e-4, atol=1e-5)


def test_the_denoising_ae_sees_corrupted_images_in_training_only():
    model = build_model("dae", ModelConfig(latent_dim=4, hidden=(32, 16), noise=0.5), seed=0)
    x = torch.rand(5, 1, 28, 28) * 0.5
    model.eval()
    torch.testing.assert_close(model(x).mu, model.encode(x)[0])  # clean in, at test time
    model.train()
    torch.manual_seed(0)
    assert not torch.allclose(model(x).mu, model.encode(x)[0])
    noisy = corrupt(x, "gaussian", 0.3, torch.Generator().manual_seed(1))
    assert noisy.min() >= 0 and noisy.max() <= 1 and not torch.equal(noisy, x)
    masked = corrupt(x, "mask", 0.5, torch.Generator().manual_seed(1))
    assert 0.4 < float((masked == 0).float().mean()) < 0.6 and torch.equal(masked[masked > 0], x[masked > 0])
    same = [denoising_bce(model.eval(), x, "gaussian", 0.3, seed=3) for _ in range(2)]
    assert same[0] == same[1]  # the same noise for every model measured with this seed


# --- the hierarchical VAE -----------------------------------------------------------------------------


def test_the_hierarchical_vaes_kl_terms_match_torch_distributions():
    torch.manual_seed(0)
    model = build_model("hvae", ModelConfig(latent_dim=3, bottom_dim=5, hidden=(32, 16)), seed=0)
    x = torch.rand(7, 1, 28, 28)
    out = model(x)
    terms = model.loss(x, out)
    e = out.extra
    q1 = Normal(e["mu1"], (0.5 * e["logvar1"]).exp())
    p1 = Normal(e["prior_mu1"], (0.5 * e["prior_logvar1"]).exp())
    q2 = Normal(out.mu, (0.5 * out.logvar).exp())
    torch.testing.assert_close(terms["kl1"], kl_divergence(q1, p1).sum(1).mean(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms["kl2"], kl_divergence(q2, Normal(0.0, 1.0)).sum(1).mean(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms["neg_elbo"], terms["recon"] + terms["kl1"] + terms["kl2"])
    # Its importance-weighted bound is tighter than its ELBO (in expectation; many samples here).
    assert iw_nll(model, x, k=200) < float(evaluate(model, x).neg_elbo) + 1e-3
    # The bottom layer varies under a fixed top code.
    samples = model.sample_bottom(torch.zeros(2, 3), 4, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (2, 4, 1, 28, 28) and samples[0].std(0).mean() > 0


def test_every_kind_decodes_in_the_browser_format():
    from vaeviz import webdecoder

    for kind in MODELS:
        model = build_model(kind, ModelConfig(latent_dim=3, hidden=(16, 8)), seed=0).eval()
        if model.fit_method == "closed form":
            model.fit_closed_form(torch.rand(40, 1, 28, 28))
        spec = webdecoder.decoder_spec(model)
        z = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
        with torch.no_grad():
            expected = model.decode(torch.from_numpy(z)).numpy()
        assert np.abs(webdecoder.forward(spec, z) - expected).max() < 1e-5, kind


# --- the amortization gap ---------------------------------------------------------------------------------


def test_optimize_posterior_never_returns_a_worse_elbo_than_its_start(mnist_slice):
    from vaeviz import TrainConfig, fit

    train, test = mnist_slice
    model = build_model("vae", ModelConfig(latent_dim=8, hidden=(64, 32)), seed=0)
    fit(model, train, TrainConfig(epochs=2, device="cpu"))
    x = test.images[:40]
    fitted = optimize_posterior(model, x, steps=60)
    assert (fitted.gap >= 0).all()
    assert float(fitted.gap.mean()) > 0.1  # a barely trained encoder leaves nats on the table
    none = optimize_posterior(model, x, steps=0)
    assert float(none.gap.abs().max()) == 0.0
    assert amortization_gap(model, x[:10], steps=20) >= 0
    with pytest.raises(ValueError, match="no single Gaussian posterior"):
        optimize_posterior(build_model("ae", ModelConfig(latent_dim=2)), x, steps=1)
