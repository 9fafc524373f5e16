// Runs sparselite's Python API inside Pyodide on Node, offline, from the wheel wasm/build.sh writes.
//   PYODIDE_DIR=<node_modules/pyodide> node wasm/run_pyodide.mjs <wheel> <model.slite> <input.f32> <output.f32>
// Prints one JSON line: the input specs, output shape, ISA, and any Python exception's type and message.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [wheel, slite, input, output] = process.argv.slice(2);
const { loadPyodide } = await import(pathToFileURL(join(process.env.PYODIDE_DIR, "pyodide.mjs")).href);
const py = await loadPyodide({ stdout: () => {}, stderr: () => {} });
await py.loadPackage(wheel, { messageCallback: () => {} });
py.FS.writeFile("/model.slite", await readFile(slite));
py.FS.writeFile("/input.f32", await readFile(input));
const result = py.runPython(`
import array, json, sparselite
try:
    model = sparselite.load("/model.slite")
    x = array.array("f")
    x.frombytes(open("/input.f32", "rb").read())
    (y,) = model.run(sparselite.Tensor(x, model.inputs[0].shape))
    open("/output.f32", "wb").write(y.data.tobytes())
    report = dict(inputs=[[s.name, list(s.shape), s.dtype] for s in model.inputs], shape=list(y.shape),
                  output_type=type(y).__name__, isa=sparselite.cpu_isa())
except Exception as exc:
    report = dict(error=type(exc).__name__, message=str(exc))
json.dumps(report)
`);
const report = JSON.parse(result);
if (!report.error) await writeFile(output, py.FS.readFile("/output.f32"));
console.log(result);
