"""Two replicas, one user folder: models saved through either server at once appear in both, whole.

Starts two `streamlit run app.py` servers on two ports with one temporary user folder
(VAEVIZ_USER_DIR), as deploy/compose.yaml runs two containers on one volume. `--savers` light
websocket sessions on each (tests/support/stclient.py; each its own owner by its `vaeviz_owner`
cookie) train a small model on the Trainer page (a 2-D mlp VAE, 1,000 MNIST images, one epoch),
then all press Save at the same moment, `--rounds` times. Every name but one per replica is taken
on both servers at once (`r1-both-0` through A and through B), so each collision must end in one
save and one refusal ("already exists"), and the names only one server uses must all be saved.

Checked afterwards: the folder holds exactly the files whose saves were reported as done (none
lost, none extra, no temporary left over); each loads (`vaeviz.load_checkpoint`, tensors and
metadata validated) and records as its owner the session that was told it saved it; a fresh
session on each server lists every one in its Model box as "NAME (saved)"; and each replica opens
every model saved through the other in its Latent explorer, with a decoded image and no
exception. Exit status 1 if anything failed.

    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.replicas [--savers 3 --rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.load_sockets import job_state, log_errors, machine
from tests.support.browser import running_app
from tests.support.stclient import SIDEBAR, ClientError, StreamlitClient
from vaeviz import load_checkpoint
from vaeviz.store import owner_of

REPLICAS = ("A", "B")


class Saver:
    """One session on one replica: trains a small model, then saves it under a given name."""

    def __init__(self, replica: str, index: int, url: str, problems: list[str], timeout: float) -> None:
        self.replica, self.index = replica, index
        self.name = f"{replica}{index}"
        self.token = secrets.token_hex(16)
        self.problems = problems
        self.client = StreamlitClient(url, cookies={"vaeviz_owner": self.token}, timeout=timeout,
                                      on_exception=lambda t: problems.append(f"{self.name}: exception: {t[:200]}"))

    @property
    def owner_id(self) -> str:
        from vaeviz.ui.identity import browser_owner  # the app's own hash of a browser token

        return browser_owner(self.token).id

    async def open(self) -> None:
        c = self.client
        await c.connect()
        await c.open()
        await c.rerun(page="Trainer")
        c.set_widget("trainer_images", string_array_value=["1,000"])
        await c.rerun()
        c.set_widget("trainer_epochs", double_value=1.0)
        await c.rerun()

    async def train(self, timeout: float) -> None:
        c = self.client
        await c.click("trainer_start")
        await c.until(lambda: job_state(c).state in ("finished", "failed", "stopped") and c.has_widget("trainer_save"),
                      timeout=timeout, what="the run's end and the save panel")
        if job_state(c).state != "finished":
            raise ClientError(f"the run ended {job_state(c).state}: {job_state(c).text[:200]}")

    async def save(self, name: str, go: asyncio.Event) -> tuple[str, str]:
        """Set the name, wait for `go`, press Save; ("saved" | "refused" | "?", the message shown)."""
        c = self.client
        c.set_widget("trainer_save_name", string_value=name)
        await c.rerun()
        await go.wait()
        await c.click("trainer_save")
        for e in c.of_kind("alert"):
            body = e.proto.body
            if body.startswith("Saved as"):
                return "saved", body
            if "already exists" in body:
                return "refused", body
        return "?", " | ".join(e.proto.body[:120] for e in c.of_kind("alert")) or "no message"


async def listed(url: str, timeout: float) -> list[str]:
    """The labels a fresh session's Model box offers."""
    c = StreamlitClient(url, cookies={"vaeviz_owner": secrets.token_hex(16)}, timeout=timeout)
    await c.connect()
    try:
        await c.open()
        return list(c.widget("model_key", SIDEBAR).proto.options)
    finally:
        await c.close()


async def explore(url: str, labels: list[str], problems: list[str], replica: str, timeout: float) -> int:
    """Open each model (by its label) in the Latent explorer of `url`; how many showed a decoded image."""
    c = StreamlitClient(url, cookies={"vaeviz_owner": secrets.token_hex(16)}, timeout=timeout,
                        on_exception=lambda t: problems.append(f"replica {replica}'s explorer: exception: {t[:200]}"))
    await c.connect()
    shown = 0
    try:
        await c.open()
        await c.rerun(page="Latent explorer")
        for label in labels:
            c.set_widget("model_key", string_value=label)
            await c.rerun()
            if not any(label in e.text for e in c.of_kind("markdown")):  # "... the decoder's output for LABEL"
                problems.append(f"replica {replica}'s explorer does not show {label}")
            elif c.image_urls("decode(z)"):
                await c.fetch(c.image_urls("decode(z)")[0])
                shown += 1
            else:
                problems.append(f"replica {replica}'s explorer shows no decoded image for {label}")
    finally:
        await c.close()
    return shown


