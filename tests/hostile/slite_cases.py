"""Hostile .slite files, by category. Each generator yields (name, bytes); make_corpus.py writes them.

ops:       per op, the size arithmetic of its prepare and run: wrapping products and sums of
           dimensions, zero / negative / huge options, strides, block sizes, paddings, axes;
           and for every op of the schema: ranks 0..8, tensors of 2^31 elements or a dimension
           of 2^31 - 1, input counts, absent inputs, options of another table.
graph:     tensor indices, SSA order, graph inputs and outputs.
sparse:    group-sparse structures: row pointers, duplicate and unsorted columns, permutations.
dynamic:   dynamic dimensions (the runner resizes the models that load).
resource:  arena, scratch, tensor / operator / input counts, sparse structures that ask for
           gigabytes, in files of a few hundred bytes.
verifier:  the FlatBuffer itself: offsets, vtables, strings, vectors, alignment, buffers that
           overlap or lie inside the FlatBuffer.
"""
import struct

import numpy as np

from slite import Slite
from sparselite import _schema as S

I32_MAX, I32_MIN = 2**31 - 1, -2**31
BIG = [0, -1, I32_MIN, 1 << 16, (1 << 16) + 1, (1 << 30) + 2, I32_MAX]   # option values past any limit
OP_TYPES = sorted((k for k in vars(S.OpType) if not k.startswith("_")), key=lambda k: getattr(S.OpType, k))
OPTIONS_TAGS = sum(1 for k in vars(S.OpOptions) if not k.startswith("_"))   # NONE included: one past the last
BINARY = ("ADD", "SUB", "MUL", "DIV", "PRELU")
# (inputs, their dtype, the output's) of the ops over booleans, for cases that only vary shapes
BOOL_IO = {"COMPARE": (2, "float32", "bool"), "LOGICAL": (2, "bool", "bool"), "WHERE": (3, "bool", "bool")}


def i32(v):
    """v as C's int32 arithmetic leaves it (wrapped)."""
    return (v + 2**31) % 2**32 - 2**31


def dim(v):
    """A declared dimension for a computed size: the wrapped value when it is a valid dimension (so
    a prepare that wraps agrees with the file), else 1."""
    w = i32(v)
    return w if w >= 1 else 1


def f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def one(op, in_shapes, out_shape, options=None, consts=(), dtype="float32", out_dtype="float32", **kw):
    """Graph inputs of in_shapes, then constants (arrays, or tensor indices from a callback), one op."""
    m = Slite()
    ins = [m.input(s, dtype) for s in in_shapes]
    for c in consts:
        ins.append(c(m) if callable(c) else -1 if c is None else m.const(c))
    y = m.tensor(out_shape, out_dtype)
    m.op(op, ins, [y], options, **kw)
    m.outputs = [y]
    return m


