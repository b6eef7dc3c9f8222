"""Your own colour pictures in a real browser: a conv VAE trained by `vaeviz train` on a generated folder
of coloured shapes (32 px, RGB) opens on every page without an exception, and a pure red upload reaches
the screen red (no channel swapped between PIL, PyTorch, PNG and the browser)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from PIL import Image

from .conftest import ROOT
from .support.browser import exceptions_shown, main_images, running_app, wait_for_app
from .support.browser_fixtures import require_chromium
from .support.folders import make_shapes

pytestmark = pytest.mark.browser

require_chromium()

LABEL = "shapes-32px (saved)"
PAGES = [("explorer", "Latent explorer"), ("latent_map", "Latent map"), ("interpolate", "Interpolate"),
         ("draw", "Draw and encode"), ("zoo", "Model zoo"), ("?step=sliders", None)]

CHANNEL_MEANS_JS = """
(img) => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
  return sum.map((s) => s / (d.length / 4));
}
"""


@pytest.fixture(scope="module")
def colour_app(tmp_path_factory, data_root):
    root = tmp_path_factory.mktemp("colour")
    make_shapes(root / "shapes", per_class=30)
    user = root / "user"
    user.mkdir()
    cmd = [sys.executable, "-m", "vaeviz", "train", "--dataset", f"folder:{root / 'shapes'}", "--image-size", "32",
           "--channels", "3", "--arch", "conv", "--latent-dim", "4", "--epochs", "3", "--quiet",
           "--out", str(user / "shapes-32px.safetensors")]
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    env = {"VAEVIZ_USER_DIR": str(user), "VAEVIZ_DATA_DIR": str(data_root), "VAEVIZ_FOLDER_ROOTS": str(root)}
    with running_app(env=env) as url:
        yield url, root


@pytest.mark.parametrize("path, title", PAGES, ids=[p for p, _ in PAGES])
def test_every_page_shows_the_colour_model(browser, colour_app, path, title):
    url, _ = colour_app
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    try:
        sep = "&" if "?" in path else "?"
        page.goto(f"{url}/{path}{sep}model={LABEL.replace(' ', '%20')}")
        wait_for_app(page, timeout=120)
        assert exceptions_shown(page) == []
        if title:
            assert page.inner_text("[data-testid='stMain'] h1").strip() == title
        assert page.locator("[data-testid='stSidebar']").get_by_text("shapes/ · 32 px colour").count() >= 1
        assert not page.query_selector_all("[data-testid='stMain'] [data-testid='stAlertContentError']")
    finally:
        page.close()


def upload_on_draw(browser, url: str, picture) -> object:
    """A new page on Draw and encode with the colour model, `picture` uploaded; no exception shown."""
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{url}/draw?model={LABEL.replace(' ', '%20')}")
    wait_for_app(page, timeout=120)
    page.set_input_files("[data-testid='stMain'] input[type=file]", str(picture))
    wait_for_app(page, timeout=60)
    assert exceptions_shown(page) == []
    return page


def test_a_red_upload_reaches_the_screen_red(browser, colour_app, tmp_path):
    url, _ = colour_app
    red = tmp_path / "red.png"
    Image.new("RGB", (50, 40), (230, 20, 20)).save(red)
    page = upload_on_draw(browser, url, red)
    try:
        images = main_images(page)
        assert len(images) >= 2, "the upload as the model sees it, and a reconstruction"
        images[0].evaluate("(i) => i.decode ? i.decode().catch(() => null) : null")
        r, g, b = images[0].evaluate(CHANNEL_MEANS_JS)
        assert r > 200 and g < 40 and b < 40, (r, g, b)
    finally:
        page.close()


def test_bad_pictures_in_an_upload_get_a_message(browser, colour_app, tmp_path):
    url, _ = colour_app
    broken = tmp_path / "broken.png"
    buf = io.BytesIO()
    Image.new("RGB", (50, 40), "blue").save(buf, "PNG")
    broken.write_bytes(buf.getvalue()[:60])
    page = upload_on_draw(browser, url, broken)
    try:
        assert "truncated or corrupt" in page.inner_text("[data-testid='stMain']")
    finally:
        page.close()