async def both(urls: dict[str, str], folder: Path, args) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    lines: list[str] = []
    savers = [Saver(r, i, urls[r], problems, args.timeout) for r in REPLICAS for i in range(args.savers)]
    for s in savers:
        await s.open()
    outcomes: dict[str, list[tuple[Saver, str, str]]] = {}
    spreads = []
    for rnd in range(1, args.rounds + 1):
        t0 = time.perf_counter()
        await asyncio.gather(*(s.train(args.timeout * 4) for s in savers))
        go = asyncio.Event()

        def name_for(s: Saver) -> str:  # all but the last of each replica collide across the replicas
            return f"r{rnd}-both-{s.index}" if s.index < args.savers - 1 else f"r{rnd}-only-{s.replica}"

        tasks = [asyncio.create_task(s.save(name_for(s), go)) for s in savers]
        await asyncio.sleep(1.0)  # every name is set; now press Save everywhere at once
        pressed = time.perf_counter()
        go.set()
        results = await asyncio.gather(*tasks)
        spreads.append(time.perf_counter() - pressed)
        for s, (result, message) in zip(savers, results):
            outcomes.setdefault(name_for(s), []).append((s, result, message))
        lines.append(f"round {rnd}: {len(savers)} sessions trained in {pressed - t0 - 1:.0f} s, then pressed Save "
                     f"at once; every answer within {spreads[-1] * 1000:.0f} ms")

    saved: dict[str, Saver] = {}
    for name, tries in sorted(outcomes.items()):
        results = Counter(r for _, r, _ in tries)
        winners = [s for s, r, _ in tries if r == "saved"]
        if len(winners) != 1 or results["?"]:
            problems.append(f"{name}: {dict(results)} ({'; '.join(m[:100] for _, _, m in tries)})")
        if winners:
            saved[name] = winners[0]
    collided = [n for n in outcomes if len(outcomes[n]) > 1]
    lines.append(f"saves: {len(outcomes)} names, {len(collided)} of them pressed on both replicas at once; "
                 f"{len(saved)} saved, {sum(len(v) for v in outcomes.values()) - len(saved)} refused "
                 f"(each collision: one saved, the other told the name is taken)")
    wins = Counter(saved[n].replica for n in collided if n in saved)
    lines.append("  collisions won by: " + ", ".join(f"replica {r} {wins[r]}" for r in REPLICAS))

    files = {p.stem: p for p in folder.glob("*.safetensors")}
    leftovers = sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".vaeviz.lock")
    if set(files) != set(saved):
        problems.append(f"the folder holds {sorted(files)}, the sessions were told {sorted(saved)}")
    if leftovers:
        problems.append(f"left in the folder: {leftovers}")
    loaded = 0
    for name, path in sorted(files.items()):
        try:
            load_checkpoint(path)
            loaded += 1
        except ValueError as exc:
            problems.append(f"{path.name} does not load: {exc}")
        if name in saved and owner_of(path) != saved[name].owner_id:
            problems.append(f"{path.name} records owner {owner_of(path)}, but {saved[name].name} was told it saved it")
    lines.append(f"folder: {len(files)} files, {loaded} load whole (tensors and metadata checked), each owned by the "
                 f"session told it saved it; temporaries left: {len(leftovers)}")

    for r in REPLICAS:
        options = await listed(urls[r], args.timeout)
        missing = [n for n in saved if f"{n} (saved)" not in options]
        if missing:
            problems.append(f"replica {r}'s Model box lacks {missing}")
        lines.append(f"replica {r}: a fresh session's Model box lists {len(saved) - len(missing)} of the {len(saved)} "
                     "saved models")
    for r, other in (("A", "B"), ("B", "A")):
        theirs = [f"{n} (saved)" for n, s in sorted(saved.items()) if s.replica == other]
        shown = await explore(urls[r], theirs, problems, r, args.timeout)
        lines.append(f"replica {r}: opened {shown} of the {len(theirs)} models saved through {other} in its Latent "
                     "explorer (a decoded image each)")
    for s in savers:
        problems += [f"{s.name}: {e}" for e in s.client.client_errors]
        if s.client.closed_by_server:
            problems.append(f"{s.name}: the server closed the websocket")
        await s.client.close()
    return lines, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--savers", type=int, default=3, help="sessions per replica (at least 2)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    if args.savers < 2:
        parser.error("--savers must be at least 2: one name only one replica uses, the others on both")
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vaeviz-replicas-") as tmp:
        folder = Path(tmp) / "user"
        folder.mkdir()
        env = {"VAEVIZ_USER_DIR": str(folder)}
        logs = {r: Path(tmp) / f"server-{r}.log" for r in REPLICAS}
        with running_app(env=env, log=logs["A"]) as a, running_app(env=env, log=logs["B"]) as b:
            urls = {"A": a, "B": b}
            print(f"replicas: A at {a}, B at {b}; one user folder {folder}; {args.savers} sessions each", flush=True)
            lines, problems = asyncio.run(both(urls, folder, args))
        for r in REPLICAS:
            problems += [f"replica {r}'s log: {line}" for line in log_errors(logs[r])]
    for line in lines:
        print(line)
    print(f"problems: {len(problems)}")
    for line in problems:
        print(f"  {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
