"""Lecture: the story of the lecture notes, one step a screen, each a sentence or two over a live view
of the shipped models. Previous and Next walk it; each step has its own address (?step=...), so a
lecturer can open any of them directly. The steps themselves are in `vaeviz.ui.lecture`."""

from __future__ import annotations

import streamlit as st

from vaeviz.ui import lecture, urlstate
from vaeviz.ui.sidebar import selected

slugs = [s.slug for s in lecture.STEPS]


def go(offset: int) -> None:
    here = slugs.index(st.session_state["lecture_step"])
    st.session_state["lecture_step"] = slugs[max(0, min(len(slugs) - 1, here + offset))]


selected()  # first: it leaves Streamlit's legacy pages mode (a rerun) if a fresh server started here
st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 3.6rem; } "  # one step, one screen
        "[data-testid='stMain'] h1 { font-size: 2rem; padding: 0.4rem 0 0.2rem; }</style>")
urlstate.note(urlstate.bind("lecture", urlstate.state("step", "lecture_step", urlstate.choice(slugs))))
st.session_state.setdefault("lecture_step", slugs[0])
step = lecture.BY_SLUG[st.session_state["lecture_step"]]
number = slugs.index(step.slug) + 1

nav = st.columns([1, 4, 1], vertical_alignment="center")
nav[0].button("Previous", key="lecture_prev", icon=":material/arrow_back:", on_click=go, args=(-1,),
              disabled=number == 1, width="stretch")
nav[1].selectbox("Step", slugs, key="lecture_step", label_visibility="collapsed",
                 format_func=lambda s: f"{slugs.index(s) + 1}. {lecture.BY_SLUG[s].title}")
nav[2].button("Next", key="lecture_next", icon=":material/arrow_forward:", on_click=go, args=(1,),
              disabled=number == len(slugs), width="stretch")
st.title(f"{number}. {step.title}", anchor=False)
lecture.show(step)
