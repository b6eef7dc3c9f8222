"""Model zoo: every model the app knows in one table; one model's curves, KL and samples; upload,
download and delete checkpoints; import your own from ONNX; two models compared on the same test images.

Shipped checkpoints are read-only here. User-saved ones can be deleted after a confirmation.
Uploads are validated (`load_checkpoint` on the bytes, nothing written) and can then be saved
into the user folder. Models trained or uploaded in this session are listed too.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from vaeviz import store
from vaeviz.checkpoint import read_checkpoint_bytes
from vaeviz.models import MODELS
from vaeviz.ui import flash, identity, imports, panels, views
from vaeviz.ui.mode import exploring
from vaeviz.ui.cache import (ModelRef, forget_session_model, get_model, known_models, meta_of, register_upload,
                             unreadable_checkpoints)
from vaeviz.ui.inputs import plain
from vaeviz.ui.sidebar import selected

DETAILS = "zoo_details"  # session_state: the key of the model whose details are shown
UPLOAD_ROUND = "zoo_upload_round"  # session_state: bumped after an upload is saved (a fresh uploader)


def on_table_select(keys: list[str]) -> None:
    rows = st.session_state["zoo_table"].selection.rows
    if rows:
        st.session_state[DETAILS] = keys[rows[0]]


def download_data(ref: ModelRef):
    """A callable for st.download_button: the file's bytes, made only when the button is clicked."""
    if ref.path is not None:
        return lambda: read_checkpoint_bytes(ref.path)
    model = get_model(ref)
    return lambda: store.checkpoint_bytes(model)


def delete(ref: ModelRef) -> None:
    try:
        store.delete_user_file(ref.path, owner=identity.owner().id, admin=identity.is_admin())
    except (PermissionError, OSError) as exc:
        flash.flash("error", f"Could not delete {Path(ref.path).name}: {exc}")
        return
    st.session_state.pop(DETAILS, None)
    flash.flash("success", f"Deleted {ref.path}.")


def save_session_model(ref: ModelRef) -> None:
    saved = views.save_session_model(ref.key, get_model(ref), st.session_state.get("zoo_save_name", ""), "page",
                                     replace=st.session_state.get("zoo_replace", False))
    if saved is None:
        return
    if saved[1] is not None:
        st.session_state[DETAILS] = saved[1].key
    if ref.source == "upload":
        st.session_state[UPLOAD_ROUND] = st.session_state.get(UPLOAD_ROUND, 0) + 1


def forget(ref: ModelRef) -> None:
    forget_session_model(ref.key)
    st.session_state.pop(DETAILS, None)


def actions(ref: ModelRef) -> None:
    """Download; delete (user files, after a tick); forget or save (this session's models)."""
    cols = st.columns([1.2, 1.6, 2.2], vertical_alignment="bottom")
    file_name = f"{Path(ref.path).stem if ref.path else store.safe_stem(ref.label)}.safetensors"
    cols[0].download_button("Download .safetensors", data=download_data(ref), file_name=file_name,
                            mime="application/octet-stream", key="zoo_download", icon=":material/download:",
                            on_click="ignore", width="stretch")
    if exploring():
        cols[1].caption("An explore-only server: models can be used and downloaded, not saved or deleted.")
    elif ref.source == "user" and store.may_delete(ref.path, identity.owner().id, identity.is_admin()):
        confirm = cols[2].checkbox(f"Yes, delete {Path(ref.path).name}", key="zoo_delete_confirm")
        cols[1].button("Delete", key="zoo_delete", icon=":material/delete:", disabled=not confirm, on_click=delete,
                       args=(ref,), width="stretch", help="Deletes the file from the user folder. Tick the box first.")
    elif ref.source == "user":
        cols[1].caption("Saved by someone else: you can use and download it; only they (or the admin) may delete it."
                        if store.owner_of(ref.path) else
                        "Copied into the user folder by hand: it has no owner, so only the admin may delete it.")
    elif ref.source == "shipped":
        cols[1].caption("Shipped with the app: read-only here (it is never deleted from the app).")
    else:
        cols[1].button("Forget", key="zoo_forget", icon=":material/close:", on_click=forget, args=(ref,),
                       width="stretch", help="Remove it from this session (nothing on disk changes).")
        with cols[2]:
            c = st.columns([2, 1], vertical_alignment="bottom")
            if st.session_state.get("zoo_save_for") != ref.key or "zoo_save_name" not in st.session_state:
                st.session_state["zoo_save_name"] = store.safe_stem(ref.label)
                st.session_state["zoo_save_for"] = ref.key
            c[0].text_input("Save as", key="zoo_save_name", max_chars=80,
                            help="Letters, digits, - and _ only; saved into the user folder.")
            c[1].button("Save", key="zoo_save", icon=":material/save:", on_click=save_session_model, args=(ref,),
                        width="stretch")
            st.checkbox("Replace a model of mine with this name", key="zoo_replace",
                        help="Only a model you saved can be replaced; anyone's can be used and downloaded.")


