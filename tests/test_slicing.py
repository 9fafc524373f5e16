"""SLICE against numpy (every dtype of the format, ranks 1-6, steps 1/2/3/-1/-2, odd shapes, under
each kernel configuration), its checks and dynamic dimensions; the slicing, splitting, rolling and
dropout mappings of the three frontends against torch, onnxruntime and LiteRT; and the torchvision
models they unblocked (ShuffleNetV2, MobileNetV3, MNASNet, EfficientNet-B0) against torch and
onnxruntime, dense and 4x1-pruned. Empty slices are refused when converting: a .slite tensor has no
dimension of 0."""
import io

import numpy as np
import pytest
import torch

import sparselite
from helpers import KERNELS, rel_err
from sparselite.converters import from_onnx, from_tflite, from_torch, prune_groups, zoo
from sparselite.converters.ir import Graph
from sparselite.converters.writer import serialize

INTS = {"int32": np.int32, "int64": np.int64, "uint16": np.uint16, "uint32": np.uint32}


def random_values(rng, shape, dtype):
    if dtype == "float32":
        return rng.standard_normal(shape).astype(np.float32)
    info = np.iinfo(INTS[dtype])
    return rng.integers(info.min, info.max, shape, dtype=INTS[dtype], endpoint=True)


def random_slice(rng, shape, steps=(1, 2, 3, -1, -2)):
    """Per axis a step from `steps`, a first index and a count that keep every index inside."""
    begin, step, counts = [], [], []
    for n in shape:
        s = int(rng.choice(steps))
        b = int(rng.integers(n))
        room = (n - 1 - b) // s + 1 if s > 0 else b // -s + 1
        begin.append(b)
        step.append(s)
        counts.append(int(rng.integers(1, room + 1)))
    return begin, step, counts


def numpy_slice(x, begin, step, counts):
    index = []
    for b, s, c in zip(begin, step, counts):
        stop = b + (c - 1) * s + (1 if s > 0 else -1)
        index.append(slice(b, stop if stop >= 0 else None, s))
    return x[tuple(index)]


def slice_model(shape, dtype, begin, step, counts, const=None):
    """One SLICE over a graph input (or the constant `const`), written without the converter's
    passes (they would fold a constant's slice, and Graph.check refuses uint dtypes)."""
    g = Graph()
    x = g.add_input("x", shape, dtype) if const is None else g.add_const("x", const)
    g.outputs.append(g.add_op("SLICE", [x], counts, options=dict(begin=begin, step=step), name="slice",
                              dtype=dtype))
    return serialize(g)


@pytest.mark.parametrize("config", sorted(KERNELS))
@pytest.mark.parametrize("dtype", ["float32", "int32", "int64", "uint16", "uint32"])
def test_slice_matches_numpy(dtype, config):
    rng = np.random.default_rng(hash((dtype, config)) % 2**32)
    for rank in range(1, 7):
        for _ in range(6):
            shape = tuple(int(n) for n in rng.integers(1, 8 if rank < 5 else 5, rank))
            x = random_values(rng, shape, dtype)
            begin, step, counts = random_slice(rng, shape)
            (y,) = sparselite.load(slice_model(shape, dtype, begin, step, counts), **KERNELS[config]).run(x)
            want = numpy_slice(x, begin, step, counts)
            assert y.dtype == want.dtype and np.array_equal(y, want), (shape, begin, step, counts)


@pytest.mark.parametrize("config", sorted(KERNELS))
@pytest.mark.parametrize("begin, step, counts", [
    ([0, 0, 0, 0], [1, 1, 1, 1], [3, 40, 50, 37]),       # all of it: one run
    ([1, 0, 0, 0], [1, 1, 1, 1], [2, 40, 50, 37]),       # whole trailing axes merge into one run
    ([2, 39, 49, 36], [-1, -1, -1, -1], [3, 40, 50, 37]),  # reversed: one run read backwards
    ([0, 5, 0, 1], [1, 2, 1, 3], [3, 17, 50, 12]),       # strided inner axis, element by element
    ([2, 0, 10, 0], [-2, 1, 1, 1], [2, 40, 31, 37]),     # runs of the last axis, outer steps back
    ([1, 7, 3, 5], [1, 1, 1, 1], [1, 1, 1, 1]),           # one element
])
def test_large_slices_split_over_threads(begin, step, counts, config):
    """Slices of ~1 MB (many tasks of contiguous runs or strided elements)."""
    x = np.random.default_rng(1).standard_normal((3, 40, 50, 37)).astype(np.float32)
    (y,) = sparselite.load(slice_model(x.shape, "float32", begin, step, counts), **KERNELS[config]).run(x)
    assert np.array_equal(y, numpy_slice(x, begin, step, counts))


