"""PyTorch frontend: torch.export -> IR, one handler per aten op."""
import operator

import numpy as np

from sparselite.errors import ConversionError

from . import einsum
from .ir import MAX_DIVISOR, Graph, computed_dim
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
        self.cuts = {}               # a constant's dtype, shape, dynamic axes, bytes -> its runtime copy (_cut)
        self.additive_masks = {}     # boolean attention mask -> its additive form, made once

    def name_of(self, node):
        stack = node.meta.get("nn_module_stack") or {}
        if stack:
            path, cls = list(stack.values())[-1]
            return path or cls.rsplit(".", 1)[-1]
        return node.name

    def merged(self, d):
        """(dimension name, k) where size d is k times a dynamic dimension (DeBERTa's views of batch x
        heads as one axis), else None."""
        import torch

        if not isinstance(d, torch.SymInt):
            return None
        expr = d.node.expr
        if expr.is_Mul and len(expr.args) == 2 and expr.args[0].is_Integer and str(expr.args[1]) in self.dim_names:
            return self.dim_names[str(expr.args[1])], int(expr.args[0])
        return None

    def split(self, node):
        """Whether the node's value has a first axis of k x a dynamic dimension, which the IR holds
        as two axes [dimension, k] (the .slite's axes follow a dimension or are fixed)."""
        import torch

        val = node.meta.get("val")
        return isinstance(val, torch.Tensor) and val.dim() > 0 and self.merged(val.shape[0]) is not None

    def shape(self, node):
        """The node's shape, dynamic dimensions at their maximum (the example's size); a first axis
        of k x a dynamic dimension as two axes (split)."""
        dims = node.meta["val"].shape
        first = self.merged(dims[0]) if len(dims) else None
        if first is not None:
            return (self.graph.dims[first[0]], first[1]) + tuple(_hint(d) for d in dims[1:])
        return tuple(_hint(d) for d in dims)

    def dynamic(self, node, val=None):
        """Per axis of the node's value (or of val, one of its values): None, or the dynamic
        dimension it equals."""
        import torch

        out = []
        for axis, d in enumerate((node.meta["val"] if val is None else val).shape):
            if not isinstance(d, torch.SymInt):
                out.append(None)
                continue
            if axis == 0 and self.merged(d) is not None:
                out += [self.merged(d)[0], None]
                continue
            name = self.dim_names.get(str(d.node.expr)) or self.derived(d)
            if name is None:
                expr = str(d.node.expr)
                for sym, dim in sorted(self.dim_names.items(), key=lambda kv: -len(kv[0])):
                    expr = expr.replace(sym, dim)
                raise Unsupported(str(node.target), f"a dimension {expr} computed from the dynamic dimensions (only "
                                  "a dynamic dimension itself can vary: give that input axis a fixed size)")
            out.append(name)
        return tuple(out) if any(n is not None for n in out) else ()

    def derived(self, d):
        """The dimension that size d is when torch computed it from one dynamic dimension s as
        (s + a) // b + c (a strided convolution's frames of audio samples, a slice dropping c
        elements), added to graph.derived_dims as floor((s + a + b * c) / b); None otherwise."""
        def split_constant(expr):
            if type(expr).__name__ == "Max" and len(expr.args) == 2 and 0 in expr.args:
                expr = next(a for a in expr.args if a != 0)   # a slice's clamp at 0: sizes are >= 1 here
            if expr.is_Add:
                rest = [a for a in expr.args if not a.is_Integer]
                if len(rest) == 1:
                    inner, constant = split_constant(rest[0])
                    return inner, constant + int(sum(a for a in expr.args if a.is_Integer))
            return expr, 0

        expr, after = split_constant(d.node.expr)
        divisor, before = 1, 0
        if type(expr).__name__ == "FloorDiv" and expr.args[1].is_Integer and int(expr.args[1]) > 0:
            divisor = int(expr.args[1])
            expr, before = split_constant(expr.args[0])
        source = self.dim_names.get(str(expr))
        if source is None:
            return None
        offset = before + after * divisor
        if divisor == 1 and offset == 0:   # a slice's size put back (x[:, :-2] padded by 2)
            return source
        name, *formula = computed_dim(self.graph.derived_dims, source, offset, divisor)
        size = (self.graph.dims[source] + offset) // divisor
        if size != _hint(d) or size < 1 or abs(formula[1]) > MAX_DIVISOR or formula[2] > MAX_DIVISOR:
            return None
        self.graph.dims[name] = size
        self.graph.derived_dims[name] = tuple(formula)
        self.dim_names[str(d.node.expr)] = name
        return name

    def value(self, arg):
        import torch.fx

        if isinstance(arg, torch.fx.Node):
            return self.values[arg]
        return arg

    def tensor(self, arg, dtype=None):
        """IR tensor name for an argument: python scalars become constants (float32 unless `dtype`
        says), a tensor of another dtype than `dtype` is cast, and a constant folded at the dynamic
        dimensions' maxima that the runtime cannot shrink (more than one dynamic axis) is cut to
        the run's sizes by an op."""
        v = self.value(arg)
        if isinstance(v, _SymSize):
            raise ConversionError("a dynamic dimension's size is used as a value (not only as a shape): "
                                  "convert with fixed shapes")
        if isinstance(v, (int, float, bool)):
            if dtype is None:
                dtype = "bool" if isinstance(v, bool) else "float32"
            return self.graph.add_const("scalar", np.array(v, dtype=_NUMPY[dtype]).reshape(()))
        if not isinstance(v, str):
            raise ConversionError(f"expected a tensor argument, got {v!r}")
        t = self.graph.tensors[v]
        if t.data is not None and not _shrinkable(t):
            v = self._cut(v)
        if dtype is None or t.dtype == dtype:
            return v
        if t.data is not None and not t.dynamic:
            return self.graph.add_const(f"{v}:{dtype}", _cast_data(t.data, dtype))
        return self.add("CAST", [v], t.shape, self.dyn(v), dtype=dtype, name=v + ":cast")

    def const(self, arg):
        """The numpy data of a constant argument (weights, biases)."""
        name = self.tensor(arg)
        data = self.graph.tensors[name].data
        if data is None:
            raise ConversionError(f"'{name}' must be a constant (a parameter or buffer)")
        return data

    def is_const(self, arg):
        v = self.value(arg)
        return isinstance(v, (int, float, bool)) or (isinstance(v, str) and self.graph.tensors[v].data is not None)

    def dyn(self, name):
        """Per axis of IR tensor `name`: the dynamic dimension it follows, or None."""
        t = self.graph.tensors[name]
        return tuple(t.dynamic) if t.dynamic else (None,) * len(t.shape)

    def node_dyn(self, node):
        return self.dynamic(node) or (None,) * len(self.shape(node))

    def add(self, type, inputs, shape, dynamic=(), name="", **kwargs):
        """add_op, marking the output's dynamic axes (intermediate tensors of a lowering)."""
        out = self.graph.add_op(type, inputs, shape, name=name, **kwargs)
        if any(d is not None for d in dynamic):
            self.graph.tensors[out].dynamic = tuple(dynamic)
        return out

    def _cut(self, name):
        """A runtime tensor equal to constant `name` (held at the maxima) at the run's sizes. Axes along
        which it repeats are dropped to one element (EXPAND broadcasts them again); if more than one
        dynamic axis still varies, GATHER_ELEMENTS reads what is left at the index along its first
        dynamic axis, an index whose sizes follow the run."""
        t = self.graph.tensors[name]
        key = (t.dtype, tuple(t.shape), tuple(t.dynamic), t.data.tobytes())   # layers fold equal ones
        if key in self.cuts:
            return self.cuts[key]
        data, dynamic = t.data, list(t.dynamic)
        for axis in range(data.ndim):
            if data.shape[axis] > 1 and (data == data.take([0], axis=axis)).all():
                data = data.take([0], axis=axis)
                dynamic[axis] = None
        small = self.graph.add_const(name + ":small", data)
        self.graph.tensors[small].dynamic = tuple(dynamic) if any(d is not None for d in dynamic) else ()
        if not _shrinkable(self.graph.tensors[small]):
            self.graph.tensors[small].dynamic = ()   # read whole, at the maxima
            axis = next(i for i, d in enumerate(dynamic) if d is not None)
            rank = data.ndim
            steps = np.arange(data.shape[axis], dtype=np.int32).reshape((1,) * axis + (-1,) + (1,) * (rank - axis - 1))
            steps = self.graph.add_const(name + ":steps", steps)
            self.graph.tensors[steps].dynamic = (None,) * axis + (dynamic[axis],) + (None,) * (rank - axis - 1)
            index = self.add("EXPAND", [steps], data.shape, dynamic, name=name, dtype="int32")
            small = self.add("GATHER_ELEMENTS", [small, index], data.shape, dynamic, name=name, dtype=t.dtype,
                             options=dict(axis=axis))
        out = small
        if data.shape != tuple(t.shape):
            out = self.add("EXPAND", [small], t.shape, t.dynamic, name=name, dtype=t.dtype)
        self.cuts[key] = out
        return out


