"""The trainer: it learns on real data, is reproducible, stops on request and on NaN."""

from __future__ import annotations

import pytest
import torch

from vaeviz import ModelConfig, TrainConfig, build_model, evaluate, fit, iw_nll


def test_training_lowers_the_loss_on_real_data(mnist_slice):
    train, test = mnist_slice
    torch.manual_seed(0)
    model = build_model("vae", ModelConfig(latent_dim=8))
    before = evaluate(model, test.images).neg_elbo
    steps = []
    history = fit(model, train, TrainConfig(epochs=2, log_every=5, device="cpu"), test=test, on_step=steps.append)
    after = evaluate(model, test.images).neg_elbo
    assert after < before - 200  # ~543 nats untrained -> ~200 after two short epochs
    assert len(history.epochs) == 2 and history.epochs[-1]["test"]["neg_elbo"] == pytest.approx(after)
    assert steps and len(steps[0]["kl_per_dim"]) == 8 and steps[0]["epoch"] == 1
    assert steps[-1]["total"] < steps[0]["total"]
    assert history.train_images == 4000 and history.train_images_per_s > 0


def test_same_seed_same_model(mnist_slice):
    train, _ = mnist_slice
    small = train._replace(images=train.images[:300], labels=train.labels[:300])
    weights = []
    for _ in range(2):
        model = build_model("vae", ModelConfig(latent_dim=2, hidden=(32, 16)), seed=7)
        fit(model, small, TrainConfig(epochs=1, seed=7, device="cpu"))
        weights.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_weight_average_is_what_is_kept_and_evaluated(mnist_slice):
    """With ema, each parameter ends as the exact bias-corrected running average of the trained
    weights: sum_t decay^(T-t) (1 - decay) w_t / (1 - decay^T), with no share left for the random
    initial weights (an uncorrected average starting at them would keep decay^T of them)."""
    train, test = mnist_slice
    small = train._replace(images=train.images[:512], labels=train.labels[:512])
    decay = 0.9
    model = build_model("vae", ModelConfig(latent_dim=2, hidden=(32, 16)), seed=3)
    seen = []

    def fold_in(_info):  # log_every=1: called after each step with the raw (unaveraged) weights
        seen.append([p.detach().clone() for p in raw.parameters()])

    raw = build_model("vae", ModelConfig(latent_dim=2, hidden=(32, 16)), seed=3)
    fit(raw, small, TrainConfig(epochs=1, seed=3, device="cpu", log_every=1), on_step=fold_in)
    history = fit(model, small, TrainConfig(epochs=1, seed=3, device="cpu", ema=decay), test=test)
    steps = len(seen)
    weights = [decay ** (steps - 1 - t) * (1 - decay) / (1 - decay**steps) for t in range(steps)]
    assert sum(weights) == pytest.approx(1.0)
    for i, p in enumerate(model.parameters()):
        expected = sum(w * params[i] for w, params in zip(weights, seen))
        torch.testing.assert_close(p, expected, rtol=1e-5, atol=1e-6)
    assert not all(torch.equal(p, q) for p, q in zip(model.parameters(), raw.parameters()))
    assert history.epochs[-1]["test"]["neg_elbo"] == pytest.approx(evaluate(model, test.images).neg_elbo)


def test_kl_warmup_starts_from_the_reconstruction_alone(mnist_slice):
    """At step 0 of a warm-up the KL weight is 0: the first update is the one beta = 0 would make."""
    train, _ = mnist_slice
    one_batch = train._replace(images=train.images[:64], labels=train.labels[:64])
    weights = {}
    for name, beta, warmup in (("warm", 1.0, 100.0), ("beta0", 0.0, 0.0), ("plain", 1.0, 0.0)):
        model = build_model("vae", ModelConfig(latent_dim=2, hidden=(32, 16), beta=beta), seed=5)
        fit(model, one_batch, TrainConfig(epochs=1, batch_size=64, seed=5, device="cpu", kl_warmup=warmup))
        weights[name] = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.testing.assert_close(weights["warm"], weights["beta0"])
    assert not torch.allclose(weights["warm"], weights["plain"])


def test_should_stop_stops_at_once(mnist_slice, tiny_vae):
    train, _ = mnist_slice
    calls = []
    history = fit(tiny_vae, train, TrainConfig(epochs=5, device="cpu"), should_stop=lambda: len(calls) > 3 or calls.append(1))
    assert history.stopped and history.train_images == 4 * 128  # four calls said go on


def test_nan_guard_restores_the_last_good_weights(mnist_slice, tiny_vae, monkeypatch):
    train, _ = mnist_slice
    real_loss = tiny_vae.loss
    seen = {"n": 0}
    snapshots = []

    def loss_that_explodes(x, out):
        seen["n"] += 1
        terms = real_loss(x, out)
        if seen["n"] > 12:  # after two good windows of 5 steps, every loss is NaN
            terms = {k: v * float("nan") for k, v in terms.items()}
        return terms

    monkeypatch.setattr(tiny_vae, "loss", loss_that_explodes)
    history = fit(tiny_vae, train, TrainConfig(epochs=1, log_every=5, device="cpu"),
                  on_step=lambda info: snapshots.append({k: v.clone() for k, v in tiny_vae.state_dict().items()}))
    assert history.diverged and "last good weights were restored" in history.diverged
    assert len(snapshots) == 2
    for k, v in tiny_vae.state_dict().items():
        assert torch.isfinite(v).all()
        assert torch.equal(v, snapshots[-2][k]), k


def test_pca_is_fitted_not_trained(mnist_slice):
    train, test = mnist_slice
    pca = build_model("pca", ModelConfig(latent_dim=16))
    history = fit(pca, train, TrainConfig(epochs=1, device="cpu"), test=test)
    assert history.epochs[0]["test"]["recon"] < 150  # 16 components already reconstruct well
    ae_untrained = evaluate(build_model("ae", ModelConfig(latent_dim=16)), test.images).recon
    assert history.epochs[0]["test"]["recon"] < ae_untrained


def test_metrics_units_and_iw_bound(mnist_slice, tiny_vae):
    train, test = mnist_slice
    fit(tiny_vae, train, TrainConfig(epochs=1, device="cpu"))
    x = test.images[:100]
    m = evaluate(tiny_vae, x)
    assert m.neg_elbo == pytest.approx(m.recon + m.kl)
    assert m.bce_per_pixel == pytest.approx(m.recon / 784)
    assert sum(m.kl_per_dim) == pytest.approx(m.kl, rel=1e-6)
    assert evaluate(tiny_vae, x) == m  # seeded: the same numbers every time
    # The importance-weighted bound is tighter than the ELBO and tightens with k.
    nll_1 = sum(iw_nll(tiny_vae, x, k=1, seed=s) for s in range(20)) / 20
    nll_50 = iw_nll(tiny_vae, x, k=50)
    assert nll_1 == pytest.approx(m.neg_elbo, rel=0.01)
    assert nll_50 < nll_1


def test_bad_train_config():
    for kwargs in ({"lr": float("nan")}, {"lr": -1.0}, {"epochs": 0}, {"batch_size": 0},
                   {"ema": 1.0}, {"ema": -0.1}, {"ema": float("inf")}, {"kl_warmup": -1.0}):
        with pytest.raises(ValueError):
            TrainConfig(**kwargs)
