"""SIGKILL a process while it saves a checkpoint, at random moments, and check what is left.

Each trial forks a child that saves a real model (a conv VAE with a 16-D latent, 1.7 MB) with
`vaeviz.checkpoint.save_checkpoint` and kills it with SIGKILL. Half the kills come at a random
delay spread over the save's measured duration (and a little beyond, so some saves finish); the
other half watch the folder and kill once the save's temporary file appears, at once or up to the
write-to-rename span later, since the write itself is about a millisecond of a 40 ms save. Every
other trial saves over an existing good file of the same name, the rest a new file beside it.
After each kill:

- the folder is looked at before anything tidies it: a temporary file shorter than the checkpoint
  means the kill landed mid-write, a full-length one that it landed between the write and the
  rename; none, with the old file still there, that it landed before the file was opened;
- the previous file must be byte-identical to before, or (an overwrite whose rename happened)
  replaced by the complete new checkpoint; a bystander file must always be byte-identical;
- every file `find_checkpoints` lists (what the sidebar and the model zoo list) must load with
  `load_checkpoint`, and no temporary may be listed;
- temporaries left by the kill must be gone after that listing (it removes dead saves' files).

Prints the figures for the README's Reliability section and exits 1 if any check failed. Linux
and macOS (it forks). Run: `.venv/bin/python -m bench.kill_during_save --trials 200`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import torch


from vaeviz import ModelConfig, build_model, load_checkpoint
from vaeviz.checkpoint import find_checkpoints, save_checkpoint



def temporaries(folder: Path) -> list[Path]:
    """Hidden `.part` files: write_atomic's temporaries (never listed, never a checkpoint)."""
    return sorted(p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".part"))


def save_in_child(model, path: Path, report_fd: int | None = None) -> int:
    """Fork a child that saves `model` to `path` and exits; returns its pid once the save begins.

    The child says "starting" through a pipe right before it calls `save_checkpoint`, so the
    parent's random delay is measured from there, not from the fork (a loaded machine can take
    milliseconds to run a new process). With `report_fd`, the child times its own save
    (calibration only): when its first and last `os.write` began and ended, when the rename came
    and when the save returned, in seconds after "starting", written to `report_fd` as JSON.
    """
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: save, then leave without running the parent's cleanup handlers
        code = 0
        try:
            os.close(ready_r)
            marks = {}
            if report_fd is not None:
                real_write, real_replace = os.write, os.replace

                def timed_write(fd, data):
                    marks.setdefault("write_start", time.perf_counter() - start)
                    n = real_write(fd, data)
                    marks["write_end"] = time.perf_counter() - start
                    return n

                def timed_replace(src, dst):
                    marks["rename"] = time.perf_counter() - start
                    return real_replace(src, dst)

                os.write, os.replace = timed_write, timed_replace
            (real_write if report_fd is not None else os.write)(ready_w, b"s")
            start = time.perf_counter()
            save_checkpoint(model, path)
            if report_fd is not None:
                marks["end"] = time.perf_counter() - start
                os.write, os.replace = real_write, real_replace
                os.write(report_fd, json.dumps(marks).encode())
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    os.close(ready_w)
    os.read(ready_r, 1)  # blocks until the child is about to save
    os.close(ready_r)
    return pid


def calibrate(model, folder: Path, runs: int = 9) -> dict[str, float]:
    """Median times (s after the save began) of an unkilled save's write, rename and end."""
    reports = []
    for _ in range(runs):
        read_fd, write_fd = os.pipe()
        pid = save_in_child(model, folder / "calibrate.safetensors", report_fd=write_fd)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as f:
            report = f.read()
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not report:
            raise SystemExit("a save failed during calibration")
        reports.append(json.loads(report))
    (folder / "calibrate.safetensors").unlink()
    return {k: statistics.median(r[k] for r in reports) for k in reports[0]}


def wait_for_temporary(folder: Path, pid: int) -> int | None:
    """Spin until a save's temporary file appears (None) or the child has exited (its status)."""
    while True:
        with os.scandir(folder) as entries:
            if any(e.name.endswith(".part") for e in entries):
                return None
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status


def loads_as(path: Path, model) -> bool:
    """True if `path` is a checkpoint that loads and holds `model`'s weights."""
    try:
        return same_weights(model, load_checkpoint(path))
    except ValueError:
        return False


