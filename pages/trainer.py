"""Trainer: train an AE or a β-VAE and watch it learn, or sweep β; name the result and save it.

Training runs in a background thread (`vaeviz.ui.jobs.TrainingJob`) kept in this session's state,
so other pages stay usable and two browser sessions never share a model. The live panel is a
fragment that polls the job once a second while it runs. A finished model is registered with the
session at once (the sidebar of every page lists it) and can be saved into the user folder.
"""

from __future__ import annotations

import gc

import numpy as np
import streamlit as st

from vaeviz import latent, training_plots
# The live pictures change every second; as data: URIs they need no media file the browser could
# ask for after the next poll has replaced it (a lagging browser got 404s under load).
from vaeviz.plots import png_data_uri as inline_png
from vaeviz.checkpoint import user_dir
from vaeviz.data import DATASETS
from vaeviz.train import pick_device
from vaeviz.ui import store
from vaeviz.ui.jobs import (FULL_GC_EVERY_POLLS, JobView, RunSpec, TrainingJob, default_threads, parse_betas,
                            sweep_specs)
from vaeviz.ui.models import forget_session_model, known_models
from vaeviz.ui.sidebar import selected
from vaeviz.ui.training_session import JOB, REGISTERED, register_finished_models

SAVED = "trainer_saved"  # session_state: "job uid:run index" -> saved path
NOTICE = "trainer_notice"  # session_state: (kind, text) shown once after Start
SAVE_NOTICE = "trainer_save_notice"  # session_state: (kind, text) shown once after Save
SETTINGS = "trainer_settings"  # session_state: the last settings (widget state is dropped on page switches)
POLL_S = 1.0

ON_GPU = pick_device("auto").type != "cpu"
BETAS = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 10.0]
LATENTS = [1, 2, 3, 4, 8, 16, 32, 64]
LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
BATCHES = [32, 64, 128, 256, 512]
IMAGE_COUNTS = [1000, 2000, 5000, 10_000, 20_000, 30_000, "all"]
# Defaults: on a CPU, a 2-D mlp VAE, 3 epochs of all 60k MNIST images (~30 s at ~8k images/s on
# one core). On a GPU, 20 epochs. A sweep: 5 betas x 2 epochs of 10k images, about a minute on a CPU.
DEFAULTS = {
    "trainer_mode": "One model",
    "trainer_dataset": "mnist",
    "trainer_kind": "VAE",
    "trainer_arch": "mlp",
    "trainer_latent": 2,
    "trainer_beta": 1.0,
    "trainer_epochs": 20 if ON_GPU else 3,
    "trainer_lr": 1e-3,
    "trainer_batch": 128,
    "trainer_images": "all",
    "trainer_seed": 0,
    "sweep_betas": "0, 0.1, 1, 4, 10",
    "sweep_epochs": 5 if ON_GPU else 2,
    "sweep_images": "all" if ON_GPU else 10_000,
}


def _restore_settings() -> None:
    """Put back the last settings: Streamlit drops a page's widget state when another page runs."""
    saved = st.session_state.setdefault(SETTINGS, dict(DEFAULTS))
    for key, default in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = saved.get(key, default)


def _remember_settings() -> None:
    saved = st.session_state.get(SETTINGS, DEFAULTS)
    st.session_state[SETTINGS] = {k: st.session_state.get(k, saved.get(k, v)) for k, v in DEFAULTS.items()}


def _spec_from_settings(sweep: bool) -> RunSpec:
    _remember_settings()
    s = st.session_state[SETTINGS]  # widgets not drawn in this mode (β in a sweep) keep their last value
    images = s["sweep_images" if sweep else "trainer_images"]
    return RunSpec(
        dataset=s["trainer_dataset"],
        kind="vae" if sweep or s["trainer_kind"] == "VAE" else "ae",
        arch=s["trainer_arch"],
        latent_dim=int(s["trainer_latent"]),
        beta=float(s["trainer_beta"]),
        epochs=int(s["sweep_epochs" if sweep else "trainer_epochs"]),
        lr=float(s["trainer_lr"]),
        batch_size=int(s["trainer_batch"]),
        train_images=None if images == "all" else int(images),
        seed=int(s["trainer_seed"]),
    )


def _owner_alive():
    """A check the job thread can call: is the browser session that started it still there?"""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():
        return None
    runtime, session_id = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(session_id)


