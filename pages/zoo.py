"""Model zoo: every model the app knows in one table; one model's curves, KL and samples; upload,
download and delete checkpoints; two models compared on the same test images.

Shipped checkpoints are read-only here (no delete). User-saved ones can be deleted after a
confirmation. Uploads are validated (`load_checkpoint` on the bytes, nothing written) and can then be
saved into the user folder. Models trained or uploaded in this session are listed too.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from vaeviz import latent, training_plots
from vaeviz.checkpoint import checkpoint_summary, find_checkpoints, read_checkpoint_bytes, user_dir
from vaeviz.data import class_exemplars
from vaeviz.ui import store
from vaeviz.ui.inputs import plain
from vaeviz.ui.models import ModelRef, forget_session_model, get_model, known_models, register_upload, test_data
from vaeviz.ui.sidebar import Selection, selected

SOURCES = {"shipped": "shipped", "user": "saved", "session": "trained here", "upload": "uploaded"}
DETAILS = "zoo_details"  # session_state: the key of the model whose details are shown
NOTICE = "zoo_notice"  # session_state: (kind, text) shown once after a callback
UPLOAD_ROUND = "zoo_upload_round"  # session_state: bumped after an upload is saved (a fresh uploader)
SAMPLE_SEED = 0


@st.cache_data(max_entries=256, show_spinner=False)
def _file_summary(path: str, mtime_ns: int) -> dict:
    return checkpoint_summary(path)


def _meta(ref: ModelRef) -> dict:
    """A model's metadata: from the file's header (no model built) or the in-memory model."""
    if ref.path is not None:
        try:
            return _file_summary(ref.path, Path(ref.path).stat().st_mtime_ns)
        except (OSError, ValueError):
            return {}
    model = get_model(ref)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return {**model.meta, "size_bytes": model.meta.get("size_bytes") or size}


def _when(created: str | None) -> str:
    if not created:
        return "this session"
    try:
        return dt.datetime.fromisoformat(created).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return created


def _row(ref: ModelRef, meta: dict) -> dict:
    m = meta.get("metrics") or {}
    cfg = meta.get("config") or {}
    kind = meta.get("kind") or ref.kind
    return {
        "name": ref.label,
        "source": SOURCES.get(ref.source, ref.source),
        "data set": meta.get("dataset") or ref.dataset or "?",
        "kind": kind.upper(),
        "arch": meta.get("arch") or cfg.get("arch") or ref.arch,
        "latent": meta.get("latent_dim") or cfg.get("latent_dim") or ref.latent_dim,
        "β": cfg.get("beta") if kind == "vae" else None,
        "recon": m.get("recon"),
        "KL": m.get("kl") if kind == "vae" else None,
        "−ELBO": m.get("neg_elbo") if kind == "vae" else None,
        "active units": m.get("active_units"),
        "size (kB)": round(meta["size_bytes"] / 1024) if meta.get("size_bytes") else None,
        "trained": _when(meta.get("created")),
    }


def _unreadable() -> list[str]:
    """Checkpoint files the sidebar skips because they cannot be read, with the reason."""
    problems = []
    for path in find_checkpoints():
        try:
            _file_summary(str(path), path.stat().st_mtime_ns)
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
    return problems


def _on_table_select(keys: list[str]) -> None:
    rows = st.session_state["zoo_table"].selection.rows
    if rows:
        st.session_state[DETAILS] = keys[rows[0]]


# --- one model ---------------------------------------------------------------------------------


@st.cache_data(max_entries=64, show_spinner=False)
def _prior_samples(key: str, _model, n: int = 64) -> np.ndarray:
    """A mosaic (uint8) of n decoded samples from N(0, I), the same codes for every model."""
    z = torch.randn(n, _model.cfg.latent_dim, generator=torch.Generator().manual_seed(SAMPLE_SEED)).numpy()
    images = latent.decode(_model, z)
    return latent.to_uint8(latent.mosaic(images, cols=int(np.sqrt(n))))


def _download_data(ref: ModelRef):
    """A callable for st.download_button: the file's bytes, made only when the button is clicked."""
    if ref.path is not None:
        return lambda: read_checkpoint_bytes(ref.path)
    model = get_model(ref)
    return lambda: store.checkpoint_bytes(model)


