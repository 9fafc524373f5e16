"""Constant folding for the ONNX frontend: a whitelist of cheap ops, evaluated with numpy.

A node whose inputs are all constants is folded only when its op is in FOLDS: shape arithmetic and
what BERT / MobileNet / Swin exports need (ConstantOfShape, Equal, Where, Expand, GatherElements,
Gather, Mul for the attention mask; ScatterND for Swin's). Each fold computes the size of its
result from the input shapes and attributes and reserves it in the conversion's ComputeBudget
*before* allocating, so no fold can allocate more than limits.MAX_COMPUTED_BYTES, and all of them
together no more than limits.MAX_COMPUTED_TOTAL_BYTES. No fold loops over data-dependent counts except Range, whose
count is reserved first. Control flow (CONTROL_FLOW) is never evaluated.
"""
import inspect
import math

import numpy as np

from sparselite.errors import ConversionError

from .limits import MAX_RANK, num_elements

CONTROL_FLOW = ("Loop", "If", "Scan", "SequenceMap")

# ONNX TensorProto element types a fold may produce (Cast's `to`, ConstantOfShape's value).
_NUMERIC = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
            9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}


class _Fold:
    """The context of one fold: the node (for messages), its attributes and the budget."""

    def __init__(self, node, attrs, budget):
        self.node, self.attrs, self.budget = node, attrs, budget

    def fail(self, message):
        raise ConversionError(f"cannot fold {self.node.op_type} '{self.node.name}': {message}")

    def reserve(self, shape, dtype):
        """Checks a result's shape against the limits before it is allocated."""
        shape = tuple(int(d) for d in shape)
        if len(shape) > MAX_RANK:
            self.fail(f"its result would have rank {len(shape)} (at most {MAX_RANK})")
        if any(d < 0 for d in shape):
            self.fail(f"its result would have shape {list(shape)}")
        self.budget.reserve(num_elements(shape), np.dtype(dtype).itemsize,
                            f"folding {self.node.op_type} '{self.node.name}' (shape {list(shape)})")
        return shape

    def ints(self, value, what):
        """A 1-D integer constant (an axes, shape, starts... input) as a list of Python ints."""
        value = np.asarray(value)
        if value.dtype.kind not in "iu" or value.ndim > 1:
            self.fail(f"{what} must be a 1-D integer tensor, got {value.dtype} of shape {list(value.shape)}")
        if value.size > 64:
            self.fail(f"{what} has {value.size} values")
        return [int(v) for v in value.reshape(-1)]

    def scalar(self, value, what):
        value = np.asarray(value)
        if value.size != 1:
            self.fail(f"{what} must be a scalar, got shape {list(value.shape)}")
        return value.reshape(-1)[0]

    def axis(self, axis, rank, what="axis"):
        if not -rank <= axis < max(rank, 1):
            self.fail(f"{what} {axis} is out of range for rank {rank}")
        return axis % rank if rank else 0

    def broadcast(self, *shapes):
        try:
            return np.broadcast_shapes(*shapes)
        except ValueError:
            self.fail(f"shapes {[list(s) for s in shapes]} do not broadcast")


def _same(f, x):
    return [x]


def _cast(f, x):
    to = f.attrs.get("to")
    if to not in _NUMERIC:
        f.fail(f"Cast to ONNX type {to} is not folded")
    f.reserve(x.shape, _NUMERIC[to])
    with np.errstate(all="ignore"):
        return [x.astype(_NUMERIC[to])]


def _shape(f, x):
    shape = np.array(x.shape, dtype=np.int64)
    return [shape[f.attrs.get("start", 0):f.attrs.get("end", len(shape))]]


def _size(f, x):
    return [np.array(x.size, dtype=np.int64)]


