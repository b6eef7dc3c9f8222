"""Models: shapes for every kind and architecture, the loss maths against trusted references."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from vaeviz import MODELS, PCA, Model, ModelConfig, build_model
from vaeviz.models import kl_per_dim, recon_nll


@pytest.mark.parametrize("kind", ["ae", "vae", "pca"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("latent", [1, 2, 16, 256])
def test_shapes(kind, arch, latent):
    model = build_model(kind, ModelConfig(arch=arch, latent_dim=latent))
    x = torch.rand(5, 1, 28, 28)
    mu, logvar = model.encode(x)
    assert mu.shape == (5, latent)
    assert (logvar is None) == (kind != "vae")
    if logvar is not None:
        assert logvar.shape == (5, latent)
    x_hat = model.decode(mu)
    assert x_hat.shape == (5, 1, 28, 28)
    assert x_hat.min() >= 0 and x_hat.max() <= 1
    out = model(x)
    assert out.logits.shape == x.shape and out.z.shape == (5, latent)
    terms = model.loss(x, out)
    assert set(terms) == {*model.terms, "total"} and all(t.ndim == 0 for t in terms.values())


def test_mlp_is_the_lecture_notes_architecture():
    model = build_model("vae", ModelConfig(arch="mlp", latent_dim=16))
    linears = [m for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(784, 256), (256, 128), (128, 32)]
    linears = [m for m in model.decoder if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(16, 128), (128, 256), (256, 784)]


def test_conv_architecture_channels():
    model = build_model("ae", ModelConfig(arch="conv", latent_dim=16))
    convs = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (1, 16, (4, 4), (2, 2)), (16, 32, (4, 4), (2, 2))]
    deconvs = [m for m in model.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in deconvs] == [(32, 16), (16, 1)]


def test_shapes_come_from_the_config():
    cfg = ModelConfig(arch="conv", latent_dim=8, channels=3, height=32, width=16)
    model = build_model("vae", cfg)
    x = torch.rand(2, 3, 32, 16)
    assert model(x).logits.shape == x.shape
    assert build_model("ae", ModelConfig(arch="mlp", channels=1, height=1, width=2, latent_dim=1)).decode(
        torch.zeros(3, 1)).shape == (3, 1, 1, 2)


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(7, 5), torch.randn(7, 5)
    ours = kl_per_dim(mu, logvar)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros(5), torch.ones(5)))
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_loss_reduction_is_sum_over_pixels_mean_over_batch():
    torch.manual_seed(0)
    model = build_model("vae", ModelConfig(latent_dim=3, beta=2.5))
    x = torch.rand(4, 1, 28, 28)
    out = model(x)
    terms = model.loss(x, out)
    bce = F.binary_cross_entropy(torch.sigmoid(out.logits), x, reduction="sum") / 4
    kl = kl_divergence(Normal(out.mu, (0.5 * out.logvar).exp()), Normal(0.0, 1.0)).sum() / 4
    torch.testing.assert_close(terms["recon"], bce, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(terms["kl"], kl, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms["total"], terms["recon"] + 2.5 * terms["kl"])


def test_gaussian_likelihood_is_a_true_negative_log_density():
    cfg = ModelConfig(latent_dim=2, likelihood="gaussian", sigma=0.3)
    x = torch.rand(3, 1, 28, 28)
    logits = torch.randn(3, 1, 28, 28)
    ref = -Normal(torch.sigmoid(logits), 0.3).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(recon_nll(cfg, x, logits), ref, rtol=1e-5, atol=1e-3)


def test_ae_has_zero_kl_and_beta_only_weights_the_vae():
    x = torch.rand(2, 1, 28, 28)
    ae = build_model("ae", ModelConfig(latent_dim=3))
    terms = ae.loss(x, ae(x))
    assert "kl" not in terms and terms["total"] == terms["recon"]  # an AE has no KL term at all
    vae0 = build_model("vae", ModelConfig(latent_dim=3, beta=0.0))
    out = vae0(x)
    t = vae0.loss(x, out)
    assert t["kl"] > 0 and torch.equal(t["total"], t["recon"])


def test_registry_lists_every_kind():
    assert set(MODELS) == {"pca", "ppca", "ae", "dae", "sae", "cae", "vae", "hvae"}
    with pytest.raises(ValueError, match="unknown model kind"):
        build_model("gan", ModelConfig())


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_every_kind_is_a_peer_on_the_one_interface(kind):
    cls = MODELS[kind]
    assert cls.__mro__[1:].count(Model) == 1 and cls.kind == kind and cls.title and cls.summary
    assert cls.fit_method in ("gradient", "closed form")
    model = build_model(kind, ModelConfig(latent_dim=3, hidden=(16, 8)), seed=0).eval()
    assert model.meta.kind == kind and model.meta.config == model.cfg
    z = torch.randn(4, 3)
    decoded = z
    for layer in model.decoder_layers():  # the web decoder's layers compose to decode
        decoded = layer(decoded)
    torch.testing.assert_close(decoded, model.decode(z))
    x = torch.rand(4, 1, 28, 28)
    if cls.fit_method == "closed form":
        model.fit_closed_form(x)
    else:
        with pytest.raises(TypeError, match="gradient descent"):
            model.fit_closed_form(x)
    assert (model.encode(x)[1] is not None) == cls.probabilistic


def test_pca_is_a_sibling_of_the_autoencoder_not_a_child():
    assert not issubclass(PCA, MODELS["ae"]) and issubclass(PCA, Model)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"latent_dim": 0}, "latent size"),
        ({"latent_dim": 257}, "latent size"),
        ({"latent_dim": 2.5}, "whole number"),
        ({"beta": float("nan")}, "finite"),
        ({"beta": float("inf")}, "finite"),
        ({"beta": -1.0}, "beta"),
        ({"arch": "resnet"}, "architecture"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"arch": "conv", "height": 30}, "multiples of 4"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_pca_matches_scikit_learn():
    from sklearn.decomposition import PCA as SkPCA

    gen = torch.Generator().manual_seed(0)
    # Low-rank structure plus noise, so the leading directions are well separated.
    basis = torch.randn(6, 784, generator=gen)
    x = (torch.rand(400, 6, generator=gen) @ basis * 0.05 + 0.5 + 0.01 * torch.randn(400, 784, generator=gen))
    x = x.clamp(0, 1).view(400, 1, 28, 28)
    ours = PCA(ModelConfig(latent_dim=5))
    ours.fit_closed_form(x)
    ref = SkPCA(n_components=5).fit(x.flatten(1).double().numpy())
    np.testing.assert_allclose(ours.explained_variance.numpy(), ref.explained_variance_, rtol=1e-4)
    # Directions agree up to sign.
    dots = (ours.components.double().numpy() * ref.components_).sum(1)
    np.testing.assert_allclose(np.abs(dots), 1.0, atol=1e-4)
    # Reconstructions agree (before clamping, they are the same projection).
    z, _ = ours.encode(x)
    ours_rec = (z @ ours.components + ours.mean).double().numpy()
    ref_rec = ref.inverse_transform(ref.transform(x.flatten(1).double().numpy()))
    np.testing.assert_allclose(ours_rec, ref_rec, atol=1e-4)


def test_pca_reconstruction_improves_with_more_components():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(300, 1, 28, 28, generator=gen)
    errs = []
    for d in (1, 10, 100):
        pca = PCA(ModelConfig(latent_dim=d))
        pca.fit_closed_form(x)
        z, _ = pca.encode(x)
        errs.append(((pca.decode(z) - x) ** 2).mean().item())
    assert errs[0] > errs[1] > errs[2]
