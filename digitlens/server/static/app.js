// digitlens page: Draw, Camera and Upload tabs on /api/read and WS /api/stream. No external code.
"use strict";

const $ = (id) => document.getElementById(id);

const COLORS = { box: "#2456d6", number: "#1f8a4c", label: "#ffffff" };

// ------------------------------------------------------------------------------------ shared helpers

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error || `HTTP ${response.status}`;
  } catch (_) {
    return `HTTP ${response.status}`;
  }
}

function pct(p) {
  return `${(100 * p).toFixed(p >= 0.995 || p < 0.005 ? 0 : 1)}%`;
}

function showReading(prefix, reading) {
  const text = $(`${prefix}-text`);
  const numbers = reading.numbers.map((n) => n.text).join(" ");
  text.textContent = numbers || "—";
  text.dataset.empty = numbers ? "false" : "true";
  const meta = $(`${prefix}-meta`);
  const nd = reading.digits.length;
  meta.textContent = nd
    ? `${nd} digit${nd === 1 ? "" : "s"} in ${reading.numbers.length} number${reading.numbers.length === 1 ? "" : "s"}` +
      ` · read in ${reading.elapsed_ms.toFixed(1)} ms`
    : "no digit found";
  const list = $(`${prefix}-numbers`);
  if (list) {
    list.replaceChildren(...reading.numbers.map((n) => {
      const li = document.createElement("li");
      const t = document.createElement("span");
      t.className = "n";
      t.textContent = n.text;
      const p = document.createElement("span");
      p.className = "p";
      p.textContent = `confidence ${pct(n.confidence)}`;
      li.append(t, p);
      return li;
    }));
  }
}

function clearReading(prefix) {
  const text = $(`${prefix}-text`);
  text.textContent = "—";
  text.dataset.empty = "true";
  $(`${prefix}-meta`).textContent = "";
  const list = $(`${prefix}-numbers`);
  if (list) list.replaceChildren();
}

// Draw the reading's boxes on ctx; sx, sy scale image pixels to canvas pixels.
function drawBoxes(ctx, reading, sx, sy, scale = 1) {
  const lw = Math.max(2, 2.5 * scale);
  const font = Math.round(Math.max(13, 16 * scale));
  ctx.lineWidth = lw;
  ctx.font = `700 ${font}px system-ui, sans-serif`;
  ctx.textBaseline = "bottom";
  for (const n of reading.numbers) {
    const [x, y, w, h] = n.box;
    const pad = 6 * scale;
    ctx.strokeStyle = COLORS.number;
    ctx.setLineDash([6 * scale, 4 * scale]);
    ctx.strokeRect(x * sx - pad, y * sy - pad, w * sx + 2 * pad, h * sy + 2 * pad);
    ctx.setLineDash([]);
    const label = n.text;
    const tw = ctx.measureText(label).width + 10;
    const ty = Math.max(font + 4, y * sy - pad);
    ctx.fillStyle = COLORS.number;
    ctx.fillRect(x * sx - pad, ty - font - 4, tw, font + 4);
    ctx.fillStyle = COLORS.label;
    ctx.fillText(label, x * sx - pad + 5, ty - 1);
  }
  for (const d of reading.digits) {
    const [x, y, w, h] = d.box;
    ctx.strokeStyle = COLORS.box;
    ctx.strokeRect(x * sx, y * sy, w * sx, h * sy);
    const label = String(d.digit);
    ctx.fillStyle = COLORS.box;
    const tw = ctx.measureText(label).width + 8;
    ctx.fillRect(x * sx + w * sx - tw, y * sy + h * sy, tw, font + 2);
    ctx.fillStyle = COLORS.label;
    ctx.textBaseline = "top";
    ctx.fillText(label, x * sx + w * sx - tw + 4, y * sy + h * sy + 1);
    ctx.textBaseline = "bottom";
  }
}

// ------------------------------------------------------------------------------------ tabs

const tabs = ["draw", "camera", "upload"];