def test_slice_of_a_constant_and_of_a_scalar():
    table = np.arange(60, dtype=np.int64).reshape(3, 4, 5) * 2**40
    (y,) = sparselite.load(slice_model(None, "int64", [2, 3, 0], [-1, -3, 2], [3, 2, 3], const=table)).run({})
    assert np.array_equal(y, table[::-1, 3::-3, ::2])
    (y,) = sparselite.load(slice_model((), "float32", [], [], ())).run(np.array(2.5, np.float32))
    assert y.shape == () and y == 2.5


@pytest.mark.parametrize("shape, options, counts, message", [
    ((4, 5), dict(begin=[0, 0], step=[1, 0]), (4, 1), r"axis 1 has step 0"),
    ((4, 5), dict(begin=[4, 0], step=[1, 1]), (1, 5), r"axis 0 reads indices 4 to 4 \(step 1\) of an input "
                                                    r"dimension of 4"),
    ((4, 5), dict(begin=[0, 1], step=[1, -1]), (4, 3), r"axis 1 reads indices 1 to -1 \(step -1\)"),
    ((4, 5), dict(begin=[0, 1], step=[1, 2]), (4, 3), r"axis 1 reads indices 1 to 5 \(step 2\)"),
    ((4, 5), dict(begin=[-1, 0], step=[1, 1]), (1, 5), r"axis 0 reads indices -1 to -1"),
    ((4, 5), dict(begin=[0], step=[1]), (4, 5), r"1 begins and 1 steps given for an input of rank 2"),
    ((4, 5), dict(begin=[0, 0, 0], step=[1, 1, 1]), (4, 5), r"3 begins and 3 steps"),
    ((1, 2**31 - 1), dict(begin=[0, 1], step=[1, 2**30]), (1, 3), r"indices 1 to 2147483649 \(step 1073741824\)"),
    ((1, 2**31 - 1), dict(begin=[0, 2**31 - 1 - 2**30], step=[1, -2**31]), (1, 2), r"indices 1073741823 to "
                                                                                 r"-1073741825"),
])
def test_slice_checks_every_index(shape, options, counts, message):
    """Bad options fail at load, naming the axis and its first and last index (computed in 64 bits:
    in 32 the last two would wrap back inside the input)."""
    g = Graph()
    x = g.add_input("x", shape)
    g.outputs.append(g.add_op("SLICE", [x], counts, options=options, name="slice"))
    with pytest.raises(sparselite.InvalidModelError, match=r"SLICE.*" + message):
        sparselite.load(serialize(g))


def test_slice_checks_dtypes_and_ranks():
    for out_shape, out_dtype, message in [((2, 3), "int32", r"one dense dtype"), ((6,), "float32", r"rank 1, the "
                                                                                                  r"input rank 2")]:
        g = Graph()
        x = g.add_input("x", (2, 3))
        g.outputs.append(g.add_op("SLICE", [x], out_shape, options=dict(begin=[0, 0], step=[1, 1]), name="slice",
                                  dtype=out_dtype))
        with pytest.raises(sparselite.InvalidModelError, match=message):
            sparselite.load(serialize(g))


def test_empty_slices_are_refused_when_converting():
    class Empty(torch.nn.Module):
        def forward(self, x):
            return x[:, 3:3] + 1

    with pytest.raises(sparselite.ConversionError, match=r"to shape \[2, 0, 5\]: empty tensors are not supported"):
        from_torch(Empty(), torch.zeros(2, 6, 5))


