"""The Streamlit side of training: the server's one job board, this session's `TrainingSession`,
and the little progress note every page's sidebar shows while a job runs.

The board is shared by every session (`st.cache_resource`), so a job outlives the browser session
that started it by a grace period, and a reload (a new session of the same browser) finds it again
through the owner's identity (`vaeviz.ui.identity`).
"""

from __future__ import annotations

import streamlit as st

from ..jobs import JobBoard, JobStatus, JobView, TrainingSession
from ..models import MODELS
from .cache import selected_keys, session_models
from .identity import owner


@st.cache_resource(show_spinner=False)
def board() -> JobBoard:
    """The server's job board (one per process): every session's jobs, the queue and its limit."""
    return JobBoard()


def training_session() -> TrainingSession:
    """This session's training: its owner's job on the board, and the session's models."""
    return TrainingSession(board(), owner().id, session_models())


def register_finished() -> int:
    """Add this owner's finished runs to the session's models (once each); returns how many."""
    return len(training_session().register_finished(keep=selected_keys()))


def owner_alive():
    """A check the job's thread can call: is the browser session that started it still there?"""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():
        return None
    runtime, session_id = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(session_id)


def duration(seconds: float | None) -> str:
    """12 s, 3 min 05 s; "–" when unknown."""
    if seconds is None or seconds != seconds or seconds in (float("inf"), float("-inf")):
        return "–"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def status_text(view: JobView) -> str:
    """One line on where a job stands: its queue place, or its progress."""
    p = view.progress
    run = f"run {view.run_index + 1} of {view.n_runs} · " if view.n_runs > 1 else ""
    if view.status is JobStatus.QUEUED:
        wait = f", about {duration(view.queue_wait_s)} to wait" if view.queue_wait_s is not None else ""
        return f"Queued: number {view.queue_position or '?'} in line{wait}"
    if view.status is JobStatus.LOADING_DATA:
        return f"{run}loading the {view.spec.dataset} images"
    what = {JobStatus.PAUSED: "paused", JobStatus.EVALUATING: "measuring the test set"}.get(view.status, "training")
    return (f"{run}{what} · epoch {p['epoch']} of {p['epochs']} · about {duration(p['eta_s'])} left")


@st.fragment(run_every=2.0)
def _sidebar_progress() -> None:
    view = training_session().view()
    if view is None or not view.active:
        if view is not None and register_finished():
            st.rerun()  # the whole app: every page's model list gains the finished model
        return
    st.progress(min(max(view.progress["fraction"], 0.0), 1.0), text=f"Training job · {status_text(view)}")


def sidebar_progress() -> None:
    """Show this owner's running job in the sidebar, refreshed every 2 s while it runs."""
    view = training_session().view()
    if view is not None and view.active:
        with st.sidebar:
            _sidebar_progress()


# --- the Trainer page's live report ------------------------------------------------------------


def status_panel(view: JobView) -> None:
    """Progress while a job is under way; its outcome once it has ended."""
    if view.status is JobStatus.QUEUED:
        st.info(status_text(view) + ". Training starts by itself when a place is free; other pages stay usable "
                "meanwhile.", icon=":material/hourglass_top:")
    elif view.active:
        st.progress(min(max(view.progress["fraction"], 0.0), 1.0),
                    text=status_text(view)[0].upper() + status_text(view)[1:]
                    + f" · {view.progress['images_per_s']:,.0f} images/s")
    elif view.status is JobStatus.FAILED:
        st.error(view.message or "Training failed.", icon=":material/error:")
    elif view.status is JobStatus.STOPPED:
        st.warning(view.message or "Stopped.", icon=":material/stop_circle:")
    elif view.diverged and view.n_runs == 1:
        st.error(f"The run diverged: {view.message} The model keeps its last good weights; you can still save it.",
                 icon=":material/warning:")
    else:
        secs = sum(r.seconds for r in view.results)
        st.success(f"Finished in {duration(secs)}: "
                   + ("the model is in the sidebar of every page (as “trained here”). Name it and save it to keep it."
                      if view.n_runs == 1 else f"{len(view.results)} models trained; each is in the sidebar."),
                   icon=":material/check_circle:")
        if view.message:
            st.warning(view.message)


