// The live decoder component: sliders, a 2-D pad (optionally over a latent map) or a scrubber
// along an interpolation path, redrawing the decoded image on every animation frame of a drag,
// with no server round trip. Python hears about it once, when the drag ends (the "release"
// trigger). This is the second half of the module that vaeviz/ui/live_decoder.py mounts with
// st.components.v2.component; decoder.js above it holds the forward pass.
//
// Big payloads (weights, map points) arrive once per page as base64 "blobs" keyed by content
// hash and are kept in module-level caches: the module is evaluated once per page and outlives
// reruns, so later reruns send only the hash. A hash the page does not have (a reload, a lost
// message) is asked for again with the "missing" trigger.

const MAX_CACHED = 12; // blobs and decoders kept per page (a few models and their maps)
const blobCache = new Map(); // hash -> Uint8Array
const decoderCache = new Map(); // hash -> compiled decoder
const askedFor = new Map(); // hash -> how many times Python was asked to resend it
const instances = new WeakMap(); // parentElement -> LiveDecoder (one per mounted component)

function remember(cache, key, value) {
  cache.delete(key);
  cache.set(key, value);
  while (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value);
  return value;
}

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.appendChild(child);
  return node;
}

function fmt(v, digits = 2) {
  return (Math.abs(v) < 0.005 ? 0 : v).toFixed(digits);
}

function median(values) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[s.length >> 1];
}

class LiveDecoder {
  constructor(parentElement) {
    this.parent = parentElement;
    this.root = el("div", { class: "vz-live", "data-testid": "live-decoder" });
    parentElement.appendChild(this.root);
    this.layoutKey = null;
    this.pythonZ = null; // the last code Python sent, as JSON: only a *different* one moves the
    // component, so a page that keeps sending its starting code does not undo the person's drag
    this.pythonT = null;
    this.z = null; // Float64Array (D): the code on screen (sliders and pad modes)
    this.t = 0; // position along the path (scrubber mode)
    this.frameTimes = [];
    this.frames = 0;
    this.seq = 0;
    this.dragging = false;
    this.raf = 0;
    this.playing = null;
    this.scratch = document.createElement("canvas");
    this.setTriggerValue = () => {};
  }

  // --- data from Python -------------------------------------------------------------------

  update(data) {
    for (const [hash, b64] of Object.entries(data.blobs || {})) {
      if (!blobCache.has(hash)) remember(blobCache, hash, base64ToBytes(b64));
    }
    const models = data.models || [];
    const pad = data.pad || null;
    const needed = models.map((m) => m.hash);
    if (pad && pad.points) needed.push(pad.points, pad.labels);
    const missing = needed.filter((h) => h && !blobCache.has(h));
    if (missing.length) {
      this.pending = data;
      this.message("Loading the decoder into your browser ...", "vz-note");
      this.askFor(missing);
      return;
    }
    this.pending = null;
    this.decoders = models.map((m) => {
      const cached = decoderCache.get(m.hash);
      if (cached) return cached;
      return remember(decoderCache, m.hash, createDecoder(m.spec, bytesToFloat32(blobCache.get(m.hash))));
    });
    this.data = data;
    if (pad && pad.points) {
      this.points = bytesToFloat32(blobCache.get(pad.points));
      this.labels = blobCache.get(pad.labels);
    } else {
      this.points = this.labels = null;
    }
    const layoutKey = JSON.stringify({ ...data, blobs: null, z: null, note: null, scrubber: data.scrubber && { ...data.scrubber, t: null } });
    if (layoutKey !== this.layoutKey) {
      this.layoutKey = layoutKey;
      this.build();
      this.pythonZ = this.pythonT = null; // a new layout takes Python's code as it is
    }
    const zJson = JSON.stringify(data.z || null);
    if (data.z && zJson !== this.pythonZ && !this.dragging) {
      this.pythonZ = zJson;
      this.z = Float64Array.from(data.z);
    }
    if (data.scrubber && JSON.stringify(data.scrubber.t) !== this.pythonT && !this.dragging && !this.playing) {
      this.pythonT = JSON.stringify(data.scrubber.t);
      this.t = data.scrubber.t;
    }
    this.noteEl.textContent = data.note || "";
    this.requestFrame();
  }

