"""In a real browser: every lecture step opens at its own address without an exception, and a view
(model, code, interpolation pair) copied from the address bar into a fresh browser shows the same
model and the same images. Presentation mode hides the sidebar, in the light and the dark theme."""

from __future__ import annotations


import pytest

from vaeviz.ui.lecture import STEPS

from .support.browser_fixtures import require_chromium
from .support.browser import exceptions_shown, main_images, wait_for_app

pytestmark = pytest.mark.browser

require_chromium()


def fresh_page(browser, **options):
    """A page in a new browser context: no cookies, no storage, as another person's browser."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, **options)
    return context, context.new_page()


@pytest.mark.parametrize("number, step", list(enumerate(STEPS, start=1)), ids=[s.slug for s in STEPS])
def test_every_lecture_step_opens_at_its_address(browser, app_url, number, step):
    context, page = fresh_page(browser)
    try:
        page.goto(f"{app_url}/?step={step.slug}")
        wait_for_app(page, timeout=90)
        assert page.inner_text("[data-testid='stMain'] h1").strip() == f"{number}. {step.title}"
        assert exceptions_shown(page) == []
        assert not page.query_selector_all("[data-testid='stMain'] [data-testid='stAlertContentWarning']"), \
            "a step warned (a missing model?)"
    finally:
        context.close()


def image_sources(page) -> list[str]:
    """The images of the main area by content: Streamlit names a media file after a hash of its bytes."""
    return [img.get_attribute("src").split("?")[0].rsplit("/", 1)[-1] for img in main_images(page)]


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the select box labelled `label` (a react-aria combo box: type, then click)."""
    box = page.get_by_label(label, exact=True)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app(page)


def test_a_copied_address_shows_the_same_view_in_a_fresh_browser(browser, app_url):
    context, page = fresh_page(browser)
    try:
        page.goto(f"{app_url}/explorer")
        wait_for_app(page)
        choose(page, "Model", "mnist-vae-mlp-16")
        page.get_by_role("button", name="Random from prior").click()
        wait_for_app(page)
        page.wait_for_function("() => location.search.includes('z=')", timeout=15_000)
        explorer_url, explorer_images = page.url, image_sources(page)
        assert "model=mnist-vae-mlp-16" in explorer_url and explorer_images
        page.get_by_role("link", name="Interpolate").click()
        wait_for_app(page, timeout=90)
        page.get_by_role("button", name="Another pair").click()
        wait_for_app(page, timeout=90)
        page.wait_for_function("() => location.search.includes('i=')", timeout=15_000)
        interp_url, interp_images = page.url, image_sources(page)
        sliders = page.get_by_label("Model", exact=True).input_value()
    finally:
        context.close()
    assert sliders == "mnist-vae-mlp-16"
    for url, images in ((explorer_url, explorer_images), (interp_url, interp_images)):
        context, page = fresh_page(browser)
        try:
            page.goto(url)
            wait_for_app(page, timeout=90)
            assert page.get_by_label("Model", exact=True).input_value() == "mnist-vae-mlp-16"
            assert image_sources(page)[: len(images)] == images, url  # the same pictures, byte for byte
            assert exceptions_shown(page) == []
        finally:
            context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_presentation_mode_hides_the_sidebar_and_enlarges_the_text(browser, app_url, scheme):
    context, page = fresh_page(browser, color_scheme=scheme)
    try:
        page.goto(f"{app_url}/?step=prior")
        wait_for_app(page)
        normal = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector("
                               "\"[data-testid='stMain'] p\")).fontSize)")
        assert page.locator("[data-testid='stSidebar']").is_visible()
        page.goto(f"{app_url}/?step=prior&present=1")
        wait_for_app(page)
        assert not page.locator("[data-testid='stSidebar']").is_visible()
        larger = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector("
                               "\"[data-testid='stMain'] p\")).fontSize)")
        assert larger > normal * 1.15
        background = page.evaluate("() => getComputedStyle(document.querySelector('.stApp')).backgroundColor")
        dark = background not in ("rgb(255, 255, 255)",)
        assert dark == (scheme == "dark"), background  # the theme's own colours, not ours
        page.get_by_role("button", name="Leave presentation mode").click()
        wait_for_app(page)
        assert page.locator("[data-testid='stSidebar']").is_visible()
        assert exceptions_shown(page) == []
    finally:
        context.close()