def details(ref: ModelRef) -> None:
    meta, _ = meta_of(ref)
    st.subheader(ref.label)
    st.markdown(views.facts_line(ref, meta))
    actions(ref)
    cls = MODELS[meta.kind]
    if meta.curves:
        note = f"Training curves from the checkpoint ({meta.epochs} epoch{'' if meta.epochs == 1 else 's'})."
        if meta.train is not None and meta.train.diverged:
            note += f" The run diverged: {meta.train.diverged}"
        views.curves(meta.curves.steps, meta.curves.epochs, cls.terms, "zoo_curves", note)
    else:
        st.caption("No training curves stored with this model."
                   + (" It is fitted in closed form." if cls.fit_method == "closed form" else ""))
    own = views.own_metrics(meta)
    if own:
        st.markdown(f"**What a {cls.title.lower()} measures besides** (test set)")
        st.dataframe(own, hide_index=True, key="zoo_own_metrics")
    left, right = st.columns(2, gap="large")
    model = get_model(ref)
    with left:
        if cls.probabilistic and meta.metrics.kl_per_dim:
            activity = None
            try:
                from vaeviz.metrics import unit_activity
                from vaeviz.ui.cache import encoded

                activity = unit_activity(encoded(ref)[0])
            except ValueError:
                pass  # no test data for this model: the bars alone
            views.kl_panel(meta.metrics.kl_per_dim, activity, "zoo_kl_bars", "test set")
    with right:
        st.markdown("**Samples from the prior** z ~ N(0, I)" + ("" if cls.probabilistic else
                    f" (a {cls.title.lower()} has no prior; these codes may fall where it never put an image)"))
        if model.cfg.height >= 8 and model.cfg.width >= 8:
            st.image(views.as_picture(views.prior_mosaic(ref, model), 2), output_format="PNG")
        else:  # a model of points: its samples, decoded, as points
            from vaeviz.figures import training as training_figures

            st.plotly_chart(training_figures.point_samples(views.prior_samples(ref.key, model, 500).reshape(500, -1)),
                            key="zoo_point_samples")


def upload_panel() -> None:
    # A saved upload is no longer a session model; a fresh uploader (a new key) lets go of its file,
    # which would otherwise be registered again as a new upload on the next run.
    file = st.file_uploader("Upload a checkpoint (.safetensors)", type=["safetensors"], max_upload_size=64,
                            key=f"zoo_upload_{st.session_state.get(UPLOAD_ROUND, 0)}",
                            help="Validated before use (never unpickled); nothing is written unless you save it.")
    if file is None:
        return
    try:
        key, new = register_upload(file.name, file.getvalue())
    except ValueError as exc:
        st.error(plain(f"{file.name} was not loaded and nothing was kept: {exc}"), icon=":material/error:")
        return
    if not new:
        st.caption(plain(f"{file.name} is loaded: it is in the table and the sidebar as an uploaded model."))
        return
    st.session_state[DETAILS] = key
    flash.flash("success", plain(f"Loaded {file.name}: its details are below; save it to keep it."))
    st.rerun()


def main() -> None:
    sel = selected()  # first: it may rerun the app (legacy pages mode), which must not eat a notice
    st.title("Model zoo")
    st.caption("Every model the app knows: shipped with it, saved by you, trained or uploaded in this session. "
               "Click a row for its training curves and samples. Metrics are on the test set, in nats per image; "
               "“–” where a measure does not apply to a kind (an AE has no KL and no ELBO). The −ELBO bounds −log p(x) "
               "from above. On MNIST's grey pixels the Bernoulli −log p(x|z) is a cross-entropy whose floor, the pixels' "
               "own entropy, is 45.5 nats per test image, so these figures are not comparable with results on "
               "binarised MNIST.")
    flash.show(toast=True)
    refs = known_models()
    if not exploring():
        with st.expander("Upload a checkpoint", expanded=not refs):
            upload_panel()
        with st.expander("Import your own model (ONNX encoder and decoder)"):
            imports.import_panel(DETAILS)
        identity.admin_panel()
    problems = unreadable_checkpoints()
    if problems:
        with st.expander(f"{len(problems)} checkpoint file(s) could not be read"):
            for p in problems:
                st.caption(p)
    if not refs:
        st.info("No models yet. Train one on the Trainer page, or upload a .safetensors checkpoint above.")
        return
    keys, by_key = [r.key for r in refs], {r.key: r for r in refs}
    st.dataframe(
        views.zoo_table([views.zoo_row(r, *meta_of(r)) for r in refs]), hide_index=True, key="zoo_table",
        on_select=lambda: on_table_select(keys), selection_mode="single-row",
        column_config={
            "β": st.column_config.Column(width="small", help="weight of the KL term; – for kinds without one"),
            "recon": st.column_config.Column(help="−log p(x|z), nats per test image"),
            "KL": st.column_config.Column(help="KL(q(z|x) ‖ N(0, I)), nats per test image"),
            "−ELBO": st.column_config.Column(help="recon + KL: lower is better"),
            "active units": st.column_config.Column(help="latent dimensions whose mean code varies (variance > 0.01)"),
            "size (kB)": st.column_config.Column(width="small"),
            **{c: st.column_config.Column(width="small") for c in ("kind", "arch", "latent", "epochs")},
        },
    )
    if st.session_state.get(DETAILS) not in by_key:
        st.session_state[DETAILS] = sel.model.key if sel.model and sel.model.key in by_key else keys[0]
    key = st.selectbox("Details of", keys, key=DETAILS, format_func=lambda k: by_key[k].label)
    details(by_key[key])
    st.divider()
    panels.compare(refs, sel)


main()
