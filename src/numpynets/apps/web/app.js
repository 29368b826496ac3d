// numpynets serve: the drawing page. Strokes are kept as canvas points and sent to
// POST /api/predict as {"strokes": ...}; the server paints and prepares them exactly as
// the Tk window (numpynets draw) does, and answers with the 28x28 input and ten
// probabilities. At most one request is in flight: changes made meanwhile are sent
// when it returns, so the bars follow the pen and always end on the last state.
"use strict";

const SIZE = 280, BRUSH = 20;
const state = {strokes: [], drawing: false, inFlight: false, dirty: false,
               input: null, probabilities: null, prediction: null, model: null};
window.numpynets = state;                      // for scripts and the browser test

const $ = (id) => document.getElementById(id);
const pad = $("pad"), ctx = pad.getContext("2d");

function setPending() {
  document.body.dataset.pending = (state.inFlight || state.dirty) ? "1" : "0";
}

function showStatus(text) { $("status").textContent = text || ""; }

// -- drawing -----------------------------------------------------------------
function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, SIZE, SIZE);
}

function paintStroke(points) {
  ctx.strokeStyle = ctx.fillStyle = "#fff";
  ctx.lineWidth = BRUSH; ctx.lineCap = "round"; ctx.lineJoin = "round";
  if (points.length === 1) {
    ctx.beginPath(); ctx.arc(points[0][0] + 0.5, points[0][1] + 0.5, BRUSH / 2, 0, 2 * Math.PI); ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(points[0][0] + 0.5, points[0][1] + 0.5);
  for (const [x, y] of points.slice(1)) ctx.lineTo(x + 0.5, y + 0.5);
  ctx.stroke();
}

function repaint() {
  clearPad();
  for (const s of state.strokes) paintStroke(s);
}

function point(event) {
  const r = pad.getBoundingClientRect();
  const x = (event.clientX - r.left) * (SIZE / r.width), y = (event.clientY - r.top) * (SIZE / r.height);
  const clip = (v) => Math.min(Math.max(v, 0), SIZE - 1);   // as the Tk window
  return [clip(x), clip(y)];
}

pad.addEventListener("pointerdown", (e) => {
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  state.drawing = true;
  state.strokes.push([point(e)]);
  repaint();
  predictSoon();
});

pad.addEventListener("pointermove", (e) => {
  if (!state.drawing) return;
  e.preventDefault();
  const stroke = state.strokes[state.strokes.length - 1];
  const p = point(e), q = stroke[stroke.length - 1];
  if (p[0] === q[0] && p[1] === q[1]) return;
  stroke.push(p);
  repaint();
  predictSoon();
});

function endStroke() { if (state.drawing) { state.drawing = false; predictSoon(); } }
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function undo() { state.drawing = false; state.strokes.pop(); repaint(); predictSoon(); }
function clearAll() { state.drawing = false; state.strokes = []; repaint(); predictSoon(); }
$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearAll);
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "z") { e.preventDefault(); undo(); }
  else if (e.key === "Escape") clearAll();
});

// -- predictions -----------------------------------------------------------------
function buildBars() {
  const bars = $("bars");
  for (let k = 0; k < 10; k++) {
    const row = document.createElement("div");
    row.className = "bar"; row.dataset.class = String(k); row.dataset.probability = "";
    row.innerHTML = `<span class="label">${k}</span><span class="track"><span class="fill"></span></span>` +
                    `<span class="value"></span>`;
    bars.appendChild(row);
  }
}

function show(result) {
  state.input = result.input; state.probabilities = result.probabilities; state.prediction = result.prediction;
  const probs = result.probabilities;
  document.querySelectorAll(".bar").forEach((row) => {
    const k = Number(row.dataset.class), p = probs ? probs[k] : null;
    row.dataset.probability = p === null ? "" : String(p);   // shortest round-trip text of the number
    row.querySelector(".fill").style.width = p === null ? "0" : `${(100 * p).toFixed(2)}%`;
    row.querySelector(".value").textContent = p === null ? "" : `${(100 * p).toFixed(1)}%`;
    row.classList.toggle("top", p !== null && k === result.prediction);
  });
  $("prediction").textContent = result.prediction === null ? "–" : String(result.prediction);
  const view = $("input").getContext("2d");
  const img = view.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = result.input ? Math.round(255 * result.input[i]) : 0;
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
  }
  view.putImageData(img, 0, 0);
}

const BLANK = {prediction: null, probabilities: null, input: null};

async function postJSON(url, body) {
  const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                              body: JSON.stringify(body)});
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

async function predictSoon() {
  if (state.inFlight) { state.dirty = true; setPending(); return; }
  if (state.strokes.length === 0) { show(BLANK); setPending(); return; }
  state.inFlight = true; state.dirty = false; setPending();
  const strokes = state.strokes.map((s) => s.map((p) => [p[0], p[1]]));
  try {
    show(await postJSON("/api/predict", {strokes}));
    showStatus("");
  } catch (err) {
    showStatus(`prediction failed: ${err.message}`);
  }
  state.inFlight = false;
  if (state.dirty) predictSoon(); else setPending();
}

// -- models --------------------------------------------------------------------------
function showModel(info) {
  state.model = info;
  $("model-name").textContent = `${info.name}${info.run ? " · " + info.run : ""}`;
  $("model-accuracy").textContent = info.test_accuracy === null ? "test accuracy not recorded"
    : `${info.test_accuracy.toFixed(2)}% test accuracy`;
}

async function loadModels() {
  const r = await fetch("/api/models");
  const list = await r.json();
  const sel = $("models");
  sel.innerHTML = "";
  for (const m of list.models) {
    const opt = document.createElement("option");
    opt.value = m.id; opt.textContent = m.name; opt.selected = m.current;
    sel.appendChild(opt);
  }
}

$("models").addEventListener("change", async (e) => {
  try {
    showModel(await postJSON("/api/model", {id: e.target.value}));
    showStatus("");
    predictSoon();
  } catch (err) {
    showStatus(`could not switch: ${err.message}`);
    loadModels();
  }
});

buildBars();
clearPad();
show(BLANK);
fetch("/api/model").then((r) => r.json()).then(showModel).catch((e) => showStatus(String(e)));
loadModels().catch((e) => showStatus(String(e)));
