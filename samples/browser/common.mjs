// Shared by the sample pages: the page layout, a photo (the bundled one, or one the user picks or
// drops) as a normalized 1x3x224x224 tensor, top-5 with ImageNet names and probabilities, dense and
// sparse side by side, median latency, the per-op profile chart, and Pyodide with the sparselite wheel.
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];
export const RUNS = 15; // timed runs per model: the page shows their median

const $ = (selector) => document.querySelector(selector);
const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// The page: photo picker on the left, the two models' answers on the right, the profile below.
export function renderPage({ title, subtitle, models }) {
  document.body.innerHTML = `<main>
  <header><h1>${escape(title)}</h1><p>${escape(subtitle)}</p></header>
  <div class="grid">
    <div class="card">
      <label id="drop" title="choose a photo, or drop one here">
        <img id="photo" src="photo.png" alt="the photo being classified">
        <input id="file" type="file" accept="image/*">
        Choose a photo or drop one here
      </label>
      <p id="status">loading…</p>
    </div>
    <div>
      <div class="models">${models.map((m) => `<div class="card" id="${m.id}">
        <h2>${escape(m.title)}</h2><h3>${escape(m.detail)}</h3><ol class="top5"></ol><p class="latency"></p></div>`).join("")}
      </div>
      <div id="agreement"></div>
    </div>
  </div>
  <section class="card profile"><h2>Where the time goes</h2><h3 id="profile-title"></h3><div id="profile"></div></section>
</main>`;
}

export const status = (text) => { $("#status").textContent = text; };

// Calls onImage(url) for a picked or dropped image file.
export function onImagePicked(onImage) {
  const drop = $("#drop");
  const use = (file) => { if (file && file.type.startsWith("image/")) onImage(URL.createObjectURL(file)); };
  $("#file").addEventListener("change", (e) => use(e.target.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); use(e.dataTransfer.files[0]); });
}

export async function imageNetNames() {
  return (await fetch("imagenet_classes.json")).json();
}

// Resize the short side to 256, center-crop 224 (the usual ImageNet evaluation transform).
export async function photoTensor(url, size = 224) {
  const img = new Image();
  img.src = url;
  await img.decode();
  if ($("#photo")) $("#photo").src = url;
  const scale = 256 / Math.min(img.width, img.height);
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext("2d");
  const w = img.width * scale, h = img.height * scale;
  ctx.drawImage(img, (size - w) / 2, (size - h) / 2, w, h);
  const rgba = ctx.getImageData(0, 0, size, size).data;
  const x = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++)
    for (let i = 0; i < size * size; i++) x[c * size * size + i] = (rgba[4 * i + c] / 255 - MEAN[c]) / STD[c];
  return x;
}

export function median(values) {
  const v = [...values].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

// One warm-up call, then RUNS timed calls of run(): their median in ms.
export function medianMs(run, runs = RUNS) {
  run();
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    run();
    times.push(performance.now() - t0);
  }
  return median(times);
}

export function top5(logits, names) {
  const max = Math.max(...logits);
  const exp = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  return Array.from(exp.keys()).sort((a, b) => exp[b] - exp[a]).slice(0, 5)
    .map((index) => ({ index, name: names[index], p: exp[index] / sum }));
}

// The microkernels a run took, short: "spmm 8x4, dwconv 16, gemm 8x4 (wasm_simd128)".
export function kernelsUsed(ops, isa) {
  const names = [...new Set(ops.map((op) => op.kernel).filter(Boolean))]
    .map((k) => k.replace("sl_f32_", "").replace("_ukernel", "").replace(/__\w+$/, "").replace(/_/g, " "));
  return `${names.join(", ")} (${isa.join(" ") || "portable C"})`;
}

// model: {id, logits, ms, runs, threads, kernels}. Shows top-5 and latency; returns the top-5.
export function showModel(model, names) {
  const card = $(`#${model.id}`);
  const top = top5(model.logits, names);
  card.querySelector(".top5").innerHTML = top.map((t) => `<li><span class="name">${escape(t.name)}</span>
    <span class="p">${(100 * t.p).toFixed(1)}%</span><span class="bar"><span style="width:${(100 * t.p).toFixed(1)}%"></span></span></li>`).join("");
  card.querySelector(".latency").innerHTML = `<b>${model.ms.toFixed(1)} ms</b> median of ${model.runs} runs · ` +
    `${model.threads} thread${model.threads > 1 ? "s" : ""}<br>kernels: ${escape(model.kernels)}`;
  return top;
}

// What the sparse model is (site.py's sparse.json): its recipe and the agreement site.py measured.
export async function describeSparse() {
  const about = await (await fetch("sparse.json")).json();
  const r = about.recipe;
  $("#sparse h3").textContent =
    `${about.pruned_layers} of ${about.prunable_layers} 1x1 conv / classifier layers at ${Math.round(r.density * 100)}% density in ` +
    `${r.group}x1 groups (${Math.round((1 - about.density) * 100)}% of those weights zero): the layers that tolerate ` +
    `one-shot pruning, calibrated (SparseGPT-style) on other photos, batch norms matched to dense. On the ` +
    `${about.confident.length} scikit-image photos dense is sure of, the same top-1 on ${about.same_top1.length}, ` +
    `${about.top5_shared} of 5 top classes shared. Sparser one-shot loses the cat; that needs fine-tuning.`;
  return about;
}

