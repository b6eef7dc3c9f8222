"""A lecture hall on one server: N light websocket sessions, of which some train, in two phases.

bench/load_test.py's `--mode sockets` (its default). Every session is a `StreamlitClient`
(tests/support/stclient.py): one websocket speaking Streamlit's protocol, its own owner (a
`vaeviz_owner` cookie), no browser. So what is timed is the server: from sending the rerun to the
message that carries the result (and, for an image, the media file fetched), over the loopback.
Not timed: a browser's rendering and paint, and its JavaScript (bench/explorer_latency.py and
`--mode browser` time those; on 2 cores the ten headless tabs, not the server, dominated).

The sessions open one by one; the explorers go to the Latent explorer, the trainers to the Trainer
page (where they set `--train-images` and `--train-epochs` on a 2-D mlp VAE). Then two phases of
`--seconds` each, in the same run:

1. alone: the explorers drag one of the two latent sliders and release it (twice), switch to
   another page and back, with a pause of about `--think` s between actions; the trainers sit idle;
2. with trainers: the same, while the trainers press Start one after another, each `--stagger` s
   after the one before has had its click's run, so their jobs queue on the server's board in that
   order (at most VAEVIZ_MAX_TRAINING_JOBS run at once), and each watches its page poll. The last
   trainer cancels its queued job after `--cancel-after` s; the one before leaves (closes its
   websocket) once queued and comes back after the phase with the same owner cookie, to read what
   became of its job (dropped from the queue after the owner's 60 s grace, or run meanwhile).

Then the explorers stop and the trainers wait (at most `--drain` s) until every job has ended.

Slider release -> new image: the time from sending the rerun with the slider's new value (the
fragment's run, as the frontend sends it on release) to the delta with a new `decode(z)` image
plus the GET of that media file; release -> run finished is to the fragment's `script_finished`.
Page switch -> title: sending the other page's rerun to its st.title's delta; -> run finished: to
its `script_finished`. Queue figures come from what each trainer's page shows on its polls
(position, progress, outcome), so their times are as good as those polls (about 1 s): "running
at once" counts jobs seen running at the same time, a lower bound that shows a broken limit.

Errors, which must be zero: exception boxes, error alerts on the explorers, a run that did not
finish within `--timeout`, a lost connection, a media file that did not load, a message the client
could not read, and tracebacks in the server's log. The server's resident memory (its process
tree) is sampled every 0.5 s. Exit status 1 on any error, on a queue rule broken, or on a trained
model that shows up in another session's Model box.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from streamlit.proto.Alert_pb2 import Alert

from bench.server_memory import RssSampler, cpu_seconds, mib, server_pid, tree
from tests.support.browser import ROOT, running_app
from tests.support.stclient import SIDEBAR, ClientError, StreamlitClient

EXPLORER = "Latent explorer"
OTHER_PAGES = ["Latent map", "Interpolate", "Model zoo"]
PHASES = ("alone", "with trainers")
QUEUED = re.compile(r"Queued: number (\d+) in line(?:, about (.+?) to wait)?")
ENDED = ("finished", "cancelled", "dropped", "stopped", "failed")
LEAVE_AFTER_S = 2.0  # the leaver closes its websocket once it has been queued this long


@dataclass
class Report:
    """What every session did and saw (one event loop: no locking)."""

    errors: list[str] = field(default_factory=list)
    actions: Counter = field(default_factory=Counter)
    timings: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: {name: {p: [] for p in PHASES} for name in
                                 ("slider_image", "slider_delta", "slider_run", "switch_title", "switch_run")})
    problems: list[str] = field(default_factory=list)  # queue rules broken, models seen in other sessions

    def error(self, who: str, what: str, message: str = "") -> None:
        line = message.strip().splitlines()[0][:300] if message.strip() else ""
        self.errors.append(f"{who}: {what}" + (f": {line}" if line else ""))


@dataclass
class Clock:
    """The phases' boundaries (time.perf_counter); set as the run reaches them."""

    alone: float = float("inf")
    trainers: float = float("inf")
    end: float = float("inf")

    def phase(self, t: float) -> str | None:
        if self.alone <= t < self.trainers:
            return PHASES[0]
        if self.trainers <= t < self.end:
            return PHASES[1]
        return None


def owner_token() -> str:
    return secrets.token_hex(16)