function selectTab(name) {
  for (const t of tabs) {
    const on = t === name;
    $(`tab-${t}`).setAttribute("aria-selected", String(on));
    $(`panel-${t}`).hidden = !on;
  }
  if (name !== "camera") camera.stop();
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

for (const t of tabs) $(`tab-${t}`).addEventListener("click", () => selectTab(t));

// ------------------------------------------------------------------------------------ Draw

const draw = (() => {
  const canvas = $("draw-canvas");
  const overlay = $("draw-overlay");
  const ctx = canvas.getContext("2d");
  const octx = overlay.getContext("2d");
  const strokes = [];       // each stroke: {width, points: [[x, y], ...]} in canvas pixels
  let current = null;
  let inFlight = false;     // one request at a time; the newest drawing is sent when it returns
  let dirty = false;
  let version = 0;          // bumps on every change, so a late reply for an old drawing is ignored
  let timer = null;
  const LIVE_MS = 180;      // while writing, read at most this often

  function paintWhite() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }

  function redraw() {
    paintWhite();
    ctx.strokeStyle = "#111";
    ctx.fillStyle = "#111";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const s of strokes) {
      ctx.lineWidth = s.width;
      const p = s.points;
      if (p.length === 1) {
        ctx.beginPath();
        ctx.arc(p[0][0], p[0][1], s.width / 2, 0, 2 * Math.PI);
        ctx.fill();
        continue;
      }
      ctx.beginPath();
      ctx.moveTo(p[0][0], p[0][1]);
      for (let i = 1; i < p.length - 1; i++) {   // quadratic curves through midpoints: smooth ink
        const mx = (p[i][0] + p[i + 1][0]) / 2;
        const my = (p[i][1] + p[i + 1][1]) / 2;
        ctx.quadraticCurveTo(p[i][0], p[i][1], mx, my);
      }
      ctx.lineTo(p[p.length - 1][0], p[p.length - 1][1]);
      ctx.stroke();
    }
    $("draw-hint").hidden = strokes.length > 0;
  }

  function toCanvas(e) {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  }

  function changed() {
    version += 1;
    dirty = true;
    octx.clearRect(0, 0, overlay.width, overlay.height);
    schedule();
  }

  function schedule(delay = LIVE_MS) {
    if (timer) return;
    timer = setTimeout(() => { timer = null; send(); }, delay);
  }

  async function send() {
    if (inFlight || !dirty) return;
    if (!strokes.length) {
      dirty = false;
      clearReading("draw");
      $("draw-digits").replaceChildren();
      return;
    }
    dirty = false;
    inFlight = true;
    const sent = version;
    const t0 = performance.now();
    try {
      // The drawing goes out on white paper twice its size: a digit drawn as tall as the canvas is then
      // half the photo's height, where the reader expects writing, not a page's rim or a ruled line.
      const dx = canvas.width / 2, dy = canvas.height / 2;
      const paper = document.createElement("canvas");
      paper.width = 2 * canvas.width;
      paper.height = 2 * canvas.height;
      const pctx = paper.getContext("2d");
      pctx.fillStyle = "#fff";
      pctx.fillRect(0, 0, paper.width, paper.height);
      pctx.drawImage(canvas, dx, dy);
      const blob = await new Promise((resolve) => paper.toBlob(resolve, "image/png"));
      const form = new FormData();
      form.append("file", blob, "drawing.png");
      const response = await fetch("/api/read?probabilities=true", { method: "POST", body: form });
      if (!response.ok) throw new Error(await errorText(response));
      const reading = onCanvas(await response.json(), dx, dy, canvas.width, canvas.height);
      if (sent === version) {
        showReading("draw", reading);
        showBars(reading);
        octx.clearRect(0, 0, overlay.width, overlay.height);
        drawBoxes(octx, reading, 1, 1, canvas.width / 600);
        $("draw-status").textContent = `round trip ${Math.round(performance.now() - t0)} ms`;
      }
    } catch (err) {
      $("draw-status").textContent = `could not read: ${err.message}`;
    } finally {
      inFlight = false;
      if (dirty) schedule(0);
    }
  }

  // A reading of the padded drawing, in the canvas's own pixels.
  function onCanvas(reading, dx, dy, width, height) {
    const shift = (b) => [b[0] - dx, b[1] - dy, b[2], b[3]];
    return { ...reading, width, height,
             digits: reading.digits.map((d) => ({ ...d, box: shift(d.box) })),
             numbers: reading.numbers.map((n) => ({ ...n, box: shift(n.box) })) };
  }

  function showBars(reading) {
    const probs = reading.probabilities || [];
    $("draw-digits").replaceChildren(...reading.digits.map((d, i) => {
      let p = probs[i];
      if (!p) {  // an older server: only the top three are known
        p = new Array(10).fill(0);
        for (const [k, v] of d.top3) p[k] = v;
      }
      const card = document.createElement("div");
      card.className = "digit-card";
      const left = document.createElement("div");
      const big = document.createElement("div");
      big.className = "big";
      big.textContent = String(d.digit);
      const conf = document.createElement("div");
      conf.className = "conf";
      conf.textContent = pct(d.confidence);
      left.append(big, conf);
      const bars = document.createElement("div");
      bars.className = "bars";
      bars.setAttribute("role", "img");
      bars.setAttribute("aria-label", `probabilities of 0 to 9 for digit ${i + 1}`);
      const top = p.indexOf(Math.max(...p));
      p.forEach((v, k) => {
        const bar = document.createElement("div");
        bar.className = k === top ? "bar best" : "bar";
        bar.title = `${k}: ${pct(v)}`;
        const track = document.createElement("span");
        track.className = "track";
        const fill = document.createElement("i");
        fill.style.height = `${Math.min(100, 100 * v)}%`;
        track.append(fill);
        const label = document.createElement("b");
        label.textContent = String(k);
        bar.append(track, label);
        bars.append(bar);
      });
      card.append(left, bars);
      return card;
    }));
  }

  canvas.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 && e.pointerType === "mouse") return;
    canvas.setPointerCapture(e.pointerId);
    const base = Number($("draw-pen").value);
    const width = e.pointerType === "pen" && e.pressure > 0 ? base * (0.6 + 0.8 * e.pressure) : base;
    current = { width, points: [toCanvas(e)] };
    strokes.push(current);
    redraw();
    changed();
    e.preventDefault();
  });

  canvas.addEventListener("pointermove", (e) => {
    if (!current) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ce of events.length ? events : [e]) current.points.push(toCanvas(ce));
    redraw();
    changed();
  });

  function end() {
    if (!current) return;
    current = null;
    clearTimeout(timer);
    timer = null;
    dirty = true;
    send();
  }

  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("lostpointercapture", end);

  $("draw-clear").addEventListener("click", () => {
    strokes.length = 0;
    redraw();
    changed();
  });
  $("draw-undo").addEventListener("click", () => {
    strokes.pop();
    redraw();
    changed();
  });

  redraw();
  return { redraw };
})();

