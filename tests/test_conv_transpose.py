"""CONV_TRANSPOSE2D against torch.nn.functional.conv_transpose2d in float64 on odd shapes, under
every kernel configuration and thread count; its torch, ONNX and TFLite mappings against torch,
onnxruntime and LiteRT; a small U-Net; MediaPipe's selfie segmentation (custom op
Convolution2DTransposeBias) against LiteRT, whose default XNNPACK delegate implements that op."""
import io
import os
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sparselite
from helpers import ACTIVATIONS, KERNELS, rel_err, run_graph, single_op
from sparselite.converters import from_onnx, from_torch, from_tflite
from sparselite.converters.writer import serialize

MEDIAPIPE_MODELS = os.path.expanduser("~/.cache/sparselite-mediapipe/models")


def reference(x, w, b, stride, pads, output_padding, dilation, groups, act="NONE", lo=0.0, hi=0.0):
    """In float64: torch's full output (no padding), cropped by pads (top, left, bottom, right) and
    extended by output_padding, plus the bias, then the activation. Where torch's own padding can
    say it (equal sides, output_padding below the stride or dilation), torch computes it directly,
    and the two must agree."""
    xt, wt = torch.from_numpy(x).double(), torch.from_numpy(w).double()
    full = F.conv_transpose2d(xt, wt, None, stride, 0, 0, groups, dilation).numpy()
    pt, pl, pb, pr = pads
    n, c, fh, fw = full.shape
    ext = np.zeros((n, c, fh + output_padding[0], fw + output_padding[1]))
    ext[:, :, :fh, :fw] = full
    y = ext[:, :, pt:ext.shape[2] - pb, pl:ext.shape[3] - pr]
    if b is not None:
        y = y + b.astype(np.float64).reshape(1, -1, 1, 1)
    if pt == pb and pl == pr and all(o < max(s, d) for o, s, d in zip(output_padding, stride, dilation)):
        direct = F.conv_transpose2d(xt, wt, None if b is None else torch.from_numpy(b).double(), stride, (pt, pl),
                                    output_padding, groups, dilation).numpy()
        np.testing.assert_allclose(y, direct, rtol=1e-12, atol=1e-12)
    return ACTIVATIONS[act](y, lo, hi)


# (batch, in channels, out channels, H, W, kernel, stride, pads t/l/b/r, output_padding, dilation, groups,
#  bias, activation)
CASES = {
    "k1_s1": (2, 3, 5, 7, 6, (1, 1), (1, 1), (0, 0, 0, 0), (0, 0), (1, 1), 1, True, "NONE"),
    "k2_s2_unet": (2, 8, 4, 5, 7, (2, 2), (2, 2), (0, 0, 0, 0), (0, 0), (1, 1), 1, True, "RELU"),
    "k3_s2_p1_op1": (2, 6, 5, 7, 9, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), (1, 1), 1, True, "NONE"),
    "k4_s2_p1_dcgan": (2, 16, 8, 6, 5, (4, 4), (2, 2), (1, 1, 1, 1), (0, 0), (1, 1), 1, False, "RELU6"),
    "k5_s3_asymmetric": (2, 4, 3, 5, 7, (5, 3), (3, 2), (2, 0, 1, 1), (2, 1), (1, 1), 1, True, "NONE"),
    "k3_s1_dilated": (2, 5, 7, 9, 11, (3, 3), (1, 1), (2, 1, 2, 1), (0, 0), (2, 3), 1, True, "SIGMOID"),
    "k4_s3_dilated_op": (2, 3, 4, 4, 6, (4, 2), (3, 3), (1, 2, 1, 2), (2, 1), (2, 2), 1, True, "HARDSWISH"),
    "groups2": (2, 6, 4, 7, 5, (3, 4), (2, 1), (1, 1, 1, 1), (1, 0), (1, 1), 2, True, "CLAMP"),
    "groups3_k5": (2, 9, 6, 5, 5, (5, 5), (2, 2), (2, 2, 2, 2), (1, 1), (1, 1), 3, False, "GELU"),
    "depthwise_like": (2, 7, 7, 6, 9, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), (1, 1), 7, True, "TANH"),
    "depthwise_multiplier2": (2, 5, 10, 5, 4, (4, 4), (2, 2), (1, 1, 1, 1), (0, 0), (1, 1), 5, True, "NONE"),
    "kernel_past_stride": (2, 3, 2, 3, 4, (5, 5), (1, 3), (0, 0, 0, 0), (0, 0), (1, 1), 1, True, "NONE"),
    "stride_past_kernel": (2, 3, 2, 5, 4, (2, 1), (3, 3), (0, 0, 0, 0), (2, 2), (1, 1), 1, True, "NONE"),
    "crop_most": (2, 4, 3, 6, 6, (3, 3), (2, 2), (5, 4, 6, 3), (0, 0), (1, 1), 1, True, "NONE"),
    # More than 256 input pixels (gemm rather than gemm_nc), several bands and blocks, a halo.
    "gemm_bands_blocks": (2, 12, 20, 23, 19, (4, 4), (2, 2), (1, 1, 1, 1), (1, 0), (1, 1), 1, True, "RELU"),
    "gemm_stride1_halo": (2, 10, 9, 27, 21, (5, 3), (1, 1), (2, 1, 2, 1), (0, 0), (2, 1), 1, True, "NONE"),
}