def live_figures(view: JobView) -> None:
    """The run's numbers, curves, KL bars, latent map, prior samples and held-out reconstructions."""
    from ..figures import maps
    from ..models import MODELS
    from . import views

    p, cls = view.progress, MODELS[view.spec.kind]
    tests = [e["test"] for e in view.epochs if "test" in e]
    term, title = ("neg_elbo", "Test −ELBO (nats)") if "neg_elbo" in cls.terms else ("recon", "Test reconstruction (nats)")
    m = st.columns(5)
    m[0].metric("Epoch", f"{p['epoch']} / {p['epochs']}")
    m[1].metric("Step", f"{p['step']:,}")
    m[2].metric("Images per second", f"{p['images_per_s']:,.0f}")
    m[3].metric("Time left", duration(p["eta_s"]) if view.active else "–")
    change = f"{tests[-1][term] - tests[-2][term]:+.2f} since the last epoch" if len(tests) > 1 else None
    m[4].metric(title, f"{tests[-1][term]:.2f}" if tests else "–", delta=change, delta_color="inverse")
    beta = view.spec.beta if cls.uses_beta else None
    views.curves(view.steps, view.epochs, cls.terms, "trainer_curves", views.training_caption(cls.terms, beta))
    vis = view.visuals
    left, right = st.columns(2, gap="large")
    with left:
        if cls.probabilistic and view.kl_per_dim is not None:
            views.kl_panel(view.kl_per_dim, vis.get("activity"), "trainer_kl_bars",
                           "training batches; activity on 1,000 test images")
        elif cls.probabilistic:
            st.info("The per-dimension KL appears after the first steps.")
        else:
            st.info(f"A {cls.title.lower()} has no KL term and no prior: its codes can sit anywhere. Train a VAE to "
                    "see the per-dimension KL and posterior collapse.")
    with right:
        if "map_xy" in vis:
            fig = maps.latent_scatter(vis["map_xy"], vis["map_labels"], vis["map_classes"], axis_titles=vis["map_axes"],
                                      title=f"Latent map of {len(vis['map_xy']):,} test images (epoch {vis['epoch']})",
                                      height=380, marker_size=5, uirevision="latent_map")
            st.plotly_chart(fig, key="trainer_latent_map", config=views.PLOT_CONFIG)
    left, right = st.columns(2, gap="large")
    with left:
        if vis.get("samples") is not None:
            st.markdown("**Samples from the prior** z ~ N(0, I), decoded"
                        + ("" if cls.probabilistic else " (this kind was not trained for this)"))
            st.image(views.png(views.as_picture(vis["samples"], 2)))
        elif vis.get("sample_points") is not None:
            from ..figures import training as training_figures

            st.markdown("**Samples from the prior**, decoded to points")
            st.plotly_chart(training_figures.point_samples(vis["sample_points"]), key="trainer_point_samples")
    with right:
        if vis.get("holdout") is not None:
            st.markdown("**One test image per class** (top) **and its reconstruction** (bottom)")
            st.image(views.png(views.as_picture(vis["holdout"], 3)))


