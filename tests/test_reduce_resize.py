"""REDUCE, RESIZE_BILINEAR / RESIZE_NEAREST's coordinate modes and their converter mappings (torch,
ONNX, TFLite) against numpy, torch, onnxruntime and LiteRT; ONNX BatchNormalization, MaxPool
ceil_mode and symbolic dimensions that folding resolves; the report of every unsupported op;
`sparselite ops`; and torchvision models these make convertible."""
import io
import itertools
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sparselite
from helpers import rel_err, run_graph, single_op
from sparselite.converters import from_onnx, from_tflite, from_torch, zoo
from sparselite.converters.ir import Graph

KINDS = {"MEAN": np.mean, "SUM": np.sum, "MAX": np.max, "MIN": np.min}
SHAPES = {1: (37,), 2: (5, 131), 3: (3, 1, 67), 4: (2, 3, 5, 7), 5: (3, 2, 1, 5, 9)}


def ort_run(model, feeds):
    import onnxruntime as ort

    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)


class Resamples(torch.nn.Module):
    """Nearest (torch's two modes) and bilinear resizing, and reductions of each kind along inner
    and outer axes, into one output: test_wasm and test_arm run it on WASM and NEON."""

    def forward(self, x):
        a = F.interpolate(x, scale_factor=2.5, mode="nearest")
        b = F.interpolate(x, size=(22, 27), mode="bilinear")
        c = F.interpolate(x.amax(dim=1, keepdim=True), size=(22, 27), mode="nearest-exact")
        return (a + b + c).sum(dim=1) + x.amin(dim=3).mean(dim=(1, 2)) - b.mean(dim=1)


def resample_model(directory):
    """(path, x, native output) of Resamples converted and saved in `directory`."""
    x = np.random.default_rng(7).standard_normal((1, 3, 9, 11)).astype(np.float32)
    converted = from_torch(Resamples(), torch.from_numpy(x))
    assert {"REDUCE", "RESIZE_NEAREST", "RESIZE_BILINEAR"} <= {op.type for op in converted.graph.ops}
    path = converted.save(directory / "resamples.slite")
    (native,) = sparselite.load(path).run(x)
    assert rel_err(native, Resamples()(torch.from_numpy(x)).numpy()) < 1e-5
    return path, x, native


# --- REDUCE ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("rank", sorted(SHAPES))
def test_reduce_every_axes_subset_against_numpy(rank):
    """Every subset of axes (none: a copy), keep_dims or not, the four kinds in one model each."""
    x = np.random.default_rng(rank).standard_normal(SHAPES[rank]).astype(np.float32)
    for keep in (False, True):
        for n in range(rank + 1):
            for axes in itertools.combinations(range(rank), n):
                g = Graph()
                name = g.add_input("x", x.shape)
                refs = []
                for kind, fn in KINDS.items():
                    ref = fn(x.astype(np.float64), axis=axes, keepdims=keep) if axes else x
                    refs.append(ref)
                    # negative axes count from the end, as the schema allows
                    g.outputs.append(g.add_op("REDUCE", [name], ref.shape, name=kind, options=dict(
                        kind=kind, axes=[a - rank if a % 2 else a for a in axes], keep_dims=keep)))
                outs = run_graph(g, [x])
                for kind, y, ref in zip(KINDS, outs, refs):
                    assert y.shape == ref.shape and np.allclose(y, ref, rtol=1e-5, atol=1e-5), (kind, axes, keep)


@pytest.mark.parametrize("shape, axes", [((70001,), (0,)), ((4, 3, 60, 70), (2, 3)), ((4, 3, 60, 70), (0, 2)),
                                         ((4, 3, 60, 70), (1,)), ((64, 3000), (0,))])
