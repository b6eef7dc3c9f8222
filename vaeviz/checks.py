"""Checks of values read from files or typed by a person, with messages a person reads (config, netspec)."""

from __future__ import annotations

from typing import Any


def shown(value: Any, limit: int = 40) -> str:
    """A value for an error message, cut to `limit` characters: values may come from a hostile file."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def whole(name: str, value: Any, low: int, high: int) -> int:
    """`value` if it is a whole number (not a bool) in [low, high], else ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {shown(value)}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {shown(value)}")
    return value
