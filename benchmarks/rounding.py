"""Where fp32 rounding grows in a deep torchvision ResNet (model_coverage's seeded weights and input).

After the stem, each stage and the classifier, the max abs error relative to the largest value
against the same prefix run in float64, for: an ideal fp32 engine (float64 with every layer's
output rounded to float32, exact sums: the floor for any fp32 engine), torch fp32, ONNX Runtime,
and sparselite with Winograd as loaded by default, F(2x2) only, and off. Explains the model
coverage's "rounding" mismatches (README, Model coverage).

    python benchmarks/rounding.py [resnet101] [--side 128]
    python benchmarks/rounding.py --tflite pose_landmark_full
    python benchmarks/rounding.py --ops levit_128s --pruned

With --tflite, a MediaPipe .tflite (model_coverage's input): every tensor both engines keep (each
op output LiteRT names), sparselite's and LiteRT's max abs error relative to the largest value
against the converted graph run in float64 (graph64.py), in graph order. A few of LiteRT's kept
tensors are not the op's final output (XNNPACK reuses their buffers): those show LiteRT at ~1.

With --ops, a model_coverage model (a timm or torchvision name, pruned 4x1 with --pruned, or a
MediaPipe .tflite) converted, and each op's own rounding: run in float64 on the fp32 inputs sparselite
gave it, against sparselite's output and torch fp32's on the same inputs (rms error relative to the
op's largest value; data movement skipped), then per op type the median and largest ratio. For a
torch model, also how far torch fp32, the converted graph in float64 and sparselite are from the
model in float64 on model_coverage's input and on five others.
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


def op_errors(name, pruned):
    import numpy as np
    import torch

    import model_coverage as mc
    import sparselite
    from graph64 import run_float64, run_op
    from sparselite.converters import from_tflite, from_torch, prune_groups
    from sparselite.converters.writer import serialize

    torch.set_num_threads(1)
    family = dict((n, f) for f, n in mc.model_list())[name]
    model = None
    if family == "MediaPipe":
        from bench_tflite import mediapipe_models

        graph = from_tflite(mediapipe_models()[name]).graph
        feeds = {n: np.random.default_rng(0).uniform(-1, 1, graph.tensors[n].shape).astype(np.float32)
                 for n in graph.inputs}
    else:
        side = mc.side_of(name)
        model = mc.flat_module(mc.lively(mc.build(family, name), side))
        x = torch.randn(2, 1, 3, side, side, generator=torch.Generator().manual_seed(1))[0]   # model_coverage's
        if pruned:
            prune_groups(model, mc.DENSITY, group=4)
            mc.calibrate(model, side)
        graph = from_torch(model, x).graph
        feeds = {graph.inputs[0]: x.numpy()}
    final = list(graph.outputs)
    graph.outputs = list(dict.fromkeys(final + [op.outputs[0] for op in graph.ops]))
    vals = dict(zip(graph.outputs, sparselite.load(serialize(graph), fuse=False).run(feeds)))
    vals.update(feeds)
    ratios = {}
    for op in graph.ops:
        if op.type in ("RESHAPE", "TRANSPOSE", "SLICE", "PAD", "CONCAT"):
            continue
        ins = [None if n is None else vals[n] if n in vals else np.asarray(graph.tensors[n].data, np.float32)
               for n in op.inputs]
        shape = tuple(graph.tensors[op.outputs[0]].shape)
        exact = run_op(op, [None if a is None else torch.from_numpy(a.astype(np.float64)) for a in ins], shape).numpy()
        theirs = run_op(op, [None if a is None else torch.from_numpy(a) for a in ins], shape).numpy()
        top = max(float(np.abs(exact).max()), 1e-30)
        ours_rms, torch_rms = (float(np.sqrt(((a - exact) ** 2).mean())) / top for a in (vals[op.outputs[0]], theirs))
        if torch_rms > 0:
            ratios.setdefault(op.type, []).append(ours_rms / torch_rms)
        print(json.dumps(dict(at=op.outputs[0][-60:], op=op.type, sparselite=f"{ours_rms:.2e}", torch=f"{torch_rms:.2e}")),
              flush=True)
    for kind, r in ratios.items():
        print(json.dumps(dict(op=kind, count=len(r), sparselite_over_torch_median=round(float(np.median(r)), 2),
                              max=round(max(r), 2))))
    if model is None:
        return
    graph.outputs = final
    blob = serialize(graph)
    for seed in range(1, 7):
        x = torch.randn(2, 1, 3, side, side, generator=torch.Generator().manual_seed(seed))[0]
        with torch.no_grad():
            ref = [t.numpy() for t in model(x)]
        exact = mc.exact(model, x)
        print(json.dumps(dict(input="model_coverage's" if seed == 1 else f"seed {seed}",
                              torch=f"{mc.worst(ref, exact):.2e}",
                              graph_float64=f"{mc.worst(run_float64(graph, {graph.inputs[0]: x.numpy()}), exact):.2e}",
                              sparselite=f"{mc.worst(sparselite.load(blob).run(x.numpy()), exact):.2e}")), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="resnet101")
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--tflite", metavar="NAME", help="a MediaPipe model, layer by layer against float64")
    parser.add_argument("--ops", metavar="NAME", help="a model_coverage model: each op's rounding against torch's")
    parser.add_argument("--pruned", action="store_true", help="with --ops: pruned 4x1 as model_coverage prunes")
    args = parser.parse_args()
    if args.tflite:
        return tflite_layers(args.tflite)
    if args.ops:
        return op_errors(args.ops, args.pruned)

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