def case_arrays(case, seed=0):
    n, ic, oc, h, w, k, s, pads, op, d, g, bias, act = CASES[case]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, ic, h, w)).astype(np.float32)
    wt = (rng.standard_normal((ic, oc // g) + k) / np.sqrt(ic // g * k[0] * k[1])).astype(np.float32)
    b = rng.standard_normal(oc).astype(np.float32) if bias else None
    opts = dict(stride=s, padding=pads, output_padding=op, dilation=d, groups=g, activation=act, act_min=-0.5,
                act_max=0.7)
    want = reference(x, wt, b, s, pads, op, d, g, act, -0.5, 0.7)
    return x, wt, b, opts, want


def one_op(x, wt, b, opts, out_shape):
    return single_op("CONV_TRANSPOSE2D", [x], out_shape, [wt] + ([b] if b is not None else []), opts)


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch_float64(case, kernels):
    x, wt, b, opts, want = case_arrays(case)
    (y,) = run_graph(*one_op(x, wt, b, opts, want.shape), **KERNELS[kernels])
    assert y.shape == want.shape
    assert rel_err(y, want) < 2e-6, rel_err(y, want)


@pytest.mark.parametrize("case", ["gemm_bands_blocks", "gemm_stride1_halo", "groups3_k5", "k3_s2_p1_op1"])
def test_bit_identical_for_any_thread_count(case):
    x, wt, b, opts, want = case_arrays(case, seed=1)
    g, inputs = one_op(x, wt, b, opts, want.shape)
    data = serialize(g)
    outs = [sparselite.load(data, num_threads=t).run(inputs)[0] for t in (1, 2, 3)]
    assert rel_err(outs[0], want) < 2e-6
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


def test_nan_reaches_the_outputs_it_touches():
    x, wt, b, opts, want = case_arrays("k2_s2_unet")
    x[0, 3, 2, 4] = np.nan
    opts["activation"] = "NONE"
    (y,) = run_graph(*one_op(x, wt, b, opts, want.shape))
    nan = np.isnan(y)
    assert nan[0, :, 4:6, 8:10].all() and nan.sum() == 4 * 4   # its 2x2 taps in every output channel


@pytest.mark.parametrize("change, match", [
    (dict(out_shape=(2, 4, 11, 14)), r"output .* has shape \[2,4,11,14\], expected \[2,4,10,14\]"),
    (dict(groups=3), r"in 3 groups do not fit 8 input channels"),
    (dict(padding=(10, 0, 0, 0)), r"the paddings crop all of it"),
    (dict(stride=(0, 2)), r"strides and dilations must be 1..65536"),
    (dict(output_padding=(-1, 0)), r"output paddings must be 0..65536"),
    (dict(bias=np.zeros(5, np.float32)), r"bias .* has shape \[5\], expected \[4\]"),
])
def test_bad_models_fail_naming_the_problem(change, match):
    x, wt, b, opts, want = case_arrays("k2_s2_unet")
    out_shape = change.pop("out_shape", want.shape)
    b = change.pop("bias", b)
    opts.update(change)
    if opts["groups"] == 3:   # weights of 8 input channels the groups cannot split
        wt = np.zeros((8, 1, 2, 2), np.float32)
    with pytest.raises(sparselite.InvalidModelError, match=match):
        sparselite.load(serialize(one_op(x, wt, b, opts, out_shape)[0]))


# --- torch ---------------------------------------------------------------------------------------

TORCH_LAYERS = {
    "s2_p1_op1": dict(in_channels=6, out_channels=4, kernel_size=3, stride=2, padding=1, output_padding=1),
    "k4_s2_p1_no_bias": dict(in_channels=8, out_channels=6, kernel_size=4, stride=2, padding=1, bias=False),
    "groups_dilation": dict(in_channels=6, out_channels=9, kernel_size=(3, 2), stride=(3, 2), padding=(2, 1),
                            output_padding=(1, 0), groups=3, dilation=(2, 1)),
    "depthwise": dict(in_channels=5, out_channels=5, kernel_size=5, stride=1, padding=2, groups=5),
}


@pytest.mark.parametrize("layer", sorted(TORCH_LAYERS))
@pytest.mark.parametrize("decomposed", [False, True])
def test_from_torch_matches_the_module(layer, decomposed):
    """conv_transpose2d as export leaves it, and as aten.convolution(transposed=True) after
    decompositions (the same module through a ReLU the converter fuses)."""
    from sparselite.converters import torch_frontend

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.ConvTranspose2d(**TORCH_LAYERS[layer]), torch.nn.ReLU()).eval()
    x = torch.randn(2, module[0].in_channels, 7, 5)
    export = torch_frontend._export

    def decomposed_export(*args):
        program, axes = export(*args)
        return program.run_decompositions(), axes

    with mock.patch.object(torch_frontend, "_export", decomposed_export if decomposed else export):
        converted = from_torch(module, x)
    assert [op.type for op in converted.graph.ops] == ["CONV_TRANSPOSE2D"]
    assert converted.graph.ops[0].options["activation"] == "RELU"
    (y,) = sparselite.load(converted.to_bytes()).run(x.numpy())
    assert rel_err(y, module(x).detach().numpy()) < 1e-5


class UNet(torch.nn.Module):
    """Convs down, transposed convs up (one followed by a BatchNorm the converter folds), skip
    concatenations."""

    def __init__(self):
        super().__init__()
        self.down1 = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.ReLU())
        self.down2 = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, 2, 1), torch.nn.ReLU())
        self.up1 = torch.nn.ConvTranspose2d(16, 8, 4, 2, 1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.up2 = torch.nn.ConvTranspose2d(16, 6, 3, 2, 1, output_padding=1, groups=2)
        self.head = torch.nn.Conv2d(6 + 3, 2, 1)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(0.5, 1.5)

    def forward(self, x):
        d1 = self.down1(x)
        d2 = self.down2(d1)
        u = torch.relu(self.bn(self.up1(d2)))
        u = self.up2(torch.cat([u, d1], 1))
        return torch.sigmoid(self.head(torch.cat([u, x], 1)))


def test_unet_through_from_torch_and_from_onnx():
    torch.manual_seed(1)
    model = UNet().eval()
    x = torch.randn(2, 3, 28, 20)
    want = model(x).detach().numpy()
    converted = from_torch(model, x)
    types = [op.type for op in converted.graph.ops]
    assert types.count("CONV_TRANSPOSE2D") == 2 and "BATCH_NORM" not in types and "ACTIVATION" not in types
    (y,) = sparselite.load(converted.to_bytes()).run(x.numpy())
    assert rel_err(y, want) < 1e-5
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, input_names=["x"], output_names=["y"], opset_version=17, dynamo=False)
    (y_onnx,) = sparselite.load(from_onnx(buf.getvalue()).to_bytes()).run(x.numpy())
    assert rel_err(y_onnx, want) < 1e-5


