"""Frame time of the live decoder in headless Chromium: decode one code and draw it, per decoder.

For each shipped checkpoint (or the paths given; plus the shipped conv shape with initial weights
when no conv checkpoint is there yet) it loads the component's own JavaScript module in
a blank page (no Streamlit, no network), then measures:

- start-up: base64 weights -> Float32Array -> compiled decoder -> first image (median of 5, ms);
- frame: decode + draw onto a 300x300 canvas, for 400 codes along a wandering path, as a drag
  makes them, timed in batches of 10 (median and 95th percentile of the batches' mean frame
  time, ms; fps = 1000 / median);
- paced: frames actually shown in 3 s of requestAnimationFrame, one decode + draw per frame (the
  screen's refresh rate caps it, 60 in headless Chromium);

and the size of what the browser is sent: the module (plain and gzipped) and each model's weights.

    .venv/bin/python -m bench.decoder_fps [checkpoints ...]
"""

from __future__ import annotations

import argparse
import base64
import gzip
from pathlib import Path

import numpy as np


from tests.support.browser import launch_browser
from tests.support.live_browser import open_module_page, spec_args
from vaeviz import ModelConfig, build_model, webdecoder
from vaeviz.checkpoint import SHIPPED_DIR, find_checkpoints, load_checkpoint

CANVAS_PX = 300  # the explorer's live image

MEASURE_JS = """
async ([spec, weightsB64, codesB64, n, px]) => {
  const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
  const p95 = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(0.95 * (s.length - 1))]; };
  const startups = [];
  let dec;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    dec = vz.createDecoder(spec, vz.bytesToFloat32(vz.base64ToBytes(weightsB64)));
    dec.decode(new Float64Array(spec.latent_dim));
    startups.push(performance.now() - t0);
  }
  const codes = vz.bytesToFloat32(vz.base64ToBytes(codesB64));
  const d = spec.latent_dim;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = px;
  document.body.replaceChildren(canvas);
  const scratch = document.createElement("canvas");
  const frame = (i) => {
    const pixels = dec.decode(codes.subarray((i % n) * d, (i % n + 1) * d));
    vz.drawPixels(canvas, pixels, spec.image_shape, scratch);
  };
  for (let i = 0; i < 30; i++) frame(i); // warm up the JIT
  // Time batches of 10 frames: performance.now() is coarse (0.1 ms) in a page that is not
  // cross-origin isolated, too coarse for a single frame.
  const times = [];
  for (let b = 0; b < n / 10; b++) {
    const t0 = performance.now();
    for (let i = 10 * b; i < 10 * b + 10; i++) frame(i);
    times.push((performance.now() - t0) / 10);
  }
  const shown = await new Promise((resolve) => {
    let count = 0, first = null;
    const tick = (now) => {
      frame(count++);
      if (first === null) first = now;
      if (now - first < 3000) requestAnimationFrame(tick);
      else resolve((count - 1) / ((now - first) / 1000));
    };
    requestAnimationFrame(tick);
  });
  return {startup: median(startups), median: median(times), p95: p95(times), paced: shown};
}
"""


def wandering_codes(latent_dim: int, n: int, seed: int = 0) -> np.ndarray:
    """n codes along a smooth random walk within the prior's bulk: what a drag produces."""
    rng = np.random.default_rng(seed)
    steps = rng.standard_normal((n, latent_dim)) * 0.08
    walk = np.cumsum(steps, axis=0)
    return (np.tanh(walk / 2.5) * 2.5).astype(np.float32)


def measure(page, spec: dict, n: int = 400) -> dict:
    light, weights = spec_args(spec)
    codes = wandering_codes(spec["latent_dim"], n)
    return page.evaluate(MEASURE_JS, [light, weights, base64.b64encode(codes.tobytes()).decode(), n, CANVAS_PX])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", help="default: every shipped checkpoint")
    args = parser.parse_args()
    models = [(Path(p).stem, load_checkpoint(p)) for p in args.checkpoints or find_checkpoints([SHIPPED_DIR])]
    if not any(m.cfg.arch == "conv" for _, m in models):
        # No conv checkpoint (yet): time the shipped conv shape with initial weights; the work per
        # frame depends on the shape (and on how many activations ReLU zeroes), not on training.
        models.append(("conv-16 (untrained)", build_model("vae", ModelConfig(arch="conv", latent_dim=16), seed=0)))

    from vaeviz.webdecoder import browser_css, browser_module

    js = browser_module().encode()
    css = browser_css().encode()
    print(f"component module: {len(js) / 1024:.1f} kB ({len(gzip.compress(js)) / 1024:.1f} kB gzipped), "
          f"css {len(css) / 1024:.1f} kB; no other files, nothing from the network")
    print(f"{'decoder':28s} {'params':>8s} {'weights':>9s} {'start-up':>9s} {'frame':>8s} {'p95':>7s} "
          f"{'fps':>6s} {'paced':>6s}")
    with launch_browser() as browser:
        page = open_module_page(browser)
        for name, model in models:
            spec = webdecoder.decoder_spec(model)
            r = measure(page, spec)
            payload_kb = len(base64.b64encode(spec["weights"])) / 1024
            print(f"{name:28s} {spec['params']:8,d} {payload_kb:7.0f}kB {r['startup']:7.1f}ms "
                  f"{r['median']:6.2f}ms {r['p95']:5.2f}ms {1000 / r['median']:6.0f} {r['paced']:6.1f}")


if __name__ == "__main__":
    main()
