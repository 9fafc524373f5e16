// Shared by the sample pages: the photo as a normalized 1x3x224x224 tensor, top-5, and Pyodide with
// the sparselite wheel.
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

export async function photoTensor(url, size = 224) {
  const img = new Image();
  img.src = url;
  await img.decode();
  // Resize the short side to 256, center-crop 224 (the usual ImageNet evaluation transform).
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

export function top5(logits) {
  return Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, 5)
    .map((index) => ({ index, logit: logits[index] }));
}

export function show(result) {
  document.querySelector("#status").textContent = `done in ${result.ms.toFixed(1)} ms (${result.engine})`;
  document.querySelector("#top5").innerHTML = result.top5
    .map((t) => `<li>ImageNet class ${t.index} <small>(logit ${t.logit.toFixed(2)})</small></li>`).join("");
  window.sparseliteResult = result; // read by tests/test_browser.py
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