  askFor(hashes) {
    // Wait a moment first: a second component in the same run may be parsing these right now.
    clearTimeout(this.askTimer);
    this.askTimer = setTimeout(() => {
      const still = hashes.filter((h) => !blobCache.has(h) && (askedFor.get(h) || 0) < 3);
      if (!still.length) {
        if (hashes.every((h) => blobCache.has(h)) && this.pending) this.update(this.pending);
        else this.message("The decoder's weights did not arrive; reload the page or use the server-side sliders.", "vz-error");
        return;
      }
      still.forEach((h) => askedFor.set(h, (askedFor.get(h) || 0) + 1));
      this.setTriggerValue("missing", still);
    }, 300);
  }

  message(text, cls) {
    this.layoutKey = null;
    this.root.replaceChildren(el("div", { class: cls, "data-testid": cls === "vz-error" ? "live-error" : "live-note", text }));
  }

  fail(err) {
    this.message(`Live decoding could not run in this browser (${err && err.message ? err.message : err}). `
      + "The server-side sliders still work.", "vz-error");
    console.error("vaeviz live decoder:", err);
  }

  // --- building the DOM ----------------------------------------------------------------------

  build() {
    const d = this.data;
    this.root.replaceChildren();
    this.views = [];
    this.sliders = this.pad = this.scrub = null;
    this.dragging = false;
    this.activeSlider = null;
    const px = d.image_px || 280;
    const figures = this.decoders.map((dec, i) => {
      const canvas = el("canvas", { class: "vz-image", "data-testid": "live-image", width: px, height: px });
      canvas.style.width = canvas.style.height = `${px}px`;
      const caption = el("figcaption", { text: d.models[i].label || "decode(z)" });
      this.views.push({ decoder: dec, canvas });
      return el("figure", { class: "vz-figure" }, [canvas, caption]);
    });
    this.readout = el("div", { class: "vz-readout", "data-testid": "live-readout" });
    this.status = el("div", { class: "vz-status", "data-testid": "live-status" });
    this.noteEl = el("div", { class: "vz-caption" });
    const row = el("div", { class: "vz-row" });
    if (d.mode === "scrubber") {
      figures.forEach((f) => row.appendChild(f));
      this.root.append(row, this.buildScrubber(), this.readout);
    } else if (d.mode === "pad") {
      row.append(this.buildPad(), el("div", { class: "vz-side" }, [...figures, this.readout]));
      this.root.append(row);
    } else {
      row.append(el("div", { class: "vz-side" }, [...figures, this.readout]));
      if (d.pad) row.appendChild(this.buildPad());
      row.appendChild(this.buildSliders());
      this.root.append(row);
    }
    this.root.append(this.noteEl, this.status);
  }

  buildSliders() {
    const s = this.data.sliders;
    const box = el("div", { class: "vz-sliders" });
    if (s.dims.length > 4) box.classList.add("vz-two-columns");
    this.sliders = s.dims.map((dim, k) => {
      const [lo, hi] = s.ranges[k];
      const input = el("input", { type: "range", min: lo, max: hi, step: 0.01, "data-testid": `live-slider-${dim}`,
                                  "aria-label": s.labels[k] });
      const value = el("span", { class: "vz-value" });
      const row = el("label", { class: "vz-slider" }, [el("span", { class: "vz-name", text: s.labels[k] }), input, value]);
      const pad = this.data.pad;
      if (pad && (pad.directions[0][dim] !== 0 || pad.directions[1][dim] !== 0)) row.classList.add("vz-on-pad");
      input.addEventListener("pointerdown", () => this.holdUntilPointerUp(input));
      input.addEventListener("input", () => {
        this.z[dim] = Number(input.value);
        this.activeSlider = input;
        this.requestFrame();
      });
      input.addEventListener("change", () => {
        this.dragging = false;
        this.activeSlider = null;
        this.release();
      });
      box.appendChild(row);
      return { dim, input, value };
    });
    return box;
  }

