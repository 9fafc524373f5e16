// Node driver for tests and quick checks: runs a .slite on raw float32 input through sparselite.mjs.
//   node wasm/run_node.mjs <sparselite.wasm> <model.slite> <input.f32> <output.f32>
import { readFile, writeFile } from "node:fs/promises";
import { loadRuntime } from "./sparselite.mjs";

const [wasm, slite, input, output] = process.argv.slice(2);
const runtime = await loadRuntime(wasm);
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
console.log(JSON.stringify({ inputs: model.inputs, outputs: model.outputs, shape: y.shape, ms, isa: runtime.isa }));
model.free();
