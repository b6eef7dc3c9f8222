"""The road not taken: a decoder exported to ONNX and run by onnxruntime-web, timed as the live one.

Measures, in headless Chromium, what the live decoder would cost with onnxruntime-web's WebAssembly
backend (single-threaded: threads need a cross-origin-isolated page, which Streamlit does not
serve): the files the browser must load, start-up (import the runtime, compile its WebAssembly,
create a session from the ONNX bytes, one run) and the frame time (one `session.run` + drawing,
timed in batches of 10 as bench/decoder_fps.py does). The runtime's files are served to the page
by a local HTTP server, so nothing comes from the network and the start-up is a lower bound: a
real page would also download them. Needs the `onnx` package for the export (a vaeviz
dependency now, for `vaeviz import-onnx`) and an unpacked onnxruntime-web:

    cd /tmp && npm pack onnxruntime-web@1.30.0 && mkdir -p ort && tar xzf onnxruntime-web-1.30.0.tgz -C ort
    .venv/bin/python -m bench.onnx_compare --ort-dist /tmp/ort/package/dist [checkpoints ...]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import http.server
import io
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import torch


from bench.decoder_fps import CANVAS_PX, wandering_codes
from tests.support.browser import launch_browser
from vaeviz import ModelConfig, build_model
from vaeviz.checkpoint import SHIPPED_DIR, find_checkpoints, load_checkpoint

RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")

MEASURE_JS = """
async ([onnxB64, latentDim, imageShape, codesB64, n, px]) => {
  const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const t0 = performance.now();
  const ort = await import("@ORIGIN@/ort.wasm.min.mjs");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = "@ORIGIN@/";
  const session = await ort.InferenceSession.create(bytes(onnxB64), {executionProviders: ["wasm"]});
  const input = new Float32Array(latentDim);
  await session.run({z: new ort.Tensor("float32", input, [1, latentDim])});
  const startup = performance.now() - t0;

  const codes = new Float32Array(bytes(codesB64).buffer);
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = px;
  document.body.replaceChildren(canvas);
  const [c, h, w] = imageShape;
  const small = document.createElement("canvas");
  small.width = w; small.height = h;
  const image = small.getContext("2d").createImageData(w, h);
  const frame = async (i) => {
    const z = codes.subarray((i % n) * latentDim, (i % n + 1) * latentDim);
    const out = await session.run({z: new ort.Tensor("float32", z, [1, latentDim])});
    const pixels = out.x.data;
    for (let p = 0; p < h * w; p++) {
      const v = Math.round(pixels[p] * 255);
      image.data[4 * p] = image.data[4 * p + 1] = image.data[4 * p + 2] = v;
      image.data[4 * p + 3] = 255;
    }
    small.getContext("2d").putImageData(image, 0, 0);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, px, px);
  };
  for (let i = 0; i < 30; i++) await frame(i);
  const times = [];
  for (let b = 0; b < n / 10; b++) {
    const t1 = performance.now();
    for (let i = 10 * b; i < 10 * b + 10; i++) await frame(i);
    times.push((performance.now() - t1) / 10);
  }
  return {startup, median: median(times)};
}
"""


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve `folder` over HTTP on localhost (a real server: Playwright's routing is slow for 14 MB)."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.func.extensions_map = {**handler.func.extensions_map, ".mjs": "text/javascript", ".wasm": "application/wasm"}
    handler.func.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


class Decode(torch.nn.Module):
    """model.decode as a module, for the exporter: codes (1, D) -> images (1, C, H, W)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)


def onnx_bytes(model) -> bytes:
    buf = io.BytesIO()
    torch.onnx.export(Decode(model).eval(), (torch.zeros(1, model.cfg.latent_dim),), buf, dynamo=False,
                      input_names=["z"], output_names=["x"], opset_version=17)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", help="default: every shipped checkpoint")
    parser.add_argument("--ort-dist", required=True, type=Path, help="onnxruntime-web's dist/ folder")
    args = parser.parse_args()
    models = [(Path(p).stem, load_checkpoint(p)) for p in args.checkpoints or find_checkpoints([SHIPPED_DIR])]
    if not any(m.cfg.arch == "conv" for _, m in models):
        models.append(("conv-16 (untrained)", build_model("vae", ModelConfig(arch="conv", latent_dim=16), seed=0)))

    sizes = {name: (args.ort_dist / name).stat().st_size for name in RUNTIME_FILES}
    gz = {name: len(gzip.compress((args.ort_dist / name).read_bytes())) for name in RUNTIME_FILES}
    print("onnxruntime-web files a page needs (wasm backend): " + ", ".join(
        f"{n} {sizes[n] / 2**20:.2f} MB ({gz[n] / 2**20:.2f} MB gzipped)" for n in RUNTIME_FILES))
    print(f"  total {sum(sizes.values()) / 2**20:.1f} MB ({sum(gz.values()) / 2**20:.1f} MB gzipped)")
    print(f"{'decoder':28s} {'onnx':>8s} {'start-up':>9s} {'frame':>8s} {'fps':>6s}")

    with serve_folder(args.ort_dist) as origin, launch_browser() as browser:
        measure_js = MEASURE_JS.replace("@ORIGIN@", origin)
        for name, model in models:
            page = browser.new_page()  # a fresh page each time: a cold start, as for a student
            page.goto(f"{origin}/")
            blob = onnx_bytes(model)
            codes = wandering_codes(model.cfg.latent_dim, 400)
            r = page.evaluate(measure_js, [base64.b64encode(blob).decode(), model.cfg.latent_dim,
                                           list(model.cfg.image_shape), base64.b64encode(codes.tobytes()).decode(),
                                           400, CANVAS_PX])
            print(f"{name:28s} {len(blob) / 2**20:6.2f}MB {r['startup']:7.0f}ms {r['median']:6.2f}ms "
                  f"{1000 / r['median']:6.0f}")
            page.close()


if __name__ == "__main__":
    main()