def _start() -> None:
    sweep = st.session_state["trainer_mode"] == "β sweep"
    try:
        base = _spec_from_settings(sweep)
        specs = sweep_specs(base, parse_betas(st.session_state["sweep_betas"])) if sweep else [base]
        job = TrainingJob(specs, owner_alive=_owner_alive())
    except ValueError as exc:
        st.session_state[NOTICE] = ("error", f"Cannot start: {exc}")
        return
    old = st.session_state.get(JOB)
    if old is not None and old.alive:
        old.stop()
    st.session_state[JOB] = job.start()
    _remember_settings()


def _job() -> TrainingJob | None:
    return st.session_state.get(JOB)


# --- the live panel --------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _status_line(view: JobView) -> None:
    p = view.progress
    run = f"Run {view.run_index + 1} of {view.n_runs} (β = {view.spec.beta:g}) · " if view.n_runs > 1 else ""
    if view.status == "loading data":
        st.progress(0.0, text=f"{run}Loading the {view.spec.dataset} images ...")
    elif view.active:
        what = {"paused": "Paused", "evaluating": "Measuring the test set", "starting": "Starting"}.get(view.status, "Training")
        text = (f"{run}{what} · epoch {p['epoch']} of {p['epochs']} · step {p['step']:,} of {p['total_steps']:,} · "
                f"{p['images_per_s']:,.0f} images/s · about {_duration(p['eta_s'])} left")
        st.progress(min(max(p["fraction"], 0.0), 1.0), text=text)
    elif view.status == "failed":
        st.error(view.message or "Training failed.", icon=":material/error:")
    elif view.status == "diverged":
        st.error(f"The run diverged: {view.message} The model keeps its last good weights; you can still save it.",
                 icon=":material/warning:")
    elif view.status == "stopped":
        st.warning(view.message or "Stopped.", icon=":material/stop_circle:")
    else:
        secs = sum(r.seconds for r in view.results)
        st.success(f"Finished in {_duration(secs)}: "
                   + ("the model is in the sidebar of every page (as “trained here”). Name it and save it to keep it."
                      if view.n_runs == 1 else f"{len(view.results)} models trained; each is in the sidebar."),
                   icon=":material/check_circle:")
        if view.message:
            st.warning(view.message)


def _figures(view: JobView) -> None:
    p = view.progress
    kind = view.spec.kind
    last_test = view.epochs[-1]["test"] if view.epochs and "test" in view.epochs[-1] else None
    prev = view.epochs[-2] if len(view.epochs) > 1 else None
    prev_test = prev["test"] if prev and "test" in prev and prev["epoch"] == view.epochs[-1]["epoch"] - 1 else None
    m = st.columns(5)
    m[0].metric("Epoch", f"{p['epoch']} / {p['epochs']}")
    m[1].metric("Step", f"{p['step']:,}")
    m[2].metric("Images per second", f"{p['images_per_s']:,.0f}")
    eta = p["eta_s"]
    m[3].metric("Time left", f"{int(eta) // 60}:{int(eta) % 60:02d}" if view.active and eta is not None else "–")
    term, title = ("neg_elbo", "Test −ELBO (nats)") if kind == "vae" else ("recon", "Test reconstruction (nats)")
    m[4].metric(title, f"{last_test[term]:.2f}" if last_test else "–",
                delta=f"{last_test[term] - prev_test[term]:+.2f}" if last_test and prev_test else None,
                delta_color="inverse")

    st.plotly_chart(training_plots.loss_curves(view.steps, view.epochs, kind=kind), key="trainer_curves",
                    config={"displaylogo": False})
    st.caption("Nats per image. Thin line: training loss as it trains; dotted: each epoch's training mean; "
               "orange: the test set after each epoch." + (" Training minimises recon + β·KL; the sum shown is the "
                                                            "true −ELBO (β = 1)." if kind == "vae" else ""))
    vis = view.visuals
    left, right = st.columns(2, gap="large")
    with left:
        if kind == "vae" and view.kl_per_dim is not None:
            st.plotly_chart(training_plots.kl_bars(view.kl_per_dim), key="trainer_kl_bars", config={"displaylogo": False})
            st.caption("KL of each latent dimension (training batches); the dashed line is 0.01 nats. A grey bar is "
                       "an unused dimension: its "
                       "posterior has collapsed onto the prior and carries no information. Large β collapses more.")
        elif kind == "vae":
            st.info("The per-dimension KL appears after the first steps.")
        else:
            st.info("An autoencoder has no KL term and no prior: its codes can sit anywhere. Train a VAE to see "
                    "the per-dimension KL and posterior collapse.")
    with right:
        if "map_xy" in vis:
            fig = training_plots.latent_scatter(vis["map_xy"], vis["map_labels"], vis["map_classes"], vis["map_axes"],
                                                title=f"Latent map of {len(vis['map_xy']):,} test images (epoch {vis['epoch']})")
            st.plotly_chart(fig, key="trainer_latent_map", config={"displaylogo": False})
    left, right = st.columns(2, gap="large")
    with left:
        if vis.get("samples") is not None:
            st.markdown("**Samples from the prior** z ~ N(0, I), decoded" + (" (an AE was not trained for this)" if kind == "ae" else ""))
            st.image(inline_png(latent.enlarge(vis["samples"], 2)))
        elif vis.get("sample_points") is not None:
            st.markdown("**Samples from the prior**, decoded to points")
            st.plotly_chart(training_plots.point_samples(vis["sample_points"]), key="trainer_point_samples")
    with right:
        if vis.get("holdout") is not None:
            st.markdown("**One test image per class** (top) **and its reconstruction** (bottom)")
            st.image(inline_png(latent.enlarge(vis["holdout"], 3)))


