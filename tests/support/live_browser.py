"""Helpers to run the live decoder's JavaScript in a blank Chromium page, without Streamlit.

The page imports the very module the app mounts (`vaeviz.webdecoder.browser_module()`) from a
blob: URL, so tests and benchmarks exercise the shipped code, not a copy. Big arrays cross the
Playwright boundary as base64 (little-endian float32 or float64), which is far quicker than JSON.
"""

from __future__ import annotations

import base64

import numpy as np

LOAD_MODULE_JS = """
async (source) => {
  const url = URL.createObjectURL(new Blob([source], {type: "text/javascript"}));
  window.vz = await import(url);
  window.vzToBase64 = (bytes) => {
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };
  return Object.keys(window.vz).sort();
}
"""

DECODE_MANY_JS = """
([spec, weightsB64, codesB64, n]) => {
  const dec = vz.createDecoder(spec, vz.bytesToFloat32(vz.base64ToBytes(weightsB64)));
  const codes = vz.bytesToFloat32(vz.base64ToBytes(codesB64));
  const d = spec.latent_dim, p = spec.image_shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n * p);
  for (let i = 0; i < n; i++) out.set(dec.decode(codes.subarray(i * d, (i + 1) * d)), i * p);
  return vzToBase64(new Uint8Array(out.buffer));
}
"""

DRAW_JS = """
([spec, weightsB64, code]) => {
  const dec = vz.createDecoder(spec, vz.bytesToFloat32(vz.base64ToBytes(weightsB64)));
  const [c, h, w] = spec.image_shape;
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  vz.drawPixels(canvas, dec.decode(code), spec.image_shape, document.createElement("canvas"));
  return Array.from(canvas.getContext("2d").getImageData(0, 0, w, h).data);
}
"""


def open_module_page(browser):
    """A blank page (no network, no Streamlit) with the component's module as `window.vz`."""
    from vaeviz.webdecoder import browser_module

    page = browser.new_page()
    page.set_content("<!doctype html><html><head><title>live decoder</title></head><body></body></html>")
    exports = page.evaluate(LOAD_MODULE_JS, browser_module())
    assert "createDecoder" in exports, exports
    return page


def spec_args(spec: dict) -> tuple[dict, str]:
    """(the spec without its weights, the weights as base64): what the component receives."""
    light = {k: spec[k] for k in ("latent_dim", "image_shape", "layers")}
    return light, base64.b64encode(spec["weights"]).decode("ascii")


def browser_decode(page, spec: dict, codes: np.ndarray) -> np.ndarray:
    """Decode codes (N, D) with the JavaScript forward pass: images (N, C, H, W), float64."""
    light, weights = spec_args(spec)
    codes = np.ascontiguousarray(codes, dtype="<f4")
    out = page.evaluate(DECODE_MANY_JS, [light, weights, base64.b64encode(codes.tobytes()).decode(), len(codes)])
    return np.frombuffer(base64.b64decode(out), dtype="<f8").reshape(len(codes), *spec["image_shape"])


def browser_draw(page, spec: dict, code: np.ndarray) -> np.ndarray:
    """Decode one code and draw it on a canvas of the image's own size: RGBA pixels (H, W, 4), uint8."""
    light, weights = spec_args(spec)
    rgba = page.evaluate(DRAW_JS, [light, weights, [float(v) for v in code]])
    _, h, w = spec["image_shape"]
    return np.asarray(rgba, np.uint8).reshape(h, w, 4)