# --- dynamic dimensions ------------------------------------------------------------------------------
class Pieces(torch.nn.Module):
    """A token of a dynamic length (BERT's [CLS]), a fixed slice beside it, and chunks of the features."""

    def forward(self, x):
        a, b = x.chunk(2, dim=-1)
        return x[:, 0], x[..., 1:7:2].flip(-1) * 2, a - b


def test_slices_follow_dynamic_dimensions():
    x = torch.randn(2, 9, 8)
    converted = from_torch(Pieces(), x, dynamic_axes={"x": {1: "seq"}})
    model = sparselite.load(converted.to_bytes())
    for length in (9, 4, 1):
        xs = x[:, :length]
        for y, want in zip(model.run(xs.numpy()), Pieces()(xs)):
            assert np.array_equal(y, want.numpy()), length


def test_slices_of_a_dynamic_axis_that_cannot_follow_it_are_refused():
    g = Graph()
    g.dims["seq"] = 6
    x = g.add_input("x", (2, 6))
    g.tensors[x].dynamic = (None, "seq")
    y = g.add_op("SLICE", [x], (2, 5), options=dict(begin=[0, 1], step=[1, 1]), name="slice")
    g.outputs.append(y)
    with pytest.raises(sparselite.InvalidModelError, match=r"axis 1 follows a dynamic dimension: only the whole "
                                                           r"axis \(begin 0, step 1\) or its first element"):
        sparselite.load(serialize(g))


# --- torch -------------------------------------------------------------------------------------------
class Movers(torch.nn.Module):
    def forward(self, x):
        return (x[:, 1:5:2], x[..., -3:], x.select(1, -1), x.narrow(2, 1, 3), *x.chunk(4, dim=1),
                *x.split(2, dim=2), *torch.split(x, [1, 5], dim=1), *x.unbind(0), x.unflatten(1, (2, 3)),
                x.swapaxes(1, 2), x.swapdims(0, 2), x.movedim(0, 2), x.reshape_as(torch.zeros(2, 30)),
                torch.roll(x, 2, 1), torch.roll(x, (-1, 3), (2, 0)), torch.roll(x, 7), torch.flip(x, [0, 2]),
                *x.tensor_split(4, dim=1), *x.tensor_split([1, 4], dim=2))


def test_torch_data_movement_matches_torch():
    x = torch.randn(2, 6, 5)
    converted = from_torch(Movers(), x)
    types = {op.type for op in converted.graph.ops}
    assert types <= {"SLICE", "RESHAPE", "TRANSPOSE", "CONCAT"} and "SLICE" in types
    ys = sparselite.load(converted.to_bytes()).run(x.numpy())
    refs = Movers()(x)
    assert len(ys) == len(refs)
    for k, (y, ref) in enumerate(zip(ys, refs)):
        assert np.array_equal(y, ref.numpy()), k


class IntSlices(torch.nn.Module):
    def forward(self, ids):
        return ids[:, ::2].flip(1), ids.select(1, 2)


def test_torch_slices_of_token_ids():
    ids = torch.randint(-2**62, 2**62, (3, 7))
    ys = sparselite.load(from_torch(IntSlices(), ids).to_bytes()).run(ids.numpy())
    for y, ref in zip(ys, IntSlices()(ids)):
        assert y.dtype == np.int64 and np.array_equal(y, ref.numpy())


