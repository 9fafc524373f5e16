"""The converters' graph IR: frontends build it, passes rewrite it, the writer serializes it."""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from sparselite.errors import ConversionError

from .limits import check_shape

DTYPES = ("float32", "float16", "int32", "int64", "bool")   # what a .slite tensor may hold
_INT32 = (-(1 << 31), (1 << 31) - 1)


@dataclass
class Tensor:
    name: str
    shape: tuple
    dtype: str = "float32"
    data: Optional[np.ndarray] = None   # constants only
    group_size: int = 0                 # > 0: store as group-sparse with this r (set by a pass)
    out_perm: Optional[np.ndarray] = None   # group-sparse rows stored in this order (physical row -> channel)
    dynamic: tuple = ()                 # per axis: None (fixed) or a Graph.dims name; shape holds its max


@dataclass
class Op:
    type: str                           # a schema OpType name, or BATCH_NORM before folding
    inputs: List[Optional[str]]
    outputs: List[str]
    options: Dict = field(default_factory=dict)
    name: str = ""                      # source module path, kept for errors and profiles


MAX_DIVISOR = 65536   # the runtime's bound on a computed dimension's divisor and offset


def computed_dim(derived, source, offset, divisor):
    """(name, source, offset, divisor) of the dimension floor((source + offset) / divisor), where
    `derived` {name: (source, offset, divisor)} holds the computed ones: one computed from a
    computed dimension is folded into one formula over the other's source while the divisor stays
    within the runtime's bound (floor((floor((s + a) / b) + c) / d) = floor((s + a + b·c) / (b·d)))."""
    if source in derived:
        root, a, b = derived[source]
        if b * divisor <= MAX_DIVISOR and abs(a + b * offset) <= MAX_DIVISOR:
            source, offset, divisor = root, a + b * offset, b * divisor
    shifted = f"({source}{offset:+d})" if offset else source
    return (f"{shifted}//{divisor}" if divisor > 1 else shifted), source, offset, divisor


class Graph:
    def __init__(self):
        self.tensors: Dict[str, Tensor] = {}
        self.ops: List[Op] = []
        self.inputs: List[str] = []
        self.outputs: List[str] = []
        self.metadata: Dict[str, str] = {}
        self.dims: Dict[str, int] = {}  # dynamic dimensions (a sequence length) -> maximum
        # dimensions computed from an earlier one: name -> (source name, offset, divisor), the size
        # floor((source + offset) / divisor) (a strided convolution's frames of audio samples)
        self.derived_dims: Dict[str, tuple] = {}
        self._suffix: Dict[str, int] = {}   # next suffix _unique tries per base name

    def _unique(self, name):
        """`name`, or `name_<n>` for the first n that is free (linear in repeats, even when a hostile
        file gives thousands of tensors one name)."""
        base, n = name, self._suffix.get(name, 1)
        while name in self.tensors:
            name = f"{base}_{n}"
            n += 1
        self._suffix[base] = n
        return name

    def add_input(self, name, shape, dtype="float32"):
        name = self._unique(name)
        self.tensors[name] = Tensor(name, check_shape(shape, f"input '{name}'"), dtype)
        self.inputs.append(name)
        return name

    def add_const(self, name, data):
        data = np.ascontiguousarray(data)
        if data.dtype == np.float64:
            data = data.astype(np.float32)
        name = self._unique(name)
        self.tensors[name] = Tensor(name, check_shape(data.shape, f"constant '{name}'"), str(data.dtype), data)
        return name

    def add_op(self, type, inputs, out_shape, options=None, name="", out_name=None, dtype="float32"):
        """Appends an op with one new output (float32 unless told); returns the output's name."""
        out = self._unique(out_name or f"{name or type.lower()}:out")
        self.tensors[out] = Tensor(out, check_shape(out_shape, f"output '{out}' of {type} '{name}'"), dtype)
        self.ops.append(Op(type, list(inputs), [out], dict(options or {}), name))
        return out

    def producer(self, tensor_name):
        for op in self.ops:
            if tensor_name in op.outputs:
                return op
        return None

    def consumers(self, tensor_name):
        return [op for op in self.ops if tensor_name in op.inputs]

    def replace_uses(self, old, new):
        for op in self.ops:
            op.inputs = [new if t == old else t for t in op.inputs]
        self.outputs = [new if t == old else t for t in self.outputs]

    def check(self):
        """Fails on IR-only ops left after the passes, on what a .slite cannot hold (a dtype, an
        option beyond int32, a tensor no op defines), and on constants the runtime cannot
        shrink with a dynamic dimension (it keeps their first elements)."""
        for op in self.ops:
            if op.type == "BATCH_NORM":
                raise ConversionError(f"internal: BATCH_NORM at '{op.name}' was not lowered")
            for t in op.inputs + op.outputs:
                if t is not None and t not in self.tensors:
                    raise ConversionError(f"internal: {op.type} '{op.name}' refers to tensor '{t}', which does not "
                                          "exist")
            for key, value in op.options.items():
                for v in (value if isinstance(value, (tuple, list)) else (value,)):
                    if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and not _INT32[0] <= v <= _INT32[1]:
                        raise ConversionError(f"{op.type} '{op.name}': option {key} = {value} does not fit in int32")
        for t in self.tensors.values():
            if t.dtype not in DTYPES:
                raise ConversionError(f"tensor '{t.name}' has dtype {t.dtype}: a .slite holds {', '.join(DTYPES)}")
        for t in self.tensors.values():
            axes = [i for i, d in enumerate(t.dynamic) if d is not None]
            if t.data is not None and axes and (len(axes) > 1 or any(n != 1 for n in t.shape[:axes[0]])):
                raise ConversionError(f"constant '{t.name}' of shape {list(t.shape)} varies with dynamic "
                                      f"dimension(s) {[t.dynamic[i] for i in axes]} after other axes: convert with "
                                      "fixed shapes, or compute it from the inputs")

    def prune_unused(self):
        used = set(self.inputs) | set(self.outputs)
        for op in self.ops:
            used.update(t for t in op.inputs if t is not None)
            used.update(op.outputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in used}