class Person:
    """One session: its client, its name in the report, and the report."""

    def __init__(self, name: str, url: str, report: Report, args, token: str | None = None) -> None:
        self.name, self.report, self.args = name, report, args
        self.token = token or owner_token()
        self.client = StreamlitClient(url, cookies={"vaeviz_owner": self.token}, timeout=args.timeout,
                                      on_exception=lambda text: report.error(name, f"exception on {self.page}", text))
        self.rng = random.Random(name)
        self.page = "the first page"

    async def start(self, page: str) -> None:
        await self.client.connect()
        await self.client.open()
        await self.go(page)

    async def go(self, title: str) -> tuple[float, float, float]:
        """Switch to a page: (sent, its title's delta arrived, its run finished), perf_counter times."""
        c = self.client
        mark = c.mark()
        sent = await c.request(page=title)
        head = await c.until(lambda: c.title == title and c.heading(), what=f"the title of {title}")
        run = await c.until(lambda: c.finished_since(mark), what=f"the run of {title}")
        self.page = title
        self.check_alerts()
        return sent, head.received, run.finished

    def check_alerts(self) -> None:
        """An explorer never sees an error alert."""
        for e in self.client.of_kind("alert", None):
            if e.proto.format == Alert.ERROR:
                self.report.error(self.name, f"error alert on {self.page}", e.proto.body)

    async def act(self, kind: str, action) -> bool:
        t0 = time.perf_counter()
        try:
            await action()
        except (ClientError, KeyError, OSError, asyncio.TimeoutError) as exc:
            self.report.error(self.name, f"{kind} failed on {self.page}", str(exc) or type(exc).__name__)
            return False
        finally:
            if self.args.verbose:
                print(f"  [{time.strftime('%H:%M:%S')}] {self.name}: {kind} in {time.perf_counter() - t0:.2f} s",
                      flush=True)
        self.report.actions[kind] += 1
        return True

    async def think(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.args.think)


class Explorer(Person):
    """Drags the explorer's latent sliders and switches pages until the end of the last phase."""

    def __init__(self, *a, clock: Clock, **k) -> None:
        super().__init__(*a, **k)
        self.clock = clock

    def record(self, name: str, started: float, seconds: float) -> None:
        phase = self.clock.phase(started)
        if phase is not None:
            self.report.timings[name][phase].append(seconds)

    async def slider(self) -> None:
        if self.page != EXPLORER:
            await self.switch(EXPLORER)
        c = self.client
        sliders = [e for e in c.of_kind("slider") if "-slider::" in e.widget_id]
        if not sliders:
            raise ClientError("the explorer shows no latent sliders")
        s = sliders[self.rng.randrange(len(sliders))]
        lo, hi, step = s.proto.min, s.proto.max, s.proto.step or 0.05
        state = c.widget_states.get(s.widget_id)
        value = state.double_array_value.data[0] if state is not None else (s.proto.value or [0.0])[0]
        where = self.rng.uniform(0.15, 0.4) if (value - lo) / (hi - lo) > 0.5 else self.rng.uniform(0.6, 0.85)
        new = round((lo + where * (hi - lo)) / step) * step
        before = c.image_urls("decode(z)")
        c.set_widget(s.widget_id.split("-", 2)[2], double_array_value=[new])
        mark = c.mark()
        sent = await c.request(fragment_id=s.fragment_id)
        images = await c.until(lambda: (i := c.images("decode(z)")) and [u for u, _ in i] != before and i,
                               what="the new image")
        (url, delta), *_ = images
        await c.fetch(url)
        image = time.perf_counter()
        run = await c.until(lambda: c.finished_since(mark), what="the slider's run")
        self.record("slider_delta", sent, delta - sent)
        self.record("slider_image", sent, image - sent)
        self.record("slider_run", sent, run.finished - sent)

    async def switch(self, title: str) -> None:
        sent, shown, finished = await self.go(title)
        self.record("switch_title", sent, shown - sent)
        self.record("switch_run", sent, finished - sent)

    async def loop(self) -> None:
        while time.perf_counter() < self.clock.end:
            other = self.rng.choice(OTHER_PAGES)
            for kind, action in (("slider", self.slider), ("slider", self.slider),
                                 ("page switch", lambda: self.switch(other)),
                                 ("page switch", lambda: self.switch(EXPLORER))):
                if time.perf_counter() >= self.clock.end:
                    break
                if not await self.act(kind, action):
                    await self.recover()
                await self.think()

    async def recover(self) -> None:
        if self.client.closed_by_server:
            return
        try:
            await self.go(EXPLORER)
        except ClientError as exc:
            self.report.error(self.name, "recovering", str(exc))


