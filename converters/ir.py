"""The converters' graph IR: frontends build it, passes rewrite it, the writer serializes it."""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from sparselite.errors import ConversionError


@dataclass
class Tensor:
    name: str
    shape: tuple
    dtype: str = "float32"
    data: Optional[np.ndarray] = None   # constants only
    group_size: int = 0                 # > 0: store as group-sparse with this r (set by a pass)
    dynamic: tuple = ()                 # per axis: None (fixed) or a Graph.dims name; shape holds its max


@dataclass
class Op:
    type: str                           # a schema OpType name, or BATCH_NORM before folding
    inputs: List[Optional[str]]
    outputs: List[str]
    options: Dict = field(default_factory=dict)
    name: str = ""                      # source module path, kept for errors and profiles


class Graph:
    def __init__(self):
        self.tensors: Dict[str, Tensor] = {}
        self.ops: List[Op] = []
        self.inputs: List[str] = []
        self.outputs: List[str] = []
        self.metadata: Dict[str, str] = {}
        self.dims: Dict[str, int] = {}  # dynamic dimensions (a sequence length) -> maximum

    def _unique(self, name):
        base, n = name, 1
        while name in self.tensors:
            name = f"{base}_{n}"
            n += 1
        return name

    def add_input(self, name, shape, dtype="float32"):
        name = self._unique(name)
        self.tensors[name] = Tensor(name, tuple(int(d) for d in shape), dtype)
        self.inputs.append(name)
        return name

    def add_const(self, name, data):
        data = np.ascontiguousarray(data)
        if data.dtype == np.float64:
            data = data.astype(np.float32)
        name = self._unique(name)
        self.tensors[name] = Tensor(name, tuple(data.shape), str(data.dtype), data)
        return name

    def add_op(self, type, inputs, out_shape, options=None, name="", out_name=None, dtype="float32"):
        """Appends an op with one new output (float32 unless told); returns the output's name."""
        out = self._unique(out_name or f"{name or type.lower()}:out")
        self.tensors[out] = Tensor(out, tuple(int(d) for d in out_shape), dtype)
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
        """Fails on IR-only ops left after the passes, and on constants the runtime cannot
        shrink with a dynamic dimension (it keeps their first elements)."""
        for op in self.ops:
            if op.type == "BATCH_NORM":
                raise ConversionError(f"internal: BATCH_NORM at '{op.name}' was not lowered")
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
