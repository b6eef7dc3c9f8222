"""Many users at once: N sessions use the app together while some of them train.

Two modes. `--mode sockets` (the default; bench/load_sockets.py): a lecture hall of light websocket
clients, 30 sessions of which 10 train, in two phases of 120 s (without, then with the trainers),
timing the server alone. `--mode browser` (this file): real browser tabs, described below, timing
what a person sees, which on a small machine is mostly the tabs' own work.

In browser mode it starts `streamlit run app.py` (with a fresh temporary user folder, so nothing lands
in the repo), one headless Chromium (Debian's) and `--sessions` contexts in it, each a separate Streamlit session. Every
session loops over what a person does: two latent sliders moved and released on the Latent explorer
(timed from mouse up to the new decoded image, detected as in bench/explorer_latency.py), a switch to
another page (timed to its title), a stroke drawn on the Draw-and-encode canvas (timed from mouse up to
a new reconstruction), with a pause of about `--think` seconds between actions. Session 0 also uploads
a checkpoint and trains a small model on the Trainer page (a 2-D mlp VAE on `--train-images` MNIST
images for `--train-epochs` epochs); when it finishes, session 0 saves it under a unique name and
starts a second run that it never saves.

Errors, which must be zero: exception boxes in a page, page errors (uncaught JavaScript), console
errors, timeouts (`--timeout` per wait) and lost connections (a closed websocket, Streamlit's
connection banner). The server's resident memory (its process tree, from /proc) is sampled every
0.5 s. At the end, isolation is checked from every other session: its Trainer page shows no run, its
Model box lists neither session 0's unsaved trained model nor its upload (while session 0's own box
lists them, and every box lists the model session 0 saved: the check sees what it looks for), and
its canvas is empty while session 0's has a drawing. Exit status 1 if there was an error or a leak.
`--verbose` prints every action as it ends, with how long it took.

    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.load_test [--sessions 30 --trainers 10 --seconds 120]
    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.load_test --mode browser [--sessions 10 --seconds 60]

Playwright's sync API drives one page at a time, so this uses its async API: one event loop, one
browser, every session a task. `settle` is the in-page equivalent of tests.browser.wait_for_app.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright


from bench.explorer_latency import IMG
from bench.server_memory import RssSampler, cpu_seconds, mib, server_pid, tree
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, ROOT, running_app

SIDE = "[data-testid='stSidebar']"
OTHER_PAGES = ["Latent map", "Interpolate", "Model zoo"]  # visited between the explorer and the canvas
# The Trainer's "Training images" slider stops (pages/trainer.py IMAGE_COUNTS): key presses right of the first.
IMAGE_STEPS = {1000: 0, 2000: 1, 5000: 2, 10_000: 3}
UPLOAD_SOURCE = ROOT / "checkpoints" / "mnist-vae-mlp-2.safetensors"

# True once the script has not been running for `quiet` ms and a title is painted (as wait_for_app).
# `token` restarts the quiet spell for each wait.
SETTLE_JS = """([token, quiet]) => {
  const w = window, now = performance.now();
  if (w.__vaevizToken !== token) { w.__vaevizToken = token; w.__vaevizQuietSince = null; }
  const busy = document.querySelector("[data-testid='stStatusWidgetRunningIcon'], [data-testid='stSkeleton']");
  if (busy || !document.querySelector("[data-testid='stMain'] h1")) { w.__vaevizQuietSince = null; return false; }
  if (w.__vaevizQuietSince === null) w.__vaevizQuietSince = now;
  return now - w.__vaevizQuietSince >= quiet;
}"""
TITLE_JS = """(t) => { const h = document.querySelector("[data-testid='stMain'] h1"); return h && h.innerText.trim() === t; }"""
# bench/explorer_latency.py's test for the new image: the first decoded image's src changed and it has loaded.
NEW_IMAGE_JS = f"""(b) => {{ const i = document.querySelector("{IMG}"); return i && i.getAttribute('src') !== b && i.complete; }}"""
RECONSTRUCTIONS_JS = """() => Array.from(document.querySelectorAll("[data-testid='stMain'] [data-testid='stImage']"))
  .filter(e => e.innerText.includes('reconstruction')).map(e => { const i = e.querySelector('img');
    return i && i.complete ? i.getAttribute('src') : null; }).filter(s => s)"""
NEW_RECONSTRUCTION_JS = f"""(before) => ({RECONSTRUCTIONS_JS})().some(s => !before.includes(s))"""
# How many options of the open listbox contain `text`. The list is virtualised (only the rows in view
# exist), so scroll it through, counting each option once by its data-key.
OPTIONS_JS = """async (text) => {
  const list = document.querySelector("[role='listbox']");
  if (!list) return 0;
  let pane = list;
  while (pane && pane.scrollHeight <= pane.clientHeight) pane = pane.parentElement;
  const seen = new Set();
  for (let i = 0; i < 500; i++) {
    list.querySelectorAll("[role='option']").forEach(o => { if (o.innerText.includes(text)) seen.add(o.dataset.key); });
    if (!pane || pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 1) break;
    pane.scrollTop += Math.max(pane.clientHeight / 2, 10);
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  }
  return seen.size;
}"""


@dataclass
class Report:
    """What every session did and saw; filled by all sessions (one event loop, so no locking)."""

    actions: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    slider_s: list[float] = field(default_factory=list)
    switch_s: list[float] = field(default_factory=list)
    draw_s: list[float] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    isolation_checked: int = 0

    def error(self, session: int, what: str, message: str) -> None:
        self.errors.append(f"session {session}: {what}: {message.strip().splitlines()[0][:300] if message.strip() else ''}")


class Session:
    """One browser context: one person, one Streamlit session."""

    def __init__(self, index: int, page, report: Report, args, deadline_box: list[float]) -> None:
        self.i, self.page, self.report, self.args = index, page, report, args
        self.deadline_box = deadline_box  # [deadline]: set once every session has opened
        self.rng = random.Random(index)
        self.token = 0
        self.title = ""
        self.closing = False
        self.shown_exceptions: set[str] = set()  # exception boxes already counted on this page visit
        self.saved_name: str | None = None  # session 0: the model it saved
        self.runs_started = 0
        page.on("pageerror", lambda exc: report.error(index, f"page error on {self.title}", str(exc)))
        page.on("console", lambda msg: msg.type == "error" and report.error(
            index, f"console error on {self.title}", f"{msg.text} ({msg.location.get('url') or 'no url'})"))
        page.on("websocket", self._watch_socket)

    def _watch_socket(self, ws) -> None:
        if "_stcore/stream" in ws.url:
            ws.on("close", lambda _ws: self.closing or self.report.error(self.i, "disconnect", "the websocket closed"))

    @property
    def ms(self) -> float:
        return self.args.timeout * 1000

    # --- waiting ---------------------------------------------------------------------------

    async def settle(self, quiet: float = 0.3) -> None:
        self.token += 1
        await self.page.wait_for_function(SETTLE_JS, arg=[self.token, quiet * 1000], polling=100, timeout=self.ms)

    async def think(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.args.think)

    async def check_page(self) -> None:
        """Count new exception boxes and a visible connection banner as errors."""
        for box in await self.page.query_selector_all("[data-testid='stException']"):
            text = (await box.inner_text()).strip()
            if text not in self.shown_exceptions:
                self.shown_exceptions.add(text)
                self.report.error(self.i, f"exception on {self.title or 'the first page'}", text)
        if await self.page.locator("[data-testid='stConnectionStatus']").count():
            self.report.error(self.i, "disconnect", "Streamlit shows its connection banner")

    async def act(self, kind: str, action) -> bool:
        """Run one action; a timeout or a Playwright error is an error, not a crash of the test."""
        t0 = time.perf_counter()
        try:
            await action()
        except (PlaywrightError, asyncio.TimeoutError) as exc:
            self.report.error(self.i, f"{kind} failed" + (f" on {self.title}" if self.title else ""), str(exc))
            ok = False
        else:
            self.report.actions[kind] += 1
            ok = True
        if self.args.verbose:
            print(f"  [{time.strftime('%H:%M:%S')}] session {self.i}: {kind} {'ok' if ok else 'FAILED'} "
                  f"in {time.perf_counter() - t0:.1f} s (now on {self.title})", flush=True)
        try:
            await self.check_page()
        except PlaywrightError as exc:
            self.report.error(self.i, "reading the page", str(exc))
        return ok

    # --- actions ---------------------------------------------------------------------------

    async def open(self, url: str) -> None:
        await self.page.goto(url, timeout=self.ms)
        await self.settle(quiet=1.0)
        self.title = (await self.page.inner_text("[data-testid='stMain'] h1")).strip()

    async def switch(self, title: str, settle: bool = True) -> None:
        """Click a page in the navigation; timed until its title is shown."""
        link = self.page.locator("[data-testid='stSidebarNav'] a", has_text=title).first
        t0 = time.perf_counter()
        await link.click(timeout=self.ms)
        await self.page.wait_for_function(TITLE_JS, arg=title, timeout=self.ms, polling=50)
        self.report.switch_s.append(time.perf_counter() - t0)  # every switch, also those inside other actions
        self.title, self.shown_exceptions = title, set()
        if settle:
            await self.settle()

    async def go(self, title: str, settle: bool = True) -> None:
        if self.title != title:
            await self.switch(title, settle)

    async def move_slider(self) -> None:
        """Drag a latent slider to the other half of its range and release it (as bench/explorer_latency.py)."""
        await self.go("Latent explorer")
        page = self.page
        slider = page.locator("[data-testid='stMain'] [data-testid='stSlider']").nth(self.rng.randrange(2))
        thumb = slider.locator("[data-testid='stSliderThumbValue']")
        box, track = await thumb.bounding_box(timeout=self.ms), await slider.bounding_box(timeout=self.ms)
        knob = slider.locator("input[type='range']")
        value, lo, hi = [float(v) for v in (await knob.input_value(), await knob.get_attribute("min"),
                                            await knob.get_attribute("max"))]
        where = self.rng.uniform(0.15, 0.4) if (value - lo) / (hi - lo) > 0.5 else self.rng.uniform(0.6, 0.85)
        before = await page.locator(IMG).first.get_attribute("src", timeout=self.ms)
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] + 12  # the thumb, under its value label
        await page.mouse.move(x, y)
        await page.mouse.down()
        await page.mouse.move(track["x"] + track["width"] * where, y, steps=5)
        t0 = time.perf_counter()
        await page.mouse.up()
        await page.wait_for_function(NEW_IMAGE_JS, arg=before, timeout=self.ms, polling="raf")
        self.report.slider_s.append(time.perf_counter() - t0)
        await self.settle()

    async def draw(self) -> None:
        """Draw a "7" (a little different each time) on a fresh canvas; wait for new reconstructions."""
        await self.go("Draw and encode")
        page = self.page
        canvas = page.locator("[data-testid='stMain'] canvas").last
        await canvas.scroll_into_view_if_needed(timeout=self.ms)
        box = await canvas.bounding_box(timeout=self.ms)
        before = await page.evaluate(RECONSTRUCTIONS_JS)
        x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
        top, left = self.rng.uniform(0.15, 0.25), self.rng.uniform(0.3, 0.4)
        await page.mouse.move(x0 + left * w, y0 + top * h)
        await page.mouse.down()
        for t in range(1, 21):  # across the top, then down to the left
            if t <= 8:
                await page.mouse.move(x0 + (left + 0.3 * t / 8) * w, y0 + top * h)
            else:
                await page.mouse.move(x0 + (left + 0.3 - 0.25 * (t - 8) / 12) * w, y0 + (top + 0.6 * (t - 8) / 12) * h)
        t0 = time.perf_counter()
        await page.mouse.up()
        await page.wait_for_function(NEW_RECONSTRUCTION_JS, arg=before, timeout=self.ms, polling=50)
        self.report.draw_s.append(time.perf_counter() - t0)
        await self.settle()

    async def upload(self, path: Path) -> None:
        """Upload a checkpoint through the sidebar; the sidebar selects it."""
        page = self.page
        expander = page.locator(f"{SIDE} [data-testid='stExpander'] summary", has_text="Upload a checkpoint")
        await expander.click(timeout=self.ms)
        await page.set_input_files(f"{SIDE} input[type='file']", str(path), timeout=self.ms)
        await page.wait_for_selector(f"{SIDE} [data-testid='stAlert']:has-text('Loaded {path.name}')", timeout=self.ms)
        await expander.click(timeout=self.ms)  # fold it again
        await self.settle()

    async def start_training(self) -> None:
        """Session 0: set a small run on the Trainer page (first time) and start it."""
        await self.go("Trainer")
        page = self.page
        if self.runs_started == 0:
            images = page.locator(".st-key-trainer_images input[type='range']")
            await images.focus(timeout=self.ms)
            await page.keyboard.press("Home")
            for _ in range(IMAGE_STEPS[self.args.train_images]):
                await page.keyboard.press("ArrowRight")
            await self.settle()
            epochs = page.locator(".st-key-trainer_epochs input")
            await epochs.fill(str(self.args.train_epochs), timeout=self.ms)
            await epochs.press("Enter")
            await self.settle()
        await page.locator(".st-key-trainer_start button").click(timeout=self.ms)
        await page.wait_for_selector(".st-key-trainer_stop", timeout=self.ms)  # running
        self.runs_started += 1

    async def tend_training(self) -> None:
        """Session 0: once the first run has finished, save it under a unique name and start a second run."""
        if self.saved_name is not None:
            return
        await self.go("Trainer", settle=False)  # a running job polls every second: the page is never quiet
        page = self.page
        await page.wait_for_selector(".st-key-trainer_stop, .st-key-trainer_save", timeout=self.ms)
        if not await page.locator(".st-key-trainer_save").count():
            return  # still training
        await self.settle()
        name = f"loadtest-{uuid.uuid4().hex[:8]}"
        box = page.locator(".st-key-trainer_save_name input")
        await box.fill(name, timeout=self.ms)
        await box.press("Enter")
        await self.settle()
        await page.locator(".st-key-trainer_save button").click(timeout=self.ms)
        await page.wait_for_selector(f"[data-testid='stMain'] [data-testid='stAlert']:has-text('{name}')", timeout=self.ms)
        self.saved_name = name
        self.report.actions["train save"] += 1
        await self.start_training()  # the second run: never saved, it must stay in this session
        self.report.actions["train start"] += 1

    async def shows(self, text: str) -> bool:
        """Whether the main area shows `text` within the timeout."""
        try:
            await self.page.locator("[data-testid='stMain']").get_by_text(text).first.wait_for(timeout=self.ms)
            return True
        except PlaywrightError:
            return False

    async def listed(self, text: str) -> int:
        """How many models in this session's Model box contain `text` (typing filters the options)."""
        page = self.page
        box = page.locator(f"{SIDE} .st-key-model_key input[role='combobox']")
        chosen = await box.input_value(timeout=self.ms)
        await box.click(timeout=self.ms)
        await page.keyboard.press("Control+A")
        await page.keyboard.type(text)
        await page.wait_for_timeout(500)
        n = await page.evaluate(OPTIONS_JS, text)
        await page.keyboard.press("Escape")
        await page.locator("[data-testid='stMain'] h1").click()  # leave the box; its choice is unchanged
        if await box.input_value() != chosen:
            raise RuntimeError(f"reading the Model box changed the selection from {chosen!r}")
        return n

    # --- the session's life ----------------------------------------------------------------

    async def loop(self) -> None:
        if self.i == 0:
            if await self.act("upload", lambda: self.upload(self.args.upload_path)):
                await self.act("train start", self.start_training)
        while time.monotonic() < self.deadline_box[0]:
            steps = [("slider", self.move_slider), ("slider", self.move_slider),
                     ("other page", lambda: self.go(self.rng.choice(OTHER_PAGES))), ("draw", self.draw)]
            if self.i == 0 and self.saved_name is None:
                steps.insert(0, ("trainer check", self.tend_training))  # look in on the run first, every round
            for kind, action in steps:
                if time.monotonic() >= self.deadline_box[0]:
                    break
                if not await self.act(kind, action):
                    await self.recover()
                await self.think()

    async def recover(self) -> None:
        """After a failed action, get back to a known page without reloading (a reload is a new session)."""
        try:
            await self.page.keyboard.press("Escape")
            await self.page.mouse.up()
            self.title = ""
            await self.switch("Latent explorer")
        except PlaywrightError as exc:
            self.report.error(self.i, "recovering", str(exc))


