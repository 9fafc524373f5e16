"""Serializes the IR into a .slite file: a FlatBuffer followed by 64-byte aligned data."""
import flatbuffers
import numpy as np

from sparselite import _schema as S
from sparselite._op_options import OP_OPTIONS

from .sparsity import encode_group_sparse

FORMAT_VERSION = 1
ALIGN = 64
DTYPES = {"float32": S.DType.FLOAT32, "float16": S.DType.FLOAT16, "int32": S.DType.INT32,
          "int64": S.DType.INT64, "uint16": S.DType.UINT16, "uint32": S.DType.UINT32, "bool": S.DType.BOOL}
ACTIVATIONS = {name: getattr(S.Activation, name) for name in vars(S.Activation) if not name.startswith("_")}


class _Data:
    """The data section: buffers[0] is empty; the writer places the rest after the FlatBuffer."""

    def __init__(self):
        self.blobs = [b""]

    def add(self, array):
        self.blobs.append(np.ascontiguousarray(array).tobytes())
        return len(self.blobs) - 1


def _ints(builder, start_fn, values):
    start_fn(builder, len(values))
    for v in reversed(values):
        builder.PrependInt32(int(v))
    return builder.EndVector()


def _offsets(builder, start_fn, offsets):
    start_fn(builder, len(offsets))
    for o in reversed(offsets):
        builder.PrependUOffsetTRelative(o)
    return builder.EndVector()


def _encode(data, t, fp16):
    """Adds a tensor's data to the data section; returns how the table refers to it."""
    enc = {"buffer": 0, "storage": DTYPES[t.dtype], "sparse": None}
    if t.data is None:
        return enc
    values = t.data
    if fp16 and t.dtype == "float32":
        values, enc["storage"] = values.astype(np.float16), S.DType.FLOAT16
    if t.group_size:
        rows = values.reshape(t.shape[0], -1)
        perm = None if t.out_perm is None else data.add(np.asarray(t.out_perm, np.uint32))
        if t.out_perm is not None:
            rows = rows[t.out_perm]
        row_ptr, col_idx, vals = encode_group_sparse(rows, t.group_size)
        enc["sparse"] = (t.group_size, data.add(row_ptr), data.add(col_idx), DTYPES[str(col_idx.dtype)], perm)
        enc["buffer"] = data.add(vals)
    else:
        enc["buffer"] = data.add(values)
    return enc


def _tensor(builder, t, enc, dim_ids):
    name = builder.CreateString(t.name)
    shape = _ints(builder, S.TensorStartShapeVector, t.shape)
    dynamic = None
    if any(d is not None for d in t.dynamic):
        S.TensorStartDynamicDimsVector(builder, len(t.dynamic))
        for d in reversed(t.dynamic):
            builder.PrependUint8(0 if d is None else dim_ids[d])
        dynamic = builder.EndVector()
    sparsity = None
    if enc["sparse"] is not None:
        r, row_ptr, col_idx, index_type, perm = enc["sparse"]
        S.GroupSparsityStart(builder)
        S.GroupSparsityAddGroupSize(builder, r)
        S.GroupSparsityAddRowPtr(builder, row_ptr)
        S.GroupSparsityAddColIdx(builder, col_idx)
        S.GroupSparsityAddIndexType(builder, index_type)
        if perm is not None:
            S.GroupSparsityAddOutPerm(builder, perm)
        sparsity = S.GroupSparsityEnd(builder)
    S.TensorStart(builder)
    S.TensorAddName(builder, name)
    S.TensorAddDtype(builder, DTYPES[t.dtype])
    S.TensorAddShape(builder, shape)
    S.TensorAddBuffer(builder, enc["buffer"])
    S.TensorAddStorage(builder, enc["storage"])
    if sparsity is not None:
        S.TensorAddSparsity(builder, sparsity)
    if dynamic is not None:
        S.TensorAddDynamicDims(builder, dynamic)
    return S.TensorEnd(builder)


def _activation(builder, add_fn, opts):
    act = ACTIVATIONS[opts.get("activation", "NONE")]
    add_fn[0](builder, act)
    add_fn[1](builder, float(opts.get("act_min", opts.get("min", 0.0))))
    add_fn[2](builder, float(opts.get("act_max", opts.get("max", 0.0))))


