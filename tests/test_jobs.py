"""The background training job: bounded records, real training, pause/resume/stop, divergence, owners.

No Streamlit here: the job, the server's board (limits, FIFO queue, one job per owner) and a
session's side of it (registering finished models once, saving and promoting one) are plain Python."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from vaeviz import evaluate, jobs, load_split
from vaeviz.jobs import JobStatus, RunSpec, ThinnedList, TrainingJob, parse_betas, sweep_specs, thin

SMALL = RunSpec(dataset="mnist", kind="vae", arch="mlp", latent_dim=2, epochs=1, train_images=1500, batch_size=100)


def wait_for(predicate, timeout: float = 120.0, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the job")
        time.sleep(every)


@pytest.fixture
def one_thread():
    """Tests share two CPU cores with the app's background work: train on one thread each."""
    return 1


# --- pure parts ----------------------------------------------------------------------------------


def test_thinned_list_is_bounded_even_and_reaches_the_present():
    curve = ThinnedList(100)
    for i in range(10_000):
        curve.append({"step": i})
    steps = [r["step"] for r in curve.snapshot()]
    assert len(curve.items) <= 100 and len(steps) <= 101
    assert steps[0] == 0 and steps[-1] == 9_999  # the newest point is always shown
    gaps = np.diff(steps[:-1])
    assert gaps.min() == gaps.max()  # evenly spread over the whole run, not just the start
    assert len(curve.items) > 50  # and not thinned more than needed


def test_thin_keeps_the_last_record_and_the_limit():
    records = list(range(1000))
    out = thin(records, 400)
    assert len(out) == 400 and out[0] == 0 and out[-1] == 999
    assert thin(records[:10], 400) == records[:10]


def test_parse_betas():
    assert parse_betas("0, 0.1, 1, 4, 10") == [0.0, 0.1, 1.0, 4.0, 10.0]
    assert parse_betas("0.5 2") == [0.5, 2.0]
    for bad in ["", "one", "-1", "nan", ",".join(str(b) for b in range(13)), "1,1,1"]:
        with pytest.raises(ValueError):
            parse_betas(bad)


def test_spec_checks_and_sweep():
    with pytest.raises(ValueError, match="multiples"):
        RunSpec(dataset="circle", arch="conv").check()  # 1x2 "images" cannot be halved twice
    with pytest.raises(ValueError, match="gan"):
        RunSpec(kind="gan").check()
    RunSpec(kind="pca").check()  # every kind of the registry trains (PCA by its closed-form fit)
    with pytest.raises(ValueError):
        TrainingJob([RunSpec(lr=0.0)])
    specs = sweep_specs(RunSpec(kind="ae", latent_dim=4), [0, 4])
    assert [(s.kind, s.beta, s.latent_dim) for s in specs] == [("vae", 0.0, 4), ("vae", 4.0, 4)]
    assert RunSpec(beta=0.5).label() == "mnist-vae-mlp-2-beta0p5"
    assert RunSpec(kind="ae").model_config().beta == 1.0
    assert RunSpec(kind="ppca").model_config().likelihood == "gaussian"  # its own, whatever the data's
    assert RunSpec(kind="dae", noise=0.5).model_config().noise == 0.5


# --- real training -------------------------------------------------------------------------------


def test_a_short_run_records_curves_pictures_and_cli_metrics(data_root, one_thread):
    job = TrainingJob([SMALL], threads=one_thread, snapshot_every_s=0.1).start()
    assert job.join(180), "the job did not finish"
    view = job.view()
    assert view.status is JobStatus.FINISHED and not view.active and view.message is None
    assert len(view.steps) >= 5 and view.steps[-1]["step"] == 15  # 1500 images / 100 per step
    assert view.steps[-1]["total"] < view.steps[0]["total"]  # it learned
    assert len(view.epochs) == 1 and {"train", "test"} <= set(view.epochs[0])
    assert view.progress["fraction"] == pytest.approx(1.0)
    assert len(view.kl_per_dim) == 2
    vis = view.visuals
    assert vis["samples"].dtype == np.uint8 and vis["samples"].shape == (8 * 29 - 1, 8 * 29 - 1)
    assert vis["holdout"].shape == (2 * 29 - 1, 10 * 29 - 1)  # originals over reconstructions, one per class
    assert vis["map_xy"].shape == (1000, 2) and len(vis["map_labels"]) == 1000

    (result,) = view.results
    model = result.model
    assert not model.training and next(model.parameters()).device.type == "cpu"
    test = load_split("mnist", "test", root=data_root)
    fresh = evaluate(model, test.images, seed=0)  # what `python -m vaeviz eval` computes
    assert result.metrics.n_images == 10_000
    assert result.metrics.neg_elbo == pytest.approx(fresh.neg_elbo, abs=1e-3)
    assert view.epochs[-1]["test"]["neg_elbo"] == pytest.approx(fresh.neg_elbo, abs=1.0)
    meta = model.meta
    assert meta.dataset == "mnist" and meta.train.images == 1500 and meta.epochs == 1
    assert meta.curves.epochs and meta.curves.steps
    assert meta.train.diverged is None and meta.train.images_per_s > 0


