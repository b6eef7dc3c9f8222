"""The sidebar every page shares: pick a model and a partner to compare with, upload a checkpoint.

The choice lives in `st.session_state` (keys `model_key`, `partner_key`), so it survives page
switches. Pages read it with `selected()`.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from ..train import pick_device
from .models import LET_GO, SESSION_LIMITS, ModelRef, get_model, known_models, register_upload
from .inputs import plain
from .training_session import register_finished_models

DEFAULT_MODEL = "mnist-vae-mlp-2"  # a 2-D VAE: its latent map needs no projection


@dataclass(frozen=True)
class Selection:
    model: ModelRef | None
    partner: ModelRef | None  # the other kind (AE for a VAE, VAE for an AE), for side-by-side pages

    def pair(self) -> tuple[ModelRef | None, ModelRef | None]:
        """(AE-ish, VAE) in that order when one of them is a VAE; else (model, partner)."""
        if self.model and self.partner and self.model.kind == "vae" and self.partner.kind != "vae":
            return self.partner, self.model
        return self.model, self.partner


def default_partner(model: ModelRef, refs: list[ModelRef]) -> ModelRef | None:
    """The model of the other kind with the same data set, architecture and latent size."""
    want = {"vae": ("ae",), "ae": ("vae",), "pca": ("vae", "ae")}.get(model.kind, ())
    for kind in want:
        for ref in refs:
            if ref.kind == kind and ref.pair_signature == model.pair_signature:
                return ref
    return None


UPLOAD_NOTE = "vaeviz_upload_note"  # session_state: (kind, message) from the last upload


def _on_upload() -> None:
    """Runs before the script (a widget callback), so it may select the uploaded model."""
    file = st.session_state.get("sidebar_upload")
    if file is None:
        return
    try:
        key, new = register_upload(file.name, file.getvalue())
    except ValueError as exc:
        st.session_state[UPLOAD_NOTE] = ("error", plain(f"Not loaded: {exc}"))  # exc names the file
        return
    if new:
        st.session_state["model_key"] = key
        st.session_state[UPLOAD_NOTE] = ("success", plain(f"Loaded {file.name}."))


def _upload(container) -> None:
    container.file_uploader("Upload a checkpoint (.safetensors)", type=["safetensors"],
                            key="sidebar_upload", max_upload_size=64, on_change=_on_upload,
                            help="Validated before use; never unpickled, never written to disk.")
    note = st.session_state.pop(UPLOAD_NOTE, None)
    if note is not None:
        getattr(container, note[0])(note[1])


def _let_go_note(container) -> None:
    """Say which models the session let go to stay within its limits (models.SESSION_LIMITS)."""
    let_go = st.session_state.pop(LET_GO, None)
    if let_go:
        container.info(f"This session keeps its {SESSION_LIMITS['upload']} latest uploads and "
                       f"{SESSION_LIMITS['session']} latest trained models in memory, so it let go of "
                       + ", ".join(let_go) + ". Save a model in the Model zoo to keep it.",
                       icon=":material/info:")


def sidebar() -> Selection:
    """Draw the shared sidebar and return the current selection."""
    side = st.sidebar
    register_finished_models()  # a run that ended while the person was on another page
    refs = known_models()
    by_key = {r.key: r for r in refs}
    if not refs:
        side.warning("No models yet: train one on the Trainer page, or upload a checkpoint.")
        _upload(side.expander("Upload a checkpoint"))
        return Selection(None, None)
    if st.session_state.get("model_key") not in by_key:
        default = next((r for r in refs if r.label == DEFAULT_MODEL), refs[0])
        st.session_state["model_key"] = default.key
    model_key = side.selectbox("Model", list(by_key), key="model_key", format_func=lambda k: by_key[k].label)
    model = by_key[model_key]
    others = [r for r in refs if r.key != model.key]
    default = default_partner(model, refs)
    if st.session_state.get("partner_for") != model.key or st.session_state.get("partner_key") not in ([None] + [r.key for r in others]):
        st.session_state["partner_key"] = default.key if default else None
        st.session_state["partner_for"] = model.key
    options = [None] + [r.key for r in others]
    partner_key = side.selectbox("Compare with", options, key="partner_key",
                                 format_func=lambda k: "nothing" if k is None else by_key[k].label,
                                 help="Pages that compare put this model beside the first one.")
    partner = by_key.get(partner_key) if partner_key else None
    m = get_model(model)
    facts = f"**{m.kind.upper()}** · {m.cfg.arch} · {m.cfg.latent_dim}-D latent"
    if m.kind == "vae":
        facts += f" · β = {m.cfg.beta:g}"
    side.caption(f"{facts}  \nData set: **{model.dataset or 'unknown'}** · Device: **{pick_device('auto')}** "
                 "(the app decodes on the CPU)")
    _upload(side.expander("Upload a checkpoint"))
    _let_go_note(side)
    return Selection(model, partner)


def ensure_app_navigation() -> None:
    """Make sure a page runs inside app.py's navigation, not Streamlit's legacy pages/ mode.

    Because the project has a `pages/` folder, Streamlit starts each server in its old multipage
    mode until some session runs `st.navigation`. If the very first request of a fresh server is a
    page's URL, that page runs alone, with no sidebar. Leave that mode and rerun: the rerun goes
    through app.py and lands on the same page.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def selected() -> Selection:
    """The selection the sidebar made on this run (pages call this)."""
    ensure_app_navigation()
    return st.session_state.get("vaeviz_selection") or Selection(None, None)
