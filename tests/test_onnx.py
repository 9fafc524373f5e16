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


def _swin_mask_attention(x):
    """Swin's shifted-window attention pattern: a mask written slice by slice (ScatterND in the
    export, folded), a roll, and scores cosine-normalised as in Swin V2 (ReduceL2)."""
    h, w = x.shape[1], x.shape[2]
    mask = x.new_zeros((h, w))
    for i, (hs, ws) in enumerate((hs, ws) for hs in ((0, -4), (-4, -2), (-2, None)) for ws in ((0, -4), (-4, None))):
        mask[hs[0]:hs[1], ws[0]:ws[1]] = i
    windows = mask.view(h // 4, 4, w // 4, 4).permute(0, 2, 1, 3).reshape(-1, 16)
    pairs = windows.unsqueeze(1) - windows.unsqueeze(2)
    pairs = pairs.masked_fill(pairs != 0, -100.0)
    tokens = torch.roll(x, shifts=(-2, -2), dims=(1, 2))
    tokens = tokens.view(1, h // 4, 4, w // 4, 4, -1).permute(0, 1, 3, 2, 4, 5).reshape(-1, 16, x.shape[3])
    unit = torch.nn.functional.normalize(tokens, dim=-1)
    scores = torch.einsum("wid,wjd->wij", unit, tokens) + pairs
    return torch.einsum("wij,wjd->wid", scores.softmax(-1), tokens)


def test_swin_mask_norms_and_einsum_match_onnxruntime():
    class Block(torch.nn.Module):
        def forward(self, x):
            return _swin_mask_attention(x)

    x = torch.randn(1, 8, 12, 6, generator=torch.Generator().manual_seed(3))
    data = export(Block(), (x,), ["x"])
    import onnx

    ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
    assert {"ScatterND", "Einsum", "ReduceL2"} <= ops
    (y,) = sparselite.load(from_onnx(data).to_bytes()).run({"x": x.numpy()})
    assert rel_err(y, ort_run(data, {"x": x.numpy()})) < 1e-5


def _model(nodes, inputs, outputs, inits=(), opset=18):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
                              initializer=[onnx.numpy_helper.from_array(v, n) for n, v in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


@pytest.mark.parametrize("op", ["ReduceL2", "ReduceL1", "ReduceSumSquare"])
@pytest.mark.parametrize("axes, keepdims", [([2], 1), ([0, 2], 0), (None, 1)])
def test_norm_reductions_match_onnxruntime(op, axes, keepdims):
    from onnx import helper

    inits = [] if axes is None else [("axes", np.array(axes, np.int64))]
    node = helper.make_node(op, ["x"] + (["axes"] if axes is not None else []), ["y"], keepdims=keepdims)
    data = _model([node], [("x", [3, 4, 5])], ["y"], inits)
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    (y,) = sparselite.load(from_onnx(data).to_bytes()).run({"x": x})
    ref = ort_run(data, {"x": x})
    assert y.shape == ref.shape and rel_err(y, ref) < 1e-6


@pytest.mark.parametrize("equation, shapes", [("bhid,bhjd->bhij", [(2, 3, 5, 4), (2, 3, 6, 4)]),
                                              ("ij,kj->ik", [(3, 5), (4, 5)]), ("abc->cab", [(2, 3, 4)]),
                                              ("...d,d->...", [(2, 3, 4), (4,)])])
def test_einsum_matches_onnxruntime(equation, shapes):
    from onnx import helper

    names = ["a", "b"][:len(shapes)]
    data = _model([helper.make_node("Einsum", names, ["y"], equation=equation)], list(zip(names, shapes)), ["y"],
                  opset=17)
    rng = np.random.default_rng(1)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in zip(names, shapes)}
    (y,) = sparselite.load(from_onnx(data).to_bytes()).run(feeds)
    ref = ort_run(data, feeds)
    assert y.shape == ref.shape and rel_err(y, ref) < 1e-6


def test_scatter_nd_folds_only_valid_constants():
    """ScatterND of constants folds (the result feeds an Add); out-of-range indices, updates of
    the wrong shape and reductions are refused by name."""
    from onnx import helper

    def model(indices, updates, **attrs):
        nodes = [helper.make_node("ScatterND", ["data", "indices", "updates"], ["mask"], **attrs),
                 helper.make_node("Add", ["x", "mask"], ["y"])]
        inits = [("data", np.zeros((4, 3), np.float32)), ("indices", np.array(indices, np.int64)),
                 ("updates", np.array(updates, np.float32))]
        return _model(nodes, [("x", [4, 3])], ["y"], inits)

    good = model([[1], [-1]], [[1, 2, 3], [4, 5, 6]])
    x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    (y,) = sparselite.load(from_onnx(good).to_bytes()).run({"x": x})
    np.testing.assert_allclose(y, ort_run(good, {"x": x}), rtol=1e-6)
    for bad, message in ((model([[4]], [[1, 2, 3]]), "out of range"), (model([[1]], [[1, 2]]), "updates have shape"),
                         (model([[1]], [[1, 2, 3]], reduction="add"), "reduction 'add'")):
        with pytest.raises(sparselite.ConversionError, match=message):
            from_onnx(bad)


@pytest.mark.parametrize("equation, message", [("ii->i", "a diagonal"), ("ij,jk->ik->k", "malformed"),
                                               ("i...j...,jk", "malformed"), ("ij,jk->iz", "output indices"),
                                               ("ij->", None)])
def test_einsum_refusals_name_the_reason(equation, message):
    from onnx import helper

    names = ["a", "b"][:equation.split("->")[0].count(",") + 1]
    data = _model([helper.make_node("Einsum", names, ["y"], equation=equation)], [(n, [3, 3]) for n in names], ["y"],
                  opset=17)
    if message is None:   # a sum over every index: fine
        x = np.random.default_rng(3).standard_normal((3, 3)).astype(np.float32)
        (y,) = sparselite.load(from_onnx(data).to_bytes()).run({"a": x})
        np.testing.assert_allclose(y, x.sum(), rtol=1e-5)
        return
    with pytest.raises(sparselite.ConversionError, match=message):
        from_onnx(data)


@pytest.mark.parametrize("slopes", [8, 1])
def test_prelu_and_leaky_relu_match_onnxruntime(slopes):
    """PRelu as torch.onnx exports it (slopes [C, 1, 1], or one), then LeakyRelu."""
    torch.manual_seed(0)
    prelu = torch.nn.PReLU(slopes)
    with torch.no_grad():
        prelu.weight.copy_(torch.rand(slopes) * 0.5 - 0.1)
    module = torch.nn.Sequential(torch.nn.Conv2d(6, 8, 3, padding=1), prelu, torch.nn.LeakyReLU(0.15)).eval()
    x = torch.randn(2, 6, 9, 7)
    data = export(module, (x,), ["input"])
    (y,) = sparselite.load(from_onnx(data).to_bytes()).run(x.numpy())
    ref = ort_run(data, {"input": x.numpy()})
    assert y.shape == ref.shape and rel_err(y, ref) < 1e-5
