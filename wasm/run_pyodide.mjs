// Runs sparselite's Python API inside Pyodide on Node, offline, from the wheel wasm/build.sh writes.
//   PYODIDE_DIR=<node_modules/pyodide> node wasm/run_pyodide.mjs [--profile RUNS] <wheel> <model.slite> \
//       <output.bin> <name>:<dtype>:<shape, e.g. 1x3x224x224>:<raw little-endian file> ... [-- <inputs of a next run> ...]
// Runs on the named inputs (any shape a dynamic axis allows), once per `--`-separated set from one load,
// and writes the first output's raw bytes of each run, one after the other. Prints one JSON line: the
// specs, output shape (of the first run; `shapes`: every run's), ISA, with --profile
// Model.profile(runs=RUNS), Model.profile_report and its format_table, and any Python exception's
// type and message.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const profileRuns = args[0] === "--profile" ? Number(args.splice(0, 2)[1]) : 0;
const [wheel, slite, output, ...inputs] = args;
const { loadPyodide } = await import(pathToFileURL(join(process.env.PYODIDE_DIR, "pyodide.mjs")).href);
const py = await loadPyodide({ stdout: () => {}, stderr: () => {} });
await py.loadPackage(wheel, { messageCallback: () => {} });
py.FS.writeFile("/model.slite", await readFile(slite));
const specs = [[]];   // per run: [name, dtype, shape, path]
for (const [i, arg] of inputs.entries()) {
  if (arg === "--") {
    specs.push([]);
    continue;
  }
  const [name, dtype, shape, file] = arg.split(":");
  py.FS.writeFile(`/input${i}`, await readFile(file));
  specs.at(-1).push([name, dtype, shape.split("x").map(Number), `/input${i}`]);
}
py.globals.set("input_specs", JSON.stringify(specs));
py.globals.set("profile_runs", profileRuns);
const result = py.runPython(`
import array, dataclasses, json, sparselite
from sparselite.profiler import format_table
TYPECODES = {"float32": "f", "int32": "i", "int64": "q", "bool": "B"}
try:
    model = sparselite.load("/model.slite")
    shapes = []
    with open("/output.bin", "wb") as out:
        for run in json.loads(input_specs):
            feeds = {}
            for name, dtype, shape, path in run:
                data = array.array(TYPECODES[dtype])
                data.frombytes(open(path, "rb").read())
                feeds[name] = sparselite.Tensor(data, shape)
            y = model.run(feeds)[0]
            out.write(y.data.tobytes())
            shapes.append(list(y.shape))
    report = dict(inputs=[[s.name, list(s.shape), s.dtype, list(s.dynamic_axes)] for s in model.inputs],
                  shape=shapes[0], shapes=shapes, output_type=type(y).__name__, isa=sparselite.cpu_isa())
    if profile_runs:
        report["profile"] = [dataclasses.asdict(op) for op in model.profile(feeds, runs=profile_runs)]
        report["profile_report"] = model.profile_report(feeds, runs=profile_runs, warmup=1)
        report["table"] = format_table(report["profile_report"])
except Exception as exc:
    report = dict(error=type(exc).__name__, message=str(exc))
json.dumps(report)
`);
const report = JSON.parse(result);
if (!report.error) await writeFile(output, py.FS.readFile("/output.bin"));
console.log(result);
