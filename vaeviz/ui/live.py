"""The live decoder: a Streamlit component that runs a model's decoder in the browser.

Streamlit's own sliders report only on release, and each change is a round trip and a rerun. This
component (`st.components.v2`, mounted without an iframe) receives the decoder once, as data from
`vaeviz.webdecoder`, and decodes in JavaScript on every animation frame of a drag: sliders and a
2-D pad (`live_sliders`), a pad over a latent map (`live_pad`), or a scrubber along an
interpolation path (`live_scrubber`). When a drag ends, the code goes back to Python: the function
returns it on that run (a `Released`), and calls `on_release` first, in the callback phase, where
a page may still set its widgets' state. The JavaScript and CSS live in the web decoder's package
(`vaeviz/webdecoder/`) and are passed inline (no asset server, no CDN: it works offline).

Weights (about 1 MB per model) and map points go to the page once per session: they travel as
base64 "blobs" keyed by content hash, the page keeps them in a module-level cache that outlives
reruns, and `st.session_state[SENT]` remembers which hashes this session has sent. A page that
lacks one (after a reload, say) asks again through the component's "missing" trigger.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import streamlit as st

from .. import webdecoder
from ..figures.palette import PALETTE
from .cache import ModelRef, get_model

SENT = "vaeviz_live_sent"  # session_state: hashes of the blobs this session's page already holds
# Hashes remembered per session, newest last. The page keeps only its 12 latest blobs anyway
# (MAX_CACHED in component.js) and asks again for any it lacks; this bounds the session's record
# (every pad and every model adds hashes) without ever making the page go without.
MAX_SENT = 64


_COMPONENT = st.components.v2.component(
    "vaeviz_live_decoder", css=webdecoder.browser_css(), js=webdecoder.browser_module(),
)


@dataclass(frozen=True)
class LiveModel:
    """A decoder ready for the browser: its layers (small), its weights as base64, their hash."""

    hash: str
    label: str
    latent_dim: int
    layers: list
    image_shape: tuple[int, int, int]
    weights_b64: str

    def as_data(self) -> dict:
        spec = {"latent_dim": self.latent_dim, "image_shape": list(self.image_shape), "layers": self.layers}
        return {"hash": self.hash, "label": self.label, "spec": spec}


@dataclass(frozen=True)
class Released:
    """What the browser sends when a drag ends."""

    z: np.ndarray  # (D,) the code under the finger (the first model's, for the scrubber)
    xy: tuple[float, float] | None  # pad coordinates, when there is a pad
    t: float | None  # position along the path in [0, 1] (scrubber)
    zs: list[np.ndarray]  # every model's code (scrubber; else just [z])


@dataclass(frozen=True)
class PadFrame:
    """The pad's coordinate system: x = (z - origin) . directions[0], y = (z - origin) . directions[1].

    Dragging moves z within that plane only; every other coordinate of z stays as it was. With
    origin 0 and unit vectors the pad shows two latent dimensions; with a PCA's mean and two of
    its components it shows the PCA map, and dragging does what `Projection.inverse` does.
    """

    origin: np.ndarray  # (D,)
    directions: np.ndarray  # (2, D), orthonormal rows (a zero row for a 1-D latent)
    extent: tuple[float, float, float, float]  # x0, x1, y0, y1 of the visible square
    axis_titles: tuple[str, str]
    points: np.ndarray | None = None  # (N, 2) map coordinates drawn under the pad
    labels: np.ndarray | None = None  # (N,) class indices < 256, coloured as on every map (plots.PALETTE)
    classes: tuple[str, ...] = ()  # class names, for the legend under the pad
    rings: bool = False  # draw the prior's 1, 2, 3 sigma circles
    caption: str = ""


def pad_over_dims(latent_dim: int, dims: tuple[int, int | None], extent, *, points=None, labels=None,
                  classes: tuple[str, ...] = (), rings: bool = False, caption: str = "") -> PadFrame:
    """A pad over two latent coordinates (dims[1] may be None for a 1-D latent)."""
    directions = np.zeros((2, latent_dim))
    directions[0, dims[0]] = 1.0
    if dims[1] is not None:
        directions[1, dims[1]] = 1.0
    titles = (f"z{dims[0] + 1}", f"z{dims[1] + 1}" if dims[1] is not None else "")
    return PadFrame(np.zeros(latent_dim), directions, tuple(map(float, extent)), titles, points, labels,
                    tuple(classes), rings, caption)


def live_key(purpose: str, *parts: str) -> str:
    """A widget key for one live decoder: stable, and free of "__" (Streamlit's event delimiter)."""
    digest = hashlib.sha1("\0".join(parts).encode()).hexdigest()[:12]
    return f"vaeviz_live_{purpose}_{digest}"


# --- models ----------------------------------------------------------------------------------


@st.cache_resource(max_entries=16, show_spinner=False)
def _live_model(key: str, label: str, _model) -> tuple[LiveModel | None, str | None]:
    spec, reason = webdecoder.runnable(_model)
    if spec is None:
        return None, reason
    return LiveModel(spec["hash"], label, spec["latent_dim"], spec["layers"], tuple(spec["image_shape"]),
                     base64.b64encode(spec["weights"]).decode("ascii")), None


def browser_decoder(ref: ModelRef) -> tuple[LiveModel | None, str | None]:
    """(the model's decoder for the browser, None), or (None, why the browser cannot run it)."""
    return _live_model(ref.key, ref.label, get_model(ref))


# --- mounting --------------------------------------------------------------------------------


def _blob(array: np.ndarray, dtype: str) -> tuple[str, str]:
    raw = np.ascontiguousarray(array, dtype=dtype).tobytes()
    return hashlib.sha256(raw).hexdigest()[:20], base64.b64encode(raw).decode("ascii")


def _floats(values) -> list[float]:
    return [float(v) for v in np.asarray(values, np.float64).reshape(-1)]


def _pad_data(pad: PadFrame, blobs: dict[str, str]) -> dict:
    data = {"origin": _floats(pad.origin), "directions": [_floats(d) for d in pad.directions],
            "extent": [float(v) for v in pad.extent], "axis_titles": list(pad.axis_titles),
            "rings": pad.rings, "caption": pad.caption, "palette": list(PALETTE), "points": None, "labels": None,
            "classes": list(pad.classes)}
    if pad.points is not None and len(pad.points):
        points_hash, points_b64 = _blob(np.asarray(pad.points)[:, :2], "<f4")
        labels_hash, labels_b64 = _blob(np.asarray(pad.labels), "u1")
        blobs[points_hash], blobs[labels_hash] = points_b64, labels_b64
        data["points"], data["labels"] = points_hash, labels_hash
    return data


def _released(value) -> Released | None:
    if not isinstance(value, dict) or not isinstance(value.get("z"), list):
        return None
    z = np.asarray(value["z"], np.float64)
    zs = [np.asarray(v, np.float64) for v in value.get("zs") or [value["z"]]]
    xy = tuple(float(v) for v in value["xy"]) if isinstance(value.get("xy"), list) else None
    t = float(value["t"]) if isinstance(value.get("t"), (int, float)) else None
    return Released(z, xy, t, zs)


def _on_release(key: str, callback: Callable[[Released], None] | None) -> None:
    released = _released((st.session_state.get(key) or {}).get("release"))
    if callback is not None and released is not None:
        callback(released)


def _sent() -> dict[str, None]:
    """This session's record of sent hashes: an insertion-ordered dict used as a bounded set."""
    sent = st.session_state.get(SENT)
    if not isinstance(sent, dict):
        sent = st.session_state[SENT] = {}
    return sent


def _on_missing(key: str) -> None:
    """The page lacks some blobs (a reload, a lost message): send them again on this run."""
    missing = (st.session_state.get(key) or {}).get("missing") or []
    sent = _sent()
    for digest in missing:
        sent.pop(digest, None)


def _mount(data: dict, blobs: dict[str, str], *, key: str, on_release: Callable[[Released], None] | None,
           height: int | str = "content") -> Released | None:
    sent = _sent()
    data["blobs"] = {h: b for h, b in blobs.items() if h not in sent}
    for digest in blobs:
        sent.pop(digest, None)
        sent[digest] = None  # newest last
    while len(sent) > MAX_SENT:
        del sent[next(iter(sent))]
    result = _COMPONENT(key=key, data=data, height=height,
                        on_release_change=partial(_on_release, key, on_release),
                        on_missing_change=partial(_on_missing, key))
    return _released(result.get("release"))


def live_sliders(model: LiveModel, z: np.ndarray, *, ranges: np.ndarray, dims: list[int], key: str,
                 pad: PadFrame | None = None, on_release: Callable[[Released], None] | None = None,
                 image_px: int = 280, pad_px: int = 300, note: str = "") -> Released | None:
    """Sliders over the latent dimensions `dims` (ranges (D, 2)), and an optional 2-D pad beside them."""
    blobs = {model.hash: model.weights_b64}
    data = {"mode": "sliders", "models": [model.as_data()], "z": _floats(z), "image_px": image_px,
            "pad_px": pad_px, "note": note,
            "sliders": {"dims": [int(i) for i in dims], "ranges": [_floats(ranges[i]) for i in dims],
                        "labels": [f"z{i + 1}" for i in dims]},
            "pad": _pad_data(pad, blobs) if pad is not None else None}
    return _mount(data, blobs, key=key, on_release=on_release)


def live_pad(model: LiveModel, z: np.ndarray, pad: PadFrame, *, key: str,
             on_release: Callable[[Released], None] | None = None, image_px: int = 280, pad_px: int = 440,
             note: str = "") -> Released | None:
    """A 2-D pad (over a latent map when `pad.points` are given) with the decoded image beside it."""
    blobs = {model.hash: model.weights_b64}
    data = {"mode": "pad", "models": [model.as_data()], "z": _floats(z), "image_px": image_px,
            "pad_px": pad_px, "note": note, "pad": _pad_data(pad, blobs)}
    return _mount(data, blobs, key=key, on_release=on_release)


def live_scrubber(models: list[LiveModel], ends: list[tuple[np.ndarray, np.ndarray]], how: str, *, ticks: int,
                  key: str, t: float = 0.0, on_release: Callable[[Released], None] | None = None,
                  image_px: int = 196, note: str = "") -> Released | None:
    """A scrubber along the path from ends[i][0] to ends[i][1] ("linear" or "spherical"), one image per model.

    `ticks` marks the steps of the server-side strip (both ends included).
    """
    blobs = {m.hash: m.weights_b64 for m in models}
    data = {"mode": "scrubber", "models": [m.as_data() for m in models], "image_px": image_px, "note": note,
            "scrubber": {"ends": [[_floats(a), _floats(b)] for a, b in ends], "how": how,
                         "ticks": int(ticks), "t": float(t)}}
    return _mount(data, blobs, key=key, on_release=on_release)