def test_pause_resume_and_stop(data_root, one_thread):
    spec = RunSpec(dataset="mnist", latent_dim=2, epochs=500, train_images=2000, batch_size=50)
    job = TrainingJob([spec], threads=one_thread).start()
    try:
        wait_for(lambda: job.view().progress["step"] >= 5)
        job.pause()
        wait_for(lambda: job.view().status is JobStatus.PAUSED)
        held = job.view().progress["step"]
        time.sleep(0.6)
        assert job.view().progress["step"] == held and job.paused  # no step while paused
        job.resume()
        wait_for(lambda: job.view().progress["step"] > held)
        assert job.view().status is JobStatus.TRAINING
        job.pause()
        wait_for(lambda: job.view().status is JobStatus.PAUSED)
    finally:
        job.stop()  # stop works from a pause as well
    assert job.join(60)
    view = job.view()
    assert view.status is JobStatus.STOPPED and "kept" in view.message
    (result,) = view.results
    assert result.stopped and result.metrics.n_images == 10_000  # the model so far, measured


def test_divergence_keeps_the_last_good_weights(data_root, one_thread, monkeypatch):
    real_build = jobs.build_model

    def build_exploding(kind, cfg, seed=None):
        model = real_build(kind, cfg, seed=seed)
        real_loss, calls = model.loss, {"n": 0}

        def loss(x, out):
            calls["n"] += 1
            terms = real_loss(x, out)
            # the training steps blow up; measuring the restored weights afterwards does not
            return {k: v * float("nan") for k, v in terms.items()} if calls["n"] > 8 and model.training else terms

        model.loss = loss
        return model

    monkeypatch.setattr(jobs, "build_model", build_exploding)
    spec = RunSpec(dataset="mnist", latent_dim=2, epochs=2, train_images=1000, batch_size=50)
    job = TrainingJob([spec], threads=one_thread).start()
    assert job.join(120)
    view = job.view()
    assert view.status is JobStatus.FINISHED and view.diverged
    assert "last good weights were restored" in view.message
    (result,) = view.results
    assert result.diverged
    assert all(torch.isfinite(t).all() for t in result.model.state_dict().values())
    assert np.isfinite(result.metrics.neg_elbo)


def test_two_jobs_at_once_train_their_own_models(data_root, one_thread):
    a = TrainingJob([SMALL], threads=one_thread).start()
    b = TrainingJob([RunSpec(**{**SMALL.__dict__, "kind": "ae", "seed": 3})], threads=one_thread).start()
    assert a.join(180) and b.join(180)
    (ra,), (rb,) = a.results, b.results
    assert a.view().status is b.view().status is JobStatus.FINISHED
    assert ra.model is not rb.model and ra.model.kind == "vae" and rb.model.kind == "ae"
    pa = {p.data_ptr() for p in ra.model.parameters()}
    assert not pa & {p.data_ptr() for p in rb.model.parameters()}


def test_a_job_whose_owner_is_gone_stops(data_root, one_thread, monkeypatch):
    monkeypatch.setattr(jobs, "OWNER_GRACE_S", 0.0)
    monkeypatch.setattr(jobs, "OWNER_CHECK_EVERY_S", 0.0)
    spec = RunSpec(dataset="mnist", latent_dim=2, epochs=500, train_images=2000)
    job = TrainingJob([spec], threads=one_thread, owner_alive=lambda: False).start()
    assert job.join(120)
    assert job.view().status is JobStatus.STOPPED and "session" in job.view().message


def test_the_curve_stays_bounded(data_root, one_thread, monkeypatch):
    monkeypatch.setattr(jobs, "MAX_CURVE_POINTS", 8)
    spec = RunSpec(dataset="mnist", latent_dim=2, epochs=3, train_images=1000, batch_size=20)  # 150 steps
    job = TrainingJob([spec], threads=one_thread).start()
    assert job.join(120)
    steps = job.view().steps
    assert len(steps) <= 9 and steps[-1]["step"] == 150


def test_a_sweep_trains_one_model_per_beta(data_root, one_thread):
    specs = sweep_specs(RunSpec(dataset="mnist", latent_dim=4, epochs=1, train_images=1000), [0.0, 10.0])
    job = TrainingJob(specs, threads=one_thread).start()
    assert job.join(180)
    results = job.results
    assert [r.spec.beta for r in results] == [0.0, 10.0] and job.view().status is JobStatus.FINISHED
    assert [r.model.cfg.beta for r in results] == [0.0, 10.0]
    # The trade-off: a large beta buys a smaller KL with a worse reconstruction.
    assert results[1].metrics.kl < results[0].metrics.kl
    assert results[1].metrics.recon > results[0].metrics.recon


# --- the board: a limit, a FIFO queue, one job per owner ---------------------------------------------


LONG = RunSpec(dataset="digits", latent_dim=2, epochs=500, train_images=500, batch_size=50)