def same_weights(model, other) -> bool:
    a, b = model.state_dict(), other.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=None, help="folder to save in (default: a new temporary one)")
    ap.add_argument("--stretch", type=float, default=1.25,
                    help="kills are spread over [0, stretch x the save's duration]")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # one thread: forking a process with a thread pool is asking for a deadlock
    rng = random.Random(args.seed)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="vaeviz-kill-"))
    folder.mkdir(parents=True, exist_ok=True)

    cfg = ModelConfig(arch="conv", latent_dim=16)
    old_model = build_model("vae", cfg, seed=1)
    new_model = build_model("vae", cfg, seed=2)  # different weights: an old file and a new one differ
    existing = save_checkpoint(old_model, folder / "existing.safetensors")
    bystander = save_checkpoint(old_model, folder / "bystander.safetensors")
    existing_bytes, bystander_bytes = existing.read_bytes(), bystander.read_bytes()
    full_size = len(existing_bytes)
    timing = calibrate(new_model, folder)
    duration, write_start, write_end = timing["end"], timing["write_start"], timing["write_end"]
    print(f"kill_during_save: {args.trials} trials, conv VAE (16-D latent), checkpoint {full_size / 1e6:.2f} MB, "
          f"in {args.dir or 'a new temporary folder'}")
    print(f"an unkilled save (median of 9, ms after it began): writing {write_start * 1e3:.1f}-{write_end * 1e3:.1f}, "
          f"rename at {timing.get('rename', float('nan')) * 1e3:.1f}, done at {duration * 1e3:.1f}")
    # Half the kills are spread over the whole save (and a little beyond, so some saves finish).
    # The write itself takes about a millisecond of the save, and a busy machine stretches the
    # serialising before it, so the other half watch for the temporary file to appear and then
    # kill at once (half of them: noticing and signalling take about as long as the write) or
    # after a random delay up to the write-to-rename span (the flush to disk and the rename).
    spread = args.stretch * duration
    aimed = timing.get("rename", write_end) - write_start
    print(f"kills: even trials at a uniform random delay of 0-{spread * 1e3:.1f} ms after the save began; odd "
          f"trials once its temporary file appeared, at once or 0-{aimed * 1e3:.1f} ms later")

    phases: Counter[str] = Counter()
    failures: list[str] = []
    previous: Counter[str] = Counter()
    before_rename = intact_before_rename = bystander_intact = 0
    temps_after_kill = 0
    temps_after_listing = 0
    listed_partial = 0
    listed_total = 0
    for trial in range(args.trials):
        overwrite = trial % 2 == 0
        target = existing if overwrite else folder / "new.safetensors"
        pid = save_in_child(new_model, target)
        status = None
        if (trial // 2) % 2 == 0:  # both kinds of timing for both kinds of save
            time.sleep(rng.uniform(0.0, spread))
        else:
            status = wait_for_temporary(folder, pid)
            delay = rng.uniform(0.0, aimed) if rng.random() < 0.5 else 0.0
            if status is None and delay:
                time.sleep(delay)
        if status is None:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status)
        if not killed and os.waitstatus_to_exitcode(status) != 0:
            failures.append(f"trial {trial}: the save itself failed (exit code {os.waitstatus_to_exitcode(status)})")

        # 1. The folder as the kill left it, before any listing or save tidies it.
        temps = temporaries(folder)
        temps_after_kill += len(temps)
        now_existing = existing.read_bytes()
        new_there = (folder / "new.safetensors").exists()
        if not killed:
            phase = "save finished before the kill"
        elif temps:
            size = max(t.stat().st_size for t in temps)
            phase = "mid-write (temporary file partly written)" if size < full_size else \
                "after the write, before the rename"
        elif (overwrite and now_existing != existing_bytes) or (not overwrite and new_there):
            phase = "after the rename (the save was complete)"
        else:
            phase = "before the temporary file was created"
        phases[phase] += 1

        # 2. The previous file: untouched, or (an overwrite that got as far as the rename) the new one, whole.
        if phase not in ("after the rename (the save was complete)", "save finished before the kill"):
            before_rename += 1
            intact_before_rename += now_existing == existing_bytes
        if now_existing == existing_bytes:
            previous["byte-identical to before"] += 1
        elif overwrite and loads_as(existing, new_model):
            previous["replaced by the complete new checkpoint"] += 1
        else:
            previous["damaged"] += 1
            failures.append(f"trial {trial}: the previous file changed ({phase})")
        if bystander.read_bytes() == bystander_bytes:
            bystander_intact += 1
        else:
            failures.append(f"trial {trial}: the bystander file changed")

        # 3. What the app lists must load; no temporary may be listed.
        listed = find_checkpoints([folder])
        for path in listed:
            listed_total += 1
            if path.name.startswith(".") or path.suffix != ".safetensors":
                listed_partial += 1
                failures.append(f"trial {trial}: a temporary was listed: {path.name}")
                continue
            try:
                model = load_checkpoint(path)
            except ValueError as exc:
                listed_partial += 1
                failures.append(f"trial {trial}: {path.name} is listed but does not load: {exc}")
                continue
            if path.name == "new.safetensors" and not same_weights(new_model, model):
                failures.append(f"trial {trial}: new.safetensors loads but holds other weights")

        # 4. The listing removed the dead save's temporary.
        left = temporaries(folder)
        temps_after_listing += len(left)
        if left:
            failures.append(f"trial {trial}: temporaries still there after the listing: {[p.name for p in left]}")

        # Back to the starting state for the next trial.
        if existing.read_bytes() != existing_bytes:
            save_checkpoint(old_model, existing)
            existing_bytes = existing.read_bytes()  # same weights; only the creation time can differ
        (folder / "new.safetensors").unlink(missing_ok=True)

    if args.dir is None:
        shutil.rmtree(folder)  # a folder of our own: nothing in it is worth keeping
    n = args.trials
    print()
    print("where the kills landed:")
    for phase in ("before the temporary file was created", "mid-write (temporary file partly written)",
                  "after the write, before the rename", "after the rename (the save was complete)",
                  "save finished before the kill"):
        print(f"  {phase:<45} {phases[phase]:>5}")
    print("the previous file after each kill:")
    for what in ("byte-identical to before", "replaced by the complete new checkpoint", "damaged"):
        print(f"  {what:<45} {previous[what]:>5}")
    print(f"previous file intact (byte-identical, or wholly the new save): {n - previous['damaged']}/{n}; "
          f"byte-identical whenever the kill came before the rename: {intact_before_rename}/{before_rename}")
    print(f"bystander file byte-identical: {bystander_intact}/{n}")
    print(f"listed files that do not load (partial files listed): {listed_partial} of {listed_total} listed")
    print(f"temporary files left right after the kills: {temps_after_kill} (never listed); "
          f"left after the next listing: {temps_after_listing}")
    if failures:
        print(f"\nFAILED: {len(failures)} problem(s)")
        for f in failures[:20]:
            print("  " + f)
        return 1
    if phases["mid-write (temporary file partly written)"] == 0:
        print("\nnote: no kill landed mid-write; run more trials")
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
