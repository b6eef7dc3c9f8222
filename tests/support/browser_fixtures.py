"""The fixtures real-browser test modules share (they reach every test through `pytest_plugins`):
`browser` (Debian's Chromium through Playwright, one per module) and `app_url` (a fresh
`streamlit run app.py` with a temporary user folder, one per module). `require_chromium()` skips a
module without a browser, or fails it under CI, where .ci/run should have installed one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .browser import CHROMIUM, launch_browser, running_app


def require_chromium() -> None:
    """Call at a browser test module's top."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            raise RuntimeError(f"{CHROMIUM} is missing: .ci/run should have installed Debian's chromium")
        pytest.skip(f"no browser at {CHROMIUM}", allow_module_level=True)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, data_root):
    env = {"VAEVIZ_USER_DIR": str(tmp_path_factory.mktemp("user")), "VAEVIZ_DATA_DIR": str(data_root)}
    with running_app(env=env) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with launch_browser() as b:
        yield b
