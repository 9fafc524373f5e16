// Node, one thread: sparselite.wasm (via sparselite.mjs) against onnxruntime-web's WASM SIMD backend
// on the same models. Engines take turns in blocks; prints one JSON line: the build sparselite.mjs
// chose ({build, results}: medians in ms).
//   ORT_WEB_DIR=<node_modules/onnxruntime-web> node bench_wasm.mjs <sparselite.wasm> <runs> <a.slite> <a.onnx> ...
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadRuntime } from "../wasm/sparselite.mjs";

const [wasm, runsArg, ...files] = process.argv.slice(2);
const runs = Number(runsArg);
const ort = await import(pathToFileURL(join(process.env.ORT_WEB_DIR, "dist", "ort.wasm.min.mjs")).href);
ort.env.wasm.numThreads = 1;
ort.env.wasm.simd = true;
ort.env.logLevel = "error";
const runtime = await loadRuntime(wasm);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
async function timeBlocks(engines, blocks = 5) {
  const times = Object.fromEntries(Object.keys(engines).map((k) => [k, []]));
  for (let b = 0; b < blocks; b++) {
    for (const [name, fn] of Object.entries(engines)) {
      for (let i = 0; i < 3; i++) await fn();
      for (let i = 0; i < Math.ceil(runs / blocks); i++) {
        const t0 = performance.now();
        await fn();
        times[name].push(performance.now() - t0);
      }
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

const results = [];
for (let i = 0; i < files.length; i += 2) {
  const model = runtime.load(await readFile(files[i]));
  const session = await ort.InferenceSession.create(await readFile(files[i + 1]),
    { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const shape = model.inputs[0].shape;
  const x = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, j) => Math.sin(j));
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", x, shape) };
  const ms = await timeBlocks({
    sparselite: async () => model.run([x]),
    "onnxruntime-web": async () => session.run(feeds),
  });
  const [ours] = model.run([x]);
  const theirs = (await session.run(feeds))[session.outputNames[0]].data;
  let diff = 0, scale = 0;
  ours.data.forEach((v, j) => { diff = Math.max(diff, Math.abs(v - theirs[j])); scale = Math.max(scale, Math.abs(theirs[j])); });
  results.push({ slite: files[i], onnx: files[i + 1], ms, rel_err: diff / scale });
  model.free();
  await session.release();
}
console.log(JSON.stringify({ build: runtime.build, results }));