_NUMPY = {"float32": np.float32, "int32": np.int32, "int64": np.int64, "bool": np.bool_}


def _cast_data(data, dtype):
    """numpy's astype with torch's rules: float to int truncates, anything to bool is `!= 0`."""
    return (data != 0) if dtype == "bool" else data.astype(_NUMPY[dtype])


def _shrinkable(t):
    """Whether the runtime can cut constant t to a run's sizes by keeping its first elements: at most
    one dynamic axis, after axes of size 1 (as Graph.check requires)."""
    axes = [i for i, d in enumerate(t.dynamic) if d is not None]
    return not axes or (len(axes) == 1 and all(n == 1 for n in t.shape[:axes[0]]))


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
    """What decompositions leave of conv1d, conv2d and conv_transpose2d."""
    if len(ctx.shape(x)) == 3 and not transposed:
        if any(_pair(output_padding)):
            raise Unsupported("aten.convolution", f"output_padding {list(output_padding)} without transposed")
        return _conv1d(ctx, node, x, w, b, stride, padding, dilation, groups)
    if len(ctx.shape(x)) != 4:
        raise Unsupported("aten.convolution", f"over {len(ctx.shape(x)) - 2} dimensions (1-D and 2-D convert)")
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
    # float64 until fold_batch_norm rounds each folded parameter once (in float32, var + eps, the
    # root, the quotient, the product and the sum would each round).
    mean, var = np.asarray(ctx.const(mean), np.float64), np.asarray(ctx.const(var), np.float64)
    gamma = np.asarray(ctx.const(weight), np.float64) if weight is not None else np.ones_like(mean)
    beta = np.asarray(ctx.const(bias), np.float64) if bias is not None else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + eps)
    out = ctx.graph.add_op("BATCH_NORM", [ctx.tensor(x)], ctx.shape(node), name=ctx.name_of(node),
                           options=dict(scale=scale, shift=beta - mean * scale))
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


@handles("aten.prelu.default", "aten._prelu_kernel.default")
def _prelu(ctx, node, x, weight):
    """PReLU: one slope, or one per channel along dim 1, broadcast by the runtime's PRELU (fused into
    the convolution before it, as TFLite's are)."""
    slope = np.asarray(ctx.const(weight), np.float32).reshape(-1)
    shape = () if slope.size == 1 else (slope.size,) + (1,) * (len(ctx.shape(x)) - 2)
    return _elementwise(ctx, node, "PRELU", x, ctx.graph.add_const(ctx.name_of(node) + ".slope", slope.reshape(shape)))


@handles("aten.leaky_relu.default", "aten.leaky_relu_.default")
def _leaky_relu(ctx, node, x, negative_slope=0.01):
    return _elementwise(ctx, node, "PRELU", x, float(negative_slope))


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


_DTYPE_NAMES = {"torch.float32": "float32", "torch.int32": "int32", "torch.int64": "int64", "torch.bool": "bool"}


def _out_dtype(ctx, node, op=None):
    """The IR dtype of the node's (first) value; Unsupported for one a .slite cannot hold."""
    val = node.meta["val"]
    val = val[0] if isinstance(val, (tuple, list)) else val
    dtype = _DTYPE_NAMES.get(str(val.dtype))
    if dtype is None:
        raise Unsupported(op or str(node.target), f"of dtype {val.dtype} (float32, int32, int64 and bool convert)")
    return dtype


def _common_dtype(ctx, node, *args):
    """torch's type promotion over the arguments (tensors and python scalars), as an IR dtype."""
    import torch
    import torch.fx

    vals = [a.meta["val"] if isinstance(a, torch.fx.Node) else a for a in args if a is not None]
    dtype = vals[0] if len(vals) == 1 else torch.result_type(*vals[:2])
    for v in vals[2:]:
        dtype = torch.promote_types(dtype, v.dtype if isinstance(v, torch.Tensor) else torch.result_type(v, v))
    name = _DTYPE_NAMES.get(str(dtype.dtype if isinstance(dtype, torch.Tensor) else dtype))
    if name is None:
        raise Unsupported(str(node.target), f"on {dtype} (float32, int32, int64 and bool convert)")
    return name


def _elementwise(ctx, node, kind, a, b, dtype=None, options=None):
    """A broadcasting binary op computed in `dtype` (the node's own dtype by default), both inputs
    cast to it."""
    dtype = dtype or _out_dtype(ctx, node)
    if kind in ("ADD", "SUB", "MUL", "DIV") and dtype == "bool":
        raise Unsupported(str(node.target), "on bool tensors (float32, int32 and int64 convert)")
    return ctx.graph.add_op(kind, [ctx.tensor(a, dtype), ctx.tensor(b, dtype)], ctx.shape(node),
                            name=ctx.name_of(node), dtype=_out_dtype(ctx, node) if kind != "COMPARE" else "bool",
                            options=options)


@handles("aten.div.Tensor", "aten.div.Scalar", "aten.div.Tensor_mode", "aten.div.Scalar_mode")
def _div(ctx, node, a, b, rounding_mode=None):
    """Division; by a float constant it becomes a multiplication by the reciprocal (faster). Integer
    division truncates (rounding_mode "trunc") or floors (rounding_mode "floor")."""
    dtype = _out_dtype(ctx, node)
    if rounding_mode is not None and dtype == "float32":
        raise Unsupported(str(node.target), f"rounding_mode '{rounding_mode}' on floats")
    if rounding_mode == "floor":
        return _floor_divide(ctx, node, a, b)
    if dtype != "float32":
        return _elementwise(ctx, node, "DIV", a, b)
    if isinstance(b, (int, float)):
        scale = np.array(1.0 / b, dtype=np.float32)
    elif ctx.is_const(b) and ctx.graph.tensors[ctx.tensor(b)].data is not None:
        scale = (1.0 / ctx.const(b).astype(np.float32)).astype(np.float32)
    else:
        return _elementwise(ctx, node, "DIV", a, b)
    return ctx.graph.add_op("MUL", [ctx.tensor(a, "float32"), ctx.graph.add_const("reciprocal", scale)],
                            ctx.shape(node), name=ctx.name_of(node))


@handles("aten.floor_divide.default", "aten.floor_divide.Scalar")
def _floor_divide(ctx, node, a, b):
    """Integer floor division from the truncating DIV: q = a / b, one less where the remainder
    a - q b is nonzero and of the other sign than b (Wav2Vec2's output lengths)."""
    dtype = _out_dtype(ctx, node)
    if dtype == "float32":
        raise Unsupported(str(node.target), "on floats (integer floor division converts)")
    name, shape, dyn = ctx.name_of(node), ctx.shape(node), ctx.node_dyn(node)
    x, y = ctx.tensor(a, dtype), ctx.tensor(b, dtype)
    q = ctx.add("DIV", [x, y], shape, dyn, name=name, dtype=dtype)
    r = ctx.add("SUB", [x, ctx.add("MUL", [q, y], shape, dyn, name=name, dtype=dtype)], shape, dyn, name=name,
                dtype=dtype)
    zero = ctx.tensor(0, dtype)
    r_neg = ctx.add("COMPARE", [r, zero], shape, dyn, name=name, dtype="bool", options=dict(kind="LESS"))
    divisor = ctx.graph.tensors[y]
    if divisor.data is not None and (divisor.data > 0).all():   # a positive constant: r < 0 is the test
        fix = r_neg
    else:
        b_neg = ctx.add("COMPARE", [y, zero], divisor.shape, ctx.dyn(y), name=name, dtype="bool",
                        options=dict(kind="LESS"))
        signs = ctx.add("LOGICAL", [r_neg, b_neg], shape, dyn, name=name, dtype="bool", options=dict(kind="XOR"))
        inexact = ctx.add("COMPARE", [r, zero], shape, dyn, name=name, dtype="bool", options=dict(kind="NOT_EQUAL"))
        fix = ctx.add("LOGICAL", [signs, inexact], shape, dyn, name=name, dtype="bool", options=dict(kind="AND"))
    fix = ctx.add("CAST", [fix], shape, dyn, name=name, dtype=dtype)
    return ctx.graph.add_op("SUB", [q, fix], shape, name=name, dtype=dtype)