def sweep_results(view: JobView) -> None:
    """A sweep's rate-distortion plane, each model's prior samples, and the table of its models."""
    from ..figures import training as training_figures
    from . import views

    if view.n_runs < 2 or not view.results:
        return
    st.subheader("β sweep: the rate–distortion trade-off")
    points = [{"beta": r.spec.beta, "recon": r.metrics.recon, "kl": r.metrics.kl} for r in view.results]
    left, right = st.columns([1.3, 1], gap="large")
    with left:
        st.plotly_chart(training_figures.rate_distortion(points), key="trainer_rate_distortion", config=views.PLOT_CONFIG)
        st.caption("Each point is one model, measured on the whole test set. Small β spends nats on the code (high "
                   "KL) and reconstructs well; large β keeps the code close to the prior and reconstructs worse.")
    with right:
        st.markdown("**Samples from the prior of each model**")
        cols = st.columns(3)
        for i, r in enumerate(view.results):
            with cols[i % 3]:
                if r.samples is not None:
                    side = 4 * 29 - 1  # the top-left 4 x 4 of the 8 x 8 grid (28 px images, 1 px gaps)
                    st.image(views.png(views.as_picture(r.samples[:side, :side], 2)))
                st.caption(f"β = {r.spec.beta:g} · KL {r.metrics.kl:.1f} · recon {r.metrics.recon:.1f} · "
                           f"{r.metrics.active_units} active")
    rows = [{"β": r.spec.beta, "reconstruction": r.metrics.recon, "KL": r.metrics.kl,
             "−ELBO": r.metrics.neg_elbo, "active units": r.metrics.active_units,
             "note": "diverged" if r.diverged else ("stopped early" if r.stopped else "")} for r in view.results]
    st.dataframe(rows, hide_index=True, key="trainer_sweep_table",
                 column_config={k: st.column_config.NumberColumn(format="%.2f") for k in ("reconstruction", "KL", "−ELBO")})


# --- the Trainer page's settings ----------------------------------------------------------------


BETAS = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 10.0]
LATENTS = [1, 2, 3, 4, 8, 16, 32, 64]
LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
BATCHES = [32, 64, 128, 256, 512]
IMAGE_COUNTS = [1000, 2000, 5000, 10_000, 20_000, 30_000, "all"]


def kind_options(cls, disabled: bool) -> None:
    """The settings only some kinds have: the corruption, the penalties, the lower layer, the warm-up."""
    fields = [("noise", "dae", "Noise σ (denoising)", 0.0, 1.0, 0.05, "The std of the Gaussian noise added to each "
               "training image (clipped to [0, 1]); the model must give back the clean image."),
              ("sparsity", "sae", "L1 weight λ (sparse)", 0.0, 5.0, 0.01, "λ · Σ z per image: larger, fewer codes fire."),
              ("contraction", "cae", "Jacobian weight λ (contractive)", 0.0, 1.0, 0.001,
               "λ · ‖∂z/∂x‖²_F per image: larger, a code less sensitive to the image."),
              ("bottom_dim", "hvae", "Lower layer size (z1)", 1, 128, 1, "The top layer z2 has the latent size above."),
              ("kl_warmup", None, "KL warm-up (epochs)", 0.0, 50.0, 1.0, "The KL weight ramps from 0 to β over these "
               "epochs, so the decoder learns to use the code before the KL can switch units off.")]
    shown = [f for f in fields if f[1] == cls.kind or (f[1] is None and cls.uses_beta)]
    if not shown:
        return
    cols = st.columns(4)
    for col, (name, _, label, low, high, step, help) in zip(cols, shown):
        col.number_input(label, low, high, step=step, key=f"trainer_{name}", disabled=disabled, help=help)


FOLDER = "folder"  # the Trainer's data set choice for a folder of pictures
FOLDER_SIZES = [28, 32, 48, 64, 96, 128]


def chosen_dataset(s) -> str:
    """The data set the settings name: a built-in one, or the folder's full name (checked against the
    server's allowed roots; a FolderError, a ValueError, says why not)."""
    if s["trainer_dataset"] != FOLDER:
        return s["trainer_dataset"]
    from ..data import data_dir
    from ..folders import FolderSet, allowed_roots

    return FolderSet.parse(f"folder:{s['trainer_folder'].strip()}", size=int(s["trainer_size"]),
                           channels=3 if s["trainer_channels"] == "colour" else 1, roots=allowed_roots(),
                           base=data_dir()).name