# --- ONNX ----------------------------------------------------------------------------------------

ONNX_CASES = {
    "pads_asymmetric_output_padding": dict(strides=[2, 2], pads=[1, 0, 0, 1], output_padding=[1, 0]),
    "same_upper": dict(strides=[2, 3], auto_pad="SAME_UPPER"),
    "same_lower": dict(strides=[2, 3], auto_pad="SAME_LOWER"),
    "valid_dilated": dict(strides=[3, 2], auto_pad="VALID", dilations=[2, 1]),
    "output_shape": dict(strides=[2, 2], output_shape=[10, 12]),
    "output_shape_same_upper": dict(strides=[2, 2], output_shape=[12, 12], auto_pad="SAME_UPPER"),
    "output_shape_same_lower": dict(strides=[2, 2], output_shape=[12, 12], auto_pad="SAME_LOWER"),
    "output_shape_and_padding": dict(strides=[2, 2], output_shape=[10, 11], output_padding=[1, 1]),
    "group2": dict(group=2, pads=[2, 1, 0, 1]),
}


def onnx_conv_transpose(x_shape, w, b, **attrs):
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(w, "w")] + ([numpy_helper.from_array(b, "b")] if b is not None else [])
    node = helper.make_node("ConvTranspose", ["x", "w"] + (["b"] if b is not None else []), ["y"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_onnx_conv_transpose_matches_onnxruntime(case):
    import onnxruntime as ort

    attrs = ONNX_CASES[case]
    rng = np.random.default_rng(2)
    groups = attrs.get("group", 1)
    x = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 4)).astype(np.float32)
    b = None if case == "same_lower" else rng.standard_normal(3 * groups).astype(np.float32)
    data = onnx_conv_transpose(x.shape, w, b, **attrs)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    (y,) = sparselite.load(from_onnx(data).to_bytes()).run(x)
    assert y.shape == want.shape and rel_err(y, want) < 1e-5, rel_err(y, want)


