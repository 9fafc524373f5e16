// Node driver for tests and quick checks: runs a .slite on raw float32 input through sparselite.mjs.
//   node wasm/run_node.mjs [--profile RUNS] [--threads N] <sparselite.wasm> <model.slite> <input.f32> <output.f32>
// Prints one JSON line: the specs, output shape, time, build, ISA names and threads, and with --profile the
// per-op profile of RUNS runs (model.profile). --threads: loadRuntime's numThreads.
import { readFile, writeFile } from "node:fs/promises";
import { loadRuntime } from "./sparselite.mjs";

const args = process.argv.slice(2);
const option = (name) => {
  const at = args.indexOf(name);
  return at < 0 ? 0 : Number(args.splice(at, 2)[1]);
};
const profileRuns = option("--profile");
const numThreads = option("--threads") || 1;
const [wasm, slite, input, output] = args;
const runtime = await loadRuntime(wasm, { numThreads });
let model;
try {
  model = runtime.load(await readFile(slite));
} catch (err) {
  console.log(JSON.stringify({ error: err.message }));
  process.exit(0);
}
const raw = await readFile(input);
const x = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
const t0 = performance.now();
const [y] = model.run([x]);
const ms = performance.now() - t0;
await writeFile(output, Buffer.from(y.data.buffer));
const report = { inputs: model.inputs, outputs: model.outputs, shape: y.shape, ms, build: runtime.build, isa: runtime.isa,
  threads: runtime.threads };
if (profileRuns) report.profile = model.profile([x], profileRuns);
console.log(JSON.stringify(report));
model.free();