def zero_sparse(shape, r=8, index_type="uint16"):
    """A callback adding a group-sparse weight of `shape` with no stored groups: a few bytes of file
    for any number of elements."""
    return lambda m: m.sparse(shape, [0] * (-(-shape[0] // r) + 1), [], r=r, index_type=index_type)


# --- per-op size arithmetic ---------------------------------------------------------------------

def conv_out(size, k, s, d, p0, p1):
    if s < 1 or d < 1:
        return 1
    return (size + p0 + p1 - (d * (k - 1) + 1)) // s + 1


def conv2d_cases():
    x, w, b = (1, 2, 5, 5), f32(4, 2, 3, 3), f32(4)

    def conv(name, opts, xs=x, weights=w, bias=b, out=None, **kw):
        o = dict(StrideH=1, StrideW=1, DilationH=1, DilationW=1, PadTop=0, PadLeft=0, PadBottom=0, PadRight=0,
                 Groups=1)
        o.update(opts)
        wshape = weights.shape if isinstance(weights, np.ndarray) else kw.pop("wshape")
        if out is None:
            oh = conv_out(xs[2], wshape[2], o["StrideH"], o["DilationH"], o["PadTop"], o["PadBottom"])
            ow = conv_out(xs[3], wshape[3], o["StrideW"], o["DilationW"], o["PadLeft"], o["PadRight"])
            out = (xs[0], wshape[0], dim(oh), dim(ow))
        consts = [weights] + ([bias] if bias is not None else [])
        return name, one("CONV2D", [xs], out, o, consts, **kw)

    for v in BIG + [-2, 2]:
        yield conv(f"stride{v}", dict(StrideH=v))
        yield conv(f"dilation{v}", dict(DilationW=v))
        yield conv(f"pad{v}", dict(PadTop=v, PadRight=v))
        yield conv(f"groups{v}", dict(Groups=v))
    yield conv("groups3", dict(Groups=3))
    # Legal extremes: a dilation of 65536 over 65536 of padding, a stride as large as the padded input.
    yield conv("dilation65536_pad65536", dict(DilationH=65536, DilationW=65536, PadTop=65536, PadBottom=65536,
                                              PadLeft=65536, PadRight=65536))
    yield conv("pad65536_stride65536", dict(PadTop=65536, PadBottom=65536, PadLeft=65536, PadRight=65536,
                                            StrideH=65536, StrideW=65536))
    dw = f32(2, 1, 3, 3)
    yield conv("depthwise_pad65536_stride65536", dict(Groups=2, PadTop=65536, PadBottom=65536, PadLeft=65536,
                                                      PadRight=65536, StrideH=65536, StrideW=65536), weights=dw,
               bias=None)
    yield conv("depthwise_pad65536_stride4096", dict(Groups=2, PadTop=65536, PadBottom=65536, PadLeft=65536,
                                                     PadRight=65536, StrideH=4096, StrideW=4096), weights=dw,
               bias=None)
    yield conv("depthwise_stride_past_kernel", dict(Groups=2, StrideH=7, StrideW=9), xs=(1, 2, 20, 20), weights=dw,
               bias=None)
    yield conv("kernel_larger_than_input", {}, xs=(1, 2, 2, 2))
    yield conv("channels_disagree", {}, xs=(1, 3, 5, 5))
    yield conv("weights_rank3", {}, weights=f32(4, 2, 3), out=(1, 4, 3, 3))
    yield conv("bias_shape5", {}, bias=f32(5))
    yield conv("bias_rank0", {}, bias=np.float32(1).reshape(()))
    yield conv("bias_int32", {}, bias=np.zeros(4, np.int32))
    yield conv("output_rank3", {}, out=(4, 3, 3))
    for act, lo, hi in [(11, 0, 0), (255, 0, 0), (3, 1, 0), (3, float("nan"), 1), (3, float("-inf"), float("inf"))]:
        yield conv(f"activation{act}_{lo}_{hi}", dict(Activation=act, ActMin=lo, ActMax=hi))
    m = one("CONV2D", [x, (4, 2, 3, 3)], (1, 4, 3, 3))   # weights computed, not constant
    yield "weights_not_constant", m
    m = one("CONV2D", [x, (4,)], (1, 4, 3, 3), consts=[w])
    m.ops[0]["inputs"] = [0, 2, 1]
    yield "bias_not_constant", m
    # Group-sparse weights with no stored groups: gigabytes when densified, bytes in the file.
    yield conv("sparse_kernel_46340_densify", dict(PadTop=23170, PadBottom=23170, PadLeft=23170, PadRight=23170),
               xs=(1, 1, 1, 1), weights=zero_sparse((1, 1, 46340, 46340), r=1, index_type="uint32"),
               wshape=(1, 1, 46340, 46340), bias=None)
    yield conv("sparse_im2col_patch_2e29", dict(PadTop=8192, PadBottom=8192, PadLeft=8192, PadRight=8192),
               xs=(1, 2, 1, 1), weights=zero_sparse((1, 2, 16384, 16384), r=1, index_type="uint32"),
               wshape=(1, 2, 16384, 16384), bias=None)
    yield conv("sparse_pointwise_k65536", {}, xs=(1, 65536, 1, 1),
               weights=zero_sparse((8, 65536, 1, 1), index_type="uint32"), wshape=(8, 65536, 1, 1), bias=None)


def conv_transpose2d_cases():
    """CONV_TRANSPOSE2D: the output grows with stride, dilation and output padding, so the size
    products reach past int32 from small files."""
    x, w, b = (1, 4, 5, 5), f32(4, 3, 3, 3), f32(3)

    def convt_out(size, k, s, d, p0, p1, extra):
        return (size - 1) * s + d * (k - 1) + 1 - p0 - p1 + extra

    def convt(name, opts, xs=x, weights=w, bias=b, out=None, **kw):
        o = dict(StrideH=1, StrideW=1, DilationH=1, DilationW=1, PadTop=0, PadLeft=0, PadBottom=0, PadRight=0,
                 OutputPaddingH=0, OutputPaddingW=0, Groups=1)
        o.update(opts)
        wshape = weights.shape if isinstance(weights, np.ndarray) else kw.pop("wshape")
        if out is None:
            oh = convt_out(xs[2], wshape[2], o["StrideH"], o["DilationH"], o["PadTop"], o["PadBottom"],
                           o["OutputPaddingH"])
            ow = convt_out(xs[3], wshape[3], o["StrideW"], o["DilationW"], o["PadLeft"], o["PadRight"],
                           o["OutputPaddingW"])
            groups = o["Groups"] if o["Groups"] >= 1 else 1
            out = (xs[0], dim(wshape[1] * groups), dim(oh), dim(ow))
        consts = [weights] + ([bias] if bias is not None else [])
        return name, one("CONV_TRANSPOSE2D", [xs], out, o, consts, **kw)

    for v in BIG + [-2, 2]:
        yield convt(f"stride{v}", dict(StrideH=v))
        yield convt(f"dilation{v}", dict(DilationW=v))
        yield convt(f"pad{v}", dict(PadTop=v, PadRight=v))
        yield convt(f"output_padding{v}", dict(OutputPaddingH=v, OutputPaddingW=v))
        yield convt(f"groups{v}", dict(Groups=v))
    yield convt("groups2_channels_odd", dict(Groups=2), xs=(1, 5, 5, 5), weights=f32(5, 3, 3, 3))
    # Legal extremes: a dilated kernel cropped back to the input's size; a stride of 65536 on 2 rows.
    yield convt("dilation65536_crop65536", dict(DilationH=65536, DilationW=65536, PadTop=65536, PadBottom=65536,
                                                PadLeft=65536, PadRight=65536))
    yield convt("stride65536_two_rows", dict(StrideH=65536), xs=(1, 4, 2, 1))
    yield convt("stride65536_rows_2e31", dict(StrideH=65536, StrideW=65536), xs=(1, 4, 32769, 1))
    yield convt("crops_everything", dict(PadTop=4, PadBottom=4), out=(1, 3, 1, 7))
    yield convt("output_padding_past_stride", dict(OutputPaddingH=5, OutputPaddingW=9))
    yield convt("weights_ic_disagree", {}, xs=(1, 3, 5, 5))
    yield convt("weights_rank3", {}, weights=f32(4, 3, 3), out=(1, 3, 7, 7))
    yield convt("output_channels_2e31", dict(Groups=2), xs=(1, 2, 5, 5),
                weights=zero_sparse((2, 1 << 30, 1, 1), r=1, index_type="uint32"), wshape=(2, 1 << 30, 1, 1),
                bias=None)
    yield convt("bias_shape4", {}, bias=f32(4))
    yield convt("bias_int32", {}, bias=np.zeros(3, np.int32))
    yield convt("output_shape_off_by_one", {}, out=(1, 3, 8, 7))
    yield convt("output_rank3", {}, out=(3, 7, 7))
    for act, lo, hi in [(11, 0, 0), (255, 0, 0), (3, 1, 0), (3, float("nan"), 1)]:
        yield convt(f"activation{act}_{lo}_{hi}", dict(Activation=act, ActMin=lo, ActMax=hi))
    yield "weights_not_constant", one("CONV_TRANSPOSE2D", [x, (4, 3, 3, 3)], (1, 3, 7, 7))
    m = one("CONV_TRANSPOSE2D", [x, (3,)], (1, 3, 7, 7), consts=[w])
    m.ops[0]["inputs"] = [0, 2, 1]
    yield "bias_not_constant", m
    # Group-sparse weights with no stored groups: gigabytes of output or columns from a few bytes.
    yield convt("sparse_kernel_46340", {}, xs=(1, 1, 1, 1), weights=zero_sparse((1, 1, 46340, 46340), r=1,
                                                                                index_type="uint32"),
                wshape=(1, 1, 46340, 46340), bias=None)
    yield convt("sparse_channels_65536_taps_1024", {}, xs=(1, 1, 2, 2),
                weights=zero_sparse((1, 65536, 32, 32), r=1, index_type="uint32"), wshape=(1, 65536, 32, 32),
                bias=None)


def fully_connected_cases():
    w, b = f32(3, 4), f32(3)
    yield "k_mismatch", one("FULLY_CONNECTED", [(2, 5)], (2, 3), consts=[w, b])
    yield "weights_rank1", one("FULLY_CONNECTED", [(2, 4)], (2, 3), consts=[f32(4), b])
    yield "weights_rank3", one("FULLY_CONNECTED", [(2, 4)], (2, 3), consts=[f32(3, 4, 1), b])
    yield "weights_not_constant", one("FULLY_CONNECTED", [(2, 4), (3, 4)], (2, 3))
    yield "bias_shape4", one("FULLY_CONNECTED", [(2, 4)], (2, 3), consts=[w, f32(4)])
    yield "bias_not_constant", one("FULLY_CONNECTED", [(2, 4), (3,)], (2, 3), consts=[w])
    yield "output_rows_differ", one("FULLY_CONNECTED", [(2, 4)], (3, 3), consts=[w, b])
    yield "rank8_rows", one("FULLY_CONNECTED", [(2,) * 7 + (4,)], (2,) * 7 + (3,), consts=[w, b])
    for act in (11, 255):
        yield f"activation{act}", one("FULLY_CONNECTED", [(2, 4)], (2, 3), dict(Activation=act), consts=[w, b])
    yield "clamp_inverted", one("FULLY_CONNECTED", [(2, 4)], (2, 3), dict(Activation=3, ActMin=1.0, ActMax=-1.0),
                                consts=[w, b])
    yield "sparse_k2e28", one("FULLY_CONNECTED", [(1, 1 << 28)], (1, 8),
                              consts=[zero_sparse((8, 1 << 28), index_type="uint32")])
    yield "sparse_oc2e20_rows2048", one("FULLY_CONNECTED", [(2048, 16)], (2048, 1 << 20),
                                        consts=[zero_sparse((1 << 20, 16))])
    yield "rows_65536_scratch", one("FULLY_CONNECTED", [(65536, 16)], (65536, 8), consts=[zero_sparse((8, 16))])


def binary_cases(op):
    yield "no_broadcast", one(op, [(2, 3), (3, 2)], (2, 3))
    yield "broadcast_ok", one(op, [(2, 1), (1, 3)], (2, 3))
    yield "output_shape_wrong", one(op, [(2, 1), (1, 3)], (3, 2))
    yield "rank8_vs_rank0", one(op, [(2,) * 8, ()], (2,) * 8)
    yield "rank0_vs_rank8", one(op, [(), (1, 2, 1, 2, 1, 2, 1, 2)], (1, 2, 1, 2, 1, 2, 1, 2))
    yield "rank0_both", one(op, [(), ()], ())
    yield "int32", one(op, [(2, 3), (2, 3)], (2, 3), dtype="int32", out_dtype="int32")
    yield "broadcast_to_2e31", one(op, [(65536, 1), (1, 32768)], (65536, 32768))
    yield "broadcast_to_2e32_declared_1", one(op, [(65536, 1), (1, 65536)], (1,))
    yield "const_nan_inf_zero", one(op, [(4,)], (4,), consts=[np.array([0, np.nan, np.inf, -0.0], np.float32)])
    yield "second_sparse", one(op, [(8, 4)], (8, 4), consts=[lambda m: m.sparse((8, 4), [0, 1], [2], r=8)])
    if op != "PRELU":
        for act in (11, 255):
            yield f"activation{act}", one(op, [(2, 3), (2, 3)], (2, 3), dict(Activation=act))
        yield "clamp_nan", one(op, [(2, 3), (2, 3)], (2, 3), dict(Activation=3, ActMin=float("nan"), ActMax=1.0))
        # Integers: the extremes that overflow (INT_MIN / -1, INT_MIN * -1), x / 0, mixed dtypes.
        for t, info in (("int32", np.iinfo(np.int32)), ("int64", np.iinfo(np.int64))):
            a = np.array([info.min, info.min, info.max, info.max, -7, 7, 0, 5], t)
            b = np.array([-1, 0, 1, -1, 2, -2, 0, 0], t)
            yield f"{t}_extremes", one(op, [], (8,), consts=[a, b], out_dtype=t)
            yield f"{t}_broadcast_rank8", one(op, [(2,) * 8, (1, 2, 1, 2)], (2,) * 8, dtype=t, out_dtype=t)
            yield f"{t}_activation1", one(op, [(2, 3), (2, 3)], (2, 3), dict(Activation=1), dtype=t, out_dtype=t)
        yield "int32_int64", one(op, [(2, 3)], (2, 3), consts=[np.ones((2, 3), np.int64)], dtype="int32",
                                 out_dtype="int32")
        yield "int64_to_float32", one(op, [(2, 3), (2, 3)], (2, 3), dtype="int64")
        yield "bool", one(op, [(2, 3), (2, 3)], (2, 3), dtype="bool", out_dtype="bool")


def compare_cases():
    for kind in (6, 255):
        yield f"kind{kind}", one("COMPARE", [(2, 3), (2, 3)], (2, 3), dict(Kind=kind), out_dtype="bool")
    for t in ("float32", "int32", "int64", "bool"):
        yield f"{t}_broadcast_rank8_vs_rank0", one("COMPARE", [(2,) * 8, ()], (2,) * 8, dict(Kind=2), dtype=t,
                                                    out_dtype="bool")
    yield "float32_int32", one("COMPARE", [(2, 3)], (2, 3), consts=[np.zeros((2, 3), np.int32)], out_dtype="bool")
    yield "uint16", one("COMPARE", [(2, 3), (2, 3)], (2, 3), dtype="uint16", out_dtype="bool")
    yield "output_float32", one("COMPARE", [(2, 3), (2, 3)], (2, 3))
    yield "no_broadcast", one("COMPARE", [(2, 3), (3, 2)], (2, 3), out_dtype="bool")
    yield "output_shape_wrong", one("COMPARE", [(2, 1), (1, 3)], (3, 2), out_dtype="bool")
    yield "broadcast_to_2e31", one("COMPARE", [(65536, 1), (1, 32768)], (65536, 32768), out_dtype="bool")
    yield "broadcast_to_2e32_declared_1", one("COMPARE", [(65536, 1), (1, 65536)], (1,), out_dtype="bool")
    yield "nan_inf_consts", one("COMPARE", [(4,)], (4,), dict(Kind=1), out_dtype="bool",
                                consts=[np.array([np.nan, np.inf, -np.inf, -0.0], np.float32)])
    yield "int64_extremes", one("COMPARE", [], (3,), dict(Kind=5), out_dtype="bool",
                                consts=[np.array([-2**63, 2**63 - 1, 0], np.int64), np.array([2**63 - 1], np.int64)])
    yield "second_sparse", one("COMPARE", [(8, 4)], (8, 4), out_dtype="bool",
                               consts=[lambda m: m.sparse((8, 4), [0, 1], [2], r=8)])


def logical_cases():
    for kind in (4, 255):
        yield f"kind{kind}", one("LOGICAL", [(2, 3), (2, 3)], (2, 3), dict(Kind=kind), dtype="bool", out_dtype="bool")
    yield "not_two_inputs", one("LOGICAL", [(2, 3), (2, 3)], (2, 3), dict(Kind=3), dtype="bool", out_dtype="bool")
    yield "and_one_input", one("LOGICAL", [(2, 3)], (2, 3), dict(Kind=0), dtype="bool", out_dtype="bool")
    m = one("LOGICAL", [(2, 3)], (2, 3), dict(Kind=1), dtype="bool", out_dtype="bool")
    m.ops[0]["inputs"] = [0, -1]
    yield "or_second_absent", m
    yield "int32_inputs", one("LOGICAL", [(2, 3), (2, 3)], (2, 3), dtype="int32", out_dtype="bool")
    yield "float32_output", one("LOGICAL", [(2, 3), (2, 3)], (2, 3), dtype="bool")
    yield "xor_rank8_vs_rank0", one("LOGICAL", [(2,) * 8, ()], (2,) * 8, dict(Kind=2), dtype="bool", out_dtype="bool")
    yield "not_rank0", one("LOGICAL", [()], (), dict(Kind=3), dtype="bool", out_dtype="bool")
    yield "broadcast_to_2e31", one("LOGICAL", [(65536, 1), (1, 32768)], (65536, 32768), dtype="bool",
                                   out_dtype="bool")
    yield "bytes_past_1", one("LOGICAL", [], (4,), dict(Kind=2), out_dtype="bool",
                              consts=[np.array([0, 2, 128, 255], np.uint8).view(bool), np.ones(4, bool)])


def where_cases():
    cond = np.array([[1], [0], [7], [255]], np.uint8).view(bool)   # any nonzero byte is true
    for t in ("float32", "int32", "int64", "bool"):
        yield f"{t}_three_way", one("WHERE", [(4, 1)], (4, 3), consts=[np.zeros(3, t), np.ones((4, 1), t)],
                                    dtype="bool", out_dtype=t)
        yield f"{t}_const_condition", one("WHERE", [], (4, 3), consts=[cond, np.zeros((1, 3), t), np.ones((4, 1), t)],
                                          out_dtype=t)
    yield "condition_float32", one("WHERE", [(2, 3), (2, 3), (2, 3)], (2, 3))
    yield "x_int32_y_float32", one("WHERE", [(2, 3)], (2, 3), consts=[np.zeros(3, np.int32), np.zeros(3, np.float32)],
                                   dtype="bool", out_dtype="int32")
    yield "uint16_values", one("WHERE", [(2, 3)], (2, 3), consts=[np.zeros(3, np.uint16), np.zeros(3, np.uint16)],
                               dtype="bool", out_dtype="uint16")
    yield "output_dtype_differs", one("WHERE", [(2, 3)], (2, 3), consts=[np.zeros(3, np.int64)] * 2, dtype="bool",
                                      out_dtype="int32")
    yield "no_broadcast", one("WHERE", [(2, 3), (3, 3), (2, 3)], (2, 3), dtype="bool", out_dtype="bool")
    yield "output_shape_wrong", one("WHERE", [(2, 1), (1, 3), (1,)], (3, 2), dtype="bool", out_dtype="bool")
    yield "rank8_rank0_rank4", one("WHERE", [(2,) * 8, (), (1, 2, 1, 2)], (2,) * 8, dtype="bool", out_dtype="bool")
    yield "broadcast_to_2e31", one("WHERE", [(65536, 1), (1, 32768), ()], (65536, 32768), dtype="bool",
                                   out_dtype="bool")
    yield "x_sparse", one("WHERE", [(8, 4)], (8, 4), dtype="bool",
                          consts=[lambda m: m.sparse((8, 4), [0, 1], [2], r=8), np.zeros(4, np.float32)])


def activation_cases():
    for act in list(range(19)) + [19, 128, 255]:
        yield f"type{act}_rank0", one("ACTIVATION", [()], (), dict(Activation=act, Min=-1.0, Max=1.0))
    for e in (float("nan"), float("inf"), float("-inf"), 3e38, -1e-45, 0.0, 64.0, 65.0, 16777217.0, -0.5):
        yield f"pow{e}", one("ACTIVATION", [], (6,), dict(Activation=18, Exponent=e),
                             consts=[np.array([-np.inf, -1, -0.0, 0, 1e-40, np.nan], np.float32)])
    for lo, hi in [(1.0, -1.0), (float("nan"), 1.0), (float("nan"), float("nan")), (float("inf"), float("inf")),
                   (float("-inf"), float("-inf"))]:
        yield f"clamp_{lo}_{hi}", one("ACTIVATION", [(3, 5)], (3, 5), dict(Activation=3, Min=lo, Max=hi))
    yield "shape_differs", one("ACTIVATION", [(3, 5)], (5, 3), dict(Activation=1))
    yield "int64_input", one("ACTIVATION", [(3,)], (3,), dict(Activation=1), dtype="int64", out_dtype="int64")


def pool_cases(op):
    def pool(name, xs, out, **o):
        opts = dict(KernelH=2, KernelW=2, StrideH=1, StrideW=1)
        opts.update(o)
        return name, one(op, [xs], out, opts)

    x = (1, 2, 5, 5)
    for v in BIG:
        yield pool(f"kernel{v}", x, (1, 2, 4, dim(conv_out(5, v, 1, 1, 0, 0))), KernelW=v)
        yield pool(f"stride{v}", x, (1, 2, dim(conv_out(5, 2, v, 1, 0, 0)), 4), StrideH=v)
        yield pool(f"pad{v}", x, (1, 2, dim(conv_out(5, 2, 1, 1, v, v)), 4), PadTop=v, PadBottom=v)
    yield pool("pad_equals_kernel", x, (1, 2, 8, 4), PadTop=2, PadBottom=2)
    yield pool("ceil_mode_extra_row", x, (1, 2, 3, 3), StrideH=2, StrideW=2)
    yield pool("ceil_mode_two_extra_rows", x, (1, 2, 4, 4), StrideH=2, StrideW=2)
    yield pool("window_larger_than_input", (1, 2, 1, 1), (1, 2, 1, 1), KernelH=3, KernelW=3)
    # The window's area, kernel_h * kernel_w, is 2^32 in 32 bits: every limit is met on its own.
    yield pool("window_area_2e32", (1, 1, 1, 1), (1, 1, 1, 1), KernelH=65536, KernelW=65536, PadTop=32768,
               PadBottom=32767, PadLeft=32768, PadRight=32767)
    yield pool("window_area_2e32_count_exclude", (1, 1, 1, 1), (1, 1, 1, 1), KernelH=65536, KernelW=65536,
               PadTop=32768, PadBottom=32767, PadLeft=32768, PadRight=32767, CountIncludePad=False)
    # ih + pads and (oh - 1) * stride near 2^31 (a column of 2^31 - 1 rows).
    yield pool("height_2e31m1_padded", (1, 1, I32_MAX, 1), (1, 1, I32_MAX, 1), KernelH=2, KernelW=1, PadTop=1)
    yield pool("height_2e31m1_ceil", (1, 1, I32_MAX, 1), (1, 1, 2, 1), KernelH=1, KernelW=1,
               StrideH=65536 * 16384)
    yield pool("planes_2e31", (65536, 32768, 1, 1), (65536, 32768, 1, 1), KernelH=1, KernelW=1)
    yield pool("rank3", (2, 5, 5), (2, 4, 4))
    yield pool("output_channels_differ", x, (1, 3, 4, 4))


def global_avg_pool_cases():
    yield "rank2_out", one("GLOBAL_AVG_POOL", [(1, 3, 4, 4)], (1, 3))
    yield "rank3_out", one("GLOBAL_AVG_POOL", [(1, 3, 4, 4)], (1, 3, 1))
    yield "out_mismatch", one("GLOBAL_AVG_POOL", [(1, 3, 4, 4)], (1, 4, 1, 1))
    yield "rank3_in", one("GLOBAL_AVG_POOL", [(3, 4, 4)], (3, 1, 1))
    yield "planes_2e31", one("GLOBAL_AVG_POOL", [(65536, 32768, 1, 1)], (65536, 32768))


def concat_cases():
    def repeated(name, count, chunk, extra, out_axis, axis=1):
        """`count` copies of one input [1, chunk] plus one [1, extra]: the output size summed in 32
        bits is out_axis (what the file declares)."""
        m = Slite()
        x = m.input((1, chunk) if axis == 1 else (chunk, 1))
        e = m.input((1, extra) if axis == 1 else (extra, 1))
        y = m.tensor((1, out_axis) if axis == 1 else (out_axis, 1))
        m.op("CONCAT", [x] * count + [e], [y], dict(Axis=axis))
        m.outputs = [y]
        return name, m

    yield repeated("sum_wraps_to_1", 65536, 65536, 1, 1)
    yield repeated("sum_wraps_to_2", 65536, 65536, 2, 2)
    yield repeated("sum_wraps_to_1_axis0", 65536, 65536, 1, 1, axis=0)
    yield repeated("sum_2e31_negative", 32768, 65536, 1, 1)
    yield repeated("sum_wraps_twice", 131072, 65536, 3, 3)
    yield "two_halves_2e31", one("CONCAT", [(1, 1 << 30), (1, 1 << 30)], (1, 1), dict(Axis=1))
    for axis in (I32_MIN, -3, 2, I32_MAX):
        yield f"axis{axis}", one("CONCAT", [(2, 3), (2, 3)], (4, 3), dict(Axis=axis))
    yield "axis_minus2", one("CONCAT", [(2, 3), (2, 3)], (4, 3), dict(Axis=-2))
    yield "rank0", one("CONCAT", [(), ()], (2,), dict(Axis=0))
    yield "ranks_differ", one("CONCAT", [(2, 3), (2, 3, 1)], (4, 3), dict(Axis=0))
    yield "other_dim_differs", one("CONCAT", [(2, 3), (2, 4)], (4, 3), dict(Axis=0))
    yield "int32_inputs", one("CONCAT", [(2, 3), (2, 3)], (4, 3), dict(Axis=0), dtype="int32", out_dtype="int32")
    m = one("CONCAT", [(2, 3)], (4, 3), dict(Axis=0))
    m.ops[0]["inputs"] = [0, -1]
    yield "absent_second_input", m
    m = one("CONCAT", [(2, 3)], (2, 3), dict(Axis=0))
    yield "single_input", m


def pad_cases():
    def pad(name, xs, pads, out, value=0.0):
        return name, one("PAD", [xs], out, dict(Pads=pads, Value=value))

    for v in BIG:
        yield pad(f"pad{v}", (2, 3), [v, 0, 0, 0], (dim(2 + v), 3))
    yield pad("count_short", (2, 3), [1, 1, 1], (4, 4))
    yield pad("count_long", (2, 3), [0] * 5, (2, 3))
    yield pad("rank0_no_pads", (), [], ())
    yield pad("rank0_with_pads", (), [1, 1], (3,))
    yield pad("rank8", (1,) * 8, [1] * 16, (3,) * 8)
    yield pad("dim_2e31m1_plus_1", (I32_MAX,), [1, 0], (1,))
    yield pad("dim_2e31m1_plus_65536", (I32_MAX,), [65536, 65536], (dim(I32_MAX + 131072),))
    yield pad("value_nan", (2, 3), [1, 1, 1, 1], (4, 5), value=float("nan"))
    yield "pads_absent", one("PAD", [(2, 3)], (2, 3), dict(Value=1.0))


def reshape_cases():
    yield "count_differs", one("RESHAPE", [(2, 3)], (7,))
    yield "dtype_differs", one("RESHAPE", [(2, 3)], (6,), out_dtype="int32")
    yield "rank0_to_rank8", one("RESHAPE", [()], (1,) * 8)
    yield "int64", one("RESHAPE", [(2, 3)], (3, 2), dtype="int64", out_dtype="int64")
    yield "sparse_input", one("RESHAPE", [], (32,), consts=[lambda m: m.sparse((8, 4), [0, 1], [2], r=8)])
    yield "uint16_const", one("RESHAPE", [], (4,), consts=[np.arange(4, dtype=np.uint16)], out_dtype="uint16")


def softmax_cases():
    for axis in (I32_MIN, -3, 2, I32_MAX, -2):
        yield f"axis{axis}", one("SOFTMAX", [(2, 3)], (2, 3), dict(Axis=axis))
    yield "rank0", one("SOFTMAX", [()], ())
    for scale in (0.0, -1.0, float("nan"), float("inf")):
        yield f"scale{scale}", one("SOFTMAX", [(2, 3)], (2, 3), dict(Scale=scale))
        yield f"scale{scale}_axis0", one("SOFTMAX", [(2, 3)], (2, 3), dict(Axis=0, Scale=scale))
    yield "mask_rank0", one("SOFTMAX", [(2, 3)], (2, 3), consts=[np.float32(0).reshape(())])
    yield "mask_rank0_input", one("SOFTMAX", [(2, 3), ()], (2, 3))
    yield "mask_rank_higher", one("SOFTMAX", [(2, 3)], (2, 3), consts=[f32(1, 2, 3)])
    yield "mask_last_differs", one("SOFTMAX", [(2, 3)], (2, 3), consts=[f32(2, 4)])
    yield "mask_no_broadcast", one("SOFTMAX", [(2, 2, 3)], (2, 2, 3), consts=[f32(3, 1, 3)])
    yield "mask_int32", one("SOFTMAX", [(2, 3)], (2, 3), consts=[np.zeros(3, np.int32)])
    yield "mask_on_axis0", one("SOFTMAX", [(2, 3)], (2, 3), dict(Axis=0), consts=[f32(3)])
    yield "mask_nan", one("SOFTMAX", [(2, 3)], (2, 3), consts=[np.array([np.nan, -np.inf, np.inf], np.float32)])
    yield "rank8_axis0", one("SOFTMAX", [(2,) * 8], (2,) * 8, dict(Axis=0))


def layer_norm_cases():
    for eps in (0.0, -0.0, -1.0, float("nan"), float("inf"), 1e-45):
        yield f"epsilon{eps}", one("LAYER_NORM", [(2, 3)], (2, 3), dict(Epsilon=eps))
    yield "rank0", one("LAYER_NORM", [()], ())
    yield "gamma_shape", one("LAYER_NORM", [(2, 3)], (2, 3), consts=[f32(4)])
    yield "gamma_rank0", one("LAYER_NORM", [(2, 3)], (2, 3), consts=[np.float32(1).reshape(())])
    yield "gamma_not_constant", one("LAYER_NORM", [(2, 3), (3,)], (2, 3))
    yield "beta_without_gamma", one("LAYER_NORM", [(2, 3)], (2, 3), consts=[None, f32(3)])
    yield "beta_shape", one("LAYER_NORM", [(2, 3)], (2, 3), consts=[f32(3), f32(2)])
    for axis in BIG + [2, -2]:
        yield f"axis{axis}", one("LAYER_NORM", [(2, 3, 4, 5)], (2, 3, 4, 5), dict(Axis=axis))
    yield "axis1_rank1", one("LAYER_NORM", [(3,)], (3,), dict(Axis=1))
    yield "axis1_batch0", one("LAYER_NORM", [(0, 3, 4)], (0, 3, 4), dict(Axis=1))
    yield "axis1_channels0", one("LAYER_NORM", [(2, 0, 4)], (2, 0, 4), dict(Axis=1))
    yield "axis1_gamma_of_last", one("LAYER_NORM", [(2, 3, 4, 5)], (2, 3, 4, 5), dict(Axis=1), consts=[f32(5)])
    yield "axis1_channels_2e31m1", one("LAYER_NORM", [(1, I32_MAX, 1)], (1, I32_MAX, 1), dict(Axis=1))
    yield "axis1_pixels_2e31m1", one("LAYER_NORM", [(1, 1, I32_MAX)], (1, 1, I32_MAX), dict(Axis=1))


def matmul_cases():
    yield "rank1", one("MATMUL", [(3,), (3,)], (1,))
    yield "k_differs", one("MATMUL", [(2, 3), (4, 5)], (2, 5))
    yield "batch_differs", one("MATMUL", [(2, 2, 3), (3, 3, 5)], (2, 2, 5))
    yield "rank8_batches", one("MATMUL", [(2,) * 8, (2,) * 8], (2,) * 8)
    yield "b_rank3_a_rank2", one("MATMUL", [(2, 3), (1, 3, 5)], (2, 5))
    yield "output_rank_differs", one("MATMUL", [(2, 3), (3, 5)], (1, 2, 5))
    yield "pack_2e28", one("MATMUL", [(1, 1 << 28), (1 << 28, 1)], (1, 1))
    yield "k_65536_m_32768", one("MATMUL", [(32768, 65536), (65536, 1)], (32768, 1))
    yield "int32", one("MATMUL", [(2, 3), (3, 5)], (2, 5), dtype="int32", out_dtype="int32")


def transpose_cases():
    for name, perm in [("duplicate", [0, 0]), ("negative", [-1, 0]), ("out_of_range", [2, 0]),
                       ("int_min", [I32_MIN, 0]), ("int_max", [I32_MAX, 0]), ("short", [0]), ("long", [1, 0, 2])]:
        yield name, one("TRANSPOSE", [(2, 3)], (3, 2), dict(Perm=perm))
    yield "absent", one("TRANSPOSE", [(2, 3)], (3, 2), {})
    yield "rank0", one("TRANSPOSE", [()], (), dict(Perm=[]))
    yield "rank8_reverse", one("TRANSPOSE", [tuple(range(1, 9))], tuple(range(8, 0, -1)), dict(Perm=list(range(7, -1, -1))))
    yield "output_shape_wrong", one("TRANSPOSE", [(2, 3)], (2, 3), dict(Perm=[1, 0]))


def gather_cases():
    ids = lambda *v: np.array(v, np.int32)
    yield "table_rank0", one("GATHER", [()], (1,), consts=[ids(0)])
    yield "ids_float", one("GATHER", [(4, 3)], (2, 3), consts=[np.zeros(2, np.float32)])
    yield "ids_uint16", one("GATHER", [(4, 3)], (2, 3), consts=[np.zeros(2, np.uint16)])
    yield "out_rank9", one("GATHER", [(4,) + (1,) * 7], (1,) * 8, consts=[np.zeros((1, 1), np.int32)])
    for v in (-1, I32_MIN, I32_MAX, 4):
        yield f"id{v}", one("GATHER", [(4, 3)], (1, 3), consts=[ids(v)])
    yield "id_int64_extremes", one("GATHER", [(4, 3)], (3, 3),
                                   consts=[np.array([-2**63, 2**63 - 1, 1 << 32], np.int64)])
    yield "table_sparse", one("GATHER", [], (1, 4), consts=[lambda m: m.sparse((8, 4), [0, 1], [2], r=8), ids(0)])
    yield "table_2e31_rows", one("GATHER", [(I32_MAX, 1), (1,)], (1, 1), dtype="float32")


def cast_cases():
    yield "to_uint16", one("CAST", [(3,)], (3,), out_dtype="uint16")
    yield "from_uint32", one("CAST", [(3,)], (3,), dtype="uint32")
    yield "shape_differs", one("CAST", [(3,)], (4,), out_dtype="int32")
    yield "sparse", one("CAST", [], (8, 4), consts=[lambda m: m.sparse((8, 4), [0, 1], [2], r=8)], out_dtype="int32")
    extremes = np.array([np.nan, np.inf, -np.inf, 3e38, -3e38, 2**31, -2**31 - 256, 2**63], np.float32)
    yield "float_extremes_to_int32", one("CAST", [], (8,), consts=[extremes], out_dtype="int32")
    yield "float_extremes_to_int64", one("CAST", [], (8,), consts=[extremes], out_dtype="int64")
    yield "int64_extremes_to_int32", one("CAST", [], (3,), consts=[np.array([-2**63, 2**63 - 1, 2**31], np.int64)],
                                         out_dtype="int32")


def mean_pool_cases():
    yield "rank2", one("MEAN_POOL", [(2, 3)], (2,))
    yield "mask_shape", one("MEAN_POOL", [(2, 3, 4), (3, 2)], (2, 4))
    yield "mask_rank0", one("MEAN_POOL", [(2, 3, 4), ()], (2, 4))
    yield "mask_uint16", one("MEAN_POOL", [(2, 3, 4)], (2, 4), consts=[np.ones((2, 3), np.uint16)])
    yield "mask_nan", one("MEAN_POOL", [(1, 3, 4)], (1, 4), consts=[np.array([[np.nan, np.inf, -1]], np.float32)])
    yield "mask_int64_extremes", one("MEAN_POOL", [(1, 3, 4)], (1, 4),
                                     consts=[np.array([[-2**63, 2**63 - 1, 0]], np.int64)])
    yield "tokens_2e31", one("MEAN_POOL", [(1, 65536, 32768)], (1, 32768))


def l2_normalize_cases():
    for eps in (-1.0, float("nan"), float("inf"), 0.0):
        yield f"epsilon{eps}", one("L2_NORMALIZE", [(2, 3)], (2, 3), dict(Epsilon=eps))
    yield "rank0", one("L2_NORMALIZE", [()], ())
    yield "shape_differs", one("L2_NORMALIZE", [(2, 3)], (3, 2))


def resize_bilinear_cases():
    for align, half in [(0, 0), (1, 0), (0, 1), (1, 1)]:
        yield f"out_65536_align{align}_half{half}", one("RESIZE_BILINEAR", [(1, 1, 1, 2)], (1, 1, 1, 65536),
                                                         dict(AlignCorners=bool(align), HalfPixelCenters=bool(half)))
        yield f"in_65536_out1_align{align}_half{half}", one("RESIZE_BILINEAR", [(1, 1, 65536, 1)], (1, 1, 1, 1),
                                                             dict(AlignCorners=bool(align),
                                                                  HalfPixelCenters=bool(half)))
    yield "out_2e31", one("RESIZE_BILINEAR", [(1, 1, 1, 1)], (1, 1, 32768, 65536))
    yield "out_rows_2e31m1", one("RESIZE_BILINEAR", [(1, 1, 2, 1)], (1, 1, I32_MAX, 1))
    yield "batch_differs", one("RESIZE_BILINEAR", [(1, 1, 2, 2)], (2, 1, 4, 4))
    yield "rank3", one("RESIZE_BILINEAR", [(1, 2, 2)], (1, 4, 4))


def resize_nearest_cases():
    modes = [(c, n) for c in range(7) for n in range(4)]
    for c, n in modes[::3]:
        yield f"out_65536_coord{c}_nearest{n}", one("RESIZE_NEAREST", [(1, 1, 1, 2)], (1, 1, 1, 65536),
                                                      dict(Coordinates=c, NearestMode=n))
    for scale in (1e-38, 1e-45, 3e38, float("nan"), float("inf"), -1.0):   # coordinates past int32, NaN
        for c in (2, 3, 5, 6):
            yield f"scale{scale}_coord{c}", one("RESIZE_NEAREST", [(1, 1, 3, 5)], (1, 1, 7, 4),
                                                dict(Coordinates=c, ScaleH=scale, ScaleW=scale))
    yield "coordinates_past_enum", one("RESIZE_NEAREST", [(1, 1, 2, 2)], (1, 1, 4, 4), dict(Coordinates=200))
    yield "nearest_mode_past_enum", one("RESIZE_NEAREST", [(1, 1, 2, 2)], (1, 1, 4, 4), dict(NearestMode=4))
    yield "bilinear_torch_nearest", one("RESIZE_BILINEAR", [(1, 1, 2, 2)], (1, 1, 4, 4), dict(Coordinates=5))
    yield "out_2e31", one("RESIZE_NEAREST", [(1, 1, 1, 1)], (1, 1, 32768, 65536))
    yield "out_rows_2e31m1", one("RESIZE_NEAREST", [(1, 1, 2, 1)], (1, 1, I32_MAX, 1), dict(Coordinates=5))
    yield "batch_differs", one("RESIZE_NEAREST", [(1, 1, 2, 2)], (2, 1, 4, 4))


def reduce_cases():
    """Axes past the rank, repeated (also as -1 and rank - 1), more axes than dimensions, kinds past
    the enum, outputs that do not match keep_dims, and the products of huge reduced dimensions."""
    for axes in ([4], [-5], [I32_MAX], [I32_MIN], [1, 1], [3, -1], [0, 1, 2, 3, 0], list(range(9))):
        yield f"axes{axes}", one("REDUCE", [(2, 3, 4, 5)], (2, 3, 4, 5), dict(Axes=axes))
    yield "kind_past_enum", one("REDUCE", [(2, 3)], (2,), dict(Kind=4, Axes=[1]))
    yield "keep_dims_output_squeezed", one("REDUCE", [(2, 3)], (2,), dict(Kind=2, Axes=[1], KeepDims=True))
    yield "output_kept_without_keep_dims", one("REDUCE", [(2, 3)], (2, 1), dict(Axes=[1]))
    yield "rank0_axis0", one("REDUCE", [()], (), dict(Axes=[0]))
    yield "axes_absent_rank0", one("REDUCE", [()], ())
    for kind in range(4):   # 2^31 elements into one output, and along a run of 2^31 - 1
        yield f"kind{kind}_all_2e31", one("REDUCE", [(32768, 65536)], (), dict(Kind=kind, Axes=[0, 1]))
        yield f"kind{kind}_outer_2e31m1", one("REDUCE", [(I32_MAX, 1)], (1,), dict(Kind=kind, Axes=[0]))


def depth_to_space_cases():
    for b in BIG + [46341, 3, 1 << 15, (1 << 16) - 1]:
        # The output as 32-bit arithmetic computes it: b*b wraps, and so do H*b and W*b.
        c, h, w = 4, 4, 4
        bb = i32(b * b)
        oc = c // bb if bb > 0 and c % bb == 0 else 1
        out = (1, oc, dim(h * b), dim(w * b))
        if np.prod(out, dtype=np.int64) > 1 << 31:   # past the verifier's limit: prepare would never see it
            out = (1, oc, 1, 1)
        yield f"block{b}", one("DEPTH_TO_SPACE", [(1, c, h, w)], out, dict(BlockSize=b))
    yield "block_2e30p2_channels16", one("DEPTH_TO_SPACE", [(1, 16, 2, 2)], (1, 4, 4, 4),
                                         dict(BlockSize=(1 << 30) + 2))
    yield "channels_not_divisible", one("DEPTH_TO_SPACE", [(1, 6, 2, 2)], (1, 1, 4, 4), dict(BlockSize=2))
    yield "rank3", one("DEPTH_TO_SPACE", [(4, 2, 2)], (1, 4, 4), dict(BlockSize=2))
    yield "absent_options", one("DEPTH_TO_SPACE", [(1, 4, 2, 2)], (1, 1, 4, 4))


def slice_cases():
    def sl(name, xs, begin, step, out, **kw):
        return name, one("SLICE", [xs], out, dict(Begin=begin, Step=step), **kw)

    for v in BIG:   # as a begin, and as a step from 0 over three elements
        yield sl(f"begin{v}", (4, 5), [0, v], [1, 1], (4, 1))
        yield sl(f"step{v}", (4, 5), [0, 0], [1, v], (4, 3))
    # The last index b + (n - 1) * s past the input only outside 32 bits (wrapped, it is inside).
    yield sl("last_wraps_to_1", (1, I32_MAX), [0, 1], [1, 1 << 30], (1, 5))
    yield sl("last_wraps_negative", (1, I32_MAX), [0, 1], [1, I32_MAX], (1, 2))
    yield sl("step_int_min_back", (1, I32_MAX), [0, I32_MAX - 1], [1, I32_MIN], (1, 2))
    yield sl("count_2e31m1_step2", (1, I32_MAX), [0, 0], [1, 2], (1, I32_MAX))
    yield sl("backwards_past_0", (4, 5), [3, 0], [-2, 1], (3, 5))
    yield sl("count_short", (4, 5), [0], [1], (4, 5))
    yield sl("count_long", (4, 5), [0, 0, 0], [1, 1, 1], (4, 5))
    yield sl("steps_short", (4, 5), [0, 0], [1], (4, 5))
    yield "options_absent", one("SLICE", [(4, 5)], (4, 5))
    yield sl("rank0", (), [], [], ())
    yield sl("rank8_reversed", (2,) * 8, [1] * 8, [-1] * 8, (2,) * 8)
    yield sl("rank_differs", (4, 5), [0, 0], [1, 1], (20,))
    yield sl("dtype_differs", (4, 5), [0, 0], [1, 1], (4, 5), out_dtype="int32")
    yield sl("int64", (4, 5), [3, 4], [-1, -2], (4, 3), dtype="int64", out_dtype="int64")
    yield sl("uint16", (4, 5), [0, 1], [3, 3], (2, 2), dtype="uint16", out_dtype="uint16")
    yield "sparse_input", one("SLICE", [], (8, 2), dict(Begin=[0, 1], Step=[1, 2]),
                              consts=[lambda m: m.sparse((8, 4), [0, 1], [2], r=8)])
    yield "uint32_const", one("SLICE", [], (2,), dict(Begin=[3], Step=[-2]),
                              consts=[np.arange(4, dtype=np.uint32)], out_dtype="uint32")


def cumsum_cases():
    for a in (2, -3, I32_MAX, I32_MIN):
        yield f"axis{a}", one("CUMSUM", [(2, 3)], (2, 3), dict(Axis=a))
    yield "rank0", one("CUMSUM", [()], (), dict(Axis=0))
    yield "uint16", one("CUMSUM", [(2, 3)], (2, 3), dict(Axis=0), dtype="uint16", out_dtype="uint16")
    yield "bool", one("CUMSUM", [(2, 3)], (2, 3), dict(Axis=0), dtype="bool", out_dtype="bool")
    yield "dtype_differs", one("CUMSUM", [(2, 3)], (2, 3), dict(Axis=0), dtype="int32", out_dtype="int64")
    yield "shape_differs", one("CUMSUM", [(2, 3)], (3, 2), dict(Axis=0))
    yield "sparse", one("CUMSUM", [], (8, 4), dict(Axis=1), consts=[lambda m: m.sparse((8, 4), [0, 1], [2], r=8)])
    for dtype, info in (("int32", np.iinfo(np.int32)), ("int64", np.iinfo(np.int64))):   # sums that wrap
        v = np.array([info.max, 1, info.max, info.min, -1, info.min], dtype)
        for excl, rev in ((False, False), (True, True)):
            yield f"{dtype}_wraps_{excl}_{rev}", one("CUMSUM", [], (6,), dict(Axis=0, Exclusive=excl, Reverse=rev),
                                                  consts=[v], out_dtype=dtype)
    yield "axis_2e31m1", one("CUMSUM", [(1, I32_MAX)], (1, I32_MAX), dict(Axis=1))
    yield "inner_2e31m1", one("CUMSUM", [(1, I32_MAX)], (1, I32_MAX), dict(Axis=0))


def expand_cases():
    yield "no_broadcast", one("EXPAND", [(3,)], (4,))
    yield "input_rank_greater", one("EXPAND", [(2, 3)], (3,))
    yield "dtype_differs", one("EXPAND", [(3,)], (2, 3), out_dtype="int32")
    yield "to_2e31", one("EXPAND", [(1,)], (32768, 65536))
    yield "to_2e31m1_int64", one("EXPAND", [], (1, I32_MAX), consts=[np.array(7, np.int64)], out_dtype="int64")
    yield "rank8", one("EXPAND", [(1, 2) * 4], (2,) * 8)
    yield "rank0_to_rank0", one("EXPAND", [()], ())
    yield "bool_const", one("EXPAND", [], (3, 2), consts=[np.array([True, False])], out_dtype="bool")
    yield "uint16_inner_fill", one("EXPAND", [], (3, 70000), consts=[np.arange(3, dtype=np.uint16).reshape(3, 1)],
                                   out_dtype="uint16")
    yield "sparse", one("EXPAND", [], (2, 8, 4), consts=[lambda m: m.sparse((8, 4), [0, 1], [2], r=8)])


def gather_elements_cases():
    def ge(name, xs, idx, out, axis=1, **kw):
        return name, one("GATHER_ELEMENTS", [xs], out, dict(Axis=axis), consts=[idx], **kw)

    for a in (2, -3, I32_MAX, I32_MIN):
        yield ge(f"axis{a}", (2, 4), np.zeros((2, 4), np.int32), (2, 4), axis=a)
    yield ge("index_int32_extremes", (2, 4), np.array([[I32_MIN, I32_MAX, -1, 4], [-4, -5, 3, 0]], np.int32), (2, 4))
    yield ge("index_int64_extremes", (2, 4), np.array([[-2**63, 2**63 - 1], [1 << 32, -(1 << 32)]], np.int64), (2, 2))
    yield ge("index_float", (2, 4), np.zeros((2, 4), np.float32), (2, 4))
    yield ge("index_uint32", (2, 4), np.zeros((2, 4), np.uint32), (2, 4))
    yield ge("index_rank_differs", (2, 4), np.zeros(8, np.int32), (8,))
    yield ge("index_wider_than_data", (2, 4), np.zeros((3, 4), np.int32), (3, 4), axis=1)
    yield ge("index_longer_along_axis", (2, 4), np.full((2, 9), 3, np.int32), (2, 9), axis=1)
    yield ge("output_shape_differs", (2, 4), np.zeros((2, 3), np.int32), (2, 4))
    yield ge("output_dtype_differs", (2, 4), np.zeros((2, 3), np.int32), (2, 3), out_dtype="int32")
    yield ge("rank0", (), np.zeros((), np.int32), (), axis=0)
    yield ge("data_2e31m1_along_axis", (1, I32_MAX), np.array([[I32_MAX - 1, -1]], np.int32), (1, 2))
    yield "data_bool_const", one("GATHER_ELEMENTS", [], (2, 2), dict(Axis=0), out_dtype="bool",
                                 consts=[np.array([[True, False], [False, True]]), np.array([[1, -1], [2, 0]], np.int64)])
    yield "data_sparse", one("GATHER_ELEMENTS", [], (8, 4), dict(Axis=1), consts=[
        lambda m: m.sparse((8, 4), [0, 1], [2], r=8), np.zeros((8, 4), np.int32)])


def group_norm_cases():
    for g in BIG + [4]:
        yield f"groups{g}", one("GROUP_NORM", [(2, 6, 3)], (2, 6, 3), dict(Groups=g))
    for eps in (0.0, -0.0, -1.0, float("nan"), float("inf"), 1e-45):
        yield f"epsilon{eps}", one("GROUP_NORM", [(2, 6, 3)], (2, 6, 3), dict(Groups=2, Epsilon=eps))
    yield "rank1", one("GROUP_NORM", [(6,)], (6,), dict(Groups=1))
    yield "int32", one("GROUP_NORM", [(2, 6)], (2, 6), dict(Groups=1), dtype="int32", out_dtype="int32")
    yield "gamma_shape", one("GROUP_NORM", [(2, 6, 3)], (2, 6, 3), dict(Groups=2), consts=[f32(3)])
    yield "gamma_not_constant", one("GROUP_NORM", [(2, 6, 3), (6,)], (2, 6, 3), dict(Groups=2))
    yield "beta_without_gamma", one("GROUP_NORM", [(2, 6, 3)], (2, 6, 3), dict(Groups=2), consts=[None, f32(6)])
    yield "beta_shape", one("GROUP_NORM", [(2, 6, 3)], (2, 6, 3), dict(Groups=2), consts=[f32(6), f32(6, 1)])
    yield "channels_2e31m1", one("GROUP_NORM", [(1, I32_MAX)], (1, I32_MAX), dict(Groups=I32_MAX))
    yield "constant_nan_inf", one("GROUP_NORM", [], (1, 2, 3), dict(Groups=1),
                                  consts=[np.array([[[np.nan, 1, 2], [np.inf, -np.inf, 0]]], np.float32)])
    yield "constant_same_values", one("GROUP_NORM", [], (1, 2, 3), dict(Groups=2, Epsilon=1e-45),
                                      consts=[np.full((1, 2, 3), 3e38, np.float32)])


def landmarks_to_transform_matrix_cases():
    def l2t(name, xs=(1, 6, 3), out=(1, 4, 4), **o):
        fields = dict(LeftIndex=0, RightIndex=1, Subset=[0, 1, 2], OutputHeight=8, OutputWidth=8, ScaleX=1.0,
                      ScaleY=1.0, TargetRotation=0.0)
        fields.update(o)
        return name, one("LANDMARKS_TO_TRANSFORM_MATRIX", [xs], out, fields)

    for v in BIG:
        yield l2t(f"left{v}", LeftIndex=v)
        yield l2t(f"subset_index{v}", Subset=[0, v])
        yield l2t(f"output_height{v}", OutputHeight=v)
    for scale in (0.0, -1.0, float("nan"), float("inf")):
        yield l2t(f"scale{scale}", ScaleX=scale)
    yield l2t("rotation_nan", TargetRotation=float("nan"))
    yield l2t("subset_empty", Subset=[])
    yield l2t("one_value_per_landmark", xs=(1, 6, 1))
    yield l2t("output_shape", out=(1, 3, 4))
    yield l2t("batch_differs", out=(2, 4, 4))
    yield "options_absent", one("LANDMARKS_TO_TRANSFORM_MATRIX", [(1, 6, 3)], (1, 4, 4))
    yield l2t("landmarks_2e31m1", xs=(1, I32_MAX, 2), Subset=[0, I32_MAX - 1])


def transform_tensor_bilinear_cases():
    def ttb(name, xs=(1, 2, 5, 5), ms=(1, 4, 4), out=(1, 2, 3, 3), **kw):
        return name, one("TRANSFORM_TENSOR_BILINEAR", [xs, ms], out, **kw)

    yield ttb("ok")
    yield ttb("matrix_shape", ms=(1, 3, 4))
    yield ttb("matrix_batch", ms=(2, 4, 4))
    yield ttb("channels_differ", out=(1, 3, 3, 3))
    yield ttb("rank3", xs=(2, 5, 5), out=(2, 3, 3))
    yield ttb("int32", dtype="int32", out_dtype="int32")
    yield ttb("out_2e31m1_wide", out=(1, 1, 1, I32_MAX))
    yield ttb("in_2e31m1_wide", xs=(1, 1, 1, I32_MAX))
    yield "matrix_constant_nan", one("TRANSFORM_TENSOR_BILINEAR", [(1, 2, 5, 5)], (1, 2, 3, 3),
                                     consts=[np.full((1, 4, 4), np.nan, np.float32)])
    yield "matrix_constant_huge", one("TRANSFORM_TENSOR_BILINEAR", [(1, 2, 5, 5)], (1, 2, 3, 3),
                                      consts=[np.full((1, 4, 4), 3e38, np.float32)])


def transform_landmarks_cases():
    def tl(name, xs=(1, 6, 3), ms=(1, 4, 4), out=(1, 6, 3), **kw):
        return name, one("TRANSFORM_LANDMARKS", [xs, ms], out, **kw)

    yield tl("ok")
    yield tl("four_values", xs=(1, 6, 4), out=(1, 6, 4))
    yield tl("one_value", xs=(1, 6, 1), out=(1, 6, 1))
    yield tl("matrix_shape", ms=(1, 4, 3))
    yield tl("output_shape", out=(1, 5, 3))
    yield tl("rank2", xs=(6, 3), out=(6, 3))
    yield tl("landmarks_2e31m1", xs=(1, I32_MAX, 2), out=(1, I32_MAX, 2))
    yield "matrix_constant_inf", one("TRANSFORM_LANDMARKS", [(1, 6, 3)], (1, 6, 3),
                                     consts=[np.full((1, 4, 4), np.inf, np.float32)])


PER_OP = {
    "CONV2D": conv2d_cases, "CONV_TRANSPOSE2D": conv_transpose2d_cases, "FULLY_CONNECTED": fully_connected_cases,
    "ACTIVATION": activation_cases,
    "MAX_POOL2D": lambda: pool_cases("MAX_POOL2D"), "AVG_POOL2D": lambda: pool_cases("AVG_POOL2D"),
    "GLOBAL_AVG_POOL": global_avg_pool_cases, "CONCAT": concat_cases, "PAD": pad_cases, "RESHAPE": reshape_cases,
    "SOFTMAX": softmax_cases, "LAYER_NORM": layer_norm_cases, "MATMUL": matmul_cases,
    "TRANSPOSE": transpose_cases, "GATHER": gather_cases, "CAST": cast_cases, "MEAN_POOL": mean_pool_cases,
    "L2_NORMALIZE": l2_normalize_cases, "RESIZE_BILINEAR": resize_bilinear_cases,
    "DEPTH_TO_SPACE": depth_to_space_cases, "RESIZE_NEAREST": resize_nearest_cases, "REDUCE": reduce_cases,
    "SLICE": slice_cases, "COMPARE": compare_cases, "LOGICAL": logical_cases, "WHERE": where_cases,
    "CUMSUM": cumsum_cases, "EXPAND": expand_cases, "GATHER_ELEMENTS": gather_elements_cases,
    "GROUP_NORM": group_norm_cases, "LANDMARKS_TO_TRANSFORM_MATRIX": landmarks_to_transform_matrix_cases,
    "TRANSFORM_TENSOR_BILINEAR": transform_tensor_bilinear_cases, "TRANSFORM_LANDMARKS": transform_landmarks_cases,
    **{op: (lambda op=op: binary_cases(op)) for op in BINARY},
}


# --- every op of the schema: ranks, huge tensors, inputs, options tags ----------------------------

SPATIAL = ("CONV2D", "MAX_POOL2D", "AVG_POOL2D", "GLOBAL_AVG_POOL", "RESIZE_BILINEAR", "DEPTH_TO_SPACE",
           "RESIZE_NEAREST", "CONV_TRANSPOSE2D")  # NCHW


def natural(op, shape, **kw):
    """op over an input of `shape` with inputs, constants and options that are valid for small
    shapes, so that only the size is hostile."""
    r = len(shape)
    ins, consts, out, opts = [shape], [], shape, None   # shape-preserving ops
    if op == "CONV2D":   # a 1x1 conv to one channel
        consts, out = [np.ones((1, shape[1] if r > 1 else 1, 1, 1), np.float32)], shape[:1] + (1,) + shape[2:]
    elif op == "CONV_TRANSPOSE2D":   # the same, its weights [IC][OC][1][1]
        consts, out = [np.ones((shape[1] if r > 1 else 1, 1, 1, 1), np.float32)], shape[:1] + (1,) + shape[2:]
    elif op == "FULLY_CONNECTED":
        consts, out = [zero_sparse((8, shape[-1] if r else 1), index_type="uint32")], shape[:-1] + (8,)
    elif op in BINARY:
        consts = [np.ones(1, np.float32)]
    elif op in ("MAX_POOL2D", "AVG_POOL2D"):
        opts = dict(KernelH=1, KernelW=1)
    elif op == "GLOBAL_AVG_POOL":
        out = shape[:2] + (1, 1)
    elif op == "CONCAT":
        opts = dict(Axis=0)
    elif op == "PAD":
        opts = dict(Pads=[0] * (2 * r))
    elif op == "TRANSPOSE":
        out, opts = shape[::-1], dict(Perm=list(range(r - 1, -1, -1)))
    elif op == "GATHER":
        consts, out = [np.zeros(1, np.int32)], (1,) + shape[1:]
    elif op == "MATMUL":
        ins, out = [shape, (shape[-1] if r else 1, 1)], shape[:-1] + (1,)
    elif op == "MEAN_POOL":
        out = (shape[0], shape[-1]) if r else ()
    elif op in ("RESIZE_BILINEAR", "RESIZE_NEAREST"):
        ins = [(1, 1, 1, 1)]
    elif op == "REDUCE":   # the sum over the first axis
        out, opts = shape[1:], dict(Kind=1, Axes=[0] if r else [])
    elif op == "DEPTH_TO_SPACE":
        ins, opts = [(shape[0], 4 * shape[1], shape[2] // 2, shape[3] // 2)], dict(BlockSize=2)
    elif op == "SLICE":   # all of it, backwards along the last axis
        opts = dict(Begin=[0] * (r - 1) + [shape[-1] - 1] if r else [], Step=[1] * (r - 1) + [-1] if r else [])
    elif op == "CUMSUM":   # along the last axis, from its end, each element left out
        opts = dict(Axis=r - 1 if r else 0, Exclusive=True, Reverse=True)
    elif op == "EXPAND":   # from ones
        ins = [(1,) * r]
    elif op == "GATHER_ELEMENTS":   # the last element, by an index of -1
        consts, out, opts = [np.full((1,) * r, -1, np.int32)], (1,) * r, dict(Axis=0)
    elif op == "GROUP_NORM":
        opts = dict(Groups=1)
    elif op in BOOL_IO:   # against a constant of one element (WHERE: its condition is the input)
        count, dtype, out_dtype = BOOL_IO[op]
        consts = [np.ones(1, dtype)] * (count - 1)
        return one(op, ins, out, opts, consts, dtype=dtype, out_dtype=out_dtype, **kw)
    return one(op, ins, out, opts, consts, **kw)


def every_op_cases(op):
    """The generic cases of one op: ranks 0..8, tensors at the element limit, input and output
    lists, options tags, versions."""
    for r in range(9):
        count, dtype, out_dtype = BOOL_IO.get(op, (2 if op in BINARY + ("MATMUL",) else 1, "float32", "float32"))
        yield f"rank{r}_all_ones", one(op, [(1,) * r] * count, (1,) * r, dtype=dtype, out_dtype=out_dtype)
        # An NCHW op's natural inputs need rank 4; below that, its input alone.
        yield f"rank{r}_natural", one(op, [(2,) * r], (2,) * r) if op in SPATIAL and r < 4 else natural(op, (2,) * r)
    # At the 2^31-element limit, a dimension of 2^31 - 1, and 46340^2 (just under).
    for name, shape in [("elems_2e31", (1, 1, 32768, 65536)), ("dim_2e31m1", (1, 1, I32_MAX, 1)),
                        ("elems_46340sq", (1, 1, 46340, 46340))]:
        shape = shape if op in SPATIAL else shape[1:] if op == "MEAN_POOL" else shape[2:]
        if not (op == "DEPTH_TO_SPACE" and shape[2] % 2):
            yield name, natural(op, shape)
    base = lambda: natural(op, (1, 4, 2, 2) if op in SPATIAL else (2, 3))
    y = base().outputs[0]
    other = ("PadOptions", dict(Pads=[0, 0])) if op != "PAD" else ("ConcatOptions", dict(Axis=0))
    edits = {
        "no_inputs": lambda o: o.update(inputs=[]),
        "four_extra_inputs": lambda o: o["inputs"].extend([0] * 4),
        "inputs_field_absent": lambda o: o.update(inputs=None),
        "two_outputs_same": lambda o: o.update(outputs=[y, y]),
        "no_outputs": lambda o: o.update(outputs=[]),
        "output_minus1": lambda o: o.update(outputs=[-1]),
        "output_is_graph_input": lambda o: o.update(outputs=[0]),
        "options_of_another_table": lambda o: o.update(options=other),
        "options_table_tag_none": lambda o: o.update(options=("SoftmaxOptions", dict(Axis=0)), options_tag=0),
        "options_tag200": lambda o: o.update(options=("ConcatOptions", dict(Axis=0)), options_tag=200),
        "options_tag_without_table": lambda o: o.update(options=None, options_tag=7),
        "options_absent": lambda o: o.update(options=None),
        **{f"version{v}": (lambda o, v=v: o.update(version=v)) for v in (0, 2, 0xFFFF)},
    }
    for k in range(len(base().ops[0]["inputs"])):
        edits[f"input{k}_absent"] = lambda o, k=k: o["inputs"].__setitem__(k, -1)
        edits[f"input{k}_minus2"] = lambda o, k=k: o["inputs"].__setitem__(k, -2)
    for name, edit in edits.items():
        m = base()
        edit(m.ops[0])
        yield name, m


# --- graph structure ----------------------------------------------------------------------------

def graph_cases():
    def act(m, x, y, **kw):
        return m.op("ACTIVATION", [x], [y], dict(Activation=1), **kw)

    m = Slite()
    x = m.input((2,))
    m.outputs = [x]
    yield "input_is_output_no_ops", m
    for name, idx in [("minus2", -2), ("past_end", 3), ("int_max", I32_MAX), ("int_min", I32_MIN)]:
        m = Slite()
        x, y = m.input((2,)), m.tensor((2,))
        act(m, x, y)
        m.outputs = [y]
        m.ops[0]["inputs"] = [idx]
        yield f"op_input_{name}", m
        m = Slite()
        x, y = m.input((2,)), m.tensor((2,))
        act(m, x, y)
        m.outputs = [y]
        m.inputs = [idx]
        yield f"graph_input_{name}", m
        m = Slite()
        x, y = m.input((2,)), m.tensor((2,))
        act(m, x, y)
        m.outputs = [idx]
        yield f"graph_output_{name}", m
    m = Slite()
    x, y = m.input((2,)), m.tensor((2,))
    act(m, y, y)
    m.outputs = [y]
    yield "op_reads_its_output", m
    m = Slite()
    x, y, z = m.input((2,)), m.tensor((2,)), m.tensor((2,))
    act(m, z, y)
    act(m, x, z)
    m.outputs = [y]
    yield "read_before_write", m
    m = Slite()
    x, y = m.input((2,)), m.tensor((2,))
    act(m, x, y)
    act(m, x, y)
    m.outputs = [y]
    yield "written_twice", m
    m = Slite()
    x, c = m.input((2,)), m.const(np.ones(2, np.float32))
    act(m, x, c)
    m.outputs = [c]
    yield "writes_constant", m
    m = Slite()
    x = m.input((2,))
    m.inputs = [x, x]
    m.outputs = [x]
    yield "input_listed_twice", m
    m = Slite()
    c = m.const(np.ones(2, np.float32))
    m.inputs, m.outputs = [c], [c]
    yield "input_is_constant", m
    m = Slite()
    c = m.const(np.ones(2, np.float32))
    m.outputs = [c]
    yield "output_is_constant", m
    m = Slite()
    x, y = m.input((2,)), m.tensor((2,))
    m.outputs = [y]
    yield "output_never_written", m
    m = Slite()
    x, y = m.input((2,)), m.tensor((2,))
    act(m, x, y)
    m.outputs = []
    yield "no_outputs", m
    m.outputs = None
    yield "outputs_absent", m
    m = Slite()
    x, y = m.input((2,)), m.tensor((2,))
    act(m, x, y)
    m.outputs, m.inputs = [y], None
    yield "inputs_absent", m
    m = Slite()
    y = m.tensor((2,))
    m.op("RESHAPE", [m.const(np.ones(2, np.float32))], [y])
    m.outputs, m.inputs = [y], []
    yield "no_inputs_constant_only", m
    m = Slite()
    x, y = m.input((2,)), m.tensor((2,))
    act(m, x, y)
    m.outputs = [y, y, x, x]
    yield "outputs_repeated", m
    m = Slite()
    x, y = m.input((2,)), m.tensor((2,))
    act(m, x, y)
    m.outputs = [y]
    m.ops[0]["type"] = len(OP_TYPES)   # one past the last
    yield f"op_type_{len(OP_TYPES)}", m
    m.ops[0]["type"] = 0xFFFF
    yield "op_type_65535", m
    for v in (0, 2, 99, 0xFFFFFFFF):
        m = Slite()
        x = m.input((2,))
        m.outputs = [x]
        m.format_version = v
        yield f"format_version{v}", m
    m.format_version = None
    yield "format_version_absent", m


# --- group-sparse structures --------------------------------------------------------------------

def sparse_cases():
    def fc(name, oc, k, row_ptr, cols, r=4, index_type="uint16", out_perm=None, values=None, rows=3):
        w = lambda m: m.sparse((oc, k), row_ptr, cols, values, r, index_type, out_perm)
        return name, one("FULLY_CONNECTED", [(rows, k)], (rows, oc), consts=[w])

    def conv(name, oc, k, row_ptr, cols, r=4, out_perm=None):
        w = lambda m: m.sparse((oc, k, 1, 1), row_ptr, cols, None, r, "uint16", out_perm)
        return name, one("CONV2D", [(1, k, 3, 3)], (1, oc, 3, 3), consts=[w])

    for make in (fc, conv):
        kind = make.__name__
        yield make(f"{kind}_duplicate_columns", 8, 16, [0, 3, 6], [5, 5, 5, 2, 2, 2])
        yield make(f"{kind}_unsorted_columns", 8, 16, [0, 3, 6], [9, 1, 4, 15, 0, 7])
        yield make(f"{kind}_one_column_k_times", 8, 16, [0, 16, 16], [3] * 16)
        yield make(f"{kind}_every_column_twice_r8", 8, 16, [0, 16], list(range(8)) * 2, r=8)
        yield make(f"{kind}_descending_full", 8, 16, [0, 16, 32], list(range(15, -1, -1)) * 2)
        yield make(f"{kind}_column_k", 8, 16, [0, 1, 1], [16])
        yield make(f"{kind}_row_ptr_decreasing", 8, 16, [0, 2, 1], [0, 1])
        yield make(f"{kind}_row_ptr_not_zero", 8, 16, [1, 2, 3], [0, 1])
        yield make(f"{kind}_row_ptr_past_columns", 8, 16, [0, 17, 17], list(range(16)) + [0])
        yield make(f"{kind}_row_ptr_huge", 8, 16, [0, 0xFFFFFFFF, 0xFFFFFFFF], [0])
        yield make(f"{kind}_r8_oc12", 12, 16, [0, 2, 4], [1, 3, 0, 15], r=8)
        yield make(f"{kind}_perm_ok", 8, 16, [0, 1, 2], [0, 1], out_perm=[7, 6, 5, 4, 3, 2, 1, 0])
        yield make(f"{kind}_perm_duplicate", 8, 16, [0, 1, 2], [0, 1], out_perm=[0] * 8)
        yield make(f"{kind}_perm_out_of_range", 8, 16, [0, 1, 2], [0, 1], out_perm=[8, 1, 2, 3, 4, 5, 6, 0xFFFFFFFF])
        yield make(f"{kind}_perm_short", 8, 16, [0, 1, 2], [0, 1], out_perm=[0, 1])
    yield fc("uint32_index_small_k", 8, 16, [0, 2, 2], [1, 0xFFFFFFFF], index_type="uint32")
    yield fc("uint16_column_65535_k65536", 4, 65536, [0, 1], [65535], rows=1)
    yield fc("uint16_k70000", 4, 70000, [0, 1], [65535], rows=1)
    for r in (0, 3, 16, 255):
        yield fc(f"group_size{r}", 8, 16, [0, 1, 2], [0, 1], r=r)
    yield fc("index_type_float32", 8, 16, [0, 1, 2], [0, 1], index_type="float32")
    yield fc("index_type_255", 8, 16, [0, 1, 2], [0, 1], index_type=255)
    yield fc("values_short", 8, 16, [0, 1, 2], [0, 1], values=np.ones(3, np.float32))
    yield fc("values_nan", 8, 16, [0, 1, 2], [0, 1], values=np.full(8, np.nan, np.float32))
    yield fc("row_ptr_buffer_short", 8, 16, [0, 1], [0])
    m = one("FULLY_CONNECTED", [(3, 16)], (3, 8), consts=[lambda m: m.sparse((8, 16), [0, 1, 2], [0, 1], r=4)])
    sp = m.tensors[1]["sparsity"]
    for field, v in [("row_ptr", 0), ("row_ptr", 99), ("col_idx", 0), ("col_idx", 0xFFFFFFFF), ("out_perm", 99)]:
        m.tensors[1]["sparsity"] = dict(sp, **{field: v})
        yield f"{field}_buffer{v}", m.build()
    m.tensors[1]["sparsity"] = sp
    m.tensors[1]["buffer"] = 0
    yield "no_values_buffer", m.build()
    m = one("FULLY_CONNECTED", [(3, 16)], (3, 8), consts=[lambda m: m.sparse((8, 16), [0, 1, 2], [0, 1], r=4)])
    m.tensors[1]["dtype"] = S.DType.INT32
    yield "int32_sparse", m.build()
    m.tensors[1]["dtype"], m.tensors[1]["shape"] = S.DType.FLOAT32, [128]
    yield "rank1_sparse", m.build()
    m.tensors[1]["shape"], m.tensors[1]["storage"] = [8, 16], S.DType.FLOAT16
    yield "fp16_values_count_of_fp32", m.build()
    m = Slite()
    x = m.input((3, 16), sparsity=dict(group_size=4, row_ptr=0, col_idx=0))
    m.outputs = [x]
    yield "sparse_graph_input", m


# --- dynamic dimensions -------------------------------------------------------------------------

def dynamic_cases():
    def dyn(name, op, shape, axes, out=None, options=None, consts=(), dims=(("seq", 6),), out_axes=None, **kw):
        m = Slite()
        m.dims = list(dims)
        x = m.input(shape, dynamic=axes)
        ins = [x] + [c(m) if callable(c) else m.const(c) for c in consts]
        y = m.tensor(out or shape, dynamic=out_axes or axes)
        m.op(op, ins, [y], options, **kw)
        m.outputs = [y]
        return name, m

    ax = [0, 1, 0]
    yield dyn("softmax_ok", "SOFTMAX", (2, 6, 5), ax)
    yield dyn("layer_norm", "LAYER_NORM", (2, 6, 5), ax)
    yield dyn("l2_normalize", "L2_NORMALIZE", (2, 6, 5), ax)
    yield dyn("activation", "ACTIVATION", (2, 6, 5), ax, options=dict(Activation=8))
    yield dyn("fc", "FULLY_CONNECTED", (2, 6, 5), ax, out=(2, 6, 3), consts=[f32(3, 5)])
    yield dyn("transpose", "TRANSPOSE", (2, 6, 5), ax, out=(6, 2, 5), options=dict(Perm=[1, 0, 2]),
              out_axes=[1, 0, 0])
    yield dyn("pad", "PAD", (2, 6, 5), ax, out=(2, 6, 7), options=dict(Pads=[0, 0, 1, 0, 0, 1]))
    yield dyn("pad_on_dynamic_axis", "PAD", (2, 6, 5), ax, out=(2, 8, 5), options=dict(Pads=[0, 1, 0, 0, 1, 0]))
    yield dyn("concat_on_dynamic_axis", "CONCAT", (2, 6, 5), ax, out=(2, 12, 5), options=dict(Axis=1))
    yield dyn("add_dynamic_constant", "ADD", (2, 6, 5), ax, consts=[lambda m: m.const(f32(1, 6, 5), dynamic=ax)])
    yield dyn("reshape_merges_dynamic", "RESHAPE", (2, 6, 5), ax, out=(12, 5), out_axes=[0, 0])
    yield dyn("cast", "CAST", (2, 6, 5), ax)
    yield dyn("slice_whole_dynamic_axis", "SLICE", (2, 6, 5), ax, out=(2, 6, 2),
              options=dict(Begin=[1, 0, 4], Step=[-1, 1, -3]))
    yield dyn("slice_first_of_dynamic_axis", "SLICE", (2, 6, 5), ax, out=(2, 1, 5),
              options=dict(Begin=[0, 0, 0], Step=[1, 5, 1]), out_axes=[0, 0, 0])
    yield dyn("slice_refuses_offset_on_dynamic_axis", "SLICE", (2, 6, 5), ax, out=(2, 5, 5),
              options=dict(Begin=[0, 1, 0], Step=[1, 1, 1]), out_axes=[0, 0, 0])
    yield dyn("slice_refuses_fixed_input_dynamic_output", "SLICE", (2, 6, 5), [0, 0, 0], out=(2, 6, 5),
              options=dict(Begin=[0, 0, 0], Step=[1, 1, 1]), out_axes=ax)
    yield dyn("conv_refuses", "CONV2D", (1, 2, 6, 6), [0, 0, 1, 0], consts=[f32(2, 2, 1, 1)])
    yield dyn("conv_dynamic_batch", "CONV2D", (3, 2, 6, 6), [1, 0, 0, 0], consts=[f32(2, 2, 3, 3)],
              out=(3, 2, 4, 4), dims=(("batch", 3),))
    yield dyn("cumsum_along_dynamic_axis", "CUMSUM", (2, 6, 5), ax, options=dict(Axis=1, Reverse=True))
    yield dyn("expand_follows_dynamic_axis", "EXPAND", (2, 6, 1), ax, out=(2, 6, 5))
    yield dyn("expand_refuses_fixed_output", "EXPAND", (2, 6, 5), ax, out_axes=[0, 0, 0])
    yield dyn("gather_elements_along_dynamic_axis", "GATHER_ELEMENTS", (2, 6, 5), ax, out=(2, 1, 5),
              options=dict(Axis=1), consts=[np.array([[[5, -6, 6, 0, -1]] * 1] * 2, np.int64)], out_axes=[0, 0, 0])
    yield dyn("group_norm_dynamic_positions", "GROUP_NORM", (2, 4, 6), [0, 0, 1], options=dict(Groups=2))
    yield dyn("group_norm_dynamic_channels", "GROUP_NORM", (2, 6, 5), ax, options=dict(Groups=3))
    yield dyn("pow", "ACTIVATION", (2, 6, 5), ax, options=dict(Activation=18, Exponent=-1.5))
    yield dyn("max_2e31m1", "SOFTMAX", (1, I32_MAX), [0, 1], dims=(("seq", I32_MAX),))
    yield dyn("max_mismatch", "SOFTMAX", (2, 6, 5), ax, dims=(("seq", 7),))
    yield dyn("dim_zero", "SOFTMAX", (2, 6, 5), ax, dims=(("seq", 0),))
    yield dyn("dim_negative", "SOFTMAX", (2, 6, 5), ax, dims=(("seq", -6),))
    yield dyn("refers_dim_2", "SOFTMAX", (2, 6, 5), [0, 2, 0])
    yield dyn("refers_dim_255", "SOFTMAX", (2, 6, 5), [0, 255, 0])
    yield dyn("entries_short", "SOFTMAX", (2, 6, 5), [0, 1])
    yield dyn("entries_long", "SOFTMAX", (2, 6, 5), [0, 1, 0, 0])
    yield dyn("seventeen_dims", "SOFTMAX", (2, 6, 5), ax, dims=[("seq", 6)] + [(f"d{i}", 1) for i in range(16)])
    yield dyn("two_axes_one_dim", "SOFTMAX", (6, 6, 5), [1, 1, 0])
    yield dyn("output_follows_other_dim", "SOFTMAX", (2, 6, 5), ax, dims=(("seq", 6), ("other", 6)),
              out_axes=[0, 2, 0])
    yield dyn("fc_rows_2e31", "FULLY_CONNECTED", (1 << 16, 1 << 15), [1, 0], out=(1 << 16, 8),
              dims=(("rows", 1 << 16),), consts=[zero_sparse((8, 1 << 15))])
    yield dyn("constant_two_dynamic_axes", "ADD", (6, 6, 5), [1, 1, 0],
              consts=[lambda m: m.const(f32(6, 6, 5), dynamic=[1, 1, 0])])
    yield dyn("sparse_dynamic", "FULLY_CONNECTED", (2, 6, 16), ax, out=(2, 6, 8),
              consts=[lambda m: m.sparse((8, 16), [0, 1, 2], [0, 1], r=4, dynamic=[1, 0])])
    m = Slite()
    m.dims = [("seq", 6)]
    x = m.input((2, 6, 5), dynamic=ax)
    ids = m.input((2, 6), "int64", dynamic=[0, 1])
    table = m.const(f32(10, 5))
    e = m.tensor((2, 6, 5), dynamic=ax)
    m.op("GATHER", [table, ids], [e])
    s = m.tensor((2, 6, 5), dynamic=ax)
    m.op("ADD", [x, e], [s])
    q = m.tensor((2, 6, 6), dynamic=[0, 1, 1])
    m.op("MATMUL", [s, m.tensor((2, 5, 6), dynamic=[0, 0, 1])], [q])
    yield "matmul_reads_unwritten", m
    m = Slite()
    m.dims = [("seq", 6)]
    x = m.input((2, 6, 5), dynamic=ax)
    xt = m.tensor((2, 5, 6), dynamic=[0, 0, 1])
    m.op("TRANSPOSE", [x], [xt], dict(Perm=[0, 2, 1]))
    q = m.tensor((2, 6, 6), dynamic=[0, 1, 1])
    m.op("MATMUL", [x, xt], [q])
    mask = m.input((2, 1, 6), dynamic=[0, 0, 1])
    p = m.tensor((2, 6, 6), dynamic=[0, 1, 1])
    m.op("SOFTMAX", [q, mask], [p], dict(Scale=0.5))
    pooled = m.tensor((2, 6), dynamic=[0, 1])
    m.op("MEAN_POOL", [p], [pooled])
    m.outputs = [p, pooled]
    yield "attention_mean_pool", m


# --- resource limits ----------------------------------------------------------------------------

def resource_cases():
    def passthrough(shape, dtype="float32"):
        m = Slite()
        x = m.input(shape, dtype)
        m.outputs = [x]
        return m

    yield "arena_2gb_320_bytes", passthrough((1, 1 << 29))
    yield "arena_8gb", passthrough((1 << 30, 2))
    yield "arena_16gb_int64_512_bytes", passthrough((1 << 30, 2), "int64")
    m = Slite()
    x = m.input((1 << 27,))
    outs = [x]
    for _ in range(8):   # eight 512 MB tensors, all graph outputs, so none share the arena
        outs.append(m.tensor((1 << 27,)))
        m.op("ACTIVATION", [x], [outs[-1]], dict(Activation=1))
    m.outputs = outs
    yield "arena_4gb_from_eight_outputs", m
    # Scratch: a depthwise conv's padded planes, an im2col tile, FC transposes, matmul panels.
    side = conv_out(5, 3, 16, 1, 30000, 30000)
    yield "scratch_depthwise_14gb", one("CONV2D", [(1, 1, 5, 5)], (1, 1, side, side),
                                        dict(PadTop=30000, PadBottom=30000, PadLeft=30000, PadRight=30000,
                                             StrideH=16, StrideW=16, Groups=1), consts=[f32(1, 1, 3, 3)])
    yield "scratch_depthwise_4gb_arena_2gb", one("CONV2D", [(1, 2, 5, 5)], (1, 2, 16386, 16386),
                                                 dict(PadTop=16384, PadBottom=16384, PadLeft=16384, PadRight=16384,
                                                      StrideH=2, StrideW=2, Groups=2), consts=[f32(2, 1, 3, 3)])
    yield "scratch_fc_transpose", one("FULLY_CONNECTED", [(1 << 14, 1 << 14)], (1 << 14, 1 << 14),
                                      consts=[zero_sparse((1 << 14, 1 << 14))])
    yield "scratch_matmul_panels", one("MATMUL", [(1 << 14, 1 << 14), (1 << 14, 1)], (1 << 14, 1))
    # Counts: graph inputs, tensors, operators, outputs, metadata, all sharing one table each.
    for n, label in [(40000, "40k"), (150000, "150k"), (1 << 20, "1M")]:
        m = Slite()
        m.input((1,))
        m.tensors = m.tensors * n
        m.inputs = np.arange(n)
        m.outputs = [0]
        yield f"graph_inputs_{label}", m
        m = Slite()
        m.input((1,))
        m.tensors = m.tensors * n
        m.inputs = np.arange(n)
        m.outputs = np.arange(n)
        yield f"graph_inputs_and_outputs_{label}", m
    m = Slite()
    m.input((1,))
    m.tensors = m.tensors * (1 << 20)
    m.outputs = [0] * (1 << 20)
    yield "unused_tensors_1M_outputs_1M", m
    m = Slite()
    m.input((1,))
    m.tensors = m.tensors * ((1 << 20) + 1)
    m.outputs = [0]
    yield "tensors_past_limit", m
    for n, label in [(20000, "20k"), (100000, "100k")]:
        m = Slite()
        m.input((4,))
        m.tensors = m.tensors * (n + 1)   # one table: each op reads tensor i and writes i + 1
        for i in range(n):
            m.op("ACTIVATION", [i], [i + 1], dict(Activation=1), name="a")
        m.outputs = [n]
        yield f"op_chain_{label}", m
    m = Slite()
    m.input((4,))
    n = 50000
    m.tensors = m.tensors * (n + 1)
    for i in range(n):
        m.op("ACTIVATION", [0], [i + 1], dict(Activation=1), name="a")
    m.outputs = list(range(1, n + 1))
    yield "fan_out_50k_outputs", m
    m = Slite()
    x = m.input((1,))
    m.outputs = [x]
    m.metadata = [("k", "v")] * 200000
    yield "metadata_200k", m
    m = Slite()
    m.input((1,), name="n" * (1 << 20))
    m.outputs = [0]
    yield "name_1mb", m
    # Sparse structures whose use (densify, pack) asks for gigabytes.
    yield "sparse_fc_k2e28_dense_cost", one("FULLY_CONNECTED", [(4, 1 << 28)], (4, 8),
                                            consts=[zero_sparse((8, 1 << 28), index_type="uint32")])
    yield "sparse_rows_2e22", one("FULLY_CONNECTED", [(1, 64)], (1, 1 << 22), consts=[zero_sparse((1 << 22, 64))])
    yield "sparse_full_rows_k65536", one("FULLY_CONNECTED", [(1, 65536)], (1, 8),
                                          consts=[lambda m: m.sparse((8, 65536), [0, 65536], np.arange(65536), r=8,
                                                                     index_type="uint32")])


# --- the FlatBuffer itself ----------------------------------------------------------------------

def _small():
    """A valid two-op model with a constant, a sparse weight and options: what verifier cases patch."""
    m = Slite()
    x = m.input((2, 16))
    h = m.tensor((2, 8))
    m.op("FULLY_CONNECTED", [x, m.sparse((8, 16), [0, 2, 3], [1, 5, 9], r=4), m.const(f32(8))], [h])
    y = m.tensor((2, 8))
    m.op("SOFTMAX", [h], [y], dict(Axis=-1, Scale=0.5))
    m.outputs = [y]
    m.metadata = [("key", "value")]
    return m


def _patch(data, pos, raw):
    return data[:pos] + raw + data[pos + len(raw):]


def verifier_cases():
    data = _small().build()
    model = S.Model.GetRootAs(data, 0)
    root = struct.unpack_from("<I", data, 0)[0]
    vtable = root - struct.unpack_from("<i", data, root)[0]
    yield "empty", b""
    for n in (1, 4, 7, 8):
        yield f"first_{n}_bytes", data[:n]
    yield "identifier_only", b"\0\0\0\0SLIT"
    yield "wrong_identifier", _patch(data, 4, b"TFL3")
    for name, v in [("zero", 0), ("past_end", len(data)), ("last_byte", len(data) - 1), ("max", 0xFFFFFFFF),
                    ("unaligned", root + 1), ("identifier", 4)]:
        yield f"root_offset_{name}", _patch(data, 0, struct.pack("<I", v))
    for name, v in [("self", 0), ("past_end", -len(data)), ("before_start", root + 1), ("min", I32_MIN),
                    ("into_identifier", root - 4)]:
        yield f"root_vtable_{name}", _patch(data, root, struct.pack("<i", v))
    for name, v in [("0", 0), ("2", 2), ("odd", 7), ("max", 0xFFFE), ("past_end", len(data))]:
        yield f"vtable_size_{name}", _patch(data, vtable, struct.pack("<H", v & 0xFFFF))
    for name, v in [("0", 0), ("2", 2), ("max", 0xFFFF)]:
        yield f"table_size_{name}", _patch(data, vtable + 2, struct.pack("<H", v))
    for field in range(10):   # each root field placed past its table; each reference past the end or wrapping
        entry = vtable + 4 + 2 * field
        if entry + 2 <= vtable + struct.unpack_from("<H", data, vtable)[0]:
            yield f"root_field{field}_past_table", _patch(data, entry, struct.pack("<H", 0xFFFC))
            off = struct.unpack_from("<H", data, entry)[0]
            if off:
                pos = root + off
                for name, v in [("0", 0), ("past_end", len(data)), ("max", 0xFFFFFFFF), ("wraps_minus4", 0xFFFFFFFC)]:
                    yield f"root_field{field}_ref_{name}", _patch(data, pos, struct.pack("<I", v))
    tensors = model._tab.Vector(model._tab.Offset(10))
    for name, v in [("len_max", 0xFFFFFFFF), ("len_past_end", len(data) // 4), ("len_2e30", 1 << 30)]:
        yield f"tensors_{name}", _patch(data, tensors - 4, struct.pack("<I", v))
    yield "tensor0_ref_into_vector", _patch(data, tensors, struct.pack("<I", 0))
    yield "tensor0_ref_to_tensor1", _patch(data, tensors, struct.pack("<I", 4 + struct.unpack_from(
        "<I", data, tensors + 4)[0]))
    t0 = model.Tensors(0)
    shape = t0._tab.Vector(t0._tab.Offset(8))
    for name, v in [("len9", 9), ("len_max", 0xFFFFFFFF), ("len0", 0)]:
        yield f"shape_{name}", _patch(data, shape - 4, struct.pack("<I", v))
    for name, v in [("0", 0), ("minus1", -1), ("min", I32_MIN), ("max", I32_MAX), ("2e31_total", 1 << 30)]:
        yield f"shape_dim_{name}", _patch(data, shape, struct.pack("<i", v))
    str_field = t0._tab.Offset(4)
    str_pos = t0._tab.Pos + str_field + struct.unpack_from("<I", data, t0._tab.Pos + str_field)[0]
    length = struct.unpack_from("<I", data, str_pos)[0]
    yield "string_no_nul", _patch(data, str_pos + 4 + length, b"x")
    yield "string_nul_inside", _patch(data, str_pos + 4, b"\0")
    yield "string_len_max", _patch(data, str_pos, struct.pack("<I", 0xFFFFFFFF))
    yield "string_len_to_end", _patch(data, str_pos, struct.pack("<I", len(data) - str_pos - 4))
    yield "string_invalid_utf8", _patch(data, str_pos + 4, b"\xff\xfe")
    for field, (off, fmt, values) in {"dtype": (6, "<B", [1, 6, 255]), "storage": (12, "<B", [3, 6, 255]),
                                      "buffer": (10, "<I", [0xFFFFFFFF, 99])}.items():
        t = model.Tensors(2)   # the sparse weight
        o = t._tab.Offset(off)
        if o:
            for v in values:
                yield f"weight_{field}_{v}", _patch(data, t._tab.Pos + o, struct.pack(fmt, v))
    op = model.Operators(0)
    for field, (off, fmt, values) in {"type": (4, "<H", [len(OP_TYPES), 0xFFFF]),
                                      "options_type": (14, "<B", [7, OPTIONS_TAGS, 255])}.items():
        o = op._tab.Offset(off)
        if o:
            for v in values:
                yield f"op0_{field}_{v}", _patch(data, op._tab.Pos + o, struct.pack(fmt, v))
    # The buffer table: alignment, ranges past the end, overflow, inside the FlatBuffer, overlaps.
    m = _small()
    layout = [(model.Buffers(i).Offset(), model.Buffers(i).Size()) for i in range(model.BuffersLength())]
    head = layout[1][0] - layout[1][0] % 64

    def table(name, rows):
        m.buffer_table = rows
        return name, m.build()

    for a in (1, 4, 8, 16, 32, 48):
        yield table(f"buffer_offset_plus{a}", [layout[0], (layout[1][0] + a, layout[1][1])] + layout[2:])
    m.align = 16
    yield "layout_16_aligned", m.build()
    m.align = 64
    last = layout[-1]
    yield table("buffer_past_end", layout[:-1] + [(last[0] + 64, last[1])])
    yield table("buffer_size_past_end", layout[:-1] + [(last[0], last[1] + 1)])
    yield table("buffer_size_max", layout[:-1] + [(last[0], 2**64 - 1)])
    yield table("buffer_offset_max", layout[:-1] + [(2**64 - 64, last[1])])
    yield table("buffer_offset_plus_size_wraps", layout[:-1] + [(2**64 - 64, 128)])
    yield table("buffer_inside_flatbuffer", layout[:-1] + [(0, last[1])])
    yield table("buffer_over_the_header", [layout[0], (0, layout[1][1])] + layout[2:])
    yield table("buffers_overlap", layout[:-1] + [(layout[-2][0], last[1])])
    yield table("all_buffers_same_range", [layout[0]] + [(layout[1][0], layout[1][1])] * (len(layout) - 1))
    yield table("buffer0_not_empty", [(layout[1][0], 4)] + layout[1:])
    yield table("buffer_table_empty", [])
    yield table("buffer_at_end_size0", layout[:-1] + [(-(-len(data) // 64) * 64, 0)])
    # Around the FlatBuffer: garbage after it, a zeroed data section, none; then each of its words
    # set to 0x7fffffff and to 0xffffffff.
    yield "trailing_garbage", data + b"\xff" * 1000
    yield "zeroed_data_section", data[:head] + b"\0" * (len(data) - head)
    yield "flatbuffer_only", data[:head]
    for k in range(0, min(head, 1024), 4):
        yield f"word{k}_max", _patch(data, k, struct.pack("<I", 0x7FFFFFFF))
    for k in range(0, min(head, 1024), 4):
        yield f"word{k}_ffffffff", _patch(data, k, b"\xff\xff\xff\xff")
    m = _small()
    m.tensors[0]["name"] = None
    m.ops[0]["name"] = None
    m.producer = ""
    yield "names_absent", m.build()
    m = _small()
    m.tensors[0]["shape"] = None
    yield "shape_absent", m.build()
    m = _small()
    m.tensors[0]["dtype"] = S.DType.FLOAT16
    yield "fp16_activation", m.build()
    m = _small()
    m.tensors[3]["storage"] = S.DType.INT32
    yield "float_stored_as_int32", m.build()
    m = _small()
    m.tensors[3]["dtype"], m.tensors[3]["storage"] = S.DType.INT32, S.DType.FLOAT16
    yield "int_stored_as_fp16", m.build()
    m = _small()
    m.tensors[3]["buffer"] = m.tensors[2]["buffer"]
    yield "bias_aliases_sparse_values", m.build()
    m = _small()
    m.tensors[3]["buffer"] = m.tensors[2]["sparsity"]["row_ptr"]
    yield "bias_aliases_row_ptr", m.build()


CATEGORIES = {
    "ops": lambda: ((f"{op}.{name}", m) for op, gen in PER_OP.items() for name, m in gen()),
    "every_op": lambda: ((f"{op}.{name}", m) for op in OP_TYPES for name, m in every_op_cases(op)),
    "graph": graph_cases, "sparse": sparse_cases, "dynamic": dynamic_cases, "resource": resource_cases,
    "verifier": verifier_cases,
}
