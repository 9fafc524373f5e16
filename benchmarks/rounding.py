"""Where fp32 rounding grows in a deep torchvision ResNet (model_coverage's seeded weights and input).

After the stem, each stage and the classifier, the max abs error relative to the largest value
against the same prefix run in float64, for: an ideal fp32 engine (float64 with every layer's
output rounded to float32, exact sums: the floor for any fp32 engine), torch fp32, ONNX Runtime,
and sparselite with Winograd as loaded by default, F(2x2) only, and off. Explains the model
coverage's "rounding" mismatches (README, Model coverage).

    python benchmarks/rounding.py [resnet101] [--side 128]
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="resnet101")
    parser.add_argument("--side", type=int, default=128)
    args = parser.parse_args()

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