def _sweep_results(view: JobView) -> None:
    if view.n_runs < 2 or not view.results:
        return
    st.subheader("β sweep: the rate–distortion trade-off")
    points = [{"beta": r.spec.beta, "recon": r.metrics["recon"], "kl": r.metrics["kl"]} for r in view.results]
    left, right = st.columns([1.3, 1], gap="large")
    with left:
        st.plotly_chart(training_plots.rate_distortion(points), key="trainer_rate_distortion", config={"displaylogo": False})
        st.caption("Each point is one model, measured on the whole test set. Small β spends nats on the code (high "
                   "KL) and reconstructs well; large β keeps the code close to the prior and reconstructs worse.")
    with right:
        st.markdown("**Samples from the prior of each model**")
        cols = st.columns(3)
        for i, r in enumerate(view.results):
            with cols[i % 3]:
                if r.samples is not None:
                    side = 4 * 29 - 1  # the top-left 4 x 4 of the 8 x 8 grid (28 px images, 1 px gaps)
                    st.image(inline_png(latent.enlarge(r.samples[:side, :side], 2)))
                st.caption(f"β = {r.spec.beta:g} · KL {r.metrics['kl']:.1f} · recon {r.metrics['recon']:.1f} · "
                           f"{r.metrics['active_units']} active")
    rows = [{"β": r.spec.beta, "reconstruction": r.metrics["recon"], "KL": r.metrics["kl"],
             "−ELBO": r.metrics["neg_elbo"], "active units": r.metrics["active_units"],
             "note": "diverged" if r.diverged else ("stopped early" if r.stopped else "")} for r in view.results]
    st.dataframe(rows, hide_index=True, key="trainer_sweep_table",
                 column_config={k: st.column_config.NumberColumn(format="%.2f") for k in ("reconstruction", "KL", "−ELBO")})


def _pause() -> None:
    if (job := _job()) is not None:
        job.pause()


def _resume() -> None:
    if (job := _job()) is not None:
        job.resume()


def _stop() -> None:
    if (job := _job()) is not None:
        job.stop()


def live_panel(polling: bool) -> None:
    job = _job()
    if job is None:
        return
    view = job.view()
    if view.active:
        c = st.columns([1, 1, 4])
        if job.paused:
            c[0].button("Resume", key="trainer_resume", icon=":material/play_arrow:", on_click=_resume, width="stretch")
        else:
            c[0].button("Pause", key="trainer_pause", icon=":material/pause:", on_click=_pause, width="stretch")
        c[1].button("Stop", key="trainer_stop", icon=":material/stop:", on_click=_stop, width="stretch",
                    help="Stop now; the model so far is kept, measured and can be saved.")
        _status_line(view)  # when it has finished, main() draws the outcome above the save panel
    new = register_finished_models()
    _sweep_results(view)  # a sweep's point comes first: the trade-off across its models
    if view.steps or view.visuals.get("version"):
        if view.n_runs > 1:
            st.subheader(f"{'Now training' if view.active else 'The last run'}: β = {view.spec.beta:g}")
        _figures(view)
    if polling:
        polls = st.session_state["trainer_polls"] = st.session_state.get("trainer_polls", 0) + 1
        if polls % FULL_GC_EVERY_POLLS == 0:
            gc.collect()  # free the figures of past polls now (see jobs.FULL_GC_EVERY_POLLS)
    if new or (polling and not view.active):
        st.rerun()  # the whole page: the sidebar lists the new model, the save panel appears