class Dropouts(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inplace = torch.nn.Dropout(0.3, inplace=True)

    def forward(self, x):
        F = torch.nn.functional
        x = F.dropout(x, 0.2, self.training) * 2
        x = F.dropout2d(x, 0.2, self.training) + 1
        x = F.alpha_dropout(x, 0.2, self.training) * 3
        x = F.feature_alpha_dropout(x, 0.2, self.training) - 1
        x = torch.ops.aten.native_dropout(x, 0.2, self.training)[0] * 0.5
        return self.inplace(x + 0)


def test_every_dropout_is_an_identity_in_eval():
    x = torch.randn(2, 3, 4, 5)
    converted = from_torch(Dropouts(), x)
    assert [op.type for op in converted.graph.ops] == ["MUL", "ADD", "MUL", "SUB", "MUL", "ADD"]
    (y,) = sparselite.load(converted.to_bytes()).run(x.numpy())
    assert np.allclose(y, Dropouts().eval()(x).numpy(), rtol=1e-6, atol=1e-6)


def test_dropout_in_training_mode_is_refused():
    class Training(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.dropout(x, 0.5, True)

    with pytest.raises(sparselite.ConversionError, match="dropout at .* is in training mode"):
        from_torch(Training(), torch.zeros(2, 3))


# --- ONNX --------------------------------------------------------------------------------------------
I64_MAX, I64_MIN = 2**63 - 1, -2**63


def onnx_model(nodes, x_shape, outputs, opset=13, consts=None):
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.asarray(v, np.int64), name) for name, v in (consts or {}).items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def check_against_onnxruntime(data, x):
    import onnxruntime as ort

    refs = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    ys = sparselite.load(from_onnx(data).to_bytes()).run(x)
    assert len(ys) == len(refs)
    for k, (y, ref) in enumerate(zip(ys, refs)):
        assert y.shape == ref.shape and np.array_equal(y, ref), k


# starts, ends, axes (None: all), steps (None: 1): negative and out-of-range indices, INT64 max / min as
# "to the end" either way, negative steps, repeated and missing axes.
ONNX_SLICES = [
    ([1, 0, 2], [3, 5, 7], None, None),
    ([-1], [I64_MIN], [2], [-1]),
    ([0, 4], [I64_MAX, -100], [-1, 1], [2, -2]),
    ([-100, 100], [100, -100], [2, 1], [3, -1]),
    ([-100], [I64_MIN], [0], [-1]),            # ONNX clamps a backward start to 0: one element
    ([2, 1, 0, 3], [3, 4, I64_MAX, 0], [0, 1, 2, 3], [1, 2, 3, -3]),
]


@pytest.mark.parametrize("opset", [13, 18])
def test_onnx_slice_matches_onnxruntime(opset):
    from onnx import helper

    nodes, consts, outputs = [], {}, []
    for k, (starts, ends, axes, steps) in enumerate(ONNX_SLICES):
        names = [f"s{k}", f"e{k}"]
        consts.update({f"s{k}": starts, f"e{k}": ends})
        for field, value in (("a", axes), ("t", steps)):
            names.append("" if value is None else f"{field}{k}")
            if value is not None:
                consts[f"{field}{k}"] = value
        while not names[-1]:
            names.pop()
        nodes.append(helper.make_node("Slice", ["x"] + names, [f"y{k}"], name=f"slice{k}"))
        outputs.append(f"y{k}")
    nodes.append(helper.make_node("Dropout", ["y0"], ["dropped"]))
    outputs.append("dropped")
    x = np.random.default_rng(2).standard_normal((3, 5, 7, 4)).astype(np.float32)
    check_against_onnxruntime(onnx_model(nodes, x.shape, outputs, opset, consts), x)


def test_onnx_split_matches_onnxruntime():
    from onnx import helper

    x = np.random.default_rng(3).standard_normal((3, 5, 7, 4)).astype(np.float32)
    sizes = helper.make_node("Split", ["x", "sizes"], ["a0", "a1", "a2"], axis=2)
    equal = helper.make_node("Split", ["x"], ["b0", "b1"], axis=-1)
    check_against_onnxruntime(onnx_model([sizes, equal], x.shape, ["a0", "a1", "a2", "b0", "b1"], 13,
                                         {"sizes": [2, 4, 1]}), x)
    uneven = helper.make_node("Split", ["x"], ["c0", "c1", "c2"], axis=2, num_outputs=3)   # 3, 3, 1
    check_against_onnxruntime(onnx_model([uneven], x.shape, ["c0", "c1", "c2"], 18), x)


def test_onnx_empty_and_bad_slices_are_refused():
    from onnx import helper

    empty = helper.make_node("Slice", ["x", "s", "e"], ["y"], name="empty")
    with pytest.raises(sparselite.ConversionError, match="'empty' slices 'x'.*empty tensors are not supported"):
        from_onnx(onnx_model([empty], (3, 5), ["y"], consts={"s": [2], "e": [2]}))
    zero = helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"], name="zero")
    with pytest.raises(sparselite.ConversionError, match="Slice 'zero': a step is 0"):
        from_onnx(onnx_model([zero], (3, 5), ["y"], consts={"s": [0], "e": [2], "a": [1], "t": [0]}))


# --- TFLite ------------------------------------------------------------------------------------------
def tflite_model(op_code, tensors, inputs, outputs, options=None):
    """One operator over `tensors` ([(name, shape, type, data or None)], tensor 0 the graph input),
    reading `inputs` and writing `outputs` (indices), which are the graph's outputs."""
    import flatbuffers
    import tflite

    b = flatbuffers.Builder(1024)

    def vector(start, items, prepend):
        start(b, len(items))
        for item in reversed(items):
            prepend(item)
        return b.EndVector()

    buffers = []
    for data in [None] + [t[3] for t in tensors if t[3] is not None]:
        raw = None if data is None else b.CreateByteVector(np.ascontiguousarray(data).tobytes())
        tflite.BufferStart(b)
        if raw is not None:
            tflite.BufferAddData(b, raw)
        buffers.append(tflite.BufferEnd(b))
    offsets, buffer = [], 0
    for name, shape, kind, data in tensors:
        name = b.CreateString(name)
        shape = vector(tflite.TensorStartShapeVector, [int(d) for d in shape], b.PrependInt32)
        buffer += data is not None
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, kind)
        tflite.TensorAddName(b, name)
        tflite.TensorAddBuffer(b, buffer if data is not None else 0)
        offsets.append(tflite.TensorEnd(b))
    tv = vector(tflite.SubGraphStartTensorsVector, offsets, b.PrependUOffsetTRelative)
    ins, outs, g_in, g_out = (vector(tflite.OperatorStartInputsVector, v, b.PrependInt32)
                              for v in (inputs, outputs, [0], outputs))
    opts = options[1](b) if options else None
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, ins)
    tflite.OperatorAddOutputs(b, outs)
    if opts is not None:
        tflite.OperatorAddBuiltinOptionsType(b, options[0])
        tflite.OperatorAddBuiltinOptions(b, opts)
    ops = vector(tflite.SubGraphStartOperatorsVector, [tflite.OperatorEnd(b)], b.PrependUOffsetTRelative)
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tv)
    tflite.SubGraphAddInputs(b, g_in)
    tflite.SubGraphAddOutputs(b, g_out)
    tflite.SubGraphAddOperators(b, ops)
    sg = tflite.SubGraphEnd(b)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddBuiltinCode(b, op_code)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(op_code, 127))
    code = tflite.OperatorCodeEnd(b)
    sgs = vector(tflite.ModelStartSubgraphsVector, [sg], b.PrependUOffsetTRelative)
    codes = vector(tflite.ModelStartOperatorCodesVector, [code], b.PrependUOffsetTRelative)
    bufs = vector(tflite.ModelStartBuffersVector, buffers, b.PrependUOffsetTRelative)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddSubgraphs(b, sgs)
    tflite.ModelAddOperatorCodes(b, codes)
    tflite.ModelAddBuffers(b, bufs)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def tflite_options(cls, **fields):
    import tflite

    def build(b):
        getattr(tflite, cls + "Start")(b)
        for field, value in fields.items():
            getattr(tflite, f"{cls}Add{field}")(b, value)
        return getattr(tflite, cls + "End")(b)
    return getattr(tflite.BuiltinOptions, cls), build