@handles("aten.sub.Tensor", "aten.sub.Scalar", "aten.rsub.Scalar", "aten.rsub.Tensor")
def _sub(ctx, node, a, b, alpha=1):
    if "rsub" in str(node.target):
        a, b = b, a
    if alpha != 1:
        return _binary("SUB")(ctx, node, a, b, alpha)
    return _elementwise(ctx, node, "SUB", a, b)


@handles("aten.to.dtype", "aten.to.dtype_layout", "aten._to_copy.default", "aten.to.device", "aten.type_as.default",
         "aten.to.other")
def _to(ctx, node, x, *args, **kwargs):
    """dtype conversions become CAST (an attention mask from int64 to bool or float); others vanish."""
    src = ctx.graph.tensors[ctx.tensor(x)].dtype
    dst = _DTYPE_NAMES.get(str(node.meta["val"].dtype))
    if dst is None:
        raise Unsupported(str(node.target), f"to {node.meta['val'].dtype} (float32, int32, int64 and bool convert)")
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


@handles("aten.clamp_min.default", "aten.clamp_min_.default")
def _clamp_min(ctx, node, x, lo):
    return _clamp(ctx, node, x, lo)


@handles("aten.clamp_max.default", "aten.clamp_max_.default")
def _clamp_max(ctx, node, x, hi):
    return _clamp(ctx, node, x, None, hi)


def _binary(kind):
    def handler(ctx, node, a, b, alpha=1):
        if alpha != 1:
            dtype = _out_dtype(ctx, node)
            b = ctx.add("MUL", [ctx.tensor(b, dtype), ctx.tensor(alpha, dtype)],
                        ctx.shape(node.args[1]) if hasattr(node.args[1], "meta") else (),
                        ctx.dyn(ctx.tensor(b)), name=ctx.name_of(node), dtype=dtype)
        return _elementwise(ctx, node, kind, a, b)
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


@handles("aten.linalg_vector_norm.default")
def _vector_norm(ctx, node, x, ord=2, dim=None, keepdim=False, dtype=None):
    """The p-norm over dims: SUM of x * x then SQRT (p = 2: F.normalize, Swin V2's cosine attention),
    SUM of |x| (1), MAX / MIN of |x| (inf / -inf), else (SUM of |x| ** p) ** (1 / p)."""
    if dtype is not None:
        raise Unsupported(str(node.target), f"with dtype={dtype}")
    p = float(ord)
    if p == 0:
        raise Unsupported(str(node.target), "with ord=0 (a count of non-zeros)")
    x_name, name, shape = ctx.tensor(x, "float32"), ctx.name_of(node), ctx.shape(x)
    dyn = ctx.dyn(x_name)
    if p == 2:
        y = ctx.add("MUL", [x_name, x_name], shape, dyn, name=name)
    else:
        y = ctx.add("ACTIVATION", [x_name], shape, dyn, name=name, options=dict(activation="ABS"))
        if np.isfinite(p) and p != 1:
            y = ctx.add("ACTIVATION", [y], shape, dyn, name=name, options=dict(activation="POW", exponent=p))
    kind = "MAX" if p == np.inf else "MIN" if p == -np.inf else "SUM"
    rank = len(shape)
    axes = sorted({d % rank for d in dim}) if dim else list(range(rank))
    options = dict(kind=kind, axes=axes, keep_dims=bool(keepdim))
    if p in (1, np.inf, -np.inf):
        return ctx.graph.add_op("REDUCE", [y], ctx.shape(node), name=name, options=options)
    total = ctx.add("REDUCE", [y], ctx.shape(node), ctx.node_dyn(node), name=name, options=options)
    root = dict(activation="SQRT") if p == 2 else dict(activation="POW", exponent=1.0 / p)
    return ctx.graph.add_op("ACTIVATION", [total], ctx.shape(node), name=name, options=root)


@handles("aten.einsum.default")
def _einsum(ctx, node, equation, operands, path=None):
    names = [ctx.tensor(t) for t in operands]
    if any(ctx.graph.tensors[n].dtype != "float32" for n in names):
        raise Unsupported(str(node.target), "of integer tensors (float32 converts)")
    if any(ctx.dynamic(t) for t in operands):
        raise Unsupported(str(node.target), "on tensors with a dynamic dimension")
    return einsum.lower(ctx.graph, str(node.target), equation, names, [ctx.shape(t) for t in operands],
                        ctx.name_of(node))


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
    if isinstance(ctx.value(x), _Shifted):
        return _unshift(ctx, node, ctx.value(x), begins, ends, value)
    return ctx.graph.add_op("PAD", [ctx.tensor(x)], ctx.shape(node), name=ctx.name_of(node),
                            options=dict(pads=begins + ends, value=value))


class _Shifted:
    """A slice that dropped k elements from one end of a dynamic axis, read only by a pad: no op
    of its own (its length, the dimension minus k, cannot follow a dynamic dimension)."""

    def __init__(self, x, axis, k, begin):
        self.x, self.axis, self.k, self.begin = x, axis, k, begin


def _unshift(ctx, node, s, begins, ends, value):
    """The pad of a _Shifted slice putting k zeros back at the other end (MobileBERT's neighbouring
    tokens, `pad(x[:, 1:])`): GATHER_ELEMENTS at indices i + k (or i - k), those past the axis
    reading 0, so the axis keeps following its dynamic dimension."""
    shape, dyn = ctx.graph.tensors[s.x].shape, ctx.dyn(s.x)
    wanted_begins, wanted_ends = [0] * len(shape), [0] * len(shape)
    (wanted_ends if s.begin == s.k else wanted_begins)[s.axis] = s.k
    if value != 0.0 or begins != wanted_begins or ends != wanted_ends:
        raise Unsupported(str(node.target), f"a slice of a dynamic axis ({dyn[s.axis]} - {s.k} elements) padded other "
                          "than back to its length by zeros at the other end: give that input axis a fixed size")
    positions = np.arange(shape[s.axis], dtype=np.int32)
    index = positions + s.k if s.begin == s.k else np.where(positions >= s.k, positions - s.k, np.iinfo(np.int32).max)
    index = ctx.graph.add_const(ctx.name_of(node) + ".index",
                                index.reshape([-1 if d == s.axis else 1 for d in range(len(shape))]))
    ctx.graph.tensors[index].dynamic = tuple(dyn[s.axis] if d == s.axis else None for d in range(len(shape)))
    index = ctx.add("EXPAND", [index], shape, dyn, name=ctx.name_of(node), dtype="int32")
    return ctx.graph.add_op("GATHER_ELEMENTS", [s.x, index], shape, name=ctx.name_of(node),
                            dtype=ctx.graph.tensors[s.x].dtype, options=dict(axis=s.axis))


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
    k = shape[dim] - count
    if ctx.dyn(ctx.tensor(x))[dim] is not None and 0 < k and step == 1 and begin in (0, k) and \
            [_target_name(u.target) for u in node.users] in (["aten.constant_pad_nd.default"], ["aten.pad.default"]):
        return _Shifted(ctx.tensor(x), dim, k, begin)   # the pad after it makes it one op (_unshift)
    return add_axis_slice(ctx.graph, ctx.tensor(x), dim, begin, step, count, ctx.name_of(node))


def _index(ctx, node, dim, index):
    """An index into an axis of `dim` elements, negative from the end."""
    if not -dim <= index < dim:
        raise ConversionError(f"{node.target} at '{ctx.name_of(node)}': index {index} is out of range for a "
                              f"dimension of {dim}")
    return index % dim


def _follow(ctx, piece, x, axis):
    """Marks a slice of x taken along `axis` as following x's dynamic dimensions on the other axes."""
    if piece != x and ctx.graph.tensors[piece].data is None:
        dyn = list(ctx.dyn(x))
        dyn[axis] = None
        ctx.graph.tensors[piece].dynamic = tuple(dyn) if any(d is not None for d in dyn) else ()


@handles("aten.select.int")
def _select(ctx, node, x, dim, index):
    shape = ctx.shape(x)
    dim %= len(shape)
    if index < 0 and ctx.dyn(ctx.tensor(x))[dim] is not None:
        row = _from_the_end(ctx, node, ctx.tensor(x), dim, -index)
    else:
        row = add_axis_slice(ctx.graph, ctx.tensor(x), dim, _index(ctx, node, shape[dim], index), 1, 1,
                             ctx.name_of(node))
    _follow(ctx, row, ctx.tensor(x), dim)
    return ctx.graph.add_op("RESHAPE", [row], ctx.shape(node), name=ctx.name_of(node),
                            dtype=ctx.graph.tensors[row].dtype)


