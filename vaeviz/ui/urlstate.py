"""Views that live in the URL: what a person would share (the model, the code, the endpoints, the
lecture step) is written into `st.query_params` on every run, and read back on the first run of a
page in a session, so a reload, or the address pasted into another browser, shows the same view.

A page declares its parameters with `bind(...)` before drawing its widgets: each `Param` knows how
to read its value from the page's state, how to put a value from the URL back, and how to parse and
check the text. `publish()` (at the end of a page, and of a fragment that changes bound state)
writes them all. A bad or stale value (a model that no longer exists, an index out of range) is
left out, with a short note on the page, and the page shows its default: never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import streamlit as st

PARAMS = "vaeviz_url_params"  # session_state: place -> {name: Param} (the app's and the page's)
RESTORED = "vaeviz_url_restored"  # session_state: places whose parameters were read from the URL
PAGE = "vaeviz_url_page"  # session_state: the page whose parameters the URL holds now
APP = "app"  # the place of the parameters every page shares (the sidebar's)


@dataclass(frozen=True)
class Param:
    """One value of a view in the URL."""

    name: str  # the query parameter
    get: Callable[[], Any]  # the value now (None: leave it out of the URL)
    set: Callable[[Any], None]  # put a value read from the URL into the page's state
    parse: Callable[[str], Any]  # text -> value; ValueError with a short reason for a bad one
    show: Callable[[Any], str] = str  # value -> text


def state(name: str, key: str, parse: Callable[[str], Any], show: Callable[[Any], str] = str,
          default: Any = None) -> Param:
    """A parameter kept in `st.session_state[key]` (a widget's key, usually); left out at `default`."""
    def get():
        value = st.session_state.get(key, default)
        return None if value == default else value

    def put(value):
        st.session_state[key] = value

    return Param(name, get, put, parse, show)


def choice(options: list, show: Callable[[Any], str] = str) -> Callable[[str], Any]:
    """A parser for one of `options`, written in the URL as `show(option)`."""
    by_text = {show(o): o for o in options}

    def parse(text: str):
        if text not in by_text:
            listed = ", ".join(list(by_text)[:6]) + (", ..." if len(by_text) > 6 else "")
            raise ValueError(f"is not one of the choices here ({listed})")
        return by_text[text]

    return parse


def whole(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError("is not a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"is out of range ({low:,} to {high:,})")
        return value

    return parse


def floats(length: int, limit: float = 1e3) -> Callable[[str], list[float]]:
    """A parser for `length` comma-separated finite numbers."""
    def parse(text: str) -> list[float]:
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            raise ValueError("is not a list of numbers") from None
        if len(values) != length:
            raise ValueError(f"has {len(values)} numbers; this model's code has {length}")
        if not all(abs(v) <= limit for v in values):  # also refuses nan and inf
            raise ValueError(f"holds a number that is not finite or beyond ±{limit:g}")
        return values

    return parse


def show_floats(values) -> str:
    return ",".join(f"{float(v):.3g}" for v in values)


def flag(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError("is not 0 or 1")
    return text == "1"


def bind(place: str, *params: Param) -> list[str]:
    """Declare this run's parameters of `place` (the app's, or a page's name); on the first run of the
    place in this session, take their values from the URL. Returns the notes for values left out."""
    registry = st.session_state.setdefault(PARAMS, {})
    registry[place] = {p.name: p for p in params}
    if place != APP:
        st.session_state[PAGE] = place
    restored = st.session_state.setdefault(RESTORED, set())
    if place in restored:
        return []
    restored.add(place)
    notes = []
    for p in params:
        raw = st.query_params.get(p.name)
        if raw is None:
            continue
        try:
            p.set(p.parse(raw))
        except ValueError as exc:
            notes.append(f"`{p.name}={raw[:40]}` {exc}; showing the default instead.")
    return notes


def note(notes: list[str]) -> None:
    """Say which values of the link were left out (a short note, not an error)."""
    if notes:
        st.info("This link's " + " ".join(notes), icon=":material/link:")


def publish() -> None:
    """Write the app's and the current page's parameters into the URL (only if they changed)."""
    registry = st.session_state.get(PARAMS, {})
    wanted: dict[str, str] = {}
    for place in (APP, st.session_state.get(PAGE)):
        for p in registry.get(place, {}).values():
            value = p.get()
            if value is not None:
                wanted[p.name] = p.show(value)
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
