"""TFLite frontend: a .tflite flatbuffer (read with the `tflite` schema package) -> IR.

TFLite graphs are NHWC; sparselite's conv kernels are NCHW. Every rank-4 activation becomes NCHW
on the way in: weights and constants are permuted here, once, and axis arguments are remapped, so
no layout transpose runs between ops. Transposes run only where NHWC order is observable: after
the graph input, before a RESHAPE of a 4-D tensor, and before a 4-D graph output.

Sparse weights (SparsityParameters feeding DENSIFY) and fp16 weights (feeding DEQUANTIZE) become
IR constants directly; a sparse weight keeps the file's structure (group size r from a block over
output channels, else 1) instead of being re-detected.

The file is untrusted input. The `tflite` package's accessors do not bounds-check (Outputs(j) reads
past a vector; a bad offset raises struct.error), so vectors are read with *AsNumpy (which checks
the buffer), indices of tensors, buffers and operator codes are checked here, a constant's bytes
must match its shape, and a densified sparse tensor is size-checked (limits) before it is
allocated. Anything else a malformed file makes the code raise becomes a ConversionError naming the
operator (from_tflite_graph), with the original exception chained.
"""
import struct

import numpy as np

from sparselite.errors import ConversionError

from .ir import Graph
from .limits import MAX_RANK, ComputeBudget, check_shape, num_elements
from .missing import Missing, Unsupported
from .slicing import add_slice, axis_range

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "CLAMP", 3: "RELU6", 4: "TANH"}   # ActivationFunctionType
_UNARY = {"RELU": "RELU", "RELU6": "RELU6", "LOGISTIC": "SIGMOID", "TANH": "TANH", "HARD_SWISH": "HARDSWISH",
          "RELU_N1_TO_1": "CLAMP", "GELU": "GELU"}
_DTYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "INT64": np.int64}
# Inputs each op reads at least (the handlers index them); 1 when not listed.
_MIN_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "ADD": 2, "SUB": 2, "MUL": 2, "DIV": 2,
               "PRELU": 2, "PAD": 2, "PADV2": 2, "MEAN": 2, "SUM": 2, "REDUCE_MAX": 2, "REDUCE_MIN": 2,
               "STRIDED_SLICE": 4, "SLICE": 3, "SPLIT": 2, "SPLIT_V": 3, "TRANSPOSE_CONV": 3,
               "CUSTOM(Convolution2DTransposeBias)": 3, "CUSTOM(TransformTensorBilinear)": 2,
               "CUSTOM(TransformLandmarks)": 2}
# Custom ops (by their custom code) -> the converter method that maps them.
_CUSTOM = {"CUSTOM(Convolution2DTransposeBias)": "custom_convolution2d_transpose_bias",
           "CUSTOM(Landmarks2TransformMatrix)": "custom_landmarks2_transform_matrix",
           "CUSTOM(TransformTensorBilinear)": "custom_transform_tensor_bilinear",
           "CUSTOM(TransformLandmarks)": "custom_transform_landmarks"}
_REDUCE = {"MEAN": "MEAN", "SUM": "SUM", "REDUCE_MAX": "MAX", "REDUCE_MIN": "MIN"}
# What a malformed file makes the code below raise; from_tflite_graph turns it into ConversionError.
_MALFORMED = (struct.error, IndexError, KeyError, ValueError, TypeError, AttributeError, ZeroDivisionError,
              OverflowError, RecursionError, UnicodeError)