def _left_from(ctx, name, rank, size, axis, dim):
    """int32 of `rank` axes, of `size` along `axis` (following dynamic dimension `dim`) and 1 along
    the others: at position j the elements from j to the run's end (CUMSUM of ones cut to the run)."""
    shape, dyn = tuple(size if d == axis else 1 for d in range(rank)), tuple(dim if d == axis else None
                                                                            for d in range(rank))
    ones = ctx.graph.add_const(name + ":ones", np.ones(shape, np.int32))
    ctx.graph.tensors[ones].dynamic = dyn
    return ctx.add("CUMSUM", [ones], shape, dyn, name=name, dtype="int32", options=dict(axis=axis, reverse=True))


def _from_the_end(ctx, node, x, axis, k):
    """x's k-th element from the end of a dynamic axis (`mask.cumsum(-1)[:, -1]`), size 1 along it:
    GATHER_ELEMENTS at the run's length - k, counted at run time (CUMSUM of ones cut to the run)."""
    name, t, dyn = ctx.name_of(node), ctx.graph.tensors[x], ctx.dyn(x)
    rank = len(t.shape)
    counts = _left_from(ctx, name, rank, t.shape[axis], axis, dyn[axis])
    length = add_axis_slice(ctx.graph, counts, axis, 0, 1, 1, name)   # the first: the whole count
    at = ctx.add("SUB", [length, ctx.tensor(k, "int32")], (1,) * rank, dtype="int32", name=name)
    shape = tuple(1 if d == axis else n for d, n in enumerate(t.shape))
    picked_dyn = tuple(None if d == axis else v for d, v in enumerate(dyn))
    at = ctx.add("EXPAND", [at], shape, picked_dyn, dtype="int32", name=name)
    return ctx.add("GATHER_ELEMENTS", [x, at], shape, picked_dyn, name=name, dtype=t.dtype, options=dict(axis=axis))


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
    for p in pieces:
        _follow(ctx, p, ctx.tensor(x), dim)
    return tuple(ctx.graph.add_op("RESHAPE", [p], shape[:dim] + shape[dim + 1:], name=ctx.name_of(node),
                                  dtype=ctx.graph.tensors[p].dtype) for p in pieces)


@handles("aten.flip.default")
def _flip(ctx, node, x, dims):
    shape, name, y = ctx.shape(x), ctx.name_of(node), ctx.tensor(x)
    flipped = {d % len(shape) for d in dims}
    dyn = ctx.dyn(y)
    for axis in sorted(d for d in flipped if dyn[d] is not None):   # at index length - 1 - j, counted at run time
        left = _left_from(ctx, name, len(shape), shape[axis], axis, dyn[axis])
        at = ctx.add("SUB", [left, ctx.tensor(1, "int32")], ctx.graph.tensors[left].shape, ctx.dyn(left), name=name,
                     dtype="int32")
        at = ctx.add("EXPAND", [at], shape, dyn, name=name, dtype="int32")
        y = ctx.add("GATHER_ELEMENTS", [y, at], shape, dyn, name=name, dtype=ctx.graph.tensors[y].dtype,
                    options=dict(axis=axis))
        flipped.discard(axis)
    begin = [n - 1 if d in flipped else 0 for d, n in enumerate(shape)]
    step = [-1 if d in flipped else 1 for d in range(len(shape))]
    return add_slice(ctx.graph, y, begin, step, shape, name)


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


# --- booleans, selection, integer tensors (issue 17) -------------------------------------------------------
_COMPARE = {"eq": "EQUAL", "ne": "NOT_EQUAL", "lt": "LESS", "le": "LESS_EQUAL", "gt": "GREATER", "ge": "GREATER_EQUAL"}


def _compare(kind):
    def handler(ctx, node, a, b):
        dtype = _common_dtype(ctx, node, a, b)
        return _elementwise(ctx, node, "COMPARE", a, b, dtype=dtype, options=dict(kind=kind))
    return handler


for _op, _kind in _COMPARE.items():
    handles(f"aten.{_op}.Tensor", f"aten.{_op}.Scalar")(_compare(_kind))


def _logical(kind):
    def handler(ctx, node, a, b=None):
        inputs = [a] if b is None else [a, b]
        if kind == "AND":   # with an all-true constant (transformers' masks): the other, broadcast
            for x, y in ((a, b), (b, a)):
                if ctx.is_const(x) and not isinstance(ctx.value(x), (int, float, bool)) \
                        and ctx.graph.tensors[ctx.value(x)].data.all() and not ctx.is_const(y) \
                        and ctx.graph.tensors[ctx.tensor(y)].dtype == "bool":
                    return _expand(ctx, node, y)
        if any(not ctx.is_const(x) and ctx.graph.tensors[ctx.tensor(x)].dtype != "bool" for x in inputs) and \
                "logical" not in str(node.target):
            raise Unsupported(str(node.target), "on integer tensors (bitwise ops convert on bool)")
        return ctx.graph.add_op("LOGICAL", [ctx.tensor(x, "bool") for x in inputs], ctx.shape(node),
                                name=ctx.name_of(node), dtype="bool", options=dict(kind=kind))
    return handler


for _names, _kind in ((("aten.logical_and.default", "aten.bitwise_and.Tensor", "aten.__and__.Tensor"), "AND"),
                      (("aten.logical_or.default", "aten.bitwise_or.Tensor", "aten.__or__.Tensor"), "OR"),
                      (("aten.logical_xor.default", "aten.bitwise_xor.Tensor", "aten.__xor__.Tensor"), "XOR"),
                      (("aten.logical_not.default", "aten.bitwise_not.default"), "NOT")):
    handles(*_names)(_logical(_kind))


@handles("aten.where.self", "aten.where.ScalarOther", "aten.where.ScalarSelf", "aten.where.Scalar")
def _where(ctx, node, cond, x, y):
    dtype = _out_dtype(ctx, node)
    return ctx.graph.add_op("WHERE", [ctx.tensor(cond, "bool"), ctx.tensor(x, dtype), ctx.tensor(y, dtype)],
                            ctx.shape(node), name=ctx.name_of(node), dtype=dtype)


@handles("aten.masked_fill.Scalar", "aten.masked_fill.Tensor", "aten.masked_fill_.Scalar", "aten.masked_fill_.Tensor")
def _masked_fill(ctx, node, x, mask, value):
    return _where(ctx, node, mask, value, x)


def _minmax(kind):
    """Elementwise min / max as WHERE over a comparison; for floats a NaN in either input gives NaN,
    as in torch (x < y is false when y is NaN, so y is taken; x != x picks a NaN x)."""
    def handler(ctx, node, a, b):
        dtype = _out_dtype(ctx, node)
        x, y = ctx.tensor(a, dtype), ctx.tensor(b, dtype)
        name, shape, dyn = ctx.name_of(node), ctx.shape(node), ctx.node_dyn(node)
        take_x = ctx.add("COMPARE", [x, y], shape, dyn, name=name, dtype="bool",
                         options=dict(kind="LESS" if kind == "min" else "GREATER"))
        if dtype == "float32":
            nan_x = ctx.add("COMPARE", [x, x], ctx.graph.tensors[x].shape, ctx.dyn(x), name=name, dtype="bool",
                            options=dict(kind="NOT_EQUAL"))
            take_x = ctx.add("LOGICAL", [take_x, nan_x], shape, dyn, name=name, dtype="bool", options=dict(kind="OR"))
        return ctx.graph.add_op("WHERE", [take_x, x, y], shape, name=name, dtype=dtype)
    return handler


handles("aten.minimum.default", "aten.min.other")(_minmax("min"))
handles("aten.maximum.default", "aten.max.other")(_minmax("max"))


@handles("aten.pow.Tensor_Scalar")
def _pow(ctx, node, x, exponent):
    """x ** p: p = 2 is x * x, 1 is x, 0.5 SQRT, -0.5 RSQRT, -1 a reciprocal; any other p is POW."""
    x_name, name, shape = ctx.tensor(x, "float32"), ctx.name_of(node), ctx.shape(node)
    if _out_dtype(ctx, node) != "float32":
        raise Unsupported(str(node.target), "of an integer tensor (float32 converts)")
    p = float(exponent)
    if p == 1.0:
        return x_name
    if p == 2.0:
        return ctx.graph.add_op("MUL", [x_name, x_name], shape, name=name)
    if p == -1.0:
        return ctx.graph.add_op("DIV", [ctx.tensor(1.0), x_name], shape, name=name)
    kind = {0.5: "SQRT", -0.5: "RSQRT"}.get(p, "POW")
    return ctx.graph.add_op("ACTIVATION", [x_name], shape, name=name,
                            options=dict(activation=kind, exponent=p) if kind == "POW" else dict(activation=kind))