@dataclass
class Seen:
    """One look at a trainer's page."""

    t: float
    state: str  # idle, queued, running, finished, cancelled, dropped, stopped, failed
    position: int | None = None
    wait_text: str | None = None
    text: str = ""


def job_state(c: StreamlitClient) -> Seen:
    """Where this session's job stands, as its Trainer page says."""
    now = time.perf_counter()
    for e in c.of_kind("alert"):
        body = e.proto.body
        if m := QUEUED.match(body):
            return Seen(now, "queued", int(m.group(1)), m.group(2), body)
        for prefix, state in (("Finished in", "finished"), ("Cancelled before it started", "cancelled"),
                              ("Dropped from the queue", "dropped"), ("Stopped", "stopped")):
            if body.startswith(prefix):
                return Seen(now, state, text=body)
        if e.proto.format == Alert.ERROR and ("diverged" in body or "failed" in body.lower()):
            return Seen(now, "failed", text=body)
    for e in c.of_kind("progress"):
        return Seen(now, "running", text=e.proto.text)
    return Seen(now, "idle")


class Trainer(Person):
    """Sets a small run on the Trainer page; at its turn presses Start and watches it to the end."""

    def __init__(self, *a, role: str = "train", **k) -> None:
        super().__init__(*a, **k)
        self.role = role  # train, cancel (cancels while queued), leave (leaves while queued)
        self.submitted: float | None = None
        self.seen: list[Seen] = []
        self.outcome: str | None = None  # the leaver: what its page says when it comes back

    async def prepare(self) -> None:
        await self.start("Trainer")
        c = self.client
        c.set_widget("trainer_images", string_array_value=[f"{self.args.train_images:,}"])
        await c.rerun()
        c.set_widget("trainer_epochs", double_value=float(self.args.train_epochs))
        await c.rerun()

    def look(self) -> Seen:
        seen = job_state(self.client)
        if seen.state == "idle" and self.submitted is not None:
            return seen  # between the job's end and the page's full rerun that shows the outcome
        if not self.seen or (seen.state, seen.position) != (self.seen[-1].state, self.seen[-1].position):
            self.seen.append(seen)
            if self.args.verbose:
                print(f"  [{time.strftime('%H:%M:%S')}] {self.name}: {seen.state}"
                      + (f" #{seen.position}" if seen.position else ""), flush=True)
        return seen

    async def train(self, deadline: float, pressed: asyncio.Event | None = None) -> None:
        """Press Start (then set `pressed`: the job is on the board) and watch the job to its end."""
        c = self.client
        try:
            _, run = await c.click("trainer_start")
        finally:
            if pressed is not None:
                pressed.set()
        self.submitted = run.finished
        self.report.actions["train start"] += 1
        queued_since = None
        while time.perf_counter() < deadline:
            seen = self.look()
            if seen.state in ENDED:
                return
            if seen.state == "queued":
                queued_since = queued_since or seen.t
                if self.role == "cancel" and seen.t - queued_since >= self.args.cancel_after:
                    await c.click("trainer_stop")
                    self.report.actions["train cancel"] += 1
                    self.role = "cancelled"
                elif self.role == "leave" and seen.t - queued_since >= LEAVE_AFTER_S:
                    await c.close()
                    self.report.actions["train leave"] += 1
                    self.role = "left"
                    return
            try:
                await c.until(lambda: (job_state(c).state, job_state(c).position) != (seen.state, seen.position),
                              timeout=2.0, what="a change")
            except ClientError:
                if c.closed_by_server:
                    raise
        raise ClientError(f"its job had not ended {self.args.drain:.0f} s after the phase")

    async def come_back(self, url: str) -> None:
        """The leaver opens the Trainer page again as the same browser (owner cookie) and reads its job."""
        self.client = StreamlitClient(url, cookies={"vaeviz_owner": self.token}, timeout=self.args.timeout)
        await self.start("Trainer")
        self.outcome = job_state(self.client).text or job_state(self.client).state


def summary(xs: list[float]) -> str:
    if not xs:
        return "no samples"
    ms = 1000 * np.asarray(xs)
    return f"p50 {np.median(ms):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms (max {ms.max():.0f}, n={len(ms)})"


