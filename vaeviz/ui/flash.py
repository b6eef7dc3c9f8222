"""One-shot messages: set in a callback (or before a rerun), shown once on the next run of the page.

A callback runs before the page is drawn and cannot draw into it, so it leaves its message here;
the page calls `show` where messages belong, and each is shown once.
"""

from __future__ import annotations

import streamlit as st

FLASHES = "vaeviz_flashes"  # session_state: [(place, kind, text)]
KINDS = ("success", "info", "warning", "error")


def flash(kind: str, text: str, place: str = "page") -> None:
    """Leave a message of `kind` (success, info, warning, error) for `place` (a page or panel name)."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    st.session_state.setdefault(FLASHES, []).append((place, kind, text))


def show(place: str = "page", container=None, *, toast: bool = False) -> None:
    """Show (and forget) the messages left for `place`; `toast` also pops successes up in a corner."""
    pending = st.session_state.get(FLASHES, [])
    mine = [f for f in pending if f[0] == place]
    if not mine:
        return
    st.session_state[FLASHES] = [f for f in pending if f[0] != place]
    target = container if container is not None else st
    for _, kind, text in mine:
        getattr(target, kind)(text)
        if toast and kind == "success":
            st.toast(text, icon=":material/check_circle:")  # seen wherever the page is scrolled