def folder_options(disabled: bool) -> None:
    """The folder, the size and grey or colour; and what is in the folder (its classes), or why it cannot be used."""
    from ..data import DataUnavailable, dataset_spec
    from ..folders import FolderError, allowed_roots

    roots = allowed_roots()
    c = st.columns([2, 1, 1])
    c[0].text_input("Folder", key="trainer_folder", disabled=disabled, placeholder="e.g. celeba or shapes",
                    help=f"A folder of PNG, JPEG, WebP or BMP pictures under {' or '.join(str(r) for r in roots)} "
                         "(a path relative to the first). One sub-folder per class, or all together; train/ and "
                         "test/ sub-folders are kept, else a tenth is held out (by the seed below).")
    c[1].select_slider("Image size", FOLDER_SIZES, key="trainer_size", disabled=disabled,
                       format_func=lambda n: f"{n} px", help="Each picture is centre-cropped to a square and resized.")
    c[2].segmented_control("Pictures", ["grey", "colour"], key="trainer_channels", disabled=disabled, required=True)
    if not st.session_state["trainer_folder"].strip():
        st.caption("Name a folder of your pictures on this server.")
        return
    try:
        spec = dataset_spec(chosen_dataset(st.session_state))
    except (FolderError, DataUnavailable) as exc:
        st.error(str(exc))
        return
    names = ", ".join(spec.classes[:8]) + (" …" if len(spec.classes) > 8 else "")
    st.caption(f"{spec.title}: {len(spec.classes)} class{'es' if len(spec.classes) != 1 else ''} ({names}). The "
               "pictures are read when training starts, once: the decoded pictures are cached beside them.")


def settings_panel(disabled: bool, on_gpu: bool = False) -> None:
    """The Trainer's settings (their state: the page's `trainer_*` and `sweep_*` keys)."""
    from ..data import DATASETS
    from ..jobs import default_threads
    from ..train import pick_device

    s = st.session_state
    st.segmented_control("What to train", ["One model", "β sweep"], key="trainer_mode", disabled=disabled, required=True,
                         help="A β sweep trains one VAE per β in turn and plots reconstruction against KL.")
    sweep = s["trainer_mode"] == "β sweep"
    c = st.columns(4)
    c[0].selectbox("Data set", [*DATASETS, FOLDER], key="trainer_dataset", disabled=disabled,
                   format_func=lambda k: DATASETS[k].title if k in DATASETS else "Your pictures (a folder)")
    if sweep:
        c[1].text_input("β values", key="sweep_betas", disabled=disabled, help="One VAE per value, e.g. 0, 0.1, 1, 4, 10.")
    else:
        c[1].selectbox("Model", list(MODELS), key="trainer_kind", disabled=disabled,
                       format_func=lambda k: f"{MODELS[k].title} ({k})",
                       help="; ".join(f"{cls.title}: {cls.summary}" for cls in MODELS.values()) + ".")
    c[2].selectbox("Architecture", ["mlp", "conv"], key="trainer_arch", disabled=disabled,
                   help="mlp: fully connected (fast on a CPU). conv: strided convolutions (better images, slower).")
    c[3].select_slider("Latent size", LATENTS, key="trainer_latent", disabled=disabled,
                       help="Dimensions of the code z. 2 draws the latent map as it is; more are projected (PCA).")
    if s["trainer_dataset"] == FOLDER:
        folder_options(disabled)
    cls = MODELS["vae" if sweep else s["trainer_kind"]]
    if not sweep:
        kind_options(cls, disabled)
    c = st.columns(4)
    if not sweep:
        c[0].select_slider("β (weight of the KL term)", BETAS, key="trainer_beta", format_func=lambda b: f"{b:g}",
                           disabled=disabled or not cls.uses_beta,
                           help="β = 1 is the standard VAE (the ELBO). β = 0 ignores the prior; large β pushes "
                                "codes towards the prior and collapses unused dimensions. Log scale.")
    c[1].number_input("Epochs", 1, 500, key="sweep_epochs" if sweep else "trainer_epochs",
                      disabled=disabled or cls.fit_method == "closed form",
                      help="Passes over the training images" + (" (per model)." if sweep else ".")
                           + (" A closed-form fit takes none: it is computed in one go." if cls.fit_method == "closed form" else ""))
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