  buildPad() {
    const p = this.data.pad;
    const size = this.data.pad_px || 320;
    const canvas = el("canvas", { class: "vz-pad", "data-testid": "live-pad", tabindex: "0",
                                  "aria-label": `2-D pad: ${p.axis_titles[0]} across, ${p.axis_titles[1]} up; arrow keys move it` });
    const dpr = window.devicePixelRatio || 1;
    canvas.width = canvas.height = Math.round(size * dpr);
    canvas.style.width = canvas.style.height = `${size}px`;
    this.pad = { canvas, size, dpr, spec: p, background: null };
    const toData = (evt) => {
      const r = canvas.getBoundingClientRect();
      const fx = Math.min(1, Math.max(0, (evt.clientX - r.left) / r.width));
      const fy = Math.min(1, Math.max(0, (evt.clientY - r.top) / r.height));
      const [x0, x1, y0, y1] = p.extent;
      return [x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)];
    };
    canvas.addEventListener("pointerdown", (evt) => {
      if (evt.button !== 0) return;
      canvas.setPointerCapture(evt.pointerId);
      this.dragging = true;
      this.moveTo(...toData(evt));
      evt.preventDefault();
    });
    canvas.addEventListener("pointermove", (evt) => {
      if (this.dragging && canvas.hasPointerCapture(evt.pointerId)) this.moveTo(...toData(evt));
    });
    const end = (evt) => {
      if (!this.dragging) return;
      this.dragging = false;
      if (canvas.hasPointerCapture(evt.pointerId)) canvas.releasePointerCapture(evt.pointerId);
      this.release();
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("keydown", (evt) => {
      const step = (evt.shiftKey ? 0.05 : 0.01);
      const [x0, x1, y0, y1] = p.extent;
      const [x, y] = this.padXY();
      const moves = { ArrowLeft: [-step * (x1 - x0), 0], ArrowRight: [step * (x1 - x0), 0],
                      ArrowUp: [0, step * (y1 - y0)], ArrowDown: [0, -step * (y1 - y0)] };
      if (!moves[evt.key]) return;
      evt.preventDefault();
      this.moveTo(Math.min(x1, Math.max(x0, x + moves[evt.key][0])), Math.min(y1, Math.max(y0, y + moves[evt.key][1])));
      clearTimeout(this.keyTimer);
      this.keyTimer = setTimeout(() => this.release(), 400); // one rerun after a burst of keys
    });
    const caption = el("div", { class: "vz-caption", text: p.caption || `drag: ${p.axis_titles[0]} across, ${p.axis_titles[1]} up` });
    const parts = [canvas];
    if (p.points && p.classes && p.classes.length) {
      // The same colours as the maps (vaeviz.plots.PALETTE), so a class reads the same everywhere.
      const legend = el("div", { class: "vz-legend" }, p.classes.map((name, i) => {
        const swatch = el("span", { class: "vz-swatch" });
        swatch.style.background = p.palette[i % p.palette.length];
        return el("span", { class: "vz-legend-item" }, [swatch, el("span", { text: name })]);
      }));
      parts.push(legend);
    }
    parts.push(caption);
    const wrap = el("div", { class: "vz-pad-wrap" }, parts);
    wrap.style.maxWidth = `${size}px`;
    return wrap;
  }

  buildScrubber() {
    const s = this.data.scrubber;
    const input = el("input", { type: "range", min: 0, max: 1000, step: 1, class: "vz-scrub",
                                "data-testid": "live-scrubber", "aria-label": "position along the path" });
    const play = el("button", { class: "vz-play", type: "button", "data-testid": "live-play", text: "▶ Play" });
    input.addEventListener("pointerdown", () => { this.holdUntilPointerUp(input); this.stopPlaying(false); });
    input.addEventListener("input", () => { this.t = Number(input.value) / 1000; this.requestFrame(); });
    input.addEventListener("change", () => { this.dragging = false; this.release(); });
    play.addEventListener("click", () => (this.playing ? this.stopPlaying(true) : this.startPlaying()));
    const ticks = el("div", { class: "vz-ticks" });
    for (let i = 0; i < s.ticks; i++) {
      const tick = el("span", { class: "vz-tick", text: String(i) });
      tick.style.left = `${(100 * i) / Math.max(1, s.ticks - 1)}%`;
      ticks.appendChild(tick);
    }
    this.scrub = { input, play };
    this.scrubZ = this.decoders.map((dec) => new Float64Array(dec.latentDim));
    const track = el("div", { class: "vz-track" }, [input, ticks]);
    return el("div", { class: "vz-scrub-row" }, [play, track]);
  }

  holdUntilPointerUp(input) {
    // While a range input is held, codes from Python wait. "change" fires only if the value
    // changed, so the hold ends on the pointer's release, wherever it happens.
    this.dragging = true;
    this.activeSlider = input;
    window.addEventListener("pointerup", () => { this.dragging = false; this.activeSlider = null; }, { once: true });
  }

  startPlaying() {
    const start = performance.now() - Math.acos(1 - 2 * this.t) / (2 * Math.PI) * 4000;
    this.playing = { start };
    this.scrub.play.textContent = "⏸ Pause";
    const tick = (now) => {
      if (!this.playing) return;
      this.t = 0.5 - 0.5 * Math.cos((2 * Math.PI * (now - this.playing.start)) / 4000); // there and back in 4 s
      this.render();
      this.playing.raf = requestAnimationFrame(tick);
    };
    this.playing.raf = requestAnimationFrame(tick);
  }