# --- TFLite --------------------------------------------------------------------------------------

def tflite_model(op_code, x_shape, y_shape, inputs, consts, options=None, custom=None):
    """One operator over graph input x (tensor 0) giving y (tensor 1); `consts` become tensors 2...
    and `inputs` lists the operator's tensor indices (-1: absent). options: (BuiltinOptions type,
    fn(builder) -> table); custom: (custom code, custom options bytes)."""
    import flatbuffers
    import tflite

    b = flatbuffers.Builder(1024)
    data = []
    for c in consts:
        raw = np.ascontiguousarray(c).tobytes()
        data.append(b.CreateByteVector(raw))
    buffers = []
    for k in range(len(consts) + 1):
        tflite.BufferStart(b)
        if k:
            tflite.BufferAddData(b, data[k - 1])
        buffers.append(tflite.BufferEnd(b))
    specs = [("x", x_shape, 0, 0), ("y", y_shape, 0, 0)]
    specs += [(f"c{k}", c.shape, 2 if c.dtype == np.int32 else 0, k + 1) for k, c in enumerate(consts)]
    tensors = []
    for name, shape, kind, buf in specs:
        name = b.CreateString(name)
        shape = b.CreateNumpyVector(np.array(shape, np.int32))
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, kind)
        tflite.TensorAddName(b, name)
        tflite.TensorAddBuffer(b, buf)
        tensors.append(tflite.TensorEnd(b))

    def offsets(start, items):
        start(b, len(items))
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    ints = lambda v: b.CreateNumpyVector(np.array(v, np.int32))
    tv, ins, outs, g_in, g_out = offsets(tflite.SubGraphStartTensorsVector, tensors), ints(inputs), ints([1]), \
        ints([0]), ints([1])
    opts = options[1](b) if options else None
    custom_opts = b.CreateByteVector(custom[1]) if custom else None
    code_name = b.CreateString(custom[0]) if custom else None
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, ins)
    tflite.OperatorAddOutputs(b, outs)
    if opts is not None:
        tflite.OperatorAddBuiltinOptionsType(b, options[0])
        tflite.OperatorAddBuiltinOptions(b, opts)
    if custom_opts is not None:
        tflite.OperatorAddCustomOptions(b, custom_opts)
    ops = offsets(tflite.SubGraphStartOperatorsVector, [tflite.OperatorEnd(b)])
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tv)
    tflite.SubGraphAddInputs(b, g_in)
    tflite.SubGraphAddOutputs(b, g_out)
    tflite.SubGraphAddOperators(b, ops)
    sg = tflite.SubGraphEnd(b)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddBuiltinCode(b, op_code)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(op_code, 127))
    if code_name is not None:
        tflite.OperatorCodeAddCustomCode(b, code_name)
    code = tflite.OperatorCodeEnd(b)
    sgs = offsets(tflite.ModelStartSubgraphsVector, [sg])
    codes = offsets(tflite.ModelStartOperatorCodesVector, [code])
    bufs = offsets(tflite.ModelStartBuffersVector, buffers)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddSubgraphs(b, sgs)
    tflite.ModelAddOperatorCodes(b, codes)
    tflite.ModelAddBuffers(b, bufs)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def litert_run(data, x):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data, num_threads=1)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


