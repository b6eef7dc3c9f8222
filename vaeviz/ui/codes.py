"""The code z a person explores with sliders: kept per model in `st.session_state["z::<model key>"]`,
shared by the server-side sliders and the live (in-browser) panel, moved by buttons and by the URL.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from . import urlstate
from .cache import ModelRef

MAX_SLIDERS = 16


def slider_key(ref: ModelRef, i: int) -> str:
    return f"slider::{ref.key}::{i}"


def set_code(ref: ModelRef, z) -> None:
    """Move every slider (shown or not) to the code z: call it in a callback, before widgets draw."""
    z = np.asarray(z, np.float64)
    st.session_state[f"z::{ref.key}"] = z.copy()
    for i, v in enumerate(z):
        st.session_state[slider_key(ref, i)] = float(np.round(v, 2))


def current_code(ref: ModelRef, dim: int) -> np.ndarray:
    """The code being explored, made (at the origin) if missing."""
    if f"z::{ref.key}" not in st.session_state:
        set_code(ref, np.zeros(dim))
    return st.session_state[f"z::{ref.key}"]


def url_param(ref: ModelRef, dim: int) -> urlstate.Param:
    """The code in the URL (`z=0.5,-1.2`), left out at the origin."""
    def get():
        z = st.session_state.get(f"z::{ref.key}")
        return None if z is None or not np.any(z) else z

    return urlstate.Param("z", get, lambda z: set_code(ref, z), urlstate.floats(dim), urlstate.show_floats)


def test_image_picker(key: str, n_test: int, container=st) -> int:
    """A labelled box for a test image's number (0 .. n_test - 1)."""
    return int(container.number_input("Test image #", 0, n_test - 1, key=key, help=f"0 to {n_test - 1:,}"))


def buttons(ref: ModelRef, mu: np.ndarray | None, n_test: int, dim: int) -> None:
    """Reset, random from the prior, start from a test image: each moves the code (a callback)."""
    cols = st.columns([1, 1, 1, 1.2], vertical_alignment="bottom")
    cols[0].button("Reset to origin", on_click=set_code, args=(ref, np.zeros(dim)), key=f"reset::{ref.key}",
                   width="stretch")
    rng = np.random.default_rng()
    cols[1].button("Random from prior", on_click=lambda: set_code(ref, rng.standard_normal(dim)),
                   key=f"random::{ref.key}", width="stretch", help="Draw z from N(0, I), the prior a VAE is trained towards.")
    if mu is not None:
        st.session_state.setdefault(f"idx::{ref.key}", 0)
        index = test_image_picker(f"idx::{ref.key}", n_test, cols[2])
        cols[3].button("Start from test image", on_click=lambda: set_code(ref, mu[index]), key=f"fromimg::{ref.key}",
                       width="stretch", help="Set the sliders to this test image's code (the mean code for a VAE).")


def shown_dims(ref: ModelRef, dim: int) -> list[int]:
    """The dimensions that get sliders: all of them, or up to MAX_SLIDERS chosen by the person."""
    if dim > MAX_SLIDERS:
        return st.multiselect(f"Dimensions with sliders (up to {MAX_SLIDERS} of {dim})", list(range(dim)),
                              default=list(range(MAX_SLIDERS)), max_selections=MAX_SLIDERS,
                              key=f"dims::{ref.key}", format_func=lambda i: f"z{i + 1}")
    return list(range(dim))


def most_active(mu: np.ndarray | None, dim: int) -> tuple[int, int]:
    """The two dimensions the test codes vary most along, in index order (so z1 is across when both are
    active, as on the latent map)."""
    if mu is None or dim < 2:
        return (0, min(1, dim - 1))
    first, second = sorted(int(d) for d in np.argsort(-mu.var(0))[:2])
    return first, second
