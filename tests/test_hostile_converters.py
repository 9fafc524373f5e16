"""The converters on hostile input: crafted and mutated .tflite / .onnx files end in a converted
model or a ConversionError that says what is wrong; constant folding is a bounded whitelist; ONNX
external data is read only from inside an explicit directory; save() is atomic; a bounded fuzz run
(tests/fuzz_converters.py) finds no crash, hang or other exception."""
import os
import stat
import struct

import numpy as np
import pytest

import sparselite
from sparselite import ConversionError
from sparselite.converters import from_onnx, from_tflite, limits

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


# --- ONNX builders ---------------------------------------------------------------------------------
def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _i64(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _bytes(model):
    return model.SerializeToString()


# --- ONNX: constant folding ------------------------------------------------------------------------
def test_loop_of_a_billion_iterations_is_refused_naming_the_op():
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c_out"])], "body",
                             [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                              helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                             [helper.make_tensor_value_info("c_out", TensorProto.BOOL, [])])
    data = _bytes(_model([helper.make_node("Loop", ["n", "cond"], [], body=body, name="forever"),
                          helper.make_node("Relu", ["x"], ["y"])], [_f32("x", [1, 4])], [_f32("y", [1, 4])],
                         [_i64("n", 10 ** 9), numpy_helper.from_array(np.array(True), "cond")]))
    assert len(data) < 400
    with pytest.raises(ConversionError, match=r"node 0 'forever' is control flow \(Loop\)"):
        from_onnx(data)
    then, other = helper.make_graph([], "b", [], []), helper.make_graph([], "c", [], [])
    for op, attrs in (("If", dict(then_branch=then, else_branch=other)), ("Scan", dict(body=then, num_scan_inputs=1))):
        nodes = [helper.make_node(op, ["cond"], [], **attrs), helper.make_node("Relu", ["x"], ["y"])]
        data = _bytes(_model(nodes, [_f32("x", [1, 4])], [_f32("y", [1, 4])],
                             [numpy_helper.from_array(np.array(True), "cond")]))
        with pytest.raises(ConversionError, match=rf"control flow \({op}\)"):
            from_onnx(data)


@pytest.mark.parametrize("nodes, inits, what", [
    ([helper.make_node("ConstantOfShape", ["s"], ["c"])], [_i64("s", [1 << 20, 1 << 20])], "ConstantOfShape"),
    ([helper.make_node("Range", ["a", "b", "d"], ["c"])], [_i64("a", 0), _i64("b", 1 << 40), _i64("d", 1)], "Range"),
    ([helper.make_node("Expand", ["v", "s"], ["c"])], [_i64("v", [1]), _i64("s", [1 << 16, 1 << 16])], "Expand"),
    ([helper.make_node("Tile", ["v", "s"], ["c"])], [_i64("v", [[1, 2]]), _i64("s", [1 << 14, 1 << 14])], "Tile"),
    ([helper.make_node("Add", ["u", "v"], ["c"])],
     [_i64("u", np.zeros((5000, 1))), _i64("v", np.zeros((1, 5000)))], "Add"),
    ([helper.make_node("Gather", ["v", "i"], ["c"])],
     [_i64("v", np.zeros((4, 4096))), _i64("i", np.zeros(8192))], "Gather"),
])
def test_folds_check_their_size_before_allocating(nodes, inits, what):
    nodes = nodes + [helper.make_node("Relu", ["x"], ["y"])]
    with pytest.raises(ConversionError, match=rf"folding {what} .* computed values are limited to 16777216 elements"):
        from_onnx(_bytes(_model(nodes, [_f32("x", [1, 4])], [_f32("y", [1, 4])], inits)))


def test_folds_share_one_budget(monkeypatch):
    """Many folds each under the per-value limit still meet the total (a Concat of x, x, x, ...)."""
    monkeypatch.setattr(limits, "MAX_COMPUTED_TOTAL_BYTES", 1 << 20)
    nodes = [helper.make_node("Concat", ["v"] * 64, [f"c{k}"], axis=0) for k in range(8)]
    nodes.append(helper.make_node("Relu", ["x"], ["y"]))
    with pytest.raises(ConversionError, match="computed during conversion to .* the limit is 1048576"):
        from_onnx(_bytes(_model(nodes, [_f32("x", [1, 4])], [_f32("y", [1, 4])], [_i64("v", np.zeros(512))])))


def test_folding_whitelist_matches_onnxruntime():
    """Shape arithmetic and mask plumbing (the whitelisted folds BERT exports use, and more) give
    what onnxruntime computes; ops outside the whitelist with constant inputs are not evaluated."""
    ort = pytest.importorskip("onnxruntime")
    from sparselite.converters.onnx_fold import FOLDS

    nodes = [
        helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["flat"]),
        helper.make_node("ConstantOfShape", ["mshape"], ["ones"],
                         value=numpy_helper.from_array(np.ones(1, np.float32))),
        helper.make_node("Range", ["r0", "r1", "r2"], ["rng"]), helper.make_node("Cast", ["rng"], ["rngf"], to=1),
        helper.make_node("Expand", ["rngf", "mshape"], ["ex"]), helper.make_node("Equal", ["ex", "ones"], ["eq"]),
        helper.make_node("Where", ["eq", "ones", "ex"], ["w"]),
        helper.make_node("Slice", ["w", "st", "en", "axes0"], ["sl"]), helper.make_node("Tile", ["sl", "reps"], ["t"]),
        helper.make_node("Div", ["neg7", "two"], ["q"]), helper.make_node("Cast", ["q"], ["qf"], to=1),
        helper.make_node("Sqrt", ["sixteen"], ["four"]), helper.make_node("Pow", ["four", "half"], ["root"]),
        helper.make_node("Transpose", ["t"], ["tt"], perm=[1, 0]), helper.make_node("Transpose", ["tt"], ["t2"]),
        helper.make_node("Mul", ["t2", "root"], ["scaled"]), helper.make_node("Add", ["scaled", "qf"], ["bias"]),
        helper.make_node("Add", ["flat", "bias"], ["y0"]), helper.make_node("Relu", ["y0"], ["y"]),
    ]
    inits = [_i64("zero", 0), _i64("axes0", [0]), _i64("m1", [-1]), _i64("mshape", [2, 12]), _i64("r0", 0),
             _i64("r1", 12), _i64("r2", 1), _i64("st", [0]), _i64("en", [1]), _i64("reps", [2, 1]),
             _i64("neg7", -7), _i64("two", 2), numpy_helper.from_array(np.array(16, np.float32), "sixteen"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    model = _model(nodes, [_f32("x", [2, 3, 4])], [_f32("y", [2, 12])], inits)
    data = _bytes(onnx.shape_inference.infer_shapes(model, data_prop=True))   # value_info for the reshape
    converted = from_onnx(data)
    assert [op.type for op in converted.graph.ops] == ["RESHAPE", "ADD"]   # the Relu fused; the rest folded
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    (y,) = sparselite.load(converted.to_bytes()).run(x)
    ref = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.allclose(y, ref, atol=1e-6)
    assert {"ConstantOfShape", "Equal", "Where", "Expand", "GatherElements", "Gather", "Mul"} <= set(FOLDS)
    assert not {"Loop", "If", "Scan", "Conv", "MatMul", "Softmax"} & set(FOLDS)
    # Not whitelisted and no converter: named, never evaluated.
    data = _bytes(_model([helper.make_node("Round", ["neg7"], ["r"]), helper.make_node("Relu", ["x"], ["y"])],
                         [_f32("x", [1, 4])], [_f32("y", [1, 4])],
                         [numpy_helper.from_array(np.array(-7.5, np.float32), "neg7")]))
    with pytest.raises(ConversionError, match=r"Round x1 \(first: node 0"):
        from_onnx(data)


def test_clip_and_exp_fold():
    """timm's TF-'same' padding computes pads through Ceil, Sub and Clip of shapes; Swin V2 scales
    its logits by Exp of a constant, clipped by a max without a min: all fold away, matching
    onnxruntime."""
    ort = pytest.importorskip("onnxruntime")
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Slice", ["s", "two", "four"], ["hw"]),
        helper.make_node("Cast", ["hw"], ["hwf"], to=1), helper.make_node("Div", ["hwf", "stride"], ["q"]),
        helper.make_node("Ceil", ["q"], ["c"]), helper.make_node("Sub", ["c", "hwf"], ["d"]),
        helper.make_node("Clip", ["d", "zero_f"], ["pos"]), helper.make_node("Clip", ["d", "lo", "hi"], ["mid"]),
        helper.make_node("Clip", ["d", "", "hi"], ["upper"]), helper.make_node("Add", ["pos", "mid"], ["pm"]),
        helper.make_node("Add", ["pm", "upper"], ["both"]), helper.make_node("Cast", ["both"], ["bi"], to=7),
        helper.make_node("Concat", ["zeros2", "bi", "zeros2", "bi"], ["pads"], axis=0),
        helper.make_node("Pad", ["x", "pads"], ["p"]), helper.make_node("Exp", ["logit"], ["scale"]),
        helper.make_node("Mul", ["p", "scale"], ["y"]),
    ]
    inits = [_i64("two", [2]), _i64("four", [4]), _i64("zeros2", [0, 0]),
             numpy_helper.from_array(np.array(0.5, np.float32), "stride"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero_f"),
             numpy_helper.from_array(np.array(-1.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
             numpy_helper.from_array(np.array(0.7, np.float32), "logit")]
    model = _model(nodes, [_f32("x", [1, 2, 3, 5])], [_f32("y", [1, 2, 21, 35])], inits)
    data = _bytes(onnx.shape_inference.infer_shapes(model, data_prop=True))
    converted = from_onnx(data)
    assert [op.type for op in converted.graph.ops] == ["PAD", "MUL"]
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 5)).astype(np.float32)
    (y,) = sparselite.load(converted.to_bytes()).run(x)
    ref = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert y.shape == ref.shape and np.allclose(y, ref, atol=1e-6)


def test_fold_errors_name_the_node():
    for nodes, inits, message in (
            ([helper.make_node("Div", ["a", "z"], ["c"], name="d")], [_i64("a", 1), _i64("z", 0)],
             "cannot fold Div 'd': integer division by zero"),
            ([helper.make_node("Gather", ["a", "i"], ["c"], name="g")], [_i64("a", [1, 2]), _i64("i", [5])],
             "cannot fold Gather 'g': an index is out of range"),
            ([helper.make_node("Range", ["a", "a", "z"], ["c"], name="r")], [_i64("a", 1), _i64("z", 0)],
             "cannot fold Range 'r': delta is 0"),
            ([helper.make_node("Reshape", ["a", "s"], ["c"], name="rs")], [_i64("a", [1, 2, 3]), _i64("s", [4])],
             r"cannot fold Reshape 'rs': cannot reshape \[3\] to \[4\]")):
        nodes = nodes + [helper.make_node("Relu", ["x"], ["y"])]
        with pytest.raises(ConversionError, match=message):
            from_onnx(_bytes(_model(nodes, [_f32("x", [1, 4])], [_f32("y", [1, 4])], inits)))


def test_shape_inference_runs_where_an_abort_cannot_take_the_process_down(monkeypatch):
    """onnx's C++ Slice inference asserts (SIGABRT) on a dimension of -1: the model fails, pytest lives."""
    from sparselite.converters import onnx_infer

    slice_ = _model([helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])], [_f32("x", [-1, 3])],
                    [_f32("y", None)], [_i64("s", [0]), _i64("e", [1]), _i64("a", [0]), _i64("st", [-1])])
    with pytest.raises(ConversionError):
        from_onnx(_bytes(slice_))
    assert from_onnx(_bytes(_small_onnx()))   # a new helper serves the next model
    import sys

    for code, message in (("import os; os.abort()", r"crashed \(signal 6\)"),
                          ("import time; time.sleep(60)", "did not finish in 1 s"),
                          ("import sys; sys.stdin.buffer.read(8); sys.exit(3)", "exited with status 3")):
        onnx_infer._stop()
        monkeypatch.setattr(onnx_infer, "_COMMAND", [sys.executable, "-c", code])
        monkeypatch.setattr(onnx_infer, "TIMEOUT_S", 1.0)
        with pytest.raises(ConversionError, match=f"ONNX shape inference {message} on this model: it is malformed"):
            from_onnx(_bytes(_small_onnx()))
    onnx_infer._stop()


