"""PyTorch frontend: torch.export -> IR, one handler per aten op."""
import operator

import numpy as np

from sparselite.errors import ConversionError

from .ir import Graph
from .missing import Missing, Unsupported
from .slicing import add_axis_slice, add_roll, add_slice, add_split, axis_range

_HANDLERS = {}


def handles(*names):
    def register(fn):
        for name in names:
            _HANDLERS[name] = fn
        return fn
    return register


class _SymSize(int):
    """A size that varies with a dynamic dimension (aten.sym_size), valued at its maximum. Only
    shape arguments (view/reshape, which read the result's shape instead) may use it."""


class _Context:
    def __init__(self, graph, ep, dim_names):
        self.graph = graph
        self.values = {}   # fx node -> IR tensor name, python scalar, or tuple
        self.ep = ep
        self.dim_names = dim_names   # torch symbol name -> our dynamic dimension name

    def name_of(self, node):
        stack = node.meta.get("nn_module_stack") or {}
        if stack:
            path, cls = list(stack.values())[-1]
            return path or cls.rsplit(".", 1)[-1]
        return node.name

    def shape(self, node):
        """The node's shape, dynamic dimensions at their maximum (the example's size)."""
        return tuple(_hint(d) for d in node.meta["val"].shape)

    def dynamic(self, node, val=None):
        """Per axis of the node's value (or of val, one of its values): None, or the dynamic
        dimension it equals."""
        import torch

        out = []
        for d in (node.meta["val"] if val is None else val).shape:
            if not isinstance(d, torch.SymInt):
                out.append(None)
                continue
            name = self.dim_names.get(str(d.node.expr))
            if name is None:
                raise ConversionError(f"node {node.name} at '{self.name_of(node)}' has a dimension {d.node.expr} "
                                      "derived from the dynamic dimensions: only a dynamic dimension itself is "
                                      "supported")
            out.append(name)
        return tuple(out) if any(n is not None for n in out) else ()

    def value(self, arg):
        import torch.fx

        if isinstance(arg, torch.fx.Node):
            return self.values[arg]
        return arg

    def tensor(self, arg, like_rank=None):
        """IR tensor name for an argument; python scalars become constants."""
        v = self.value(arg)
        if isinstance(v, str):
            return v
        if isinstance(v, _SymSize):
            raise ConversionError("a dynamic dimension's size is used as a value (not only as a shape): "
                                  "convert with fixed shapes")
        if isinstance(v, (int, float, bool)):
            return self.graph.add_const("scalar", np.array(float(v), dtype=np.float32).reshape(()))
        raise ConversionError(f"expected a tensor argument, got {v!r}")

    def const(self, arg):
        """The numpy data of a constant argument (weights, biases)."""
        name = self.tensor(arg)
        data = self.graph.tensors[name].data
        if data is None:
            raise ConversionError(f"'{name}' must be a constant (a parameter or buffer)")
        return data


def _hint(d):
    """An int, or a SymInt's example value."""
    import torch

    if isinstance(d, torch.SymInt):
        return int(d.node.hint)
    return int(d)


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) and len(v) == 2 else (v[0], v[0]) if isinstance(v, (list, tuple)) else (v, v)