# (input NHWC, weights OHWI, stride (h, w), padding (0 SAME, 1 VALID), output H x W, bias, fused activation)
TRANSPOSE_CONV_CASES = {
    "same_s2_k3": ((1, 5, 7, 4), (6, 3, 3, 4), (2, 2), 0, (10, 14), True, 0),
    "same_s2_odd_output": ((1, 5, 7, 4), (6, 3, 3, 4), (2, 2), 0, (9, 13), True, 1),
    "same_s3_k2_larger": ((2, 4, 3, 3), (5, 2, 2, 3), (3, 3), 0, (12, 9), False, 0),
    "valid_s2_k4": ((1, 4, 5, 3), (2, 4, 4, 3), (2, 2), 1, (10, 12), True, 3),
    "valid_s1_k3_relu_n1": ((2, 6, 5, 3), (4, 3, 3, 3), (1, 1), 1, (8, 7), True, 2),
    "fused_tanh_refused": ((1, 3, 3, 2), (2, 3, 3, 2), (2, 2), 0, (6, 6), True, 4),
    "same_s2_1x3": ((1, 6, 5, 2), (3, 1, 3, 2), (2, 1), 0, (12, 5), True, 1),
}


@pytest.mark.parametrize("case", sorted(TRANSPOSE_CONV_CASES))
def test_tflite_transpose_conv_matches_litert(case):
    import tflite

    x_shape, w_shape, stride, padding, out_hw, bias, act = TRANSPOSE_CONV_CASES[case]
    rng = np.random.default_rng(3)
    w = rng.standard_normal(w_shape).astype(np.float32)
    y_shape = (x_shape[0],) + out_hw + (w_shape[0],)
    consts = [np.array(y_shape, np.int32), w] + ([rng.standard_normal(w_shape[0]).astype(np.float32)] if bias else [])

    def options(b):
        tflite.TransposeConvOptionsStart(b)
        tflite.TransposeConvOptionsAddPadding(b, padding)
        tflite.TransposeConvOptionsAddStrideH(b, stride[0])
        tflite.TransposeConvOptionsAddStrideW(b, stride[1])
        tflite.TransposeConvOptionsAddFusedActivationFunction(b, act)
        return tflite.TransposeConvOptionsEnd(b)

    data = tflite_model(tflite.BuiltinOperator.TRANSPOSE_CONV, x_shape, y_shape, [2, 3, 0] + ([4] if bias else []),
                        consts, (tflite.BuiltinOptions.TransposeConvOptions, options))
    if act == 4:   # LiteRT ignores a fused TANH here: refused rather than guessed
        with pytest.raises(sparselite.ConversionError, match=r"TRANSPOSE_CONV: a fused TANH \(LiteRT does not apply it\) x1"):
            from_tflite(data)
        return
    x = rng.standard_normal(x_shape).astype(np.float32)
    want = litert_run(data, x)
    (y,) = sparselite.load(from_tflite(data).to_bytes()).run(x)
    assert y.shape == want.shape and rel_err(y, want) < 1e-5, rel_err(y, want)