def ints(*v):
    return np.array(v, np.int32)


def tflite_cases():
    import tflite

    op, F32, I32 = tflite.BuiltinOperator, tflite.TensorType.FLOAT32, tflite.TensorType.INT32
    img = ("x", (1, 6, 5, 4), F32, None)

    def strided(x, begin, end, strides, out_shape, **masks):
        return dict(op_code=op.STRIDED_SLICE, tensors=[x, ("begin", (len(begin),), I32, ints(*begin)),
                                                       ("end", (len(end),), I32, ints(*end)),
                                                       ("strides", (len(strides),), I32, ints(*strides)),
                                                       ("y", out_shape, F32, None)],
                    inputs=[0, 1, 2, 3], outputs=[4], options=tflite_options("StridedSliceOptions", **masks))

    return {
        # NHWC held NCHW inside: begin/end masks, negative strides and indices.
        "STRIDED_SLICE NHWC masks": strided(img, [0, 1, -1, 0], [1, 6, 0, 3], [1, 2, -2, 1], (1, 3, 2, 4),
                                            BeginMask=0b0001, EndMask=0b1000),
        "STRIDED_SLICE NHWC shrink": strided(img, [0, 2, 0, 1], [1, 3, 5, 4], [1, 1, 2, 1], (1, 3, 3),
                                             ShrinkAxisMask=0b0010),
        "STRIDED_SLICE 2-D short begin": strided(("x", (7, 9), F32, None), [-2], [0], [-1], (5, 9)),
        "STRIDED_SLICE 3-D shrink last": strided(("x", (3, 5, 6), F32, None), [0, 0, -1], [3, 5, 0], [1, 2, 1],
                                                 (3, 3), ShrinkAxisMask=0b100),
        "SLICE NHWC size -1": dict(op_code=op.SLICE, tensors=[img, ("begin", (4,), I32, ints(0, 2, 1, 1)),
                                                              ("size", (4,), I32, ints(1, -1, 3, 2)),
                                                              ("y", (1, 4, 3, 2), F32, None)],
                                   inputs=[0, 1, 2], outputs=[3]),
        "SPLIT NHWC channels": dict(op_code=op.SPLIT, tensors=[img, ("axis", (), I32, ints(-1)),
                                                               ("y0", (1, 6, 5, 2), F32, None),
                                                               ("y1", (1, 6, 5, 2), F32, None)],
                                    inputs=[1, 0], outputs=[2, 3], options=tflite_options("SplitOptions", NumSplits=2)),
        "SPLIT_V rows -1": dict(op_code=op.SPLIT_V, tensors=[("x", (7, 3), F32, None),
                                                             ("sizes", (3,), I32, ints(2, -1, 1)),
                                                             ("axis", (1,), I32, ints(0)),
                                                             ("y0", (2, 3), F32, None), ("y1", (4, 3), F32, None),
                                                             ("y2", (1, 3), F32, None)],
                                inputs=[0, 1, 2], outputs=[3, 4, 5], options=tflite_options("SplitVOptions",
                                                                                            NumSplits=3)),
    }