@handles("aten.conv2d.default", "aten.conv2d.padding")
def _conv2d(ctx, node, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    weight = ctx.tensor(w)
    kh, kw = ctx.graph.tensors[weight].shape[2:]
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        else:  # "same", stride 1: PyTorch puts the odd pixel at the end
            th, tw = dh * (kh - 1), dw * (kw - 1)
            pads = (th // 2, tw // 2, th - th // 2, tw - tw // 2)
    else:
        ph, pw = _pair(padding)
        pads = (ph, pw, ph, pw)
    inputs = [ctx.tensor(x), weight] + ([ctx.tensor(b)] if b is not None else [])
    return ctx.graph.add_op("CONV2D", inputs, ctx.shape(node), name=ctx.name_of(node), options=dict(
        stride=(sh, sw), dilation=(dh, dw), padding=pads, groups=groups))


@handles("aten.conv_transpose2d.input")
def _conv_transpose2d(ctx, node, x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    if len(ctx.shape(x)) != 4:
        raise Unsupported("aten.conv_transpose2d", f"of a rank-{len(ctx.shape(x))} input (batched NCHW converts)")
    ph, pw = _pair(padding)
    inputs = [ctx.tensor(x), ctx.tensor(w)] + ([ctx.tensor(b)] if b is not None else [])
    return ctx.graph.add_op("CONV_TRANSPOSE2D", inputs, ctx.shape(node), name=ctx.name_of(node), options=dict(
        stride=_pair(stride), dilation=_pair(dilation), padding=(ph, pw, ph, pw), output_padding=_pair(output_padding),
        groups=groups))


@handles("aten.convolution.default")
def _convolution(ctx, node, x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    """What decompositions leave of conv2d and conv_transpose2d."""
    if len(ctx.shape(x)) != 4:
        raise Unsupported("aten.convolution", f"over {len(ctx.shape(x)) - 2} dimensions (2-D converts)")
    if transposed:
        return _conv_transpose2d(ctx, node, x, w, b, stride, padding, output_padding, groups, dilation)
    if any(_pair(output_padding)):
        raise Unsupported("aten.convolution", f"output_padding {list(output_padding)} without transposed")
    return _conv2d(ctx, node, x, w, b, stride, padding, dilation, groups)


@handles("aten.linear.default")
def _linear(ctx, node, x, w, b=None):
    inputs = [ctx.tensor(x), ctx.tensor(w)] + ([ctx.tensor(b)] if b is not None else [])
    return ctx.graph.add_op("FULLY_CONNECTED", inputs, ctx.shape(node), name=ctx.name_of(node))


@handles("aten.batch_norm.default", "aten._native_batch_norm_legit_no_training.default")
def _batch_norm(ctx, node, x, weight, bias, mean, var, *rest):
    legit = "legit" in str(node.target)
    # batch_norm: (training, momentum, eps, cudnn_enabled); the no-training op: (momentum, eps).
    if not legit and rest[0]:
        raise ConversionError(f"batch norm at '{ctx.name_of(node)}' is in training mode: call module.eval()")
    eps = rest[1] if legit else rest[2]
    mean, var = ctx.const(mean), ctx.const(var)
    gamma = ctx.const(weight) if weight is not None else np.ones_like(mean)
    beta = ctx.const(bias) if bias is not None else np.zeros_like(mean)
    scale = (gamma / np.sqrt(var + eps)).astype(np.float32)
    out = ctx.graph.add_op("BATCH_NORM", [ctx.tensor(x)], ctx.shape(node), name=ctx.name_of(node),
                           options=dict(scale=scale, shift=(beta - mean * scale).astype(np.float32)))
    # The non-legacy op returns (out, mean, invstd); only the first is ever read.
    return (out, None, None) if legit else out


def _activation(kind, lo=0.0, hi=0.0):
    def handler(ctx, node, x, *args):
        return ctx.graph.add_op("ACTIVATION", [ctx.tensor(x)], ctx.shape(node), name=ctx.name_of(node),
                                options=dict(activation=kind, min=lo, max=hi))
    return handler


for _names, _kind in ((("aten.relu.default", "aten.relu_.default"), "RELU"),
                      (("aten.relu6.default", "aten.relu6_.default"), "RELU6"),
                      (("aten.hardswish.default", "aten.hardswish_.default"), "HARDSWISH"),
                      (("aten.hardsigmoid.default", "aten.hardsigmoid_.default"), "HARDSIGMOID"),
                      (("aten.sigmoid.default", "aten.sigmoid_.default"), "SIGMOID"),
                      (("aten.silu.default", "aten.silu_.default"), "SILU"),
                      (("aten.tanh.default", "aten.tanh_.default"), "TANH")):
    handles(*_names)(_activation(_kind))


@handles("aten.gelu.default", "aten.gelu_.default")
def _gelu(ctx, node, x, approximate="none"):
    return _activation("GELU_TANH" if approximate == "tanh" else "GELU")(ctx, node, x)


@handles("aten.layer_norm.default")
def _layer_norm(ctx, node, x, normalized_shape, weight=None, bias=None, eps=1e-5, *rest):
    if len(normalized_shape) != 1:
        raise Unsupported("aten.layer_norm", f"over {len(normalized_shape)} dimensions (only the last)")
    inputs = [ctx.tensor(x)] + [ctx.tensor(t) if t is not None else None for t in (weight, bias)]
    while inputs[-1] is None:
        inputs.pop()
    if None in inputs:
        raise Unsupported("aten.layer_norm", "a bias without a weight")
    return ctx.graph.add_op("LAYER_NORM", inputs, ctx.shape(node), name=ctx.name_of(node),
                            options=dict(epsilon=float(eps)))


@handles("aten.div.Tensor", "aten.div.Scalar")
def _div(ctx, node, a, b):
    """Division; by a constant it becomes a multiplication by the reciprocal (faster)."""
    if isinstance(b, (int, float)):
        scale = np.array(1.0 / b, dtype=np.float32)
    elif ctx.graph.tensors[ctx.tensor(b)].data is not None:
        scale = (1.0 / ctx.const(b)).astype(np.float32)
    else:
        return ctx.graph.add_op("DIV", [ctx.tensor(a), ctx.tensor(b)], ctx.shape(node), name=ctx.name_of(node))
    return ctx.graph.add_op("MUL", [ctx.tensor(a), ctx.graph.add_const("reciprocal", scale)], ctx.shape(node),
                            name=ctx.name_of(node))


@handles("aten.sub.Tensor", "aten.sub.Scalar", "aten.rsub.Scalar", "aten.rsub.Tensor")
def _sub(ctx, node, a, b, alpha=1):
    if alpha != 1:
        raise Unsupported("aten.sub", f"alpha={alpha}")
    if "rsub" in str(node.target):
        a, b = b, a
    return ctx.graph.add_op("SUB", [ctx.tensor(a), ctx.tensor(b)], ctx.shape(node), name=ctx.name_of(node))


_DTYPE_NAMES = {"torch.float32": "float32", "torch.int32": "int32", "torch.int64": "int64"}


@handles("aten.to.dtype", "aten.to.dtype_layout", "aten._to_copy.default", "aten.to.device")
def _to(ctx, node, x, *args, **kwargs):
    """dtype conversions become CAST (an attention mask from int64 to float); others vanish."""
    src = ctx.graph.tensors[ctx.tensor(x)].dtype
    dst = _DTYPE_NAMES.get(str(node.meta["val"].dtype))
    if dst is None:
        raise Unsupported("aten._to_copy", f"to {node.meta['val'].dtype} (float32, int32 and int64 convert)")
    if src == dst:
        return ctx.value(x)
    return ctx.graph.add_op("CAST", [ctx.tensor(x)], ctx.shape(node), name=ctx.name_of(node), dtype=dst)


@handles("sparselite.mean_pool.default")
def _mean_pool(ctx, node, x, mask=None):
    inputs = [ctx.tensor(x)] + ([ctx.tensor(mask)] if mask is not None else [])
    return ctx.graph.add_op("MEAN_POOL", inputs, ctx.shape(node), name=ctx.name_of(node))


@handles("sparselite.l2_normalize.default")
def _l2_normalize(ctx, node, x, eps=1e-12):
    return ctx.graph.add_op("L2_NORMALIZE", [ctx.tensor(x)], ctx.shape(node), name=ctx.name_of(node),
                            options=dict(epsilon=float(eps)))


@handles("aten.embedding.default")
def _embedding(ctx, node, weight, indices, *rest):
    return ctx.graph.add_op("GATHER", [ctx.tensor(weight), ctx.tensor(indices)], ctx.shape(node),
                            name=ctx.name_of(node))


@handles("aten.matmul.default", "aten.bmm.default", "aten.mm.default")
def _matmul(ctx, node, a, b):
    a_shape, b_shape = ctx.shape(a), ctx.shape(b)
    if len(a_shape) < 2 or not (len(b_shape) == 2 or b_shape[:-2] == a_shape[:-2]):
        raise Unsupported("aten.matmul", f"{list(a_shape)} by {list(b_shape)} (batch dimensions must match, or B "
                          "be a matrix)")
    return ctx.graph.add_op("MATMUL", [ctx.tensor(a), ctx.tensor(b)], ctx.shape(node), name=ctx.name_of(node))


@handles("aten.permute.default", "aten.transpose.int", "aten.t.default", "aten.swapaxes.default",
         "aten.swapdims.default")
def _transpose(ctx, node, x, *dims):
    rank = len(ctx.shape(x))
    if not dims:                                   # t(): a matrix
        perm = [1, 0]
    elif len(dims) == 2 and all(isinstance(d, int) for d in dims):   # transpose(d0, d1)
        perm = list(range(rank))
        d0, d1 = (d % rank for d in dims)
        perm[d0], perm[d1] = perm[d1], perm[d0]
    else:                                          # permute(dims)
        perm = [d % rank for d in dims[0]]
    return ctx.graph.add_op("TRANSPOSE", [ctx.tensor(x)], ctx.shape(node), name=ctx.name_of(node),
                            options=dict(perm=perm))


@handles("aten.hardtanh.default", "aten.hardtanh_.default", "aten.clamp.default", "aten.clamp_.default")
def _clamp(ctx, node, x, lo=None, hi=None):
    lo = -np.inf if lo is None else float(lo)
    hi = np.inf if hi is None else float(hi)
    kind = "RELU6" if (lo, hi) == (0.0, 6.0) else "RELU" if (lo, hi) == (0.0, np.inf) else "CLAMP"
    return _activation(kind, lo, hi)(ctx, node, x)


def _binary(kind):
    def handler(ctx, node, a, b, alpha=1):
        if alpha != 1:
            b_name = ctx.graph.add_op("MUL", [ctx.tensor(b), ctx.tensor(alpha)], ctx.shape(node.args[1])
                                      if hasattr(node.args[1], "meta") else (), name=ctx.name_of(node))
            return ctx.graph.add_op(kind, [ctx.tensor(a), b_name], ctx.shape(node), name=ctx.name_of(node))
        return ctx.graph.add_op(kind, [ctx.tensor(a), ctx.tensor(b)], ctx.shape(node), name=ctx.name_of(node))
    return handler


handles("aten.add.Tensor", "aten.add_.Tensor", "aten.add.Scalar")(_binary("ADD"))
handles("aten.mul.Tensor", "aten.mul_.Tensor", "aten.mul.Scalar")(_binary("MUL"))


def _bins(size, out):
    """torch's adaptive pooling bins along one axis as a [out, size] matrix of averaging weights:
    bin i covers floor(i * size / out) .. ceil((i + 1) * size / out)."""
    m = np.zeros((out, size), np.float32)
    for i in range(out):
        lo, hi = i * size // out, -(-(i + 1) * size // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


@handles("aten.adaptive_avg_pool2d.default", "aten._adaptive_avg_pool2d.default")
def _adaptive_avg_pool(ctx, node, x, size):
    n, c, h, w = ctx.shape(x)
    oh, ow = (h if size[0] is None else size[0]), (w if size[-1] is None else size[-1])
    name = ctx.name_of(node)
    if (oh, ow) == (1, 1):
        return ctx.graph.add_op("GLOBAL_AVG_POOL", [ctx.tensor(x)], ctx.shape(node), name=name)
    if h % oh == 0 and w % ow == 0:   # equal bins: a plain average pool
        k = (h // oh, w // ow)
        return ctx.graph.add_op("AVG_POOL2D", [ctx.tensor(x)], ctx.shape(node), name=name,
                                options=dict(kernel=k, stride=k))
    # Uneven bins: the average is separable, one FULLY_CONNECTED of bin weights along W, then
    # along H between two transposes (W and H swapped).
    y = ctx.tensor(x)
    if ow != w:
        y = ctx.graph.add_op("FULLY_CONNECTED", [y, ctx.graph.add_const(f"{name}.bins_w", _bins(w, ow))],
                             (n, c, h, ow), name=name + ":w")
    if oh != h:
        y = ctx.graph.add_op("TRANSPOSE", [y], (n, c, ow, h), name=name + ":hw", options=dict(perm=[0, 1, 3, 2]))
        y = ctx.graph.add_op("FULLY_CONNECTED", [y, ctx.graph.add_const(f"{name}.bins_h", _bins(h, oh))],
                             (n, c, ow, oh), name=name + ":h")
        y = ctx.graph.add_op("TRANSPOSE", [y], (n, c, oh, ow), name=name, options=dict(perm=[0, 1, 3, 2]))
    return y


def _reduce(ctx, node, kind, x, dims, keepdim):
    """REDUCE of x over dims (None or empty: every axis, as torch reads an empty dim list)."""
    rank = len(ctx.shape(x))
    x_name = ctx.tensor(x)
    if ctx.graph.tensors[x_name].dtype != "float32":
        raise Unsupported(str(node.target), f"of a {ctx.graph.tensors[x_name].dtype} tensor (float32 reduces)")
    axes = sorted({d % rank for d in dims}) if dims else list(range(rank))
    if rank == 4 and axes == [2, 3] and kind == "MEAN":   # the global average pool of a conv net
        return ctx.graph.add_op("GLOBAL_AVG_POOL", [x_name], ctx.shape(node), name=ctx.name_of(node))
    return ctx.graph.add_op("REDUCE", [x_name], ctx.shape(node), name=ctx.name_of(node),
                            options=dict(kind=kind, axes=axes, keep_dims=bool(keepdim)))


@handles("aten.mean.dim", "aten.sum.dim_IntList")
def _mean_sum(ctx, node, x, dims=None, keepdim=False, dtype=None):
    if dtype is not None:
        raise Unsupported(str(node.target), f"with dtype={dtype}")
    return _reduce(ctx, node, "MEAN" if "mean" in str(node.target) else "SUM", x, dims, keepdim)


@handles("aten.mean.default", "aten.sum.default")
def _mean_sum_all(ctx, node, x, dtype=None):
    return _mean_sum(ctx, node, x, None, False, dtype)


@handles("aten.amax.default", "aten.amin.default")
def _amax(ctx, node, x, dims=(), keepdim=False):
    return _reduce(ctx, node, "MAX" if "amax" in str(node.target) else "MIN", x, dims, keepdim)


def _scale_factors(node, args, kwargs):
    """(scale_h, scale_w) of an upsample op, None where absent: .vec takes a list of scale
    factors, .default scales_h / scales_w."""
    if str(node.target).endswith(".vec"):
        factors = args[0] if args else kwargs.get("scale_factors")
        return tuple(factors) if factors else (None, None)
    return tuple(args[:2]) + (kwargs.get("scales_h"), kwargs.get("scales_w"))[len(args[:2]):]


@handles("aten.upsample_bilinear2d.vec", "aten.upsample_bilinear2d.default")
def _upsample_bilinear(ctx, node, x, output_size, align_corners, *args, **kwargs):
    """align_corners=False is ONNX's half_pixel (with the coordinate clamped at 0, as torch does),
    the scale factor given (which torch samples with) or out / in."""
    opts = dict(coordinates="ALIGN_CORNERS" if align_corners else "HALF_PIXEL")
    if not align_corners:
        opts["scale"] = tuple(float(s or 0.0) for s in _scale_factors(node, args, kwargs))
    return ctx.graph.add_op("RESIZE_BILINEAR", [ctx.tensor(x)], ctx.shape(node), name=ctx.name_of(node), options=opts)


@handles("aten.upsample_nearest2d.vec", "aten.upsample_nearest2d.default", "aten._upsample_nearest_exact2d.vec",
         "aten._upsample_nearest_exact2d.default")
def _upsample_nearest(ctx, node, x, output_size, *args, **kwargs):
    """torch samples with 1 / scale_factor rounded to float where a factor is given, else in / out."""
    scale = tuple(float(np.float32(1.0 / s)) if s else 0.0 for s in _scale_factors(node, args, kwargs))
    mode = "TORCH_NEAREST_EXACT" if "exact" in str(node.target) else "TORCH_NEAREST"
    return ctx.graph.add_op("RESIZE_NEAREST", [ctx.tensor(x)], ctx.shape(node), name=ctx.name_of(node),
                            options=dict(coordinates=mode, scale=scale))


@handles("aten.max_pool2d.default", "aten.avg_pool2d.default")
def _pool(ctx, node, x, kernel, stride=None, padding=0, *rest):
    is_max = "max_pool" in str(node.target)
    stride = stride or kernel
    ph, pw = _pair(padding)
    opts = dict(kernel=_pair(kernel), stride=_pair(stride), padding=(ph, pw, ph, pw))
    if is_max:
        dilation = rest[0] if rest else 1
        if _pair(dilation) != (1, 1):
            raise Unsupported("aten.max_pool2d", f"dilation {list(_pair(dilation))}")
    else:
        count_include_pad = rest[1] if len(rest) > 1 else True
        divisor = rest[2] if len(rest) > 2 else None
        if divisor is not None:
            raise Unsupported("aten.avg_pool2d", "divisor_override")
        opts["count_include_pad"] = count_include_pad
    return ctx.graph.add_op("MAX_POOL2D" if is_max else "AVG_POOL2D", [ctx.tensor(x)], ctx.shape(node),
                            name=ctx.name_of(node), options=opts)


@handles("aten.flatten.using_ints", "aten.view.default", "aten.reshape.default", "aten._unsafe_view.default",
         "aten.squeeze.dim", "aten.squeeze.dims", "aten.unsqueeze.default", "aten.unflatten.int",
         "aten.reshape_as.default", "aten.view_as.default")
def _reshape(ctx, node, x, *args):
    x = ctx.tensor(x)
    return ctx.graph.add_op("RESHAPE", [x], ctx.shape(node), name=ctx.name_of(node), dtype=ctx.graph.tensors[x].dtype)


@handles("aten.cat.default", "aten.concat.default")
def _cat(ctx, node, tensors, dim=0):
    return ctx.graph.add_op("CONCAT", [ctx.tensor(t) for t in tensors], ctx.shape(node),
                            name=ctx.name_of(node), options=dict(axis=dim))


@handles("aten.pad.default", "aten.constant_pad_nd.default")
def _pad(ctx, node, x, pad, *rest):
    mode = rest[0] if rest and isinstance(rest[0], str) else "constant"
    if mode != "constant":
        raise Unsupported("aten.pad", f"mode '{mode}' (constant pads convert)")
    value = [r for r in rest if not isinstance(r, str)]
    value = float(value[0]) if value and value[0] is not None else 0.0
    rank = len(ctx.shape(node))
    begins, ends = [0] * rank, [0] * rank
    for i in range(len(pad) // 2):      # torch lists the last dim first
        begins[rank - 1 - i], ends[rank - 1 - i] = pad[2 * i], pad[2 * i + 1]
    if min(begins + ends) < 0:
        raise Unsupported("aten.pad", "negative padding (cropping)")
    return ctx.graph.add_op("PAD", [ctx.tensor(x)], ctx.shape(node), name=ctx.name_of(node),
                            options=dict(pads=begins + ends, value=value))


@handles("aten.softmax.int", "aten._softmax.default")
def _softmax(ctx, node, x, dim, *rest):
    return ctx.graph.add_op("SOFTMAX", [ctx.tensor(x)], ctx.shape(node), name=ctx.name_of(node),
                            options=dict(axis=dim))


@handles("aten.clone.default", "aten.contiguous.default", "aten.alias.default", "aten.detach.default")
def _identity(ctx, node, x, *args, **kwargs):
    return ctx.value(x)


@handles(*(f"aten.{kind}.default" for kind in ("dropout", "dropout_", "feature_dropout", "feature_dropout_",
                                               "alpha_dropout", "alpha_dropout_", "feature_alpha_dropout",
                                               "feature_alpha_dropout_", "native_dropout")))
def _dropout(ctx, node, x, p=0.5, train=False):
    """Identity in inference; native_dropout also returns the mask, which nothing reads then."""
    if train:
        raise ConversionError(f"dropout at '{ctx.name_of(node)}' is in training mode: call module.eval()")
    return (ctx.value(x), None) if "native_dropout" in str(node.target) else ctx.value(x)


# --- data movement: slices, splits, rolls (converters/slicing.py) ---------------------------------------
@handles("aten.slice.Tensor")
def _slice(ctx, node, x, dim=0, start=None, end=None, step=1):
    shape = ctx.shape(x)
    dim %= len(shape)
    begin, step, count = axis_range(shape[dim], start, end, step, f"slice at '{ctx.name_of(node)}'")
    return add_axis_slice(ctx.graph, ctx.tensor(x), dim, begin, step, count, ctx.name_of(node))


def _index(ctx, node, dim, index):
    """An index into an axis of `dim` elements, negative from the end."""
    if not -dim <= index < dim:
        raise ConversionError(f"{node.target} at '{ctx.name_of(node)}': index {index} is out of range for a "
                              f"dimension of {dim}")
    return index % dim


@handles("aten.select.int")
def _select(ctx, node, x, dim, index):
    shape = ctx.shape(x)
    dim %= len(shape)
    row = add_axis_slice(ctx.graph, ctx.tensor(x), dim, _index(ctx, node, shape[dim], index), 1, 1,
                         ctx.name_of(node))
    return ctx.graph.add_op("RESHAPE", [row], ctx.shape(node), name=ctx.name_of(node),
                            dtype=ctx.graph.tensors[row].dtype)


@handles("aten.narrow.default")
def _narrow(ctx, node, x, dim, start, length):
    shape = ctx.shape(x)
    dim %= len(shape)
    return add_axis_slice(ctx.graph, ctx.tensor(x), dim, _index(ctx, node, shape[dim], start), 1, length,
                          ctx.name_of(node))


@handles("aten.chunk.default", "aten.split.Tensor", "aten.split_with_sizes.default", "aten.unsafe_split.Tensor",
         "aten.unsafe_split_with_sizes.default", "aten.tensor_split.sections", "aten.tensor_split.indices")
def _split(ctx, node, x, sections, dim=0):
    """Consecutive pieces along dim, of the sizes torch computed (chunk's and tensor_split's rules)."""
    dim %= len(ctx.shape(x))
    sizes = [_hint(v.shape[dim]) for v in node.meta["val"]]
    return tuple(add_split(ctx.graph, ctx.tensor(x), dim, sizes, ctx.name_of(node)))


@handles("aten.unbind.int")
def _unbind(ctx, node, x, dim=0):
    shape = ctx.shape(x)
    dim %= len(shape)
    pieces = add_split(ctx.graph, ctx.tensor(x), dim, [1] * shape[dim], ctx.name_of(node))
    return tuple(ctx.graph.add_op("RESHAPE", [p], shape[:dim] + shape[dim + 1:], name=ctx.name_of(node),
                                  dtype=ctx.graph.tensors[p].dtype) for p in pieces)


@handles("aten.flip.default")
def _flip(ctx, node, x, dims):
    shape = ctx.shape(x)
    flipped = {d % len(shape) for d in dims}
    begin = [n - 1 if d in flipped else 0 for d, n in enumerate(shape)]
    step = [-1 if d in flipped else 1 for d in range(len(shape))]
    return add_slice(ctx.graph, ctx.tensor(x), begin, step, shape, ctx.name_of(node))


@handles("aten.roll.default")
def _roll(ctx, node, x, shifts, dims=()):
    """Two slices and a concatenation per rolled axis; without dims, of the flattened tensor."""
    shape, name, y = ctx.shape(x), ctx.name_of(node), ctx.tensor(x)
    if not dims:
        flat = ctx.graph.add_op("RESHAPE", [y], (int(np.prod(shape)),), name=name + ":flat",
                                dtype=ctx.graph.tensors[y].dtype)
        rolled = add_roll(ctx.graph, flat, 0, shifts[0], name)
        return ctx.graph.add_op("RESHAPE", [rolled], shape, name=name, dtype=ctx.graph.tensors[y].dtype)
    for shift, dim in zip(shifts, dims):
        y = add_roll(ctx.graph, y, dim % len(shape), shift, name)
    return y


@handles("aten.movedim.int")
def _movedim(ctx, node, x, source, destination):
    rank = len(ctx.shape(x))
    perm = [d for d in range(rank) if d != source % rank]
    perm.insert(destination % rank, source % rank)
    return ctx.graph.add_op("TRANSPOSE", [ctx.tensor(x)], ctx.shape(node), name=ctx.name_of(node),
                            options=dict(perm=perm))


def _target_name(target):
    if target is operator.getitem:
        return "getitem"
    return str(target)


# Bookkeeping nodes torch.export leaves in the graph; they compute nothing.
_IGNORED = {"aten._assert_tensor_metadata.default", "aten._assert_scalar.default",
            "aten.sym_constrain_range_for_size.default"}


def _reads_missing(ctx, arg):
    import torch.fx

    if isinstance(arg, (list, tuple)):
        return any(_reads_missing(ctx, a) for a in arg)
    return isinstance(arg, torch.fx.Node) and ctx.values.get(arg) is Missing.MISSING


def supported_ops():
    """The aten ops from_torch maps (any op whose inputs are all constants is also folded by torch)."""
    return sorted(_HANDLERS)


def _is_constant(ctx, arg):
    import torch.fx

    if isinstance(arg, (list, tuple)):
        return all(_is_constant(ctx, a) for a in arg)
    if isinstance(arg, torch.fx.Node):
        v = ctx.values[arg]
        if isinstance(v, str):
            return ctx.graph.tensors[v].data is not None
        return not isinstance(v, tuple)
    return True


def _fold(ctx, node):
    """Runs a node whose inputs are all constants (position ids, masks of buffers) with torch,
    so the file holds its result."""
    import torch
    import torch.fx

    def materialize(arg):
        if isinstance(arg, (list, tuple)):
            return type(arg)(materialize(a) for a in arg)
        if isinstance(arg, torch.fx.Node):
            v = ctx.values[arg]
            return torch.from_numpy(ctx.graph.tensors[v].data.copy()) if isinstance(v, str) else v
        return arg

    result = node.target(*materialize(node.args), **materialize(node.kwargs))
    if not isinstance(result, torch.Tensor):
        raise ConversionError(f"node {node.name} at '{ctx.name_of(node)}' ({node.target}) folds to "
                              f"{type(result).__name__}, not a tensor")
    name = ctx.graph.add_const(node.name, result.detach().cpu().numpy())
    ctx.graph.tensors[name].dynamic = ctx.dynamic(node)
    return name


def _export(module, example_input, dynamic_axes):
    """torch.export of the module on a tensor, tuple or dict (keyword arguments) of examples.
    dynamic_axes {input: {axis: name}} makes those axes dynamic from 1 up to the example's size
    (an axis of size 1 has nowhere to go and stays fixed). Returns the program and the axes kept."""
    import inspect

    import torch

    if isinstance(example_input, dict):
        args, kwargs = (), dict(example_input)
        names = list(kwargs)
    else:
        args = example_input if isinstance(example_input, tuple) else (example_input,)
        kwargs = {}
        params = [p for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        names = [p.name for p in params[:len(args)]]
    examples = dict(zip(names, list(args) + list(kwargs.values())))
    dynamic_shapes = None
    if dynamic_axes:
        unknown = sorted(set(dynamic_axes) - set(names))
        if unknown:
            raise ConversionError(f"dynamic_axes names unknown input(s) {unknown}; the inputs are {names}")
        dynamic_axes = {inp: {axis: dim for axis, dim in axes.items() if examples[inp].shape[axis] > 1}
                        for inp, axes in dynamic_axes.items()}
        dims = {}
        for inp, axes in dynamic_axes.items():
            for axis, dim in axes.items():
                size = examples[inp].shape[axis]
                if dims.setdefault(dim, (size, None))[0] != size:
                    raise ConversionError(f"dynamic dimension '{dim}' has different sizes in the examples")
        dims = {dim: torch.export.Dim(dim, min=1, max=size) for dim, (size, _) in dims.items()}
        dynamic_shapes = {n: {axis: dims[dim] for axis, dim in dynamic_axes.get(n, {}).items()} or None
                          for n in names}
        if not kwargs:
            dynamic_shapes = tuple(dynamic_shapes[n] for n in names)
    try:
        return torch.export.export(module, args, kwargs, dynamic_shapes=dynamic_shapes), dynamic_axes
    except Exception as exc:  # export errors are long; keep their first lines
        raise ConversionError("torch.export could not trace the module: "
                              + " ".join(str(exc).strip().splitlines()[:3])) from exc


def from_torch_graph(module, example_input, dynamic_axes=None):
    """torch.export's graph of `module` as sparselite IR (before the passes)."""
    import torch

    module = module.eval()
    ep, dynamic_axes = _export(module, example_input, dynamic_axes)
    graph = Graph()
    ctx = _Context(graph, ep, {})
    missing = Missing("torch")
    state = {**ep.state_dict, **getattr(ep, "constants", {})}
    spec_by_arg = {s.arg.name: s for s in ep.graph_signature.input_specs if hasattr(s.arg, "name")}
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            spec = spec_by_arg[node.name]
            if spec.target is not None and spec.target in state:
                data = state[spec.target].detach().cpu().numpy()
                ctx.values[node] = graph.add_const(spec.target, data)
                continue
            val = node.meta["val"]
            dtypes = {torch.float32: "float32", torch.int32: "int32", torch.int64: "int64"}
            if val.dtype not in dtypes:
                raise ConversionError(f"input '{node.name}' has dtype {val.dtype}: inputs must be float32, "
                                      "or int32/int64 (token ids)")
            for axis, dim in (dynamic_axes or {}).get(node.name, {}).items():
                size = val.shape[axis]
                if not isinstance(size, torch.SymInt):
                    raise ConversionError(f"torch.export fixed axis {axis} of input '{node.name}' at {size}: the "
                                          "model does not allow it to vary")
                ctx.dim_names[str(size.node.expr)] = dim
                graph.dims[dim] = _hint(size)
            ctx.values[node] = graph.add_input(node.name, ctx.shape(node), dtypes[val.dtype])
            graph.tensors[ctx.values[node]].dynamic = ctx.dynamic(node)
        elif node.op == "call_function":
            name = _target_name(node.target)
            if _reads_missing(ctx, list(node.args) + list(node.kwargs.values())):
                ctx.values[node] = Missing.MISSING   # after an op that could not convert: not reported again
                continue
            if name == "getitem":
                ctx.values[node] = ctx.values[node.args[0]][node.args[1]]
                continue
            if name == "aten.sym_size.int":
                ctx.values[node] = _SymSize(_hint(node.meta["val"]))
                continue
            if name in _IGNORED:
                ctx.values[node] = None
                continue
            if _is_constant(ctx, list(node.args) + list(node.kwargs.values())):
                ctx.values[node] = _fold(ctx, node)
                continue
            handler = _HANDLERS.get(name)
            where = f"module '{ctx.name_of(node)}', node {node.name}"
            if handler is None:
                missing.add(name, "", where)
                ctx.values[node] = Missing.MISSING
                continue
            try:
                result = handler(ctx, node, *node.args, **node.kwargs)
            except Unsupported as e:
                missing.add(e.op, e.reason, where)
                ctx.values[node] = Missing.MISSING
                continue
            if isinstance(result, str) and graph.tensors[result].data is None:
                graph.tensors[result].dynamic = ctx.dynamic(node)
            elif isinstance(result, tuple):   # a split's pieces
                for r, val in zip(result, node.meta["val"]):
                    if isinstance(r, str) and graph.tensors[r].data is None:
                        graph.tensors[r].dynamic = ctx.dynamic(node, val)
            ctx.values[node] = result
        elif node.op == "output":
            missing.check()
            outs = node.args[0]
            for i, o in enumerate(outs if isinstance(outs, (tuple, list)) else [outs]):
                graph.outputs.append(ctx.values[o])
    return graph
