"""Server memory over many distinct checkpoint uploads: does it level off, and how many models are held?

Starts the app (a fresh, temporary user folder), makes `--uploads` distinct valid checkpoints (2-D mlp
VAEs of the shipped shape, about 1.8 MB each, one seed apiece), and uploads them one after another
through the sidebar of `--sessions` browser contexts in turn (headless Chromium), each upload waiting
for the sidebar's "Loaded ..." note. The sidebar selects each new model, so every upload is also
loaded, cached and shown. The server's resident memory (its process tree, from /proc) is sampled
every 0.5 s; printed: RSS at start, after each `--every` uploads, at the end and at its peak, and how
many uploaded models each session still lists (read from its Model box, filtered to "(uploaded)").

    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.upload_memory [--uploads 200 --sessions 2]

`--page explorer` uploads on the Latent explorer instead of the Trainer page: every upload then also
fills the explorer's caches (encodings, decoded images), at several seconds an upload.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


from bench.load_test import OPTIONS_JS
from bench.server_memory import RssSampler, mib, server_pid
from tests.support.browser import exceptions_shown, launch_browser, running_app, wait_for_app
from vaeviz import ModelConfig, build_model, save_checkpoint

SIDE = "[data-testid='stSidebar']"
PAGE_SLUGS = {"trainer": "trainer", "explorer": ""}


def make_checkpoints(folder: Path, n: int) -> list[Path]:
    """n distinct checkpoints of the shipped mlp-2 shape (784-256-128-2), one seed each."""
    return [save_checkpoint(build_model("vae", ModelConfig(arch="mlp", latent_dim=2), seed=i),
                            folder / f"upload-{i:04d}.safetensors") for i in range(n)]


def open_session(browser, url: str, slug: str):
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{url}/{slug}")
    wait_for_app(page)
    page.locator(f"{SIDE} [data-testid='stExpander'] summary", has_text="Upload a checkpoint").click()
    return page


def upload(page, path: Path) -> None:
    page.set_input_files(f"{SIDE} input[type='file']", str(path))
    page.wait_for_selector(f"{SIDE} [data-testid='stAlert']:has-text('Loaded {path.name}')", timeout=120_000)
    wait_for_app(page, quiet=0.3)
    shown = exceptions_shown(page)
    if shown:
        raise RuntimeError(f"an exception after uploading {path.name}: {shown[0][:500]}")


def uploaded_listed(page) -> int:
    """How many "(uploaded)" models the session's Model box offers (typing filters its options)."""
    box = page.locator(f"{SIDE} .st-key-model_key input[role='combobox']")
    box.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("(uploaded)")
    page.wait_for_timeout(500)
    n = page.evaluate(OPTIONS_JS, "(uploaded)")
    page.keyboard.press("Escape")
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=2, help="browser contexts the uploads go round")
    parser.add_argument("--every", type=int, default=50, help="print memory after this many uploads")
    parser.add_argument("--page", choices=list(PAGE_SLUGS), default="trainer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vaeviz-uploads-") as tmp:
        paths = make_checkpoints(Path(tmp), args.uploads)
        size = sum(p.stat().st_size for p in paths)
        env = {"VAEVIZ_USER_DIR": str(Path(tmp) / "user")}
        with running_app(env=env) as url, launch_browser() as browser:
            sessions = [open_session(browser, url, PAGE_SLUGS[args.page]) for _ in range(args.sessions)]
            sampler = RssSampler(server_pid(url))
            start = sampler.sample()
            sampler.start()
            print(f"{args.uploads} distinct checkpoints ({size / 2**20:.0f} MiB in all) through the sidebar of "
                  f"{args.sessions} session(s) on the {args.page} page")
            print(f"server RSS at start (sessions open): {mib(start)}")
            t0 = time.perf_counter()
            try:
                for i, path in enumerate(paths, 1):
                    upload(sessions[i % len(sessions)], path)
                    if i % args.every == 0 or i == len(paths):
                        print(f"  after {i:4d} uploads: RSS {mib(sampler.sample())}, peak so far {mib(sampler.peak)}, "
                              f"{time.perf_counter() - t0:.0f} s", flush=True)
                held = [uploaded_listed(page) for page in sessions]
            finally:
                sampler.stop()
    print(f"server RSS: start {mib(start)}, end {mib(sampler.last)}, peak {mib(sampler.peak)} "
          f"(growth {mib(sampler.last - start)} for {size / 2**20:.0f} MiB uploaded)")
    print(f"uploaded models each session still lists: {held} (the limit is SESSION_LIMITS['upload'] in vaeviz/ui/models.py)")


if __name__ == "__main__":
    main()
