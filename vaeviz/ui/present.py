"""Presentation mode: for the back row of a lecture hall.

A toggle in the sidebar (and `?present=1` in the URL) hides the sidebar, Streamlit's toolbar and the
pages' secondary controls, and makes text and pictures larger. It only adds CSS that scales what
the theme already draws, so it works in the dark theme as in the light one.
"""

from __future__ import annotations

import streamlit as st

KEY = "present"  # session_state (and the URL): presentation mode on

_CSS = """
<style>
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"],
[data-testid="stToolbar"] { display: none !important; }
[data-testid="stMainBlockContainer"] { padding-top: 1.2rem; max-width: 100%; }
[data-testid="stMain"] p, [data-testid="stMain"] li, [data-testid="stMain"] label,
[data-testid="stMain"] [data-testid="stCaptionContainer"] { font-size: 1.3rem !important; line-height: 1.45; }
[data-testid="stMain"] h1 { font-size: 2.6rem !important; }
[data-testid="stMain"] h2, [data-testid="stMain"] h3 { font-size: 1.9rem !important; }
</style>
"""


def presenting() -> bool:
    return bool(st.session_state.get(KEY, False))


def scale(pixels: int) -> int:
    """A picture's width for the screen: larger when presenting."""
    return int(pixels * 1.5) if presenting() else pixels


def apply() -> None:
    """Add the presentation CSS (and a way out, since the sidebar with the toggle is hidden)."""
    if not presenting():
        return
    st.html(_CSS)
    st.button("Leave presentation mode", key="present_leave", icon=":material/close_fullscreen:",
              on_click=lambda: st.session_state.update({KEY: False}))