# --- saving ----------------------------------------------------------------------------------


def _save(run_key: str, name_key: str) -> None:
    """Save a finished model into the user folder (a callback: it runs before the page is drawn)."""
    job = _job()
    uid, index = run_key.split(":")[0], int(run_key.split(":")[1])
    if job is None or job.uid != uid or index >= len(job.results):  # Start was clicked just before Save
        st.session_state[NOTICE] = ("error", "That run is no longer here (a new run has started); nothing was saved.")
        return
    result = job.results[index]
    try:
        path = store.save_model(result.model, st.session_state.get(name_key, ""))
    except (ValueError, FileExistsError) as exc:
        st.session_state[SAVE_NOTICE] = ("error", str(exc))
        return
    except OSError as exc:
        st.session_state[SAVE_NOTICE] = ("error", f"Could not write to {user_dir()}: {exc.strerror or exc}. The model stays "
                                             "usable in this session (it is in the sidebar); try another folder "
                                             "(set VAEVIZ_USER_DIR) or free some space.")
        return
    st.session_state.setdefault(SAVED, {})[run_key] = str(path)
    # The saved file replaces the session copy in the sidebar (and in the selection, if it was chosen).
    session_key = st.session_state.get(REGISTERED, {}).get(run_key)
    file_ref = next((r for r in known_models() if r.path == str(path)), None)
    if session_key and file_ref is not None:
        if st.session_state.get("model_key") == session_key:
            st.session_state["model_key"] = file_ref.key
        forget_session_model(session_key)
    st.session_state[SAVE_NOTICE] = ("success", f"Saved as {path}. It is in the sidebar of every page as “{path.stem} (saved)”.")


def _explore(run_key: str) -> None:
    """Select a model in the sidebar and go to the explorer."""
    saved = st.session_state.get(SAVED, {}).get(run_key)
    ref = next((r for r in known_models() if saved and r.path == saved), None)
    key = ref.key if ref else st.session_state.get(REGISTERED, {}).get(run_key)
    if key:
        st.session_state["model_key"] = key
        st.session_state["trainer_goto_explorer"] = True


def save_panel(job: TrainingJob) -> None:
    results = job.results
    if not results or job.view().active:
        return
    index = 0
    if len(results) > 1:
        if st.session_state.get("trainer_save_which", 0) >= len(results):
            st.session_state["trainer_save_which"] = 0
        index = st.selectbox("Which model", list(range(len(results))), key="trainer_save_which",
                             format_func=lambda i: f"β = {results[i].spec.beta:g}  ({results[i].spec.label()})")
    result = results[index]
    run_key = f"{job.uid}:{index}"
    name_key = "trainer_save_name"  # one stable key; its default follows the model shown
    if st.session_state.get("trainer_save_for") != run_key or name_key not in st.session_state:
        st.session_state[name_key] = result.spec.label()
        st.session_state["trainer_save_for"] = run_key
    m = result.metrics
    facts = f"Test set ({m['n_images']:,} images): reconstruction **{m['recon']:.2f}** nats"
    if result.spec.kind == "vae":
        facts += f", KL **{m['kl']:.2f}**, −ELBO **{m['neg_elbo']:.2f}**, {m['active_units']} of {result.spec.latent_dim} units active"
    st.markdown(facts + ".")
    saved = st.session_state.get(SAVED, {}).get(run_key)
    c = st.columns([2, 1, 1.3], vertical_alignment="bottom")
    c[0].text_input("Name", key=name_key, max_chars=80, disabled=saved is not None,
                    help="Letters, digits, - and _ only. Saved as NAME.safetensors in the user folder.")
    c[1].button("Save checkpoint", key="trainer_save", type="primary", icon=":material/save:", on_click=_save,
                args=(run_key, name_key), disabled=saved is not None, width="stretch")
    c[2].button("Explore it in the Latent explorer", key="trainer_explore", icon=":material/tune:", on_click=_explore,
                args=(run_key,), width="stretch")
    notice = st.session_state.pop(SAVE_NOTICE, None)
    if notice:
        getattr(st, notice[0])(notice[1])
    if saved:
        st.caption(f"Saved: `{saved}`")
    else:
        st.caption(f"Saves into `{user_dir()}`. Until saved, the model lives in this browser session only.")


# --- the page --------------------------------------------------------------------------------


