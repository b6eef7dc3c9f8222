"""Trainer: train an AE or a β-VAE and watch it learn, or sweep β; name the result and save it.

The job lives on the server's job board (`vaeviz.jobs.JobBoard`, via `vaeviz.ui.training`) under
this browser's identity, so other pages stay usable while it runs and a reload finds it again. The
live panel is a fragment that polls the job once a second; this page only draws a view of it.
"""

from __future__ import annotations

import gc

import streamlit as st

from vaeviz.checkpoint import user_dir
from vaeviz.jobs import FULL_GC_EVERY_POLLS, RunSpec, parse_betas, sweep_specs
from vaeviz.train import pick_device
from vaeviz.ui import flash, views
from vaeviz.ui.sidebar import selected
from vaeviz.ui.training import (chosen_dataset, live_figures, owner_alive, register_finished, settings_panel, status_panel,
                                sweep_results, training_session)

POLL_S = 1.0
ON_GPU = pick_device("auto").type != "cpu"
# Defaults: on a CPU, a 2-D mlp VAE, 3 epochs of all 60k MNIST images (~30 s at ~8k images/s on
# one core). On a GPU, 20 epochs. A sweep: 5 betas x 2 epochs of 10k images, about a minute on a CPU.
DEFAULTS = {
    "trainer_mode": "One model", "trainer_dataset": "mnist", "trainer_kind": "vae", "trainer_arch": "mlp",
    "trainer_noise": 0.3, "trainer_sparsity": 0.1, "trainer_contraction": 0.01, "trainer_bottom_dim": 32,
    "trainer_kl_warmup": 0.0, "trainer_folder": "", "trainer_size": 32, "trainer_channels": "colour",
    "trainer_latent": 2, "trainer_beta": 1.0, "trainer_epochs": 20 if ON_GPU else 3, "trainer_lr": 1e-3,
    "trainer_batch": 128, "trainer_images": "all", "trainer_seed": 0, "sweep_betas": "0, 0.1, 1, 4, 10",
    "sweep_epochs": 5 if ON_GPU else 2, "sweep_images": "all" if ON_GPU else 10_000,
}
SETTINGS = "trainer_settings"  # session_state: the last settings (widget state is dropped on page switches)


def remember_settings() -> None:
    saved = st.session_state.get(SETTINGS, DEFAULTS)
    st.session_state[SETTINGS] = {k: st.session_state.get(k, saved.get(k, v)) for k, v in DEFAULTS.items()}


def restore_settings() -> None:
    """Put back the last settings: Streamlit drops a page's widget state when another page runs."""
    saved = st.session_state.setdefault(SETTINGS, dict(DEFAULTS))
    for key, default in DEFAULTS.items():
        st.session_state.setdefault(key, saved.get(key, default))


def specs_from_settings() -> list[RunSpec]:
    remember_settings()
    s = st.session_state[SETTINGS]  # widgets not drawn in this mode (β in a sweep) keep their last value
    sweep = s["trainer_mode"] == "β sweep"
    images = s["sweep_images" if sweep else "trainer_images"]
    base = RunSpec(dataset=chosen_dataset(s), kind="vae" if sweep else s["trainer_kind"],
                   arch=s["trainer_arch"], latent_dim=int(s["trainer_latent"]), beta=float(s["trainer_beta"]),
                   epochs=int(s["sweep_epochs" if sweep else "trainer_epochs"]), lr=float(s["trainer_lr"]),
                   batch_size=int(s["trainer_batch"]), train_images=None if images == "all" else int(images),
                   seed=int(s["trainer_seed"]), noise=float(s["trainer_noise"]), sparsity=float(s["trainer_sparsity"]),
                   contraction=float(s["trainer_contraction"]), bottom_dim=int(s["trainer_bottom_dim"]),
                   kl_warmup=float(s["trainer_kl_warmup"]))
    return sweep_specs(base, parse_betas(s["sweep_betas"])) if sweep else [base]


def start() -> None:
    try:
        training_session().start(specs_from_settings(), owner_alive=owner_alive())
    except ValueError as exc:
        flash.flash("error", f"Cannot start: {exc}", "trainer")


def control(action: str) -> None:
    job = training_session().job
    if job is not None:
        getattr(job, action)()


def live_panel(polling: bool) -> None:
    session = training_session()
    job = session.job
    if job is None:
        return
    view = session.view()
    if view.active:
        c = st.columns([1, 1, 4])
        if job.paused:
            c[0].button("Resume", key="trainer_resume", icon=":material/play_arrow:", on_click=control,
                        args=("resume",), width="stretch")
        elif view.status.running:
            c[0].button("Pause", key="trainer_pause", icon=":material/pause:", on_click=control, args=("pause",),
                        width="stretch")
        c[1].button("Stop" if view.status.running else "Cancel", key="trainer_stop", icon=":material/stop:",
                    on_click=control, args=("stop",), width="stretch",
                    help="Stop now; the model so far is kept, measured and can be saved.")
        status_panel(view)  # when it has ended, main() draws the outcome above the save panel
    new = register_finished()
    sweep_results(view)  # a sweep's point comes first: the trade-off across its models
    if view.steps or view.visuals.get("version"):
        if view.n_runs > 1:
            st.subheader(f"{'Now training' if view.active else 'The last run'}: β = {view.spec.beta:g}")
        live_figures(view)
    if polling:
        polls = st.session_state["trainer_polls"] = st.session_state.get("trainer_polls", 0) + 1
        if polls % FULL_GC_EVERY_POLLS == 0:
            gc.collect()  # free the figures of past polls now (see jobs.FULL_GC_EVERY_POLLS)
    if new or (polling and not view.active):
        st.rerun()  # the whole page: the sidebar lists the new model, the save panel appears