def _delete(ref: ModelRef) -> None:
    try:
        store.delete_user_file(ref.path)
    except (PermissionError, OSError) as exc:
        st.session_state[NOTICE] = ("error", f"Could not delete {Path(ref.path).name}: {exc}")
        return
    st.session_state.pop(DETAILS, None)
    st.session_state[NOTICE] = ("success", f"Deleted {ref.path}.")


def _save_session_model(ref: ModelRef) -> None:
    model = get_model(ref)
    try:
        path = store.save_model(model, st.session_state.get("zoo_save_name", ""))
    except (ValueError, FileExistsError) as exc:
        st.session_state[NOTICE] = ("error", str(exc))
        return
    except OSError as exc:
        st.session_state[NOTICE] = ("error", f"Could not write to {user_dir()}: {exc.strerror or exc}. The model stays "
                                             "usable in this session.")
        return
    file_ref = next((r for r in known_models() if r.path == str(path)), None)
    if file_ref is not None:
        if st.session_state.get("model_key") == ref.key:
            st.session_state["model_key"] = file_ref.key
        st.session_state[DETAILS] = file_ref.key
        forget_session_model(ref.key)
    if ref.source == "upload":
        st.session_state[UPLOAD_ROUND] = st.session_state.get(UPLOAD_ROUND, 0) + 1
    st.session_state[NOTICE] = ("success", f"Saved as {path}.")


def _forget(ref: ModelRef) -> None:
    forget_session_model(ref.key)
    st.session_state.pop(DETAILS, None)


def details(ref: ModelRef, meta: dict) -> None:
    kind = meta.get("kind") or ref.kind
    cfg = meta.get("config") or {}
    st.subheader(ref.label)
    tc = meta.get("train_config") or {}
    facts = [f"**{kind.upper()}**", cfg.get("arch", ref.arch), f"{cfg.get('latent_dim', ref.latent_dim)}-D latent"]
    if kind == "vae":
        facts.append(f"β = {cfg.get('beta', 1.0):g}")
    facts.append(f"data set **{meta.get('dataset') or '?'}**")
    if tc:
        epochs = tc.get("epochs", "?")
        epochs = f"{epochs} epoch{'' if epochs == 1 else 's'}"
        images = tc.get("train_images")
        facts.append(f"{epochs} of {images:,} images" if isinstance(images, int) else epochs)
    st.markdown(" · ".join(str(f) for f in facts))

    actions = st.columns([1.2, 1.6, 2.2], vertical_alignment="bottom")
    file_name = f"{Path(ref.path).stem if ref.path else _safe_stem(ref.label)}.safetensors"
    actions[0].download_button("Download .safetensors", data=_download_data(ref), file_name=file_name,
                               mime="application/octet-stream", key="zoo_download", icon=":material/download:",
                               on_click="ignore", width="stretch")
    if ref.source == "user":
        confirm = actions[2].checkbox(f"Yes, delete {Path(ref.path).name}", key="zoo_delete_confirm")
        actions[1].button("Delete", key="zoo_delete", icon=":material/delete:", disabled=not confirm,
                          on_click=_delete, args=(ref,), width="stretch",
                          help="Deletes the file from the user folder. Tick the box first.")
    elif ref.source == "shipped":
        actions[1].caption("Shipped with the app: read-only here (it is never deleted from the app).")
    else:
        actions[1].button("Forget", key="zoo_forget", icon=":material/close:", on_click=_forget, args=(ref,),
                          width="stretch", help="Remove it from this session (nothing on disk changes).")
        with actions[2]:
            c = st.columns([2, 1], vertical_alignment="bottom")
            if st.session_state.get("zoo_save_for") != ref.key or "zoo_save_name" not in st.session_state:
                st.session_state["zoo_save_name"] = _safe_stem(ref.label)
                st.session_state["zoo_save_for"] = ref.key
            c[0].text_input("Save as", key="zoo_save_name", max_chars=80,
                            help="Letters, digits, - and _ only; saved into the user folder.")
            c[1].button("Save", key="zoo_save", icon=":material/save:", on_click=_save_session_model, args=(ref,),
                        width="stretch")

    history = meta.get("history") or {}
    if history.get("epochs") or history.get("steps"):
        st.plotly_chart(training_plots.loss_curves(history.get("steps") or [], history.get("epochs") or [], kind=kind),
                        key="zoo_curves", config={"displaylogo": False})
        note = f"Training curves from the checkpoint ({len(history.get('epochs') or [])} epochs)."
        if history.get("diverged"):
            note += f" The run diverged: {history['diverged']}"
        st.caption(note)
    else:
        st.caption("No training curves stored with this model." + (" PCA is fitted in closed form." if kind == "pca" else ""))

    left, right = st.columns(2, gap="large")
    metrics = meta.get("metrics") or {}
    with left:
        if kind == "vae" and metrics.get("kl_per_dim"):
            st.plotly_chart(training_plots.kl_bars(metrics["kl_per_dim"]), key="zoo_kl_bars", config={"displaylogo": False})
    with right:
        model = get_model(ref)
        if model.cfg.height >= 8 and model.cfg.width >= 8:
            st.markdown("**Samples from the prior** z ~ N(0, I)" + (
                " (an AE and PCA have no prior; these codes may fall where they never put an image)" if kind != "vae" else ""))
            st.image(latent.enlarge(_prior_samples(ref.key, model), 2), output_format="PNG")


