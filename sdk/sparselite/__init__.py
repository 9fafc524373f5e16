"""sparselite: run group-sparse neural networks from .slite files.

    model = sparselite.load("mobilenet_v2.slite")
    (logits,) = model.run(image)
"""
from .errors import ConversionError, InputError, InvalidModelError, SparseliteError, UnsupportedError
from .model import Model, OpProfile, TensorSpec, load


def cpu_isa():
    """The SIMD instruction sets this CPU offers sparselite's kernels, e.g. ['sse2', 'avx2']."""
    from ._backend_native import cpu_isa as native_cpu_isa

    return native_cpu_isa()


__version__ = "0.1.0"

__all__ = ["load", "cpu_isa", "Model", "OpProfile", "TensorSpec", "SparseliteError", "InvalidModelError", "UnsupportedError",
           "InputError", "ConversionError", "__version__"]