// ------------------------------------------------------------------------------------ Camera

const camera = (() => {
  const video = $("cam-video");
  const overlay = $("cam-overlay");
  const octx = overlay.getContext("2d");
  const grab = document.createElement("canvas");   // the frame sent to the server
  const gctx = grab.getContext("2d");
  const MAX_WIDTH = 640;        // frames are scaled to at most 640 px wide before JPEG encoding
  const JPEG_QUALITY = 0.8;
  let stream = null;
  let ws = null;
  let running = false;
  let sentAt = 0;
  let replies = [];             // reply times of the last second, for readings/s
  let latency = null;

  function message(text, kind = "error") {
    const m = $("cam-message");
    m.textContent = text;
    m.className = kind === "info" ? "message info" : "message";
    m.hidden = !text;
  }

  function cameraError(err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "Camera access was refused. Allow the camera for this site in the browser's settings, then press Start camera again.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
      return "No camera was found. Connect a camera (or use the Upload tab) and press Start camera again.";
    }
    if (name === "NotReadableError" || name === "TrackStartError") {
      return "The camera is in use by another program or could not be started. Close that program and try again.";
    }
    return `The camera could not be started: ${err && err.message ? err.message : err}`;
  }

  async function start() {
    message("");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      message("This browser offers no camera to this page. Cameras need a secure page: open it as localhost or over HTTPS.");
      return;
    }
    $("cam-start").disabled = true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "environment" }, audio: false,
      });
    } catch (err) {
      $("cam-start").disabled = false;
      message(cameraError(err));
      return;
    }
    video.srcObject = stream;
    await video.play().catch(() => {});
    $("cam-hint").hidden = true;
    $("cam-stop").disabled = false;
    running = true;
    connect();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${scheme}://${location.host}/api/stream`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => sendFrame();
    ws.onmessage = (ev) => onReply(JSON.parse(ev.data));
    ws.onclose = (ev) => {
      if (running) {
        message(`The connection to the server closed${ev.reason ? `: ${ev.reason}` : ""} (code ${ev.code}).`);
        stop();
      }
    };
    ws.onerror = () => {};
  }

  function sendFrame() {
    if (!running || !ws || ws.readyState !== WebSocket.OPEN) return;
    const vw = video.videoWidth;
    const vh = video.videoHeight;
    if (!vw || !vh) {
      setTimeout(sendFrame, 50);
      return;
    }
    const scale = Math.min(1, MAX_WIDTH / vw);
    grab.width = Math.round(vw * scale);
    grab.height = Math.round(vh * scale);
    gctx.drawImage(video, 0, 0, grab.width, grab.height);
    grab.toBlob((blob) => {
      if (!blob || !running || ws.readyState !== WebSocket.OPEN) return;
      sentAt = performance.now();
      ws.send(blob);
    }, "image/jpeg", JPEG_QUALITY);
  }

  function onReply(reply) {
    const now = performance.now();
    if (reply.reset) return;
    if (reply.error) {
      if (reply.code !== "throttled") message(`Frame ${reply.frame}: ${reply.error}`);
      setTimeout(sendFrame, reply.code === "throttled" || reply.code === "busy" ? 100 : 0);
      return;
    }
    latency = latency === null ? now - sentAt : 0.8 * latency + 0.2 * (now - sentAt);
    replies.push(now);
    replies = replies.filter((t) => now - t <= 1000);
    $("cam-fps").textContent = replies.length >= 2 ? (1000 * (replies.length - 1) / (now - replies[0])).toFixed(1) : "–";
    $("cam-latency").textContent = Math.round(latency);
    showReading("cam", reply);
    paint(reply);
    sendFrame();  // one frame in flight: the server never queues stale frames
  }

  function paint(reading) {
    // the overlay covers the stage; the video is letterboxed inside it (object-fit: contain)
    const rect = overlay.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    overlay.width = Math.round(rect.width * dpr);
    overlay.height = Math.round(rect.height * dpr);
    octx.clearRect(0, 0, overlay.width, overlay.height);
    const fit = Math.min(overlay.width / reading.width, overlay.height / reading.height);
    const ox = (overlay.width - reading.width * fit) / 2;
    const oy = (overlay.height - reading.height * fit) / 2;
    octx.save();
    octx.translate(ox, oy);
    drawBoxes(octx, reading, fit, fit, dpr);
    octx.restore();
  }

  function stop() {
    running = false;
    if (ws) {
      ws.onclose = null;
      if (ws.readyState <= WebSocket.OPEN) ws.close(1000, "stopped");
      ws = null;
    }
    if (stream) {
      for (const track of stream.getTracks()) track.stop();
      stream = null;
    }
    video.srcObject = null;
    octx.clearRect(0, 0, overlay.width, overlay.height);
    $("cam-start").disabled = false;
    $("cam-stop").disabled = true;
    $("cam-hint").hidden = false;
    replies = [];
    latency = null;
  }

  $("cam-start").addEventListener("click", start);
  $("cam-stop").addEventListener("click", stop);
  return { start, stop };
})();

