"""Dynamic ONNX dimensions, found by converting at two sizes.

Exports name the dimensions their inputs may vary in (dim_param "batch", "seq"), and what follows
from them flows through shape arithmetic (Shape, Gather, Concat, Range, Expand) that the frontend
folds into constants. `from_onnx(..., dims={"batch": 8, "seq": 128})` converts the model twice: with
every named dimension at its maximum, and at a second size (about half). The two graphs must be the
same but for shapes and constants. An axis that has the maximum in the first and the second size
in the second follows that dimension, which the runtime sets from the input's size; any other
difference (an axis of a dimension's product or sum, an option such as a slice's start) is refused,
naming the op. A constant must be the leading part of its larger self along one axis after axes of
size 1 (position ids, a class token repeated over the batch), which the runtime keeps at smaller
sizes; one that is not (relative positions [seq, seq], a mask over batch and sequence) is computed
at run time instead: its node, and the nodes before it whose values vary likewise, convert as ops,
and both sizes convert again.
"""
import contextlib

import numpy as np

from sparselite.errors import ConversionError

from .ir import computed_dim

MAX_ROUNDS = 8   # conversions at both sizes, each computing more values at run time

# Inputs the frontend reads as constants while converting (shapes, axes, bounds), never at run time.
_CONVERSION_INPUTS = {"Reshape": (1,), "Expand": (1,), "ConstantOfShape": (0,), "Tile": (1,), "Slice": (1, 2, 3, 4),
                      "Squeeze": (1,), "Unsqueeze": (1,), "CumSum": (1,), "Pad": (1, 2, 3), "Resize": (1, 2, 3),
                      "Split": (1,), "ReduceSum": (1,), "ReduceMean": (1,), "ReduceMax": (1,), "ReduceMin": (1,),
                      "Pow": (1,)}


def named_dims(model):
    """{dimension name: [(input, axis)]} of the model's inputs."""
    initializers = {t.name for t in model.graph.initializer}
    named = {}
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        for axis, d in enumerate(inp.type.tensor_type.shape.dim):
            if d.HasField("dim_param"):
                named.setdefault(d.dim_param, []).append((inp.name, axis))
            elif not d.HasField("dim_value"):
                raise ConversionError(f"input '{inp.name}' has no size nor name for axis {axis}: export it with a "
                                      "name (dynamic_axes / dynamic_shapes) or a fixed size")
    return named


@contextlib.contextmanager
def _sized(model, sizes):
    """The model with its named dimensions set to these sizes, and other names (an exporter's
    "4*batch") made unknown for shape inference to fill in; as it was again afterwards. In place:
    a copy of a large model's weights per size would cost more than the conversion."""
    changed = []
    for vi in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param"):
                changed.append((d, d.dim_param))
                if d.dim_param in sizes:
                    d.dim_value = sizes[d.dim_param]
                else:
                    d.ClearField("dim_param")
    try:
        yield model
    finally:
        for d, name in changed:
            d.dim_param = name