def _unary(kind):
    def handler(ctx, node, x):
        dtype = ctx.graph.tensors[ctx.tensor(x)].dtype
        if kind == "NEG" and dtype in ("int32", "int64"):
            return ctx.graph.add_op("MUL", [ctx.tensor(x), ctx.tensor(-1, dtype)], ctx.shape(node),
                                    name=ctx.name_of(node), dtype=dtype)
        if _out_dtype(ctx, node) != "float32":
            raise Unsupported(str(node.target), f"of a {dtype} tensor (float32 converts)")
        return ctx.graph.add_op("ACTIVATION", [ctx.tensor(x, "float32")], ctx.shape(node), name=ctx.name_of(node),
                                options=dict(activation=kind))
    return handler


for _op, _kind in (("neg", "NEG"), ("abs", "ABS"), ("sqrt", "SQRT"), ("rsqrt", "RSQRT"), ("exp", "EXP"),
                   ("log", "LOG"), ("erf", "ERF")):
    handles(f"aten.{_op}.default", f"aten.{_op}_.default")(_unary(_kind))


@handles("aten.cumsum.default")
def _cumsum(ctx, node, x, dim, dtype=None):
    out = _out_dtype(ctx, node)
    rank = len(ctx.shape(node))
    return ctx.graph.add_op("CUMSUM", [ctx.tensor(x, out)], ctx.shape(node), name=ctx.name_of(node), dtype=out,
                            options=dict(axis=dim % max(rank, 1)))


@handles("aten.expand.default", "aten.expand_as.default", "aten.broadcast_to.default", "aten.expand_copy.default")
def _expand(ctx, node, x, *args, **kwargs):
    x_name = ctx.tensor(x)
    t = ctx.graph.tensors[x_name]
    if tuple(t.shape) == ctx.shape(node) and ctx.dyn(x_name) == ctx.node_dyn(node):
        return x_name
    return ctx.graph.add_op("EXPAND", [x_name], ctx.shape(node), name=ctx.name_of(node), dtype=t.dtype)


@handles("aten.repeat.default")
def _repeat(ctx, node, x, repeats):
    """x.repeat(r...): x broadcast over a new axis before each of its own, then those pairs merged."""
    x_name = ctx.tensor(x)
    t = ctx.graph.tensors[x_name]
    shape = (1,) * (len(repeats) - len(t.shape)) + tuple(t.shape)
    dyn = (None,) * (len(repeats) - len(t.shape)) + ctx.dyn(x_name)
    if any(d is not None and r != 1 for d, r in zip(dyn, repeats)):
        raise Unsupported(str(node.target), "along a dynamic dimension")
    name = ctx.name_of(node)
    split = tuple(v for n in shape for v in (1, n))
    wide = tuple(v for r, n in zip(repeats, shape) for v in (r, n))
    pairs = tuple(v for d in dyn for v in (None, d))
    y = ctx.add("RESHAPE", [x_name], split, pairs, name=name, dtype=t.dtype)
    y = ctx.add("EXPAND", [y], wide, pairs, name=name, dtype=t.dtype)
    return ctx.graph.add_op("RESHAPE", [y], ctx.shape(node), name=name, dtype=t.dtype)


_SMALL_FILL = 1 << 16   # elements of a fill held as a constant (256 KiB of float32)


@handles("aten.zeros_like.default", "aten.ones_like.default", "aten.full_like.default", "aten.new_zeros.default",
         "aten.new_ones.default", "aten.new_full.default", "aten.new_empty.default", "aten.empty_like.default",
         "aten.scalar_tensor.default", "aten.full.default", "aten.zeros.default", "aten.ones.default")
def _fill(ctx, node, *args, **kwargs):
    """A tensor of one value shaped after a runtime tensor: a constant where its shape is fixed and
    small (masks built from shapes, which then fold), else EXPAND of a scalar constant."""
    op = str(node.target)
    value = 1 if "ones" in op else 0
    if "full" in op:
        value = args[2] if "new_full" in op else args[1]
    elif "scalar_tensor" in op:
        value = args[0]
    dtype = _out_dtype(ctx, node)
    shape = ctx.shape(node)
    if not ctx.dynamic(node) and int(np.prod(shape)) <= _SMALL_FILL:
        return ctx.graph.add_const("fill", np.full(shape, value, dtype=_NUMPY[dtype]))
    scalar = ctx.graph.add_const("fill", np.array(value, dtype=_NUMPY[dtype]).reshape(()))
    return ctx.graph.add_op("EXPAND", [scalar], ctx.shape(node), name=ctx.name_of(node), dtype=dtype)


@handles("aten.gather.default", "aten.take_along_dim.default")
def _gather_elements(ctx, node, x, *args, **kwargs):
    if "take_along_dim" in str(node.target):
        index, dim = args[0], (args[1] if len(args) > 1 else kwargs.get("dim"))
        if dim is None:
            raise Unsupported(str(node.target), "without dim (of the flattened tensor)")
    else:
        dim, index = args[0], args[1]
    x_name, i_name = ctx.tensor(x), ctx.tensor(index)
    xs, ishape = ctx.graph.tensors[x_name].shape, ctx.graph.tensors[i_name].shape
    if len(xs) != len(ishape):
        raise Unsupported(str(node.target), f"of a rank-{len(xs)} tensor by a rank-{len(ishape)} index")
    if ctx.graph.tensors[i_name].dtype not in ("int32", "int64"):
        raise ConversionError(f"{node.target} at '{ctx.name_of(node)}': the index must be an integer tensor")
    dim %= len(xs)
    if ctx.shape(node) != tuple(ishape):   # take_along_dim broadcasts the index
        i_name = ctx.graph.add_op("EXPAND", [i_name], ctx.shape(node), name=ctx.name_of(node),
                                  dtype=ctx.graph.tensors[i_name].dtype)
        ctx.graph.tensors[i_name].dynamic = ctx.dynamic(node)
    return ctx.graph.add_op("GATHER_ELEMENTS", [x_name, i_name], ctx.shape(node), name=ctx.name_of(node),
                            dtype=ctx.graph.tensors[x_name].dtype, options=dict(axis=dim))


@handles("aten.index.Tensor")
def _index_tensor(ctx, node, x, indices):
    """x[i0, i1, ...] with integer index tensors. Indices that are aranges each laid along its own
    axis (transformers' mask code: mask[batch_arange[:, None, None, None], kv_arange[None, None, None, :]])
    only move x's axes: a RESHAPE (and an EXPAND where the indices broadcast further). One constant
    index on the first axis is a GATHER of rows."""
    x_name = ctx.tensor(x)
    t = ctx.graph.tensors[x_name]
    name = ctx.name_of(node)
    if any(i is None for i in indices) or not all(ctx.is_const(i) for i in indices):
        if len(indices) == 1 and indices[0] is not None and t.dtype == "float32":
            return ctx.graph.add_op("GATHER", [x_name, ctx.tensor(indices[0])], ctx.shape(node), name=name)
        raise Unsupported(str(node.target), "with computed or skipped (None) indices")
    datas = [ctx.graph.tensors[ctx.value(i)].data for i in indices]
    if any(d.dtype == np.bool_ for d in datas):
        raise Unsupported(str(node.target), "with a boolean mask (the result's size depends on the data)")
    bshape = np.broadcast_shapes(*(d.shape for d in datas))
    placed = []
    for k, d in enumerate(datas):
        d = d.reshape((1,) * (len(bshape) - d.ndim) + d.shape)
        axes = [a for a, n in enumerate(d.shape) if n != 1]
        n = t.shape[k]
        ok = (len(axes) == 1 and d.shape[axes[0]] == n and (d.reshape(-1) % n == np.arange(n)).all()) or \
             (not axes and n == 1)
        if not ok:
            if len(indices) == 1 and t.dtype == "float32":
                return ctx.graph.add_op("GATHER", [x_name, ctx.tensor(indices[0])], ctx.shape(node), name=name)
            raise Unsupported(str(node.target), "with indices that are not aranges along their own axes")
        placed.append(axes[0] if axes else None)
    used = [a for a in placed if a is not None]
    if used != sorted(set(used)):
        raise Unsupported(str(node.target), "with arange indices that reorder the axes")
    moved = [1] * len(bshape)
    for k, a in enumerate(placed):
        if a is not None:
            moved[a] = t.shape[k]
    moved = tuple(moved) + tuple(t.shape[len(indices):])
    dyn_x = ctx.dyn(x_name)
    moved_dyn = [None] * len(bshape)
    for k, a in enumerate(placed):
        if a is not None:
            moved_dyn[a] = dyn_x[k]
    moved_dyn = tuple(moved_dyn) + dyn_x[len(indices):]
    y = ctx.add("RESHAPE", [x_name], moved, moved_dyn, name=name, dtype=t.dtype)
    if moved == ctx.shape(node) and moved_dyn == ctx.node_dyn(node):
        return y
    return ctx.graph.add_op("EXPAND", [y], ctx.shape(node), name=name, dtype=t.dtype)


