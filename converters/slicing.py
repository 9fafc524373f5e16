"""Data-movement rewrites the frontends share: strided slices, splits and rolls as SLICE (and
CONCAT) ops. A slice that reads its whole input is no op at all, and one of a constant is folded."""
import numpy as np

from sparselite.errors import ConversionError


def axis_range(dim, start, stop, step, what):
    """(begin, step, count) of Python's start:stop:step over an axis of `dim` elements: negative
    indices count from the end and out-of-range ones clamp, as numpy, torch and ONNX's Slice do
    (INT64 max is "to the end"; None is the default end)."""
    if step == 0:
        raise ConversionError(f"{what}: a slice step is 0")
    r = range(dim)[slice(start, stop, step)]
    return r.start, r.step, len(r)


def _index(begin, step, counts):
    """numpy's index for per-axis begin, step and count (count >= 1)."""
    out = []
    for b, s, c in zip(begin, step, counts):
        stop = b + (c - 1) * s + (1 if s > 0 else -1)
        out.append(slice(b, stop if stop >= 0 else None, s))
    return tuple(out)


def add_slice(graph, x, begin, step, counts, name, out_name=None):
    """y[i...] = x[begin + i * step ...] with counts[d] elements along axis d: x itself when that
    is all of x, a constant when x is one, else a SLICE op. Returns the result's name."""
    t = graph.tensors[x]
    counts = tuple(int(c) for c in counts)
    if len(begin) != len(t.shape) or len(step) != len(t.shape) or len(counts) != len(t.shape):
        raise ConversionError(f"internal: slice of '{x}' (rank {len(t.shape)}) given begin {list(begin)}, step "
                              f"{list(step)}, counts {list(counts)}")
    if min(counts, default=1) < 1:
        raise ConversionError(f"'{name}' slices '{x}' of shape {list(t.shape)} to shape {list(counts)}: empty "
                              "tensors are not supported (every dimension must be at least 1)")
    begin, step = [int(b) for b in begin], [int(s) for s in step]
    if counts == tuple(t.shape) and all(b == 0 and s == 1 for b, s in zip(begin, step)):
        return x
    if t.data is not None:
        return graph.add_const(out_name or name, np.ascontiguousarray(t.data[_index(begin, step, counts)]))
    return graph.add_op("SLICE", [x], counts, options=dict(begin=begin, step=step), name=name,
                        out_name=out_name, dtype=t.dtype)


def add_axis_slice(graph, x, axis, begin, step, count, name, out_name=None):
    """add_slice along one axis, the others whole."""
    shape = graph.tensors[x].shape
    b, s, c = [0] * len(shape), [1] * len(shape), list(shape)
    b[axis], s[axis], c[axis] = begin, step, count
    return add_slice(graph, x, b, s, c, name, out_name)


def add_split(graph, x, axis, sizes, name):
    """Consecutive pieces of x along `axis` with these sizes (summing to at most the axis)."""
    dim = graph.tensors[x].shape[axis]
    if sum(sizes) > dim or min(sizes, default=1) < 0:
        raise ConversionError(f"'{name}': split sizes {list(sizes)} do not fit an axis of {dim}")
    pieces, start = [], 0
    for k, size in enumerate(sizes):
        pieces.append(add_axis_slice(graph, x, axis, start, 1, size, f"{name}:{k}"))
        start += size
    return pieces


def add_roll(graph, x, axis, shift, name):
    """torch.roll / np.roll along one axis: the last `shift` elements move to the front."""
    dim = graph.tensors[x].shape[axis]
    shift %= dim
    if shift == 0:
        return x
    tail, head = add_split(graph, x, axis, [dim - shift, shift], name)
    return graph.add_op("CONCAT", [head, tail], graph.tensors[x].shape, options=dict(axis=axis), name=name,
                        dtype=graph.tensors[x].dtype)
