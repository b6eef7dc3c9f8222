"""Memory of a long live-training run: does the process grow per step?

Runs a `TrainingJob` (the Trainer page's background job) for a fixed time while a poller does
what the page does once a second: reads `job.view()` and builds every figure and picture from it
(loss curves, KL bars, latent map, PNGs of the sample grids) and, like the page, runs a full garbage
collection every `FULL_GC_EVERY_POLLS` polls. Samples the process's resident memory
(VmRSS from /proc/self/status) every few seconds and prints start, median, max and the growth per
minute (a least-squares slope over the samples after the warm-up).

    VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.trainer_memory [--seconds 600 --every 5]

Diagnostics: `--no-render` (the training thread alone), `--gc-every 0` (leave collection to
Python: memory then creeps ~2 MB/min with the figures' garbage), `--tracemalloc` (where the
Python heap grew), `--curve-points N` (a smaller cap on the live curve).
"""

from __future__ import annotations

import argparse
import gc
import io
import statistics
import time


from PIL import Image

from vaeviz import latent
from vaeviz.figures import training as training_plots
from vaeviz import jobs
from vaeviz.jobs import RunSpec, TrainingJob


def rss_mb() -> float:
    """Resident memory of this process in MB (psutil-free: /proc/self/status)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def render_like_the_page(job: TrainingJob) -> int:
    """What the live panel builds each poll; returns the bytes produced (so nothing is optimised away)."""
    view = job.view()
    size = 0
    figs = [training_plots.loss_curves(view.steps, view.epochs, kind=view.spec.kind)]
    if view.kl_per_dim is not None:
        figs.append(training_plots.kl_bars(view.kl_per_dim))
    vis = view.visuals
    if "map_xy" in vis:
        figs.append(training_plots.latent_scatter(vis["map_xy"], vis["map_labels"], vis["map_classes"], vis["map_axes"]))
    for fig in figs:
        size += len(fig.to_json())
    for key, scale in (("samples", 2), ("holdout", 3)):
        if vis.get(key) is not None:
            buf = io.BytesIO()
            Image.fromarray(latent.enlarge(vis[key], scale)).save(buf, format="PNG")
            size += buf.tell()
    return size


def slope_per_minute(ts: list[float], ys: list[float]) -> float:
    n = len(ts)
    if n < 2:
        return 0.0
    mt, my = sum(ts) / n, sum(ys) / n
    var = sum((t - mt) ** 2 for t in ts)
    return 60 * sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / var if var else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600, help="length of the run (default 600)")
    parser.add_argument("--every", type=float, default=5, help="seconds between memory samples")
    parser.add_argument("--warmup", type=float, default=20, help="seconds of training before 'start' is taken")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--kind", default="vae")
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--images", type=int, default=None, help="training images (default all)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-render", action="store_true", help="do not build the page's figures each second")
    parser.add_argument("--curve-points", type=int, default=None,
                        help=f"cap of the live curve (default jobs.MAX_CURVE_POINTS = {jobs.MAX_CURVE_POINTS})")
    parser.add_argument("--gc-every", type=int, default=jobs.FULL_GC_EVERY_POLLS,
                        help="a full garbage collection every N polls, as the page does "
                             f"(default {jobs.FULL_GC_EVERY_POLLS}; 0 leaves it to Python)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also trace Python allocations and print where they grew (slower)")
    args = parser.parse_args()
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(5)

    if args.curve_points:
        jobs.MAX_CURVE_POINTS = args.curve_points
    spec = RunSpec(dataset=args.dataset, kind=args.kind, arch=args.arch, latent_dim=args.latent_dim,
                   epochs=10_000, train_images=args.images, device="auto")
    before = rss_mb()
    job = TrainingJob([spec], threads=args.threads).start()
    while job.view().status in ("starting", "loading data"):
        time.sleep(0.2)
    t0 = time.monotonic()
    first_trace = None
    print(f"rss before the job {before:.1f} MB; data loaded, training from {rss_mb():.1f} MB", flush=True)
    samples: list[tuple[float, float]] = []
    next_sample, rendered, polls = 0.0, 0, 0
    while (elapsed := time.monotonic() - t0) < args.seconds:
        if not job.alive:
            print(f"the job ended early: {job.view().status} {job.view().message}")
            break
        if not args.no_render:
            rendered += render_like_the_page(job)
            polls += 1
            if args.gc_every and polls % args.gc_every == 0:
                gc.collect()  # plotly figures hold reference cycles: only the cyclic collector frees them
        if args.tracemalloc and first_trace is None and elapsed >= args.warmup:
            first_trace = tracemalloc.take_snapshot()
        if elapsed >= next_sample:
            v = job.view()
            samples.append((elapsed, rss_mb()))
            print(f"{elapsed:7.1f} s  rss {samples[-1][1]:8.1f} MB  epoch {v.progress['epoch']:4d}  "
                  f"step {v.progress['step']:7d}  {v.progress['images_per_s']:8.0f} img/s  curve points {len(v.steps)}  "
                  f"python objects {len(gc.get_objects()):,}", flush=True)
            next_sample += args.every
        time.sleep(1.0)
    last_trace = tracemalloc.take_snapshot() if args.tracemalloc and first_trace is not None else None
    job.stop()
    job.join(60)
    v = job.view()
    after = [(t, m) for t, m in samples if t >= args.warmup] or samples
    ts, ms = [t for t, _ in after], [m for _, m in after]
    print(f"\n{spec.kind}/{spec.arch} latent={spec.latent_dim} on {spec.dataset}, {args.seconds:.0f} s, "
          f"{v.progress['step']:,} steps, {len(v.epochs)} epochs, threads {job.threads}, "
          f"page rendering {'off' if args.no_render else 'on'} ({rendered / 1e6:.0f} MB of figures/PNGs built)")
    print(f"rss start (after {args.warmup:.0f} s warm-up): {ms[0]:.1f} MB")
    print(f"rss median: {statistics.median(ms):.1f} MB   max: {max(ms):.1f} MB   end: {ms[-1]:.1f} MB")
    print(f"growth: {ms[-1] - ms[0]:+.1f} MB over {ts[-1] - ts[0]:.0f} s; slope {slope_per_minute(ts, ms):+.2f} MB/min")

    if last_trace is not None:
        stats = last_trace.compare_to(first_trace, "traceback")
        print(f"python heap (tracemalloc) after warm-up: {sum(st.size_diff for st in stats) / 1e6:+.2f} MB; top growth:")
        for stat in stats[:5]:
            print(f"  {stat.size_diff / 1e3:+9.1f} kB in {stat.count_diff:+d} blocks at {stat.traceback.format()[-1].strip()}")


if __name__ == "__main__":
    main()