# --- ONNX: external data ---------------------------------------------------------------------------
def _external_model(location, offset=0, length=64):
    w = numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(4, 4), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    return _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [_f32("x", [1, 4])], [_f32("y", [1, 4])], [w])


def _weights():
    return np.arange(16, dtype=np.float32).tobytes()


def _check_weights(converted):
    w = next(t for t in converted.graph.tensors.values() if t.data is not None and t.data.size == 16)
    assert np.array_equal(w.data.T.reshape(-1), np.arange(16))   # FULLY_CONNECTED keeps W as [out, in]


def test_external_data_is_read_from_the_model_directory_only(tmp_path, monkeypatch):
    (tmp_path / "w.bin").write_bytes(_weights())
    path = tmp_path / "m.onnx"
    path.write_bytes(_bytes(_external_model("w.bin")))
    monkeypatch.setattr(onnx, "load", None)   # onnx.load would read external data itself: not used
    _check_weights(from_onnx(str(path)))
    # Bytes never read files (not even w.bin in the working directory); a ModelProto only with a directory.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConversionError, match="stores its data in an external file \\('w.bin'\\)"):
        from_onnx(path.read_bytes())
    with pytest.raises(ConversionError, match="bytes never reads other files"):
        from_onnx(path.read_bytes(), external_data_dir=str(tmp_path))
    proto = _external_model("w.bin")
    with pytest.raises(ConversionError, match="external_data_dir"):
        from_onnx(proto)
    _check_weights(from_onnx(proto, external_data_dir=tmp_path))
    assert proto.graph.initializer[0].data_location == TensorProto.EXTERNAL   # the caller's proto is unchanged
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "w.bin").write_bytes(_weights())
    moved = tmp_path / "elsewhere.onnx"
    moved.write_bytes(_bytes(_external_model("w.bin", offset=0)))
    _check_weights(from_onnx(str(moved), external_data_dir=str(tmp_path / "data")))