// ------------------------------------------------------------------------------------ Upload

const upload = (() => {
  const drop = $("upload-drop");
  const input = $("upload-input");
  const canvas = $("upload-canvas");
  const ctx = canvas.getContext("2d");
  let lastJson = null;
  let lastName = "reading";

  function message(text) {
    const m = $("upload-message");
    m.textContent = text;
    m.hidden = !text;
  }

  async function readFile(file) {
    if (!file) return;
    message("");
    clearReading("upload");
    $("upload-download").disabled = true;
    $("upload-meta").textContent = `reading ${file.name}…`;
    lastName = file.name.replace(/\.[^.]+$/, "") || "reading";
    const form = new FormData();
    form.append("file", file, file.name);
    let reading;
    try {
      const response = await fetch("/api/read", { method: "POST", body: form });
      if (!response.ok) throw new Error(await errorText(response));
      reading = await response.json();
    } catch (err) {
      $("upload-meta").textContent = "";
      message(`${file.name}: ${err.message}`);
      return;
    }
    lastJson = JSON.stringify(reading, null, 2);
    $("upload-json").textContent = lastJson;
    $("upload-download").disabled = false;
    showReading("upload", reading);
    await show(file, reading);
  }

  async function show(file, reading) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (_) {
      $("upload-stage").hidden = true;   // e.g. TIFF: the browser cannot show it, the server read it
      return;
    }
    canvas.width = reading.width;
    canvas.height = reading.height;
    ctx.drawImage(bitmap, 0, 0, reading.width, reading.height);
    drawBoxes(ctx, reading, 1, 1, Math.max(1, reading.width / 800));
    $("upload-stage").hidden = false;
  }

  input.addEventListener("change", () => readFile(input.files[0]));
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) readFile(e.dataTransfer.files[0]);
  });
  $("upload-download").addEventListener("click", () => {
    if (!lastJson) return;
    const url = URL.createObjectURL(new Blob([lastJson + "\n"], { type: "application/json" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `${lastName}.json`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  });
  return { readFile };
})();

// ------------------------------------------------------------------------------------ model info, start

fetch("/api/model").then((r) => (r.ok ? r.json() : null)).then((m) => {
  if (!m) return;
  const acc = m.mnist_test_accuracy;
  const arch = (m.metadata && m.metadata.arch) || "model";
  const accPct = acc > 1 ? acc : 100 * acc;  // a fraction or already a percentage
  $("model-info").textContent = acc ? `${arch} · MNIST test accuracy ${accPct.toFixed(2)}%` : arch;
}).catch(() => {});

const initial = location.hash.replace("#", "");
selectTab(tabs.includes(initial) ? initial : "draw");
window.addEventListener("hashchange", () => {
  const name = location.hash.replace("#", "");
  if (tabs.includes(name)) selectTab(name);
});
