"""The host API: load a .slite and run it.

numpy is optional: with it, run() takes and returns numpy arrays; without it (Pyodide
offline), inputs are array.array / memoryview / Tensor and outputs are Tensors."""
import array
import os
import sys
import threading
from dataclasses import dataclass
from math import prod
from typing import Optional, Tuple

try:
    import numpy as np
except ImportError:
    np = None

from ._abi import DTYPES, ISA_BITS
from .errors import InputError

# The array module's typecodes; it has no bool, so bools travel as bytes of 0 and 1 ('B').
_TYPECODES = {"float32": "f", "int32": "i", "int64": "q", "uint16": "H", "uint32": "I", "bool": "B"}
_FORMATS = {"bool": ("B", "?")}  # memoryview formats a bool input takes ('?': numpy's)
_ITEMSIZE = dict(DTYPES.values())


class Tensor:
    """A flat array.array of values and a shape: run()'s inputs and outputs when numpy
    is not installed. Pass one as an input, or a bare array.array / memoryview."""

    def __init__(self, data, shape):
        self.data = data
        self.shape = tuple(shape)

    @property
    def dtype(self):
        return {code: name for name, code in _TYPECODES.items()}[self.data.typecode]

    def tolist(self):
        """Nested lists in row-major order."""
        def nest(flat, shape):
            if len(shape) <= 1:
                return list(flat)
            step = len(flat) // shape[0]
            return [nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]
        return nest(self.data, self.shape)

    def __repr__(self):
        return f"Tensor(shape={list(self.shape)}, dtype={self.dtype})"


def _shape_of(value):
    """The shape of an input value, or None for flat buffers (array.array, memoryview)."""
    if isinstance(value, Tensor):
        return value.shape
    if isinstance(value, (array.array, memoryview)) or np is None:
        return None
    return tuple(np.shape(value))


def _shape_error(spec, shape, got):
    want = "[" + ", ".join(f"<={d}" if axis in spec.dynamic_axes else str(d) for axis, d in enumerate(spec.shape)) + "]"
    if spec.dynamic_axes and list(shape) != list(spec.shape):
        want += f" (now {list(shape)}, set by another input sharing a dynamic dimension)"
    return InputError(f"input '{spec.name}' must have shape {want}, got {list(got)}")


def _input_bytes(spec, value, shape):
    """One input as a C-contiguous buffer (numpy array or memoryview) of the spec's dtype and the
    current `shape`, after checking it."""
    typecode = _TYPECODES[spec.dtype]
    if isinstance(value, Tensor):
        if value.shape != shape:
            raise _shape_error(spec, shape, value.shape)
        value = value.data
    elif np is not None and not isinstance(value, (array.array, memoryview)):
        arr = np.asarray(value)
        want = np.dtype(spec.dtype)
        same_kind = arr.dtype.kind == want.kind or (arr.dtype.kind in "iu" and want.kind in "iu")
        if not same_kind:
            raise InputError(f"input '{spec.name}' must be {spec.dtype}, got {arr.dtype}")
        if arr.shape != shape:
            raise _shape_error(spec, shape, arr.shape)
        if want.kind in "iu" and arr.size and not np.can_cast(arr.dtype, want):
            _check_range(spec, arr, np.iinfo(want))
        return np.ascontiguousarray(arr, dtype=want)
    try:
        view = memoryview(value)
    except TypeError:
        raise InputError(f"input '{spec.name}': pass a numpy array, array.array, memoryview or sparselite.Tensor, "
                         f"got {type(value).__name__}") from None
    if view.format.lstrip("@=<") not in _FORMATS.get(spec.dtype, (typecode,)):
        raise InputError(f"input '{spec.name}' must be {spec.dtype} (array typecode '{typecode}'), "
                         f"got format '{view.format}'")
    count = prod(shape)
    if view.nbytes != count * view.itemsize:
        raise InputError(f"input '{spec.name}' needs {count} values for shape {list(shape)}, "
                         f"got {view.nbytes // view.itemsize}")
    return view.cast("B")


def _check_range(spec, arr, info):
    """Integers narrowed to the input's dtype must keep their values: a uint64 id of 2**63 would
    otherwise wrap to a negative int64."""
    low, high = int(arr.min()), int(arr.max())  # Python ints: numpy 1.x compared uint64 with int64 as float
    if low < info.min or high > info.max:
        bad = low if low < info.min else high
        raise InputError(f"input '{spec.name}' is {spec.dtype}, which holds {info.min}..{info.max}; "
                         f"got {arr.dtype} value {bad}")


