"""Runs that diverge: the trainer stops, keeps weights a finite loss was seen with, and says so; a
job keeps a model that can be measured and saved; NaN codes never fail the live pictures."""

from __future__ import annotations

import numpy as np

from vaeviz import TrainConfig, evaluate, fit, jobs, load_checkpoint, store
from vaeviz.jobs import JobStatus, RunSpec, TrainingJob

from .support.faults import finite, weights_equal


def test_a_diverging_fit_stops_and_keeps_finite_weights(mnist_slice, tiny_vae):
    train, test = mnist_slice
    snapshots = []
    history = fit(tiny_vae, train, TrainConfig(epochs=2, lr=10.0, log_every=5, device="cpu"), test=test,
                  on_step=lambda info: snapshots.append(info["step"]))
    assert history.diverged and "last good weights were restored" in history.diverged
    assert "smaller learning rate" in history.diverged
    assert history.steps == [] or history.steps[-1]["step"] == snapshots[-1]  # stopped at the bad window
    assert len(history.epochs) < 2  # it did not go on training
    assert finite(tiny_vae)
    assert np.isfinite(evaluate(tiny_vae, test.images).neg_elbo)


def test_a_diverging_fit_restores_weights_whose_loss_was_seen_finite(mnist_slice, tiny_vae):
    """With one step a window (as the Trainer uses for small runs) the restored weights must be
    ones a finite loss was computed from, not the update that produced the NaN."""
    train, test = mnist_slice
    history = fit(tiny_vae, train, TrainConfig(epochs=1, lr=10.0, log_every=1, device="cpu"))
    assert history.diverged
    assert np.isfinite(evaluate(tiny_vae, train.images[:500]).neg_elbo)


def test_a_diverged_job_keeps_a_model_that_can_be_measured_and_saved(tmp_path):
    job = TrainingJob([RunSpec(dataset="digits", latent_dim=2, epochs=2, lr=10.0)], threads=1).start()
    assert job.join(120)
    view = job.view()
    assert view.status is JobStatus.FINISHED and view.diverged and "last good weights were restored" in view.message
    (result,) = view.results
    assert finite(result.model) and np.isfinite(result.metrics.neg_elbo)
    path = store.save_model(result.model, "diverged", folder=tmp_path)
    assert weights_equal(load_checkpoint(path), result.model)


def test_non_finite_live_pictures_never_fail_the_run(monkeypatch):
    """Weights on their way to diverging can give NaN codes between two checks of the loss; the
    live map's PCA raised on them, ending the run as 'failed' and losing the model."""
    real_build = jobs.build_model

    def build_with_nan_codes_in_eval(kind, cfg, seed=None):
        model = real_build(kind, cfg, seed=seed)
        real_encode = model.encode

        def encode(x):
            mu, logvar = real_encode(x)
            return (mu if model.training else mu * float("nan")), logvar  # training itself stays sound

        model.encode = encode
        return model

    monkeypatch.setattr(jobs, "build_model", build_with_nan_codes_in_eval)
    job = TrainingJob([RunSpec(dataset="digits", latent_dim=8, epochs=1)], threads=1, snapshot_every_s=0.0).start()
    assert job.join(120)
    view = job.view()
    assert view.status is JobStatus.FINISHED, view.message
    assert len(view.results) == 1 and finite(view.results[0].model)
    assert "map_xy" not in view.visuals  # no picture of NaN codes was drawn


