"""The Pyodide backend: sparselite.wasm (shipped in the wheel) through `js` / `pyodide.ffi`.

The module is compiled and instantiated synchronously (it is small), gets a minimal WASI
(a clock; no files), and tensors cross as whole byte ranges of its memory, never element
by element. Used when sys.platform == "emscripten"."""
import struct
import time
from importlib import resources

import js
from pyodide.ffi import create_proxy, to_js

from . import errors
from .model import ISA_BITS

_STATUS = {1: errors.InputError, 2: errors.InvalidModelError, 3: errors.UnsupportedError, 4: MemoryError,
           5: OSError, 6: errors.SparseliteError}
_DTYPES = {0: ("float32", 4), 2: ("int32", 4), 3: ("int64", 8), 4: ("uint16", 2), 5: ("uint32", 4)}
_INFO_BYTES = 84  # sl_tensor_info_t on wasm32: name, dtype, rank, shape[8], num_bytes, dynamic_axes, max_shape[8]
_PROFILE_BYTES = 72  # sl_op_profile_t on wasm32 (see the unpack format below)
_ERRNO_BADF = 8
_exports = None
_proxies = []  # the WASI imports must outlive the instance


def _memory():
    return js.Uint8Array.new(_exports.memory.buffer)


def _read(ptr, size):
    return bytes(js.Uint8Array.new(_exports.memory.buffer, ptr, size).to_py())


def _write(ptr, data):
    js.Uint8Array.new(_exports.memory.buffer, ptr, len(data)).assign(data)


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
        wasm = resources.files(__package__).joinpath("sparselite.wasm").read_bytes()

        def clock_time_get(_clock, _precision, out):
            js.DataView.new(_exports.memory.buffer).setBigUint64(out, js.BigInt(time.monotonic_ns()), True)
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

    def __init__(self, source, num_threads, isa_mask, tune):
        self._e = _runtime()
        self._m = self._e.sl_model_new()
        if not self._m:
            raise MemoryError("cannot allocate a sparselite model")
        self.threads = 1  # one thread in WASM; the count is accepted so code stays portable
        self._check(self._e.sl_model_set_isa_mask(self._m, isa_mask))
        self._check(self._e.sl_model_set_tuning(self._m, int(tune)))
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
            raise _STATUS.get(status, errors.SparseliteError)(_string(self._e.sl_model_last_error(self._m)))

    def _scratch(self, size, fill):
        ptr = self._e.malloc(size)
        try:
            return fill(ptr)
        finally:
            self._e.free(ptr)

    def _raw_info(self, kind, index):
        """(name, dtype, current shape, max shape, dynamic axes)."""
        def fill(ptr):
            self._check(getattr(self._e, f"sl_model_{kind}_info")(self._m, index, ptr))
            fields = struct.unpack("<III8iII8i", _read(ptr, _INFO_BYTES))
            name, dtype, rank = fields[:3]
            dynamic = tuple(d for d in range(rank) if fields[12] >> d & 1)
            return name, dtype, tuple(fields[3:3 + rank]), tuple(fields[13:13 + rank]), dynamic
        return self._scratch(_INFO_BYTES, fill)

    def _info(self, kind, index):
        name, dtype, _shape, max_shape, dynamic = self._raw_info(kind, index)
        return _string(name), max_shape, _DTYPES[dtype][0], dynamic

    def shape(self, kind, index):
        return self._raw_info(kind, index)[2]

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
        return self._scratch(4, fill), count * {n: s for n, s in _DTYPES.values()}[spec[2]]

    def set_input(self, index, data):
        ptr, _ = self._in[index]
        _write(ptr, data)

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
        def fill(ptr):
            out = []
            for i in range(self._e.sl_model_num_ops(self._m)):
                self._check(self._e.sl_model_op_profile(self._m, i, ptr))
                name, op, kernel, _pad, flops, dense, ns, runs, wbytes, abytes, r = struct.unpack(
                    "<IIIIddQQQQI4x", _read(ptr, _PROFILE_BYTES))
                out.append((_string(name), _string(op), _string(kernel), flops, dense, ns, runs, wbytes, abytes, r))
            return out
        return self._scratch(_PROFILE_BYTES, fill)


def cpu_isa():
    bits = _runtime().sl_cpu_isa()
    return [name for name, bit in ISA_BITS.items() if bits & bit]
