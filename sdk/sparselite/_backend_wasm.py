"""The Pyodide backend: sparselite.wasm (shipped in the wheel) through `js` / `pyodide.ffi`.

The wheel ships two builds: sparselite-relaxed.wasm (relaxed SIMD: FMA) is used where the engine
validates a relaxed op, sparselite.wasm (SIMD128) elsewhere; cpu_isa() says which. The module
is compiled and instantiated synchronously (it is small), gets a minimal WASI
(a clock; no files), and tensors cross as whole byte ranges of its memory, never element
by element. Used when sys.platform == "emscripten"."""
import struct
import time
from importlib import resources

import js
from pyodide.ffi import create_proxy, to_js

from . import errors
from ._abi import DTYPES, ISA_BITS, STRUCTS

_ITEMSIZE = dict(DTYPES.values())
_STRUCT_CODES = {"u32": "I", "i32": "i", "u64": "Q", "f64": "d"}  # the struct module's letters per kind
_ERRNO_BADF = 8
# A module whose one function uses f32x4.relaxed_madd (the same probe as sparselite.mjs).
_RELAXED_SIMD_PROBE = bytes([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 19, 1, 17, 0, 65, 0,
                             253, 17, 65, 0, 253, 17, 65, 0, 253, 17, 253, 133, 2, 11])
_exports = None
_proxies = []  # the WASI imports must outlive the instance


def _memory():
    return js.Uint8Array.new(_exports.memory.buffer)


def _read(ptr, size):
    return bytes(js.Uint8Array.new(_exports.memory.buffer, ptr, size).to_py())


def _write(ptr, data):
    js.Uint8Array.new(_exports.memory.buffer, ptr, len(data)).assign(data)


def _read_struct(name, ptr):
    """The fields of C struct `name` at `ptr`, by field name (arrays as tuples), from its wasm32 layout."""
    layout = STRUCTS[name]
    raw = _read(ptr, layout["size"])
    fields = {}
    for field, spec in layout["fields"].items():
        values = struct.unpack_from(f"<{spec['count']}{_STRUCT_CODES[spec['kind']]}", raw, spec["offset"])
        fields[field] = values if spec["count"] > 1 else values[0]
    return fields


def _string(ptr):
    out = bytearray()
    while True:
        chunk = _read(ptr + len(out), 64)
        end = chunk.find(b"\0")
        if end >= 0:
            return (out + chunk[:end]).decode("utf-8", "replace")
        out += chunk


def _runtime():
    """Instantiates sparselite.wasm once per interpreter."""
    global _exports
    if _exports is None:
        relaxed = js.WebAssembly.validate(to_js(_RELAXED_SIMD_PROBE))
        build = "sparselite-relaxed.wasm" if relaxed else "sparselite.wasm"
        wasm = resources.files(__package__).joinpath(build).read_bytes()

        def clock_time_get(_clock, _precision, out):
            # Two 32-bit halves: a Python int crosses to JS as a Number, which setBigUint64 rejects.
            ns = time.monotonic_ns()
            view = js.DataView.new(_exports.memory.buffer)
            view.setUint32(out, ns & 0xFFFFFFFF, True)
            view.setUint32(out + 4, ns >> 32, True)
            return 0

        def bad_descriptor(*_args):
            return _ERRNO_BADF

        def proc_exit(code):
            raise errors.SparseliteError(f"sparselite.wasm called exit({code})")

        names = ["fd_close", "fd_fdstat_get", "fd_filestat_get", "fd_prestat_get", "fd_prestat_dir_name", "fd_read",
                 "fd_seek", "fd_write", "path_open"]
        wasi = {name: create_proxy(bad_descriptor) for name in names}
        wasi["clock_time_get"] = create_proxy(clock_time_get)
        wasi["proc_exit"] = create_proxy(proc_exit)
        _proxies.extend(wasi.values())
        imports = to_js({"wasi_snapshot_preview1": wasi}, dict_converter=js.Object.fromEntries)
        module = js.WebAssembly.Module.new(to_js(wasm))
        _exports = js.WebAssembly.Instance.new(module, imports).exports
        _exports._initialize()
    return _exports


