"""sparselite: run group-sparse neural networks from .slite files.

    model = sparselite.load("mobilenet_v2.slite")
    (logits,) = model.run(image)
"""
from .errors import ConversionError, InputError, InvalidModelError, SparseliteError, UnsupportedError
from .model import Model, OpProfile, Tensor, TensorSpec, load


def cpu_isa():
    """The SIMD instruction sets sparselite's kernels use here, e.g. ['sse2', 'avx2'], or
    ['wasm_simd128'] in Pyodide."""
    import sys

    if sys.platform == "emscripten":
        from ._backend_wasm import cpu_isa as backend_cpu_isa
    else:
        from ._backend_native import cpu_isa as backend_cpu_isa
    return backend_cpu_isa()


__version__ = "0.1.0"

__all__ = ["load", "cpu_isa", "Model", "OpProfile", "Tensor", "TensorSpec", "SparseliteError", "InvalidModelError", "UnsupportedError",
           "InputError", "ConversionError", "__version__"]