export function showAgreement(dense, sparse) {
  const shared = dense.filter((d) => sparse.some((s) => s.index === d.index)).length;
  const same = dense[0].index === sparse[0].index;
  const el = $("#agreement");
  el.className = same ? "same" : "differs";
  el.textContent = same
    ? `Agreement: both say “${dense[0].name}”; ${shared} of 5 classes shared.`
    : `Agreement: the top-1 differs (“${dense[0].name}” dense, “${sparse[0].name}” pruned); ${shared} of 5 classes ` +
      "shared. One-shot pruning without fine-tuning degrades accuracy: prune during training to keep it " +
      "(the README's pruning recipe).";
  return { sameTop1: same, shared };
}

// sparselite.profiler.kernel_family, in JS: what the time goes to.
const MATRIX_OPS = new Set(["CONV2D", "FULLY_CONNECTED", "MATMUL", "CONV_TRANSPOSE2D"]);
const MOVEMENT_OPS = new Set(["RESHAPE", "TRANSPOSE", "CONCAT", "PAD", "SLICE", "GATHER", "GATHER_ELEMENTS", "CAST",
  "EXPAND", "DEPTH_TO_SPACE", "RESIZE_BILINEAR", "RESIZE_NEAREST"]);
const FAMILY_COLOURS = { "stem / gemm": "#3b6ea5", depthwise: "#e07b24", spmm: "#2e8b57", elementwise: "#9a6fb0",
  "data movement": "#8c8c8c" };

export function kernelFamily(op) {
  const kernel = op.kernel || "";
  if (kernel.includes("spmm")) return `spmm r=${op.groupSize || 1}`;
  if (kernel.includes("dwconv")) return "depthwise";
  if (kernel.includes("gemm") || kernel.includes("winograd") || MATRIX_OPS.has(op.type)) return "stem / gemm";
  if (MOVEMENT_OPS.has(op.type) || kernel.includes("unzip")) return "data movement";
  return "elementwise";
}

const colour = (family) => FAMILY_COLOURS[family.split(" r=")[0]];

// ops: [{name, type, kernel, ms, groupSize}] (sparselite.mjs's model.profile). Family shares, then one bar per op.
export function renderProfile(ops, title) {
  const total = ops.reduce((a, op) => a + op.ms, 0) || 1;
  const top = Math.max(...ops.map((op) => op.ms)) || 1;
  const families = new Map();
  for (const op of ops) families.set(kernelFamily(op), (families.get(kernelFamily(op)) || 0) + op.ms);
  $("#profile-title").textContent = title;
  $("#profile").innerHTML = `<div class="stack">${[...families].map(([f, ms]) =>
    `<div style="width:${(100 * ms / total).toFixed(2)}%;background:${colour(f)}" title="${f}"></div>`).join("")}</div>
    <div class="legend">${[...families].map(([f, ms]) => `<span><span class="chip" style="background:${colour(f)}"></span>` +
      `${f} ${ms.toFixed(2)} ms (${(100 * ms / total).toFixed(0)}%)</span>`).join("")}</div>
    <div class="ops">${ops.map((op) => `<span class="name" title="${escape(op.name)} · ${escape(op.kernel || "plain C")}">` +
      `${escape(op.name)}</span><span class="bar" style="width:${(100 * op.ms / top).toFixed(2)}%;background:` +
      `${colour(kernelFamily(op))}"></span><span class="ms">${op.ms.toFixed(3)} ms</span>`).join("")}</div>`;
}

// Pyodide with the sparselite wheel, micropip and packaging all served next to the page: works offline.
export async function pyodideWithSparselite(status) {
  const { loadPyodide } = await import("./pyodide/pyodide.mjs");
  const pyodide = await loadPyodide({ indexURL: new URL("./pyodide/", location.href).href });
  status("installing the sparselite wheel with micropip…");
  const wheels = await (await fetch("wheels/index.json")).json();
  await pyodide.loadPackage(wheels.micropip.map((w) => new URL(`wheels/${w}`, location.href).href));
  await pyodide.pyimport("micropip").install(new URL(`wheels/${wheels.sparselite}`, location.href).href);
  return pyodide;
}

// Ends a classification: both models' agreement, the sparse model's per-op chart, the status line,
// and the result where tests/test_browser.py reads it.
export function showResult(result) {
  result.agreement = showAgreement(result.dense.top5, result.sparse.top5);
  renderProfile(result.sparse.ops, `group-sparse model, per op (mean of ${RUNS} profiled runs), by kernel family; a fused block's time is on its first op`);
  status(`done: median of ${RUNS} runs per model`);
  window.sparseliteResult = result;
}

// Classifies the sample photo, then every image the person picks or drops.
export async function classifyPhotos(classify) {
  onImagePicked((url) => classify(url).catch((err) => status(`error: ${err}`)));
  await classify("photo.png");
}
