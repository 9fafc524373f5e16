"""TFLite frontend: a .tflite flatbuffer (read with the `tflite` schema package) -> IR.

TFLite graphs are NHWC; sparselite's conv kernels are NCHW. Every rank-4 activation becomes NCHW
on the way in: weights and constants are permuted here, once, and axis arguments are remapped, so
no layout transpose runs between ops. Transposes run only where NHWC order is observable: after
the graph input, before a RESHAPE of a 4-D tensor, and before a 4-D graph output.

Sparse weights (SparsityParameters feeding DENSIFY) and fp16 weights (feeding DEQUANTIZE) become
IR constants directly; a sparse weight keeps the file's structure (group size r from a block over
output channels, else 1) instead of being re-detected.
"""
import numpy as np

from sparselite.errors import ConversionError

from .ir import Graph

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "CLAMP", 3: "RELU6", 4: "TANH"}   # ActivationFunctionType
_UNARY = {"RELU": "RELU", "RELU6": "RELU6", "LOGISTIC": "SIGMOID", "TANH": "TANH", "HARD_SWISH": "HARDSWISH",
          "RELU_N1_TO_1": "CLAMP", "GELU": "GELU"}


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
        self.T = _schema()
        self.model = self.T.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise ConversionError(f"the model has {self.model.SubgraphsLength()} subgraphs; only single-subgraph "
                                  "models (no control flow) are supported")
        self.sub = self.model.Subgraphs(0)
        self.op_names = {v: k for k, v in vars(self.T.BuiltinOperator).items() if not k.startswith("_")}
        self.type_names = {v: k for k, v in vars(self.T.TensorType).items() if not k.startswith("_")}
        self.graph = Graph()
        self.values = {}        # TFLite tensor index -> _Value
        self.constants = {}     # TFLite tensor index -> (numpy array, group size or 0)
        self.fp16_weights = False
        self.output_names = []

    # --- tensors -------------------------------------------------------------------------
    def tensor(self, i):
        return self.sub.Tensors(i)

    def tname(self, i):
        return self.tensor(i).Name().decode()

    def shape(self, i):
        t = self.tensor(i)
        return tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()

    def const(self, i, what="input"):
        """A constant input as (array, group size), decoding fp16 and sparse storage."""
        if i in self.constants:
            return self.constants[i]
        t = self.tensor(i)
        buf = self.model.Buffers(t.Buffer())
        if buf is None or buf.DataLength() == 0:
            raise ConversionError(f"{what} '{self.tname(i)}' must be a constant")
        dtypes = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "INT64": np.int64}
        kind = self.type_names.get(t.Type(), str(t.Type()))
        if kind not in dtypes:
            raise ConversionError(self._dtype_message(i, kind))
        raw = np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=dtypes[kind])
        group = 0
        if t.Sparsity() is not None:
            data, group = self._densify(raw, self.shape(i), t.Sparsity(), self.tname(i))
        else:
            data = raw.reshape(self.shape(i))
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
        channels) is sparselite's r; any other pattern is stored with r = 1."""
        order = [int(d) for d in sp.TraversalOrderAsNumpy()]
        block_map = [int(d) for d in sp.BlockMapAsNumpy()] if sp.BlockMapLength() else []
        n = len(shape)
        levels = []
        for k in range(sp.DimMetadataLength()):
            dm = sp.DimMetadata(k)
            if dm.Format() == 0:
                levels.append(("dense", dm.DenseSize(), None, None))
            else:
                levels.append(("csr", None, self._index_vector(dm.ArraySegmentsType(), dm.ArraySegments()),
                               self._index_vector(dm.ArrayIndicesType(), dm.ArrayIndices())))
        if len(order) != n + len(block_map) or len(levels) != len(order):
            raise ConversionError(f"sparse tensor '{name}': traversal order and dimension metadata disagree")
        block_size = {block_map[b]: levels[order.index(n + b)][1] for b in range(len(block_map))}
        dense = np.zeros(shape, dtype=values.dtype)
        coord = [0] * len(order)

        def walk(level, pos):
            if level == len(order):
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
                for j in range(int(segments[pos]), int(segments[pos + 1])):
                    coord[order[level]] = int(indices[j])
                    walk(level + 1, j)

        walk(0, 0)
        r = block_size.get(0, 1)
        return dense, (r if r in (1, 2, 4, 8) else 1)

    def _index_vector(self, kind, table):
        vectors = {1: self.T.Int32Vector, 2: self.T.Uint16Vector, 3: self.T.Uint8Vector}
        if kind not in vectors:
            raise ConversionError(f"sparse index vector type {kind} is not supported")
        vec = vectors[kind]()
        vec.Init(table.Bytes, table.Pos)
        return vec.ValuesAsNumpy()

    def value(self, i):
        """The IR value of a TFLite tensor; constants are added (NCHW when 4-D) on first use."""
        if i in self.values:
            return self.values[i]
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
        buf = self.model.Buffers(self.tensor(i).Buffer())
        return i in self.constants or (buf is not None and buf.DataLength() > 0)

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
        for k in range(self.sub.InputsLength()):
            i = self.sub.Inputs(k)
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
        for k in range(total):
            if self.progress is not None:
                self.progress(k, total)
            op = self.sub.Operators(k)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            kind = self.op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
            handler = getattr(self, "op_" + kind.lower(), None)
            if handler is None:
                supported = sorted(n[3:].upper() for n in dir(self) if n.startswith("op_"))
                raise ConversionError(f"unsupported TFLite op {kind} (operator {k}, output "
                                      f"'{self.tname(op.Outputs(0))}'); supported: {supported}")
            ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
            handler(op, ins, int(op.Outputs(0)))
        if self.progress is not None:
            self.progress(total, total)
        for k in range(self.sub.OutputsLength()):
            i = self.sub.Outputs(k)
            v = self.values[i]
            name = self.to_nhwc(v, self.shape(i), self.tname(i)) if v.nchw else v.name
            self.graph.outputs.append(name)
            self.output_names.append(self.tname(i))
        return self.graph

    def options(self, op, cls):
        table = op.BuiltinOptions()
        opts = getattr(self.T, cls)()
        if table is not None:
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
        n, h, wd, c = self.shape(ins[0])
        stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
        pads = self.same_pads((h, wd), w.shape[1:3], stride, dilation, o.Padding())
        self.with_activation("CONV2D", self.conv_inputs(ins, np.ascontiguousarray(w.transpose(0, 3, 1, 2))), out,
                             True, dict(stride=stride, dilation=dilation, padding=pads, groups=c // w.shape[3]),
                             o.FusedActivationFunction())

    def op_depthwise_conv_2d(self, op, ins, out):
        o = self.options(op, "DepthwiseConv2DOptions")
        w = self.const(ins[1], "weights")[0].astype(np.float32)                       # 1, KH, KW, C*M
        n, h, wd, c = self.shape(ins[0])
        stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
        pads = self.same_pads((h, wd), w.shape[1:3], stride, dilation, o.Padding())
        self.with_activation("CONV2D", self.conv_inputs(ins, np.ascontiguousarray(w.transpose(3, 0, 1, 2))), out,
                             True, dict(stride=stride, dilation=dilation, padding=pads, groups=c),
                             o.FusedActivationFunction())

    def op_fully_connected(self, op, ins, out):
        o = self.options(op, "FullyConnectedOptions")
        w, group = self.const(ins[1], "weights")
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

    def op_pad(self, op, ins, out, value=0.0):
        x = self.value(ins[0])
        pads = self.const(ins[1], "paddings")[0].astype(np.int64)
        if x.nchw:
            pads = pads[list(NHWC_TO_NCHW)]
        self.add("PAD", [x.name], out, x.nchw, dict(pads=[int(p) for p in pads[:, 0]] + [int(p) for p in pads[:, 1]],
                                                   value=value))

    def op_padv2(self, op, ins, out):
        self.op_pad(op, ins[:2], out, float(self.const(ins[2])[0].reshape(-1)[0]) if len(ins) > 2 else 0.0)

    def pool(self, kind, op, ins, out):
        o = self.options(op, "Pool2DOptions")
        n, h, w, c = self.shape(ins[0])
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

    def op_mean(self, op, ins, out):
        o = self.options(op, "ReducerOptions")
        x = self.value(ins[0])
        axes = sorted(int(a) % 4 for a in self.const(ins[1], "axes")[0].reshape(-1))
        if not x.nchw or axes != [1, 2]:
            raise ConversionError(f"MEAN at '{self.tname(out)}' over axes {axes}: only the spatial axes of an "
                                  "NHWC tensor are supported")
        n, _, _, c = self.shape(ins[0])
        y = self.graph.add_op("GLOBAL_AVG_POOL", [x.name], (n, c, 1, 1), name=self.tname(out))
        if not o.KeepDims():
            y = self.graph.add_op("RESHAPE", [y], self.shape(out), name=self.tname(out) + ":squeeze")
        self.values[out] = _Value(y, bool(o.KeepDims()))

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


def from_tflite_graph(data, progress=None):
    """The IR of a .tflite's bytes, its outputs' TFLite names, and whether its weights were fp16.
    progress(done, total) is called as operators convert."""
    conv = _Converter(data, progress)
    graph = conv.convert()
    return graph, conv.output_names, conv.fp16_weights