@pytest.mark.parametrize("location, message", [
    ("../secret.bin", "contains '..'"), ("sub/../../secret.bin", "contains '..'"),
    ("..\\secret.bin", "contains '..'"), ("/etc/hostname", "absolute path"), ("out_link.bin", "outside"),
    ("dir_link/secret.bin", "outside"), ("fifo", "not a regular file"), ("missing.bin", "cannot be read"),
    ("", "no valid location")])
def test_external_data_never_leaves_its_directory(tmp_path, location, message):
    outside, base = tmp_path / "outside", tmp_path / "model"
    outside.mkdir()
    base.mkdir()
    (outside / "secret.bin").write_bytes(_weights())
    os.symlink(outside / "secret.bin", base / "out_link.bin")
    os.symlink(outside, base / "dir_link")
    os.mkfifo(base / "fifo")   # opening it would block: refused before
    path = base / "m.onnx"
    path.write_bytes(_bytes(_external_model(location)))
    with pytest.raises(ConversionError, match=f"external data .*{message}"):
        from_onnx(str(path))


def test_external_data_offsets_stay_in_the_file(tmp_path):
    (tmp_path / "w.bin").write_bytes(_weights())
    (tmp_path / "in_link.bin").symlink_to(tmp_path / "w.bin")   # a link inside the directory is fine
    for location, offset, length, message in (("w.bin", 8, 64, r"needs bytes 8..72 of a file of 64"),
                                              ("w.bin", 0, 1 << 40, "needs 64 bytes"),
                                              ("w.bin", -4, 64, "offset -4"), ("in_link.bin", 0, 64, None)):
        path = tmp_path / "m.onnx"
        path.write_bytes(_bytes(_external_model(location, offset, length)))
        if message is None:
            _check_weights(from_onnx(str(path)))
        else:
            with pytest.raises(ConversionError, match=message):
                from_onnx(str(path))


