"""Browser-engine benchmark: sparselite.wasm against onnxruntime-web (WASM SIMD, 1 thread) in Node.

Builds wasm/dist (wasm/build.sh), converts MobileNetV2 dense and pruned to 80%/90% sparsity in 4x1
groups to .slite and .onnx (same weights), and runs benchmarks/bench_wasm.mjs, which times both
engines in turns in one process. Prints medians, ratios and the outputs' agreement; writes JSON.

    python benchmarks/bench_wasm.py [--runs 40] [--json out.json]
Needs Node and `npm install --prefix ~/.cache/sparselite-npm onnxruntime-web`.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NPM = os.path.join(os.path.expanduser("~"), ".cache", "sparselite-npm", "node_modules")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--sparsities", nargs="+", type=float, default=[0.0, 0.8, 0.9])
    parser.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results", "wasm.json"))
    args = parser.parse_args()
    import numpy as np

    from bench_models import build, export
    from common import cpu_name, machine_info, write_json

    x = {"input": np.zeros((1, 3, 224, 224), np.float32)}
    with tempfile.TemporaryDirectory() as tmp:
        dist = os.path.join(tmp, "dist")
        subprocess.run(["bash", os.path.join(ROOT, "wasm", "build.sh")], check=True, capture_output=True,
                       env=dict(os.environ, OUT=dist))
        files = []
        for sparsity in args.sparsities:
            slite, _, onnx = export(build("mobilenet_v2", sparsity), x, tmp, f"mobilenet_v2_{int(sparsity * 100)}")
            files += [slite, onnx]
        out = subprocess.run(["node", os.path.join(ROOT, "benchmarks", "bench_wasm.mjs"),
                              os.path.join(dist, "sparselite.wasm"), str(args.runs), *files], check=True,
                             capture_output=True, text=True, env=dict(os.environ, ORT_WEB_DIR=os.path.join(
                                 NPM, "onnxruntime-web"))).stdout
    report = json.loads(out.strip().splitlines()[-1])
    rows = report["results"]
    node = subprocess.check_output(["node", "--version"], text=True).strip()
    print(f"MobileNetV2 224x224 in Node {node} on {cpu_name()}, 1 thread, {report['build']}, median of {args.runs}")
    print("| sparsity | sparselite.wasm ms | onnxruntime-web ms | vs ORT-web | max rel. diff |")
    print("|---|---|---|---|---|")
    for sparsity, r in zip(args.sparsities, rows):
        ms = r["ms"]
        r.update(sparsity=sparsity, speedup_vs_ort_web=ms["onnxruntime-web"] / ms["sparselite"])
        del r["slite"], r["onnx"]  # temporary paths
        print(f"| {int(sparsity * 100)}% | {ms['sparselite']:.2f} | {ms['onnxruntime-web']:.2f} | "
              f"**{r['speedup_vs_ort_web']:.2f}x** | {r['rel_err']:.1e} |")
    write_json(args.json, {**machine_info(), "isa": report["build"], "node": node, "runs": args.runs, "results": rows})


if __name__ == "__main__":
    main()
