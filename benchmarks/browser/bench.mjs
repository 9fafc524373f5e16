// The benchmark page: every engine on every model of models.json, one thread each, engines taking
// turns run by run (so machine noise hits all alike), medians. Sets window.benchResult.
// ?runs=N (default 30) runs per engine and model after 3 warm-ups each; then sparselite's per-kernel
// profile. ?threads=N (default 2): sparselite's threads build on N threads as one more engine, where
// the page is cross-origin isolated. ?litert=threaded: instead, only the threaded builds on N threads,
// sparselite's and LiteRT.js's (LiteRT.js loads one build a page).
import { loadRuntime } from "./sparselite.mjs";
import * as ort from "./ort/ort.wasm.min.mjs";
import { loadAndCompile, loadLiteRt, supportsFeature, Tensor } from "./litertjs/core/dist/index.js";

const params = new URLSearchParams(location.search);
const runs = Number(params.get("runs") ?? 30);
const numThreads = Number(params.get("threads") ?? 2);
const threadedOnly = params.get("litert") === "threaded";
const status = (text) => { document.getElementById("status").textContent = text; };
const ARRAYS = { float32: Float32Array, int64: BigInt64Array };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

// The largest difference from `want`, relative to want's largest magnitude.
function relErr(got, want) {
  let diff = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return got.length === want.length ? diff / scale : Infinity;
}