def _reshape(f, x, shape):
    target = f.ints(shape, "shape")
    allowzero = f.attrs.get("allowzero", 0)
    out = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= x.ndim:
                f.fail(f"shape {target} copies dimension {i} of a rank-{x.ndim} input")
            d = x.shape[i]
        elif d < -1:
            f.fail(f"shape {target} has a negative dimension")
        out.append(d)
    if out.count(-1) > 1:
        f.fail(f"shape {target} has more than one -1")
    if -1 in out:
        known = num_elements(d for d in out if d != -1)
        if known == 0 or x.size % known:
            f.fail(f"cannot reshape {list(x.shape)} to {target}")
        out[out.index(-1)] = x.size // known
    if num_elements(out) != x.size:
        f.fail(f"cannot reshape {list(x.shape)} to {target}")
    return [x.reshape(f.reserve(out, x.dtype))]


def _flatten(f, x):
    axis = f.attrs.get("axis", 1)
    if not -x.ndim <= axis <= x.ndim:
        f.fail(f"axis {axis} is out of range for rank {x.ndim}")
    axis %= x.ndim + 1
    return [x.reshape(f.reserve((num_elements(x.shape[:axis]), num_elements(x.shape[axis:])), x.dtype))]


def _squeeze(f, x, axes=None):
    if axes is None:
        return [x.reshape(f.reserve([d for d in x.shape if d != 1], x.dtype))]
    axes = sorted({f.axis(a, x.ndim, "axes value") for a in f.ints(axes, "axes")})
    if any(x.shape[a] != 1 for a in axes):
        f.fail(f"cannot squeeze axes {axes} of shape {list(x.shape)}")
    return [x.reshape(f.reserve([d for i, d in enumerate(x.shape) if i not in axes], x.dtype))]


def _unsqueeze(f, x, axes):
    given = f.ints(axes, "axes")
    rank = x.ndim + len(given)
    axes = {f.axis(a, rank, "axes value") for a in given}
    if len(axes) != len(given):
        f.fail(f"axes {given} repeat")
    dims = iter(x.shape)
    return [x.reshape(f.reserve([1 if i in axes else next(dims) for i in range(rank)], x.dtype))]


def _concat(f, *xs):
    if not xs or len({x.ndim for x in xs}) != 1 or xs[0].ndim == 0:
        f.fail(f"inputs of shapes {[list(x.shape) for x in xs]} cannot be concatenated")
    axis = f.axis(f.attrs.get("axis", 0), xs[0].ndim)
    shape = list(xs[0].shape)
    for x in xs[1:]:
        if [d for i, d in enumerate(x.shape) if i != axis] != [d for i, d in enumerate(shape) if i != axis]:
            f.fail(f"inputs of shapes {[list(x.shape) for x in xs]} cannot be concatenated on axis {axis}")
    shape[axis] = sum(x.shape[axis] for x in xs)
    f.reserve(shape, np.result_type(*xs))
    return [np.concatenate(xs, axis=axis)]


def _slice(f, x, starts, ends, axes=None, steps=None):
    starts, ends = f.ints(starts, "starts"), f.ints(ends, "ends")
    axes = list(range(len(starts))) if axes is None else f.ints(axes, "axes")
    steps = [1] * len(starts) if steps is None else f.ints(steps, "steps")
    if not len(starts) == len(ends) == len(axes) == len(steps):
        f.fail("starts, ends, axes and steps differ in length")
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st == 0:
            f.fail("a step is 0")
        index[f.axis(a, x.ndim, "axes value")] = slice(s, e, st)
    view = x[tuple(index)]
    f.reserve(view.shape, x.dtype)
    return [np.ascontiguousarray(view)]


def _indices(f, indices, dim):
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        f.fail(f"indices must be integers, got {indices.dtype}")
    if indices.size and (int(indices.min()) < -dim or int(indices.max()) >= dim):
        f.fail(f"an index is out of range for a dimension of size {dim}")
    return indices


def _gather(f, x, indices):
    axis = f.axis(f.attrs.get("axis", 0), x.ndim)
    indices = _indices(f, indices, x.shape[axis])
    f.reserve(x.shape[:axis] + indices.shape + x.shape[axis + 1:], x.dtype)
    return [np.take(x, indices, axis=axis)]