def _output(spec, raw, shape):
    """A run's output bytes (a private copy) as a numpy array, or a Tensor without numpy."""
    if np is not None:
        return np.frombuffer(raw, dtype=spec.dtype).reshape(shape)
    data = array.array(_TYPECODES[spec.dtype])
    data.frombytes(raw)
    return Tensor(data, shape)


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: its name, shape, numpy dtype name, and the axes that are
    dynamic (a sequence length): those run at any size from 1 to shape[axis]."""

    name: str
    shape: Tuple[int, ...]
    dtype: str
    dynamic_axes: Tuple[int, ...] = ()


@dataclass(frozen=True)
class OpProfile:
    """One op's share of a profiled run: mean milliseconds, FLOPs on stored weights
    (dense_flops: as if every weight were stored), and the microkernel it ran. fused_into: the
    index of the op whose fused block runs this one (its time counts there), or None."""

    name: str
    op: str
    kernel: str
    flops: float
    dense_flops: float
    ms: float
    fused_into: Optional[int] = None

    @property
    def gflops(self):
        """Effective GFLOP/s on stored weights."""
        return self.flops / self.ms / 1e6 if self.ms > 0 else 0.0


class Model:
    """A verified, planned model. Reuse it: runs allocate no new native memory.

    Safe to share between threads: calls are serialised (one run at a time on the model's arena
    and thread pool), so threads that need to run at once should each load their own Model."""

    def __init__(self, backend):
        self._backend = backend
        self._lock = threading.RLock()
        self.inputs = [TensorSpec(*spec) for spec in backend.inputs]
        self.outputs = [TensorSpec(*spec) for spec in backend.outputs]
        self._dynamic = any(spec.dynamic_axes for spec in self.inputs)
        self._out_shapes = [spec.shape for spec in self.outputs]

    @property
    def arena_bytes(self):
        """Bytes of the arena that holds every activation."""
        return self._backend.arena_bytes

    @property
    def scratch_bytes(self):
        """Bytes of scratch the ops share (patch tiles, padded planes)."""
        return self._backend.scratch_bytes

    def profile_report(self, inputs, runs=50, warmup=5, name=""):
        """Per-op medians, latency percentiles and memory as a profile dict (sparselite.profiler:
        the JSON schema `sparselite-bench` writes too; render with format_table / chrome_trace /
        html_report)."""
        from .profiler import profile_model

        with self._lock:
            return profile_model(self, inputs, runs=runs, warmup=warmup, name=name)

    def profile(self, inputs, runs=10):
        """Runs `runs` times and returns one OpProfile per op (mean ms), in execution order."""
        if not isinstance(runs, int) or runs < 1:
            raise InputError(f"runs must be a positive int, got {runs!r}")
        with self._lock:
            self.run(inputs)  # warm-up, not counted
            self._backend.set_profiling(True)
            try:
                for _ in range(runs):
                    self.run(inputs)
            finally:
                profiles = self._backend.op_profiles()
                self._backend.set_profiling(False)
        return [OpProfile(name, op, kernel, flops, dense_flops, time_ns / max(count, 1) / 1e6,
                          None if fused < 0 else fused)
                for name, op, kernel, flops, dense_flops, time_ns, count, *_, fused in profiles]

    def _bind(self, inputs):
        if isinstance(inputs, dict):
            known = {spec.name for spec in self.inputs}
            unknown = sorted(set(inputs) - known)
            if unknown:
                raise InputError(f"unknown input name(s) {unknown}; the model's inputs are {sorted(known)}")
            missing = [spec.name for spec in self.inputs if spec.name not in inputs]
            if missing:
                raise InputError(f"missing input(s) {missing}; the model's inputs are {sorted(known)}")
            return [inputs[spec.name] for spec in self.inputs]
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != len(self.inputs):
                raise InputError(f"expected {len(self.inputs)} inputs, got {len(inputs)}")
            return list(inputs)
        if len(self.inputs) != 1:
            names = [spec.name for spec in self.inputs]
            raise InputError(f"this model has {len(names)} inputs {names}: pass a dict of name -> array")
        return [inputs]

    def _resize(self, values):
        """Sets dynamic dimensions from the inputs' shapes; returns every input's current shape."""
        for index, (spec, value) in enumerate(zip(self.inputs, values)):
            shape = _shape_of(value)
            if not spec.dynamic_axes or shape is None or shape == self._backend.shape("input", index):
                continue
            if len(shape) != len(spec.shape) or any(
                    not (1 <= got <= want if axis in spec.dynamic_axes else got == want)
                    for axis, (got, want) in enumerate(zip(shape, spec.shape))):
                raise _shape_error(spec, spec.shape, shape)
            self._backend.resize_input(index, shape)
        self._out_shapes = [self._backend.shape("output", i) for i in range(len(self.outputs))]
        return [self._backend.shape("input", i) for i in range(len(self.inputs))]

    def run(self, inputs):
        """Runs the model on one array, a list in input order, or a dict name -> array.
        Inputs with dynamic axes may be shorter there than the spec (down to 1); inputs that
        share a dimension must agree.

        Returns a list in output order of numpy arrays (Tensors without numpy): copies,
        safe to keep."""
        values = self._bind(inputs)
        with self._lock:  # inputs in, run, outputs out: one sequence per caller
            shapes = self._resize(values) if self._dynamic else [spec.shape for spec in self.inputs]
            for index, (spec, value) in enumerate(zip(self.inputs, values)):
                self._backend.set_input(index, _input_bytes(spec, value, shapes[index]))
            self._backend.run()
            return [_output(spec, self._backend.output(i, prod(shape) * _ITEMSIZE[spec.dtype]), shape)
                    for i, (spec, shape) in enumerate(zip(self.outputs, self._out_shapes))]

    def __repr__(self):
        ins = ", ".join(f"{s.name}{list(s.shape)}" for s in self.inputs)
        outs = ", ".join(f"{s.name}{list(s.shape)}" for s in self.outputs)
        return f"<sparselite.Model inputs=({ins}) outputs=({outs})>"


def load(path_or_bytes, num_threads=1, tune=False, isa=None, max_memory_bytes=None, fuse=True, winograd=True,
         precision="fp32"):
    """Loads and verifies a .slite model from a path or from bytes. A path is read into memory,
    not mapped, so changing the file afterwards cannot affect the model.

    num_threads: threads per run (the caller's thread included).
    tune: time sparse against dense kernels per layer at load and keep the faster
        (slower loads; without it a cost model decides).
    isa: restrict kernels to these instruction sets, e.g. ["sse2"], or [] for the
        portable C kernels; None uses everything the CPU has (see cpu_isa()).
    max_memory_bytes: the most memory loading may allocate (the file's copy, weights, the
        activation arena and scratch); a model that needs more raises MemoryError saying how
        much. None keeps the runtime's default, 2 GiB.
    fuse: run chains of 1x1 expand -> depthwise -> 1x1 project (+ residual add) as one fused
        block over bands of output rows, so the expanded activations stay in cache. True: where
        the runtime expects it to pay; False: never; an int k: every such chain, in bands of k
        rows (devices with small caches). Profiles list a block's members with fused_into set.
    winograd: dense 3x3 stride-1 convolutions run Winograd F(2x2,3x3) or F(4x4,3x3). True: where
        measured faster; False: never; 2 or 4: that tile on every such layer.
    precision: "fp16" runs 1x1 convolutions, FC layers on channel-major data and depthwise
        convolutions in fp16 (activations converted at each such layer's boundaries; no fused
        blocks) where the CPU has ARMv8.2-A fp16 arithmetic (cpu_isa() lists "neon_fp16");
        elsewhere, and every other op, fp32. "fp32" (the default) everywhere."""
    if sys.platform == "emscripten":
        from ._backend_wasm import WasmModel as Backend
    else:
        from ._backend_native import NativeModel as Backend

    if not isinstance(num_threads, int) or num_threads < 1:
        raise InputError(f"num_threads must be a positive int, got {num_threads!r}")
    if max_memory_bytes is not None and (not isinstance(max_memory_bytes, int) or isinstance(max_memory_bytes, bool)
                                         or max_memory_bytes < 1):
        raise InputError(f"max_memory_bytes must be a positive int or None, got {max_memory_bytes!r}")
    if fuse is True or fuse is False:
        band_rows = -1 if fuse else 0
    elif isinstance(fuse, int) and 1 <= fuse <= 65536:
        band_rows = fuse
    else:
        raise InputError(f"fuse must be True, False or a band height of 1..65536 rows, got {fuse!r}")
    if winograd is True or winograd is False:
        winograd_tile = -1 if winograd else 0
    elif winograd in (2, 4) and isinstance(winograd, int):
        winograd_tile = winograd
    else:
        raise InputError(f"winograd must be True, False, 2 or 4, got {winograd!r}")
    if precision not in ("fp32", "fp16"):
        raise InputError(f"precision must be 'fp32' or 'fp16', got {precision!r}")
    isa_mask = 0xFFFFFFFF
    if isa is not None:
        unknown = sorted(set(isa) - set(ISA_BITS))
        if isinstance(isa, str) or unknown:
            raise InputError(f"isa must be a list of {sorted(ISA_BITS)}, got {isa!r}")
        isa_mask = sum(ISA_BITS[name] for name in set(isa))
    if isinstance(path_or_bytes, (str, os.PathLike)):
        if not os.path.exists(path_or_bytes):
            raise FileNotFoundError(f"no such model file: {os.fspath(path_or_bytes)}")
        source = os.fspath(path_or_bytes)
    elif isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        source = path_or_bytes
    else:
        raise TypeError(f"load() takes a path or bytes, got {type(path_or_bytes).__name__}")
    return Model(Backend(source, num_threads, isa_mask, tune, max_memory_bytes, band_rows, winograd_tile,
                         precision == "fp16"))