@pytest.mark.parametrize("padding, stride, x_hw", [(1, (2, 2), (5, 6)), (1, (2, 3), (4, 5)), (2, (2, 2), (5, 4)),
                                                  (1, (1, 1), (4, 4))])
def test_tflite_mediapipe_custom_op_matches_litert(padding, stride, x_hw):
    """Convolution2DTransposeBias, padding 1 SAME or 2 VALID, as a one-op model: LiteRT's XNNPACK
    delegate runs it."""
    import struct

    import tflite

    rng = np.random.default_rng(4)
    w = rng.standard_normal((3, 3, 4, 5)).astype(np.float32)   # OHWI
    bias = rng.standard_normal(3).astype(np.float32)
    totals = [max(0, k - (i - 1) % s - 1) if padding == 1 else 0 for i, k, s in zip(x_hw, (3, 4), stride)]
    out_hw = tuple(s * (i - 1) + k - t for i, k, s, t in zip(x_hw, (3, 4), stride, totals))
    x_shape, y_shape = (1,) + x_hw + (5,), (1,) + out_hw + (3,)
    data = tflite_model(tflite.BuiltinOperator.CUSTOM, x_shape, y_shape, [0, 2, 3], [w, bias],
                        custom=("Convolution2DTransposeBias", struct.pack("<iii", padding, stride[1], stride[0])))
    x = rng.standard_normal(x_shape).astype(np.float32)
    want = litert_run(data, x)
    (y,) = sparselite.load(from_tflite(data).to_bytes()).run(x)
    assert y.shape == want.shape and rel_err(y, want) < 1e-5, rel_err(y, want)


def test_tflite_mediapipe_custom_op_refuses_short_options():
    import tflite

    data = tflite_model(tflite.BuiltinOperator.CUSTOM, (1, 2, 2, 1), (1, 4, 4, 1), [0, 2, 3],
                        [np.ones((1, 2, 2, 1), np.float32), np.zeros(1, np.float32)],
                        custom=("Convolution2DTransposeBias", b"\x01\x00\x00\x00"))
    with pytest.raises(sparselite.ConversionError, match="custom options of 4 bytes; Convolution2DTransposeBias "
                                                         "needs 12"):
        from_tflite(data)


@pytest.mark.parametrize("name", ["selfie_segmentation", "selfie_segmentation_landscape"])
def test_mediapipe_selfie_segmentation_matches_litert(name):
    """Both selfie segmenters of the mediapipe 0.10.21 wheel (benchmarks/bench_tflite.py's
    mediapipe_models() fetches them) on a photo: their last op is Convolution2DTransposeBias,
    which LiteRT runs through its XNNPACK delegate (without delegates it is unresolved)."""
    from skimage import data, transform

    path = os.path.join(MEDIAPIPE_MODELS, name + ".tflite")
    if not os.path.exists(path):
        import sys

        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
        from bench_tflite import mediapipe_models

        path = mediapipe_models()[name]
    converted = from_tflite(path)
    assert "CONV_TRANSPOSE2D" in [op.type for op in converted.graph.ops]
    model = sparselite.load(converted.to_bytes())
    h, w = model.inputs[0].shape[1:3]
    x = transform.resize(data.astronaut(), (h, w), anti_aliasing=True)[None].astype(np.float32)
    with open(path, "rb") as f:
        want = litert_run(f.read(), x)
    (y,) = model.run(x)
    assert y.shape == want.shape == (1, h, w, 1)
    assert 0.3 < (want > 0.5).mean() < 0.8   # the astronaut is found, so the comparison means something
    assert np.abs(y - want).max() < 1e-4, np.abs(y - want).max()