def _conv2d_options(builder, o):
    sh, sw = o.get("stride", (1, 1))
    dh, dw = o.get("dilation", (1, 1))
    pt, pl, pb, pr = o.get("padding", (0, 0, 0, 0))
    S.Conv2DOptionsStart(builder)
    for fn, v in ((S.Conv2DOptionsAddStrideH, sh), (S.Conv2DOptionsAddStrideW, sw),
                  (S.Conv2DOptionsAddDilationH, dh), (S.Conv2DOptionsAddDilationW, dw),
                  (S.Conv2DOptionsAddPadTop, pt), (S.Conv2DOptionsAddPadLeft, pl),
                  (S.Conv2DOptionsAddPadBottom, pb), (S.Conv2DOptionsAddPadRight, pr),
                  (S.Conv2DOptionsAddGroups, o.get("groups", 1))):
        fn(builder, int(v))
    _activation(builder, (S.Conv2DOptionsAddActivation, S.Conv2DOptionsAddActMin, S.Conv2DOptionsAddActMax), o)
    return S.Conv2DOptionsEnd(builder)


def _fully_connected_options(builder, o):
    S.FullyConnectedOptionsStart(builder)
    _activation(builder, (S.FullyConnectedOptionsAddActivation, S.FullyConnectedOptionsAddActMin,
                          S.FullyConnectedOptionsAddActMax), o)
    return S.FullyConnectedOptionsEnd(builder)


def _activation_options(builder, o):
    S.ActivationOptionsStart(builder)
    _activation(builder, (S.ActivationOptionsAddActivation, S.ActivationOptionsAddMin, S.ActivationOptionsAddMax), o)
    S.ActivationOptionsAddExponent(builder, float(o.get("exponent", 1.0)))
    return S.ActivationOptionsEnd(builder)


def _binary_options(builder, o):
    S.BinaryOptionsStart(builder)
    _activation(builder, (S.BinaryOptionsAddActivation, S.BinaryOptionsAddActMin, S.BinaryOptionsAddActMax), o)
    return S.BinaryOptionsEnd(builder)


def _pool2d_options(builder, o):
    kh, kw = o["kernel"]
    sh, sw = o.get("stride", (1, 1))
    pt, pl, pb, pr = o.get("padding", (0, 0, 0, 0))
    S.Pool2DOptionsStart(builder)
    for fn, v in ((S.Pool2DOptionsAddKernelH, kh), (S.Pool2DOptionsAddKernelW, kw),
                  (S.Pool2DOptionsAddStrideH, sh), (S.Pool2DOptionsAddStrideW, sw),
                  (S.Pool2DOptionsAddPadTop, pt), (S.Pool2DOptionsAddPadLeft, pl),
                  (S.Pool2DOptionsAddPadBottom, pb), (S.Pool2DOptionsAddPadRight, pr)):
        fn(builder, int(v))
    S.Pool2DOptionsAddCountIncludePad(builder, bool(o.get("count_include_pad", True)))
    return S.Pool2DOptionsEnd(builder)


def _concat_options(builder, o):
    S.ConcatOptionsStart(builder)
    S.ConcatOptionsAddAxis(builder, int(o["axis"]))
    return S.ConcatOptionsEnd(builder)


def _pad_options(builder, o):
    pads = _ints(builder, S.PadOptionsStartPadsVector, o["pads"])
    S.PadOptionsStart(builder)
    S.PadOptionsAddPads(builder, pads)
    S.PadOptionsAddValue(builder, float(o.get("value", 0.0)))
    return S.PadOptionsEnd(builder)


def _softmax_options(builder, o):
    S.SoftmaxOptionsStart(builder)
    S.SoftmaxOptionsAddAxis(builder, int(o.get("axis", -1)))
    S.SoftmaxOptionsAddScale(builder, float(o.get("scale", 1.0)))
    return S.SoftmaxOptionsEnd(builder)


def _transpose_options(builder, o):
    vec = _ints(builder, S.TransposeOptionsStartPermVector, o["perm"])
    S.TransposeOptionsStart(builder)
    S.TransposeOptionsAddPerm(builder, vec)
    return S.TransposeOptionsEnd(builder)


def _layer_norm_options(builder, o):
    S.LayerNormOptionsStart(builder)
    S.LayerNormOptionsAddEpsilon(builder, float(o.get("epsilon", 1e-5)))
    S.LayerNormOptionsAddAxis(builder, int(o.get("axis", -1)))
    return S.LayerNormOptionsEnd(builder)


RESIZE_COORDINATES = {name: getattr(S.ResizeCoordinates, name) for name in vars(S.ResizeCoordinates)
                      if not name.startswith("_")}
