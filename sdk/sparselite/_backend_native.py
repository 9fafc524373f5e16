"""The native backend: the C runtime through cffi (sparselite._native)."""
from math import prod

from . import errors
from ._abi import DTYPES, ISA_BITS
from ._native import ffi, lib

_ITEMSIZE = dict(DTYPES.values())
_SIZE_MAX = 2 ** (8 * ffi.sizeof("size_t")) - 1


class NativeModel:
    """Owns one sl_model_t; freed with the Python object."""

    def __init__(self, source, num_threads, isa_mask, tune, max_memory_bytes, band_rows=-1, winograd_tile=-1,
                 fp16=False):
        self._m = ffi.gc(lib.sl_model_new(), lib.sl_model_free)
        if self._m == ffi.NULL:
            raise MemoryError("cannot allocate a sparselite model")
        self.threads = num_threads
        self._check(lib.sl_model_set_num_threads(self._m, num_threads))
        self._check(lib.sl_model_set_isa_mask(self._m, isa_mask))
        self._check(lib.sl_model_set_tuning(self._m, int(tune)))
        self._check(lib.sl_model_set_fusion(self._m, band_rows))
        self._check(lib.sl_model_set_winograd(self._m, winograd_tile))
        self._check(lib.sl_model_set_precision(self._m, lib.SL_PRECISION_FP16 if fp16 else lib.SL_PRECISION_FP32))
        if max_memory_bytes is not None:  # past size_t: no limit
            self._check(lib.sl_model_set_memory_limit(self._m, min(max_memory_bytes, _SIZE_MAX)))
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            self._check(lib.sl_model_load_buffer(self._m, data, len(data), 1))
        else:
            self._check(lib.sl_model_load_file(self._m, str(source).encode()))
        # Per input and output as little as possible: a file may declare a million of them.
        info, names = ffi.new("sl_tensor_info_t*"), {}
        self.inputs = [self._info(lib.sl_model_input_info, i, info, names)
                       for i in range(lib.sl_model_num_inputs(self._m))]
        self.outputs = [self._info(lib.sl_model_output_info, i, info, names)
                        for i in range(lib.sl_model_num_outputs(self._m))]
        self._slot = ffi.new("void**")
        self._in, self._out = {}, {}   # arena pointers, fetched on first use; valid for the model's life

    def _check(self, status):
        if status != lib.SL_OK:
            message = ffi.string(lib.sl_model_last_error(self._m)).decode("utf-8", "replace")
            raise errors.error_for_status(status, message)

    def _info(self, fn, index, info, names):
        """(name, max shape, dtype, dynamic axes). Names are decoded once per string in the file
        (tensors may share one) and never fail: the file's bytes need not be UTF-8."""
        self._check(fn(self._m, index, info))
        rank, axes = info.rank, info.dynamic_axes
        address = int(ffi.cast("uintptr_t", info.name))
        name = names.get(address)
        if name is None:
            name = names[address] = ffi.string(info.name).decode("utf-8", "replace")
        dynamic = tuple(d for d in range(rank) if axes >> d & 1) if axes else ()
        return name, tuple(info.max_shape)[:rank], DTYPES[info.dtype][0], dynamic

    def _slot_of(self, table, fn, index, spec):
        """(pointer, bytes at the maximum shape) of an input or output in the arena."""
        slot = table.get(index)
        if slot is None:
            self._check(fn(self._m, index, self._slot))
            slot = table[index] = self._slot[0], prod(spec[1]) * _ITEMSIZE[spec[2]]
        return slot

    def shape(self, kind, index):
        """An input's or output's current shape."""
        info = ffi.new("sl_tensor_info_t*")
        self._check((lib.sl_model_input_info if kind == "input" else lib.sl_model_output_info)(self._m, index, info))
        return tuple(info.shape[d] for d in range(info.rank))

    def resize_input(self, index, shape):
        self._check(lib.sl_model_resize_input(self._m, index, len(shape), ffi.new("int32_t[]", list(shape))))

    def set_input(self, index, data):
        """data: a C-contiguous buffer (numpy array or memoryview) of the input's current size."""
        ptr, size = self._slot_of(self._in, lib.sl_model_input_data, index, self.inputs[index])
        if data.nbytes > size:
            raise errors.InputError(f"input {index} holds {size} bytes, got {data.nbytes}")
        ffi.memmove(ptr, data, data.nbytes)

    def run(self):
        self._check(lib.sl_model_run(self._m))

    def output(self, index, size):
        ptr, most = self._slot_of(self._out, lib.sl_model_output_data, index, self.outputs[index])
        out = bytearray(min(size, most))
        ffi.memmove(out, ptr, len(out))
        return out

    @property
    def arena_bytes(self):
        return lib.sl_model_arena_bytes(self._m)

    @property
    def scratch_bytes(self):
        return lib.sl_model_scratch_bytes(self._m)

    def set_profiling(self, enable):
        self._check(lib.sl_model_set_profiling(self._m, int(enable)))

    def op_profiles(self):
        """[(name, type, kernel, flops, dense_flops, time_ns, runs, weight_bytes, activation_bytes, group_size,
        fused_into)]
        in execution order."""
        p = ffi.new("sl_op_profile_t*")
        out = []
        for i in range(lib.sl_model_num_ops(self._m)):
            self._check(lib.sl_model_op_profile(self._m, i, p))
            out.append((ffi.string(p.name).decode(), ffi.string(p.type).decode(), ffi.string(p.kernel).decode(),
                        p.flops, p.dense_flops, p.time_ns, p.runs, p.weight_bytes, p.activation_bytes,
                        p.group_size, p.fused_into))
        return out


def _isa_names(bits):
    return [name for name, bit in ISA_BITS.items() if bits & bit]


def cpu_isa():
    return _isa_names(lib.sl_cpu_isa())


def kernels():
    return [(ffi.string(lib.sl_kernel_name(i)).decode(), _isa_names(lib.sl_kernel_isa(i)))
            for i in range(lib.sl_kernel_count())]
