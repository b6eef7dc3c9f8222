"""The sidebar every page shares: pick a model and a partner to compare with, upload a checkpoint.

The choice lives in `st.session_state` (keys `model_key`, `partner_key`), so it survives page
switches. Pages read it with `selected()`, or `require_model()` when they have nothing to show
without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from ..catalogue import SessionModels
from ..data import dataset_label
from ..models import MODELS
from ..train import pick_device
from . import flash, identity, present, urlstate
from .cache import ModelRef, forget_let_go, get_model, known_models, register_upload
from .inputs import plain
from .mode import exploring
from .training import register_finished, sidebar_progress

DEFAULT_MODEL = "mnist-vae-mlp-2"  # a 2-D VAE: its latent map needs no projection


@dataclass(frozen=True)
class Selection:
    model: ModelRef | None
    partner: ModelRef | None  # the model it is compared with, for side-by-side pages

    def pair(self) -> tuple[ModelRef | None, ModelRef | None]:
        """(deterministic, probabilistic) in that order when exactly one of them has a posterior."""
        if self.model and self.partner and _probabilistic(self.model) and not _probabilistic(self.partner):
            return self.partner, self.model
        return self.model, self.partner

    def refs(self) -> list[ModelRef]:
        """The chosen models, the deterministic one first: what side-by-side pages show."""
        return [r for r in self.pair() if r is not None]


def _probabilistic(ref: ModelRef) -> bool:
    return ref.kind in MODELS and MODELS[ref.kind].probabilistic


def default_partner(model: ModelRef, refs: list[ModelRef]) -> ModelRef | None:
    """A model with the same data set, architecture and latent size: of the other family (an AE for a
    VAE, a VAE for an AE), else any other kind."""
    same = [r for r in refs if r.key != model.key and r.pair_signature == model.pair_signature]
    other_family = [r for r in same if _probabilistic(r) != _probabilistic(model)]
    preferred = [r for r in other_family if r.kind in ("ae", "vae")]
    for group in (preferred, other_family, same):
        if group:
            return group[0]
    return None


def _on_upload() -> None:
    """Runs before the script (a widget callback), so it may select the uploaded model."""
    file = st.session_state.get("sidebar_upload")
    if file is None:
        return
    try:
        key, new = register_upload(file.name, file.getvalue())
    except ValueError as exc:
        flash.flash("error", plain(f"Not loaded: {exc}"), "sidebar")  # exc names the file
        return
    if new:
        st.session_state["model_key"] = key
        flash.flash("success", plain(f"Loaded {file.name}."), "sidebar")


def _upload(container) -> None:
    if exploring():
        return  # an explore-only server takes no checkpoints
    container.file_uploader("Upload a checkpoint (.safetensors)", type=["safetensors"],
                            key="sidebar_upload", max_upload_size=64, on_change=_on_upload,
                            help="Validated before use; never unpickled, never written to disk.")
    flash.show("sidebar", container)


def _let_go_note(container) -> None:
    """Say which models the session let go to stay within its limits."""
    let_go = forget_let_go()
    if let_go:
        limits = SessionModels.LIMITS
        container.info(f"This session keeps its {limits['upload']} latest uploads and {limits['session']} latest "
                       "trained models in memory, so it let go of " + ", ".join(let_go)
                       + ". Save a model in the Model zoo to keep it.", icon=":material/info:")


def sidebar() -> Selection:
    """Draw the shared sidebar and return the current selection."""
    side = st.sidebar
    identity.mount()
    register_finished()  # a run that ended while the person was on another page
    refs = known_models()
    by_key = {r.key: r for r in refs}
    sidebar_progress()
    if not refs:
        side.warning("No models here." if exploring() else
                     "No models yet: train one on the Trainer page, or upload a checkpoint.")
        if not exploring():
            _upload(side.expander("Upload a checkpoint"))
        return Selection(None, None)
    by_label = {r.label: r.key for r in refs}
    label_of = {r.key: r.label for r in refs}
    urlstate.note(urlstate.bind(
        urlstate.APP,
        urlstate.Param("model", lambda: label_of.get(st.session_state.get("model_key")),
                       lambda key: st.session_state.update(model_key=key), urlstate.choice(list(by_label.values()), label_of.get)),
        urlstate.Param("vs", lambda: label_of.get(st.session_state.get("partner_key"), "nothing"),
                       _set_partner, urlstate.choice([None, *by_label.values()], lambda k: label_of.get(k, "nothing"))),
        urlstate.state(present.KEY, present.KEY, urlstate.flag, lambda on: "1" if on else "0", default=False),
    ))
    if st.session_state.get("model_key") not in by_key:
        default = next((r for r in refs if r.label == DEFAULT_MODEL), refs[0])
        st.session_state["model_key"] = default.key
    model_key = side.selectbox("Model", list(by_key), key="model_key", format_func=lambda k: by_key[k].label)
    model = by_key[model_key]
    others = [r for r in refs if r.key != model.key]
    default = default_partner(model, refs)
    if st.session_state.pop("partner_from_url", None) == model.key:
        st.session_state["partner_for"] = model.key  # the link's partner, not the default one
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
    if m.meta.beta is not None:
        facts += f" · β = {m.meta.beta:g}"
    side.caption(f"{facts}  \nData set: **{dataset_label(model.dataset)}** · Device: **{pick_device('auto')}** "
                 "(the app decodes on the CPU)")
    side.toggle("Presentation mode", key=present.KEY,
                help="Hides the sidebar and the secondary controls, and enlarges text and pictures for the back "
                     "row of a lecture hall (also ?present=1 in the address).")
    if not exploring():
        _upload(side.expander("Upload a checkpoint"))
    _let_go_note(side)
    return Selection(model, partner)


def _set_partner(key: str | None) -> None:
    """The link names the partner: keep it, instead of the model's default partner."""
    st.session_state["partner_key"] = key
    st.session_state["partner_from_url"] = st.session_state.get("model_key")


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


def require_model(what: str = "") -> Selection:
    """The selection, or a note saying how to get a model and the end of this page's run."""
    sel = selected()
    if sel.model is None:
        st.info("No model selected: pick one in the sidebar, train one on the Trainer page, or upload a "
                "checkpoint." + (f" {what}" if what else ""))
        st.stop()
    return sel