def _empty_table():
    """A flatbuffer holding one table without fields: every accessor over it gives its default."""
    import flatbuffers

    b = flatbuffers.Builder(16)
    b.StartObject(0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


_EMPTY_TABLE = _empty_table()


def _vector(table, field):
    """A flatbuffer int vector field as a list, bounds-checked against the buffer (AsNumpy raises
    ValueError when the claimed length runs past it); [] when absent."""
    if getattr(table, field + "Length")() == 0:
        return []
    return [int(v) for v in getattr(table, field + "AsNumpy")()]


def _schema():
    try:
        import tflite
    except ImportError:
        raise ConversionError("from_tflite needs the TFLite schema package: pip install tflite") from None
    return tflite


class _Value:
    """An IR tensor and whether it is a rank-4 activation held NCHW (its TFLite shape is NHWC)."""

    def __init__(self, name, nchw=False):
        self.name, self.nchw = name, nchw


class _Converter:
    def __init__(self, data, progress=None):
        self.progress = progress
        self.where = "reading the model"   # where conversion stands, for errors on malformed files
        self.T = _schema()
        self.data = data
        self.budget = ComputeBudget()       # sizes of densified sparse tensors
        if len(data) < 8 or struct.unpack_from("<I", data, 0)[0] >= len(data):
            raise ConversionError(f"truncated TFLite model: its root table lies past the end of the {len(data)} bytes")
        self.model = self.T.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise ConversionError(f"the model has {self.model.SubgraphsLength()} subgraphs; only single-subgraph "
                                  "models (no control flow) are supported")
        self.sub = self.model.Subgraphs(0)
        self.n_tensors = self.sub.TensorsLength()
        self.n_buffers = self.model.BuffersLength()
        self.op_names = {v: k for k, v in vars(self.T.BuiltinOperator).items() if not k.startswith("_")}
        self.type_names = {v: k for k, v in vars(self.T.TensorType).items() if not k.startswith("_")}
        self.graph = Graph()
        self.values = {}        # TFLite tensor index -> _Value
        self.constants = {}     # TFLite tensor index -> (numpy array, group size or 0)
        self.fp16_weights = False
        self.output_names = []
        self.missing_values = set()   # tensors computed by ops that could not convert

    # --- tensors -------------------------------------------------------------------------
    def tensor(self, i):
        if not 0 <= i < self.n_tensors:
            raise ConversionError(f"{self.where}: tensor index {i} is out of range (the subgraph has "
                                  f"{self.n_tensors} tensors)")
        return self.sub.Tensors(i)

    def tname(self, i):
        name = self.tensor(i).Name()
        return name.decode("utf-8", "replace") if name is not None else f"tensor_{i}"

    def shape(self, i):
        t = self.tensor(i)
        if t.ShapeLength() > MAX_RANK:
            raise ConversionError(f"tensor '{self.tname(i)}' has rank {t.ShapeLength()}: at most {MAX_RANK}")
        return check_shape(_vector(t, "Shape"), f"tensor '{self.tname(i)}'")

    def rank(self, i, rank, what):
        shape = self.shape(i)
        if len(shape) != rank:
            raise ConversionError(f"{self.where}: {what} '{self.tname(i)}' has shape {list(shape)}; rank {rank} "
                                  "is expected")
        return shape

    def raw(self, i):
        """The bytes of tensor i's buffer (b"" when it has none): the buffer's data vector, or the
        region offset..offset+size of the file that models over 2 GB use; both within the file."""
        index = self.tensor(i).Buffer()
        if not 0 <= index < self.n_buffers:
            raise ConversionError(f"tensor '{self.tname(i)}' refers to buffer {index}; the model has "
                                  f"{self.n_buffers}")
        buf = self.model.Buffers(index)
        if buf is None:
            return b""
        if buf.Offset() > 1:   # 0 and 1 mean "no external region" in the schema
            if buf.Offset() + buf.Size() > len(self.data):
                raise ConversionError(f"tensor '{self.tname(i)}': its buffer claims bytes {buf.Offset()}.."
                                      f"{buf.Offset() + buf.Size()} of a {len(self.data)}-byte file")
            return self.data[buf.Offset():buf.Offset() + buf.Size()]
        return buf.DataAsNumpy().tobytes() if buf.DataLength() else b""

    def const(self, i, what="input"):
        """A constant input as (array, group size), decoding fp16 and sparse storage."""
        if i in self.constants:
            return self.constants[i]
        t = self.tensor(i)
        raw = self.raw(i)
        if not raw:
            raise ConversionError(f"{what} '{self.tname(i)}' must be a constant")
        kind = self.type_names.get(t.Type(), str(t.Type()))
        if kind not in _DTYPES:
            raise ConversionError(self._dtype_message(i, kind))
        itemsize = np.dtype(_DTYPES[kind]).itemsize
        if len(raw) % itemsize:
            raise ConversionError(f"tensor '{self.tname(i)}' ({kind}) has a buffer of {len(raw)} bytes, not a "
                                  f"multiple of {itemsize}")
        values = np.frombuffer(raw, dtype=_DTYPES[kind])
        shape = self.shape(i)
        group = 0
        if t.Sparsity() is not None:
            data, group = self._densify(values, shape, t.Sparsity(), self.tname(i))
        elif num_elements(shape) != values.size:
            raise ConversionError(f"tensor '{self.tname(i)}' of shape {list(shape)} needs "
                                  f"{num_elements(shape) * itemsize} bytes; its buffer holds {len(raw)}")
        else:
            data = values.reshape(shape)
        self.constants[i] = (data, group)
        return self.constants[i]

    def _dtype_message(self, i, kind):
        if kind in ("INT8", "UINT8", "INT16", "INT4"):
            return (f"tensor '{self.tname(i)}' is quantized ({kind}): quantized models are not supported yet; "
                    "convert the float (or fp16) model")
        return f"tensor '{self.tname(i)}' has type {kind}: supported are FLOAT32, FLOAT16, INT32 and INT64"

    def _densify(self, values, shape, sp, name):
        """TFLite's sparse format (traversal order, block map, DENSE / SPARSE_CSR levels) as a dense
        array, and the group size it implies: a block of r in {2, 4, 8} over dimension 0 (output
        channels) is sparselite's r; any other pattern is stored with r = 1. The structure is
        checked first (a permutation, dense sizes that tile the shape, segments in order, indices
        in range, no more values than stored), so the walk visits at most as many nodes as the file
        holds values and indices."""
        def fail(why):
            raise ConversionError(f"sparse tensor '{name}': {why}")

        order, block_map = _vector(sp, "TraversalOrder"), _vector(sp, "BlockMap")
        n = len(shape)
        if len(block_map) > n or sorted(order) != list(range(n + len(block_map))) \
                or sp.DimMetadataLength() != len(order):
            fail("traversal order, block map and dimension metadata disagree")
        if len(set(block_map)) != len(block_map) or any(not 0 <= d < n for d in block_map):
            fail(f"block map {block_map} does not name distinct dimensions")
        levels = []
        for k in range(len(order)):
            dm = sp.DimMetadata(k)
            if dm.Format() == 0:
                levels.append(("dense", dm.DenseSize(), None, None))
            else:
                levels.append(("csr", None, self._index_vector(dm.ArraySegmentsType(), dm.ArraySegments()),
                               self._index_vector(dm.ArrayIndicesType(), dm.ArrayIndices())))
        block_size = {}
        for b, d in enumerate(block_map):
            kind, size = levels[order.index(n + b)][:2]
            if kind != "dense" or size < 1 or shape[d] % size:
                fail(f"the block over dimension {d} must be dense and divide its size {shape[d]}")
            block_size[d] = size
        dims = [shape[d] // block_size.get(d, 1) if d < n else block_size[block_map[d - n]] for d in order]
        for (kind, size, _, _), dim in zip(levels, dims):
            if kind == "dense" and size != dim:
                fail(f"a dense level of size {size} where the shape gives {dim}")
        self.budget.reserve(num_elements(shape), values.dtype.itemsize, f"densifying sparse tensor '{name}'")
        dense = np.zeros(shape, dtype=values.dtype)
        coord = [0] * len(order)

        def walk(level, pos):
            if level == len(order):
                if pos >= values.size:
                    fail(f"it addresses value {pos}; the buffer holds {values.size}")
                index = tuple(coord[d] * block_size.get(d, 1) + (coord[n + block_map.index(d)] if d in block_size
                                                                   else 0) for d in range(n))
                dense[index] = values[pos]
                return
            kind, size, segments, indices = levels[level]
            if kind == "dense":
                for i in range(size):
                    coord[order[level]] = i
                    walk(level + 1, pos * size + i)
            else:
                if pos + 1 >= len(segments):
                    fail(f"segment {pos} is missing")
                lo, hi = int(segments[pos]), int(segments[pos + 1])
                if not 0 <= lo <= hi <= len(indices):
                    fail(f"segment {pos} spans {lo}..{hi} of {len(indices)} indices")
                for j in range(lo, hi):
                    if not 0 <= int(indices[j]) < dims[level]:
                        fail(f"index {int(indices[j])} is out of range 0..{dims[level] - 1}")
                    coord[order[level]] = int(indices[j])
                    walk(level + 1, j)

        walk(0, 0)
        r = block_size.get(0, 1)
        return dense, (r if r in (1, 2, 4, 8) else 1)

    def _index_vector(self, kind, table):
        vectors = {1: self.T.Int32Vector, 2: self.T.Uint16Vector, 3: self.T.Uint8Vector}
        if kind not in vectors:
            raise ConversionError(f"sparse index vector type {kind} is not supported")
        if table is None:
            raise ConversionError("a sparse index vector is missing")
        vec = vectors[kind]()
        vec.Init(table.Bytes, table.Pos)
        return vec.ValuesAsNumpy() if vec.ValuesLength() else np.zeros(0, np.int32)

    def value(self, i):
        """The IR value of a TFLite tensor; constants are added (NCHW when 4-D) on first use."""
        if i in self.values:
            return self.values[i]
        if not self.is_const(i):
            raise ConversionError(f"{self.where}: tensor '{self.tname(i)}' is read before any operator computes it")
        data, group = self.const(i)
        if data.dtype == np.float16:
            data = data.astype(np.float32)
        nchw = data.ndim == 4
        name = self.graph.add_const(self.tname(i), data.transpose(NHWC_TO_NCHW) if nchw else data)
        self.graph.tensors[name].group_size = group
        self.values[i] = _Value(name, nchw)
        return self.values[i]

    def is_const(self, i):
        if i in self.values:
            return self.graph.tensors[self.values[i].name].data is not None
        return i in self.constants or len(self.raw(i)) > 0

    def ir_shape(self, i, nchw):
        s = self.shape(i)
        return tuple(s[d] for d in NHWC_TO_NCHW) if nchw else s

    def add(self, op_type, inputs, out_index, nchw, options=None, name=None):
        out = self.graph.add_op(op_type, inputs, self.ir_shape(out_index, nchw), options=options,
                                name=name or self.tname(out_index))
        self.values[out_index] = _Value(out, nchw)
        return out

    def to_nhwc(self, v, shape_nhwc, name):
        """A TRANSPOSE to NHWC of an NCHW value (where TFLite's element order is observable)."""
        if not v.nchw:
            return v.name
        return self.graph.add_op("TRANSPOSE", [v.name], shape_nhwc, options=dict(perm=list(NCHW_TO_NHWC)),
                                 name=name + ":nhwc")

    # --- ops -------------------------------------------------------------------------------
    def convert(self):
        for i in _vector(self.sub, "Inputs"):
            self.where = f"graph input {i}"
            kind = self.type_names.get(self.tensor(i).Type())
            if kind not in ("FLOAT32", "INT32", "INT64"):
                raise ConversionError(self._dtype_message(i, kind))
            shape = self.shape(i)
            name = self.graph.add_input(self.tname(i), shape, kind.lower())
            if len(shape) == 4:
                nchw = self.graph.add_op("TRANSPOSE", [name], [shape[d] for d in NHWC_TO_NCHW],
                                         options=dict(perm=list(NHWC_TO_NCHW)), name=name + ":nchw")
                self.values[i] = _Value(nchw, True)
            else:
                self.values[i] = _Value(name)
        total = self.sub.OperatorsLength()
        n_codes = self.model.OperatorCodesLength()
        missing = Missing("tflite")
        for k in range(total):
            if self.progress is not None:
                self.progress(k, total)
            self.where = f"operator {k}"
            op = self.sub.Operators(k)
            if not 0 <= op.OpcodeIndex() < n_codes:
                raise ConversionError(f"operator {k} has opcode index {op.OpcodeIndex()}; the model has {n_codes} "
                                      "operator codes")
            code = self.model.OperatorCodes(op.OpcodeIndex())
            kind = self.op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
            if kind == "CUSTOM":   # named by its custom code: CUSTOM(Convolution2DTransposeBias)
                custom = code.CustomCode()
                kind = f"CUSTOM({custom.decode('utf-8', 'replace') if custom else ''})"
            ins, outs = _vector(op, "Inputs"), _vector(op, "Outputs")
            if not outs:
                raise ConversionError(f"operator {k} ({kind}) has no outputs")
            self.where = f"operator {k} ({kind}, output '{self.tname(outs[0])}')"
            where = f"operator {k}, output '{self.tname(outs[0])}'"
            if any(i in self.missing_values for i in ins):
                self.missing_values.update(outs)   # after an op that could not convert: not reported again
                continue
            handler = getattr(self, _CUSTOM.get(kind, "op_" + kind.lower()), None)
            if handler is None:
                missing.add(kind, "", where)
                self.missing_values.update(outs)
                continue
            if len(ins) < _MIN_INPUTS.get(kind, 1):
                raise ConversionError(f"{self.where} has {len(ins)} inputs; {kind} takes at least "
                                      f"{_MIN_INPUTS.get(kind, 1)}")
            try:
                handler(op, ins, outs[0])
            except Unsupported as e:
                missing.add(e.op, e.reason, where)
                self.missing_values.update(outs)
        missing.check()
        if self.progress is not None:
            self.progress(total, total)
        self.where = "collecting the outputs"
        for i in _vector(self.sub, "Outputs"):
            if i not in self.values:
                raise ConversionError(f"graph output '{self.tname(i)}' is computed by no operator")
            v = self.values[i]
            name = self.to_nhwc(v, self.shape(i), self.tname(i)) if v.nchw else v.name
            self.graph.outputs.append(name)
            self.output_names.append(self.tname(i))
        return self.graph

    def options(self, op, cls):
        """The op's options table as tflite.<cls>; an absent table reads as the schema defaults."""
        table = op.BuiltinOptions()
        opts = getattr(self.T, cls)()
        if table is None:
            opts.Init(_EMPTY_TABLE, struct.unpack_from("<I", _EMPTY_TABLE, 0)[0])
            return opts
        kind = op.BuiltinOptionsType()
        if kind != getattr(self.T.BuiltinOptions, cls):
            raise ConversionError(f"{self.where} has options of type {kind}; it needs {cls}")
        opts.Init(table.Bytes, table.Pos)
        return opts

    def fused(self, out_index, act):
        """Fused activation as IR options (RELU_N1_TO_1 is a clamp to [-1, 1])."""
        if act not in _ACTIVATIONS:
            raise ConversionError(f"fused activation {act} at '{self.tname(out_index)}' is not supported")
        kind = _ACTIVATIONS[act]
        if kind == "TANH":
            return None   # applied as its own op by the caller
        return dict(activation=kind, act_min=-1.0, act_max=1.0) if kind == "CLAMP" else dict(activation=kind)

    def with_activation(self, op_type, inputs, out_index, nchw, options, act):
        fused = self.fused(out_index, act)
        if fused is not None:
            return self.add(op_type, inputs, out_index, nchw, {**options, **fused})
        mid = self.graph.add_op(op_type, inputs, self.ir_shape(out_index, nchw), options=options,
                                name=self.tname(out_index))
        return self.add("ACTIVATION", [mid], out_index, nchw, dict(activation="TANH"))

    def same_pads(self, in_hw, kernel, stride, dilation, padding):
        if min(*kernel, *stride, *dilation) < 1:
            raise ConversionError(f"{self.where}: kernel {list(kernel)}, stride {list(stride)} and dilation "
                                  f"{list(dilation)} must be at least 1")
        if padding == 1:   # VALID
            return (0, 0, 0, 0)
        pads = []
        for size, k, s, d in zip(in_hw, kernel, stride, dilation):
            out = (size + s - 1) // s
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])

    def conv_inputs(self, ins, weights):
        bias = [self.value(ins[2]).name] if len(ins) > 2 and ins[2] >= 0 else []
        w = self.graph.add_const(self.tname(ins[1]), weights)
        self.graph.tensors[w].group_size = self.const(ins[1])[1]
        return [self.value(ins[0]).name, w] + bias

    def op_conv_2d(self, op, ins, out):
        o = self.options(op, "Conv2DOptions")
        w = self.const(ins[1], "weights")[0].astype(np.float32)                       # OHWI
        n, h, wd, c = self.rank(ins[0], 4, "the input")
        if w.ndim != 4 or c % w.shape[3]:
            raise ConversionError(f"{self.where}: weights of shape {list(w.shape)} for an input of {c} channels")
        stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
        pads = self.same_pads((h, wd), w.shape[1:3], stride, dilation, o.Padding())
        self.with_activation("CONV2D", self.conv_inputs(ins, np.ascontiguousarray(w.transpose(0, 3, 1, 2))), out,
                             True, dict(stride=stride, dilation=dilation, padding=pads, groups=c // w.shape[3]),
                             o.FusedActivationFunction())

    def op_depthwise_conv_2d(self, op, ins, out):
        o = self.options(op, "DepthwiseConv2DOptions")
        w = self.const(ins[1], "weights")[0].astype(np.float32)                       # 1, KH, KW, C*M
        n, h, wd, c = self.rank(ins[0], 4, "the input")
        if w.ndim != 4:
            raise ConversionError(f"{self.where}: depthwise weights of shape {list(w.shape)}; 4-D expected")
        stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
        pads = self.same_pads((h, wd), w.shape[1:3], stride, dilation, o.Padding())
        self.with_activation("CONV2D", self.conv_inputs(ins, np.ascontiguousarray(w.transpose(3, 0, 1, 2))), out,
                             True, dict(stride=stride, dilation=dilation, padding=pads, groups=c),
                             o.FusedActivationFunction())

    def transpose_conv(self, x_index, w_index, bias_index, out, stride, pad_head, act):
        """CONV_TRANSPOSE2D of OHWI weights: the output's size is the file's, its top and left
        crop pad_head; (pad_bottom, output_padding) take up the rest of the full output."""
        w = self.const(w_index, "weights")[0].astype(np.float32)
        n, h, wd, c = self.rank(x_index, 4, "the input")
        out_h, out_w = self.rank(out, 4, "the output")[1:3]
        if w.ndim != 4 or w.shape[3] != c:
            raise ConversionError(f"{self.where}: weights of shape {list(w.shape)} (OHWI) for an input of {c} "
                                  "channels")
        if min(stride) < 1:
            raise ConversionError(f"{self.where}: stride {list(stride)} must be at least 1")
        if _ACTIVATIONS.get(act) == "TANH":   # LiteRT's kernels clamp only, so they ignore it
            raise Unsupported("TRANSPOSE_CONV", "a fused TANH (LiteRT does not apply it)")
        crop = [(i - 1) * s + k - o - p for i, s, k, o, p in zip((h, wd), stride, w.shape[1:3], (out_h, out_w), pad_head)]
        inputs = [self.value(x_index).name, self.graph.add_const(self.tname(w_index),
                                                                 np.ascontiguousarray(w.transpose(3, 0, 1, 2)))]
        if bias_index is not None:
            inputs.append(self.value(bias_index).name)
        self.with_activation("CONV_TRANSPOSE2D", inputs, out, True, dict(
            stride=stride, padding=(pad_head[0], pad_head[1], max(crop[0], 0), max(crop[1], 0)),
            output_padding=(max(-crop[0], 0), max(-crop[1], 0))), act)

    def op_transpose_conv(self, op, ins, out):
        """Inputs output_shape, weights, input, then an optional bias. TFLite crops the top and
        left by the padding a convolution of the output back to the input would take."""
        o = self.options(op, "TransposeConvOptions")
        shape = self.ints(ins[0], "output_shape", 4)
        if shape != list(self.shape(out)):
            raise ConversionError(f"{self.where}: output_shape {shape} differs from the output's shape "
                                  f"{list(self.shape(out))}")
        kernel, stride = self.const(ins[1], "weights")[0].shape[1:3], (o.StrideH(), o.StrideW())
        pads = self.same_pads(shape[1:3], kernel, stride, (1, 1), o.Padding())
        self.transpose_conv(ins[2], ins[1], ins[3] if len(ins) > 3 and ins[3] >= 0 else None, out, stride, pads[:2],
                            o.FusedActivationFunction())

    def custom_convolution2d_transpose_bias(self, op, ins, out):
        """MediaPipe's transposed convolution with a bias: inputs input, OHWI weights, bias; its
        custom options are the raw TfLiteTransposeConvParams {padding, stride_width,
        stride_height} (int32; padding 1 is SAME, which crops K - 1 - (in - 1) % stride, the
        smaller half at the top)."""
        raw = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b""
        if len(raw) < 12:
            raise ConversionError(f"{self.where}: custom options of {len(raw)} bytes; Convolution2DTransposeBias "
                                  "needs 12 (padding, stride_width, stride_height)")
        padding, stride_w, stride_h = struct.unpack_from("<iii", raw)
        w = self.const(ins[1], "weights")[0]
        in_hw = self.shape(ins[0])[1:3]
        if w.ndim != 4 or len(in_hw) != 2 or min(stride_h, stride_w) < 1:
            raise ConversionError(f"{self.where}: weights of shape {list(w.shape)} with stride "
                                  f"{[stride_h, stride_w]}")
        totals = [max(0, k - (i - 1) % s - 1) if padding == 1 else 0
                  for i, k, s in zip(in_hw, w.shape[1:3], (stride_h, stride_w))]
        want = [s * (i - 1) + k - t for i, k, s, t in zip(in_hw, w.shape[1:3], (stride_h, stride_w), totals)]
        if want != list(self.shape(out)[1:3]):
            raise ConversionError(f"{self.where}: the output's H and W are {list(self.shape(out)[1:3])}; the op "
                                  f"computes {want}")
        self.transpose_conv(ins[0], ins[1], ins[2], out, (stride_h, stride_w), [t // 2 for t in totals], 0)

    def custom_version(self, op, kind, version):
        """Fails unless the op code is MediaPipe's `version` of the custom op (the versions differ in
        options and layout)."""
        got = self.model.OperatorCodes(op.OpcodeIndex()).Version()
        if got != version:
            raise Unsupported(kind, f"version {got} (version {version} is supported)")

    def flex_options(self, op, kind, keys):
        """A custom op's flexbuffer options map, checked to hold `keys`."""
        from flatbuffers import flexbuffers

        raw = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b""
        try:
            options = flexbuffers.Loads(raw) if raw else {}
        except Exception as e:   # flexbuffers raises plain Exceptions on malformed input
            raise ConversionError(f"{self.where}: its custom options are not a flexbuffer map ({e})") from e
        if not isinstance(options, dict) or not set(keys) <= set(options):
            found = sorted(options) if isinstance(options, dict) else type(options).__name__
            raise ConversionError(f"{self.where}: {kind} needs options {sorted(keys)}; the file gives {found}")
        return options

    def landmarks_input(self, i):
        x = self.value(i)
        if x.nchw or len(self.shape(i)) != 3:
            raise ConversionError(f"{self.where}: landmarks '{self.tname(i)}' of shape {list(self.shape(i))}; "
                                  "[batch, landmarks, values] is expected")
        return x.name

    def custom_landmarks2_transform_matrix(self, op, ins, out):
        """MediaPipe's Landmarks2TransformMatrix (v2): landmarks [B, N, 3] -> the crop's [B, 4, 4]
        matrix; subset_idxs is read as pairs, an odd last index paired with itself, which leaves
        the box of the flat list of indices."""
        kind = "CUSTOM(Landmarks2TransformMatrix)"
        self.custom_version(op, kind, 2)
        o = self.flex_options(op, kind, ("left_rotation_idx", "right_rotation_idx", "subset_idxs", "output_height",
                                         "output_width", "scale_x", "scale_y", "target_rotation_radians"))
        if self.shape(ins[0])[-1:] != (3,):
            raise ConversionError(f"{self.where}: MediaPipe reads 3 values per landmark; '{self.tname(ins[0])}' has "
                                  f"shape {list(self.shape(ins[0]))}")
        subset = [int(i) for i in o["subset_idxs"]]
        self.add("LANDMARKS_TO_TRANSFORM_MATRIX", [self.landmarks_input(ins[0])], out, False, dict(
            left_index=int(o["left_rotation_idx"]), right_index=int(o["right_rotation_idx"]), subset=subset,
            target_rotation=float(o["target_rotation_radians"]), output_height=int(o["output_height"]),
            output_width=int(o["output_width"]), scale_x=float(o["scale_x"]), scale_y=float(o["scale_y"])))

    def custom_transform_tensor_bilinear(self, op, ins, out):
        """MediaPipe's TransformTensorBilinear (v2): an NHWC feature map sampled by a [B, 4, 4]
        matrix to the output's H x W."""
        self.rank(ins[0], 4, "the input")
        self.rank(out, 4, "the output")
        self.add("TRANSFORM_TENSOR_BILINEAR", [self.value(ins[0]).name, self.landmarks_input(ins[1])], out, True)

    def custom_transform_landmarks(self, op, ins, out):
        """MediaPipe's TransformLandmarks (v2): landmarks [B, N, 2 or 3] mapped by a [B, 4, 4] matrix."""
        self.custom_version(op, "CUSTOM(TransformLandmarks)", 2)
        self.add("TRANSFORM_LANDMARKS", [self.landmarks_input(ins[0]), self.landmarks_input(ins[1])], out, False)

    def op_fully_connected(self, op, ins, out):
        o = self.options(op, "FullyConnectedOptions")
        w, group = self.const(ins[1], "weights")
        if w.ndim != 2 or num_elements(self.shape(ins[0])) % w.shape[1]:
            raise ConversionError(f"{self.where}: weights of shape {list(w.shape)} for an input of shape "
                                  f"{list(self.shape(ins[0]))}")
        x = self.value(ins[0])
        x_name = x.name
        if x.nchw or len(self.shape(ins[0])) != 2:   # flattened in TFLite's (NHWC) order
            x_name = self.to_nhwc(x, self.shape(ins[0]), self.tname(out))
            x_name = self.graph.add_op("RESHAPE", [x_name], (int(np.prod(self.shape(ins[0]))) // w.shape[1],
                                                             w.shape[1]), name=self.tname(out) + ":flat")
        wn = self.graph.add_const(self.tname(ins[1]), w.astype(np.float32))
        self.graph.tensors[wn].group_size = group
        bias = [self.value(ins[2]).name] if len(ins) > 2 and ins[2] >= 0 else []
        fc_shape = (self.graph.tensors[x_name].shape[0], w.shape[0])
        fused = self.fused(out, o.FusedActivationFunction()) or {}
        y = self.graph.add_op("FULLY_CONNECTED", [x_name, wn] + bias, fc_shape, options=fused, name=self.tname(out))
        if fc_shape != self.shape(out):
            y = self.graph.add_op("RESHAPE", [y], self.shape(out), name=self.tname(out) + ":shape")
        self.values[out] = _Value(y)

    def binary(self, kind, op, ins, out, cls):
        a, b = ins
        nchw = any(self.values[i].nchw for i in ins if i in self.values and not self.is_const(i))
        names = []
        for i in (a, b):
            if self.is_const(i) and nchw:   # broadcast against NHWC: pad to rank 4, then permute
                data = self.const(i)[0].astype(np.float32)
                data = data.reshape((1,) * (4 - data.ndim) + data.shape).transpose(NHWC_TO_NCHW)
                names.append(self.graph.add_const(self.tname(i), np.ascontiguousarray(data)))
            else:
                names.append(self.value(i).name)
        act = self.options(op, cls).FusedActivationFunction() if cls else 0
        self.with_activation(kind, names, out, nchw, {}, act)

    def op_add(self, op, ins, out):
        self.binary("ADD", op, ins, out, "AddOptions")

    def op_mul(self, op, ins, out):
        self.binary("MUL", op, ins, out, "MulOptions")

    def op_sub(self, op, ins, out):
        self.binary("SUB", op, ins, out, "SubOptions")

    def op_div(self, op, ins, out):
        self.binary("DIV", op, ins, out, "DivOptions")

    def op_prelu(self, op, ins, out):
        self.binary("PRELU", op, ins, out, None)

    def op_leaky_relu(self, op, ins, out):
        x = self.value(ins[0])
        alpha = np.array(self.options(op, "LeakyReluOptions").Alpha(), np.float32)
        self.add("PRELU", [x.name, self.graph.add_const(self.tname(out) + ":alpha", alpha)], out, x.nchw, {})

    def op_pad(self, op, ins, out, value=0.0):
        x = self.value(ins[0])
        pads = self.const(ins[1], "paddings")[0].astype(np.int64)
        if pads.ndim != 2 or pads.shape[1] != 2 or (x.nchw and pads.shape[0] != 4):
            raise ConversionError(f"{self.where}: paddings of shape {list(pads.shape)}; [rank, 2] expected")
        if x.nchw:
            pads = pads[list(NHWC_TO_NCHW)]
        self.add("PAD", [x.name], out, x.nchw, dict(pads=[int(p) for p in pads[:, 0]] + [int(p) for p in pads[:, 1]],
                                                   value=value))

    def op_padv2(self, op, ins, out):
        self.op_pad(op, ins[:2], out, float(self.const(ins[2])[0].reshape(-1)[0]) if len(ins) > 2 else 0.0)

    def pool(self, kind, op, ins, out):
        o = self.options(op, "Pool2DOptions")
        n, h, w, c = self.rank(ins[0], 4, "the input")
        kernel, stride = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
        opts = dict(kernel=kernel, stride=stride, padding=self.same_pads((h, w), kernel, stride, (1, 1), o.Padding()))
        if kind == "AVG_POOL2D":
            opts["count_include_pad"] = False   # TFLite averages over the valid pixels
        self.with_activation(kind, [self.value(ins[0]).name], out, True, opts, o.FusedActivationFunction())

    def op_max_pool_2d(self, op, ins, out):
        self.pool("MAX_POOL2D", op, ins, out)

    def op_average_pool_2d(self, op, ins, out):
        self.pool("AVG_POOL2D", op, ins, out)

    def op_reshape(self, op, ins, out):
        x = self.value(ins[0])
        src = self.to_nhwc(x, self.shape(ins[0]), self.tname(out))
        shape = self.shape(out)
        y = self.graph.add_op("RESHAPE", [src], shape, name=self.tname(out), dtype=self.graph.tensors[src].dtype)
        if len(shape) == 4:
            y = self.graph.add_op("TRANSPOSE", [y], [shape[d] for d in NHWC_TO_NCHW],
                                  options=dict(perm=list(NHWC_TO_NCHW)), name=self.tname(out) + ":nchw")
        self.values[out] = _Value(y, len(shape) == 4)

    op_squeeze = op_reshape
    op_expand_dims = op_reshape

    def op_concatenation(self, op, ins, out):
        o = self.options(op, "ConcatenationOptions")
        vals = [self.value(i) for i in ins]
        rank = len(self.shape(out))
        axis = o.Axis() % rank
        nchw = vals[0].nchw
        if any(v.nchw != nchw for v in vals):
            raise ConversionError(f"concatenation at '{self.tname(out)}' mixes layouts")
        if nchw:
            axis = NHWC_TO_NCHW.index(axis)
        self.with_activation("CONCAT", [v.name for v in vals], out, nchw, dict(axis=axis),
                             o.FusedActivationFunction())

    def op_resize_bilinear(self, op, ins, out):
        o = self.options(op, "ResizeBilinearOptions")
        self.add("RESIZE_BILINEAR", [self.value(ins[0]).name], out, True,
                 dict(align_corners=bool(o.AlignCorners()), half_pixel_centers=bool(o.HalfPixelCenters())))

    def op_depth_to_space(self, op, ins, out):
        o = self.options(op, "DepthToSpaceOptions")
        self.add("DEPTH_TO_SPACE", [self.value(ins[0]).name], out, True, dict(block_size=o.BlockSize()))

    def reduce(self, kind, op, ins, out):
        """MEAN / SUM / REDUCE_MAX / REDUCE_MIN. Axes of an NCHW-held input are remapped; without
        keep_dims the result is reduced in NCHW with its axes kept, then taken to TFLite's order
        (a transpose only where the order of the remaining axes differs) and reshaped."""
        keep = bool(self.options(op, "ReducerOptions").KeepDims())
        x = self.value(ins[0])
        shape = self.shape(ins[0])
        rank = len(shape)
        axes = [int(a) for a in self.const(ins[1], "axes")[0].reshape(-1)]
        if any(not -rank <= a < rank for a in axes):
            raise ConversionError(f"{self.where}: axes {axes} out of range for rank {rank}")
        axes = sorted({a % rank for a in axes})
        if self.graph.tensors[x.name].dtype != "float32":
            raise Unsupported(kind, f"of a {self.graph.tensors[x.name].dtype} tensor (float32 reduces)")
        if not x.nchw:
            self.add("REDUCE", [x.name], out, False, dict(kind=_REDUCE[kind], axes=axes, keep_dims=keep))
            return
        ir_axes = sorted(NHWC_TO_NCHW.index(a) for a in axes)
        kept_nchw = tuple(1 if d in ir_axes else self.ir_shape(ins[0], True)[d] for d in range(4))
        if kind == "MEAN" and ir_axes == [2, 3]:   # a conv net's global average pool
            y = self.graph.add_op("GLOBAL_AVG_POOL", [x.name], kept_nchw, name=self.tname(out))
        else:
            y = self.graph.add_op("REDUCE", [x.name], kept_nchw, name=self.tname(out),
                                  options=dict(kind=_REDUCE[kind], axes=ir_axes, keep_dims=True))
        if not keep:
            order = [d for d in NCHW_TO_NHWC if kept_nchw[d] > 1]   # the remaining axes in TFLite's order
            if order != sorted(order):
                y = self.to_nhwc(_Value(y, True), [kept_nchw[d] for d in NCHW_TO_NHWC], self.tname(out))
            y = self.graph.add_op("RESHAPE", [y], self.shape(out), name=self.tname(out) + ":squeeze")
        self.values[out] = _Value(y, keep)

    def op_mean(self, op, ins, out):
        self.reduce("MEAN", op, ins, out)

    def op_sum(self, op, ins, out):
        self.reduce("SUM", op, ins, out)

    def op_reduce_max(self, op, ins, out):
        self.reduce("REDUCE_MAX", op, ins, out)

    def op_reduce_min(self, op, ins, out):
        self.reduce("REDUCE_MIN", op, ins, out)

    def op_resize_nearest_neighbor(self, op, ins, out):
        o = self.options(op, "ResizeNearestNeighborOptions")
        self.add("RESIZE_NEAREST", [self.value(ins[0]).name], out, True,
                 dict(align_corners=bool(o.AlignCorners()), half_pixel_centers=bool(o.HalfPixelCenters())))

    def op_softmax(self, op, ins, out):
        beta = self.options(op, "SoftmaxOptions").Beta()
        x = self.value(ins[0])
        name = x.name
        if beta != 1.0:
            name = self.graph.add_op("MUL", [name, self.graph.add_const("beta", np.array(beta, np.float32))],
                                     self.graph.tensors[name].shape, name=self.tname(out) + ":beta")
        self.add("SOFTMAX", [name], out, x.nchw, dict(axis=1 if x.nchw else -1))

    def unary(self, kind, ins, out):
        x = self.value(ins[0])
        opts = dict(activation=_UNARY[kind])
        if kind == "RELU_N1_TO_1":
            opts.update(min=-1.0, max=1.0)
        self.add("ACTIVATION", [x.name], out, x.nchw, opts)

    # --- slices and splits: per TFLite axis (begin, step, count), then as SLICE in the IR's layout ---
    def ints(self, i, what, length=None):
        """A constant integer vector input (begin, end, strides, sizes, axis)."""
        data = self.const(i, what)[0]
        if data.dtype.kind != "i" or data.ndim > 1 or (length is not None and data.size != length):
            raise ConversionError(f"{self.where}: {what} '{self.tname(i)}' must be an integer vector"
                                  + (f" of {length} entries" if length is not None else "")
                                  + f", not {data.dtype} of shape {list(data.shape)}")
        return [int(v) for v in data.reshape(-1)]

    def axis(self, value, rank):
        if not -rank <= value < rank:
            raise ConversionError(f"{self.where}: axis {value} is out of range for rank {rank}")
        return value % rank

    def slice_to(self, x_index, begin, step, counts, out, dropped=()):
        """SLICE of tensor x_index by per-axis (TFLite order) begin, step and count into `out`, whose
        shape lacks the `dropped` axes (shrink_axis_mask: one element each)."""
        x = self.value(x_index)
        out_shape = self.shape(out)
        if tuple(c for d, c in enumerate(counts) if d not in dropped) != tuple(out_shape):
            raise ConversionError(f"{self.where}: the slice has {list(counts)} elements per axis"
                                  + (f", axes {sorted(dropped)} dropped" if dropped else "")
                                  + f"; the output '{self.tname(out)}' has shape {list(out_shape)}")
        if x.nchw:
            begin, step, counts = ([v[d] for d in NHWC_TO_NCHW] for v in (begin, step, counts))
        y = add_slice(self.graph, x.name, begin, step, counts, self.tname(out))
        if not dropped:
            self.values[out] = _Value(y, x.nchw)
            return
        if x.nchw:   # TFLite's element order before dropping axes
            y = self.to_nhwc(_Value(y, True), [counts[d] for d in NCHW_TO_NHWC], self.tname(out))
        y = self.graph.add_op("RESHAPE", [y], out_shape, name=self.tname(out) + ":shrink",
                              dtype=self.graph.tensors[y].dtype)
        self.values[out] = _Value(y)

    def op_strided_slice(self, op, ins, out):
        o = self.options(op, "StridedSliceOptions")
        shape = self.shape(ins[0])
        rank = len(shape)
        if o.EllipsisMask() or o.NewAxisMask() or o.Offset():
            raise ConversionError(f"STRIDED_SLICE at '{self.tname(out)}': ellipsis_mask {o.EllipsisMask()}, "
                                  f"new_axis_mask {o.NewAxisMask()} and offset {bool(o.Offset())} are not "
                                  "supported (only begin_mask, end_mask and shrink_axis_mask)")
        begins, ends, strides = (self.ints(i, what) for i, what in zip(ins[1:4], ("begin", "end", "strides")))
        if not len(begins) == len(ends) == len(strides) <= rank:
            raise ConversionError(f"{self.where}: begin, end and strides have {len(begins)}, {len(ends)} and "
                                  f"{len(strides)} entries for an input of rank {rank}")
        begin, step, counts, dropped = [0] * rank, [1] * rank, list(shape), set()
        for d, (b, e, st) in enumerate(zip(begins, ends, strides)):
            if o.ShrinkAxisMask() >> d & 1:   # one index, the axis dropped
                if not -shape[d] <= b < shape[d]:
                    raise ConversionError(f"{self.where}: index {b} of shrunk axis {d} is out of range for a "
                                          f"dimension of {shape[d]}")
                begin[d], counts[d] = b % shape[d], 1
                dropped.add(d)
                continue
            begin[d], step[d], counts[d] = axis_range(shape[d], None if o.BeginMask() >> d & 1 else b,
                                                      None if o.EndMask() >> d & 1 else e, st, self.where)
        self.slice_to(ins[0], begin, step, counts, out, dropped)

    def op_slice(self, op, ins, out):
        shape = self.shape(ins[0])
        begins, sizes = self.ints(ins[1], "begin", len(shape)), self.ints(ins[2], "size", len(shape))
        counts = [n - b if s == -1 else s for n, b, s in zip(shape, begins, sizes)]
        if any(not 0 <= b < n or not 1 <= c <= n - b for n, b, c in zip(shape, begins, counts)):
            raise ConversionError(f"{self.where}: begin {begins} and size {sizes} leave the input's shape "
                                  f"{list(shape)} (or are empty)")
        self.slice_to(ins[0], begins, [1] * len(shape), counts, out)

    def split(self, op, x_index, axis, sizes):
        """Consecutive pieces along `axis` (TFLite order) into the operator's outputs."""
        shape = self.shape(x_index)
        outs = _vector(op, "Outputs")
        if len(outs) != len(sizes) or sum(sizes) != shape[axis] or min(sizes, default=0) < 1:
            raise ConversionError(f"{self.where}: sizes {sizes} for {len(outs)} outputs of an axis of {shape[axis]}")
        start = 0
        for size, out in zip(sizes, outs):
            begin, counts = [0] * len(shape), list(shape)
            begin[axis], counts[axis] = start, size
            self.slice_to(x_index, begin, [1] * len(shape), counts, out)
            start += size

    def op_split(self, op, ins, out):
        shape = self.shape(ins[1])
        axis = self.axis(self.ints(ins[0], "axis", 1)[0], len(shape))
        parts = self.options(op, "SplitOptions").NumSplits()
        if parts != len(_vector(op, "Outputs")) or shape[axis] % parts:   # (before a list of `parts` sizes)
            raise ConversionError(f"{self.where}: {parts} splits of an axis of {shape[axis]} into "
                                  f"{len(_vector(op, 'Outputs'))} outputs")
        self.split(op, ins[1], axis, [shape[axis] // parts] * parts)

    def op_split_v(self, op, ins, out):
        shape = self.shape(ins[0])
        axis = self.axis(self.ints(ins[2], "axis", 1)[0], len(shape))
        sizes = self.ints(ins[1], "size_splits")
        if sizes.count(-1) == 1:   # the rest of the axis
            sizes[sizes.index(-1)] = shape[axis] - (sum(sizes) + 1)
        self.split(op, ins[0], axis, sizes)

    def op_dequantize(self, op, ins, out):
        data, group = self.const(ins[0], "DEQUANTIZE input")
        if data.dtype != np.float16:
            raise ConversionError(self._dtype_message(ins[0], str(data.dtype).upper()))
        self.fp16_weights = True
        self.constants[out] = (data.astype(np.float32), group)

    def op_densify(self, op, ins, out):
        self.constants[out] = self.const(ins[0], "DENSIFY input")


for _kind in _UNARY:
    setattr(_Converter, "op_" + _kind.lower(), lambda self, op, ins, out, _k=_kind: self.unary(_k, ins, out))


def supported_ops():
    """The TFLite builtin ops from_tflite maps, then the custom ops (by their custom code)."""
    return sorted(n[3:].upper() for n in dir(_Converter) if n.startswith("op_")) + sorted(_CUSTOM)


def from_tflite_graph(data, progress=None):
    """The IR of a .tflite's bytes, its outputs' TFLite names, and whether its weights were fp16.
    progress(done, total) is called as operators convert. A malformed file fails with
    ConversionError naming the operator conversion stood at; the exception that revealed it is
    chained (its traceback shows where, should it be a bug)."""
    conv = None
    try:
        conv = _Converter(data, progress)
        graph = conv.convert()
    except ConversionError:
        raise
    except _MALFORMED as e:
        where = conv.where if conv else "reading the model"
        if isinstance(e, struct.error) or "buffer is smaller" in str(e):   # flatbuffers read past the end
            raise ConversionError(f"malformed TFLite model ({where}): a table or vector lies outside the "
                                  f"{len(data)}-byte file ({type(e).__name__}: {e})") from e
        raise ConversionError(f"malformed TFLite model ({where}): {type(e).__name__}: {e}") from e
    return graph, conv.output_names, conv.fp16_weights
