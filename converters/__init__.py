"""Converters: PyTorch models -> sparselite IR -> passes -> .slite.

    from sparselite.converters import from_torch, prune_groups
    prune_groups(model, density=0.1, group=4)
    from_torch(model, torch.randn(1, 3, 224, 224), weights="fp16").save("model.slite")
"""
from sparselite.errors import ConversionError

from .passes import run_all
from .sparsity import choose_group_size, encode_group_sparse, prune_groups
from .writer import serialize

__all__ = ["from_torch", "from_tflite", "from_onnx", "prune_groups", "ConvertedModel", "choose_group_size", "encode_group_sparse"]


class ConvertedModel:
    """A converted graph, ready to be saved as .slite."""

    def __init__(self, graph, weights, source_framework):
        self.graph = graph
        self.weights = weights
        self._bytes = serialize(graph, weights=weights, producer="sparselite.converters",
                                source_framework=source_framework)

    def to_bytes(self):
        return self._bytes

    def save(self, path):
        with open(path, "wb") as f:
            f.write(self._bytes)
        return path

    def layers(self):
        """(op name, type, weight density, group size) for each conv / fully connected op."""
        rows = []
        for op in self.graph.ops:
            if op.type in ("CONV2D", "FULLY_CONNECTED"):
                w = self.graph.tensors[op.inputs[1]]
                rows.append((op.name, op.type, float((w.data != 0).mean()), w.group_size))
        return rows


def from_torch(module, example_input, weights="fp32", sparse=True, input_names=None, output_names=None,
               metadata=None, dynamic_axes=None):
    """Converts a torch.nn.Module, traced with torch.export on `example_input`: a tensor, a tuple,
    or a dict of keyword arguments (its keys name the inputs). A Hugging Face encoder (BertModel...)
    is converted through `hf.Encoder` (inputs input_ids, attention_mask; output the last hidden
    state); wrap it yourself for sentence embeddings (pooling="mean", normalize=True).

    weights: "fp32" or "fp16" (half the file; widened to fp32 at load).
    sparse: detect zeros in 1x1 conv / linear weights and store them group-sparse where it pays.
    metadata: free-form str -> str pairs stored in the file (labels, preprocessing, ...).
    dynamic_axes: {input name: {axis: dimension name}}, e.g. {"input_ids": {1: "seq"}}: those
        axes may shrink at run time from the example's size (the maximum) down to 1."""
    from .torch_frontend import from_torch_graph
    from . import hf

    if hf.is_encoder(module):
        module = hf.Encoder(module)
    graph = from_torch_graph(module, example_input, dynamic_axes)
    run_all(graph, sparse=sparse)
    if input_names is None and isinstance(example_input, dict):
        input_names = list(graph.inputs)   # already the keyword names
    _rename(graph, graph.inputs, input_names, "input")
    _rename(graph, graph.outputs, output_names, "output")
    graph.metadata.update({str(k): str(v) for k, v in (metadata or {}).items()})
    return ConvertedModel(graph, weights, source_framework="pytorch")


def from_tflite(path_or_bytes, weights=None, sparse=True, metadata=None, progress=None):
    """Converts a float .tflite model (fp32, or fp16 weights feeding DEQUANTIZE; sparse weights
    feeding DENSIFY keep their structure). Inputs and outputs keep their TFLite names, shapes and
    NHWC layout; inside, activations are NCHW.

    weights: "fp32" or "fp16"; None keeps the model's own precision (fp16 if its weights were).
    sparse: also detect zeros in dense 1x1 conv / fully connected weights (as from_torch).
    progress: called as progress(done, total) while operators convert (the CLI draws a bar).
    Quantized (int8) models raise ConversionError naming the tensor."""
    from .tflite_frontend import from_tflite_graph

    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    if data[4:8] != b"TFL3":
        raise ConversionError("not a TFLite model (the file identifier is not TFL3)")
    graph, output_names, fp16 = from_tflite_graph(data, progress)
    run_all(graph, sparse=sparse)
    _rename(graph, graph.outputs, output_names, "output")
    graph.metadata.update({str(k): str(v) for k, v in (metadata or {}).items()})
    return ConvertedModel(graph, weights or ("fp16" if fp16 else "fp32"), source_framework="tflite")


def from_onnx(path_or_model, weights=None, sparse=True, metadata=None, progress=None):
    """Converts an ONNX model (a path, bytes or onnx.ModelProto; opset 13-20, static shapes, as
    torch.onnx.export writes): the conv-net ops, and the transformer ops of BERT exports (MatMul,
    Gemm, LayerNormalization, erf GELU, Softmax, Gather, Transpose, Reshape, masks). Inputs and
    outputs keep their ONNX names.

    weights: "fp32" (default) or "fp16". sparse: store zero-heavy 1x1 conv / linear weights
    group-sparse (as from_torch). progress(done, total) is called as nodes convert."""
    import onnx

    from .onnx_frontend import from_onnx_graph

    if isinstance(path_or_model, onnx.ModelProto):
        model = path_or_model
    elif isinstance(path_or_model, (bytes, bytearray, memoryview)):
        model = onnx.load_from_string(bytes(path_or_model))
    else:
        model = onnx.load(path_or_model)
    graph, output_names = from_onnx_graph(model, progress)
    run_all(graph, sparse=sparse)
    _rename(graph, graph.outputs, output_names, "output")
    graph.metadata.update({str(k): str(v) for k, v in (metadata or {}).items()})
    return ConvertedModel(graph, weights or "fp32", source_framework="onnx")


def _rename(graph, names, new_names, prefix):
    if new_names is None:
        new_names = [prefix if len(names) == 1 else f"{prefix}_{i}" for i in range(len(names))]
    if len(new_names) != len(names):
        raise ValueError(f"expected {len(names)} {prefix} names, got {len(new_names)}")
    for old, new in zip(list(names), new_names):
        if old == new:
            continue
        if new in graph.tensors:
            raise ValueError(f"{prefix} name '{new}' is already used by a tensor")
        t = graph.tensors.pop(old)
        t.name = new
        graph.tensors[new] = t
        for op in graph.ops:
            op.inputs = [new if x == old else x for x in op.inputs]
            op.outputs = [new if x == old else x for x in op.outputs]
        graph.inputs = [new if x == old else x for x in graph.inputs]
        graph.outputs = [new if x == old else x for x in graph.outputs]