def seconds(text: str | None) -> float | None:
    """'12 s' or '1 min 05 s' (vaeviz.ui.training.duration) -> seconds."""
    if not text:
        return None
    m = re.fullmatch(r"(?:(\d+) min )?(\d+) s", text.strip())
    return None if m is None else 60 * int(m.group(1) or 0) + int(m.group(2))


def queue_report(trainers: list[Trainer], limit: int, report: Report) -> list[str]:
    """The queue's behaviour as the trainers' pages showed it; broken rules go to report.problems."""
    lines = []
    intervals, waits, runs, estimates = [], [], [], []
    for t in trainers:
        running = [s.t for s in t.seen if s.state == "running"]
        ended = next((s for s in t.seen if s.state in ENDED), None)
        if running:
            last_running = max(s.t for s in t.seen if s.state == "running")
            intervals.append((min(running), last_running, t))
            if t.submitted is not None:
                waits.append(min(running) - t.submitted)
            if ended is not None and ended.state == "finished":
                runs.append(ended.t - min(running))
        positions = [s.position for s in t.seen if s.state == "queued"]
        if any(b > a for a, b in zip(positions, positions[1:])):
            report.problems.append(f"{t.name}'s place in the queue went up: {positions}")
        first = next((s for s in t.seen if s.state == "queued"), None)
        if first is not None and seconds(first.wait_text) is not None and running:
            estimates.append((seconds(first.wait_text), min(running) - first.t))
    # Jobs seen running at once: sweep over the inner bounds of what the polls saw.
    # A start and an end seen at the same instant overlap: starts sort first.
    events = sorted([(a, 1) for a, _, _ in intervals] + [(b, -1) for _, b, _ in intervals], key=lambda e: (e[0], -e[1]))
    now = most = 0
    for _, step in events:
        now += step
        most = max(most, now)
    if most > limit:
        report.problems.append(f"{most} jobs were seen running at once; the limit is {limit}")
    order = [t.name for t in trainers if t.submitted is not None]  # they press Start in this order, one by one
    started = [t.name for _, _, t in sorted(intervals, key=lambda i: i[0])]
    expected = [n for n in order if n in started]
    if started != expected:
        report.problems.append(f"jobs started out of the order they were queued: queued {order}, started {started}")
    for t in trainers:
        states = {s.state for s in t.seen}
        if t.role in ("train",) and "finished" not in states:
            report.problems.append(f"{t.name}'s job did not finish: it was seen {[s.state for s in t.seen]}")
        if t.role == "cancelled" and "cancelled" not in states:
            report.problems.append(f"{t.name} cancelled its queued job, but its page never said so: "
                                   f"{[s.state for s in t.seen]}")
        if t.role == "cancelled" and "running" in states:
            report.problems.append(f"{t.name}'s cancelled job ran")
    counts = Counter(next((s.state for s in t.seen if s.state in ENDED), "not ended") for t in trainers if t.role != "left")
    lines.append(f"queue: at most {limit} job(s) running at once (VAEVIZ_MAX_TRAINING_JOBS, else the cores minus one); "
                 f"{sum(t.submitted is not None for t in trainers)} jobs queued one by one, each "
                 f"{args_stagger(trainers)} s after the one before was on the board")
    for t in trainers:
        trail = []
        for s in t.seen:
            label = f"#{s.position}" if s.state == "queued" else s.state
            if not trail or trail[-1] != label:
                trail.append(label)
        last = t.seen[-1] if t.seen else None
        lines.append(f"  {t.name} ({t.role}): " + " > ".join(trail)
                     + (f"; came back to: {t.outcome[:110]}" if t.outcome else "")
                     + (f"; last seen: {last.text[:90]}" if last and last.state == "running" else ""))
    lines.append(f"  most jobs seen running at once: {most} (limit {limit})")
    if waits:
        lines.append(f"  wait, Start -> running: median {np.median(waits):.1f} s, max {max(waits):.1f} s (n={len(waits)})")
    if runs:
        lines.append(f"  run, running -> finished: median {np.median(runs):.1f} s, max {max(runs):.1f} s (n={len(runs)})")
    if estimates:
        errs = [shown - real for shown, real in estimates]
        lines.append(f"  first wait estimate shown minus the wait that followed: median {np.median(errs):+.0f} s "
                     f"(n={len(errs)}; the estimate needs one finished job first)")
    lines.append("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                 + "; started in the order queued: " + ("yes" if started == expected else "NO"))
    return lines


def args_stagger(trainers: list[Trainer]) -> str:
    return f"{trainers[0].args.stagger:g}" if trainers else "0"


def isolation(explorers: list[Explorer], trainers: list[Trainer], report: Report) -> str:
    """No explorer's Model box lists a model trained here; every trainer whose job finished lists one."""
    def trained(c: StreamlitClient) -> int:
        try:
            box = c.widget("model_key", SIDEBAR)
        except KeyError:
            return -1
        return sum("(trained here" in o for o in box.proto.options)

    for e in explorers:
        if (n := trained(e.client)) > 0:
            report.problems.append(f"{e.name}'s Model box lists {n} model(s) trained in other sessions")
    finished = [t for t in trainers if t.seen and t.seen[-1].state == "finished"]
    for t in finished:
        if (n := trained(t.client)) != 1:
            report.problems.append(f"{t.name} finished one run but its Model box lists {n} trained-here model(s)")
    return (f"isolation: {len(explorers)} explorers list no trained-here model; each of the {len(finished)} trainers "
            "whose job finished lists exactly its own")


def log_errors(log: Path) -> list[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return [line for line in text.splitlines() if "Traceback" in line or " ERROR " in line or "Exception in" in line]


def machine() -> str:
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return f"nproc {os.cpu_count()}; uptime: {uptime}"


async def hall(url: str, args, report: Report, clock: Clock, sampler: RssSampler, server: int) -> dict:
    n_train = min(args.trainers, args.sessions)
    explorers = [Explorer(f"explorer {i}", url, report, args, clock=clock) for i in range(args.sessions - n_train)]
    roles = ["train"] * n_train
    if n_train >= 3:
        roles[-1], roles[-2] = "cancel", "leave"  # the last to queue: the longest waits
    trainers = [Trainer(f"trainer {j}", url, report, args, role=roles[j]) for j in range(n_train)]
    figures: dict = {"phase_cpu": {}, "phase_peak": {}, "phase_end": {}, "client_cpu": {}}
    t0 = time.perf_counter()
    for p in explorers:
        await p.act("open", lambda p=p: p.start(EXPLORER))
    for t in trainers:
        await t.act("open", t.prepare)
    figures["open_s"] = time.perf_counter() - t0

    def cpu() -> tuple[float, float]:
        return cpu_seconds(tree(server)), time.process_time()

    clock.alone = time.perf_counter()
    clock.trainers = clock.alone + args.seconds
    clock.end = clock.trainers + args.seconds
    loops = [asyncio.create_task(e.loop()) for e in explorers]
    c0 = cpu()
    await asyncio.sleep(max(0.0, clock.trainers - time.perf_counter()))
    c1 = cpu()
    figures["phase_peak"][PHASES[0]] = sampler.peak
    figures["phase_end"][PHASES[0]] = sampler.sample() or sampler.last
    sampler.peak = sampler.last
    drain_deadline = clock.end + args.drain

    # One after another: each presses Start `--stagger` s after the one before has had its click's
    # run (its job is then on the board), so the order they press in is the queue's order.
    pressed = [asyncio.Event() for _ in trainers]

    async def start(j: int, t: Trainer) -> None:
        if j:
            await pressed[j - 1].wait()
            await asyncio.sleep(args.stagger)
        await t.act("train", lambda: t.train(drain_deadline, pressed[j]))

    jobs = [asyncio.create_task(start(j, t)) for j, t in enumerate(trainers)]
    await asyncio.gather(*loops)
    c2 = cpu()
    figures["phase_peak"][PHASES[1]] = sampler.peak
    figures["phase_end"][PHASES[1]] = sampler.sample() or sampler.last
    figures["phase_cpu"] = {PHASES[0]: c1[0] - c0[0], PHASES[1]: c2[0] - c1[0]}
    figures["client_cpu"] = {PHASES[0]: c1[1] - c0[1], PHASES[1]: c2[1] - c1[1]}
    await asyncio.gather(*jobs)
    figures["drained_s"] = time.perf_counter() - clock.end
    figures["all_ended"] = all(t.role == "left" or (t.seen and t.seen[-1].state in ENDED) for t in trainers)
    for t in trainers:
        if t.role == "left":
            await t.act("come back", lambda t=t: t.come_back(url))
    figures["isolation"] = isolation(explorers, trainers, report)
    figures["queue"] = queue_report(trainers, args.job_limit, report)
    for p in [*explorers, *trainers]:
        for line in p.client.client_errors:
            report.error(p.name, "a message the client could not read", line)
        if p.client.closed_by_server:
            report.error(p.name, "disconnect", "the server closed the websocket")
        await p.client.close()
    figures["explorers"], figures["trainers"] = len(explorers), len(trainers)
    return figures


def run(args) -> int:
    """Run the hall (bench/load_test.py's `--mode sockets`); print the figures; 0 if all held."""
    from vaeviz.jobs import default_job_limit  # the server computes the same from the same environment

    args.job_limit = default_job_limit()
    report, clock = Report(), Clock()
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vaeviz-hall-") as tmp:
        log = Path(tmp) / "server.log"
        extra = dict(item.split("=", 1) for item in args.env)
        if extra:
            print("server environment: " + " ".join(f"{k}={v}" for k, v in extra.items()))
        with running_app(env={"VAEVIZ_USER_DIR": str(Path(tmp) / "user"), **extra}, log=log) as url:
            server = server_pid(url)
            sampler = RssSampler(server)
            sampler.start()
            start_rss = sampler.first
            try:
                figures = asyncio.run(hall(url, args, report, clock, sampler, server))
            finally:
                sampler.stop()
        for line in log_errors(log):
            report.error("server log", line)
        if report.errors or os.environ.get("VAEVIZ_KEEP_LOG"):
            kept = ROOT / "bench" / "out" / "load-sockets-server.log"  # bench/out/ is git-ignored
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, kept)
            print(f"server log kept: {kept}")

    t = report.timings
    print(f"load test (sockets): {args.sessions} sessions ({figures['explorers']} explorers, "
          f"{figures['trainers']} trainers), two phases of {args.seconds:.0f} s, think time {args.think:g} s; "
          f"opening them one by one took {figures['open_s']:.0f} s")
    print(f"training: 2-D mlp VAE, {args.train_images:,} MNIST images x {args.train_epochs} epochs per job")
    print("actions: " + ", ".join(f"{k} {v}" for k, v in sorted(report.actions.items())))
    print(f"errors: {len(report.errors)}")
    for line in report.errors[:10]:
        print(f"  {line}")
    if len(report.errors) > 10:
        print(f"  ... and {len(report.errors) - 10} more")
    width = 52
    heads = (f"{PHASES[0]} ({figures['explorers']} explorers)", f"{PHASES[1]} (+{figures['trainers']} trainers)")
    print(f"{'':34}{heads[0]:{width}}{heads[1]}")
    rows = [("slider release -> new image", "slider_image"), ("slider release -> image delta", "slider_delta"),
            ("slider release -> run finished", "slider_run"), ("page switch -> title", "switch_title"),
            ("page switch -> run finished", "switch_run")]
    for label, name in rows:
        print(f"{label:34}{summary(t[name][PHASES[0]]):{width}}{summary(t[name][PHASES[1]])}")
    cores = os.cpu_count() or 1
    print(f"{'server CPU (of ' + str(round(args.seconds * cores)) + ' core-s)':34}"
          f"{figures['phase_cpu'][PHASES[0]]:.0f} s{'':{width - 5}}{figures['phase_cpu'][PHASES[1]]:.0f} s")
    print(f"{'clients CPU (this process)':34}{figures['client_cpu'][PHASES[0]]:.1f} s{'':{width - 7}}"
          f"{figures['client_cpu'][PHASES[1]]:.1f} s")
    print(f"{'server RSS peak':34}{mib(figures['phase_peak'][PHASES[0]]):{width}}{mib(figures['phase_peak'][PHASES[1]])}")
    print(f"{'server RSS at the phase end':34}{mib(figures['phase_end'][PHASES[0]]):{width}}"
          f"{mib(figures['phase_end'][PHASES[1]])}")
    print(f"server RSS: at start {mib(start_rss)}, peak {mib(max(figures['phase_peak'].values()))}, "
          f"at the end {mib(sampler.last)}")
    for line in figures["queue"]:
        print(line)
    print(f"  every job had ended {figures['drained_s']:.0f} s after the second phase" if figures["all_ended"] else
          f"  jobs had still not ended {figures['drained_s']:.0f} s after the second phase (--drain)")
    print(figures["isolation"] + (": ok" if not report.problems else ""))
    if report.problems:
        print("problems:")
        for line in report.problems:
            print(f"  {line}")
    return 1 if report.errors or report.problems else 0
