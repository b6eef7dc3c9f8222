"""The live decoder in headless Chromium.

Parity: for every shipped checkpoint (and a few built models, so conv, PCA and RGB decoders are
covered whatever is shipped, and a VAE imported from ONNX, for leaky ReLU, tanh and the scalar
affine), the JavaScript forward pass gives PyTorch's image within 1e-4 on 100 seeded random codes,
and the canvas shows those pixels. Interaction, through the real app: a drag on the pad changes the
image while the mouse is still down, the code arrives in Python when it is released, the scrubber
does the same on the interpolation page, and nothing is fetched from anywhere but the app itself.
"""

from __future__ import annotations

import itertools
import json
import re
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
from playwright.sync_api import expect

from vaeviz import ModelConfig, build_model, webdecoder
from vaeviz.config import conv_channels_for
from vaeviz.checkpoint import SHIPPED_DIR, find_checkpoints, load_checkpoint

from .support.browser_fixtures import require_chromium
from .support.browser import (
    exceptions_shown,
    wait_for_app,
)
from .support.live_browser import browser_decode, browser_draw, open_module_page
from .support.onnx_models import imported_mixed_vae

pytestmark = pytest.mark.browser

require_chromium()

TOLERANCE = 1e-4  # the bar: max absolute difference per pixel
N_CODES = 100


def _built(kind: str, cfg: ModelConfig):
    model = build_model(kind, cfg, seed=0).eval()
    if kind == "pca":
        torch.manual_seed(0)
        model.components.normal_(std=0.1)
        model.mean.uniform_()
    return model


def _imported():
    with tempfile.TemporaryDirectory() as folder:
        return imported_mixed_vae(Path(folder))[0]


BUILT = {
    "built-conv-vae": lambda: _built("vae", ModelConfig(arch="conv", latent_dim=16)),
    "built-conv-rgb-ae": lambda: _built("ae", ModelConfig(arch="conv", latent_dim=3, channels=3, height=32, width=32,
                                                          conv_channels=(8, 16, 8))),
    "built-pca": lambda: _built("pca", ModelConfig(latent_dim=8)),
    # a folder's 64 px colour pictures: four stride-2 stages, as `vaeviz train --image-size 64 --channels 3` builds
    "built-conv-rgb64-vae": lambda: _built("vae", ModelConfig(arch="conv", latent_dim=8, channels=3, height=64, width=64,
                                                              conv_channels=conv_channels_for(64), likelihood="gaussian")),
    "imported-onnx-vae": _imported,
}
SHIPPED = {p.stem: p for p in find_checkpoints([SHIPPED_DIR])}


@pytest.fixture(scope="module")
def module_page(browser):
    page = open_module_page(browser)
    yield page
    page.close()


def _model(name: str):
    return load_checkpoint(SHIPPED[name]) if name in SHIPPED else BUILT[name]()


@pytest.mark.parametrize("name", [*SHIPPED, *BUILT])
def test_browser_decoder_matches_pytorch(module_page, name):
    model = _model(name)
    spec = webdecoder.decoder_spec(model)
    codes = np.random.default_rng(5).standard_normal((N_CODES, model.cfg.latent_dim)).astype(np.float32) * 2.0
    with torch.no_grad():
        expected = model.decode(torch.from_numpy(codes)).numpy()
    got = browser_decode(module_page, spec, codes)
    diff = float(np.abs(got - expected).max())
    print(f"{name}: max |browser - pytorch| = {diff:.2e}")
    assert diff <= TOLERANCE, f"{name}: max abs difference {diff:.2e}"


@pytest.mark.parametrize("name", [*list(SHIPPED)[:1], "built-conv-rgb-ae"])
def test_canvas_shows_the_decoded_pixels(module_page, name):
    model = _model(name)
    code = np.random.default_rng(1).standard_normal(model.cfg.latent_dim).astype(np.float32)
    with torch.no_grad():
        image = model.decode(torch.from_numpy(code)[None])[0].numpy()  # (C, H, W)
    rgba = browser_draw(module_page, webdecoder.decoder_spec(model), code).astype(int)
    want = np.round(image * 255).astype(int)
    rgb = np.repeat(want, 3, axis=0) if want.shape[0] == 1 else want
    assert np.abs(rgba[..., :3].transpose(2, 0, 1) - rgb).max() <= 1
    assert (rgba[..., 3] == 255).all()


# --- through the app -------------------------------------------------------------------------


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    p.requests_seen = []
    p.on("request", lambda r: p.requests_seen.append(r.url))
    yield p
    context.close()


CANVAS_SUM_JS = """(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s; }"""


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+\.\d+", text)]


def _only_the_app(page, app_url: str) -> None:
    """Nothing was fetched from a CDN or any other host: the component works offline."""
    app = urlparse(app_url).netloc
    foreign = [u for u in page.requests_seen if urlparse(u).scheme in ("http", "https", "ws", "wss")
               and urlparse(u).netloc != app]
    assert foreign == []