  stopPlaying(send) {
    if (!this.playing) return;
    cancelAnimationFrame(this.playing.raf);
    this.playing = null;
    this.scrub.play.textContent = "▶ Play";
    if (send) this.release();
  }

  // --- moving and drawing ----------------------------------------------------------------------

  padXY(z = this.z) {
    // Pad coordinates of a code: its offsets from the frame's origin along the two directions.
    const { origin, directions } = this.pad.spec;
    let x = 0, y = 0;
    for (let i = 0; i < z.length; i++) {
      const v = z[i] - origin[i];
      x += v * directions[0][i];
      y += v * directions[1][i];
    }
    return [x, y];
  }

  moveTo(x, y) {
    // Move only the in-plane part of z: the other coordinates stay where they are.
    const [cx, cy] = this.padXY();
    const [d1, d2] = this.pad.spec.directions;
    for (let i = 0; i < this.z.length; i++) this.z[i] += (x - cx) * d1[i] + (y - cy) * d2[i];
    this.requestFrame();
  }

  requestFrame() {
    if (!this.raf) this.raf = requestAnimationFrame(() => { this.raf = 0; this.render(); });
  }

  codes() {
    if (this.data.mode !== "scrubber") return [this.z];
    const s = this.data.scrubber;
    return this.decoders.map((_, i) => pathPoint(s.ends[i][0], s.ends[i][1], this.t, s.how, this.scrubZ[i]));
  }

  render() {
    if (!this.views || !this.data) return;
    const started = performance.now();
    const codes = this.codes();
    this.views.forEach((view, i) => {
      const pixels = view.decoder.decode(codes[i]);
      drawPixels(view.canvas, pixels, view.decoder.imageShape, this.scratch);
    });
    const elapsed = performance.now() - started;
    this.frameTimes.push(elapsed);
    if (this.frameTimes.length > 60) this.frameTimes.shift();
    this.frames += 1;
    this.root.dataset.frames = String(this.frames);
    if (this.pad) this.drawPad();
    this.syncControls();
    this.status.textContent = `Decoded in your browser: ${median(this.frameTimes).toFixed(2)} ms a frame, no server round trip.`;
  }

  syncControls() {
    const mode = this.data.mode;
    if (mode === "scrubber") {
      if (!this.dragging) this.scrub.input.value = String(Math.round(this.t * 1000));
      const k = this.data.scrubber.ticks;
      this.readout.textContent = `t = ${this.t.toFixed(3)}  (step ${fmt(this.t * (k - 1), 1)} of ${k - 1})`;
      return;
    }
    for (const s of this.sliders || []) {
      if (s.input !== this.activeSlider) s.input.value = String(this.z[s.dim]);
      s.value.textContent = fmt(this.z[s.dim]);
    }
    let norm = 0;
    for (const v of this.z) norm += v * v;
    const where = this.pad ? `(${this.padXY().map((v) => fmt(v)).join(", ")}) on the pad · ` : "";
    this.readout.textContent = `${where}‖z‖ = ${Math.sqrt(norm).toFixed(2)}`;
  }

  drawPad() {
    const { canvas, spec } = this.pad;
    const ctx = canvas.getContext("2d");
    if (!this.pad.background) this.pad.background = this.padBackground();
    ctx.drawImage(this.pad.background, 0, 0);
    const [x, y] = this.padXY();
    const [x0, x1, y0, y1] = spec.extent;
    const W = canvas.width, H = canvas.height, dpr = this.pad.dpr;
    const px = ((x - x0) / (x1 - x0)) * W, py = ((y1 - y) / (y1 - y0)) * H;
    const accent = this.cssVar("--st-primary-color", "#ff4b4b");
    ctx.save();
    ctx.strokeStyle = accent;
    ctx.globalAlpha = 0.55;
    ctx.lineWidth = 1.5 * dpr;
    ctx.beginPath();
    ctx.moveTo(px, 0); ctx.lineTo(px, H);
    ctx.moveTo(0, py); ctx.lineTo(W, py);
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.beginPath();
    ctx.arc(px, py, 8 * dpr, 0, 2 * Math.PI);
    ctx.fillStyle = accent;
    ctx.fill();
    ctx.lineWidth = 2.5 * dpr;
    ctx.strokeStyle = "#ffffff";
    ctx.stroke();
    ctx.restore();
  }