@handles("aten.index_put.default", "aten.index_put_.default")
def _index_put(ctx, node, x, indices, values, accumulate=False):
    """x[mask] = v with a boolean mask over x's leading axes (masked_fill), and x[arange(B), idx] = v
    for a runtime index idx [B] into a [B, T] tensor (Wav2Vec2 marks each row's last frame): WHERE
    over a comparison of the column numbers with idx (negative idx counts from the end, as torch's)."""
    op, name = str(node.target), ctx.name_of(node)
    x_name = ctx.tensor(x)
    t = ctx.graph.tensors[x_name]
    if not accumulate and len(indices) == 1 and indices[0] is not None and \
            ctx.graph.tensors[ctx.tensor(indices[0])].dtype == "bool":   # x[mask] = v: masked_fill
        mask = ctx.tensor(indices[0])
        m = ctx.graph.tensors[mask]
        if tuple(m.shape) != tuple(t.shape[:len(m.shape)]):
            raise Unsupported(op, f"with a boolean mask {list(m.shape)} that is not the leading part of "
                              f"{list(t.shape)}")
        trailing = len(t.shape) - len(m.shape)
        if trailing:
            mask = ctx.add("RESHAPE", [mask], tuple(m.shape) + (1,) * trailing, ctx.dyn(mask) + (None,) * trailing,
                           name=name, dtype="bool")
        return ctx.graph.add_op("WHERE", [mask, ctx.tensor(values, t.dtype), x_name], ctx.shape(node), name=name,
                                dtype=t.dtype)
    if accumulate or len(t.shape) != 2 or len(indices) != 2 or indices[0] is None or not ctx.is_const(indices[0]) \
            or indices[1] is None or ctx.is_const(indices[1]):
        raise Unsupported(op, "other than x[arange(rows), index] = value on a matrix with a computed index")
    rows = ctx.graph.tensors[ctx.value(indices[0])].data
    b, cols = t.shape
    if rows.shape != (b,) or not (rows % b == np.arange(b)).all():
        raise Unsupported(op, "other than x[arange(rows), index] = value on a matrix")
    idx = ctx.tensor(indices[1])
    idx_dtype = ctx.graph.tensors[idx].dtype
    shape, dyn = ctx.shape(node), ctx.node_dyn(node)
    column = ctx.add("RESHAPE", [idx], (b, 1), (dyn[0], None), name=name, dtype=idx_dtype)
    if dyn[1] is not None:   # a width that follows the run: column numbers from both ends, cut to it
        ones = ctx.graph.add_const(name + ":ones", np.ones((1, cols), _NUMPY[idx_dtype]))
        numbers = ctx.graph.add_const(name + ":columns", np.arange(cols, dtype=_NUMPY[idx_dtype]).reshape(1, cols))
        for const in (ones, numbers):
            ctx.graph.tensors[const].dynamic = (None, dyn[1])
        left = ctx.add("CUMSUM", [ones], (1, cols), (None, dyn[1]), name=name, dtype=idx_dtype,
                       options=dict(axis=1, reverse=True))
        from_end = ctx.add("SUB", [ctx.tensor(0, idx_dtype), left], (1, cols), (None, dyn[1]), name=name,
                           dtype=idx_dtype)
        hits = [ctx.add("COMPARE", [n, column], shape, dyn, name=name, dtype="bool", options=dict(kind="EQUAL"))
                for n in (numbers, from_end)]
        hit = ctx.add("LOGICAL", hits, shape, dyn, name=name, dtype="bool", options=dict(kind="OR"))
        return ctx.graph.add_op("WHERE", [hit, ctx.tensor(values, t.dtype), x_name], shape, name=name, dtype=t.dtype)
    wrapped = ctx.add("ADD", [column, ctx.tensor(cols, idx_dtype)], (b, 1), (dyn[0], None), name=name, dtype=idx_dtype)
    negative = ctx.add("COMPARE", [column, ctx.tensor(0, idx_dtype)], (b, 1), (dyn[0], None), name=name,
                       dtype="bool", options=dict(kind="LESS"))
    column = ctx.add("WHERE", [negative, wrapped, column], (b, 1), (dyn[0], None), name=name, dtype=idx_dtype)
    numbers = ctx.graph.add_const(name + ":columns", np.arange(cols, dtype=_NUMPY[idx_dtype]).reshape(1, cols))
    hit = ctx.add("COMPARE", [numbers, column], shape, dyn, name=name, dtype="bool", options=dict(kind="EQUAL"))
    return ctx.graph.add_op("WHERE", [hit, ctx.tensor(values, t.dtype), x_name], shape, name=name, dtype=t.dtype)