def settings_panel(disabled: bool) -> None:
    s = st.session_state
    st.segmented_control("What to train", ["One model", "β sweep"], key="trainer_mode", disabled=disabled, required=True,
                         help="A β sweep trains one VAE per β in turn and plots reconstruction against KL.")
    sweep = s["trainer_mode"] == "β sweep"
    c = st.columns(4)
    c[0].selectbox("Data set", list(DATASETS), key="trainer_dataset", disabled=disabled,
                   format_func=lambda k: DATASETS[k].title)
    if sweep:
        c[1].text_input("β values", key="sweep_betas", disabled=disabled,
                        help="One VAE per value, in turn, e.g. 0, 0.1, 1, 4, 10.")
    else:
        c[1].segmented_control("Model", ["AE", "VAE"], key="trainer_kind", disabled=disabled, required=True,
                               help="AE: a deterministic autoencoder. VAE: a variational autoencoder with a prior "
                                    "N(0, I) on the code; its samples are meaningful.")
    c[2].selectbox("Architecture", ["mlp", "conv"], key="trainer_arch", disabled=disabled,
                   help="mlp: fully connected (fast on a CPU). conv: strided convolutions (better images, slower).")
    c[3].select_slider("Latent size", LATENTS, key="trainer_latent", disabled=disabled,
                       help="Dimensions of the code z. 2 draws the latent map as it is; more are projected (PCA).")
    c = st.columns(4)
    if not sweep:
        c[0].select_slider("β (weight of the KL term)", BETAS, key="trainer_beta",
                           disabled=disabled or s["trainer_kind"] != "VAE",
                           format_func=lambda b: f"{b:g}",
                           help="β = 1 is the standard VAE (the ELBO). β = 0 ignores the prior; large β pushes "
                                "codes towards the prior and collapses unused dimensions. Log scale.")
    c[1].number_input("Epochs", 1, 500, key="sweep_epochs" if sweep else "trainer_epochs", disabled=disabled,
                      help="Passes over the training images" + (" (per model)." if sweep else "."))
    c[2].select_slider("Learning rate", LRS, key="trainer_lr", disabled=disabled, format_func=lambda v: f"{v:g}",
                       help="Adam's step size. Too large and the loss can blow up (the run then stops and keeps "
                            "the last good weights).")
    c[3].select_slider("Batch size", BATCHES, key="trainer_batch", disabled=disabled)
    c = st.columns([2, 1, 1])
    c[0].select_slider("Training images", IMAGE_COUNTS, key="sweep_images" if sweep else "trainer_images",
                       disabled=disabled, format_func=lambda n: "all" if n == "all" else f"{n:,}",
                       help="Use the first N images of the training split (fewer: faster, a rougher model).")
    c[1].number_input("Seed", 0, 2**31 - 1, key="trainer_seed", disabled=disabled,
                      help="The same seed and settings give the same model.")
    device = pick_device("auto")
    c[2].markdown(f"Trains on **{device.type.upper()}**" +
                  (f"  \n{default_threads()} CPU thread(s); the rest stay free for the app" if device.type == "cpu" else ""))


def main() -> None:
    selected()  # first: it leaves Streamlit's legacy pages mode (a rerun) if a fresh server started here
    _restore_settings()
    if st.session_state.pop("trainer_goto_explorer", False):
        try:
            st.switch_page("pages/explorer.py")
        except Exception:  # noqa: BLE001 - the explorer page may not be registered (tests)
            st.info("Pick the model in the sidebar and open the Latent explorer page.")
    st.title("Trainer")
    st.caption("Train an autoencoder or a β-VAE on real images and watch it learn: the loss curves, which latent "
               "dimensions it uses, its samples and its latent map. Training runs in the background, so you can "
               "look at other pages meanwhile. When it finishes the model appears in the sidebar of every page.")
    job = _job()
    active = job is not None and job.view().active
    settings_panel(disabled=active)
    _remember_settings()
    c = st.columns([1, 5])
    c[0].button("Start training", key="trainer_start", type="primary", icon=":material/play_arrow:",
                on_click=_start, disabled=active, width="stretch")
    if not active and job is None:
        c[1].caption("The defaults train a 2-D VAE on MNIST"
                     + (" for 20 epochs on the GPU." if ON_GPU else " for 3 epochs: under a minute on a free CPU core."))
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        getattr(st, notice[0])(notice[1])
    st.divider()
    if job is not None and not active:
        if register_finished_models():
            st.rerun()  # so the sidebar, drawn before this page, lists the new model
        _status_line(job.view())
        save_panel(job)
    st.fragment(run_every=POLL_S if active else None)(live_panel)(polling=active)


main()
