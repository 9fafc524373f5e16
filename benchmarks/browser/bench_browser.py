"""In-browser benchmark: sparselite.wasm against LiteRT.js (XNNPACK) and onnxruntime-web in one page
of headless Chromium, one thread each (and sparselite's threads build on --threads threads), engines
taking turns run by run; medians. A second page load runs the threaded builds alone on --threads
threads, sparselite's against LiteRT.js's (litert_wasm_threaded_internal; LiteRT.js loads one build a
page), for the models LiteRT.js runs.

Models: MobileNetV2 (real weights) dense and pruned to 80% and 90% in 4x1 groups, the same weights
for every engine (.slite and .onnx from the torch module, .tflite from litert-torch), and
all-MiniLM-L6-v2 at 80% (one sequence of 128 tokens) against onnxruntime-web. sparselite runs the
build its loader picks (relaxed SIMD in Chromium) and, as a second column, SIMD128. Serves the page
locally (with the COOP/COEP headers of a cross-origin-isolated page) and writes JSON with the
browser version, the build and threads each engine used, and sparselite's per-kernel profile.

    python benchmarks/browser/bench_browser.py [--runs 30] [--threads 2] [--json out.json] [--site DIR]
Needs Chromium (/usr/bin/chromium or $CHROMIUM), pip install litert-torch, and
npm install --prefix ~/.cache/sparselite-npm playwright-core onnxruntime-web @litertjs/core.
--site keeps the built page and models in DIR and reuses its converted models.
"""
import argparse
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NPM = os.path.join(os.path.expanduser("~"), ".cache", "sparselite-npm", "node_modules")
sys.path.insert(0, os.path.dirname(HERE))
# name -> (bench_models model, sparsity, with a .tflite for LiteRT.js)
MODELS = {"mobilenet_v2 dense": ("mobilenet_v2", 0.0, True), "mobilenet_v2 80%": ("mobilenet_v2", 0.8, True),
          "mobilenet_v2 90%": ("mobilenet_v2", 0.9, True), "minilm_l6 80%": ("minilm_l6", 0.8, False)}
ENGINES = ("sparselite", "sparselite SIMD128", "LiteRT.js", "onnxruntime-web")
THREADED = "sparselite {} threads"  # the threads build's column, where the page ran it
LITERT_THREADED = "LiteRT.js {} threads"


def convert(site, name, model, sparsity, tflite):
    """The model's files in site/ and its manifest entry."""
    import torch

    from bench_models import build, export, model_inputs

    stem = name.replace(" ", "_").replace("%", "")
    inputs = model_inputs(model)
    entry = dict(name=name, slite=f"{stem}_fp32.slite", onnx=f"{stem}.onnx", inputs=[])
    for input_name, x in inputs.items():
        x.tofile(os.path.join(site, f"{stem}.{input_name}.bin"))
        entry["inputs"].append(dict(name=input_name, dtype=str(x.dtype), shape=list(x.shape),
                                    file=f"{stem}.{input_name}.bin"))
    if tflite:
        entry["tflite"] = f"{stem}.tflite"
    if all(os.path.exists(os.path.join(site, entry[k])) for k in ("slite", "onnx", "tflite") if k in entry):
        return entry
    module = build(model, sparsity)
    export(module, inputs, site, stem)
    if tflite:
        import litert_torch

        example = tuple(torch.from_numpy(x) for x in inputs.values())
        litert_torch.convert(module.eval(), example).export(os.path.join(site, entry["tflite"]))
    return entry


def build_site(site, names):
    os.makedirs(site, exist_ok=True)
    dist = os.path.join(site, "dist")
    subprocess.run(["bash", os.path.join(ROOT, "wasm", "build.sh")], check=True, capture_output=True,
                   env=dict(os.environ, OUT=dist))
    for name in ("sparselite.wasm", "sparselite-relaxed.wasm", "sparselite-threads.wasm", "sparselite.mjs",
                 "sparselite_abi.mjs"):
        shutil.copy(os.path.join(dist, name), site)
    for name in ("index.html", "bench.mjs"):
        shutil.copy(os.path.join(HERE, name), site)
    for link, target in (("ort", os.path.join(NPM, "onnxruntime-web", "dist")),
                         ("litertjs", os.path.join(NPM, "@litertjs"))):
        assert os.path.exists(target), f"missing {target}: npm install --prefix ~/.cache/sparselite-npm " \
                                       "onnxruntime-web @litertjs/core"
        if not os.path.exists(os.path.join(site, link)):
            os.symlink(target, os.path.join(site, link))
    manifest = dict(models=[convert(site, name, *MODELS[name]) for name in names])
    with open(os.path.join(site, "models.json"), "w") as f:
        json.dump(manifest, f, indent=1)