RESIZE_NEAREST_MODES = {name: getattr(S.ResizeNearestMode, name) for name in vars(S.ResizeNearestMode)
                        if not name.startswith("_")}
REDUCE_KINDS = {name: getattr(S.ReduceKind, name) for name in vars(S.ReduceKind) if not name.startswith("_")}
COMPARE_KINDS = {name: getattr(S.CompareKind, name) for name in vars(S.CompareKind) if not name.startswith("_")}
LOGICAL_KINDS = {name: getattr(S.LogicalKind, name) for name in vars(S.LogicalKind) if not name.startswith("_")}


def _resize_options(builder, o):
    S.ResizeOptionsStart(builder)
    S.ResizeOptionsAddAlignCorners(builder, bool(o.get("align_corners", False)))
    S.ResizeOptionsAddHalfPixelCenters(builder, bool(o.get("half_pixel_centers", False)))
    S.ResizeOptionsAddCoordinates(builder, RESIZE_COORDINATES[o.get("coordinates", "TFLITE")])
    S.ResizeOptionsAddNearestMode(builder, RESIZE_NEAREST_MODES[o.get("nearest_mode", "ROUND_PREFER_FLOOR")])
    sh, sw = o.get("scale", (0.0, 0.0))
    S.ResizeOptionsAddScaleH(builder, float(sh))
    S.ResizeOptionsAddScaleW(builder, float(sw))
    return S.ResizeOptionsEnd(builder)


def _reduce_options(builder, o):
    axes = _ints(builder, S.ReduceOptionsStartAxesVector, o.get("axes", ()))
    S.ReduceOptionsStart(builder)
    S.ReduceOptionsAddKind(builder, REDUCE_KINDS[o["kind"]])
    S.ReduceOptionsAddAxes(builder, axes)
    S.ReduceOptionsAddKeepDims(builder, bool(o.get("keep_dims", False)))
    return S.ReduceOptionsEnd(builder)


def _depth_to_space_options(builder, o):
    S.DepthToSpaceOptionsStart(builder)
    S.DepthToSpaceOptionsAddBlockSize(builder, int(o["block_size"]))
    return S.DepthToSpaceOptionsEnd(builder)


def _l2_normalize_options(builder, o):
    S.L2NormalizeOptionsStart(builder)
    S.L2NormalizeOptionsAddEpsilon(builder, float(o.get("epsilon", 1e-12)))
    return S.L2NormalizeOptionsEnd(builder)


def _slice_options(builder, o):
    begin = _ints(builder, S.SliceOptionsStartBeginVector, o["begin"])
    step = _ints(builder, S.SliceOptionsStartStepVector, o["step"])
    S.SliceOptionsStart(builder)
    S.SliceOptionsAddBegin(builder, begin)
    S.SliceOptionsAddStep(builder, step)
    return S.SliceOptionsEnd(builder)


def _compare_options(builder, o):
    S.CompareOptionsStart(builder)
    S.CompareOptionsAddKind(builder, COMPARE_KINDS[o["kind"]])
    return S.CompareOptionsEnd(builder)


def _logical_options(builder, o):
    S.LogicalOptionsStart(builder)
    S.LogicalOptionsAddKind(builder, LOGICAL_KINDS[o["kind"]])
    return S.LogicalOptionsEnd(builder)


def _conv_transpose2d_options(builder, o):
    sh, sw = o.get("stride", (1, 1))
    dh, dw = o.get("dilation", (1, 1))
    pt, pl, pb, pr = o.get("padding", (0, 0, 0, 0))
    oph, opw = o.get("output_padding", (0, 0))
    S.ConvTranspose2DOptionsStart(builder)
    for fn, v in ((S.ConvTranspose2DOptionsAddStrideH, sh), (S.ConvTranspose2DOptionsAddStrideW, sw),
                  (S.ConvTranspose2DOptionsAddDilationH, dh), (S.ConvTranspose2DOptionsAddDilationW, dw),
                  (S.ConvTranspose2DOptionsAddPadTop, pt), (S.ConvTranspose2DOptionsAddPadLeft, pl),
                  (S.ConvTranspose2DOptionsAddPadBottom, pb), (S.ConvTranspose2DOptionsAddPadRight, pr),
                  (S.ConvTranspose2DOptionsAddOutputPaddingH, oph), (S.ConvTranspose2DOptionsAddOutputPaddingW, opw),
                  (S.ConvTranspose2DOptionsAddGroups, o.get("groups", 1))):
        fn(builder, int(v))
    _activation(builder, (S.ConvTranspose2DOptionsAddActivation, S.ConvTranspose2DOptionsAddActMin,
                          S.ConvTranspose2DOptionsAddActMax), o)
    return S.ConvTranspose2DOptionsEnd(builder)


