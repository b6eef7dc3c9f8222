"""Explorer speed in a real browser: first page after start-up, slider release to new image, page switch.

Launches headless Chromium (Debian's), starts `streamlit run app.py` itself (several times, for
the start-up figure), and prints medians:

- start-up: from launching `streamlit run app.py` to the first page's decoded image on screen;
- slider: from releasing a latent slider (mouse up) to the new decoded image on screen;
- page switch: from clicking a page in the navigation to its title on screen, and to the page
  having finished running.

    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.explorer_latency [--starts 3 --moves 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


from tests.support.browser import PAGES, ROOT, free_port, launch_browser, wait_for_app

IMG = "[data-testid='stMain'] [data-testid='stImage'] img"


def start_server(port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def first_page_seconds(browser) -> float:
    """Seconds from `streamlit run` to the first decoded image, on a fresh server."""
    port = free_port()
    page = browser.new_page()
    t0 = time.perf_counter()
    proc = start_server(port)
    try:
        while True:
            try:
                page.goto(f"http://127.0.0.1:{port}/", timeout=2000)
                break
            except Exception:
                if time.perf_counter() - t0 > 60:
                    raise
                time.sleep(0.05)
        # The first decoded image has loaded (checked in the page: Playwright's own visibility wait
        # adds seconds of its polling and layout checks on a fresh page).
        page.wait_for_function(
            f"() => Array.from(document.querySelectorAll(\"{IMG}\")).some(i => i.complete && i.naturalWidth > 0)",
            timeout=60_000, polling=50)
        return time.perf_counter() - t0
    finally:
        page.close()
        proc.terminate()
        proc.wait(timeout=10)


def slider_seconds(page, moves: int) -> list[float]:
    """Release a slider after a short drag; time until the decoded image's src changes."""
    times = []
    for i in range(moves):
        thumb = page.query_selector("[data-testid='stMain'] [data-testid='stSlider'] [data-testid='stSliderThumbValue']")
        box = thumb.bounding_box()
        track = page.query_selector("[data-testid='stMain'] [data-testid='stSlider']").bounding_box()
        before = page.query_selector(IMG).get_attribute("src")
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] + 12
        target = track["x"] + track["width"] * (0.3 if i % 2 else 0.7)
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(target, y, steps=5)
        t0 = time.perf_counter()
        page.mouse.up()
        page.wait_for_function(
            f"(b) => {{ const i = document.querySelector(\"{IMG}\"); return i && i.getAttribute('src') !== b && i.complete; }}",
            arg=before, timeout=15_000)
        times.append(time.perf_counter() - t0)
        wait_for_app(page, quiet=0.3)
    return times


def page_switch_seconds(page, rounds: int) -> tuple[list[float], list[float]]:
    shown, settled = [], []
    order = [t for _, t in PAGES[:4]] * rounds
    for title in order[1:]:
        link = page.locator("[data-testid='stSidebarNav'] a", has_text=title).first
        t0 = time.perf_counter()
        link.click()
        page.wait_for_function(
            "(t) => { const h = document.querySelector(\"[data-testid='stMain'] h1\"); return h && h.innerText.trim() === t; }",
            arg=title, timeout=30_000)
        shown.append(time.perf_counter() - t0)
        wait_for_app(page, quiet=0.3)
        settled.append(time.perf_counter() - t0 - 0.3)
    return shown, settled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with launch_browser() as browser:
        starts = [first_page_seconds(browser) for _ in range(args.starts)]
        port = free_port()
        proc = start_server(port)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for _ in range(600):
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=2000)
                    break
                except Exception:
                    time.sleep(0.1)
            wait_for_app(page)
            sliders = slider_seconds(page, args.moves)
            shown, settled = page_switch_seconds(page, args.rounds)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    ms = lambda xs: f"median {1000 * statistics.median(xs):.0f} ms (min {1000 * min(xs):.0f}, max {1000 * max(xs):.0f}, n={len(xs)})"
    print(f"first page after `streamlit run app.py`: median {statistics.median(starts):.2f} s "
          f"(all: {', '.join(f'{s:.2f}' for s in starts)})")
    print(f"slider release -> new image:            {ms(sliders)}")
    print(f"page switch -> title shown:              {ms(shown)}")
    print(f"page switch -> page finished running:    {ms(settled)}")


if __name__ == "__main__":
    main()