class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the headers that make a page cross-origin isolated (SharedArrayBuffer)."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript", ".wasm": "application/wasm"}

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


def run_page(site, runs, threads, litert_threaded=False):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(IsolatedHandler, directory=site))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/index.html?runs={runs}&threads={threads}"
        if litert_threaded:
            url += "&litert=threaded"
        out = subprocess.run(["node", os.path.join(HERE, "drive.mjs"), url], check=True, capture_output=True, text=True,
                             env=dict(os.environ, PLAYWRIGHT_DIR=os.path.join(NPM, "playwright-core")))
    finally:
        httpd.shutdown()
    report = json.loads(out.stdout.strip().splitlines()[-1])
    if "error" in report:
        raise SystemExit(f"the page failed: {report['error']}\n{report.get('logs')}")
    return report


def merge_threaded(report, threaded):
    """The threaded page's engines and times added to the one-thread page's report."""
    report["engines"].update(threaded["engines"])
    rows = {r["model"]: r for r in threaded["results"]}
    for r in report["results"]:
        if r["model"] in rows:
            for key in ("ms", "quartiles", "relErrVsSparselite"):
                r[key].update(rows[r["model"]][key])


def table(report, threads):
    threaded, litert = THREADED.format(threads), LITERT_THREADED.format(threads)
    lines = [f"| model | sparselite.wasm ms | {threads} threads ms | SIMD128 build ms | LiteRT.js ms | "
             f"LiteRT.js {threads} threads ms | onnxruntime-web ms | vs LiteRT.js | vs ORT-web | "
             f"{threads} threads vs LiteRT.js {threads} threads |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        ms = r["ms"]
        cells = [f"{ms[e]:.1f}" if e in ms else "–" for e in (ENGINES[0], threaded, ENGINES[1], ENGINES[2], litert,
                                                              ENGINES[3])]
        ratios = [f"**{ms[e] / ms[ours]:.2f}x**" if e in ms and ours in ms else "–"
                  for e, ours in ((ENGINES[2], "sparselite"), (ENGINES[3], "sparselite"), (litert, threaded))]
        lines.append(f"| {r['model']} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="sparselite's threads build on this many threads")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results", "browser.json"))
    parser.add_argument("--site", help="build the page here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    from common import machine_info, write_json

    with tempfile.TemporaryDirectory() as tmp:
        site = os.path.abspath(args.site or tmp)
        build_site(site, args.models)
        report = run_page(site, args.runs, args.threads)
        if args.threads > 1 and report["crossOriginIsolated"]:
            merge_threaded(report, run_page(site, args.runs, args.threads, litert_threaded=True))
    for r in report["results"]:
        bad = {e: err for e, err in r["relErrVsSparselite"].items() if not err < 1e-3}
        assert not bad, f"{r['model']}: engines disagree with sparselite: {bad}"
    print(f"{report['browser']}, {machine_info()['cpu']}, 1 thread each "
          f"(and {THREADED.format(args.threads)} against {LITERT_THREADED.format(args.threads)}, a second page), "
          f"median of {report['runs']} alternating runs")
    print(table(report, args.threads))
    for r in report["results"]:
        top = sorted(r["kernels"].items(), key=lambda kv: -kv[1]["ms"])[:4]
        print(f"{r['model']}: " + ", ".join(f"{k} x{v['ops']} {v['ms']:.1f} ms" for k, v in top))
    write_json(args.json, {**machine_info(), **{k: v for k, v in report.items() if k != "logs"}})


if __name__ == "__main__":
    main()