def _cumsum_options(builder, o):
    S.CumsumOptionsStart(builder)
    S.CumsumOptionsAddAxis(builder, int(o["axis"]))
    S.CumsumOptionsAddExclusive(builder, bool(o.get("exclusive", False)))
    S.CumsumOptionsAddReverse(builder, bool(o.get("reverse", False)))
    return S.CumsumOptionsEnd(builder)


def _gather_elements_options(builder, o):
    S.GatherElementsOptionsStart(builder)
    S.GatherElementsOptionsAddAxis(builder, int(o["axis"]))
    return S.GatherElementsOptionsEnd(builder)


def _group_norm_options(builder, o):
    S.GroupNormOptionsStart(builder)
    S.GroupNormOptionsAddGroups(builder, int(o["groups"]))
    S.GroupNormOptionsAddEpsilon(builder, float(o.get("epsilon", 1e-5)))
    return S.GroupNormOptionsEnd(builder)


def _landmarks_to_transform_matrix_options(builder, o):
    subset = _ints(builder, S.LandmarksToTransformMatrixOptionsStartSubsetVector, o["subset"])
    S.LandmarksToTransformMatrixOptionsStart(builder)
    S.LandmarksToTransformMatrixOptionsAddLeftIndex(builder, int(o["left_index"]))
    S.LandmarksToTransformMatrixOptionsAddRightIndex(builder, int(o["right_index"]))
    S.LandmarksToTransformMatrixOptionsAddSubset(builder, subset)
    S.LandmarksToTransformMatrixOptionsAddTargetRotation(builder, float(o.get("target_rotation", 0.0)))
    S.LandmarksToTransformMatrixOptionsAddOutputHeight(builder, int(o["output_height"]))
    S.LandmarksToTransformMatrixOptionsAddOutputWidth(builder, int(o["output_width"]))
    S.LandmarksToTransformMatrixOptionsAddScaleX(builder, float(o.get("scale_x", 1.0)))
    S.LandmarksToTransformMatrixOptionsAddScaleY(builder, float(o.get("scale_y", 1.0)))
    return S.LandmarksToTransformMatrixOptionsEnd(builder)


# One builder per options table; which table an op takes is the schema's (OP_OPTIONS).
OPTIONS_BUILDERS = {
    "Conv2DOptions": _conv2d_options, "FullyConnectedOptions": _fully_connected_options,
    "ActivationOptions": _activation_options, "BinaryOptions": _binary_options, "Pool2DOptions": _pool2d_options,
    "ConcatOptions": _concat_options, "PadOptions": _pad_options, "SoftmaxOptions": _softmax_options,
    "TransposeOptions": _transpose_options, "LayerNormOptions": _layer_norm_options,
    "ResizeOptions": _resize_options, "DepthToSpaceOptions": _depth_to_space_options,
    "L2NormalizeOptions": _l2_normalize_options, "ReduceOptions": _reduce_options,
    "SliceOptions": _slice_options, "ConvTranspose2DOptions": _conv_transpose2d_options,
    "CumsumOptions": _cumsum_options, "GatherElementsOptions": _gather_elements_options,
    "GroupNormOptions": _group_norm_options,
    "CompareOptions": _compare_options,
    "LogicalOptions": _logical_options,
    "LandmarksToTransformMatrixOptions": _landmarks_to_transform_matrix_options,
}


def _options(builder, op):
    """Returns (union type, table offset) for an op's options: the table the schema gives its type."""
    table = OP_OPTIONS.get(op.type)
    if table is None:
        return S.OpOptions.NONE, None
    return getattr(S.OpOptions, table), OPTIONS_BUILDERS[table](builder, op.options)


