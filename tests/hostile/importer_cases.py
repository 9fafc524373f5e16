"""Hostile .tflite and .onnx files for the importers: bytes the schema parsers choke on (truncated,
out-of-range indices, missing fields and attributes), claims that make conversion allocate or loop
without bound (sparse tensors densified, ONNX constant folds of Loop / ConstantOfShape / Range /
Tile), external data outside the model's directory, and sizes that only the runtime's verifier
would catch. Each generator yields (name, bytes, manifest extras): `as_bytes` makes the runner pass
the model as bytes (no directory to resolve external data against)."""
import struct

import numpy as np

I32_MAX = 2**31 - 1


# --- TFLite -------------------------------------------------------------------------------------

class Tfl:
    """A one-subgraph .tflite built with the `tflite` schema package, checking nothing."""

    def __init__(self):
        self.tensors = []    # (name or None, shape or None, type, buffer, sparsity builder or None)
        self.buffers = [b""]
        self.codes = []      # builtin codes
        self.ops = []        # (code index, inputs, outputs, options (type, fn) or None)
        self.inputs, self.outputs = [], []
        self.subgraphs = 1

    def tensor(self, shape, kind=0, name=None, data=None, sparsity=None):
        buf = 0
        if data is not None:
            self.buffers.append(bytes(data))
            buf = len(self.buffers) - 1
        self.tensors.append((f"t{len(self.tensors)}" if name is None else name, shape, kind, buf, sparsity))
        return len(self.tensors) - 1

    def const(self, array, **kw):
        array = np.ascontiguousarray(array)
        kind = {np.float32: 0, np.float16: 1, np.int32: 2, np.int64: 4, np.int8: 9}[array.dtype.type]
        return self.tensor(array.shape, kind, data=array.tobytes(), **kw)

    def op(self, code, inputs, outputs, options=None):
        if code not in self.codes:
            self.codes.append(code)
        self.ops.append((self.codes.index(code), list(inputs), list(outputs), options))
        return outputs[0] if outputs else None

    def build(self):
        import flatbuffers
        import tflite as T

        b = flatbuffers.Builder(1024)

        def vec(start, items, prepend):
            start(b, len(items))
            for item in reversed(items):
                prepend(item)
            return b.EndVector()

        ints = lambda start, items: vec(start, [int(v) for v in items], b.PrependInt32)
        offs = lambda start, items: vec(start, items, b.PrependUOffsetTRelative)
        datas = []
        for raw in self.buffers:
            datas.append(b.CreateNumpyVector(np.frombuffer(raw, np.uint8)) if raw else None)
        buffers = []
        for d in datas:
            T.BufferStart(b)
            if d is not None:
                T.BufferAddData(b, d)
            buffers.append(T.BufferEnd(b))
        tensors = []
        for name, shape, kind, buf, sparsity in self.tensors:
            sp = sparsity(b) if sparsity is not None else None
            n = b.CreateString(name) if name is not None else None
            s = ints(T.TensorStartShapeVector, shape) if shape is not None else None
            T.TensorStart(b)
            if s is not None:
                T.TensorAddShape(b, s)
            T.TensorAddType(b, kind)
            if n is not None:
                T.TensorAddName(b, n)
            T.TensorAddBuffer(b, buf)
            if sp is not None:
                T.TensorAddSparsity(b, sp)
            tensors.append(T.TensorEnd(b))
        ops = []
        for code, ins, outs, options in self.ops:
            iv, ov = ints(T.OperatorStartInputsVector, ins), ints(T.OperatorStartOutputsVector, outs)
            opts = options[1](b) if options else None
            T.OperatorStart(b)
            T.OperatorAddOpcodeIndex(b, code)
            T.OperatorAddInputs(b, iv)
            T.OperatorAddOutputs(b, ov)
            if opts is not None:
                T.OperatorAddBuiltinOptionsType(b, options[0])
                T.OperatorAddBuiltinOptions(b, opts)
            ops.append(T.OperatorEnd(b))
        tv, ov = offs(T.SubGraphStartTensorsVector, tensors), offs(T.SubGraphStartOperatorsVector, ops)
        gi, go = ints(T.SubGraphStartInputsVector, self.inputs), ints(T.SubGraphStartOutputsVector, self.outputs)
        T.SubGraphStart(b)
        T.SubGraphAddTensors(b, tv)
        T.SubGraphAddInputs(b, gi)
        T.SubGraphAddOutputs(b, go)
        T.SubGraphAddOperators(b, ov)
        sg = T.SubGraphEnd(b)
        codes = []
        for code in self.codes:
            T.OperatorCodeStart(b)
            T.OperatorCodeAddBuiltinCode(b, code)
            T.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            codes.append(T.OperatorCodeEnd(b))
        sgs = offs(T.ModelStartSubgraphsVector, [sg] * self.subgraphs)
        cv = offs(T.ModelStartOperatorCodesVector, codes)
        bv = offs(T.ModelStartBuffersVector, buffers)
        T.ModelStart(b)
        T.ModelAddVersion(b, 3)
        T.ModelAddSubgraphs(b, sgs)
        T.ModelAddOperatorCodes(b, cv)
        T.ModelAddBuffers(b, bv)
        b.Finish(T.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _opts(cls, **fields):
    import tflite as T

    def build(b):
        getattr(T, cls + "Start")(b)
        for field, value in fields.items():
            getattr(T, f"{cls}Add{field}")(b, value)
        return getattr(T, cls + "End")(b)
    return getattr(T.BuiltinOptions, cls), build


def _unary(code, x_shape=(1, 4), y_shape=None, kind=0, options=None):
    m = Tfl()
    x = m.tensor(x_shape, kind)
    y = m.tensor(y_shape if y_shape is not None else x_shape)
    m.op(code, [x], [y], options)
    m.inputs, m.outputs = [x], [y]
    return m


def _sparsity(order, block_map, levels):
    """SparsityParameters: levels are ("dense", size) or ("csr", segments, indices, vector type)."""
    import tflite as T

    def index_vector(b, kind, values):
        cls, prepend = {1: ("Int32Vector", b.PrependInt32), 2: ("Uint16Vector", b.PrependUint16),
                        3: ("Uint8Vector", b.PrependUint8)}.get(kind, ("Int32Vector", b.PrependInt32))
        getattr(T, cls + "StartValuesVector")(b, len(values))
        for v in reversed(values):
            prepend(int(v))
        vals = b.EndVector()
        getattr(T, cls + "Start")(b)
        getattr(T, cls + "AddValues")(b, vals)
        return getattr(T, cls + "End")(b)

    def build(b):
        dims = []
        for level in levels:
            if level[0] == "dense":
                T.DimensionMetadataStart(b)
                T.DimensionMetadataAddFormat(b, 0)
                T.DimensionMetadataAddDenseSize(b, level[1])
            else:
                _, seg, idx, kind = level
                sv, iv = index_vector(b, kind, seg), index_vector(b, kind, idx)
                T.DimensionMetadataStart(b)
                T.DimensionMetadataAddFormat(b, 1)
                T.DimensionMetadataAddArraySegmentsType(b, kind)
                T.DimensionMetadataAddArraySegments(b, sv)
                T.DimensionMetadataAddArrayIndicesType(b, kind)
                T.DimensionMetadataAddArrayIndices(b, iv)
            dims.append(T.DimensionMetadataEnd(b))
        T.SparsityParametersStartTraversalOrderVector(b, len(order))
        for v in reversed(order):
            b.PrependInt32(v)
        ov = b.EndVector()
        T.SparsityParametersStartBlockMapVector(b, len(block_map))
        for v in reversed(block_map):
            b.PrependInt32(v)
        bm = b.EndVector()
        T.SparsityParametersStartDimMetadataVector(b, len(dims))
        for d in reversed(dims):
            b.PrependUOffsetTRelative(d)
        dv = b.EndVector()
        T.SparsityParametersStart(b)
        T.SparsityParametersAddTraversalOrder(b, ov)
        T.SparsityParametersAddBlockMap(b, bm)
        T.SparsityParametersAddDimMetadata(b, dv)
        return T.SparsityParametersEnd(b)
    return build


def _densify_fc(levels, order=(0, 1), block_map=(), values=4, w_shape=(4, 4), x_shape=(1, 4)):
    """x -> FULLY_CONNECTED(x, DENSIFY(sparse weight)): the importer decodes the sparse weight."""
    import tflite as T

    m = Tfl()
    x = m.tensor(x_shape)
    w = m.tensor(w_shape, data=np.ones(values, np.float32).tobytes(), sparsity=_sparsity(list(order),
                                                                                           list(block_map), levels))
    wd = m.tensor(w_shape)
    m.op(T.BuiltinOperator.DENSIFY, [w], [wd])
    y = m.tensor((x_shape[0], w_shape[0]))
    m.op(T.BuiltinOperator.FULLY_CONNECTED, [x, wd], [y], _opts("FullyConnectedOptions"))
    m.inputs, m.outputs = [x], [y]
    return m


def tflite_cases():
    import tflite as T

    op = T.BuiltinOperator
    conv_w = np.ones((2, 3, 3, 2), np.float32)

    def conv(name, x_shape=(1, 5, 5, 2), y_shape=(1, 3, 3, 2), weights=conv_w, code=op.CONV_2D, **o):
        m = Tfl()
        x = m.tensor(x_shape)
        w = m.const(weights) if isinstance(weights, np.ndarray) else weights(m)
        bias = m.const(np.zeros(weights.shape[0] if isinstance(weights, np.ndarray) else 2, np.float32))
        y = m.tensor(y_shape)
        opts = dict(Padding=1, StrideH=1, StrideW=1, DilationHFactor=1, DilationWFactor=1)
        opts.update(o)
        cls = "Conv2DOptions" if code == op.CONV_2D else "DepthwiseConv2DOptions"
        m.op(code, [x, w, bias], [y], _opts(cls, **opts))
        m.inputs, m.outputs = [x], [y]
        return name, m.build(), {}

    good = _unary(op.RELU).build()
    yield "relu_ok", good, {}
    for cut in (0, 8, 16, 24, 32, len(good) // 2, len(good) - 8, len(good) - 1):
        yield f"truncated_{cut}", good[:cut], {}
    yield "identifier_only", b"\0\0\0\0TFL3", {}
    yield "root_past_end", struct.pack("<I", 0xFFFFFF00) + b"TFL3" + good[8:], {}
    yield "garbage_after_identifier", good[:8] + bytes(range(256)) * 4, {}
    for k in range(8, min(len(good), 200), 4):
        yield f"word{k}_ffffffff", good[:k] + b"\xff\xff\xff\xff" + good[k + 4:], {}
    m = _unary(op.RELU)
    m.subgraphs = 0
    yield "no_subgraphs", m.build(), {}
    m.subgraphs = 2
    yield "two_subgraphs", m.build(), {}
    for name, mutate in [
        ("opcode_index_99", lambda m: m.ops.__setitem__(0, (99,) + m.ops[0][1:])),
        ("input_index_99", lambda m: m.ops[0][1].__setitem__(0, 99)),
        ("input_index_minus1", lambda m: m.ops[0][1].__setitem__(0, -1)),
        ("input_index_int_max", lambda m: m.ops[0][1].__setitem__(0, I32_MAX)),
        ("no_inputs", lambda m: m.ops[0][1].clear()),
        ("no_outputs", lambda m: m.ops[0][2].clear()),
        ("output_index_99", lambda m: m.ops[0][2].__setitem__(0, 99)),
        ("graph_output_never_written", lambda m: setattr(m, "outputs", [m.tensor((1, 4))])),
        ("graph_input_99", lambda m: setattr(m, "inputs", [99])),
        ("no_tensor_names", lambda m: setattr(m, "tensors", [(None,) + t[1:] for t in m.tensors])),
        ("tensor_name_invalid_utf8", lambda m: setattr(m, "tensors", [(b"\xff\xfe",) + t[1:] for t in m.tensors])),
        ("no_shapes", lambda m: setattr(m, "tensors", [t[:1] + (None,) + t[2:] for t in m.tensors])),
        ("input_type_int8", lambda m: m.tensors.__setitem__(0, m.tensors[0][:2] + (9,) + m.tensors[0][3:])),
        ("input_type_127", lambda m: m.tensors.__setitem__(0, m.tensors[0][:2] + (127,) + m.tensors[0][3:])),
        ("input_buffer_99", lambda m: m.tensors.__setitem__(0, m.tensors[0][:3] + (99,) + m.tensors[0][4:])),
        ("shape_dims_0", lambda m: setattr(m, "tensors", [t[:1] + ((1, 0),) + t[2:] for t in m.tensors])),
        ("shape_dims_minus1", lambda m: setattr(m, "tensors", [t[:1] + ((-1, 4),) + t[2:] for t in m.tensors])),
        ("shape_dims_int_max", lambda m: setattr(m, "tensors", [t[:1] + ((I32_MAX, I32_MAX),) + t[2:]
                                                                for t in m.tensors])),
        ("shape_rank_9", lambda m: setattr(m, "tensors", [t[:1] + ((1,) * 9,) + t[2:] for t in m.tensors])),
        ("unknown_builtin_code", lambda m: m.codes.__setitem__(0, 9999)),
    ]:
        m = _unary(op.RELU)
        mutate(m)
        yield name, m.build(), {}
    for act in (5, 99, -128):
        m = Tfl()
        a, b_, y = m.tensor((1, 4)), m.tensor((1, 4)), m.tensor((1, 4))
        m.op(op.ADD, [a, b_], [y], _opts("AddOptions", FusedActivationFunction=act))
        m.inputs, m.outputs = [a, b_], [y]
        yield f"fused_activation_{act}", m.build(), {}
    m = Tfl()
    x = m.tensor((1, 4))
    y = m.tensor((1, 4))
    m.op(op.ADD, [x], [y])
    m.inputs, m.outputs = [x], [y]
    yield "add_one_input", m.build(), {}
    for v in (0, -1, I32_MAX, 65536):
        yield conv(f"conv_stride_{v}_same", StrideH=v, Padding=0)
        yield conv(f"conv_stride_{v}_valid", StrideW=v)
        yield conv(f"conv_dilation_{v}_same", DilationHFactor=v, Padding=0)
    yield conv("conv_padding_7", Padding=7)
    yield conv("conv_input_rank3", x_shape=(5, 5, 2))
    yield conv("conv_weights_rank2", weights=np.ones((2, 18), np.float32))
    yield conv("conv_weights_not_constant", weights=lambda m: m.tensor((2, 3, 3, 2)))
    yield conv("conv_channels_disagree", weights=np.ones((2, 3, 3, 3), np.float32))
    yield conv("conv_channels_zero_groups", weights=np.ones((2, 3, 3, 4), np.float32))
    yield conv("conv_output_wrong", y_shape=(1, 9, 9, 2))
    yield conv("depthwise_weights_rank2", weights=np.ones((9, 2), np.float32), code=op.DEPTHWISE_CONV_2D)
    yield conv("depthwise_multiplier_0", weights=np.ones((1, 3, 3, 2), np.float32), code=op.DEPTHWISE_CONV_2D,
               DepthMultiplier=0)
    m = Tfl()
    x = m.tensor((1, 4))
    w = m.tensor((3, 4), data=np.ones(5, np.float32).tobytes())   # 5 values for a [3, 4] shape
    y = m.tensor((1, 3))
    m.op(op.FULLY_CONNECTED, [x, w], [y])
    m.inputs, m.outputs = [x], [y]
    yield "const_bytes_disagree_with_shape", m.build(), {}
    m.tensors[1] = ("w", (3, 4), 0, 1, None)
    m.buffers[1] = b"\0" * 7
    yield "const_bytes_not_whole_floats", m.build(), {}
    for b in (0, -1, 3, 65536, (1 << 30) + 2):
        yield f"depth_to_space_block_{b}", _unary(op.DEPTH_TO_SPACE, (1, 2, 2, 4), (1, 4, 4, 1),
                                                  options=_opts("DepthToSpaceOptions", BlockSize=b)).build(), {}
    for axis in (100, -100, I32_MAX):
        m = Tfl()
        a, b_, y = m.tensor((1, 4)), m.tensor((1, 4)), m.tensor((2, 4))
        m.op(op.CONCATENATION, [a, b_], [y], _opts("ConcatenationOptions", Axis=axis))
        m.inputs, m.outputs = [a, b_], [y]
        yield f"concat_axis_{axis}", m.build(), {}
    m = Tfl()
    a, y = m.tensor(()), m.tensor(())
    m.op(op.CONCATENATION, [a], [y], _opts("ConcatenationOptions", Axis=0))
    m.inputs, m.outputs = [a], [y]
    yield "concat_rank0", m.build(), {}
    for name, pads in [("not_pairs", np.zeros(3, np.int32)), ("rank3", np.zeros((2, 2, 2), np.int32)),
                       ("negative", np.array([[0, 0], [-5, 0]], np.int32)),
                       ("huge", np.array([[0, 0], [I32_MAX, I32_MAX]], np.int32))]:
        m = Tfl()
        x, y = m.tensor((1, 4)), m.tensor((1, 4))
        m.op(op.PAD, [x, m.const(pads)], [y])
        m.inputs, m.outputs = [x], [y]
        yield f"pad_{name}", m.build(), {}
    m = Tfl()
    x, y = m.tensor((1, 4)), m.tensor((1, 6))
    m.op(op.PADV2, [x, m.const(np.array([[0, 0], [1, 1]], np.int32)), m.const(np.zeros(0, np.float32))], [y])
    m.inputs, m.outputs = [x], [y]
    yield "padv2_empty_value", m.build(), {}
    m = Tfl()
    x, y = m.tensor((1, 2, 2, 3)), m.tensor((1, 3))
    m.op(op.MEAN, [x, m.const(np.zeros(0, np.int32))], [y], _opts("ReducerOptions", KeepDims=False))
    m.inputs, m.outputs = [x], [y]
    yield "mean_no_axes", m.build(), {}
    yield "reshape_count_differs", _unary(op.RESHAPE, (1, 4), (1, 5)).build(), {}
    yield "reshape_to_4d_huge", _unary(op.RESHAPE, (1, 4), (1, 65536, 65536, 1)).build(), {}
    yield "softmax_beta_nan", _unary(op.SOFTMAX, options=_opts("SoftmaxOptions", Beta=float("nan"))).build(), {}
    yield "pool_filter_0", _unary(op.MAX_POOL_2D, (1, 4, 4, 1), (1, 4, 4, 1),
                                  options=_opts("Pool2DOptions", Padding=0, FilterHeight=0, FilterWidth=0,
                                                StrideH=1, StrideW=1)).build(), {}
    yield "pool_stride_0_same", _unary(op.AVERAGE_POOL_2D, (1, 4, 4, 1), (1, 4, 4, 1),
                                       options=_opts("Pool2DOptions", Padding=0, FilterHeight=2, FilterWidth=2,
                                                     StrideH=0, StrideW=0)).build(), {}
    yield "pool_filter_huge", _unary(op.MAX_POOL_2D, (1, 4, 4, 1), (1, 1, 1, 1),
                                     options=_opts("Pool2DOptions", Padding=1, FilterHeight=I32_MAX,
                                                   FilterWidth=I32_MAX, StrideH=1, StrideW=1)).build(), {}
    yield "options_of_another_op", _unary(op.SOFTMAX, options=_opts("Conv2DOptions", StrideH=0)).build(), {}
    m = Tfl()
    x, y = m.tensor((1, 4)), m.tensor((1, 3))
    m.op(op.FULLY_CONNECTED, [x, m.const(np.ones((3, 4), np.float32))], [y])
    m.inputs, m.outputs = [x], [y]
    yield "fully_connected_without_options", m.build(), {}
    # Sparse weights (DENSIFY): the decoder walks the file's levels and index vectors.
    yield "sparse_ok", _densify_fc([("dense", 4), ("csr", [0, 1, 2, 3, 4], [0, 1, 2, 3], 1)]).build(), {}
    yield "sparse_order_mismatch", _densify_fc([("dense", 4)]).build(), {}
    yield "sparse_segments_out_of_range", _densify_fc([("dense", 4), ("csr", [0, 9, 9, 9, 99], [0, 1], 1)]).build(), {}
    yield "sparse_indices_out_of_range", _densify_fc([("dense", 4), ("csr", [0, 1, 2, 3, 4], [9, 99, -1, 7], 1)]) \
        .build(), {}
    yield "sparse_segments_short", _densify_fc([("dense", 4), ("csr", [0], [], 1)]).build(), {}
    yield "sparse_segments_decreasing", _densify_fc([("dense", 4), ("csr", [0, 3, 1, 2, 4], [0, 1, 2, 3], 2)]) \
        .build(), {}
    yield "sparse_index_type_0", _densify_fc([("dense", 4), ("csr", [0, 1, 2, 3, 4], [0, 1, 2, 3], 0)]).build(), {}
    yield "sparse_index_type_9", _densify_fc([("dense", 4), ("csr", [0, 1, 2, 3, 4], [0, 1, 2, 3], 9)]).build(), {}
    yield "sparse_values_short", _densify_fc([("dense", 4), ("csr", [0, 4, 8, 12, 16], list(range(4)) * 4, 1)],
                                             values=2).build(), {}
    yield "sparse_dense_size_huge", _densify_fc([("dense", I32_MAX), ("dense", I32_MAX)]).build(), {}
    yield "sparse_dense_size_2e20", _densify_fc([("dense", 1 << 10), ("dense", 1 << 10)]).build(), {}
    yield "sparse_dense_size_negative", _densify_fc([("dense", -4), ("dense", 4)]).build(), {}
    yield "sparse_block_map_dim7", _densify_fc([("dense", 4), ("dense", 4), ("dense", 1)], order=(0, 1, 2),
                                               block_map=(7,)).build(), {}
    yield "sparse_order_out_of_range", _densify_fc([("dense", 4), ("dense", 4)], order=(0, 9)).build(), {}
    yield "sparse_order_repeated", _densify_fc([("dense", 4), ("dense", 4)], order=(0, 0)).build(), {}
    yield "sparse_block_size_0", _densify_fc([("dense", 4), ("dense", 4), ("dense", 0)], order=(0, 1, 2),
                                             block_map=(0,)).build(), {}
    yield "sparse_shape_2e40", _densify_fc([("dense", 4), ("dense", 4)], w_shape=(1 << 20, 1 << 20),
                                           x_shape=(1, 1 << 20)).build(), {}
    yield "sparse_shape_rank9", _densify_fc([("dense", 1)] * 9, order=tuple(range(9)), w_shape=(1,) * 9).build(), {}
    m = Tfl()
    x = m.tensor((1, 4))
    y = x
    for _ in range(5000):   # a long chain: conversion time must stay linear
        y = m.op(op.RELU, [y], [m.tensor((1, 4))])
    m.inputs, m.outputs = [x], [y]
    yield "relu_chain_5000", m.build(), {}


def tflite_side_files():
    return []


# --- ONNX ---------------------------------------------------------------------------------------

def _onnx(nodes, inputs, outputs, initializers=(), opset=17, value_info=()):
    from onnx import helper

    graph = helper.make_graph(nodes, "hostile", inputs, outputs, list(initializers), value_info=list(value_info))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)] if opset else [])
    model.ir_version = 8
    return model.SerializeToString()