def test_reduce_large_on_threads_and_nan(shape, axes):
    """Long runs (blocked sums), outer reductions, several tasks on 2 threads; a NaN wins max and min."""
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32) + 0.5
    x.reshape(-1)[x.size // 3] = np.nan
    g = Graph()
    name = g.add_input("x", shape)
    for kind in KINDS:
        g.outputs.append(g.add_op("REDUCE", [name], np.sum(x, axis=axes).shape, name=kind,
                                  options=dict(kind=kind, axes=list(axes))))
    for kwargs in (dict(num_threads=2), dict(isa=[])):
        for kind, y in zip(KINDS, run_graph(g, [x], **kwargs)):
            ref = KINDS[kind](x.astype(np.float64), axis=axes)
            assert np.array_equal(np.isnan(y), np.isnan(ref)), kind
            ok = ~np.isnan(ref)
            assert np.allclose(y[ok], ref[ok], rtol=1e-5, atol=1e-4), (kind, rel_err(y[ok], ref[ok]))


def test_reduce_refuses_bad_options():
    x = np.zeros((2, 3), np.float32)
    for opts, out, match in ((dict(kind="SUM", axes=[2]), (2,), "axis 2 is out of range for rank 2"),
                             (dict(kind="SUM", axes=[1, -1]), (2,), "axis 1 is given twice"),
                             (dict(kind="MAX", axes=[1], keep_dims=True), (2,), r"output .* has rank 1, expected 2")):
        g, ins = single_op("REDUCE", [x], out, options=opts)
        with pytest.raises(sparselite.InvalidModelError, match=match):
            run_graph(g, ins)


# --- resize ---------------------------------------------------------------------------------------

TORCH_RESIZES = [dict(scale_factor=2.5, mode="nearest"), dict(scale_factor=2.1, mode="nearest"),
                 dict(scale_factor=0.6, mode="nearest"), dict(size=(4, 5), mode="nearest"),
                 dict(size=(14, 18), mode="nearest"), dict(size=(13, 20), mode="nearest-exact"),
                 dict(size=(4, 5), mode="nearest-exact"), dict(scale_factor=1.7, mode="nearest-exact"),
                 dict(size=(4, 5), mode="bilinear"), dict(size=(11, 23), mode="bilinear", align_corners=True),
                 dict(scale_factor=1.7, mode="bilinear"), dict(scale_factor=2.3, mode="bilinear", align_corners=True),
                 dict(scale_factor=0.45, mode="bilinear"), dict(size=(1, 1), mode="bilinear"),
                 dict(scale_factor=2, mode="bilinear", align_corners=False)]


def test_torch_resizes_match_interpolate():
    """Every torch mode on odd sizes, up and down, integer and non-integer scale factors: nearest
    picks the same pixels (torch's float arithmetic), bilinear within float rounding, and the
    same on two threads (bilinear's row buffers are per thread)."""
    class Resizes(torch.nn.Module):
        def forward(self, x):
            return tuple(F.interpolate(x, **kw) for kw in TORCH_RESIZES)

    x = torch.randn(2, 3, 7, 9, generator=torch.Generator().manual_seed(0))
    converted = from_torch(Resizes(), x)
    types = [op.type for op in converted.graph.ops]
    assert types.count("RESIZE_NEAREST") == 8 and types.count("RESIZE_BILINEAR") == 7
    outs = sparselite.load(converted.to_bytes()).run(x.numpy())
    for y, y2 in zip(outs, sparselite.load(converted.to_bytes(), num_threads=2).run(x.numpy())):
        assert np.array_equal(y, y2)
    for kw, y, ref in zip(TORCH_RESIZES, outs, Resizes()(x)):
        ref = ref.numpy()
        assert y.shape == ref.shape, kw
        if kw["mode"] == "bilinear":
            assert np.allclose(y, ref, rtol=1e-5, atol=1e-5), (kw, np.abs(y - ref).max())
        else:
            assert np.array_equal(y, ref), kw


def _resize_node(k, mode, coord, nearest, scales=None, sizes=None):
    inputs = ["x", "roi", f"scales{k}" if scales is not None else "", f"sizes{k}" if sizes is not None else ""]
    inits = []
    if scales is not None:
        inits.append(onnx_tensor(f"scales{k}", np.array(scales, np.float32)))
    if sizes is not None:
        inits.append(onnx_tensor(f"sizes{k}", np.array(sizes, np.int64)))
    from onnx import helper

    return helper.make_node("Resize", inputs, [f"y{k}"], mode=mode, coordinate_transformation_mode=coord,
                            nearest_mode=nearest), inits


def onnx_tensor(name, array):
    from onnx import numpy_helper

    return numpy_helper.from_array(array, name)


def onnx_model(nodes, inputs, outputs, inits, opset=13):
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_onnx_resizes_match_onnxruntime():
    """Every Resize mode (linear, nearest with its four roundings) under every coordinate mode, by
    scales (non-integer up, down, integer) and by sizes, against onnxruntime: nearest exactly."""
    nodes, inits, outs, cases = [], [onnx_tensor("roi", np.zeros(0, np.float32))], [], []
    for mode, coord in itertools.product(("nearest", "linear"), ("half_pixel", "pytorch_half_pixel",
                                                                 "align_corners", "asymmetric")):
        for nearest in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil") if mode == "nearest" else ("floor",):
            for size in (dict(scales=[1, 1, 2.5, 1.7]), dict(scales=[1, 1, 0.6, 0.5]), dict(scales=[1, 1, 2, 3]),
                         dict(sizes=[2, 3, 15, 20]), dict(sizes=[2, 3, 1, 1])):
                node, extra = _resize_node(len(nodes), mode, coord, nearest, **size)
                nodes.append(node)
                inits += extra
                outs.append(node.output[0])
                cases.append((mode, coord, nearest, size))
    model = onnx_model(nodes, [("x", [2, 3, 7, 9])], outs, inits)
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 9)).astype(np.float32)
    ys = sparselite.load(from_onnx(model).to_bytes()).run(x)
    for case, y, ref in zip(cases, ys, ort_run(model, {"x": x})):
        assert y.shape == ref.shape, case
        if case[0] == "nearest":
            assert np.array_equal(y, ref), case
        else:
            assert np.allclose(y, ref, rtol=1e-5, atol=1e-5), (case, np.abs(y - ref).max())