async def isolation(sessions: list[Session], report: Report) -> None:
    """From every other session: no sign of session 0's run, unsaved models or drawing."""
    first, others = sessions[0], sessions[1:]
    try:
        if await first.listed("(uploaded)") < 1:
            report.leaks.append("check incomplete: session 0 does not list its own upload")
        own_trained = await first.listed("(trained here")
        await first.go("Trainer", settle=False)
        second_running = await first.page.locator(".st-key-trainer_stop").count() > 0
        if own_trained < 1 and not second_running and first.saved_name:
            report.leaks.append("check incomplete: session 0 neither lists nor runs its second, unsaved run")
        if not await first.act("draw", first.draw):  # session 0 sits on a canvas with its drawing
            report.leaks.append("check incomplete: session 0 could not draw")
    except (PlaywrightError, RuntimeError) as exc:
        report.leaks.append(f"check incomplete in session 0: {str(exc).splitlines()[0][:200]}")

    async def check(s: Session) -> None:
        page = s.page
        try:
            await s.go("Trainer")
            # The idle Trainer (no job in this session) says what its defaults train; wait for it, then
            # for the page to finish, before looking for what must not be there.
            if not await s.shows("The defaults train"):
                report.leaks.append(f"session {s.i}'s Trainer page is not the idle one")
            await s.settle(quiet=1.0)
            running = await page.locator(".st-key-trainer_stop, .st-key-trainer_pause, .st-key-trainer_save, "
                                          "[data-testid='stMain'] [data-testid='stProgress']").count()
            if running:
                report.leaks.append(f"session {s.i}'s Trainer page shows a run (session 0's?)")
            for text in ("(trained here", "(uploaded)"):
                if n := await s.listed(text):
                    report.leaks.append(f"session {s.i} lists {n} model(s) '{text}' (only session 0 has such models)")
            if first.saved_name and not await s.listed(f"{first.saved_name} (saved)"):
                report.leaks.append(f"check incomplete: session {s.i} does not list {first.saved_name} (saved)")
            await s.go("Draw and encode")
            if not await s.shows("Draw a digit on the canvas above."):
                report.leaks.append(f"session {s.i}'s Draw page does not show an empty canvas")
            await s.settle(quiet=1.0)
            if await page.evaluate(RECONSTRUCTIONS_JS):
                report.leaks.append(f"session {s.i}'s fresh canvas shows reconstructions")
            await s.check_page()
            report.isolation_checked += 1
        except (PlaywrightError, RuntimeError) as exc:
            report.leaks.append(f"check incomplete in session {s.i}: {str(exc).splitlines()[0][:200]}")

    await asyncio.gather(*(check(s) for s in others))


