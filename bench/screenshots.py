"""Screenshots of the app in headless Chromium, for looking at what it shows.

Starts `streamlit run app.py` on a free port (or uses --url), opens each page (or each lecture step,
or the paths given), waits for it to settle, and writes one PNG each into --out (default
bench/out/screenshots). `--viewport` keeps to the first screen (is a lecture step one screen on a
1366x768 projector?); by default the whole page is captured.

    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.screenshots [--lecture] [--viewport] [--dark]
    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.screenshots --paths "interpolate?steps=12" "?present=1"
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from tests.support.browser import PAGES, launch_browser, running_app, wait_for_app


def targets(args) -> list[tuple[str, str]]:
    """(url path with its query, file name) to visit."""
    if args.paths:
        return [(p, re.sub(r"[^A-Za-z0-9_-]+", "_", p).strip("_") or "home") for p in args.paths]
    if args.lecture:
        from vaeviz.ui.lecture import STEPS

        return [(f"?step={s.slug}", f"lecture-{i + 1:02d}-{s.slug}") for i, s in enumerate(STEPS)]
    return [(slug, slug or "home") for slug, _ in PAGES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="an app already running (default: start one)")
    parser.add_argument("--out", default="bench/out/screenshots")
    parser.add_argument("--width", type=int, default=1366)
    parser.add_argument("--height", type=int, default=768)
    parser.add_argument("--lecture", action="store_true", help="every lecture step instead of every page")
    parser.add_argument("--paths", nargs="*", default=None, help="url paths (with queries) to visit instead")
    parser.add_argument("--viewport", action="store_true", help="only the first screen, not the whole page")
    parser.add_argument("--dark", action="store_true", help="the browser prefers a dark colour scheme")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with running_app(args.url) as url, launch_browser() as browser:
        page = browser.new_page(viewport={"width": args.width, "height": args.height},
                                color_scheme="dark" if args.dark else "light")
        for path, name in targets(args):
            page.goto(f"{url}/{path}")
            wait_for_app(page, timeout=240)
            page.wait_for_timeout(500)  # images decode, charts draw
            file = out / f"{name}{'-dark' if args.dark else ''}.png"
            page.screenshot(path=str(file), full_page=not args.viewport)
            print(f"{path or '/'}: {file}")


if __name__ == "__main__":
    main()
