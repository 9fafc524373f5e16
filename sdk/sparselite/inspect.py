"""Reads a verified .slite for inspection: ops, shapes, sparsity, FLOPs, sizes."""
from dataclasses import dataclass

import numpy as np

from . import _schema as S

_OP_NAMES = {v: k for k, v in vars(S.OpType).items() if not k.startswith("_")}
_DTYPE_NAMES = {v: k.lower() for k, v in vars(S.DType).items() if not k.startswith("_")}


@dataclass
class Layer:
    index: int
    type: str
    name: str
    output_shape: tuple
    density: float = 1.0        # nonzero fraction of the weights (1 for dense ops)
    group_size: int = 0         # r of a group-sparse weight, 0 = dense
    flops_dense: int = 0        # multiply-adds x 2 as if every weight were nonzero
    flops: int = 0              # multiply-adds x 2 the kernels execute
    weight_bytes: int = 0
    fused_into: int = None      # the op whose fused block runs this one (the runtime's plan here)
    output_dtype: str = "float32"


@dataclass
class Summary:
    file_bytes: int
    producer: str
    source_framework: str
    metadata: dict
    layers: list
    dims: dict = None           # dynamic dimension name -> maximum
    inputs: list = None         # [TensorInfo] of the graph's inputs
    outputs: list = None        # [TensorInfo] of the graph's outputs


@dataclass
class TensorInfo:
    name: str
    shape: tuple                # ints; dynamic axes as 'name<=max'
    dtype: str
    layout: str                 # 'NCHW' for images read or written by convolutions, else '-'


def summarize(data, loaded=None):
    """Summary of .slite bytes; call sparselite.load() first so the file is verified, and pass the
    loaded Model to show the runtime's fused blocks."""
    model = S.Model.GetRootAs(data, 0)
    buffers = [(model.Buffers(i).Offset(), model.Buffers(i).Size()) for i in range(model.BuffersLength())]
    tensors = [model.Tensors(i) for i in range(model.TensorsLength())]

    def buffer_bytes(index):
        return buffers[index][1] if index else 0

    def raw(index, dtype):
        off, size = buffers[index]
        return np.frombuffer(data, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=off)

    dims = {model.Dims(i).Name().decode(): model.Dims(i).Max() for i in range(model.DimsLength())}
    dim_names = list(dims)

    def shape_of(t):
        """Dims as ints, dynamic ones as 'name<=max' strings."""
        shape = t.ShapeAsNumpy().tolist() if t.ShapeLength() else []
        dyn = t.DynamicDimsAsNumpy().tolist() if t.DynamicDimsLength() else [0] * len(shape)
        return tuple(f"{dim_names[k - 1]}<={d}" if k else d for d, k in zip(shape, dyn))

    def numel(shape):
        return int(np.prod([d if isinstance(d, int) else int(d.split("<=")[1]) for d in shape]))

    layers = []
    for i in range(model.OperatorsLength()):
        op = model.Operators(i)
        shape = shape_of(tensors[op.Outputs(0)])
        layer = Layer(i, _OP_NAMES.get(op.Type(), str(op.Type())), op.Name().decode(), shape,
                      output_dtype=_DTYPE_NAMES.get(tensors[op.Outputs(0)].Dtype(), "?"))
        if layer.type in ("CONV2D", "FULLY_CONNECTED"):
            w = tensors[op.Inputs(1)]
            wshape = w.ShapeAsNumpy().tolist()
            k = int(np.prod(wshape[1:]))
            # Each output element of a conv/FC reads k weights: pixels (or rows) x OC x k.
            per_weight_uses = numel(shape) // wshape[0]
            layer.flops_dense = 2 * per_weight_uses * wshape[0] * k
            layer.weight_bytes = buffer_bytes(w.Buffer())
            values = raw(w.Buffer(), np.float16 if w.Storage() == S.DType.FLOAT16 else np.float32)
            sp = w.Sparsity()
            if sp is not None:
                r = sp.GroupSize()
                row_ptr = raw(sp.RowPtr(), np.uint32)
                stored = int(row_ptr[-1]) * r
                layer.group_size = r
                layer.density = float(np.count_nonzero(values)) / (wshape[0] * k)
                layer.flops = 2 * per_weight_uses * stored
                layer.weight_bytes += buffer_bytes(sp.RowPtr()) + buffer_bytes(sp.ColIdx())
            else:
                layer.density = float(np.count_nonzero(values)) / values.size
                layer.flops = layer.flops_dense
        elif layer.type == "GATHER":   # the embedding table
            layer.weight_bytes = buffer_bytes(tensors[op.Inputs(0)].Buffer())
        elif layer.type == "MATMUL":   # A [..., M, K] x B [..., K, N], at the maximum sizes
            k = numel(shape_of(tensors[op.Inputs(0)])[-1:])
            layer.flops = layer.flops_dense = 2 * numel(shape) * k
        layers.append(layer)
    if loaded is not None:
        for layer, plan in zip(layers, loaded._backend.op_profiles()):
            layer.fused_into = None if plan[-1] < 0 else plan[-1]
    # Image tensors are NCHW throughout (the converters transpose TFLite's NHWC at conversion).
    nchw_ops = {"CONV2D", "CONV_TRANSPOSE2D", "MAX_POOL2D", "AVG_POOL2D", "GLOBAL_AVG_POOL", "RESIZE_BILINEAR",
                "RESIZE_NEAREST", "DEPTH_TO_SPACE"}
    touching = {}
    for i in range(model.OperatorsLength()):
        op = model.Operators(i)
        for index in ([op.Inputs(0)] if op.InputsLength() else []) + [op.Outputs(0)]:   # data in, result out
            touching.setdefault(index, set()).add(_OP_NAMES.get(op.Type(), ""))

    def info(index):
        t = tensors[index]
        shape = shape_of(t)
        layout = "NCHW" if len(shape) == 4 and touching.get(index, set()) & nchw_ops else "-"
        return TensorInfo(t.Name().decode(), shape, _DTYPE_NAMES.get(t.Dtype(), "?"), layout)

    inputs = [info(model.Inputs(i)) for i in range(model.InputsLength())]
    outputs = [info(model.Outputs(i)) for i in range(model.OutputsLength())]
    metadata = {}
    for i in range(model.MetadataLength()):
        kv = model.Metadata(i)
        metadata[kv.Key().decode()] = kv.Value().decode()
    return Summary(len(data), (model.Producer() or b"").decode(), (model.SourceFramework() or b"").decode(),
                   metadata, layers, dims, inputs, outputs)


