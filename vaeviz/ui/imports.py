"""The Model zoo's import form: your own encoder and decoder, exported to ONNX, as a model of this session.

Two file uploaders (.onnx), the kind, the data set its pages encode, and an Import button. The files are
read by `vaeviz.onnx_import` (parsed, never run); the model is measured on its data set's test split and
joins this session's models as an upload, so it is in the sidebar of every page and is kept, like an
uploaded checkpoint, with the zoo's Save button (which records its owner and keeps to the quotas). An
explore-only server shows no form. A file that cannot be imported is one `st.error`; nothing is kept.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from ..config import LIKELIHOODS
from ..data import DATASETS, DataUnavailable
from ..metrics import evaluate
from ..onnx_import import MAX_ONNX_BYTES, Imported, import_onnx
from . import flash
from .cache import add_session_model, test_data
from .inputs import plain
from .mode import exploring

ROUND = "onnx_import_round"  # session_state: bumped after an import, so the uploaders let go of their files
DOCS = "docs/bring-your-own-model.md"
PLACE = "onnx_import"  # where the form's error messages are shown (vaeviz.ui.flash)
KIND_TITLES = {"vae": "VAE (μ and log σ²)", "ae": "AE (a code)"}


def measured(imported: Imported) -> tuple[Imported, str | None]:
    """The model with its test metrics (on its own data set's test split), or a note saying why there are none."""
    model = imported.model
    try:
        split, used, _ = test_data(model.meta.dataset, model.cfg.image_shape)
    except DataUnavailable as exc:
        return imported, f"Not measured: {exc}"
    if used != model.meta.dataset:
        return imported, f"Not measured: the {model.meta.dataset} test images are not on this server."
    with st.spinner(f"Measuring it on the {used} test images ..."):
        metrics = evaluate(model, split.images)
    model.meta = replace(model.meta, metrics=metrics)
    return imported, None


def run_import(details_key: str) -> None:
    """The Import button's callback (it runs before the page, so no rerun can lose the click): import the two
    uploaded files, measure the model, add it to the session, and say what happened."""
    round_ = st.session_state.get(ROUND, 0)
    encoder, decoder = st.session_state.get(f"onnx_encoder_{round_}"), st.session_state.get(f"onnx_decoder_{round_}")
    if encoder is None or decoder is None:
        flash.flash("error", "Choose both files first: the encoder's and the decoder's .onnx.", PLACE)
        return
    kind = st.session_state.get("onnx_kind", "vae")
    try:
        imported = import_onnx(encoder.getvalue(), decoder.getvalue(), kind, dataset=st.session_state.get("onnx_dataset"),
                               likelihood=st.session_state.get("onnx_likelihood", "bernoulli"),
                               names=(encoder.name, decoder.name))
    except ValueError as exc:
        flash.flash("error", plain(f"Not imported, nothing was kept: {exc}"), PLACE)
        return
    imported, note = measured(imported)
    ref = add_session_model(imported.model, f"{Path(encoder.name).stem} (imported)", "upload")
    st.session_state[ROUND] = round_ + 1  # fresh uploaders: these files are let go
    st.session_state[details_key] = ref.key
    notes = "\n".join(f"- {plain(n)}" for n in imported.notes + ((note,) if note else ()))
    flash.flash("success", plain(f"Imported {encoder.name} and {decoder.name} as a {kind.upper()}: its details are "
                                 "below; save it to keep it.") + "\n" + notes)


def import_panel(details_key: str) -> None:
    """The form. After an import the new model's key is in `session_state[details_key]`, for the page's details."""
    if exploring():
        st.caption("An explore-only server: models cannot be imported here.")
        return
    st.caption("Your own PyTorch encoder and decoder, exported with `torch.onnx.export` (weights inside the file: "
               f"`external_data=False`). The files are read, never run. How to export them: `{DOCS}`.")
    round_ = st.session_state.get(ROUND, 0)
    left, right = st.columns(2)
    limit = MAX_ONNX_BYTES // 2**20
    encoder = left.file_uploader("Encoder (.onnx)", type=["onnx"], max_upload_size=limit, key=f"onnx_encoder_{round_}",
                                 help="images (B, C, H, W) or (B, pixels) -> the code (AE), or μ and log σ² (VAE)")
    decoder = right.file_uploader("Decoder (.onnx)", type=["onnx"], max_upload_size=limit, key=f"onnx_decoder_{round_}",
                                  help="codes (B, D) -> images in [0, 1] (ending in a Sigmoid, or (tanh + 1) / 2)")
    cols = st.columns([1.3, 1, 1, 0.8], vertical_alignment="bottom")
    cols[0].radio("Kind", list(KIND_TITLES), format_func=KIND_TITLES.get, key="onnx_kind", horizontal=True)
    cols[1].selectbox("Data set", list(DATASETS), key="onnx_dataset",
                      help="the images its pages encode: they must have the networks' image shape")
    cols[2].selectbox("Likelihood", LIKELIHOODS, key="onnx_likelihood",
                      help="the decoder's p(x|z), for its losses (bernoulli for MNIST's digits)")
    cols[3].button("Import", key="onnx_import", icon=":material/upload:", disabled=encoder is None or decoder is None,
                   on_click=run_import, args=(details_key,), width="stretch")
    flash.show(PLACE)