def _gather_elements(f, x, indices):
    # numpy's take_along_axis broadcasts the other axes (onnx's reference evaluator does not).
    axis = f.axis(f.attrs.get("axis", 0), x.ndim)
    indices = _indices(f, indices, x.shape[axis])
    if indices.ndim != x.ndim:
        f.fail(f"indices of rank {indices.ndim} for data of rank {x.ndim}")
    data_shape = x.shape[:axis] + (indices.shape[axis],) + x.shape[axis + 1:]
    f.reserve(f.broadcast(data_shape, indices.shape), x.dtype)
    return [np.take_along_axis(x, indices, axis=axis)]


def _scatter_nd(f, data, indices, updates):
    """ScatterND without a reduction: data with the slices at `indices` replaced by `updates` (slice
    assignments into a mask of constant shape: Swin's shifted windows)."""
    reduction = f.attrs.get("reduction", "none")
    reduction = reduction.decode("utf-8", "replace") if isinstance(reduction, bytes) else str(reduction)
    if reduction != "none":
        f.fail(f"reduction '{reduction}' is not folded (only 'none')")
    if indices.dtype.kind not in "iu" or indices.ndim < 1 or not 1 <= indices.shape[-1] <= data.ndim:
        f.fail(f"indices of type {indices.dtype} and shape {list(indices.shape)} for data of rank {data.ndim}")
    k = indices.shape[-1]
    expected = indices.shape[:-1] + data.shape[k:]
    if updates.shape != expected:
        f.fail(f"updates have shape {list(updates.shape)}, expected {list(expected)}")
    for axis in range(k):
        _indices(f, indices[..., axis], data.shape[axis])
    f.reserve(data.shape, data.dtype)
    out = data.copy()
    out[tuple(np.moveaxis(indices, -1, 0))] = updates.astype(data.dtype, copy=False)
    return [out]


def _transpose(f, x):
    perm = f.attrs.get("perm")
    perm = list(range(x.ndim))[::-1] if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(x.ndim)):
        f.fail(f"perm {perm} is not a permutation of {x.ndim} axes")
    f.reserve(x.shape, x.dtype)
    return [np.ascontiguousarray(x.transpose(perm))]


def _elementwise(fn, dtype=None, arity=(2, 2)):
    """A broadcasting op over its inputs; the result takes the first input's dtype unless told."""
    def fold(f, *xs):
        if not xs or any(x.dtype.kind not in "biuf" for x in xs):
            f.fail(f"inputs of types {[str(x.dtype) for x in xs]} are not numeric")
        f.reserve(f.broadcast(*(x.shape for x in xs)), dtype or xs[0].dtype)
        with np.errstate(all="ignore"):
            return [np.asarray(fn(f, *xs)).astype(dtype or xs[0].dtype, copy=False)]
    fold.arity = arity
    return fold


def _div(f, a, b):
    if a.dtype.kind in "iu":   # ONNX truncates toward zero, like C
        if (b == 0).any():
            f.fail("integer division by zero")
        q = np.abs(a) // np.abs(b)
        return np.where((a < 0) != (b < 0), -q, q)
    return a / b


def _pow(f, a, b):
    if a.dtype.kind in "iu" and b.dtype.kind in "iu" and (b < 0).any():
        f.fail("integer power with a negative exponent")
    return np.power(a, b)


def _mod(f, a, b):
    if a.dtype.kind in "iu" and (b == 0).any():
        f.fail("integer modulo by zero")
    return np.fmod(a, b) if f.attrs.get("fmod", 0) else np.mod(a, b)


def _constant_of_shape(f, shape):
    dims = f.ints(shape, "shape")
    value = f.attrs.get("value")
    if value is None:
        value = np.zeros(1, np.float32)
    else:
        from onnx import numpy_helper

        value = numpy_helper.to_array(value)
    if value.size != 1 or value.dtype.kind not in "biuf":
        f.fail("value must be one number")
    f.reserve(dims, value.dtype)
    return [np.full(dims, value.reshape(-1)[0], dtype=value.dtype)]