def cpu_now(server: int) -> tuple[float, float]:
    """CPU seconds used so far by the server's process tree and by the rest of ours (browser, driver)."""
    served = tree(server)
    return cpu_seconds(served), cpu_seconds(tree(os.getpid()) - served - {os.getpid()})


async def load(url: str, server: int, args, report: Report) -> dict:
    """Open the sessions, run them until the deadline, check isolation. Returns timings and CPU use."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        deadline = [float("inf")]
        sessions = []
        for i in range(args.sessions):
            context = await browser.new_context(viewport={"width": 1400, "height": 1000})
            sessions.append(Session(i, await context.new_page(), report, args, deadline))
        t0 = time.monotonic()
        # One after another: the first page of ten sessions at once is a warm-up spike, not their use.
        opened = [await s.act("open", lambda s=s: s.open(url)) for s in sessions]
        t1, cpu1 = time.monotonic(), cpu_now(server)
        deadline[0] = t1 + args.seconds
        if all(opened):
            await asyncio.gather(*(s.loop() for s in sessions))
        t2, cpu2 = time.monotonic(), cpu_now(server)
        if all(opened) and args.sessions > 1:
            await isolation(sessions, report)
        elif not all(opened):
            report.leaks.append("not checked: some sessions did not open")
        for s in sessions:
            s.closing = True
        await browser.close()
    return {"open_s": t1 - t0, "run_s": t2 - t1, "server_cpu_s": cpu2[0] - cpu1[0], "browser_cpu_s": cpu2[1] - cpu1[1]}


def summary(xs: list[float]) -> str:
    if not xs:
        return "no samples"
    ms = 1000 * np.asarray(xs)
    return f"median {np.median(ms):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms (min {ms.min():.0f}, max {ms.max():.0f}, n={len(ms)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["sockets", "browser"], default="sockets",
                        help="sockets: light websocket clients, the server's latency (bench/load_sockets.py); "
                             "browser: headless Chromium tabs, the latency a person sees (this file)")
    parser.add_argument("--sessions", type=int, help="default: 30 (sockets), 10 (browser)")
    parser.add_argument("--seconds", type=float, help="default: 120 per phase (sockets), 60 (browser)")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between one session's actions (s)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds any one wait may take before it is an error")
    parser.add_argument("--train-images", type=int, choices=sorted(IMAGE_STEPS), help="default: 2000 (sockets), 1000")
    parser.add_argument("--train-epochs", type=int, help="default: 5 (sockets), 2 (browser)")
    parser.add_argument("--trainers", type=int, default=10, help="sockets: how many of the sessions train")
    parser.add_argument("--stagger", type=float, default=1.0, help="sockets: seconds between the trainers' Starts")
    parser.add_argument("--cancel-after", type=float, default=15.0,
                        help="sockets: seconds the last trainer waits in the queue before it cancels")
    parser.add_argument("--drain", type=float, default=300.0,
                        help="sockets: seconds after the last phase in which every job must end")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="sockets: set in the server's environment, e.g. STREAMLIT_RUNNER_POST_SCRIPT_GC=false")
    parser.add_argument("--verbose", action="store_true", help="print every action as it ends")
    args = parser.parse_args()
    sockets = args.mode == "sockets"
    for name, in_sockets, in_browser in (("sessions", 30, 10), ("seconds", 120.0, 60.0), ("train_images", 2000, 1000),
                                         ("train_epochs", 5, 2)):
        if getattr(args, name) is None:
            setattr(args, name, in_sockets if sockets else in_browser)
    if sockets:
        from bench.load_sockets import run

        return run(args)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="vaeviz-load-") as tmp:
        args.upload_path = Path(tmp) / f"loadtest-upload-{uuid.uuid4().hex[:6]}.safetensors"
        shutil.copyfile(UPLOAD_SOURCE, args.upload_path)
        with running_app(env={"VAEVIZ_USER_DIR": str(Path(tmp) / "user")}) as url:
            server = server_pid(url)
            sampler = RssSampler(server)
            sampler.start()
            try:
                figures = asyncio.run(load(url, server, args, report))
            finally:
                sampler.stop()
        saved = sorted(p.name for p in (Path(tmp) / "user").glob("*.safetensors"))

    run_s = figures["run_s"]
    print(f"load test: {args.sessions} sessions, {args.seconds:.0f} s of use ({run_s:.0f} s with the last actions), "
          f"think time {args.think:g} s; opening them one by one took {figures['open_s']:.0f} s")
    print(f"training in session 0: 2-D mlp VAE, {args.train_images:,} images x {args.train_epochs} epochs; "
          f"saved: {', '.join(saved) or 'nothing'}")
    print("actions: " + ", ".join(f"{k} {v}" for k, v in sorted(report.actions.items()))
          + f"; page switches {len(report.switch_s)} (those above included)")
    print(f"errors: {len(report.errors)}")
    for line in report.errors[:8]:
        print(f"  {line}")
    if len(report.errors) > 8:
        print(f"  ... and {len(report.errors) - 8} more")
    print(f"slider release -> new image:   {summary(report.slider_s)}")
    print(f"page switch -> title shown:    {summary(report.switch_s)}")
    print(f"draw (mouse up) -> reconstruction: {summary(report.draw_s)}")
    print(f"server RSS: at start {mib(sampler.first)}, peak {mib(sampler.peak)}, at the end {mib(sampler.last)}")
    cores = os.cpu_count() or 1
    print(f"CPU during the use: server {figures['server_cpu_s']:.0f} s, browser {figures['browser_cpu_s']:.0f} s "
          f"(of {run_s * cores:.0f} core-seconds on {cores} cores; the browser shares the machine with the server)")
    if report.leaks:
        print("isolation: FAILED")
        for line in report.leaks:
            print(f"  {line}")
    elif args.sessions > 1:
        print(f"isolation: ok ({report.isolation_checked} other sessions: no run in progress, none of session 0's "
              "trained-here or uploaded models, an empty canvas"
              + ("; each lists the model session 0 saved)" if saved else ")"))
    return 1 if report.errors or report.leaks else 0


if __name__ == "__main__":
    sys.exit(main())