def _vi(name, shape, elem=1):
    from onnx import helper

    return helper.make_tensor_value_info(name, elem, shape)


def _const(name, array):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(array), name)


def _external(name, location, shape, offset=None, length=None, dtype=1):
    """An initializer whose data lives in an external file."""
    from onnx import TensorProto

    t = TensorProto(name=name, data_type=dtype, dims=list(shape), data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            entry = t.external_data.add()
            entry.key, entry.value = key, str(value)
    return t


def _folded_add(node, consts=(), elem=1):
    """x + fold(node), x of one element: every input of node is a constant, so the importer folds it
    before it looks at the Add."""
    from onnx import helper

    add = helper.make_node("Add", ["x", node.output[0]], ["y"])
    return _onnx([node, add], [_vi("x", [1], elem)], [_vi("y", [1], elem)], consts)


def onnx_cases():
    from onnx import TensorProto, helper

    make = helper.make_node
    x4 = [_vi("x", [1, 2, 4, 4])]
    good = _onnx([make("Relu", ["x"], ["y"])], [_vi("x", [1, 4])], [_vi("y", [1, 4])])
    yield "relu_ok", good, {}
    yield "garbage", bytes(range(256)) * 4, {}
    for cut in (1, 10, len(good) // 2, len(good) - 1):
        yield f"truncated_{cut}", good[:cut], {}
    yield "no_opset", _onnx([make("Relu", ["x"], ["y"])], [_vi("x", [1, 4])], [_vi("y", [1, 4])], opset=None), {}
    for opset in (1, 12, 21, 1000):
        yield f"opset_{opset}", _onnx([make("Relu", ["x"], ["y"])], [_vi("x", [1, 4])], [_vi("y", [1, 4])],
                                      opset=opset), {}
    # Constant folds that compute without bound: every input is a constant, so the importer folds.
    body = helper.make_graph([make("Identity", ["cond_in"], ["cond_out"]), make("Add", ["v_in", "one"], ["v_out"])],
                             "body", [_vi("i", [], TensorProto.INT64), _vi("cond_in", [], TensorProto.BOOL),
                                      _vi("v_in", [1])], [_vi("cond_out", [], TensorProto.BOOL), _vi("v_out", [1])],
                             [_const("one", np.ones(1, np.float32))])
    loop = make("Loop", ["trip", "cond", "v0"], ["c"], body=body)
    yield "fold_loop_1e9", _folded_add(loop, [_const("trip", np.array(10**9, np.int64)),
                                                   _const("cond", np.array(True)),
                                                   _const("v0", np.zeros(1, np.float32))]), {}
    for name, shape in [("2e31_int64", [1 << 31]), ("2e40", [1 << 20, 1 << 20]), ("2e28", [1 << 28]),
                        ("negative", [-1]), ("rank9", [1] * 9)]:
        node = make("ConstantOfShape", ["shape"], ["c"],
                    value=helper.make_tensor("v", TensorProto.INT64 if "int64" in name else TensorProto.FLOAT, [1],
                                             [1]))
        yield f"fold_constant_of_shape_{name}", _folded_add(node, [_const("shape", np.array(shape, np.int64))],
                                                            TensorProto.INT64 if "int64" in name else 1), {}
    for name, (start, limit, delta) in [("1e12", (0, 10**12, 1)), ("3e8", (0, 3 * 10**8, 1)),
                                        ("delta0", (0, 10, 0)), ("float_tiny_delta", (0.0, 1.0, 1e-30))]:
        dtype = np.float32 if isinstance(start, float) else np.int64
        node = make("Range", ["s", "l", "d"], ["c"])
        yield f"fold_range_{name}", _folded_add(node, [_const("s", np.array(start, dtype)),
                                                            _const("l", np.array(limit, dtype)),
                                                            _const("d", np.array(delta, dtype))],
                                                TensorProto.INT64 if dtype == np.int64 else 1), {}
    yield "fold_tile_2e31", _folded_add(make("Tile", ["one", "reps"], ["c"]),
                                        [_const("one", np.ones(1, np.float32)),
                                         _const("reps", np.array([1 << 31], np.int64))]), {}
    yield "fold_expand_2e34", _folded_add(make("Expand", ["one", "shape"], ["c"]),
                                          [_const("one", np.ones(1, np.float32)),
                                           _const("shape", np.array([1 << 17, 1 << 17], np.int64))]), {}
    yield "fold_reshape_invalid", _folded_add(make("Reshape", ["one", "shape"], ["c"]),
                                              [_const("one", np.ones(6, np.float32)),
                                               _const("shape", np.array([4, -1], np.int64))]), {}
    yield "fold_unknown_op", _folded_add(make("Einsum", ["one", "one"], ["c"], equation="i,i->"),
                                         [_const("one", np.ones(4, np.float32))]), {}
    yield "fold_matmul_rank_mismatch", _folded_add(make("MatMul", ["a", "a"], ["c"]),
                                                   [_const("a", np.ones((2, 3), np.float32))]), {}
    if_node = make("If", ["cond"], ["c"], then_branch=helper.make_graph(
        [make("Constant", [], ["t"], value=helper.make_tensor("v", 1, [1], [1.0]))], "then", [], [_vi("t", [1])]),
        else_branch=helper.make_graph([make("Constant", [], ["e"], value=helper.make_tensor("v", 1, [1], [2.0]))],
                                      "else", [], [_vi("e", [1])]))
    yield "fold_if", _folded_add(if_node, [_const("cond", np.array(True))]), {}
    # Nodes missing what the importer reads without checking.
    for name, node, extra_init in [
        ("maxpool_no_kernel", make("MaxPool", ["x"], ["y"]), []),
        ("concat_no_axis", make("Concat", ["x", "x"], ["y"]), []),
        ("cast_no_to", make("Cast", ["x"], ["y"]), []),
        ("conv_one_input", make("Conv", ["x"], ["y"]), []),
        ("conv_pads_short", make("Conv", ["x", "w"], ["y"], pads=[1]), [_const("w", np.ones((2, 2, 1, 1),
                                                                                          np.float32))]),
        ("conv_pads_negative", make("Conv", ["x", "w"], ["y"], pads=[-3, -3, -3, -3]),
         [_const("w", np.ones((2, 2, 1, 1), np.float32))]),
        ("conv_strides_zero", make("Conv", ["x", "w"], ["y"], strides=[0, 0]),
         [_const("w", np.ones((2, 2, 1, 1), np.float32))]),
        ("conv_weight_rank2", make("Conv", ["x", "w"], ["y"]), [_const("w", np.ones((2, 2), np.float32))]),
        ("clip_min_not_constant", make("Clip", ["x", "x"], ["y"]), []),
        ("pad_odd_pads", make("Pad", ["x", "p"], ["y"]), [_const("p", np.array([1, 1, 1], np.int64))]),
        ("pad_huge", make("Pad", ["x", "p"], ["y"]), [_const("p", np.array([0, 0, 0, 0, 0, 0, 1 << 40, 1 << 40],
                                                                            np.int64))]),
        ("softmax_axis_100", make("Softmax", ["x"], ["y"], axis=100), []),
        ("transpose_bad_perm", make("Transpose", ["x"], ["y"], perm=[0, 0, 9, -1]), []),
        ("gather_float_ids", make("Gather", ["x", "i"], ["y"]), [_const("i", np.zeros(2, np.float32))]),
        ("reshape_shape_not_constant", make("Reshape", ["x", "x"], ["y"]), []),
        ("layernorm_axis_0", make("LayerNormalization", ["x"], ["y"], axis=0), []),
        ("gemm_alpha", make("Gemm", ["x", "w"], ["y"], alpha=2.0), [_const("w", np.ones((4, 4), np.float32))]),
        ("no_outputs", make("Relu", ["x"], []), []),
        ("constant_no_value", make("Constant", [], ["y"]), []),
        ("constant_string", make("Constant", [], ["y"], value_string="hostile"), []),
        ("constant_sparse", make("Constant", [], ["y"], sparse_value=helper.make_sparse_tensor(
            helper.make_tensor("v", 1, [2], [1.0, 2.0]), helper.make_tensor("i", 7, [2], [0, 99]), [4])), []),
        ("custom_domain", make("Relu", ["x"], ["y"], domain="com.hostile"), []),
        ("unsupported_op", make("NonMaxSuppression", ["x"], ["y"]), []),
    ]:
        yield name, _onnx([node], x4, [_vi("y", [1, 2, 4, 4])], extra_init), {}
    for name, shape, elem in [("dim_param", ["batch", 4], 1), ("dim_0", [0, 4], 1), ("dim_2e31", [1, 1 << 31], 1),
                              ("dim_2e40", [1 << 40], 1), ("rank_9", [1] * 9, 1), ("int8", [1, 4], 3),
                              ("string", [1, 4], 8), ("undefined", [1, 4], 0)]:
        yield f"input_{name}", _onnx([make("Relu", ["x"], ["y"])], [_vi("x", shape, elem)], [_vi("y", shape, elem)]), {}
    yield "output_not_computed", _onnx([make("Relu", ["x"], ["y"])], [_vi("x", [1, 4])], [_vi("z", [1, 4])]), {}
    yield "value_used_before_computed", _onnx([make("Relu", ["z"], ["y"]), make("Relu", ["x"], ["z"])],
                                              [_vi("x", [1, 4])], [_vi("y", [1, 4])]), {}
    yield "add_float_int64", _onnx([make("Add", ["x", "i"], ["y"])], [_vi("x", [1, 4]), _vi("i", [1, 4], 7)],
                                   [_vi("y", [1, 4])]), {}
    yield "value_written_twice", _onnx([make("Relu", ["x"], ["y"]), make("Sigmoid", ["x"], ["y"])],
                                       [_vi("x", [1, 4])], [_vi("y", [1, 4])]), {}
    # Initializers whose bytes disagree with their dims and type.
    for name, tensor in [
        ("raw_data_short", TensorProto(name="w", data_type=1, dims=[4, 4], raw_data=b"\0" * 7)),
        ("dims_2e40_no_data", TensorProto(name="w", data_type=1, dims=[1 << 20, 1 << 20])),
        ("dims_negative", TensorProto(name="w", data_type=1, dims=[-4, 4], raw_data=b"\0" * 64)),
        ("type_undefined", TensorProto(name="w", data_type=0, dims=[4, 4], raw_data=b"\0" * 64)),
        ("type_string", TensorProto(name="w", data_type=8, dims=[4, 4])),
        ("float_data_count", TensorProto(name="w", data_type=1, dims=[4, 4], float_data=[1.0] * 3)),
    ]:
        yield f"initializer_{name}", _onnx([make("MatMul", ["x", "w"], ["y"])], [_vi("x", [1, 4])],
                                           [_vi("y", [1, 4])], [tensor]), {}
    # External data: only the model's own directory may be read, and nothing when there is no
    # directory (a model given as bytes). The corpus directory holds weights.bin (legitimate) and
    # decoy.bin; the runner's working directory (a subdirectory) holds another decoy.bin.
    ext = lambda t: _onnx([make("MatMul", ["x", "w"], ["y"])], [_vi("x", [1, 4])], [_vi("y", [1, 4])], [t])
    yield "external_ok", ext(_external("w", "weights.bin", [4, 4])), {}
    yield "external_ok_as_bytes", ext(_external("w", "weights.bin", [4, 4])), dict(as_bytes=True)
    yield "external_cwd_relative_as_bytes", ext(_external("w", "decoy.bin", [4, 4])), dict(as_bytes=True)
    yield "external_parent_dir", ext(_external("w", "../decoy.bin", [4, 4])), {}
    yield "external_parent_dir_as_bytes", ext(_external("w", "../decoy.bin", [4, 4])), dict(as_bytes=True)
    yield "external_absolute_cwd", ext(_external("w", "/proc/self/cwd/decoy.bin", [4, 4])), {}
    yield "external_absolute_cwd_as_bytes", ext(_external("w", "/proc/self/cwd/decoy.bin", [4, 4])), \
        dict(as_bytes=True)
    yield "external_dev_zero_8gb", ext(_external("w", "/dev/zero", [1 << 16, 1 << 15])), {}
    yield "external_offset_past_end", ext(_external("w", "weights.bin", [4, 4], offset=1 << 40)), {}
    yield "external_length_huge", ext(_external("w", "weights.bin", [4, 4], length=1 << 40)), {}
    yield "external_length_short", ext(_external("w", "weights.bin", [4, 4], length=8)), {}
    yield "external_offset_negative", ext(_external("w", "weights.bin", [4, 4], offset=-64)), {}
    yield "external_missing_file", ext(_external("w", "missing.bin", [4, 4])), {}
    yield "external_directory", ext(_external("w", ".", [4, 4])), {}
    yield "external_no_location", ext(_external("w", None, [4, 4])), {}
    yield "external_nul_in_location", ext(_external("w", "weights.bin\0decoy", [4, 4])), {}
    big = [make("Relu", ["x" if i == 0 else f"v{i - 1}"], [f"v{i}" if i < 4999 else "y"]) for i in range(5000)]
    yield "relu_chain_5000", _onnx(big, [_vi("x", [1, 4])], [_vi("y", [1, 4])]), {}


def onnx_side_files():
    from runner import DECOY

    decoy = np.full(16, DECOY, np.float32).tobytes()   # exactly the [4, 4] initializer that reads it
    return [("weights.bin", np.arange(16, dtype=np.float32).tobytes()), ("decoy.bin", decoy),
            ("cwd/decoy.bin", decoy)]
