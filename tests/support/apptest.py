"""Opening the app under `streamlit.testing.v1.AppTest`, as the page tests all do.

`open_app("pages/zoo.py")` runs `app.py` (which draws the shared sidebar), switches to the page and
runs it, and checks nothing raised: the start every page test needs. A session's training job lives
on the server's board under the session's owner; `job_of(at)` finds it, as a reload would.
"""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent.parent
SESSION_MODELS = "vaeviz_session_models"


def open_app(page: str | None = None, *, timeout: float = 120, token: str | None = None) -> AppTest:
    """The app on `page`; `token` makes the session the browser with that owner token (a reload)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    if token is not None:
        from vaeviz.ui.identity import REPORTED

        at.session_state[REPORTED] = token
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    return at


def run_until(at: AppTest, predicate, timeout: float = 180.0) -> None:
    """Rerun the page (as its polling fragment does) until predicate() holds, then once more."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        at.run()
        assert not at.exception, at.exception
        if predicate():
            at.run()  # the poll after the change: what a person sees next
            assert not at.exception, at.exception
            return
        assert time.monotonic() < deadline, "timed out waiting for the training job"
        time.sleep(0.3)


def start_sweep(at: AppTest, betas: str, *, images: int = 1000, epochs: int = 1) -> None:
    """On the Trainer: a β sweep over `betas` on the first `images` images, started."""
    at.button_group(key="trainer_mode").set_value("β sweep")
    at.run()
    at.text_input(key="sweep_betas").set_value(betas)
    at.select_slider(key="sweep_images").set_value(images)
    at.number_input(key="sweep_epochs").set_value(epochs)
    at.button(key="trainer_start").click()


def token_of(at: AppTest) -> str:
    from vaeviz.ui.identity import REPORTED

    return at.session_state[REPORTED]


def job_of(at: AppTest):
    """This session's training job on the server's board (None if it has none)."""
    from vaeviz.ui.identity import browser_owner
    from vaeviz.ui.training import board

    return board().job_for(browser_owner(token_of(at)).id)


def session_labels(at: AppTest) -> list[str]:
    """Labels of the models this session holds in memory (trained or uploaded here)."""
    if SESSION_MODELS not in at.session_state:
        return []
    return [ref.label for ref in at.session_state[SESSION_MODELS].refs()]


def shown(text: str) -> str:
    """A message as a person reads it: the app escapes Markdown in messages quoting file names."""
    return re.sub(r"\\(.)", r"\1", text)
