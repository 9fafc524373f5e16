"""Where fp32 rounding grows in a deep torchvision ResNet (model_coverage's seeded weights and input).

After the stem, each stage and the classifier, the max abs error relative to the largest value
against the same prefix run in float64, for: an ideal fp32 engine (float64 with every layer's
output rounded to float32, exact sums: the floor for any fp32 engine), torch fp32, ONNX Runtime,
and sparselite with Winograd as loaded by default, F(2x2) only, and off. Explains the model
coverage's "rounding" mismatches (README, Model coverage).

    python benchmarks/rounding.py [resnet101] [--side 128]
    python benchmarks/rounding.py --tflite pose_landmark_full

With --tflite, a MediaPipe .tflite (model_coverage's input): every tensor both engines keep (each
op output LiteRT names), sparselite's and LiteRT's max abs error relative to the largest value
against the converted graph run in float64 (graph64.py), in graph order. A few of LiteRT's kept
tensors are not the op's final output (XNNPACK reuses their buffers): those show LiteRT at ~1.
"""
import argparse
import copy
import io
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def rel(a, b):
    import numpy as np

    return float(np.abs(a - b).max() / np.abs(b).max())


def rounded_per_layer(model):
    """A float64 copy of model whose leaf modules round their outputs to float32."""
    m64 = copy.deepcopy(model).double()
    for mod in m64.modules():
        if not list(mod.children()):
            mod.register_forward_hook(lambda mod, inp, out: out.float().double())
    return m64


def tflite_layers(name):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    import sparselite
    from bench_tflite import mediapipe_models
    from graph64 import run_float64
    from sparselite.converters import from_tflite
    from sparselite.converters.writer import serialize

    path = mediapipe_models()[name]
    graph = from_tflite(path).graph
    feeds = {n: np.random.default_rng(0).uniform(-1, 1, graph.tensors[n].shape).astype(np.float32)
             for n in graph.inputs}   # model_coverage's input
    interp = Interpreter(model_path=path, num_threads=1, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], feeds[d["name"]])
    interp.invoke()
    kept = {d["name"]: d["index"] for d in interp.get_tensor_details()}
    source = {op.outputs[0]: op.outputs[0].removesuffix(":out") for op in graph.ops}
    layers = [t for t in source if source[t] in kept and t not in graph.outputs]
    graph.outputs += layers   # every kept tensor an output: computed, and comparable
    ours = sparselite.load(serialize(graph)).run(feeds)
    for t, mine, exact in zip(graph.outputs, ours, run_float64(graph, feeds)):
        theirs = interp.get_tensor(kept[source.get(t, t)])
        if exact.ndim == 4 and theirs.shape != exact.shape:   # NCHW inside the graph
            exact, mine = exact.transpose(0, 2, 3, 1), mine.transpose(0, 2, 3, 1)
        if theirs.shape != exact.shape:
            continue
        print(json.dumps(dict(at=source.get(t, t)[-60:], shape=list(theirs.shape), sparselite=f"{rel(mine, exact):.2e}",
                              litert=f"{rel(theirs, exact):.2e}")), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="resnet101")
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--tflite", metavar="NAME", help="a MediaPipe model, layer by layer against float64")
    args = parser.parse_args()
    if args.tflite:
        return tflite_layers(args.tflite)

    import onnxruntime as ort
    import torch

    import model_coverage as mc
    import sparselite
    from sparselite.converters import from_torch

    torch.set_num_threads(1)
    model = mc.lively(mc.build("torchvision classification", args.model), args.side)
    x = torch.randn(2, 1, 3, args.side, args.side, generator=torch.Generator().manual_seed(1))[0]
    stages = [("stem", torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool))]
    stages += [(f"layer{i}", getattr(model, f"layer{i}")) for i in range(1, 5)]
    stages += [("fc", torch.nn.Sequential(model.avgpool, torch.nn.Flatten(1), model.fc))]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    for k in range(1, len(stages) + 1):
        prefix = torch.nn.Sequential(*[m for _, m in stages[:k]]).eval()
        with torch.no_grad():
            exact = copy.deepcopy(prefix).double()(x.double()).numpy()
            row = dict(at=stages[k - 1][0], ideal_fp32=rel(rounded_per_layer(prefix)(x.double()).numpy(), exact),
                       torch=rel(prefix(x).numpy(), exact))
        buf = io.BytesIO()
        torch.onnx.export(prefix, (x,), buf, input_names=["input"], opset_version=17, dynamo=False)
        session = ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])
        row["onnxruntime"] = rel(session.run(None, {"input": x.numpy()})[0], exact)
        blob = from_torch(prefix, x).to_bytes()
        for label, winograd in (("sparselite", True), ("sparselite_f2", 2), ("sparselite_no_winograd", False)):
            row[label] = rel(sparselite.load(blob, winograd=winograd).run(x.numpy())[0], exact)
        print(json.dumps({key: f"{v:.2e}" if isinstance(v, float) else v for key, v in row.items()}), flush=True)


if __name__ == "__main__":
    main()