def format_io(summary):
    """The graph's inputs and outputs: what to feed a model and what it gives back."""
    rows = [("input", t) for t in summary.inputs or []] + [("output", t) for t in summary.outputs or []]
    width = max([4] + [len(t.name) for _, t in rows])
    swidth = max([5] + [len(_shape_text(t.shape)) for _, t in rows])
    lines = [f"{'':<6}  {'name':<{width}}  {'shape':<{swidth}}  {'dtype':<7}  layout"]
    lines += [f"{kind:<6}  {t.name:<{width}}  {_shape_text(t.shape):<{swidth}}  {t.dtype:<7}  {t.layout}"
              for kind, t in rows]
    return "\n".join(lines)


def format_summary(summary):
    width = max([18] + [len(_output_text(l)) for l in summary.layers])
    nwidth = max([4] + [len(l.name) + (2 if l.fused_into is not None else 0) for l in summary.layers])
    lines = [f"{'#':>3}  {'op':<16} {'name':<{nwidth}} {'output':<{width}} {'density':>7} {'r':>2} "
             f"{'MFLOPs':>9} {'dense MF':>9} {'weights KB':>10}"]
    for l in summary.layers:
        dens = f"{l.density:.3f}" if l.type in ("CONV2D", "FULLY_CONNECTED") else ""
        r = str(l.group_size) if l.group_size else ("-" if dens else "")
        name = l.name if l.fused_into is None else "+ " + l.name
        lines.append(f"{l.index:>3}  {l.type:<16} {name:<{nwidth}} {_output_text(l):<{width}} {dens:>7} "
                     f"{r:>2} {l.flops / 1e6:>9.2f} {l.flops_dense / 1e6:>9.2f} {l.weight_bytes / 1024:>10.1f}")
    total, dense = sum(l.flops for l in summary.layers), sum(l.flops_dense for l in summary.layers)
    lines.append(f"total: {total / 1e6:.1f} MFLOPs executed vs {dense / 1e6:.1f} dense "
                 f"({dense / max(total, 1):.2f}x fewer); file {summary.file_bytes / 1e6:.2f} MB; "
                 f"producer {summary.producer or '?'} from {summary.source_framework or '?'}")
    blocks = {l.fused_into for l in summary.layers if l.fused_into is not None}
    if blocks:
        lines.append(f"{len(blocks)} fused blocks (this runtime's plan): ops marked '+' run in the block of the unmarked op above them: "
                     f"#{', #'.join(str(b) for b in sorted(blocks))}")
    if summary.dims:
        lines.append("dynamic dimensions (run any size up to the maximum; FLOPs above at the maximum): "
                     + ", ".join(f"{name} <= {size}" for name, size in summary.dims.items()))
    return "\n".join(lines)


def _shape_text(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _output_text(layer):
    """The output's shape, and its dtype unless float32: '[2, 12] bool'."""
    dtype = "" if layer.output_dtype == "float32" else " " + layer.output_dtype
    return _shape_text(layer.output_shape) + dtype


def summarize_file(path):
    from .model import load

    loaded = load(path)  # verify before reading with the unchecked Python reader
    with open(path, "rb") as f:
        return summarize(f.read(), loaded)


__all__ = ["summarize", "summarize_file", "format_summary", "format_io", "Layer", "Summary", "TensorInfo"]