# --- attention, 1-D convolution, group norm, fused matrix products ---------------------------------------
def _attention(ctx, node, q, k, v, mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """softmax(q k^T * scale + mask) v as MATMUL, SOFTMAX (scale and additive mask as its options and
    input) and MATMUL. A boolean mask (True = attend) becomes additive: 0 or float32's lowest."""
    op, name = str(node.target), ctx.name_of(node)
    if dropout_p:
        raise ConversionError(f"{op} at '{name}' has dropout_p={dropout_p}: call module.eval()")
    qn, kn, vn = (ctx.tensor(t, "float32") for t in (q, k, v))
    qs, ks, vs = (ctx.graph.tensors[t].shape for t in (qn, kn, vn))
    dq, dk, dv = ctx.dyn(qn), ctx.dyn(kn), ctx.dyn(vn)
    if len(qs) >= 2 and len(ks) == len(vs) == len(qs) and ks[:-2] == vs[:-2] and ks[:-2] != qs[:-2] and \
            all(a == b or b == 1 for a, b in zip(qs[:-2], ks[:-2])):
        # Multi-query attention (keys and values of one head): MATMUL wants q's batch dimensions.
        kn, vn = (ctx.add("EXPAND", [t], qs[:-2] + shape[-2:], dq[:-2] + dyn[-2:], name=name)
                  for t, shape, dyn in ((kn, ks, dk), (vn, vs, dv)))
        (ks, dk), (vs, dv) = ((qs[:-2] + shape[-2:], dq[:-2] + dyn[-2:]) for shape, dyn in ((ks, dk), (vs, dv)))
    if len(qs) < 2 or qs[:-2] != ks[:-2] or ks[:-1] != vs[:-1]:
        raise Unsupported(op, f"q {list(qs)}, k {list(ks)}, v {list(vs)} (batch and head dimensions must match, "
                          "or be 1 in k and v)")
    rank = len(qs)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    kt = ctx.add("TRANSPOSE", [kn], ks[:-2] + (ks[-1], ks[-2]), dk[:-2] + (dk[-1], dk[-2]), name=name,
                 options=dict(perm=perm))
    scores_shape, scores_dyn = qs[:-1] + (ks[-2],), dq[:-1] + (dk[-2],)
    scores = ctx.add("MATMUL", [qn, kt], scores_shape, scores_dyn, name=name)
    additive = None
    if mask is not None:
        m = ctx.tensor(mask)
        broadcast = ctx.graph.producer(m)   # SOFTMAX broadcasts the mask itself
        if broadcast is not None and broadcast.type == "EXPAND" and \
                ctx.graph.tensors[broadcast.inputs[0]].shape[-1:] == (ks[-2],):
            m = broadcast.inputs[0]
        if ctx.graph.tensors[m].dtype == "bool":
            additive = ctx.additive_masks.get(m)
            if additive is None:
                zero, lowest = ctx.tensor(0.0), ctx.tensor(float(np.finfo(np.float32).min))
                additive = ctx.add("WHERE", [m, zero, lowest], ctx.graph.tensors[m].shape, ctx.dyn(m),
                                   name=name + ":mask")
                ctx.additive_masks[m] = additive
        else:
            additive = ctx.tensor(mask, "float32")
    if is_causal:
        if mask is not None:
            raise Unsupported(op, "is_causal with an attention mask")
        lq, lk = qs[-2], ks[-2]
        causal = np.where(np.tril(np.ones((lq, lk), bool)), 0.0, np.finfo(np.float32).min).astype(np.float32)
        c = ctx.graph.add_const(name + ":causal", causal)
        ctx.graph.tensors[c].dynamic = (dq[-2], dk[-2]) if dq[-2] or dk[-2] else ()
        additive = ctx.tensor(c)
    if additive is not None:
        mshape = ctx.graph.tensors[additive].shape
        if len(mshape) > rank or mshape[-1] != ks[-2] and mshape[-1] != 1:
            raise Unsupported(op, f"attention mask of shape {list(mshape)} for scores {list(scores_shape)}")
        if mshape[-1] != ks[-2]:   # SOFTMAX's mask spans the key axis
            target = mshape[:-1] + (ks[-2],)
            additive = ctx.add("EXPAND", [additive], target, ctx.dyn(additive)[:-1] + (dk[-2],), name=name)
    scale = 1.0 / float(np.sqrt(qs[-1])) if scale is None else float(scale)
    probs = ctx.add("SOFTMAX", [scores] + ([additive] if additive is not None else []), scores_shape, scores_dyn,
                    name=name, options=dict(axis=-1, scale=scale))
    return ctx.add("MATMUL", [probs, vn], qs[:-1] + (vs[-1],), dq[:-1] + (dv[-1],), name=name)


@handles("aten.scaled_dot_product_attention.default")
def _sdpa(ctx, node, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    return _attention(ctx, node, q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa)


@handles("aten._scaled_dot_product_flash_attention_for_cpu.default")
def _sdpa_flash_cpu(ctx, node, q, k, v, dropout_p=0.0, is_causal=False, attn_mask=None, scale=None):
    return (_attention(ctx, node, q, k, v, attn_mask, dropout_p, is_causal, scale), None)


@handles("aten._scaled_dot_product_flash_attention.default")
def _sdpa_flash(ctx, node, q, k, v, dropout_p=0.0, is_causal=False, return_debug_mask=False, scale=None):
    return (_attention(ctx, node, q, k, v, None, dropout_p, is_causal, scale),) + (None,) * 8


@handles("aten._scaled_dot_product_attention_math.default")
def _sdpa_math(ctx, node, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, dropout_mask=None, scale=None,
               enable_gqa=False):
    return (_attention(ctx, node, q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa), None)


@handles("aten._scaled_dot_product_efficient_attention.default")
def _sdpa_efficient(ctx, node, q, k, v, attn_bias, compute_log_sumexp, dropout_p=0.0, is_causal=False, scale=None):
    return (_attention(ctx, node, q, k, v, attn_bias, dropout_p, is_causal, scale), None, None, None)


def _one(v):
    return v[0] if isinstance(v, (list, tuple)) else v


@handles("aten.conv1d.default", "aten.conv1d.padding")
def _conv1d(ctx, node, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """conv1d as CONV2D over a height of 1, between RESHAPEs."""
    xs = ctx.shape(x)
    if len(xs) != 3:
        raise Unsupported(str(node.target), f"of a rank-{len(xs)} input (batched [N, C, L] converts)")
    weight = ctx.const(w)
    k, s, d = weight.shape[2], _one(stride), _one(dilation)
    if isinstance(padding, str):
        total = 0 if padding == "valid" else d * (k - 1)
        left, right = total // 2, total - total // 2
    else:
        left = right = _one(padding)
    name, x_name = ctx.name_of(node), ctx.tensor(x)
    dx = ctx.dyn(x_name)
    x4 = ctx.add("RESHAPE", [x_name], (xs[0], xs[1], 1, xs[2]), (dx[0], dx[1], None, dx[2]), name=name)
    w4 = ctx.graph.add_const(name + ".weight", weight.reshape(weight.shape[0], weight.shape[1], 1, k))
    out = ctx.shape(node)
    dy = ctx.node_dyn(node)
    y = ctx.add("CONV2D", [x4, w4] + ([ctx.tensor(b)] if b is not None else []), (out[0], out[1], 1, out[2]),
                (dy[0], dy[1], None, dy[2]), name=name,
                options=dict(stride=(1, s), dilation=(1, d), padding=(0, left, 0, right), groups=groups))
    return ctx.graph.add_op("RESHAPE", [y], out, name=name)


@handles("aten.group_norm.default")
def _group_norm(ctx, node, x, groups, weight=None, bias=None, eps=1e-5, *rest):
    inputs = [ctx.tensor(x, "float32")]
    channels = ctx.shape(x)[1]
    if weight is not None or bias is not None:
        inputs.append(ctx.tensor(weight) if weight is not None
                      else ctx.graph.add_const("gamma", np.ones(channels, np.float32)))
    if bias is not None:
        inputs.append(ctx.tensor(bias))
    return ctx.graph.add_op("GROUP_NORM", inputs, ctx.shape(node), name=ctx.name_of(node),
                            options=dict(groups=int(groups), epsilon=float(eps)))


@handles("aten.native_group_norm.default")
def _native_group_norm(ctx, node, x, weight, bias, n, c, hw, groups, eps):
    """Returns (out, mean, rstd); only the first is ever read in inference."""
    if weight is None and bias is not None:
        raise Unsupported(str(node.target), "a bias without a weight")
    inputs = [ctx.tensor(x, "float32")] + [ctx.tensor(t) for t in (weight, bias) if t is not None]
    y = ctx.graph.add_op("GROUP_NORM", inputs, tuple(_hint(d) for d in node.meta["val"][0].shape),
                         name=ctx.name_of(node), options=dict(groups=int(groups), epsilon=float(eps)))
    return (y, None, None)


def _scaled(ctx, y, alpha, shape, dyn, name):
    """alpha * y (addmm's and baddbmm's product term)."""
    return y if alpha == 1 else ctx.add("MUL", [y, ctx.tensor(float(alpha))], shape, dyn, name=name)


def _plus_scaled(ctx, y, bias, beta, shape, name):
    """y + beta * bias (addmm's and baddbmm's bias term)."""
    if beta == 0:
        return y
    b = ctx.tensor(bias, "float32")
    if beta != 1:
        b = ctx.add("MUL", [b, ctx.tensor(float(beta))], ctx.graph.tensors[b].shape, ctx.dyn(b), name=name)
    return ctx.graph.add_op("ADD", [y, b], shape, name=name)


@handles("aten.addmm.default")
def _addmm(ctx, node, bias, m1, m2, beta=1, alpha=1):
    """beta * bias + alpha * m1 @ m2: FULLY_CONNECTED when m2 is a constant (its transpose the weight),
    else MATMUL + ADD."""
    name, shape = ctx.name_of(node), ctx.shape(node)
    x = ctx.tensor(m1, "float32")
    if ctx.is_const(m2):
        w = ctx.graph.add_const(name + ".weight", np.ascontiguousarray(ctx.const(m2).T * np.float32(alpha)))
        b = ctx.const(bias).astype(np.float32) * np.float32(beta) if ctx.is_const(bias) else None
        if b is not None and b.size == shape[-1] and b.ndim <= 1:
            return ctx.graph.add_op("FULLY_CONNECTED", [x, w, ctx.graph.add_const(name + ".bias", b.reshape(-1))],
                                    shape, name=name)
        y = ctx.add("FULLY_CONNECTED", [x, w], shape, ctx.node_dyn(node), name=name)
    else:
        y = _scaled(ctx, ctx.add("MATMUL", [x, ctx.tensor(m2, "float32")], shape, ctx.node_dyn(node), name=name),
                    alpha, shape, ctx.node_dyn(node), name)
    return _plus_scaled(ctx, y, bias, beta, shape, name)


@handles("aten.baddbmm.default")
def _baddbmm(ctx, node, bias, b1, b2, beta=1, alpha=1):
    name, shape, dyn = ctx.name_of(node), ctx.shape(node), ctx.node_dyn(node)
    if ctx.shape(b1)[:-2] != ctx.shape(b2)[:-2]:
        raise Unsupported(str(node.target), "of batches of different sizes")
    y = ctx.add("MATMUL", [ctx.tensor(b1, "float32"), ctx.tensor(b2, "float32")], shape, dyn, name=name)
    return _plus_scaled(ctx, _scaled(ctx, y, alpha, shape, dyn, name), bias, beta, shape, name)


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
        return not isinstance(v, (tuple, _Shifted))
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
            if not isinstance(v, str):
                return v
            data = ctx.graph.tensors[v].data
            if data.size == 1 and ctx.shape(arg) == ():   # the IR holds a scalar as shape [1]
                data = data.reshape(())
            return torch.from_numpy(data.copy())
        return arg

    result = node.target(*materialize(node.args), **materialize(node.kwargs))
    if isinstance(result, (int, float, bool)) and not isinstance(result, torch.Tensor):
        # arithmetic on sizes (a sequence length plus an offset): a dynamic dimension's stays one
        sym = any(isinstance(ctx.values.get(a), _SymSize) for a in node.args if isinstance(a, torch.fx.Node))
        return _SymSize(result) if sym and isinstance(result, int) else result
    if not isinstance(result, torch.Tensor):
        raise ConversionError(f"node {node.name} at '{ctx.name_of(node)}' ({node.target}) folds to "
                              f"{type(result).__name__}, not a tensor")
    name = ctx.graph.add_const(node.name, result.detach().cpu().numpy().reshape(ctx.shape(node)))
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
        sizes = {dim: size for dim, (size, _) in dims.items()}

        def shapes(least):
            by_name = {dim: torch.export.Dim(dim, min=least.get(dim, 1), max=size) for dim, size in sizes.items()}
            named = {n: {axis: by_name[dim] for axis, dim in dynamic_axes.get(n, {}).items()} or None for n in names}
            return named if kwargs else tuple(named[n] for n in names)
        dynamic_shapes = shapes({})
    try:
        try:
            return torch.export.export(module, args, kwargs, dynamic_shapes=dynamic_shapes), dynamic_axes
        except Exception as exc:
            if "Constraints violated" not in str(exc):
                raise
        # Guards that exclude sizes only because torch's meta code checks strides or broadcasting
        # at small sizes (MobileBERT's `x[:, 1:]`: length - 1 != 1; its eager attention: length
        # != 1; Wav2Vec2's frames != 1) or needs a least size (a convolution's window): traced
        # again with those checks made for every size and the others kept as assertions in the
        # graph, which the converter drops, from the least sizes torch names. The converted ops do
        # not depend on the size (the tests run lengths and batches of 1); below a convolution's
        # window the runtime refuses the input.
        import re

        import torch.fx.experimental._config as fx_config

        least = {}
        with fx_config.patch(backed_size_oblivious=True):
            while True:
                try:
                    return torch.export.export(module, args, kwargs, dynamic_shapes=shapes(least),
                                               prefer_deferred_runtime_asserts_over_guards=True), dynamic_axes
                except Exception as exc:   # from the least sizes torch names, if it names new ones
                    named = {d: int(v) for d, v in re.findall(r"Dim\('(\w+)', min=(\d+)", str(exc))
                             if d in sizes and least.get(d, 1) < int(v) < sizes[d]}
                    if "Constraints violated" not in str(exc) or not named:
                        raise
                    least.update(named)
    except ConversionError:   # ours, from a wrapper's forward (hf.Encoder's input checks)
        raise
    except Exception as exc:  # export errors are long; keep their first lines
        raise ConversionError("torch.export could not trace the module: "
                              + " ".join(str(exc).strip().splitlines()[:3])) from exc


# Ops that read a tensor whose first axis the IR holds split in two ([batch, k] for k x batch),
# with the positions of their arguments that are axes (which must count from the end to mean
# the same there); the others would see one axis too many.
_SPLIT_SAFE = {
    **{op: () for op in ("aten.view.default", "aten.reshape.default", "aten._unsafe_view.default", "aten.bmm.default",
                         "aten.add_.Tensor", "aten.mul_.Tensor",
                         "aten.matmul.default", "aten.add.Tensor", "aten.sub.Tensor", "aten.mul.Tensor",
                         "aten.div.Tensor", "aten.add.Scalar", "aten.mul.Scalar", "aten.div.Scalar",
                         "aten.masked_fill.Scalar", "aten.where.self", "aten.clamp.default", "aten.expand.default",
                         "aten.contiguous.default", "aten.clone.default", "aten.alias.default", "aten.detach.default",
                         "aten.dropout.default", "aten.sym_size.int")},
    "aten.transpose.int": (1, 2), "aten.gather.default": (1,), "aten.softmax.int": (1,), "aten._softmax.default": (1,),
}


def _check_split(ctx, node, name):
    """Unsupported unless every input held split is read by an op that sees the same data in it."""
    import torch.fx

    if not any(isinstance(a, torch.fx.Node) and ctx.split(a) for a in node.args):
        return
    axes = _SPLIT_SAFE.get(name)
    if axes is None or any(i < len(node.args) and isinstance(node.args[i], int) and node.args[i] >= 0 for i in axes):
        raise Unsupported(name, "on a tensor whose first axis merges a dynamic dimension with another (k x batch)")


def _convert_node(ctx, node, missing):
    """ctx.values[node] = the node's IR value(s): folded, converted by its handler, or MISSING (recorded)."""
    graph = ctx.graph
    name = _target_name(node.target)
    if _reads_missing(ctx, list(node.args) + list(node.kwargs.values())):
        ctx.values[node] = Missing.MISSING   # after an op that could not convert: not reported again
        return
    if name == "getitem":
        ctx.values[node] = ctx.values[node.args[0]][node.args[1]]
        return
    if name == "aten.sym_size.int":
        ctx.values[node] = _SymSize(_hint(node.meta["val"]))
        return
    if name in _IGNORED:
        ctx.values[node] = None
        return
    where = f"module '{ctx.name_of(node)}', node {node.name}"
    handler = _HANDLERS.get(name)
    try:
        if _is_constant(ctx, list(node.args) + list(node.kwargs.values())):
            ctx.values[node] = _fold(ctx, node)
            return
        _check_split(ctx, node, name)
        if handler is None:
            missing.add(name, "", where)
            ctx.values[node] = Missing.MISSING
            return
        result = handler(ctx, node, *node.args, **node.kwargs)
        if isinstance(result, str) and graph.tensors[result].data is None:
            graph.tensors[result].dynamic = ctx.dynamic(node)
        elif isinstance(result, tuple):   # a split's pieces
            for r, val in zip(result, node.meta["val"]):
                if isinstance(r, str) and graph.tensors[r].data is None:
                    graph.tensors[r].dynamic = ctx.dynamic(node, val)
        ctx.values[node] = result
    except Unsupported as e:
        missing.add(e.op, e.reason, where)
        ctx.values[node] = Missing.MISSING


def _mutates(node):
    """Whether an fx node is an op that writes into one of its inputs."""
    schema = getattr(node.target, "_schema", None)
    return node.op == "call_function" and schema is not None and schema.is_mutable


def from_torch_graph(module, example_input, dynamic_axes=None):
    """torch.export's graph of `module` as sparselite IR (before the passes)."""
    import torch

    module.eval()   # not `module = module.eval()`: some train() overrides return None (timm LeViT attention)
    ep, dynamic_axes = _export(module, example_input, dynamic_axes)
    if any(_mutates(node) and str(node.target) not in _HANDLERS for node in ep.graph.nodes):
        # In-place writes into views (Swin's mask[h0:h1, w0:w1] = i): functionalized, they become
        # slice_scatter of values, which fold where the values are constants. Where torch cannot,
        # the missing-op report names the in-place op.
        try:
            ep = ep.run_decompositions({})
        except Exception:  # noqa: BLE001 - torch's own failure; the graph as exported stays
            pass
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
            dtypes = {torch.float32: "float32", torch.int32: "int32", torch.int64: "int64", torch.bool: "bool"}
            if val.dtype not in dtypes:
                raise ConversionError(f"input '{node.name}' has dtype {val.dtype}: inputs must be float32, "
                                      "int32/int64 (token ids) or bool (masks)")
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
            try:
                _convert_node(ctx, node, missing)
            except Unsupported:
                raise
            except ConversionError as e:   # name the op and where it is, as the missing-op report does
                raise ConversionError(f"{_target_name(node.target)} at module '{ctx.name_of(node)}', node "
                                      f"{node.name}: {e}") from e
        elif node.op == "output":
            missing.check()
            outs = node.args[0]
            for i, o in enumerate(outs if isinstance(outs, (tuple, list)) else [outs]):
                graph.outputs.append(ctx.values[o])
    return graph