@pytest.mark.parametrize("case", sorted(tflite_cases()))
def test_tflite_slices_match_litert(case, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    spec = tflite_cases()[case]
    path = tmp_path / "op.tflite"
    path.write_bytes(tflite_model(**spec))
    x = np.random.default_rng(4).standard_normal(spec["tensors"][0][1]).astype(np.float32)
    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    refs = [interp.get_tensor(d["index"]) for d in interp.get_output_details()]
    ys = sparselite.load(from_tflite(str(path)).to_bytes()).run(x)
    assert len(ys) == len(refs)
    for k, (y, ref) in enumerate(zip(ys, refs)):
        assert y.shape == ref.shape and np.array_equal(y, ref), (case, k)


def test_tflite_ellipsis_and_new_axis_masks_are_refused():
    spec = tflite_cases()["STRIDED_SLICE NHWC masks"]
    spec["options"] = tflite_options("StridedSliceOptions", EllipsisMask=0b10)
    with pytest.raises(sparselite.ConversionError, match=r"STRIDED_SLICE at 'y': ellipsis_mask 2, new_axis_mask 0 "
                                                         r"and offset False are not supported"):
        from_tflite(tflite_model(**spec))


# --- models ------------------------------------------------------------------------------------------
SIZE = 96
MODELS = ["shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "mobilenet_v3_small", "mobilenet_v3_large", "mnasnet0_5",
          "efficientnet_b0"]


def build(name, density=None):
    """Random weights, 4x1-pruned to `density` first when given; then BatchNorm statistics measured
    and random norm affines (lively), so that no block is a no-op."""
    from test_vision_families import lively

    model = zoo.torchvision_model(name)
    if density is not None:
        assert prune_groups(model, density, group=4)
    return lively(model)


@pytest.fixture(scope="module")
def x():
    return torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def check_against_torch(model, x):
    converted = from_torch(model, x)
    with torch.no_grad():
        ref = model(x).numpy()
        other = model(torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).numpy()
    assert ref.shape == (1, 1000) and rel_err(ref, other) > 0.05   # the output depends on the input
    (y,) = sparselite.load(converted.to_bytes()).run(x.numpy())
    assert rel_err(y, ref) < 1e-4
    return converted


@pytest.mark.parametrize("name", MODELS)
def test_models_match_torch(name, x):
    converted = check_against_torch(build(name), x)
    if name.startswith("shufflenet"):
        assert sum(op.type == "SLICE" for op in converted.graph.ops) == 26   # chunk: 2 per stride-1 block


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5", "mobilenet_v3_small", "mnasnet0_5", "efficientnet_b0"])
def test_pruned_models_match_torch(name, x):
    model = build(name, 0.2)
    sparse = [layer for layer in check_against_torch(model, x).layers() if layer[3]]
    assert sum(r == 4 for _, _, _, r in sparse) >= 10   # (squeeze-excitation layers of 6 or 10 channels take r = 2)


class GlobalPool(torch.nn.Module):
    """ShuffleNetV2 with its final x.mean([2, 3]) (ReduceMean in ONNX) as the equal global average pool."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        n = self.net
        x = n.conv5(n.stage4(n.stage3(n.stage2(n.maxpool(n.conv1(x))))))
        return n.fc(torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


def export(model, x, opset):
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, input_names=["x"], output_names=["y"], opset_version=opset, dynamo=False)
    return buf.getvalue()


@pytest.mark.parametrize("name, opset", [("shufflenet_v2_x0_5", 13), ("shufflenet_v2_x1_0", 18)])
def test_shufflenet_onnx_matches_onnxruntime(name, opset, x):
    """chunk exports as Slice with starts computed from Shape: shape inference runs again once they fold."""
    import onnxruntime as ort

    model = build(name, 0.2)
    data = export(GlobalPool(model).eval(), x, opset)
    converted = from_onnx(data)
    assert sum(op.type == "SLICE" for op in converted.graph.ops) == 26
    (y,) = sparselite.load(converted.to_bytes()).run(x.numpy())
    ref = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    assert rel_err(y, ref) < 1e-4
    with torch.no_grad():
        assert rel_err(y, model(x).numpy()) < 1e-4   # and GlobalPool is ShuffleNetV2


def test_shufflenet_onnx_as_exported(x):
    import onnxruntime as ort

    data = export(build("shufflenet_v2_x0_5").eval(), x, 17)
    (y,) = sparselite.load(from_onnx(data).to_bytes()).run(x.numpy())
    ref = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    assert rel_err(y, ref) < 1e-4


@pytest.mark.parametrize("indices,axis", [(0, 1), (-1, 1), ([0, 2, 4], 2), ([3, 1], 1), ([1], 0), ([1, 0], 0)])
def test_onnx_gather_of_constant_indices_is_a_slice(indices, axis):
    """Gather with constant indices that step evenly (a ViT's class token x[:, 0]) on a computed
    tensor: SLICE (and RESHAPE for a scalar index), bit-exact against onnxruntime."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    shape = (2, 5, 6)
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Gather", ["r", "i"], ["y"], axis=axis)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.array(indices, np.int64), "i")])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    data = model.SerializeToString()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    converted = from_onnx(data)
    assert "GATHER" not in [op.type for op in converted.graph.ops]
    (y,) = sparselite.load(converted.to_bytes()).run(x)
    assert np.array_equal(y, ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0])


def test_onnx_gather_of_uneven_indices_off_axis_0_is_reported():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Gather", ["r", "i"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.array([0, 1, 3], np.int64), "i")])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    with pytest.raises(sparselite.ConversionError, match="Gather: constant indices that do not step evenly"):
        from_onnx(model.SerializeToString())