def _flatbuffer(graph, encoded, buffer_table, producer, source_framework):
    builder = flatbuffers.Builder(1 << 16)
    index = {n: i for i, n in enumerate(graph.tensors)}
    dim_ids = {name: i + 1 for i, name in enumerate(graph.dims)}
    tensors = [_tensor(builder, graph.tensors[n], encoded[n], dim_ids) for n in graph.tensors]
    ops = []
    for op in graph.ops:
        otype, opts = _options(builder, op)
        name = builder.CreateString(op.name)
        ins = _ints(builder, S.OperatorStartInputsVector, [index[t] if t is not None else -1 for t in op.inputs])
        outs = _ints(builder, S.OperatorStartOutputsVector, [index[t] for t in op.outputs])
        S.OperatorStart(builder)
        S.OperatorAddType(builder, getattr(S.OpType, op.type))
        S.OperatorAddName(builder, name)
        S.OperatorAddInputs(builder, ins)
        S.OperatorAddOutputs(builder, outs)
        if opts is not None:
            S.OperatorAddOptionsType(builder, otype)
            S.OperatorAddOptions(builder, opts)
        ops.append(S.OperatorEnd(builder))
    kvs = []
    for k, v in graph.metadata.items():
        ko, vo = builder.CreateString(str(k)), builder.CreateString(str(v))
        S.KeyValueStart(builder)
        S.KeyValueAddKey(builder, ko)
        S.KeyValueAddValue(builder, vo)
        kvs.append(S.KeyValueEnd(builder))
    producer_o, source_o = builder.CreateString(producer), builder.CreateString(source_framework)
    tensors_v = _offsets(builder, S.ModelStartTensorsVector, tensors)
    ops_v = _offsets(builder, S.ModelStartOperatorsVector, ops)
    ins_v = _ints(builder, S.ModelStartInputsVector, [index[n] for n in graph.inputs])
    outs_v = _ints(builder, S.ModelStartOutputsVector, [index[n] for n in graph.outputs])
    md_v = _offsets(builder, S.ModelStartMetadataVector, kvs)
    dims = []
    for dim_name, dim_max in graph.dims.items():
        no = builder.CreateString(dim_name)
        S.DynamicDimStart(builder)
        S.DynamicDimAddName(builder, no)
        S.DynamicDimAddMax(builder, int(dim_max))
        if dim_name in graph.derived_dims:
            source, offset, divisor = graph.derived_dims[dim_name]
            S.DynamicDimAddSource(builder, dim_ids[source])
            S.DynamicDimAddOffset(builder, int(offset))
            S.DynamicDimAddDivisor(builder, int(divisor))
        dims.append(S.DynamicDimEnd(builder))
    dims_v = _offsets(builder, S.ModelStartDimsVector, dims) if dims else None
    S.ModelStartBuffersVector(builder, len(buffer_table))
    for off, size in reversed(buffer_table):
        S.CreateBuffer(builder, off, size)
    buffers_v = builder.EndVector()
    S.ModelStart(builder)
    S.ModelAddFormatVersion(builder, FORMAT_VERSION)
    S.ModelAddProducer(builder, producer_o)
    S.ModelAddSourceFramework(builder, source_o)
    S.ModelAddTensors(builder, tensors_v)
    S.ModelAddOperators(builder, ops_v)
    S.ModelAddInputs(builder, ins_v)
    S.ModelAddOutputs(builder, outs_v)
    S.ModelAddBuffers(builder, buffers_v)
    S.ModelAddMetadata(builder, md_v)
    if dims_v is not None:
        S.ModelAddDims(builder, dims_v)
    builder.Finish(S.ModelEnd(builder), file_identifier=b"SLIT")
    return bytes(builder.Output())


def _align(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def serialize(graph, weights="fp32", producer="sparselite", source_framework=""):
    """Returns the .slite bytes of a graph whose passes have run."""
    if weights not in ("fp32", "fp16"):
        raise ValueError(f"weights must be 'fp32' or 'fp16', got {weights!r}")
    weight_names = {op.inputs[1] for op in graph.ops if op.type in ("CONV2D", "FULLY_CONNECTED")}
    weight_names |= {op.inputs[0] for op in graph.ops if op.type == "GATHER"}   # embedding tables
    data = _Data()
    encoded = {n: _encode(data, t, weights == "fp16" and n in weight_names) for n, t in graph.tensors.items()}
    # The buffer table's size does not depend on its values: size the FlatBuffer with
    # placeholders, lay the data out after it, then build it again with the real offsets.
    placeholder = [(0, 0)] * len(data.blobs)
    head = len(_flatbuffer(graph, encoded, placeholder, producer, source_framework))
    table, pos = [(0, 0)], _align(head)
    for blob in data.blobs[1:]:
        table.append((pos, len(blob)))
        pos = _align(pos + len(blob))
    fb = _flatbuffer(graph, encoded, table, producer, source_framework)
    assert len(fb) == head, "FlatBuffer size changed between layout passes"
    out = bytearray(pos)
    out[:head] = fb
    for (off, size), blob in zip(table[1:], data.blobs[1:]):
        out[off:off + size] = blob
    return bytes(out)
