"""Opening the app under `streamlit.testing.v1.AppTest`, as the page tests all do.

`open_app("pages/zoo.py")` runs `app.py` (which draws the shared sidebar), switches to the page and
runs it, and checks nothing raised: the start every page test needs.
"""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


def open_app(page: str | None = None, *, timeout: float = 120) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    return at


def shown(text: str) -> str:
    """A message as a person reads it: the app escapes Markdown in messages quoting file names."""
    return re.sub(r"\\(.)", r"\1", text)