async function main() {
  const manifest = await (await fetch("./models.json")).json();
  const sparselite = await loadRuntime(new URL("./sparselite.wasm", location.href));
  const simd128 = await loadRuntime(new URL("./sparselite.wasm", location.href), { relaxedSimd: false });
  const threaded = await loadRuntime(new URL("./sparselite.wasm", location.href), { numThreads });
  const threadedName = `sparselite ${numThreads} threads`;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = new URL("./ort/", location.href).href;
  ort.env.logLevel = "error";
  await loadLiteRt(new URL("./litertjs/core/wasm/", location.href).href, { threads: threadedOnly });
  // LiteRT.js loads its relaxed-SIMD XNNPACK build where its own feature check passes, its "compat"
  // build elsewhere (threaded: its one threaded build); ours asks the same question.
  const litertRelaxed = await supportsFeature("relaxedSimd");
  const litertName = threadedOnly ? `LiteRT.js ${numThreads} threads` : "LiteRT.js";
  const litertThreads = threadedOnly ? numThreads : 1;
  const litertBuild = threadedOnly ? "litert_wasm_threaded_internal"
                                   : litertRelaxed ? "litert_wasm_internal (relaxed SIMD)" : "litert_wasm_compat_internal";
  if (threadedOnly && threaded.threads !== numThreads)
    throw new Error(`the threads build runs ${threaded.threads} threads, not ${numThreads}: is the page cross-origin isolated?`);
  const engines = {
    ...(threadedOnly ? {} : { sparselite: { build: sparselite.build, threads: 1 },
                              "sparselite SIMD128": { build: simd128.build, threads: 1 } }),
    ...(threaded.threads > 1 ? { [threadedName]: { build: `${threaded.build} + threads`, threads: threaded.threads } } : {}),
    [litertName]: { build: litertBuild, threads: litertThreads },
    ...(threadedOnly ? {} : { "onnxruntime-web": { build: `ort-wasm-simd-threaded ${ort.env.versions?.common ?? ""}`.trim(),
                                                   threads: 1 } }),
  };
  const results = [];
  for (const spec of manifest.models) {
    if (threadedOnly && !spec.tflite) continue; // nothing to compare the threads build with
    status(`${spec.name}: loading`);
    const inputs = await Promise.all(spec.inputs.map(async (input) => {
      const raw = await fetchBytes(input.file);
      const Typed = ARRAYS[input.dtype];
      return { ...input, data: new Typed(raw.buffer, 0, raw.byteLength / Typed.BYTES_PER_ELEMENT) };
    }));
    const slite = await fetchBytes(spec.slite);
    const ours = sparselite.load(slite), ours128 = simd128.load(slite);
    const oursThreaded = threaded.threads > 1 ? threaded.load(slite) : null;
    const session = threadedOnly ? null : await ort.InferenceSession.create(await fetchBytes(spec.onnx),
      { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    const feeds = Object.fromEntries(inputs.map((x) => [x.name, new ort.Tensor(x.dtype, x.data, x.shape)]));
    // sparselite's single-threaded run is the reference the others are checked against, in every mode.
    const reference = async () => ours.run(inputs.map((x) => x.data))[0].data;
    const runners = threadedOnly ? {} : {
      sparselite: reference,
      "sparselite SIMD128": async () => ours128.run(inputs.map((x) => x.data))[0].data,
      "onnxruntime-web": async () => (await session.run(feeds))[session.outputNames[0]].data,
    };
    if (oursThreaded) runners[threadedName] = async () => oursThreaded.run(inputs.map((x) => x.data))[0].data;
    let litert = null;
    if (spec.tflite) {
      litert = await loadAndCompile(spec.tflite, { accelerator: "wasm", cpuOptions: { numThreads: litertThreads } });
      runners[litertName] = async () => {
        const tensors = inputs.map((x) => new Tensor(x.data, x.shape));
        const outputs = await litert.run(tensors);
        const data = outputs[0].toTypedArray().slice();
        tensors.forEach((t) => t.delete());
        outputs.forEach((t) => t.delete());
        return data;
      };
    }
    const names = Object.keys(runners);
    const want = await reference();
    const agreement = {};
    for (const name of names) {
      agreement[name] = relErr(await runners[name](), want);
      for (let i = 0; i < 2; i++) await runners[name]();
    }
    const times = Object.fromEntries(names.map((name) => [name, []]));
    for (let r = 0; r < runs; r++) {
      status(`${spec.name}: run ${r + 1} of ${runs}`);
      for (let k = 0; k < names.length; k++) {
        const name = names[(r + k) % names.length]; // each engine goes first as often
        const t0 = performance.now();
        await runners[name]();
        times[name].push(performance.now() - t0);
      }
    }
    const ms = Object.fromEntries(names.map((name) => [name, median(times[name])]));
    const spread = Object.fromEntries(names.map((name) => {
      const sorted = [...times[name]].sort((a, b) => a - b);
      return [name, [sorted[Math.floor(sorted.length / 4)], sorted[Math.floor((3 * sorted.length) / 4)]]];
    }));
    // Where sparselite's time goes, per microkernel (plain C ops by type), over 10 profiled runs.
    const kernels = {};
    for (const op of threadedOnly ? [] : ours.profile(inputs.map((x) => x.data), 10)) {
      if (op.fusedInto !== null) continue; // its time is in the fused block's op
      const key = op.kernel || op.type;
      kernels[key] ??= { ops: 0, ms: 0 };
      kernels[key].ops++;
      kernels[key].ms += op.ms;
    }
    results.push({ model: spec.name, ms, quartiles: spread, relErrVsSparselite: agreement, kernels });
    ours.free();
    ours128.free();
    oursThreaded?.free();
    await session?.release();
    litert?.delete?.();
    render(results, Object.keys(engines));
  }
  window.benchResult = { userAgent: navigator.userAgent, crossOriginIsolated: self.crossOriginIsolated,
                         hardwareConcurrency: navigator.hardwareConcurrency, runs, engines, results };
  status(`done: ${runs} runs per engine and model`);
}

function render(results, engines) {
  const head = `<tr><th>model</th>${engines.map((e) => `<th>${e} ms</th>`).join("")}</tr>`;
  const rows = results.map((r) => `<tr><td>${r.model}</td>${engines.map((e) =>
    `<td>${r.ms[e] === undefined ? "" : r.ms[e].toFixed(1)}</td>`).join("")}</tr>`);
  document.getElementById("table").innerHTML = head + rows.join("");
}

main().catch((err) => {
  status(`error: ${err.message}`);
  window.benchResult = { error: String(err.stack ?? err) };
});