def _wait_for_first_frame(page) -> None:
    """The component is in a shadow root (page JS cannot see it; Playwright's locators can)."""
    expect(page.locator("[data-testid='live-decoder']").first).to_have_attribute(
        "data-frames", re.compile(r"^[1-9]"), timeout=30_000)


def _drag(page, locator, path: list[tuple[float, float]], *, steps: int = 6) -> None:
    """Press, move through `path` (fractions of the box), and leave the mouse down."""
    box = locator.bounding_box()
    points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in path]
    page.mouse.move(*points[0])
    page.mouse.down()
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        for k in range(1, steps + 1):
            page.mouse.move(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps)
            page.wait_for_timeout(20)


def test_dragging_the_pad_redraws_at_once_and_tells_python_on_release(page, app_url):
    page.goto(f"{app_url}/explorer")
    wait_for_app(page)
    page.locator("[data-testid='stMain'] [data-testid='stButtonGroup']").first \
        .get_by_text("Live (in your browser)", exact=True).click()
    pad = page.locator("[data-testid='live-pad']")
    pad.wait_for(timeout=30_000)
    wait_for_app(page)
    image = page.locator("[data-testid='live-image']").first
    _wait_for_first_frame(page)
    before = image.evaluate(CANVAS_SUM_JS)
    root = page.locator("[data-testid='live-decoder']")
    frames_before = int(root.get_attribute("data-frames"))

    _drag(page, pad, [(0.5, 0.5), (0.15, 0.2), (0.85, 0.8)])
    during = image.evaluate(CANVAS_SUM_JS)
    frames_during = int(root.get_attribute("data-frames"))
    assert during != before  # the image changed while the mouse is still down
    assert frames_during - frames_before >= 5  # redrawn along the way, not once at the end
    assert root.get_attribute("data-released") is None  # nothing sent to Python yet
    page.mouse.up()

    page.wait_for_function("() => document.querySelector('.st-key-live_received')?.innerText.includes('received')",
                           timeout=30_000)
    wait_for_app(page)
    sent = json.loads(root.get_attribute("data-z"))  # the code the browser let go of
    received = _numbers(page.inner_text(".st-key-live_received"))
    assert received == pytest.approx(sent, abs=0.0051)  # shown with 2 decimals
    assert received != pytest.approx([0.0] * len(received), abs=0.05)
    assert exceptions_shown(page) == []
    # The server-side sliders moved to the same code.
    page.locator("[data-testid='stMain'] [data-testid='stButtonGroup']").first \
        .get_by_text("On the server", exact=True).click()
    wait_for_app(page)
    values = page.locator("[data-testid='stMain'] [data-testid='stSliderThumbValue']").all_inner_texts()
    assert [float(v) for v in values[:2]] == pytest.approx(sent[:2], abs=0.051)  # sliders step 0.05
    _only_the_app(page, app_url)


def test_pad_over_the_latent_map(page, app_url):
    page.goto(f"{app_url}/latent_map")
    wait_for_app(page)
    pad = page.locator("[data-testid='live-pad']")
    pad.scroll_into_view_if_needed()
    _wait_for_first_frame(page)
    image = page.locator("[data-testid='live-image']").first
    before = image.evaluate(CANVAS_SUM_JS)
    _drag(page, pad, [(0.5, 0.5), (0.9, 0.1)])  # towards a corner, where no test code lies
    assert image.evaluate(CANVAS_SUM_JS) != before
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('.st-key-map_live_received')?.innerText.includes('received')",
                           timeout=30_000)
    wait_for_app(page)
    assert page.locator(".st-key-map_live_received [data-testid='stImage']").count() >= 1  # nearest test images
    assert exceptions_shown(page) == []
    _only_the_app(page, app_url)


def test_scrubbing_the_interpolation(page, app_url):
    page.goto(f"{app_url}/interpolate")
    wait_for_app(page)
    scrubber = page.locator("[data-testid='live-scrubber']")
    scrubber.scroll_into_view_if_needed()
    _wait_for_first_frame(page)
    images = page.locator("[data-testid='live-image']")
    assert images.count() == 2  # the AE and the VAE, side by side
    before = [images.nth(i).evaluate(CANVAS_SUM_JS) for i in range(2)]
    _drag(page, scrubber, [(0.5, 0.5), (0.02, 0.5)])
    during = [images.nth(i).evaluate(CANVAS_SUM_JS) for i in range(2)]
    assert during[0] != before[0] and during[1] != before[1]
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('.st-key-interp_live_received')?.innerText.includes('t =')",
                           timeout=30_000)
    t = _numbers(page.inner_text(".st-key-interp_live_received"))[0]
    assert 0.0 <= t < 0.1
    assert exceptions_shown(page) == []
    _only_the_app(page, app_url)
