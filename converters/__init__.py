"""Converters: PyTorch models -> sparselite IR -> passes -> .slite.

    from sparselite.converters import from_torch, prune_groups
    prune_groups(model, density=0.1, group=4)
    from_torch(model, torch.randn(1, 3, 224, 224), weights="fp16").save("model.slite")
"""
import os
import secrets
import struct

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
        """Writes the .slite atomically: to a new file in the same directory, then renamed over
        `path`. A runtime that has `path` loaded (mmap) keeps reading the old file; a reader never
        sees a half-written one; a failed save leaves `path` as it was."""
        path = os.fspath(path)
        target = os.path.realpath(path) if os.path.islink(path) else path   # replace the file, keep the link
        directory, name = os.path.split(os.path.abspath(target))
        while True:
            tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
            try:   # created with the mode open() would give it (0o666 less the umask)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
                break
            except FileExistsError:
                continue
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self._bytes)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
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
    or a dict of keyword arguments (its keys name the inputs). A Hugging Face encoder (BERT,
    DistilBERT, RoBERTa, XLM-R, MPNet, ALBERT, ELECTRA, MobileBERT, DeBERTa-v2, ViT, DeiT, the Whisper
    and Wav2Vec2 encoders) is converted through `hf.Encoder`: the inputs the example names
    (input_ids, attention_mask, token_type_ids; pixel_values; input_features; input_values), output
    the last hidden state; wrap it yourself for sentence embeddings (pooling="mean", normalize=True).

    weights: "fp32" or "fp16" (half the file; widened to fp32 at load).
    sparse: detect zeros in 1x1 conv / linear weights and store them group-sparse where it pays.
    metadata: free-form str -> str pairs stored in the file (labels, preprocessing, ...).
    dynamic_axes: {input name: {axis: dimension name}}, e.g. {"input_ids": {1: "seq"}}: those
        axes may shrink at run time from the example's size (the maximum) down to 1."""
    from .torch_frontend import from_torch_graph
    from . import hf

    if hf.wraps(module):
        module = hf.Encoder(module)
    if isinstance(module, hf.Encoder):
        module.check_dynamic_axes(dynamic_axes)
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

    _check_weights(weights)
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    if data[4:8] != b"TFL3":
        raise ConversionError("not a TFLite model (the file identifier is not TFL3)")
    graph, output_names, fp16 = from_tflite_graph(data, progress)
    return _finish(graph, sparse, output_names, metadata, weights or ("fp16" if fp16 else "fp32"), "tflite")


def from_onnx(path_or_model, weights=None, sparse=True, metadata=None, progress=None, external_data_dir=None,
              dims=None, fixed_dims=None):
    """Converts an ONNX model (a path, bytes or onnx.ModelProto; opset 13-20, as torch.onnx.export
    writes, with either exporter): the conv-net ops, and the transformer ops of Hugging Face encoder
    exports (MatMul, Gemm, LayerNormalization, GELU, Softmax, Gather, masks with boolean ops and
    Where, position ids with CumSum). Inputs and outputs keep their ONNX names.

    dims: {name: maximum} for dimensions the inputs name (an export's dynamic axes, e.g.
        {"batch": 8, "seq": 128}): the model then runs at any size from 1 to the maximum (1 fixes
        it). fixed_dims: {name: size} for named dimensions that stay at one size. Every named
        dimension needs one or the other; onnx_dynamic says what may vary.
    weights: "fp32" (default) or "fp16". sparse: store zero-heavy 1x1 conv / linear weights
    group-sparse (as from_torch). progress(done, total) is called as nodes convert.
    external_data_dir: the only directory tensors stored outside the model file are read from
    (locations relative to it, never leaving it). Default: the model file's directory when given a
    path; none for a ModelProto (pass it to allow); bytes never read other files. A malformed model
    raises ConversionError saying what is wrong."""
    from . import onnx_dynamic
    from .onnx_frontend import from_onnx_graph, load_model

    _check_weights(weights)
    model = load_model(path_or_model, external_data_dir)
    if dims or fixed_dims or onnx_dynamic.named_dims(model):
        dims, fixed_dims = dict(dims or {}), dict(fixed_dims or {})
        try:
            graph, output_names = onnx_dynamic.convert(model, dims, fixed_dims, progress,
                                                       lambda g: run_all(g, sparse=sparse))
        except ConversionError:
            raise
        except _MALFORMED as e:
            raise ConversionError(f"the onnx model is inconsistent (converting its dynamic dimensions): "
                                  f"{type(e).__name__}: {e}") from e
        return _finish(graph, sparse, output_names, metadata, weights or "fp32", "onnx", optimized=True)
    graph, output_names = from_onnx_graph(model, progress)
    return _finish(graph, sparse, output_names, metadata, weights or "fp32", "onnx")


def _check_weights(weights):
    if weights not in (None, "fp32", "fp16"):
        raise ValueError(f"weights must be 'fp32' or 'fp16', got {weights!r}")


# What an IR that a frontend built from a malformed file can make the passes and the writer raise.
_MALFORMED = (IndexError, KeyError, ValueError, TypeError, AttributeError, ZeroDivisionError, OverflowError,
              struct.error)


def _finish(graph, sparse, output_names, metadata, weights, source, optimized=False):
    """Passes (unless already run: then only the check, as the graph gained dynamic axes since)
    and writer for an imported graph; failures become ConversionError (chained)."""
    stage = "optimizing the graph"
    try:
        if optimized:
            graph.check()
        else:
            run_all(graph, sparse=sparse)
        _rename(graph, graph.outputs, output_names, "output")
        graph.metadata.update({str(k): str(v) for k, v in (metadata or {}).items()})
        stage = "writing the .slite"
        return ConvertedModel(graph, weights, source_framework=source)
    except ConversionError:
        raise
    except _MALFORMED as e:
        raise ConversionError(f"the {source} model is inconsistent ({stage}): {type(e).__name__}: {e}") from e


def _rename(graph, names, new_names, prefix):
    """Renames the tensors `names` (graph inputs or outputs) to `new_names`, in one sweep."""
    if new_names is None:
        new_names = [prefix if len(names) == 1 else f"{prefix}_{i}" for i in range(len(names))]
    if len(new_names) != len(names):
        raise ConversionError(f"expected {len(names)} {prefix} names, got {len(new_names)}")
    mapping = {}
    for old, new in zip(names, new_names):
        if old == new or mapping.get(old) == new:
            continue
        if old in mapping or new in graph.tensors or new in mapping.values():
            raise ConversionError(f"{prefix} name '{new}' is already used by a tensor")
        mapping[old] = new
    if not mapping:
        return
    for old, new in mapping.items():
        t = graph.tensors.pop(old)
        t.name = new
        graph.tensors[new] = t
    for op in graph.ops:
        op.inputs = [mapping.get(x, x) for x in op.inputs]
        op.outputs = [mapping.get(x, x) for x in op.outputs]
    graph.inputs = [mapping.get(x, x) for x in graph.inputs]
    graph.outputs = [mapping.get(x, x) for x in graph.outputs]
