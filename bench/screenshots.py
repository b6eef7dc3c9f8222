"""Screenshots of every page in headless Chromium, for looking at what the app shows.

Starts `streamlit run app.py` on a free port (or uses --url), opens each page, waits for it to
settle, and writes one PNG per page into --out (default bench/out/screenshots).

    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.screenshots
"""

from __future__ import annotations

import argparse
from pathlib import Path


from tests.support.browser import PAGES, launch_browser, running_app, wait_for_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="an app already running (default: start one)")
    parser.add_argument("--out", default="bench/out/screenshots")
    parser.add_argument("--width", type=int, default=1500)
    parser.add_argument("--height", type=int, default=1100)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with running_app(args.url) as url, launch_browser() as browser:
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        for slug, title in PAGES:
            page.goto(f"{url}/{slug}")
            wait_for_app(page)
            path = out / f"{slug or 'home'}.png"
            page.screenshot(path=str(path), full_page=True)
            print(f"{title}: {path}")


if __name__ == "__main__":
    main()
