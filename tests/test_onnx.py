"""The ONNX importer against onnxruntime on torch.onnx.export models with real weights, and against
from_torch on the same module."""
import io

import numpy as np
import pytest
import torch

import sparselite
from helpers import rel_err
from sparselite.converters import from_onnx, from_torch, hf, prune_groups, zoo


def export(module, args, names, opset=17):
    buf = io.BytesIO()
    torch.onnx.export(module, args, buf, input_names=names, output_names=["output"], opset_version=opset,
                      dynamo=False)
    return buf.getvalue()


def ort_run(data, feeds):
    import onnxruntime as ort

    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


@pytest.mark.parametrize("opset", [13, 17])
def test_mobilenet_v2_matches_onnxruntime_and_from_torch(opset):
    model = zoo.mobilenet_v2()
    prune_groups(model, 0.3, group=4)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    data = export(model, (x,), ["input"], opset)
    converted = from_onnx(data)
    assert converted.graph.inputs == ["input"] and converted.graph.outputs == ["output"]
    assert sum(1 for op in converted.graph.ops if op.type == "CONV2D"
               and converted.graph.tensors[op.inputs[1]].group_size == 4) == 34   # the pruned 1x1 convs
    (y,) = sparselite.load(converted.to_bytes()).run(x.numpy())
    assert rel_err(y, ort_run(data, {"input": x.numpy()})) < 1e-4
    (same,) = sparselite.load(from_torch(model, x).to_bytes()).run(x.numpy())
    assert rel_err(y, same) < 1e-5


def test_minilm_matches_onnxruntime_and_from_torch():
    bert = zoo.minilm_l6()
    ids = torch.randint(1000, 30000, (2, 24), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0
    data = export(hf.Encoder(bert), (ids, mask), ["input_ids", "attention_mask"])
    converted = from_onnx(data)
    types = [op.type for op in converted.graph.ops]
    assert types.count("FULLY_CONNECTED") == 36 and "MATMUL" in types   # linear layers with bias, attention
    assert all(op.options.get("activation") == "GELU" for op in converted.graph.ops
               if op.type == "FULLY_CONNECTED" and "intermediate" in op.name)   # erf GELU fused
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    (y,) = sparselite.load(converted.to_bytes()).run(feeds)
    assert rel_err(y, ort_run(data, feeds)) < 1e-4
    (same,) = sparselite.load(from_torch(bert, {"input_ids": ids, "attention_mask": mask}).to_bytes()).run(feeds)
    assert rel_err(y, same) < 1e-5


def test_unsupported_ops_and_dynamic_shapes_are_named():
    class Sin(torch.nn.Module):
        def forward(self, x):
            return torch.sin(x) + 1

    x = torch.randn(1, 4)
    with pytest.raises(sparselite.ConversionError, match=r"Sin x1 \(first: node 0 '/Sin'\)"):
        from_onnx(export(Sin(), (x,), ["x"]))
    buf = io.BytesIO()
    torch.onnx.export(torch.nn.Linear(4, 3), (x,), buf, input_names=["x"], dynamic_axes={"x": {0: "batch"}},
                      dynamo=False)
    with pytest.raises(sparselite.ConversionError, match=r"named dimensions 'batch' \(x axis 0\): give each one's "
                                                         r"maximum, from_onnx\(\.\.\., dims="):
        from_onnx(buf.getvalue())
    with pytest.raises(sparselite.ConversionError, match="opset 9 is not supported"):
        from_onnx(export(torch.nn.ReLU(), (x,), ["x"], opset=9))


def test_cli_convert_prints_the_layers(tmp_path, capsys):
    from sparselite.cli import main as cli

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 1)).eval()
    prune_groups(net, 0.25, group=4)
    path = tmp_path / "net.onnx"
    path.write_bytes(export(net, (torch.zeros(1, 3, 8, 8),), ["input"]))
    assert cli(["convert", str(path), "-o", str(tmp_path / "net.slite"), "--weights", "fp16", "--progress"]) == 0
    captured = capsys.readouterr()
    assert "converting [" in captured.err and f"wrote {tmp_path / 'net.slite'}" in captured.out
    line = next(l for l in captured.out.splitlines() if "CONV2D" in l and " 4 " in l)
    assert "0.250" in line   # density and group size of the pruned 1x1 conv
    assert cli(["convert", str(tmp_path / "net.slite")]) == 1   # not a .tflite/.onnx: a clear error
