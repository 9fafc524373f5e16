"""sparselite: run group-sparse neural networks from .slite files.

    model = sparselite.load("mobilenet_v2.slite")
    (logits,) = model.run(image)
"""
from .errors import ConversionError, InputError, InvalidModelError, SparseliteError, UnsupportedError
from .model import Model, OpProfile, Tensor, TensorSpec, load


def _backend():
    import sys

    if sys.platform == "emscripten":
        from . import _backend_wasm as backend
    else:
        from . import _backend_native as backend
    return backend


def cpu_isa():
    """The SIMD instruction sets sparselite's kernels use here, e.g. ['sse2', 'avx2'], or
    ['wasm_simd128'] in Pyodide."""
    return _backend().cpu_isa()


def kernels():
    """Every microkernel of this build as (name, instruction sets it needs), e.g.
    ('sl_f32_spmm_ukernel_24x4__avx2', ['avx2']); profiles name the one each op runs."""
    return _backend().kernels()


__version__ = "0.1.0"

__all__ = ["load", "cpu_isa", "kernels", "Model", "OpProfile", "Tensor", "TensorSpec", "SparseliteError", "InvalidModelError", "UnsupportedError",
           "InputError", "ConversionError", "__version__"]