def _expand(f, x, shape):
    dims = f.ints(shape, "shape")
    if any(d < 0 for d in dims):
        f.fail(f"shape {dims} has a negative dimension")
    out = f.reserve(f.broadcast(x.shape, tuple(dims)), x.dtype)
    return [np.array(np.broadcast_to(x, out))]


def _range(f, start, limit, delta):
    start, limit, delta = (f.scalar(v, what) for v, what in ((start, "start"), (limit, "limit"), (delta, "delta")))
    dtype = np.asarray(start).dtype
    if dtype.kind not in "iuf":
        f.fail(f"type {dtype} is not numeric")
    if dtype.kind in "iu":
        start, limit, delta = int(start), int(limit), int(delta)
        if delta == 0:
            f.fail("delta is 0")
        count = max(-((start - limit) // delta), 0)   # ceil((limit - start) / delta)
    else:
        start, limit, delta = float(start), float(limit), float(delta)
        span = (limit - start) / delta if delta else math.nan
        if not math.isfinite(span):
            f.fail(f"start {start}, limit {limit}, delta {delta} give no finite count")
        count = max(math.ceil(span), 0)
    f.reserve((count,), dtype)
    with np.errstate(all="ignore"):
        return [(np.arange(count, dtype=dtype) * np.asarray(delta, dtype) + np.asarray(start, dtype)).astype(dtype)]


def _tile(f, x, repeats):
    reps = f.ints(repeats, "repeats")
    if len(reps) != x.ndim or any(r < 0 for r in reps):
        f.fail(f"repeats {reps} for an input of rank {x.ndim}")
    shape = f.reserve([d * r for d, r in zip(x.shape, reps)], x.dtype)
    if num_elements(shape) == 0:   # np.tile repeats axis by axis: a later 0 would come after a huge copy
        return [np.zeros(shape, x.dtype)]
    return [np.tile(x, reps)]


def _where(f, cond, a, b):
    f.reserve(f.broadcast(cond.shape, a.shape, b.shape), np.result_type(a, b))
    return [np.where(cond.astype(bool), a, b)]


def _clip(f, x, lo=None, hi=None):
    """Clip of opset 11+: bounds as optional inputs, either absent (Swin V2 gives only max)."""
    for bound, what in ((lo, "min"), (hi, "max")):
        if bound is not None and bound.size != 1:
            f.fail(f"{what} must be one number")
    f.reserve(x.shape, x.dtype)
    if lo is not None:
        x = np.maximum(x, lo.reshape(()).astype(x.dtype))
    if hi is not None:
        x = np.minimum(x, hi.reshape(()).astype(x.dtype))
    return [x]


_clip.arity = (1, 3)


def _logical(fn, arity=(2, 2)):
    return _elementwise(lambda f, *xs: fn(*(x.astype(bool) for x in xs)), np.bool_, arity)


def _unary(fn):
    return _elementwise(lambda f, x: fn(x), arity=(1, 1))


def _reduce(fn):
    """ReduceX over the axes of the attribute or (ReduceSum from opset 13, the others from 18) the
    second input; none reduce every axis unless noop_with_empty_axes. Sums accumulate in float64."""
    def fold(f, x, axes=None):
        given = f.attrs.get("axes", []) if axes is None else f.ints(axes, "axes")
        if not given and f.attrs.get("noop_with_empty_axes", 0):
            return [x]
        axes = tuple(sorted({f.axis(int(a), x.ndim, "axes value") for a in given})) if given else tuple(range(x.ndim))
        keep = bool(f.attrs.get("keepdims", 1))
        f.reserve([1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes], x.dtype)
        if x.size == 0:
            f.fail("it reduces an empty tensor")
        wide = x.astype(np.float64) if x.dtype.kind == "f" else x
        with np.errstate(all="ignore"):
            return [np.asarray(fn(wide, axis=axes, keepdims=keep)).astype(x.dtype)]
    fold.arity = (1, 2)
    return fold


_VARIADIC = (1, 1 << 16)


FOLDS = {
    "Identity": _same, "Cast": _cast, "Shape": _shape, "Size": _size,
    "Reshape": _reshape, "Flatten": _flatten, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Concat": _concat, "Slice": _slice, "Gather": _gather, "GatherElements": _gather_elements,
    "Transpose": _transpose, "ScatterND": _scatter_nd, "ConstantOfShape": _constant_of_shape, "Expand": _expand,
    "Range": _range, "Tile": _tile, "Where": _where,
    "Add": _elementwise(lambda f, a, b: a + b), "Sub": _elementwise(lambda f, a, b: a - b),
    "Mul": _elementwise(lambda f, a, b: a * b), "Div": _elementwise(_div), "Pow": _elementwise(_pow),
    "Mod": _elementwise(_mod),
    "Min": _elementwise(lambda f, *xs: np.minimum.reduce(np.broadcast_arrays(*xs)), arity=_VARIADIC),
    "Max": _elementwise(lambda f, *xs: np.maximum.reduce(np.broadcast_arrays(*xs)), arity=_VARIADIC),
    "Neg": _unary(np.negative), "Abs": _unary(np.abs), "Sqrt": _unary(np.sqrt), "Reciprocal": _unary(np.reciprocal),
    "Floor": _unary(np.floor), "Ceil": _unary(np.ceil), "Exp": _unary(np.exp), "Log": _unary(np.log),
    "Sign": _unary(np.sign), "IsNaN": _elementwise(lambda f, x: np.isnan(x), np.bool_, (1, 1)),
    "ReduceSum": _reduce(np.sum), "ReduceMean": _reduce(np.mean), "ReduceMax": _reduce(np.max),
    "ReduceMin": _reduce(np.min), "ReduceL2": _reduce(lambda x, **kw: np.sqrt(np.sum(x * x, **kw))),
    "Clip": _clip,
    "Equal": _elementwise(lambda f, a, b: a == b, np.bool_), "Less": _elementwise(lambda f, a, b: a < b, np.bool_),
    "LessOrEqual": _elementwise(lambda f, a, b: a <= b, np.bool_),
    "Greater": _elementwise(lambda f, a, b: a > b, np.bool_),
    "GreaterOrEqual": _elementwise(lambda f, a, b: a >= b, np.bool_),
    "Not": _logical(np.logical_not, (1, 1)), "And": _logical(np.logical_and), "Or": _logical(np.logical_or),
    "Xor": _logical(np.logical_xor),
}


def _arity(fn):
    """(fewest, most) inputs a fold function takes, from its signature."""
    if hasattr(fn, "arity"):
        return fn.arity
    params = list(inspect.signature(fn).parameters.values())[1:]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 1, 1 << 16
    return sum(1 for p in params if p.default is p.empty), len(params)


_ARITY = {op: _arity(fn) for op, fn in FOLDS.items()}
_OPTIONAL_MIDDLE = {"Clip"}   # ops whose fold takes an absent input before a given one


def fold(node, inputs, attrs, budget):
    """The outputs of a whitelisted node over constant inputs (numpy arrays; None for an absent
    optional input). Raises ConversionError for a node it must not or cannot fold."""
    fn = FOLDS.get(node.op_type)
    if fn is None:
        raise ConversionError(f"internal: {node.op_type} is not foldable")
    f = _Fold(node, attrs, budget)
    while inputs and inputs[-1] is None:
        inputs = inputs[:-1]
    fewest, most = _ARITY[node.op_type]
    if not fewest <= len(inputs) <= most:
        f.fail(f"it has {len(inputs)} inputs; {node.op_type} takes {fewest}..{most}")
    if any(x is None for x in inputs) and node.op_type not in _OPTIONAL_MIDDLE:
        f.fail(f"input {[x is None for x in inputs].index(True)} is absent, which {node.op_type} requires")
    for x in inputs:
        if x is not None and x.dtype.kind not in "biuf":
            f.fail(f"an input has type {x.dtype}: only numbers are folded")
    return fn(f, *inputs)
