"""The native backend: the C runtime through cffi (sparselite._native)."""
from math import prod

from . import errors
from ._abi import DTYPES, ISA_BITS
from ._native import ffi, lib

_ITEMSIZE = dict(DTYPES.values())


class NativeModel:
    """Owns one sl_model_t; freed with the Python object."""

    def __init__(self, source, num_threads, isa_mask, tune):
        self._m = ffi.gc(lib.sl_model_new(), lib.sl_model_free)
        if self._m == ffi.NULL:
            raise MemoryError("cannot allocate a sparselite model")
        self.threads = num_threads
        self._check(lib.sl_model_set_num_threads(self._m, num_threads))
        self._check(lib.sl_model_set_isa_mask(self._m, isa_mask))
        self._check(lib.sl_model_set_tuning(self._m, int(tune)))
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            self._check(lib.sl_model_load_buffer(self._m, data, len(data), 1))
        else:
            self._check(lib.sl_model_load_file(self._m, str(source).encode()))
        self.inputs = [self._info(lib.sl_model_input_info, i) for i in range(lib.sl_model_num_inputs(self._m))]
        self.outputs = [self._info(lib.sl_model_output_info, i) for i in range(lib.sl_model_num_outputs(self._m))]
        # Arena pointers stay valid for the model's life: runs allocate nothing.
        self._in = [self._buffer(lib.sl_model_input_data, i, spec) for i, spec in enumerate(self.inputs)]
        self._out = [self._buffer(lib.sl_model_output_data, i, spec) for i, spec in enumerate(self.outputs)]

    def _check(self, status):
        if status != lib.SL_OK:
            message = ffi.string(lib.sl_model_last_error(self._m)).decode("utf-8", "replace")
            raise errors.error_for_status(status, message)

    def _info(self, fn, index):
        """(name, max shape, dtype, dynamic axes)."""
        info = ffi.new("sl_tensor_info_t*")
        self._check(fn(self._m, index, info))
        shape = tuple(info.max_shape[d] for d in range(info.rank))
        dynamic = tuple(d for d in range(info.rank) if info.dynamic_axes >> d & 1)
        return ffi.string(info.name).decode(), shape, DTYPES[info.dtype][0], dynamic

    def _buffer(self, fn, index, spec):
        ptr = ffi.new("void**")
        self._check(fn(self._m, index, ptr))
        return ffi.buffer(ptr[0], prod(spec[1]) * _ITEMSIZE[spec[2]])

    def shape(self, kind, index):
        """An input's or output's current shape."""
        info = ffi.new("sl_tensor_info_t*")
        self._check((lib.sl_model_input_info if kind == "input" else lib.sl_model_output_info)(self._m, index, info))
        return tuple(info.shape[d] for d in range(info.rank))

    def resize_input(self, index, shape):
        self._check(lib.sl_model_resize_input(self._m, index, len(shape), ffi.new("int32_t[]", list(shape))))

    def set_input(self, index, data):
        self._in[index][:len(data)] = data

    def run(self):
        self._check(lib.sl_model_run(self._m))

    def output(self, index, size):
        return bytearray(self._out[index][:size])

    @property
    def arena_bytes(self):
        return lib.sl_model_arena_bytes(self._m)

    @property
    def scratch_bytes(self):
        return lib.sl_model_scratch_bytes(self._m)

    def set_profiling(self, enable):
        self._check(lib.sl_model_set_profiling(self._m, int(enable)))

    def op_profiles(self):
        """[(name, type, kernel, flops, dense_flops, time_ns, runs, weight_bytes, activation_bytes, group_size)]
        in execution order."""
        p = ffi.new("sl_op_profile_t*")
        out = []
        for i in range(lib.sl_model_num_ops(self._m)):
            self._check(lib.sl_model_op_profile(self._m, i, p))
            out.append((ffi.string(p.name).decode(), ffi.string(p.type).decode(), ffi.string(p.kernel).decode(),
                        p.flops, p.dense_flops, p.time_ns, p.runs, p.weight_bytes, p.activation_bytes,
                        p.group_size))
        return out


def _isa_names(bits):
    return [name for name, bit in ISA_BITS.items() if bits & bit]


def cpu_isa():
    return _isa_names(lib.sl_cpu_isa())


def kernels():
    return [(ffi.string(lib.sl_kernel_name(i)).decode(), _isa_names(lib.sl_kernel_isa(i)))
            for i in range(lib.sl_kernel_count())]
