"""Helpers for real-browser tests and scripts: start the app, launch Debian's Chromium, wait.

Playwright cannot download its own browser here, so it drives `/usr/bin/chromium` (override with
$VAEVIZ_CHROMIUM) with flags that keep it off the network.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = os.environ.get("VAEVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
# (url path, title) of every page, in the order of the navigation.
PAGES = [("", "1. PCA is the linear autoencoder"), ("explorer", "Latent explorer"), ("latent_map", "Latent map"),
         ("interpolate", "Interpolate"), ("draw", "Draw and encode"), ("trainer", "Trainer"), ("zoo", "Model zoo")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(url: str | None = None, env: dict | None = None, timeout: float = 60,
                log: Path | None = None) -> Iterator[str]:
    """Yield the URL of a running app: `url` if given, else a fresh `streamlit run app.py`.

    `log`: a file for the server's output (else a pipe that nobody reads while it runs, which a
    server that logs a lot, under a load test, could fill)."""
    if url:
        yield url.rstrip("/")
        return
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    env = {"VAEVIZ_WARM_TSNE": "0", **(env or {})}  # tests share two cores: no background t-SNE unless asked
    out = open(log, "wb") if log is not None else subprocess.PIPE
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                output = (proc.stdout.read() if proc.stdout else Path(log).read_bytes()).decode(errors="replace")
                raise RuntimeError(f"the app did not start:\n{output[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log is not None:
            out.close()


@contextlib.contextmanager
def launch_browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def wait_for_app(page, timeout: float = 60.0, quiet: float = 1.0) -> None:
    """Wait until the script has stopped running for `quiet` seconds and a title is painted.

    Streamlit shows its running indicator only some time after a run starts, so a single check can
    pass too early: wait for a continuous quiet spell instead.
    """
    page.wait_for_selector("[data-testid='stMain'] h1", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        running = page.query_selector("[data-testid='stStatusWidgetRunningIcon'], [data-testid='stSkeleton']")
        now = time.monotonic()
        if running is None:
            quiet_since = quiet_since or now
            if now - quiet_since >= quiet:
                return
        else:
            quiet_since = None
        page.wait_for_timeout(100)
    raise TimeoutError(f"the page was still running after {timeout:.0f} s")


# --- reading the page ------------------------------------------------------------------------

IMAGE_STATS_JS = """
(img) => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  if (!c.width || !c.height) return null;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sum2 = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) { const v = d[i]; sum += v; sum2 += v * v; n++; }
  const mean = sum / n;
  return {mean: mean, std: Math.sqrt(Math.max(sum2 / n - mean * mean, 0))};
}
"""


def main_images(page):
    """The visible <img> elements of st.image in the main area (not the sidebar, not hidden tabs)."""
    imgs = page.query_selector_all("[data-testid='stMain'] [data-testid='stImage'] img")
    return [i for i in imgs if i.is_visible()]


def image_stats(img) -> dict | None:
    """Mean and standard deviation of an image's red channel (0-255), read back through a canvas."""
    img.evaluate("(i) => i.decode ? i.decode().catch(() => null) : null")  # wait until it is loaded
    return img.evaluate(IMAGE_STATS_JS)


def exceptions_shown(page) -> list[str]:
    return [e.inner_text() for e in page.query_selector_all("[data-testid='stException']")]
