"""sparselite: run group-sparse neural networks from .slite files.

    model = sparselite.load("mobilenet_v2.slite")
    (logits,) = model.run(image)
"""
from .errors import ConversionError, InputError, InvalidModelError, SparseliteError, UnsupportedError
from .model import Model, TensorSpec, load

__version__ = "0.1.0"

__all__ = ["load", "Model", "TensorSpec", "SparseliteError", "InvalidModelError", "UnsupportedError",
           "InputError", "ConversionError", "__version__"]