def save(run_id: str) -> None:
    """Save a finished run's model (a callback: it runs before the page is drawn)."""
    session = training_session()
    result = session.job.result(run_id) if session.job is not None else None
    if result is None:  # Start was clicked just before Save
        flash.flash("error", "That run is no longer here (a new run has started); nothing was saved.", "trainer")
        return
    views.save_session_model(session.catalogue.run_key(run_id), result.model,
                             st.session_state.get("trainer_save_name", ""), "trainer_save")


def explore(run_id: str) -> None:
    """Select a run's model (its saved file, once saved) and go to the explorer."""
    key = training_session().catalogue.run_key(run_id)
    if key:
        st.session_state["model_key"] = key
        st.session_state["trainer_goto_explorer"] = True


def save_panel() -> None:
    session = training_session()
    results = session.job.results if session.job is not None else []
    if not results or session.job.status.active:
        return
    index = 0
    if len(results) > 1:
        if st.session_state.get("trainer_save_which", 0) >= len(results):
            st.session_state["trainer_save_which"] = 0
        index = st.selectbox("Which model", list(range(len(results))), key="trainer_save_which",
                             format_func=lambda i: f"β = {results[i].spec.beta:g}  ({results[i].spec.label()})")
    result = results[index]
    if st.session_state.get("trainer_save_for") != result.run_id or "trainer_save_name" not in st.session_state:
        st.session_state["trainer_save_name"] = result.spec.label()  # one stable key; its default follows the model
        st.session_state["trainer_save_for"] = result.run_id
    m = result.metrics
    facts = f"Test set ({m.n_images:,} images): reconstruction **{m.recon:.2f}** nats"
    if m.kl is not None:
        facts += f", KL **{m.kl:.2f}**, −ELBO **{m.neg_elbo:.2f}**, {m.active_units} of {result.spec.latent_dim} units active"
    st.markdown(facts + ".")
    key = session.catalogue.run_key(result.run_id) or ""
    saved = key.startswith("file:")
    c = st.columns([2, 1, 1.3], vertical_alignment="bottom")
    c[0].text_input("Name", key="trainer_save_name", max_chars=80, disabled=saved,
                    help="Letters, digits, - and _ only. Saved as NAME.safetensors in the user folder.")
    c[1].button("Save checkpoint", key="trainer_save", type="primary", icon=":material/save:", on_click=save,
                args=(result.run_id,), disabled=saved, width="stretch")
    c[2].button("Explore it in the Latent explorer", key="trainer_explore", icon=":material/tune:", on_click=explore,
                args=(result.run_id,), width="stretch")
    flash.show("trainer_save")
    st.caption(f"Saved: `{key[5:].rsplit(':', 1)[0]}`" if saved else
               f"Saves into `{user_dir()}`. Until saved, the model lives in this browser session only.")


def main() -> None:
    selected()  # first: it leaves Streamlit's legacy pages mode (a rerun) if a fresh server started here
    restore_settings()
    if st.session_state.pop("trainer_goto_explorer", False):
        try:
            st.switch_page("pages/explorer.py")
        except Exception:  # noqa: BLE001 - the explorer page may not be registered (tests)
            st.info("Pick the model in the sidebar and open the Latent explorer page.")
    st.title("Trainer")
    st.caption("Train an autoencoder or a β-VAE on real images and watch it learn: the loss curves, which latent "
               "dimensions it uses, its samples and its latent map. Training runs in the background, so you can "
               "look at other pages meanwhile. When it finishes the model appears in the sidebar of every page.")
    view = training_session().view()
    active = view is not None and view.active
    settings_panel(disabled=active, on_gpu=ON_GPU)
    remember_settings()
    c = st.columns([1, 5])
    c[0].button("Start training", key="trainer_start", type="primary", icon=":material/play_arrow:",
                on_click=start, disabled=active, width="stretch")
    if view is None:
        c[1].caption("The defaults train a 2-D VAE on MNIST"
                     + (" for 20 epochs on the GPU." if ON_GPU else " for 3 epochs: under a minute on a free CPU core."))
    flash.show("trainer")
    st.divider()
    if view is not None and not active:
        if register_finished():
            st.rerun()  # so the sidebar, drawn before this page, lists the new model
        status_panel(view)
        save_panel()
    st.fragment(run_every=POLL_S if active else None)(live_panel)(polling=active)


main()