def test_onnx_resize_refuses_what_it_cannot_sample():
    from onnx import helper

    nodes = [helper.make_node("Resize", ["x", "roi", "s"], ["y0"], mode="cubic"),
             helper.make_node("Resize", ["x", "roi", "s"], ["y1"], coordinate_transformation_mode="tf_crop_and_resize")]
    model = onnx_model(nodes, [("x", [1, 1, 4, 4])], ["y0", "y1"],
                       [onnx_tensor("roi", np.zeros(0, np.float32)), onnx_tensor("s", np.array([1, 1, 2, 2], np.float32))])
    with pytest.raises(sparselite.ConversionError, match=r"Resize: mode cubic x1.*\n.*Resize: coordinate_transformation_"
                                                         r"mode tf_crop_and_resize x1"):
        from_onnx(model)


# --- reductions, batch norm and pooling through the converters -----------------------------------

class _Reductions(torch.nn.Module):
    def forward(self, x):
        return (x.mean(dim=(1, 3), keepdim=True), x.mean(dim=1), x.sum(dim=(0, 2)), x.sum(), x.mean(),
                x.amax(dim=(2, 3)), torch.amin(x, 1, keepdim=True), x.mean(dim=(2, 3)), x.amax(dim=-1))


def test_torch_reductions_match():
    x = torch.randn(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    converted = from_torch(_Reductions(), x)
    assert [op.type for op in converted.graph.ops].count("REDUCE") == 8
    for y, ref in zip(sparselite.load(converted.to_bytes()).run(x.numpy()), _Reductions()(x)):
        assert y.shape == tuple(ref.shape) and np.allclose(y, ref.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [(2, 3), (3, 3), (7, 7), (5, 2), (1, 4)])
def test_torch_adaptive_avg_pool(size):
    """Even bins as AVG_POOL2D, uneven ones (and upsampling ones) as two bin-weight FCs."""
    class Pool(torch.nn.Module):
        def forward(self, x):
            return F.adaptive_avg_pool2d(x, size)

    x = torch.randn(1, 4, 6, 9, generator=torch.Generator().manual_seed(2))
    converted = from_torch(Pool(), x)
    even = 6 % size[0] == 0 and 9 % size[1] == 0
    assert ("AVG_POOL2D" in [op.type for op in converted.graph.ops]) == even
    (y,) = sparselite.load(converted.to_bytes()).run(x.numpy())
    assert np.allclose(y, Pool()(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", [13, 18])
def test_onnx_reductions_match_onnxruntime(opset):
    """Axes as an attribute (opset 13; ReduceSum takes an input there) or an input (18), keepdims,
    empty axes (all, or a no-op with noop_with_empty_axes)."""
    from onnx import helper

    nodes, inits, outs = [], [], []
    for k, (op, axes, keep, noop) in enumerate(itertools.product(
            ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"), ([1], [0, -1], [2, 3], []), (0, 1), (0, 1))):
        if noop and axes:
            continue
        as_input = opset >= 18 or op == "ReduceSum"
        attrs = dict(keepdims=keep) | (dict(noop_with_empty_axes=noop) if as_input else {})
        ins = ["x"]
        if as_input and axes:
            inits.append(onnx_tensor(f"axes{k}", np.array(axes, np.int64)))
            ins.append(f"axes{k}")
        elif axes:
            attrs["axes"] = axes
        if noop and not as_input:
            continue
        if noop:   # the input itself: a graph output needs an op of its own
            nodes += [helper.make_node(op, ins, [f"t{k}"], **attrs), helper.make_node("Relu", [f"t{k}"], [f"y{k}"])]
        else:
            nodes.append(helper.make_node(op, ins, [f"y{k}"], **attrs))
        outs.append(f"y{k}")
    model = onnx_model(nodes, [("x", [2, 3, 5, 7])], outs, inits, opset)
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 7)).astype(np.float32)
    for name, y, ref in zip(outs, sparselite.load(from_onnx(model).to_bytes()).run(x), ort_run(model, {"x": x})):
        assert y.shape == ref.shape and np.allclose(y, ref, rtol=1e-5, atol=1e-5), name


def test_onnx_batch_norm_folded_and_standalone():
    """After a conv it is that conv's only reader: folded (no MUL / ADD left); on a graph input and
    after a Relu it runs as MUL + ADD."""
    from onnx import helper

    rng = np.random.default_rng(0)
    c = 4

    def bn(name, x, y):
        params = [onnx_tensor(f"{name}.{p}", v.astype(np.float32)) for p, v in
                  (("g", rng.uniform(0.5, 1.5, c)), ("b", rng.standard_normal(c)), ("m", rng.standard_normal(c)),
                   ("v", rng.uniform(0.5, 2, c)))]
        return helper.make_node("BatchNormalization", [x] + [p.name for p in params], [y], epsilon=1e-3), params

    bn0, p0 = bn("bn0", "x", "a")
    bn1, p1 = bn("bn1", "c", "d")
    bn2, p2 = bn("bn2", "r", "y")
    nodes = [bn0, helper.make_node("Conv", ["a", "w"], ["c"], pads=[1, 1, 1, 1]), bn1,
             helper.make_node("Relu", ["d"], ["r"]), bn2]
    w = onnx_tensor("w", rng.standard_normal((c, c, 3, 3)).astype(np.float32))
    model = onnx_model(nodes, [("x", [1, c, 6, 5])], ["y"], [w] + p0 + p1 + p2, opset=15)
    converted = from_onnx(model)
    assert [op.type for op in converted.graph.ops] == ["MUL", "ADD", "CONV2D", "MUL", "ADD"]
    x = rng.standard_normal((1, c, 6, 5)).astype(np.float32)
    (y,) = sparselite.load(converted.to_bytes()).run(x)
    assert rel_err(y, ort_run(model, {"x": x})[0]) < 1e-5


def test_onnx_max_pool_ceil_mode_and_precise_refusals():
    from onnx import helper

    nodes = [helper.make_node("MaxPool", ["x"], ["y0"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
             helper.make_node("MaxPool", ["x"], ["y1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                              ceil_mode=1),
             helper.make_node("AveragePool", ["x"], ["y2"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)]
    model = onnx_model(nodes, [("x", [1, 2, 8, 11])], ["y0", "y1", "y2"], [])
    x = np.random.default_rng(0).standard_normal((1, 2, 8, 11)).astype(np.float32)
    for y, ref in zip(sparselite.load(from_onnx(model).to_bytes()).run(x), ort_run(model, {"x": x})):
        assert y.shape == ref.shape and np.allclose(y, ref, rtol=1e-6, atol=1e-6)
    # A last window inside the right padding: onnxruntime drops it, onnx's shape inference keeps it.
    refused = [helper.make_node("MaxPool", ["x"], ["y0"], kernel_shape=[2, 2], dilations=[2, 2]),
               helper.make_node("MaxPool", ["x"], ["y1"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1],
                                ceil_mode=1)]
    with pytest.raises(sparselite.ConversionError, match=r"MaxPool: dilations \[2, 2\] x1.*\n.*MaxPool: ceil_mode "
                                                         r"with a last window starting in the padding x1"):
        from_onnx(onnx_model(refused, [("x", [1, 2, 8, 11])], ["y0", "y1"], []))


def test_onnx_symbolic_dimensions_resolved_by_folding():
    """A ViT-style class token expanded to the batch of a computed shape: shape inference leaves
    the concatenation's batch symbolic; with a fixed input, folding fixes it."""
    class Token(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.token = torch.nn.Parameter(torch.randn(1, 1, 8))

        def forward(self, x):
            n = x.shape[0]
            t = torch.cat([self.token.expand(n, -1, -1), x.reshape(n, -1, 8)], dim=1)
            return t.reshape(n, -1).relu()

    x = torch.randn(2, 4, 8)
    buf = io.BytesIO()
    torch.onnx.export(Token().eval(), (x,), buf, input_names=["x"], output_names=["y"], opset_version=17, dynamo=False)
    (y,) = sparselite.load(from_onnx(buf.getvalue()).to_bytes()).run(x.numpy())
    assert rel_err(y, ort_run(buf.getvalue(), {"x": x.numpy()})[0]) < 1e-6


# --- TFLite ----------------------------------------------------------------------------------------

def _tflite_cases():
    import tflite

    from test_tflite import _options

    op, img = tflite.BuiltinOperator, (1, 6, 5, 4)
    reducer = lambda keep: _options("ReducerOptions", KeepDims=keep)   # noqa: E731
    return {
        "MEAN over H": dict(op_code=op.MEAN, x_shape=img, y_shape=(1, 5, 4), consts=[np.array([1], np.int32)],
                            options=reducer(False)),
        "MEAN over C kept": dict(op_code=op.MEAN, x_shape=img, y_shape=(1, 6, 5, 1),
                                 consts=[np.array([-1], np.int32)], options=reducer(True)),
        "SUM over H, W kept": dict(op_code=op.SUM, x_shape=img, y_shape=(1, 1, 1, 4),
                                   consts=[np.array([1, 2], np.int32)], options=reducer(True)),
        "SUM over W, C": dict(op_code=op.SUM, x_shape=img, y_shape=(1, 6), consts=[np.array([2, 3], np.int32)],
                              options=reducer(False)),
        "REDUCE_MAX over C": dict(op_code=op.REDUCE_MAX, x_shape=img, y_shape=(1, 6, 5),
                                  consts=[np.array([3], np.int32)], options=reducer(False)),
        "REDUCE_MAX of a matrix": dict(op_code=op.REDUCE_MAX, x_shape=(3, 7), y_shape=(7,),
                                       consts=[np.array([0], np.int32)], options=reducer(False)),
        **{f"RESIZE_NEAREST_NEIGHBOR align {a} half {h} to {size}": dict(
            op_code=op.RESIZE_NEAREST_NEIGHBOR, x_shape=img, y_shape=(1,) + size + (4,),
            consts=[np.array(size, np.int32)],
            options=_options("ResizeNearestNeighborOptions", AlignCorners=a, HalfPixelCenters=h))
           for a, h in ((False, False), (True, False), (False, True)) for size in ((13, 11), (4, 3))},
    }


@pytest.mark.parametrize("case", sorted(_tflite_cases()))
def test_tflite_reductions_and_nearest_match_litert(case, tmp_path):
    from test_tflite import litert, litert_run, one_op_model

    spec = _tflite_cases()[case]
    path = tmp_path / "op.tflite"
    path.write_bytes(one_op_model(**spec))
    x = np.random.default_rng(4).standard_normal(spec["x_shape"]).astype(np.float32)
    (y,) = sparselite.load(from_tflite(str(path)).to_bytes()).run(x)
    ref = litert_run(litert(str(path)), x)["y"]
    assert y.shape == ref.shape and np.allclose(y, ref, rtol=1e-5, atol=1e-5), case


def test_tflite_custom_ops_named_by_their_code():
    import tflite

    from test_tflite import one_op_model

    start, add = tflite.OperatorCodeStart, tflite.OperatorCodeAddBuiltinCode
    code = {}

    def start_with_name(b):
        code["name"] = b.CreateString("MaxUnpooling2D")
        start(b)

    def add_with_name(b, value):
        add(b, value)
        tflite.OperatorCodeAddCustomCode(b, code["name"])

    with mock.patch.object(tflite, "OperatorCodeStart", start_with_name), \
            mock.patch.object(tflite, "OperatorCodeAddBuiltinCode", add_with_name):
        data = one_op_model(tflite.BuiltinOperator.CUSTOM, x_shape=(1, 4, 4, 2))
    with pytest.raises(sparselite.ConversionError, match=r"CUSTOM\(MaxUnpooling2D\) x1 \(first: operator 0"):
        from_tflite(data)


# --- every missing op at once, `sparselite ops` -----------------------------------------------------

def test_torch_lists_every_unsupported_op():
    class Three(torch.nn.Module):
        def forward(self, x):
            return torch.sin(x).relu() + torch.cos(x) + torch.cos(2 * x) + torch.tan(x)

    with pytest.raises(sparselite.ConversionError) as info:
        from_torch(Three(), torch.randn(1, 4))
    message = str(info.value)
    assert message.startswith("4 ops of this torch model cannot be converted (3 kinds;")
    assert [(op, count) for op, _, count, _ in info.value.ops] == [
        ("aten.sin.default", 1), ("aten.cos.default", 2), ("aten.tan.default", 1)]
    assert "aten.cos.default x2 (first: module 'Three', node cos)" in message and len(message.splitlines()) == 4


def test_onnx_lists_every_unsupported_op():
    from onnx import helper

    nodes = [helper.make_node("Sin", ["x"], ["a"], name="sin"), helper.make_node("Cos", ["x"], ["b"], name="cos0"),
             helper.make_node("Cos", ["a"], ["c"], name="cos1"),   # reads a missing value: not counted
             helper.make_node("Cos", ["x"], ["d"], name="cos2"),
             helper.make_node("MaxPool", ["x"], ["e"], kernel_shape=[2, 2], dilations=[2, 2], name="pool"),
             helper.make_node("Sum", ["b", "c", "d", "e"], ["y"], name="sum")]
    model = onnx_model(nodes, [("x", [1, 2, 6, 6])], ["y"], [])
    with pytest.raises(sparselite.ConversionError) as info:
        from_onnx(model)
    assert str(info.value).splitlines()[1:] == ["  Sin x1 (first: node 0 'sin')", "  Cos x2 (first: node 1 'cos0')",
                                                "  MaxPool: dilations [2, 2] x1 (first: node 4 'pool')"]


def test_cli_ops_lists_each_frontend(capsys):
    from sparselite.cli import main as cli

    assert cli(["ops", "onnx"]) == 0
    out = capsys.readouterr().out
    assert "Resize" in out and "ReduceMean" in out and "BatchNormalization" in out and "aten." not in out
    assert cli(["ops", "torch"]) == 0
    out = capsys.readouterr().out
    assert "aten.upsample_nearest2d.vec" in out and "aten.amax.default" in out
    assert cli(["ops", "tflite"]) == 0
    assert "RESIZE_NEAREST_NEIGHBOR" in capsys.readouterr().out
    assert cli(["ops"]) == 0
    out = capsys.readouterr().out
    assert all(t in out for t in ("torch (from_torch)", "onnx (from_onnx)", "tflite (from_tflite)", "REDUCE"))
    with pytest.raises(SystemExit):
        cli(["ops", "caffe"])


# --- models -------------------------------------------------------------------------------------------

class _Out(torch.nn.Module):
    """The segmentation models' "out" entry."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


@pytest.mark.parametrize("name, size", [("lraspp_mobilenet_v3_large", 128), ("deeplabv3_mobilenet_v3_large", 128),
                                        ("vgg11", 64)])
def test_torchvision_models_from_torch(name, size):
    """Segmentation heads (bilinear upsampling, 1x1 adaptive pools) and VGG's adaptive pool to 7x7
    from a 2x2 map (uneven bins), random weights with lively norms."""
    from test_vision_families import lively

    kwargs = dict(weights_backbone=None) if "mobilenet" in name else {}
    model = lively(zoo.torchvision_model(name, **kwargs))
    model = _Out(model).eval() if "mobilenet" in name else model
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    (y,) = sparselite.load(from_torch(model, x).to_bytes()).run(x.numpy())
    with torch.no_grad():
        assert rel_err(y, model(x).numpy()) < 1e-4


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "resnet18"])
def test_torchvision_models_from_onnx(name):
    """resnet18 exported without constant folding keeps its 20 BatchNormalization nodes."""
    import onnx

    from test_vision_families import lively

    model = lively(zoo.torchvision_model(name))
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, input_names=["x"], output_names=["y"], opset_version=17, dynamo=False,
                      do_constant_folding=False)
    data = buf.getvalue()
    if name == "resnet18":
        assert [n.op_type for n in onnx.load_from_string(data).graph.node].count("BatchNormalization") == 20
    converted = from_onnx(data)
    assert "MUL" not in [op.type for op in converted.graph.ops] or name != "resnet18"   # every BN folded
    (y,) = sparselite.load(converted.to_bytes()).run(x.numpy())
    assert rel_err(y, ort_run(data, {"x": x.numpy()})[0]) < 1e-4
