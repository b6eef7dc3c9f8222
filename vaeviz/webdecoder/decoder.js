// The forward pass of a vaeviz decoder in plain JavaScript: no dependencies, no network.
//
// It reads the spec written by vaeviz/webdecoder.py (a list of layers whose weights point into
// one float32 buffer) and compiles it into a chain of closures over preallocated typed arrays, so
// decoding a code allocates nothing and a drag can decode on every animation frame. Weights are
// float32 (as in PyTorch); activations and sums are float64 (JavaScript's own numbers), so the
// result is at least as accurate as PyTorch's float32 forward pass. This file is the first half
// of the component's module; vaeviz/ui/live_decoder.py joins it to component.js.

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Base64 of little-endian bytes -> Uint8Array. */
export function base64ToBytes(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

/** Little-endian float32 bytes -> Float32Array (byte-swapped on the rare big-endian machine). */
export function bytesToFloat32(bytes) {
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength >> 2);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

function slice(weights, ref) {
  if (!ref) return null;
  if (ref.offset + ref.length > weights.length) throw new Error("the weights are shorter than the spec says");
  return weights.subarray(ref.offset, ref.offset + ref.length);
}

// Each builder returns a function (input Float64Array) -> output Float64Array, reusing its buffer.

function linearLayer(layer, weights) {
  const nIn = layer.in, nOut = layer.out;
  const w = slice(weights, layer.weight); // (out, in), row-major
  const b = slice(weights, layer.bias);
  const y = new Float64Array(nOut);
  return (x) => {
    for (let o = 0; o < nOut; o++) {
      let sum = b ? b[o] : 0;
      const row = o * nIn;
      for (let i = 0; i < nIn; i++) sum += w[row + i] * x[i];
      y[o] = sum;
    }
    return y;
  };
}

function convTranspose2dLayer(layer, weights) {
  // Scatter-add: each input pixel adds its value times the kernel into the output window it
  // touches. After a ReLU about half the inputs are exactly zero, and those are skipped.
  const [cIn, h, w] = layer.in_shape;
  const [cOut, oh, ow] = layer.out_shape;
  const [kh, kw] = layer.kernel, [sh, sw] = layer.stride, [ph, pw] = layer.padding;
  const wt = slice(weights, layer.weight); // (C_in, C_out, kH, kW)
  const b = slice(weights, layer.bias);
  const plane = oh * ow;
  const y = new Float64Array(cOut * plane);
  return (x) => {
    for (let co = 0; co < cOut; co++) y.fill(b ? b[co] : 0, co * plane, (co + 1) * plane);
    for (let ci = 0; ci < cIn; ci++) {
      for (let iy = 0; iy < h; iy++) {
        for (let ix = 0; ix < w; ix++) {
          const v = x[(ci * h + iy) * w + ix];
          if (v === 0) continue;
          const oy0 = iy * sh - ph, ox0 = ix * sw - pw;
          for (let co = 0; co < cOut; co++) {
            const wBase = (ci * cOut + co) * kh * kw, yBase = co * plane;
            for (let ky = 0; ky < kh; ky++) {
              const oy = oy0 + ky;
              if (oy < 0 || oy >= oh) continue;
              const yRow = yBase + oy * ow, wRow = wBase + ky * kw;
              for (let kx = 0; kx < kw; kx++) {
                const ox = ox0 + kx;
                if (ox >= 0 && ox < ow) y[yRow + ox] += v * wt[wRow + kx];
              }
            }
          }
        }
      }
    }
    return y;
  };
}

function elementwise(n, f) {
  const y = new Float64Array(n);
  return (x) => {
    for (let i = 0; i < n; i++) y[i] = f(x[i]);
    return y;
  };
}

function sizeOf(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Compile a spec ({latent_dim, image_shape, layers}) and its weights (Float32Array) into a
 * decoder: {latentDim, imageShape, params, decode(z) -> Float64Array (C*H*W) in [0, 1]}.
 * Throws an Error naming the first layer it does not know.
 */
export function createDecoder(spec, weights) {
  const steps = [];
  let size = spec.latent_dim;
  for (const layer of spec.layers) {
    switch (layer.type) {
      case "linear":
        if (layer.in !== size) throw new Error(`a linear layer expects ${layer.in} inputs, gets ${size}`);
        steps.push(linearLayer(layer, weights));
        size = layer.out;
        break;
      case "conv_transpose2d":
        if (sizeOf(layer.in_shape) !== size) throw new Error("a transposed convolution gets the wrong input size");
        steps.push(convTranspose2dLayer(layer, weights));
        size = sizeOf(layer.out_shape);
        break;
      case "relu":
        steps.push(elementwise(size, (v) => (v > 0 ? v : 0)));
        break;
      case "leaky_relu": {
        const slope = layer.slope;
        steps.push(elementwise(size, (v) => (v > 0 ? v : v * slope)));
        break;
      }
      case "sigmoid":
        steps.push(elementwise(size, (v) => 1 / (1 + Math.exp(-v))));
        break;
      case "tanh":
        steps.push(elementwise(size, Math.tanh));
        break;
      case "affine": { // y = scale * x + shift: an imported network's multiply or add by a constant
        const a = layer.scale, b = layer.shift;
        steps.push(elementwise(size, (v) => a * v + b));
        break;
      }
      case "clamp": {
        const lo = layer.min, hi = layer.max;
        steps.push(elementwise(size, (v) => (v < lo ? lo : v > hi ? hi : v)));
        break;
      }
      case "reshape": // activations are flat (C, H, W) row-major arrays: nothing moves
        break;
      default:
        throw new Error(`unknown layer type "${layer.type}"`);
    }
  }
  if (size !== sizeOf(spec.image_shape)) throw new Error("the decoder's output is not an image");
  const input = new Float64Array(spec.latent_dim);
  return {
    latentDim: spec.latent_dim,
    imageShape: spec.image_shape,
    params: weights.length,
    decode(z) {
      for (let i = 0; i < input.length; i++) input[i] = z[i];
      let x = input;
      for (const step of steps) x = step(x);
      return x;
    },
  };
}

/**
 * Draw decoded pixels (C*H*W in [0, 1]; C = 1 grey, 3 RGB) onto `canvas`, scaled up with
 * nearest-neighbour sampling so a 28x28 digit stays crisp. `scratch` is a reusable small canvas.
 */
export function drawPixels(canvas, pixels, imageShape, scratch) {
  const [c, h, w] = imageShape;
  if (scratch.width !== w || scratch.height !== h) {
    scratch.width = w;
    scratch.height = h;
    scratch.imageData = null;
  }
  const sctx = scratch.getContext("2d");
  if (!scratch.imageData) scratch.imageData = sctx.createImageData(w, h);
  const rgba = scratch.imageData.data, plane = h * w;
  for (let p = 0; p < plane; p++) {
    const o = 4 * p;
    if (c === 1) {
      const v = Math.round(pixels[p] * 255);
      rgba[o] = rgba[o + 1] = rgba[o + 2] = v;
    } else {
      rgba[o] = Math.round(pixels[p] * 255);
      rgba[o + 1] = Math.round(pixels[plane + p] * 255);
      rgba[o + 2] = Math.round(pixels[2 * plane + p] * 255);
    }
    rgba[o + 3] = 255;
  }
  sctx.putImageData(scratch.imageData, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(scratch, 0, 0, canvas.width, canvas.height);
}

/** Codes along a path at t in [0, 1]: straight line, or great circle as vaeviz.latent.slerp. */
export function pathPoint(z0, z1, t, how, out) {
  const d = z0.length;
  let a = 1 - t, b = t;
  if (how === "spherical") {
    let n0 = 0, n1 = 0, dot = 0;
    for (let i = 0; i < d; i++) { n0 += z0[i] * z0[i]; n1 += z1[i] * z1[i]; dot += z0[i] * z1[i]; }
    n0 = Math.sqrt(n0); n1 = Math.sqrt(n1);
    if (n0 >= 1e-8 && n1 >= 1e-8) {
      const omega = Math.acos(Math.min(1, Math.max(-1, dot / (n0 * n1))));
      if (omega >= 1e-4 && Math.PI - omega >= 1e-4) { // else (anti)parallel: fall back to the line
        a = Math.sin((1 - t) * omega) / Math.sin(omega);
        b = Math.sin(t * omega) / Math.sin(omega);
      }
    }
  }
  for (let i = 0; i < d; i++) out[i] = a * z0[i] + b * z1[i];
  return out;
}