  padBackground() {
    // Drawn once per layout: the map's points, zero lines and axis labels. Each frame copies it.
    const { canvas, spec, dpr } = this.pad;
    const bg = document.createElement("canvas");
    bg.width = canvas.width;
    bg.height = canvas.height;
    const ctx = bg.getContext("2d");
    const W = bg.width, H = bg.height;
    const [x0, x1, y0, y1] = spec.extent;
    const toX = (x) => ((x - x0) / (x1 - x0)) * W, toY = (y) => ((y1 - y) / (y1 - y0)) * H;
    ctx.fillStyle = this.cssVar("--st-secondary-background-color", "#f0f2f6");
    ctx.fillRect(0, 0, W, H);
    const text = this.cssVar("--st-text-color", "#31333f");
    ctx.strokeStyle = text;
    ctx.globalAlpha = 0.25;
    ctx.lineWidth = dpr;
    ctx.beginPath();
    if (x0 < 0 && x1 > 0) { ctx.moveTo(toX(0), 0); ctx.lineTo(toX(0), H); }
    if (y0 < 0 && y1 > 0) { ctx.moveTo(0, toY(0)); ctx.lineTo(W, toY(0)); }
    ctx.stroke();
    if (spec.rings) { // the prior N(0, I)'s 1, 2 and 3 sigma circles, for reference
      ctx.setLineDash([4 * dpr, 4 * dpr]);
      for (const r of [1, 2, 3]) {
        ctx.beginPath();
        ctx.ellipse(toX(0), toY(0), (r / (x1 - x0)) * W, (r / (y1 - y0)) * H, 0, 0, 2 * Math.PI);
        ctx.stroke();
      }
      ctx.setLineDash([]);
    }
    ctx.globalAlpha = 1;
    if (this.points) {
      const palette = spec.palette;
      const s = Math.max(2, 2.5 * dpr), half = s / 2;
      ctx.globalAlpha = 0.7;
      for (let i = 0; i < this.labels.length; i++) {
        ctx.fillStyle = palette[this.labels[i] % palette.length];
        ctx.fillRect(toX(this.points[2 * i]) - half, toY(this.points[2 * i + 1]) - half, s, s);
      }
      ctx.globalAlpha = 1;
    }
    ctx.fillStyle = text;
    ctx.font = `${12 * dpr}px ${this.cssVar("--st-font", "sans-serif")}`;
    ctx.textBaseline = "bottom";
    ctx.textAlign = "right";
    ctx.fillText(`${spec.axis_titles[0]} →`, W - 6 * dpr, H - 4 * dpr);
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(`↑ ${spec.axis_titles[1]}`, 6 * dpr, 4 * dpr);
    ctx.globalAlpha = 0.6;
    ctx.textBaseline = "bottom";
    ctx.fillText(`${fmt(x0, 1)}, ${fmt(y0, 1)}`, 6 * dpr, H - 4 * dpr);
    ctx.textAlign = "right";
    ctx.textBaseline = "top";
    ctx.fillText(`${fmt(x1, 1)}, ${fmt(y1, 1)}`, W - 6 * dpr, 4 * dpr);
    return bg;
  }

  cssVar(name, fallback) {
    const v = getComputedStyle(this.root).getPropertyValue(name).trim();
    return v || fallback;
  }

  // --- telling Python -------------------------------------------------------------------------

  release() {
    this.seq += 1;
    const payload = { seq: this.seq };
    if (this.data.mode === "scrubber") {
      payload.t = this.t;
      payload.zs = this.codes().map((z) => Array.from(z));
      payload.z = payload.zs[0];
    } else {
      payload.z = Array.from(this.z);
      if (this.pad) payload.xy = this.padXY();
    }
    this.root.dataset.released = String(this.seq);
    this.root.dataset.z = JSON.stringify(payload.z); // what Python is about to get, for tests
    this.setTriggerValue("release", payload);
  }

  destroy() {
    cancelAnimationFrame(this.raf);
    if (this.playing) cancelAnimationFrame(this.playing.raf);
    clearTimeout(this.askTimer);
    clearTimeout(this.keyTimer);
    this.root.remove();
  }
}

export default function liveDecoder(component) {
  const { data, parentElement, setTriggerValue } = component;
  let live = instances.get(parentElement);
  if (!live) {
    live = new LiveDecoder(parentElement);
    instances.set(parentElement, live);
  }
  live.setTriggerValue = setTriggerValue;
  try {
    live.update(data || {});
  } catch (err) {
    live.fail(err);
  }
  return () => {
    live.destroy();
    instances.delete(parentElement);
  };
}