# --- ONNX: malformed models ------------------------------------------------------------------------
def _small_onnx():
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    return _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [_f32("x", [1, 4])], [_f32("y", [1, 3])], [w])


def test_malformed_onnx_raises_conversion_error_with_the_cause():
    data = _bytes(_small_onnx())
    with pytest.raises(ConversionError, match="not an ONNX model: the protobuf does not parse") as info:
        from_onnx(b"\x08\x07\x12\xff\xff\xff\xff\x0f" + data)
    assert info.value.__cause__ is not None   # the DecodeError, chained
    for cut in range(1, len(data), 7):
        try:
            from_onnx(data[:cut])
        except ConversionError as e:
            assert str(e)
    lying = _small_onnx()
    lying.graph.initializer[0].dims[0] = 1 << 40   # claims 2^42 elements, holds 12
    with pytest.raises(ConversionError, match=r"tensor 'w' of shape \[1099511627776, 3\] .* needs 13194139533312"):
        from_onnx(_bytes(lying))
    bad_attr = _model([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 7])], [_f32("x", [1, 4])],
                      [_f32("y", [4, 1])])
    with pytest.raises(ConversionError, match=r"perm \[0, 7\] is not a permutation of 2 axes"):
        from_onnx(_bytes(bad_attr))
    huge = _model([helper.make_node("Relu", ["x"], ["y"])], [_f32("x", [1 << 20, 1 << 20])],
                  [_f32("y", [1 << 20, 1 << 20])])
    with pytest.raises(ConversionError, match=r"input 'x' has shape \[1048576, 1048576\] .* at most 2147483648"):
        from_onnx(_bytes(huge))