def test_the_board_runs_at_most_its_limit_and_starts_the_queue_in_order(one_thread):
    board = jobs.JobBoard(limit=2)
    made = [TrainingJob([LONG], owner=f"owner-{i}", threads=one_thread) for i in range(5)]
    try:
        for job in made:
            board.submit(job)
        wait_for(lambda: all(j.view().progress["step"] > 0 for j in made[:2]))
        assert [j.status.running for j in made] == [True, True, False, False, False]
        assert [board.position(j) for j in made] == [None, None, 1, 2, 3]
        most = 0
        for ending in made[:4]:  # end them one by one: the next in line, and only it, starts
            ending.stop()
            assert ending.join(60)
            most = max(most, len(board.running()))
            waiting = [j for j in made if j.status is JobStatus.QUEUED]
            assert [board.position(j) for j in waiting] == list(range(1, len(waiting) + 1))
        assert most <= 2 and made[4].status.running
    finally:
        for job in made:
            job.stop()
            job.join(60)
    assert len(board.running()) == 0


def test_one_job_per_owner_and_cancel_while_queued(one_thread):
    board = jobs.JobBoard(limit=1)
    first = board.submit(TrainingJob([LONG], owner="a", threads=one_thread))
    second = board.submit(TrainingJob([LONG], owner="b", threads=one_thread))
    try:
        with pytest.raises(ValueError, match="already have a training job"):
            board.submit(TrainingJob([LONG], owner="a", threads=one_thread))
        assert second.status is JobStatus.QUEUED and board.position(second) == 1
        view = board.view(second)
        assert view.queue_position == 1 and view.status is JobStatus.QUEUED
        second.stop()  # cancel while queued: it never starts
        assert second.status is JobStatus.STOPPED and "before it started" in second.view().message
        assert board.position(second) is None and not second.alive
        assert board.job_for("b") is second  # its owner still finds it (and its message)
    finally:
        first.stop()
        first.join(60)


def test_a_queued_job_whose_browser_is_gone_is_dropped(one_thread, monkeypatch):
    monkeypatch.setattr(jobs, "OWNER_GRACE_S", 0.0)
    monkeypatch.setattr(jobs, "OWNER_CHECK_EVERY_S", 0.0)
    board = jobs.JobBoard(limit=1)
    running = board.submit(TrainingJob([LONG], owner="here", threads=one_thread))
    gone = board.submit(TrainingJob([LONG], owner="gone", threads=one_thread, owner_alive=lambda: False))
    try:
        assert board.queued() == []  # looking at the queue drops it
        assert gone.status is JobStatus.STOPPED and "closed" in gone.view().message
    finally:
        running.stop()
        running.join(60)


# --- a browser session's side: register once, save and promote ------------------------------------------


def test_a_session_registers_each_finished_run_once_and_promotes_a_saved_one(tmp_path, one_thread):
    from vaeviz.catalogue import ModelRef, SessionModels, save_and_promote

    board = jobs.JobBoard(limit=1)
    catalogue = SessionModels()
    session = jobs.TrainingSession(board, "me", catalogue)
    specs = sweep_specs(RunSpec(dataset="digits", latent_dim=2, epochs=2, train_images=300, batch_size=50), [0.0, 4.0])
    job = session.start(specs)
    assert job.join(120) and job.status is JobStatus.FINISHED
    new = session.register_finished()
    assert len(new) == 2 and session.register_finished() == []  # once each
    beta4 = job.results[1]
    assert beta4.model.meta.beta == 4.0 and beta4.model.meta.epochs == 2
    key = catalogue.run_key(beta4.run_id)

    def listing():
        return [ModelRef(f"file:{p}:1", p.stem, "user", str(p)) for p in tmp_path.glob("*.safetensors")]

    path, file = save_and_promote(catalogue, key, beta4.model, "beta-four", owner="me", listing=listing,
                                  folder=tmp_path)
    assert path.is_file() and file is not None and file.path == str(path)
    assert key not in catalogue and catalogue.run_key(beta4.run_id) == file.key  # the file replaced the copy
    assert session.register_finished() == []  # and the saved run is not added again
    # A new session of the same owner (a reload) finds the same job and registers its runs afresh.
    again = jobs.TrainingSession(board, "me", SessionModels())
    assert again.job is job and len(again.register_finished()) == 2


@pytest.mark.parametrize("kind", ["ppca", "dae", "sae", "cae", "hvae"])
def test_every_kind_trains_as_a_job_with_its_own_curves(kind, one_thread):
    from vaeviz.models import MODELS

    spec = RunSpec(dataset="digits", kind=kind, latent_dim=4, epochs=1, train_images=300, batch_size=50, sparsity=0.1,
                   contraction=0.01, bottom_dim=6)
    job = TrainingJob([spec], threads=one_thread).start()
    assert job.join(120) and job.status is JobStatus.FINISHED, job.view().message
    (result,) = job.results
    terms = MODELS[kind].terms
    assert set(terms) <= set(result.model.meta.curves.epochs[-1]["test"])  # each kind's own terms, measured
    if MODELS[kind].fit_method == "gradient":
        assert set(terms) <= set(job.view().steps[-1])
    assert result.metrics.recon is not None and result.model.meta.train.images == 300