def _second_sizes(maxima):
    """Per dynamic dimension a second size, about half its maximum (3 for 2), no two dimensions
    with the same pair of sizes, so that each axis names its dimension."""
    taken, second = set(), {}
    for name, top in maxima.items():
        size = max(2, (top + 1) // 2) if top > 2 else 3
        while size == top or (top, size) in taken:
            size += 1
        taken.add((top, size))
        second[name] = size
    return second


def convert(model, dims, fixed_dims, progress, optimize):
    """(graph, output names) of a model whose inputs name dimensions: `dims` gives the maximum of
    those that vary (1 fixes one), `fixed_dims` the size of those that do not. `optimize` (the
    passes) has run on the graph: both sizes' graphs are compared as the writer will see them."""
    from .onnx_frontend import convert_once

    named = named_dims(model)
    for what, given in (("dims", dims), ("fixed_dims", fixed_dims)):
        unknown = sorted(set(given) - set(named))
        if unknown:
            raise ConversionError(f"{what} names {unknown}, which no input of the model has; its named dimensions "
                                  f"are {sorted(named)}")
        for name, size in given.items():
            if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
                raise ConversionError(f"{what}['{name}'] = {size!r}: a size is an integer >= 1")
    both = sorted(set(dims) & set(fixed_dims))
    if both:
        raise ConversionError(f"{both} are in both dims and fixed_dims")
    if set(named) - set(dims) - set(fixed_dims):
        where = ", ".join(f"'{d}' ({', '.join(f'{i} axis {a}' for i, a in named[d])})"
                          for d in named if d not in dims and d not in fixed_dims)
        raise ConversionError(f"the model's inputs have named dimensions {where}: give each one's maximum, "
                              "from_onnx(..., dims={name: maximum}), or its size, fixed_dims={name: size} "
                              "(sparselite convert --dims name=max,... --fixed-dims name=size,...)")
    sizes = {name: int(size) for name, size in {**dims, **fixed_dims}.items()}
    maxima = {name: int(size) for name, size in dims.items() if size > 1}
    if not maxima:
        with _sized(model, sizes):
            graph, outputs, _ = convert_once(model, progress)
        optimize(graph)
        return graph, outputs
    second = _second_sizes(maxima)
    producers = {o: node for node in model.graph.node for o in node.output}
    initializers = {t.name for t in model.graph.initializer}
    computed = set()
    for _ in range(MAX_ROUNDS):
        with _sized(model, sizes):
            ga, outputs, ca = convert_once(model, progress, computed)
        try:
            with _sized(model, {**sizes, **second}):
                gb, _, cb = convert_once(model, None, computed)
        except ConversionError as e:
            raise ConversionError(f"converting at {', '.join(f'{d}={s}' for d, s in second.items())}, the second "
                                  f"sizes that show what follows the dimensions: {e}") from e
        for conv in (ca, cb):   # the weights' arrays: the graphs hold what they need of them
            for name in initializers:
                conv.consts.pop(name, None)
        optimize(ga)
        optimize(gb)
        compare = _Compare(ga, gb, maxima, second, ca, cb, producers, initializers)
        more = compare.run()
        if not more:
            ga.dims = {**maxima, **{d: compare.sizes_of[d][0] for d in compare.derived}}
            ga.derived_dims = dict(compare.derived)
            if compare.derived:   # again, now that widths vary: convolutions along them become taps
                optimize(ga)
            return ga, outputs
        if more <= computed:
            raise ConversionError(f"internal: values {sorted(more)[:4]} vary with the dynamic dimensions after being "
                                  "computed at run time")
        computed |= more
    raise ConversionError(f"more values vary with the dynamic dimensions after {MAX_ROUNDS} conversions: export with "
                          "fixed shapes")


class _Compare:
    """Graph `a` (the maxima) against graph `b` (the second sizes): sets a's dynamic axes, and
    names the ONNX values to compute at run time (run() returns them; empty when none)."""

    def __init__(self, a, b, maxima, second, conv_a, conv_b, producers, initializers):
        self.a, self.b, self.conv_a, self.conv_b = a, b, conv_a, conv_b
        self.maxima, self.second = maxima, second
        self.dims = {(maxima[d], second[d]): d for d in maxima}
        self.sizes_of = {d: (maxima[d], second[d]) for d in maxima}
        self.derived = {}   # computed dimensions: name -> (source, offset, divisor)
        self.producers, self.initializers = producers, initializers
        self.origins = {t: v for v, t in conv_a.values.items() if isinstance(t, str)}
        self.origins.update(conv_a.origins)

    def sizes(self, which):
        values = self.maxima if which == "a" else self.second
        return ", ".join(f"{d}={values[d]}" for d in self.maxima)

    def run(self):
        self.same_structure()
        computed, split = set(), {}
        for name, ta in self.a.tensors.items():
            tb = self.b.tensors.get(name)
            if tb is None or ta.dtype != tb.dtype or len(ta.shape) != len(tb.shape) or \
                    (ta.data is None) != (tb.data is None):
                self.differ(f"tensor '{name}' is {self.describe(ta)} at {self.sizes('a')} but "
                            f"{self.describe(tb)} at {self.sizes('b')}")
            axes = self.follows(ta.shape, tb.shape)
            merged = self.merged(ta.shape, tb.shape) if axes is None else None
            if merged is not None:   # compared, and held, as [dimension, k, ...]
                dim, k = merged
                split[name] = merged
                shape_a, shape_b = (self.maxima[dim], k) + ta.shape[1:], (self.second[dim], k) + tb.shape[1:]
                axes = self.follows(shape_a, shape_b)
                if ta.data is not None:
                    ta.data, tb.data = ta.data.reshape(shape_a), tb.data.reshape(shape_b)
                ta.shape = shape_a
            if ta.data is None and axes is None and merged is None:
                axes = self.derive(name, ta.shape, tb.shape)
            if ta.data is None:
                if axes is None:
                    op = self.a.producer(name)
                    where = f" ({op.type} '{op.name}')" if op else ""
                    raise ConversionError(
                        f"'{name}'{where} has shape {list(ta.shape)} at {self.sizes('a')} and {list(tb.shape)} at "
                        f"{self.sizes('b')}: an axis follows no single dimension (their product, a sum, a "
                        "convolution's output length), which the runtime cannot resize: fix the dimension it "
                        "follows (from_onnx(..., fixed_dims={name: size}))")
                ta.dynamic = axes if any(d is not None for d in axes) else ()
            elif self.origins.get(name) in self.initializers and ta.shape == tb.shape:
                continue   # a weight
            elif self.truncates(ta.data, tb.data, axes):
                ta.dynamic = axes if any(d is not None for d in axes) else ()
            else:
                origin = self.origins.get(name)
                if origin is None:
                    raise ConversionError(f"constant '{name}' (shape {list(ta.shape)}) varies with the dynamic "
                                          f"dimensions ({self.sizes('a')} vs {self.sizes('b')}): export with "
                                          "fixed shapes")
                computed |= self.sources(origin)
        if not computed and split:
            _split_first_axes(self.a, split)
        return computed

    def derive(self, name, shape_a, shape_b):
        """The axes of op output `name` when those that follow no dimension are computed from the
        dimension its input follows along the same axis as the op computes them: a convolution's
        frames, a pad, a strided or shortened slice (floor((source + offset) / divisor), checked at
        both sizes); None when one is not."""
        op = self.a.producer(name)
        if op is None or op.type not in ("CONV2D", "PAD", "SLICE") or len(shape_a) != len(self.a.tensors[
                op.inputs[0]].shape):
            return None
        x = self.a.tensors[op.inputs[0]]
        sources = x.dynamic or (None,) * len(x.shape)
        for axis, (sa, sb) in enumerate(zip(shape_a, shape_b)):
            if sa == sb or (sa, sb) in self.dims or sources[axis] is None:
                continue
            source, o = sources[axis], op.options
            if op.type == "CONV2D" and axis >= 2:
                k = self.a.tensors[op.inputs[1]].shape[axis]
                stride, dilation = o.get("stride", (1, 1))[axis - 2], o.get("dilation", (1, 1))[axis - 2]
                pads = o.get("padding", (0, 0, 0, 0))
                formulas = [(pads[axis - 2] + pads[axis] - dilation * (k - 1) - 1 + stride, stride)]
            elif op.type == "PAD":
                formulas = [(o["pads"][axis] + o["pads"][axis + len(shape_a)], 1)]
            elif op.type == "SLICE" and o["step"][axis] > 0:   # to the end, or e elements short of it
                begin, step = o["begin"][axis], o["step"][axis]
                formulas = [(step - 1 - begin - e, step) for e in range(x.shape[axis])]
            else:
                return None
            top, second = self.sizes_of[source]
            found = next(((offset, divisor) for offset, divisor in formulas
                          if (top + offset) // divisor == sa and (second + offset) // divisor == sb), None)
            if found is None:
                return None
            dim, *formula = computed_dim(self.derived, source, *found)
            self.derived[dim] = tuple(formula)
            self.sizes_of[dim] = (sa, sb)
            self.dims[(sa, sb)] = dim
        return self.follows(shape_a, shape_b)

    def merged(self, shape_a, shape_b):
        """(dimension, k) when the first axis is k times a dimension (DeBERTa's batch x heads) and
        the others each follow one or none, else None."""
        if not shape_a:
            return None
        for (top, second), dim in self.dims.items():
            k = shape_a[0] // top
            if k > 1 and shape_a[0] == k * top and shape_b[0] == k * second and \
                    self.follows(shape_a[1:], shape_b[1:]) is not None:
                return dim, k
        return None

    def describe(self, t):
        if t is None:
            return "absent"
        return f"{'a constant' if t.data is not None else 'a tensor'} of {t.dtype} {list(t.shape)}"

    def differ(self, what):
        raise ConversionError(f"the model converts differently at {self.sizes('a')} and at {self.sizes('b')}: "
                              f"{what}; sparselite resizes only graphs whose ops are the same at every size "
                              "(fix the dimension that changes them: from_onnx(..., fixed_dims={name: size}))")

    def same_structure(self):
        a, b = self.a, self.b
        if a.inputs != b.inputs or a.outputs != b.outputs:
            self.differ(f"inputs {a.inputs} -> {a.outputs} against {b.inputs} -> {b.outputs}")
        for k, (x, y) in enumerate(zip(a.ops, b.ops)):
            if x.type != y.type or x.inputs != y.inputs or x.outputs != y.outputs or \
                    not _same_options(x.options, y.options):
                self.differ(f"op {k} is {x.type} '{x.name}' {x.options or ''} against {y.type} '{y.name}' "
                            f"{y.options or ''}")
        if len(a.ops) != len(b.ops):
            self.differ(f"{len(a.ops)} ops against {len(b.ops)}")

    def follows(self, shape_a, shape_b):
        """Per axis None (fixed) or the dimension it follows; None when one follows none."""
        axes = []
        for sa, sb in zip(shape_a, shape_b):
            if sa == sb:
                axes.append(None)
            elif (sa, sb) in self.dims:
                axes.append(self.dims[(sa, sb)])
            else:
                return None
        return tuple(axes)

    @staticmethod
    def truncates(a, b, axes):
        """Whether the runtime may keep constant `a` (at the maxima) as it does (its leading
        elements, for one dynamic axis after axes of size 1), `b` being what it is at the other sizes."""
        a, b = np.asarray(a), np.asarray(b)
        if axes is None or a.dtype != b.dtype:
            return False
        nan = a.dtype.kind in "fc"
        moving = [i for i, d in enumerate(axes) if d is not None]
        if not moving:
            return np.array_equal(a, b, equal_nan=nan)
        if len(moving) > 1 or any(n != 1 for n in a.shape[:moving[0]]):
            return False
        small, big = (b, a) if b.size <= a.size else (a, b)
        return np.array_equal(big[tuple(slice(0, n) for n in small.shape)], small, equal_nan=nan)

    def sources(self, value):
        """`value` and the folded values before it that vary as it does: all to compute at run time."""
        found, stack = set(), [value]
        while stack:
            v = stack.pop()
            if v in found:
                continue
            found.add(v)
            node = self.producers.get(v)
            if node is None:
                continue
            skip = _CONVERSION_INPUTS.get(node.op_type, ())
            for k, u in enumerate(node.input):
                if not u or k in skip or u in self.initializers or u not in self.conv_a.consts \
                        or u not in self.conv_b.consts:
                    continue
                ua, ub = np.asarray(self.conv_a.consts[u]), np.asarray(self.conv_b.consts[u])
                if not self.truncates(ua, ub, self.follows(ua.shape, ub.shape) if ua.ndim == ub.ndim else None):
                    stack.append(u)
        return found


# Ops that read and write tensors of any rank alike (elementwise, broadcasting from the right, or
# over the last axes), so a first axis held as two changes nothing for them.
_RANK_FREE = {"RESHAPE", "ADD", "SUB", "MUL", "DIV", "WHERE", "COMPARE", "LOGICAL", "CAST", "ACTIVATION", "EXPAND",
              "LAYER_NORM", "FULLY_CONNECTED", "GATHER", "MATMUL", "L2_NORMALIZE"}
_AXIS_OPTIONS = {"SOFTMAX": "axis", "CONCAT": "axis", "GATHER_ELEMENTS": "axis", "CUMSUM": "axis", "REDUCE": "axes"}


def _split_first_axes(graph, split):
    """The ops reading or writing the tensors of `split` ({name: (dimension, k)}), whose first
    axis (k times a dynamic dimension) _Compare now holds as two, [dimension, k] (a .slite axis
    follows one dimension or none), see the same data with one more axis in front: axis options
    move by one, TRANSPOSE keeps both in front, SLICE and PAD leave the new axis whole; an op that
    would have to split, move or reduce the merged axis is refused, naming it."""
    for op in graph.ops:
        touched = [t for t in op.inputs + op.outputs if t in split]
        if not touched or op.type in _RANK_FREE:
            continue
        o = op.options

        def refuse(why):
            raise ConversionError(f"{op.type} '{op.name}' {why} a tensor whose first axis is k times a dynamic "
                                  f"dimension ('{touched[0]}'): fix that dimension (from_onnx(..., fixed_dims="
                                  "{name: size}))")

        if op.type == "TRANSPOSE" and o["perm"][0] == 0 and all(t in split for t in (op.inputs[0], op.outputs[0])):
            o["perm"] = [0, 1] + [int(p) + 1 for p in o["perm"][1:]]
        elif op.type in _AXIS_OPTIONS:
            key = _AXIS_OPTIONS[op.type]
            values = [int(v) for v in (o[key] if key == "axes" else [o.get(key, -1)])]
            if any(v == 0 for v in values):
                refuse("works along")
            moved = [v + 1 if v > 0 else v for v in values]
            o[key] = moved if key == "axes" else moved[0]
        elif op.type == "SLICE" and o["begin"][0] == 0 and o["step"][0] == 1 and \
                all(t in split for t in (op.inputs[0], op.outputs[0])):
            o["begin"], o["step"] = [0, 0] + list(o["begin"][1:]), [1, 1] + list(o["step"][1:])
        elif op.type == "PAD" and o["pads"][0] == 0 and o["pads"][len(o["pads"]) // 2] == 0:
            half = len(o["pads"]) // 2
            o["pads"] = [0] + list(o["pads"][:half]) + [0] + list(o["pads"][half:])
        else:
            refuse("would split or move")


def _same_options(x, y):
    if x.keys() != y.keys():
        return False
    for key in x:
        u, v = x[key], y[key]
        if isinstance(u, np.ndarray) or isinstance(v, np.ndarray):
            if not np.array_equal(np.asarray(u), np.asarray(v)):
                return False
        elif u != v and not (isinstance(u, float) and isinstance(v, float) and np.isnan(u) and np.isnan(v)):
            return False
    return True