def test_malformed_node_names_where_conversion_stood():
    clip = _model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip")], [_f32("x", [1, 4])],
                  [_f32("y", [1, 4])], [numpy_helper.from_array(np.zeros(3, np.float32), "lo"),
                                        numpy_helper.from_array(np.ones(1, np.float32), "hi")])
    with pytest.raises(ConversionError, match=r"malformed ONNX model \(node 0 \(Clip 'clip'\)\): TypeError") as info:
        from_onnx(_bytes(clip))
    assert isinstance(info.value.__cause__, TypeError)


# --- TFLite ----------------------------------------------------------------------------------------
def _tflite_model(**kwargs):
    import tflite
    from test_tflite import one_op_model

    kwargs.setdefault("op_code", tflite.BuiltinOperator.RELU)
    return one_op_model(**kwargs)


def _tensor_field(data, tensor, field_offset):
    """The position of a tensor table's field (4: shape vector, 8: buffer index)."""
    import tflite

    t = tflite.Model.GetRootAsModel(data, 0).Subgraphs(0).Tensors(tensor)
    o = t._tab.Offset(field_offset)
    return t._tab.Vector(o) if field_offset == 4 else t._tab.Pos + o


def _patch(data, pos, value, fmt="<i"):
    buf = bytearray(data)
    struct.pack_into(fmt, buf, pos, value)
    return bytes(buf)


