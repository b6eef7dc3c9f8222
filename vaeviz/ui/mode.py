"""The server's mode: `VAEVIZ_MODE=explore` serves the app without training, checkpoint uploads, saves
or deletes (for public servers, and for the lecture itself); anything else, or nothing, is the full app.
Pictures of digits can still be drawn and uploaded: they are encoded, never kept."""

from __future__ import annotations

import os

MODES = ("full", "explore")


def mode() -> str:
    value = os.environ.get("VAEVIZ_MODE", "full").strip().lower() or "full"
    if value not in MODES:
        raise ValueError(f"VAEVIZ_MODE must be one of {', '.join(MODES)}, got {value!r}")
    return value


def exploring() -> bool:
    """True on an explore-only server: nothing can be trained, uploaded, saved or deleted."""
    return mode() == "explore"
