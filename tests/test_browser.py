"""A real browser (Playwright driving Debian's Chromium) uses the app as a person would: opens
every page, moves a slider, draws on the canvas, uploads a file; no exception shows and the images
are not blank."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from .support.browser_fixtures import require_chromium
from .support.browser import PAGES, exceptions_shown, image_stats, main_images, wait_for_app

pytestmark = pytest.mark.browser

require_chromium()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    yield p
    context.close()


def assert_images_not_blank(page, at_least: int = 1) -> None:
    imgs = main_images(page)
    assert len(imgs) >= at_least
    for img in imgs:
        stats = image_stats(img)
        assert stats is not None and stats["std"] > 1.0, stats  # some contrast: not a flat colour


@pytest.mark.parametrize("slug, title", PAGES)
def test_every_page_opens_without_exception(page, app_url, slug, title):
    page.goto(f"{app_url}/{slug}")
    wait_for_app(page, timeout=180)  # the first Interpolate of a server measures 500 pairs
    assert page.inner_text("[data-testid='stMain'] h1").strip() == title
    assert exceptions_shown(page) == []
    if slug in ("", "interpolate"):
        assert_images_not_blank(page)


def test_moving_a_slider_changes_the_image(page, app_url):
    page.goto(f"{app_url}/explorer")
    wait_for_app(page)
    img = main_images(page)[0]
    before = img.get_attribute("src")
    thumb = page.query_selector_all("[data-testid='stMain'] [data-testid='stSlider'] input[type='range']")[0]
    thumb.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("(before) => { const i = document.querySelector(\"[data-testid='stMain'] "
                           "[data-testid='stImage'] img\"); return i && i.getAttribute('src') !== before; }",
                           arg=before, timeout=15_000)
    wait_for_app(page)
    assert exceptions_shown(page) == []
    assert_images_not_blank(page)


def _reconstructions(page) -> int:
    return page.locator("[data-testid='stMain'] [data-testid='stImage']", has_text="reconstruction").count()


def test_drawing_a_stroke_gives_reconstructions(page, app_url):
    page.goto(f"{app_url}/draw")
    wait_for_app(page)
    canvas = page.locator("[data-testid='stMain'] canvas").last
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + 0.35 * box["width"], y0 + 0.2 * box["height"])
    page.mouse.down()
    for t in range(1, 21):  # a "7": across the top, then down to the left
        if t <= 8:
            page.mouse.move(x0 + (0.35 + 0.3 * t / 8) * box["width"], y0 + 0.2 * box["height"])
        else:
            page.mouse.move(x0 + (0.65 - 0.25 * (t - 8) / 12) * box["width"], y0 + (0.2 + 0.6 * (t - 8) / 12) * box["height"])
    page.mouse.up()
    page.wait_for_function("() => Array.from(document.querySelectorAll(\"[data-testid='stImage']\"))"
                           ".some(e => e.innerText.includes('reconstruction'))", timeout=30_000)
    wait_for_app(page)
    assert exceptions_shown(page) == []
    assert _reconstructions(page) == 2
    assert_images_not_blank(page, at_least=3)


def _png(draw_digit: bool = True) -> bytes:
    img = Image.new("RGB", (240, 320), "white")
    if draw_digit:
        ImageDraw.Draw(img).ellipse([60, 60, 180, 260], outline="black", width=24)  # a "0"
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _upload_on_draw_page(page, app_url: str, path: Path) -> None:
    page.goto(f"{app_url}/draw")
    wait_for_app(page)
    page.locator("[data-testid='stMain'] [data-testid='stButtonGroup']").get_by_text("Upload", exact=True).click()
    wait_for_app(page)
    page.set_input_files("[data-testid='stMain'] input[type='file']", str(path))


def test_uploading_a_file_gives_reconstructions(page, app_url, tmp_path):
    path = tmp_path / "zero.png"
    path.write_bytes(_png())
    _upload_on_draw_page(page, app_url, path)
    page.wait_for_function("() => Array.from(document.querySelectorAll(\"[data-testid='stImage']\"))"
                           ".some(e => e.innerText.includes('reconstruction'))", timeout=30_000)
    wait_for_app(page)
    assert exceptions_shown(page) == []
    assert _reconstructions(page) == 2
    assert_images_not_blank(page, at_least=3)


def test_a_blank_upload_gets_a_message(page, app_url, tmp_path):
    path = tmp_path / "blank.png"
    path.write_bytes(_png(draw_digit=False))
    _upload_on_draw_page(page, app_url, path)
    page.wait_for_selector("[data-testid='stAlertContentError'], [data-testid='stAlert']", timeout=30_000)
    wait_for_app(page)
    assert exceptions_shown(page) == []
    assert _reconstructions(page) == 0


CURVE_POINTS_JS = """() => {
  const gd = document.querySelector('.st-key-trainer_curves .js-plotly-plot');
  if (!gd || !gd.data) return 0;
  return gd.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
}"""


def test_trainer_run_shows_curves_that_update(page, app_url):
    page.goto(f"{app_url}/trainer")
    wait_for_app(page)
    page.locator(".st-key-trainer_start button").first.click()
    page.wait_for_function(f"() => ({CURVE_POINTS_JS})() > 0", timeout=90_000)
    first = page.evaluate(CURVE_POINTS_JS)
    page.wait_for_function(f"(n) => ({CURVE_POINTS_JS})() > n", arg=first, timeout=90_000)
    assert exceptions_shown(page) == []
    page.locator(".st-key-trainer_stop button").first.click()
    page.wait_for_selector(".st-key-trainer_start button", timeout=60_000)  # idle again: Start is back
    assert exceptions_shown(page) == []