def test_tflite_claims_are_checked_before_allocating():
    import tflite

    fc = _tflite_model(op_code=tflite.BuiltinOperator.FULLY_CONNECTED, x_shape=(1, 8), y_shape=(1, 3),
                       consts=[np.ones((3, 8), np.float32)])
    assert from_tflite(fc)
    # The weight (tensor 2) claims 3 x 2^28 elements; its buffer holds 24.
    with pytest.raises(ConversionError, match=r"tensor 'c0' of shape \[3, 268435456\] needs 3221225472 bytes; "
                                              "its buffer holds 96"):
        from_tflite(_patch(fc, _tensor_field(fc, 2, 4) + 4, 1 << 28))
    with pytest.raises(ConversionError, match=r"tensor 'x' has shape \[1, 0\]: every dimension must be in 1"):
        from_tflite(_patch(fc, _tensor_field(fc, 0, 4) + 4, 0))
    with pytest.raises(ConversionError, match=r"shape \[65536, 65536, 4\] \(17179869184 elements\): at most"):
        from_tflite(_tflite_model(x_shape=(65536, 65536, 4)))
    with pytest.raises(ConversionError, match="refers to buffer 1000; the model has 2"):
        from_tflite(_patch(fc, _tensor_field(fc, 2, 8), 1000))


def test_tflite_indices_out_of_range_are_named():
    import tflite

    from test_tflite import model_path

    relu = _tflite_model()
    op = tflite.Model.GetRootAsModel(relu, 0).Subgraphs(0).Operators(0)
    inputs = op._tab.Vector(op._tab.Offset(6))
    with pytest.raises(ConversionError, match=r"operator 0 \(RELU, output 'y'\): tensor index 77 is out of range"):
        from_tflite(_patch(relu, inputs, 77))
    face = open(model_path("face_detection_short_range.tflite"), "rb").read()
    sub = tflite.Model.GetRootAsModel(face, 0).Subgraphs(0)
    k, op = next((k, op) for k, op in ((k, sub.Operators(k)) for k in range(sub.OperatorsLength()))
                 if op._tab.Offset(4))   # an operator whose opcode index is stored (not the default 0)
    with pytest.raises(ConversionError, match=f"operator {k} has opcode index 4096; the model has"):
        from_tflite(_patch(face, op._tab.Pos + op._tab.Offset(4), 4096, "<I"))


def test_tflite_sparse_tensors_are_size_checked(monkeypatch):
    from test_tflite import model_path

    data = open(model_path("face_detection_full_range_sparse.tflite"), "rb").read()
    monkeypatch.setattr(limits, "MAX_COMPUTED_ELEMENTS", 1000)   # below its sparse weights' dense size
    with pytest.raises(ConversionError, match="densifying sparse tensor .* computed values are limited to 1000"):
        from_tflite(data)


