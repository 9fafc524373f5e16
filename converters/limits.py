"""Limits the converters enforce on what a source file claims, checked before anything is allocated.

A .tflite or .onnx file is untrusted input: a few hundred bytes can claim a tensor of 2^40 elements,
a constant fold that allocates gigabytes, or a loop of 10^9 iterations. Every frontend checks claims
against these limits first and raises ConversionError naming the tensor or node and the limit. They
are module constants: a caller that trusts its models may raise them before converting.
"""
from sparselite.errors import ConversionError

MAX_RANK = 8                        # the runtime's SL_MAX_RANK
MAX_DIM = (1 << 31) - 1             # a dimension is a schema int32
MAX_ELEMENTS = 1 << 31              # elements of one tensor (the runtime's verifier refuses more)

# Values the converter computes rather than copies from the file: ONNX constant folds and TFLite
# sparse weights made dense. Their size is not bounded by the file's, so it is bounded here.
MAX_COMPUTED_ELEMENTS = 1 << 24     # one computed value: 16M elements ...
MAX_COMPUTED_BYTES = 1 << 26        # ... and 64 MiB
MAX_COMPUTED_TOTAL_BYTES = 1 << 28  # all computed values of one conversion together: 256 MiB


def num_elements(shape):
    """The product of a shape, as a Python int (no overflow)."""
    n = 1
    for d in shape:
        n *= int(d)
    return n


def check_shape(shape, what):
    """Fails unless `shape` is a runtime-representable tensor shape: rank <= MAX_RANK, every
    dimension in 1..MAX_DIM, at most MAX_ELEMENTS elements. Returns it as a tuple of ints."""
    shape = tuple(int(d) for d in shape)
    if len(shape) > MAX_RANK:
        raise ConversionError(f"{what} has rank {len(shape)}: at most {MAX_RANK} dimensions are supported")
    if any(d < 1 or d > MAX_DIM for d in shape):
        raise ConversionError(f"{what} has shape {list(shape)}: every dimension must be in 1..{MAX_DIM}")
    if num_elements(shape) > MAX_ELEMENTS:
        raise ConversionError(f"{what} has shape {list(shape)} ({num_elements(shape)} elements): at most "
                              f"{MAX_ELEMENTS} elements per tensor")
    return shape


class ComputeBudget:
    """Accounts for the values a conversion computes: each within MAX_COMPUTED_ELEMENTS /
    MAX_COMPUTED_BYTES, all together within MAX_COMPUTED_TOTAL_BYTES. `reserve` is called with the
    size a value *will* have, before it is allocated."""

    def __init__(self):
        self.used = 0

    def reserve(self, elements, itemsize, what):
        elements = int(elements)
        nbytes = elements * int(itemsize)
        if elements > MAX_COMPUTED_ELEMENTS or nbytes > MAX_COMPUTED_BYTES:
            raise ConversionError(f"{what} would have {elements} elements ({nbytes} bytes): computed values are "
                                  f"limited to {MAX_COMPUTED_ELEMENTS} elements and {MAX_COMPUTED_BYTES} bytes "
                                  "(sparselite.converters.limits)")
        if self.used + nbytes > MAX_COMPUTED_TOTAL_BYTES:
            raise ConversionError(f"{what} would bring the values computed during conversion to "
                                  f"{self.used + nbytes} bytes: the limit is {MAX_COMPUTED_TOTAL_BYTES} "
                                  "(sparselite.converters.limits)")
        self.used += nbytes