class WasmModel:
    """One sl_model_t inside the WASM module; freed with the Python object."""

    def __init__(self, source, num_threads, isa_mask, tune, max_memory_bytes, band_rows=-1, winograd_tile=-1,
                 fp16=False):
        self._e = _runtime()
        self._m = self._e.sl_model_new()
        if not self._m:
            raise MemoryError("cannot allocate a sparselite model")
        self.threads = 1  # one thread in WASM; the count is accepted so code stays portable
        self._check(self._e.sl_model_set_isa_mask(self._m, isa_mask))
        self._check(self._e.sl_model_set_tuning(self._m, int(tune)))
        self._check(self._e.sl_model_set_fusion(self._m, band_rows))
        self._check(self._e.sl_model_set_winograd(self._m, winograd_tile))
        self._check(self._e.sl_model_set_precision(self._m, int(fp16)))  # no fp16 ISA in WASM: runs fp32
        if max_memory_bytes is not None:  # size_t is 32 bits here: past it, no limit
            self._check(self._e.sl_model_set_memory_limit(self._m, min(max_memory_bytes, 2 ** 32 - 1)))
        data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else open(source, "rb").read()
        buf = self._e.malloc(max(len(data), 1))
        _write(buf, data)
        status = self._e.sl_model_load_buffer(self._m, buf, len(data), 1)
        self._e.free(buf)
        self._check(status)
        self.inputs = [self._info("input", i) for i in range(self._e.sl_model_num_inputs(self._m))]
        self.outputs = [self._info("output", i) for i in range(self._e.sl_model_num_outputs(self._m))]
        self._in = [self._pointer("input", i) for i in range(len(self.inputs))]
        self._out = [self._pointer("output", i) for i in range(len(self.outputs))]

    def __del__(self):
        if getattr(self, "_m", 0):
            self._e.sl_model_free(self._m)

    def _check(self, status):
        if status != 0:
            raise errors.error_for_status(status, _string(self._e.sl_model_last_error(self._m)))

    def _scratch(self, size, fill):
        ptr = self._e.malloc(size)
        try:
            return fill(ptr)
        finally:
            self._e.free(ptr)

    def _tensor_info(self, kind, index):
        """sl_tensor_info_t of an input or output, by field name."""
        def fill(ptr):
            self._check(getattr(self._e, f"sl_model_{kind}_info")(self._m, index, ptr))
            return _read_struct("sl_tensor_info_t", ptr)
        return self._scratch(STRUCTS["sl_tensor_info_t"]["size"], fill)

    def _info(self, kind, index):
        """(name, max shape, dtype, dynamic axes)."""
        info = self._tensor_info(kind, index)
        rank = info["rank"]
        dynamic = tuple(d for d in range(rank) if info["dynamic_axes"] >> d & 1)
        return _string(info["name"]), info["max_shape"][:rank], DTYPES[info["dtype"]][0], dynamic

    def shape(self, kind, index):
        info = self._tensor_info(kind, index)
        return info["shape"][:info["rank"]]

    def resize_input(self, index, shape):
        def fill(ptr):
            _write(ptr, struct.pack(f"<{len(shape)}i", *shape))
            self._check(self._e.sl_model_resize_input(self._m, index, len(shape), ptr))
        self._scratch(4 * max(len(shape), 1), fill)

    def _pointer(self, kind, index):
        def fill(slot):
            self._check(getattr(self._e, f"sl_model_{kind}_data")(self._m, index, slot))
            return struct.unpack("<I", _read(slot, 4))[0]
        spec = (self.inputs if kind == "input" else self.outputs)[index]
        count = 1
        for d in spec[1]:
            count *= d
        return self._scratch(4, fill), count * _ITEMSIZE[spec[2]]

    def set_input(self, index, data):
        ptr, _ = self._in[index]
        _write(ptr, memoryview(data).cast("B"))

    def run(self):
        self._check(self._e.sl_model_run(self._m))

    def output(self, index, size):
        ptr, _ = self._out[index]
        return bytearray(_read(ptr, size))

    @property
    def arena_bytes(self):
        return self._e.sl_model_arena_bytes(self._m)

    @property
    def scratch_bytes(self):
        return self._e.sl_model_scratch_bytes(self._m)

    def set_profiling(self, enable):
        self._check(self._e.sl_model_set_profiling(self._m, int(enable)))

    def op_profiles(self):
        """[(name, type, kernel, flops, dense_flops, time_ns, runs, weight_bytes, activation_bytes, group_size,
        fused_into)]
        in execution order, as the native backend gives them."""
        def fill(ptr):
            out = []
            for i in range(self._e.sl_model_num_ops(self._m)):
                self._check(self._e.sl_model_op_profile(self._m, i, ptr))
                p = _read_struct("sl_op_profile_t", ptr)
                out.append((_string(p["name"]), _string(p["type"]), _string(p["kernel"]), p["flops"],
                            p["dense_flops"], p["time_ns"], p["runs"], p["weight_bytes"], p["activation_bytes"],
                            p["group_size"], p["fused_into"]))
            return out
        return self._scratch(STRUCTS["sl_op_profile_t"]["size"], fill)


def _isa_names(bits):
    return [name for name, bit in ISA_BITS.items() if bits & bit]


def cpu_isa():
    return _isa_names(_runtime().sl_cpu_isa())


def kernels():
    e = _runtime()
    return [(_string(e.sl_kernel_name(i)), _isa_names(e.sl_kernel_isa(i))) for i in range(e.sl_kernel_count())]