def _safe_stem(label: str) -> str:
    """A default file name from a label: letters, digits, - and _ only."""
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in label.split(" (")[0]).strip("-")
    return stem[:80] or "model"


# --- upload ------------------------------------------------------------------------------------


def upload_panel() -> None:
    # A saved upload is no longer a session model; a fresh uploader (a new key) lets go of its file,
    # which would otherwise be registered again as a new upload on the next run.
    key = f"zoo_upload_{st.session_state.get(UPLOAD_ROUND, 0)}"
    file = st.file_uploader("Upload a checkpoint (.safetensors)", type=["safetensors"], key=key,
                            max_upload_size=64,
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
    st.session_state[NOTICE] = ("success", plain(f"Loaded {file.name}: its details are below; save it to keep it."))
    st.rerun()


# --- compare -------------------------------------------------------------------------------------


def compare_panel(refs: list[ModelRef], sel: Selection) -> None:
    st.subheader("Compare two models")
    if len(refs) < 2:
        st.info("Compare needs two models: train or upload another one.")
        return
    keys = [r.key for r in refs]
    by_key = {r.key: r for r in refs}
    for skey, default in (("zoo_compare_a", sel.model.key if sel.model else keys[0]),
                          ("zoo_compare_b", sel.partner.key if sel.partner else keys[1])):
        if st.session_state.get(skey) not in by_key:
            st.session_state[skey] = default if default in by_key else keys[0]
    c = st.columns(2)
    a = by_key[c[0].selectbox("Model A", keys, key="zoo_compare_a", format_func=lambda k: by_key[k].label)]
    b = by_key[c[1].selectbox("Model B", keys, key="zoo_compare_b", format_func=lambda k: by_key[k].label)]
    ma, mb = get_model(a), get_model(b)
    meta_a, meta_b = _meta(a), _meta(b)
    names = ["reconstruction (nats)", "KL (nats)", "−ELBO (nats)", "active units", "BCE per pixel", "test images"]
    fields = ["recon", "kl", "neg_elbo", "active_units", "bce_per_pixel", "n_images"]

    def column(meta: dict) -> list[str]:
        m = meta.get("metrics") or {}
        out = []
        for f in fields:
            v = m.get(f) if (meta.get("kind") == "vae" or f not in ("kl", "neg_elbo", "active_units")) else None
            out.append("–" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:.4f}" if f == "bce_per_pixel" else f"{v:.2f}")
        return out

    table = {"metric": names, f"A: {a.label}": column(meta_a), f"B: {b.label}": column(meta_b)}
    st.dataframe(table, hide_index=True, key="zoo_compare_table")
    if ma.cfg.image_shape != mb.cfg.image_shape:
        st.warning(f"These two models take different images ({ma.cfg.image_shape} and {mb.cfg.image_shape}); "
                   "only their metrics can be compared.")
        return
    if ma.cfg.height < 8:
        return
    split, used, note = test_data(a.dataset or b.dataset or "mnist")
    if tuple(split.images.shape[1:]) != ma.cfg.image_shape:
        st.warning("The test images do not fit these models.")
        return
    if note:
        st.caption(note)
    idx = class_exemplars(split.labels, len(split.classes))
    x = split.images[idx]
    rows = [x.numpy()[:, 0]]
    for model in (ma, mb):
        mu, _ = latent.encode(model, x)
        rows.append(latent.decode(model, mu))
    grid = latent.to_uint8(latent.mosaic(np.concatenate(rows), cols=len(idx)))
    st.markdown(f"**The same {len(idx)} test images of {used}** (top), **reconstructed by A** (middle) "
                "**and by B** (bottom), each from its mean code")
    st.image(latent.enlarge(grid, 3), output_format="PNG")


# --- the page --------------------------------------------------------------------------------


def main() -> None:
    sel = selected()  # first: it may rerun the app (legacy pages mode), which must not eat a notice
    st.title("Model zoo")
    st.caption("Every model the app knows: shipped with it, saved by you, trained or uploaded in this session. "
               "Click a row for its training curves and samples. Metrics are on the test set, in nats per image.")
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        getattr(st, notice[0])(notice[1])
        if notice[0] == "success":
            st.toast(notice[1], icon=":material/check_circle:")  # seen wherever the page is scrolled
    refs = known_models()
    metas = {r.key: _meta(r) for r in refs}
    with st.expander("Upload a checkpoint", expanded=not refs):
        upload_panel()
    problems = _unreadable()
    if problems:
        with st.expander(f"{len(problems)} checkpoint file(s) could not be read"):
            for p in problems:
                st.caption(p)
    if not refs:
        st.info("No models yet. Train one on the Trainer page, or upload a .safetensors checkpoint above.")
        return
    keys = [r.key for r in refs]
    st.dataframe(
        [_row(r, metas[r.key]) for r in refs], hide_index=True, key="zoo_table", on_select=lambda: _on_table_select(keys),
        selection_mode="single-row",
        column_config={
            "β": st.column_config.NumberColumn(format="%g", width="small"),
            "recon": st.column_config.NumberColumn("recon", format="%.2f", help="−log p(x|z), nats per test image"),
            "KL": st.column_config.NumberColumn(format="%.2f", help="KL(q(z|x) ‖ N(0, I)), nats per test image"),
            "−ELBO": st.column_config.NumberColumn(format="%.2f", help="recon + KL: lower is better"),
            "active units": st.column_config.NumberColumn(help="latent dimensions with KL > 0.01 nats"),
            "size (kB)": st.column_config.NumberColumn(format="%d", width="small"),
            **{c: st.column_config.Column(width="small") for c in ("kind", "arch", "latent")},
        },
    )
    by_key = {r.key: r for r in refs}
    if st.session_state.get(DETAILS) not in by_key:
        st.session_state[DETAILS] = sel.model.key if sel.model and sel.model.key in by_key else keys[0]
    key = st.selectbox("Details of", keys, key=DETAILS, format_func=lambda k: by_key[k].label)
    details(by_key[key], metas[key])
    st.divider()
    compare_panel(refs, sel)


main()