def test_truncated_and_corrupt_tflite_fail_with_a_message():
    from test_tflite import model_path

    data = open(model_path("face_detection_short_range.tflite"), "rb").read()
    for cut in (0, 7, 8, 100, 4096, len(data) // 2, len(data) - 1):
        with pytest.raises(ConversionError) as info:
            from_tflite(data[:cut])
        assert "TFLite" in str(info.value) or "truncated" in str(info.value)
    with pytest.raises(ConversionError, match="lies outside the") as info:
        from_tflite(data[:len(data) // 3])
    assert info.value.__cause__ is not None   # struct.error / ValueError from flatbuffers, chained


# --- passes and IR on large hostile graphs ---------------------------------------------------------
def test_passes_and_names_stay_linear(monkeypatch):
    """A small file can hold 10^5 ops or tensors of one name: the passes use a per-pass index (never
    Graph.producer/consumers, a scan each) and names get suffixes without rescanning."""
    from sparselite.converters.ir import Graph

    def scan(*args):
        raise AssertionError("a pass scanned the graph")

    g = Graph()
    names = [g.add_input("x", (1, 4)) for _ in range(2000)]
    assert len(set(names)) == 2000 and g._suffix["x"] == 2000
    monkeypatch.setattr(Graph, "producer", scan)
    monkeypatch.setattr(Graph, "consumers", scan)
    n = 3000
    nodes = [helper.make_node("Relu" if i % 2 else "Clip", [f"t{i}"], [f"t{i + 1}"]) for i in range(n)]
    data = _bytes(_model(nodes, [_f32("t0", [1, 4])], [_f32(f"t{n}", [1, 4])]))
    converted = from_onnx(data)
    assert len(converted.graph.ops) == n
    (y,) = sparselite.load(converted.to_bytes()).run(np.array([[-1, 0.5, 2, 9]], np.float32))
    assert np.allclose(y, [[0, 0.5, 2, 9]])


# --- save ------------------------------------------------------------------------------------------
def _converted():
    return from_onnx(_bytes(_small_onnx()))


def test_save_replaces_the_file_atomically(tmp_path, monkeypatch):
    path = tmp_path / "m.slite"
    first, second = _converted(), from_onnx(_bytes(_small_onnx()), weights="fp16")
    first.save(path)
    loaded = sparselite.load(str(path))   # holds the first file's contents
    with open(path, "rb") as reader:
        inode = os.fstat(reader.fileno()).st_ino
        second.save(str(path))
        assert reader.read() == first.to_bytes()   # the open (or mapped) file is not rewritten
    assert os.stat(path).st_ino != inode and path.read_bytes() == second.to_bytes()
    assert loaded.run(np.ones((1, 4), np.float32))[0].shape == (1, 3)
    assert sorted(os.listdir(tmp_path)) == ["m.slite"]   # no temporary file left
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        first.save(path)
    assert path.read_bytes() == second.to_bytes() and sorted(os.listdir(tmp_path)) == ["m.slite"]


# --- CLI -------------------------------------------------------------------------------------------
def test_cli_convert_prints_a_message_for_malformed_models(tmp_path, capsys):
    from sparselite.cli import main as cli
    from test_tflite import model_path

    good = tmp_path / "old.slite"
    _converted().save(good)
    before = good.read_bytes()
    tfl = tmp_path / "bad.tflite"
    tfl.write_bytes(open(model_path("face_detection_short_range.tflite"), "rb").read()[:50000])
    onx = tmp_path / "bad.onnx"
    onx.write_bytes(b"\x08\x07\x12\xff\xff\xff" + _bytes(_small_onnx()))
    for src in (tfl, onx):
        assert cli(["convert", str(src), "-o", str(good)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("sparselite: error: ") and "Traceback" not in err
        assert good.read_bytes() == before   # the existing .slite is untouched


# --- fuzzing ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeds_dir(tmp_path_factory):
    import fuzz_converters

    return fuzz_converters.make_seeds(str(tmp_path_factory.mktemp("fuzz-seeds")))


def test_fuzz_harness_catches_hangs_crashes_memory_and_raw_exceptions(seeds_dir, monkeypatch):
    import fuzz_converters

    monkeypatch.setenv("SPARSELITE_FUZZ_SELFTEST", "hang,crash,alloc,raise")
    counts, failures, _ = fuzz_converters.fuzz("onnx", 6, jobs=2, timeout=5, memory_gib=2, seeds_dir=seeds_dir)
    assert {k: counts[k] for k in ("hang", "crash", "memory_error", "other")} == dict(
        hang=1, crash=1, memory_error=1, other=1)
    assert sum(counts.values()) == 6
    assert failures["other"][0][1].startswith("KeyError")


@pytest.mark.parametrize("target, iterations", [("tflite", 1500), ("onnx", 3000)])
def test_fuzz_converters_bounded(seeds_dir, target, iterations):
    """Mutated real models (fuzz_converters.py) in 2 workers capped at 4 GiB of address space, 20 s a
    case: every case converts or raises ConversionError / InvalidModelError."""
    import fuzz_converters

    counts, failures, seconds = fuzz_converters.fuzz(target, iterations, seed=1, jobs=2, timeout=20, memory_gib=4,
                                                     seeds_dir=seeds_dir)
    assert sum(counts.values()) == iterations
    assert not failures, {k: v[:5] for k, v in failures.items()}
    assert counts["ok"] > 0 and counts["conversion_error"] > 0
