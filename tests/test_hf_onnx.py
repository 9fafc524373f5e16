"""Raw torch.onnx.export of Hugging Face encoders (transformers 5.x, small random-init configs, no
wrapper) through from_onnx, against onnxruntime on the same file and against the torch model
exported: the default (dynamo) exporter for all fourteen, the legacy one for those it exports; two
lengths and a padded batch from one load (dynamic batch and sequence), dense and 80% 4x1-pruned."""
import copy
import io
from typing import NamedTuple

import numpy as np
import pytest
import torch

import sparselite
from helpers import rel_err
from sparselite.converters import from_onnx, prune_groups, zoo

HIDDEN, LAYERS, HEADS, FFN = 64, 2, 4, 128
MAX_BATCH, MAX_SEQ = 3, 16
SIZES = {"batch": MAX_BATCH, "seq": MAX_SEQ, "samples": 800}   # the exports' dynamic dimensions, at most
TEXT_CASES = [(3, 16, [0, 5, 11]), (1, 5, [0]), (2, 9, [0, 4])]   # batch, length, padding per row
BATCHES = [3, 1, 2]


def _transformers():
    zoo.allow_torchvision_import()
    import transformers

    return transformers


def _seeded(model):
    """Every parameter moved off its initial value (zero biases, unit norms would hide mistakes)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def _text(config_name, model_name, pad=0, **config):
    def make():
        t = _transformers()
        sizes = dict(vocab_size=1000, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                     intermediate_size=FFN, max_position_embeddings=130, pad_token_id=pad)
        torch.manual_seed(0)
        return _seeded(getattr(t, model_name)(getattr(t, config_name)(**{**sizes, **config})))
    return make


def _vision(config_name, model_name):
    def make():
        t = _transformers()
        config = getattr(t, config_name)(image_size=32, patch_size=8, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                         num_attention_heads=HEADS, intermediate_size=FFN)
        torch.manual_seed(0)
        return _seeded(getattr(t, model_name)(config, add_pooling_layer=False))
    return make


def _whisper():
    t = _transformers()
    config = t.WhisperConfig(d_model=HIDDEN, encoder_layers=LAYERS, encoder_attention_heads=HEADS,
                             encoder_ffn_dim=FFN, num_mel_bins=16, max_source_positions=32, decoder_layers=1,
                             decoder_attention_heads=HEADS, decoder_ffn_dim=FFN, vocab_size=100,
                             max_target_positions=16, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                             decoder_start_token_id=1)
    torch.manual_seed(0)
    return _seeded(t.WhisperModel(config).get_encoder())


def _wav2vec2():
    t = _transformers()
    config = t.Wav2Vec2Config(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                              intermediate_size=FFN, conv_dim=(32, 32, 32), conv_kernel=(10, 3, 3),
                              conv_stride=(5, 2, 2), feat_extract_norm="group", num_conv_pos_embeddings=16,
                              num_conv_pos_embedding_groups=4, vocab_size=32)
    torch.manual_seed(0)
    return _seeded(t.Wav2Vec2Model(config))


DEBERTA = dict(relative_attention=True, position_buckets=32, pos_att_type=["p2c", "c2p"], max_relative_positions=-1,
               norm_rel_ebd="layer_norm", position_biased_input=False)
# name: (model factory, inputs kind, dimensions from_onnx fixes)
FAMILIES = {
    "bert": (_text("BertConfig", "BertModel", type_vocab_size=2), "pair", ()),
    "distilbert": (_text("DistilBertConfig", "DistilBertModel", dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS,
                         hidden_dim=FFN), "text", ()),
    "roberta": (_text("RobertaConfig", "RobertaModel", pad=1), "text", ()),
    "xlm-roberta": (_text("XLMRobertaConfig", "XLMRobertaModel", pad=1), "text", ()),
    "mpnet": (_text("MPNetConfig", "MPNetModel", pad=1), "text", ()),
    "albert": (_text("AlbertConfig", "AlbertModel", embedding_size=32), "text", ()),
    "electra": (_text("ElectraConfig", "ElectraModel", embedding_size=HIDDEN), "text", ()),
    "electra-small": (_text("ElectraConfig", "ElectraModel", embedding_size=32), "text", ()),
    "mobilebert": (_text("MobileBertConfig", "MobileBertModel", embedding_size=32, intra_bottleneck_size=32,
                         true_hidden_size=32), "text", ()),
    # DeBERTa's attention runs over [batch * heads, ...], held as [batch, heads, ...].
    "deberta-v2": (_text("DebertaV2Config", "DebertaV2Model", **DEBERTA), "text", ()),
    "vit": (_vision("ViTConfig", "ViTModel"), "image", ()),
    "deit": (_vision("DeiTConfig", "DeiTModel"), "image", ()),
    "whisper-encoder": (_whisper, "mel", ()),
    # The feature extractor's strided convolutions compute the frames from the samples.
    "wav2vec2": (_wav2vec2, "audio", ()),
}
# transformers 5.x's BERT, RoBERTa, XLM-R and ELECTRA do not trace with the legacy exporter
# ("forward() got multiple values for argument 'use_cache'"), so the legacy ones are the others.
LEGACY = ["distilbert", "mpnet", "albert", "mobilebert", "deberta-v2", "vit", "whisper-encoder", "wav2vec2"]


def _inputs(kind, batch, seq=MAX_SEQ, pads=None, pad_id=0, seed=0):
    """{name: array} for a family's inputs; text rows end in `pads` padding tokens."""
    rng = np.random.default_rng(seed)
    if kind == "image":
        return {"pixel_values": rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)}
    if kind == "mel":
        return {"input_features": rng.standard_normal((batch, 16, 64)).astype(np.float32)}
    if kind == "audio":   # seq: the samples
        return {"input_values": rng.standard_normal((batch, SIZES["samples"] if seq == MAX_SEQ else seq))
                .astype(np.float32)}
    ids = rng.integers(5, 1000, (batch, seq)).astype(np.int64)
    mask = np.ones((batch, seq), np.int64)
    for row, pad in enumerate(pads or [0] * batch):
        ids[row, seq - pad:], mask[row, seq - pad:] = pad_id, 0
    feeds = {"input_ids": ids, "attention_mask": mask}
    if kind == "pair":   # sentence pairs: the second segment from the middle on
        types = np.zeros_like(ids)
        types[:, seq // 2:] = 1
        feeds["token_type_ids"] = types * mask
    return feeds


def _axes(kind):
    """{input: {axis: dimension name}} of a family's inputs."""
    per_kind = {"image": {"pixel_values": {0: "batch"}}, "mel": {"input_features": {0: "batch"}},
                "audio": {"input_values": {0: "batch", 1: "samples"}}}
    text = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    return per_kind.get(kind, dict(text, token_type_ids=text["input_ids"]) if kind == "pair" else text)


def _pad_id(model):
    return getattr(model.config, "pad_token_id", None) or 0


def export(model, kind, dynamo=True):
    """torch.onnx.export as a user calls it, every batch and length axis dynamic; the default
    exporter is torch.export-based (dynamo) since torch 2.9."""
    feeds = {k: torch.from_numpy(v) for k, v in _inputs(kind, MAX_BATCH, pad_id=_pad_id(model)).items()}
    axes = _axes(kind)
    buf = io.BytesIO()
    if dynamo:
        dims = {d: torch.export.Dim(d, max=SIZES[d]) for per_input in axes.values() for d in per_input.values()}
        shapes = {name: {a: dims[d] for a, d in per_input.items()} for name, per_input in axes.items()}
        torch.onnx.export(model, (), buf, kwargs=feeds, input_names=list(feeds), output_names=["last_hidden_state"],
                          dynamic_shapes=shapes)
    else:
        torch.onnx.export(model, tuple(feeds.values()), buf, input_names=list(feeds),
                          output_names=["last_hidden_state"], dynamic_axes=axes, dynamo=False)
    return buf.getvalue()


def pruned(data, density=0.2):
    """The ONNX model with every MatMul / Gemm weight pruned by prune_groups (4x1 groups of output
    channels), as if the torch model had been pruned before export."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(data)
    initializers = {t.name: t for t in model.graph.initializer}
    done = set()
    for node in model.graph.node:
        name = node.input[1] if node.op_type in ("MatMul", "Gemm") else None
        if name not in initializers or name in done or len(initializers[name].dims) != 2:
            continue
        transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
        w = numpy_helper.to_array(initializers[name])
        rows = w if transposed else w.T   # [out, in]
        linear = torch.nn.Linear(rows.shape[1], rows.shape[0], bias=False)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(rows)))
        prune_groups(linear, density, group=4)
        rows = linear.weight.detach().numpy()
        initializers[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(rows if transposed else rows.T), name))
        done.add(name)
    assert done
    return model.SerializeToString()


def convert(data, kind, fixed):
    names = {d for per_input in _axes(kind).values() for d in per_input.values()}
    return from_onnx(data, dims={d: SIZES[d] for d in names if d not in fixed},
                     fixed_dims={d: SIZES[d] for d in names if d in fixed})


def cases(kind, fixed, pad_id):
    """Inputs at two lengths and a padded batch (the batch stays whole where it is fixed)."""
    if kind in ("text", "pair"):
        return [_inputs(kind, MAX_BATCH, s, (pads + [0] * MAX_BATCH)[:MAX_BATCH], pad_id, seed=s) if "batch" in fixed
                else _inputs(kind, b, s, pads, pad_id, seed=s) for b, s, pads in TEXT_CASES]
    samples = [SIZES["samples"], 555, 333] if kind == "audio" and "samples" not in fixed else [MAX_SEQ] * 3
    return [_inputs(kind, MAX_BATCH if "batch" in fixed else b, samples[k], seed=k) for k, b in enumerate(BATCHES)]


def ort_run(data, feeds):
    import onnxruntime as ort

    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)


class Export(NamedTuple):
    kind: str
    fixed: tuple
    pad_id: int
    data: bytes            # the default export
    pruned: bytes          # the same with every MatMul / Gemm weight pruned (pruned())
    model: torch.nn.Module
    pruned_model: torch.nn.Module   # the model through prune_groups: the weights `pruned` holds


_EXPORTS = {}


def exported(name):
    """A family's Export, exported once."""
    if name not in _EXPORTS:
        make, kind, fixed = FAMILIES[name]
        model = make()
        data = export(model, kind)
        pruned_model = copy.deepcopy(model)
        prune_groups(pruned_model, 0.2, group=4)
        _EXPORTS[name] = Export(kind, fixed, _pad_id(model), data, pruned(data), model, pruned_model)
    return _EXPORTS[name]


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    return exported(request.param)


def _check(data, converted, kind, fixed, pad_id, torch_model):
    """One load runs every case within 1e-4 of onnxruntime on the same file and of the torch model
    that was exported."""
    model = sparselite.load(converted.to_bytes())   # one load for every size
    for feeds in cases(kind, fixed, pad_id):
        outputs, refs = model.run(feeds), ort_run(data, feeds)
        with torch.no_grad():
            torch_refs = torch_model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).to_tuple()
        # the last hidden state, and a pooler's output (Wav2Vec2: the extracted features) where there is one
        assert len(outputs) == len(refs) == len(torch_refs)
        for y, ref, torch_ref in zip(outputs, refs, torch_refs):
            assert y.shape == ref.shape == torch_ref.shape
            assert rel_err(y, ref) < 1e-4 and rel_err(y, torch_ref.numpy()) < 1e-4


def test_default_export_matches_onnxruntime_and_torch(family):
    converted = convert(family.data, family.kind, family.fixed)
    assert not any(op.options.get("activation") == "POW" for op in converted.graph.ops)   # gelu_new is GELU_TANH
    given = {d: n for d, n in converted.graph.dims.items() if d not in converted.graph.derived_dims}
    assert given == {d: SIZES[d] for d in SIZES
                     if d not in family.fixed and any(d in a.values() for a in _axes(family.kind).values())}
    _check(family.data, converted, family.kind, family.fixed, family.pad_id, family.model)


def test_pruned_export_matches_onnxruntime_and_torch(family):
    converted = convert(family.pruned, family.kind, family.fixed)
    # (Wav2Vec2's convolutions along the samples run as FULLY_CONNECTED per tap: not pruned here.)
    weights = [converted.graph.tensors[op.inputs[1]] for op in converted.graph.ops if op.type == "FULLY_CONNECTED"
               and ".tap" not in op.inputs[1]]
    assert weights and all(w.group_size == 4 for w in weights)
    assert all(0.15 < np.count_nonzero(w.data) / w.data.size < 0.25 for w in weights)
    _check(family.pruned, converted, family.kind, family.fixed, family.pad_id, family.pruned_model)


@pytest.mark.parametrize("name", LEGACY)
def test_legacy_export_matches_onnxruntime_and_torch(name):
    make, kind, fixed = FAMILIES[name]
    model = make()
    data = export(model, kind, dynamo=False)
    _check(data, convert(data, kind, fixed), kind, fixed, _pad_id(model), model)


# Sentence pairs (token_type_ids a third input of the export) of the families with token type embeddings
# besides BERT, whose exports above take pairs; DeBERTa with type_vocab_size set (its default has none).
PAIRS = {"albert": FAMILIES["albert"][0], "electra-small": FAMILIES["electra-small"][0],
         "mobilebert": FAMILIES["mobilebert"][0],
         "deberta-v2": _text("DebertaV2Config", "DebertaV2Model", type_vocab_size=2, **DEBERTA)}


@pytest.mark.parametrize("name", PAIRS)
def test_sentence_pair_export_matches_onnxruntime_and_torch(name):
    model = PAIRS[name]()
    data = export(model, "pair")
    converted = convert(data, "pair", ())
    assert converted.graph.inputs == ["input_ids", "attention_mask", "token_type_ids"]
    _check(data, converted, "pair", (), _pad_id(model), model)


def test_what_cannot_vary_is_named():
    """An axis of twice a dimension (a Concat of x with itself along it) follows no dimension: the
    error names the tensor and op, and says how to fix it."""
    x = np.zeros((2, 6), np.float32)
    data = onnx_model([_node("Concat", ["x", "x"], ["y"], axis=1)], {"x": x}, [("y", np.float32)],
                      names={"x": ["batch", "seq"]})
    with pytest.raises(sparselite.ConversionError, match=r"\(CONCAT '[^']*'\) has shape \[2, 12\] at .*seq=6.* and "
                                                         r"\[.*\] at .*: an axis follows no single dimension .* "
                                                         r"fixed_dims="):
        from_onnx(data, dims={"batch": 2, "seq": 6})


def test_audio_frames_are_computed_from_the_samples():
    """Wav2Vec2's frames: each strided convolution's, the positional convolution's padded length,
    its trimmed output, each a dimension computed from the one before."""
    wav2vec2 = exported("wav2vec2")
    graph = convert(wav2vec2.data, wav2vec2.kind, wav2vec2.fixed).graph
    assert graph.derived_dims["(samples-5)//5"] == ("samples", -5, 5)
    assert all(source in graph.dims for source, _, _ in graph.derived_dims.values())
    assert "CONV2D" not in {op.type for op in graph.ops}   # taps of SLICE and FULLY_CONNECTED


# --- the ops these exports need, one small model each, against onnxruntime --------------------------
def onnx_model(nodes, feeds, outputs, consts=(), opset=18, names=None):
    """A model of `nodes` reading inputs typed and shaped like the arrays `feeds` (axes named by
    names {input: [name or None per axis]}), writing outputs [(name, numpy dtype)], constants
    {name: array} as initializers."""
    from onnx import helper, numpy_helper

    def value(name, dtype, shape):
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape)

    inputs = [value(name, a.dtype, [n or d for n, d in zip((names or {}).get(name, [None] * a.ndim), a.shape)])
              for name, a in feeds.items()]
    graph = helper.make_graph(nodes, "g", inputs, [value(name, dtype, None) for name, dtype in outputs],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(consts).items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def matches_onnxruntime(data, feeds_list, **convert_kwargs):
    """Converts once, loads once, and runs every feeds dict: outputs equal onnxruntime's (floats
    within 1e-5 relative, integers and booleans exactly). Returns the converted model."""
    converted = from_onnx(data, **convert_kwargs)
    model = sparselite.load(converted.to_bytes())
    for feeds in feeds_list:
        for y, ref in zip(model.run(feeds), ort_run(data, feeds)):
            assert y.shape == ref.shape and y.dtype == ref.dtype
            if ref.dtype.kind == "f":
                assert rel_err(np.nan_to_num(y), np.nan_to_num(ref)) < 1e-5
                assert np.array_equal(np.isnan(y), np.isnan(ref))
            else:
                assert np.array_equal(y, ref)
    return converted


def _node(op, inputs, outputs, **attrs):
    from onnx import helper

    return helper.make_node(op, inputs, outputs, name=op.lower() + "_" + outputs[0], **attrs)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
@pytest.mark.parametrize("compare", ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"])
def test_comparisons_logic_and_where(compare, dtype):
    """A comparison broadcast over [2, 3, 4] and [3, 1], then Not / And / Or / Xor, Equal of two
    booleans, Where on both value types, and casts from bool."""
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, (2, 3, 4)).astype(dtype)
    y = rng.integers(-3, 4, (3, 1)).astype(dtype)
    nodes = [_node(compare, ["x", "y"], ["c"]), _node("Not", ["c"], ["n"]), _node("Greater", ["x", "zero"], ["p"]),
             _node("And", ["c", "p"], ["a"]), _node("Or", ["n", "a"], ["o"]), _node("Xor", ["a", "o"], ["e"]),
             _node("Equal", ["e", "c"], ["same"]), _node("Where", ["same", "x", "y"], ["picked"]),
             _node("Cast", ["o"], ["as_float"], to=1), _node("Cast", ["e"], ["as_int"], to=7)]
    data = onnx_model(nodes, {"x": x, "y": y}, [("picked", dtype), ("as_float", np.float32), ("as_int", np.int64),
                                               ("c", np.bool_)], {"zero": np.zeros((), dtype)})
    converted = matches_onnxruntime(data, [{"x": x, "y": y}])
    assert {"COMPARE", "LOGICAL", "WHERE", "CAST"} <= {op.type for op in converted.graph.ops}


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_arithmetic_keeps_its_dtype(dtype):
    """Add, Sub, Mul and Div of integers broadcast in their own dtype; Div truncates toward zero
    (negative operands included), as onnxruntime's; by a constant it is not a multiplication."""
    rng = np.random.default_rng(10)
    x = rng.integers(-50, 50, (2, 3, 4)).astype(dtype)
    y = rng.choice([-7, -3, -1, 1, 2, 5], (3, 1)).astype(dtype)
    nodes = [_node(op, ["x", "y"], [op.lower()]) for op in ("Add", "Sub", "Mul", "Div")]
    nodes.append(_node("Div", ["x", "three"], ["third"]))
    data = onnx_model(nodes, {"x": x, "y": y}, [(n, dtype) for n in ("add", "sub", "mul", "div", "third")],
                      {"three": np.array(3, dtype)})
    converted = matches_onnxruntime(data, [{"x": x, "y": y}])
    assert [op.type for op in converted.graph.ops] == ["ADD", "SUB", "MUL", "DIV", "DIV"]


def test_isnan_where_and_casts_to_bool():
    """Where(IsNaN(x), 0, x), as the dynamo exporter writes after attention's softmax; Cast of
    floats and integers to bool is x != 0 (NaN is true)."""
    x = np.array([[0.5, np.nan, -2.0, 0.0], [np.inf, -0.0, 3.0, np.nan]], np.float32)
    ids = np.array([[0, 1, -5, 7]], np.int64)
    nodes = [_node("IsNaN", ["x"], ["nan"]), _node("Where", ["nan", "zero", "x"], ["clean"]),
             _node("Cast", ["x"], ["xb"], to=9), _node("Cast", ["ids"], ["ib"], to=9),
             _node("And", ["xb", "ib"], ["both"])]
    data = onnx_model(nodes, {"x": x, "ids": ids}, [("clean", np.float32), ("xb", np.bool_), ("both", np.bool_)],
                      {"zero": np.float32(0)})
    matches_onnxruntime(data, [{"x": x, "ids": ids}])


@pytest.mark.parametrize("exponent,op", [(2.0, "MUL"), (0.5, "SQRT"), (-0.5, "RSQRT"), (-1.0, "DIV"), (3.0, "POW"),
                                         (1.5, "POW"), (1.0, None)])
def test_pow_by_a_constant(exponent, op):
    x = np.random.default_rng(1).uniform(0.1, 3.0, (2, 5, 7)).astype(np.float32)
    data = onnx_model([_node("Pow", ["x", "e"], ["y"]), _node("Add", ["y", "x"], ["z"])], {"x": x},
                      [("z", np.float32)], {"e": np.float32(exponent)})
    converted = matches_onnxruntime(data, [{"x": x}])
    types = [op.type if op.type != "ACTIVATION" else op.options["activation"] for op in converted.graph.ops]
    assert types == ([op] if op else []) + ["ADD"]


@pytest.mark.parametrize("op", ["Sqrt", "Exp", "Log", "Erf", "Neg", "Abs", "Reciprocal", "Sign", "Ceil", "Floor"])
def test_elementwise_math(op):
    """Floats (the values around rounding points included), and for Neg, Abs and Sign integers."""
    x = np.concatenate([np.random.default_rng(2).uniform(-4, 4, 40), [-2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5, 3.0]])
    x = (np.abs(x) + 0.01 if op in ("Sqrt", "Log") else x).astype(np.float32).reshape(4, 12)
    feeds, outputs = {"x": x}, [("y", np.float32)]
    nodes = [_node(op, ["x"], ["y"])]
    if op in ("Neg", "Abs", "Sign"):
        feeds["i"] = np.array([[-7, 0, 3, -1, 2 ** 40]], np.int64)
        nodes.append(_node(op, ["i"], ["j"]))
        outputs.append(("j", np.int64))
    matches_onnxruntime(onnx_model(nodes, feeds, outputs), [feeds])


def test_min_max_and_clip():
    """Against a float scalar: a clamp; otherwise pairwise selection, over several inputs and
    integers too; Clip of integers (DeBERTa's relative positions) selects as well."""
    rng = np.random.default_rng(3)
    x, y, z = (rng.standard_normal(s).astype(np.float32) for s in ((2, 3, 4), (3, 4), (4,)))
    i, j = rng.integers(-9, 9, (2, 5)), rng.integers(-9, 9, (1, 5))
    nodes = [_node("Min", ["x", "half"], ["lo"]), _node("Max", ["x", "y", "z"], ["hi"]),
             _node("Min", ["i", "j"], ["ilo"]), _node("Max", ["i", "three"], ["ihi"]),
             _node("Clip", ["i", "minus2", "three"], ["iclip"]), _node("Clip", ["i", "", "three"], ["iupper"])]
    data = onnx_model(nodes, {"x": x, "y": y, "z": z, "i": i, "j": j},
                      [("lo", np.float32), ("hi", np.float32), ("ilo", np.int64), ("ihi", np.int64),
                       ("iclip", np.int64), ("iupper", np.int64)],
                      {"half": np.float32(0.5), "three": np.int64(3), "minus2": np.int64(-2)})
    converted = matches_onnxruntime(data, [{"x": x, "y": y, "z": z, "i": i, "j": j}])
    assert any(op.options.get("activation") == "CLAMP" for op in converted.graph.ops)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_cumsum(dtype):
    x = np.random.default_rng(4).integers(-5, 6, (2, 3, 5)).astype(dtype)
    nodes = [_node("CumSum", ["x", "axis"], [f"y{k}"], exclusive=e, reverse=r)
             for k, (e, r) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)])]
    nodes.append(_node("CumSum", ["x", "first"], ["y4"]))
    data = onnx_model(nodes, {"x": x}, [(f"y{k}", dtype) for k in range(5)],
                      {"axis": np.int64(-1), "first": np.int32(0)})
    matches_onnxruntime(data, [{"x": x}])


def test_expand_tile_and_gather_elements():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 1)).astype(np.float32)
    t = rng.standard_normal((2, 3)).astype(np.float32)
    data = rng.standard_normal((3, 4, 5)).astype(np.float32)
    index = rng.integers(-4, 4, (3, 2, 5)).astype(np.int64)   # negative indices count from the end
    nodes = [_node("Expand", ["x", "shape"], ["e"]), _node("Tile", ["t", "reps"], ["tiled"]),
             _node("GatherElements", ["data", "index"], ["g"], axis=1)]
    model = onnx_model(nodes, {"x": x, "t": t, "data": data, "index": index},
                       [("e", np.float32), ("tiled", np.float32), ("g", np.float32)],
                       {"shape": np.array([2, 3, 4], np.int64), "reps": np.array([2, 3], np.int64)})
    matches_onnxruntime(model, [{"x": x, "t": t, "data": data, "index": index}])


def test_group_and_instance_normalization():
    """GroupNormalization-18 (scale and bias per group, widened to one per channel) and
    InstanceNormalization, both GROUP_NORM."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 6, 5, 3)).astype(np.float32) * 3 + 1
    nodes = [_node("GroupNormalization", ["x", "gs", "gb"], ["g"], num_groups=3, epsilon=1e-3),
             _node("InstanceNormalization", ["x", "s", "b"], ["i"], epsilon=1e-4)]
    consts = {"gs": rng.standard_normal(3), "gb": rng.standard_normal(3), "s": rng.standard_normal(6),
              "b": rng.standard_normal(6)}
    data = onnx_model(nodes, {"x": x}, [("g", np.float32), ("i", np.float32)],
                      {k: v.astype(np.float32) for k, v in consts.items()})
    converted = matches_onnxruntime(data, [{"x": x}])
    assert [op.type for op in converted.graph.ops] == ["GROUP_NORM", "GROUP_NORM"]


@pytest.mark.parametrize("stride,dilation,pads,group", [(1, 1, [0, 0], 1), (2, 1, [1, 2], 1), (1, 2, [2, 2], 2),
                                                         (3, 1, [0, 1], 4)])
def test_conv1d(stride, dilation, pads, group):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 8, 23)).astype(np.float32)
    w = rng.standard_normal((12, 8 // group, 5)).astype(np.float32)
    data = onnx_model([_node("Conv", ["x", "w", "b"], ["y"], strides=[stride], dilations=[dilation], pads=pads,
                             group=group)], {"x": x}, [("y", np.float32)],
                      {"w": w, "b": rng.standard_normal(12).astype(np.float32)})
    converted = matches_onnxruntime(data, [{"x": x}])
    assert [op.type for op in converted.graph.ops] == ["RESHAPE", "CONV2D", "RESHAPE"]


def _shape_value(source, index, out):
    """Nodes computing `out` = Shape(source)[index] as a 1-element vector."""
    return [_node("Shape", [source], [out + ".shape"]), _node("Gather", [out + ".shape", f"at{index}"], [out])]


def test_dynamic_dimensions_through_shape_arithmetic():
    """What exports compute from the inputs' sizes, at three sizes from one load: position ids
    (Range of Shape), a reshape to heads and back (Shape, Concat), a padding mask (Equal, Not,
    Cast), ones of the input's shape (ConstantOfShape), relative positions [seq, seq] (computed
    at run time: no constant can be cut to size), a neighbour shift (Slice and Pad) and a
    flattened mask read at b * seq + k (Flatten, Gather)."""
    rng = np.random.default_rng(8)
    consts = {"at0": np.array([0]), "at1": np.array([1]), "zero": np.int64(0), "one": np.int64(1),
              "heads": np.array([2, 4]), "minus1": np.array([-1]), "hidden": np.array([8]),
              "table": rng.standard_normal((32, 8)).astype(np.float32), "big": np.array([1 << 40]),
              "pads": np.array([0, 0, 0, 0, 1, 0]), "fzero": np.float32(0), "s0": np.int64(0),
              "seq_axis": np.array([1])}
    nodes = (_shape_value("x", 0, "b") + _shape_value("x", 1, "s") + [
        _node("Squeeze", ["s"], ["s_scalar"]), _node("Range", ["zero", "s_scalar", "one"], ["pos"]),
        _node("Unsqueeze", ["pos", "at0"], ["pos2"]), _node("Gather", ["table", "pos2"], ["pos_emb"]),
        _node("Add", ["x", "pos_emb"], ["h"]),
        _node("Concat", ["b", "s", "heads"], ["split_shape"], axis=0), _node("Reshape", ["h", "split_shape"], ["h4"]),
        _node("Transpose", ["h4"], ["t4"], perm=[0, 2, 1, 3]), _node("Transpose", ["t4"], ["h4b"], perm=[0, 2, 1, 3]),
        _node("Concat", ["b", "s", "hidden"], ["merge_shape"], axis=0),
        _node("Reshape", ["h4b", "merge_shape"], ["h2"]),
        _node("Equal", ["ids", "zero"], ["is_pad"]), _node("Not", ["is_pad"], ["keep"]),
        _node("Cast", ["keep"], ["keep_f"], to=1), _node("Unsqueeze", ["keep_f", "minus1"], ["keep3"]),
        _node("Shape", ["ids"], ["ids_shape"]), _node("ConstantOfShape", ["ids_shape"], ["ones"]),
        _node("Unsqueeze", ["ones", "minus1"], ["ones3"]), _node("Mul", ["h2", "keep3"], ["masked"]),
        _node("Add", ["masked", "ones3"], ["y"]),
        _node("Unsqueeze", ["pos", "at0"], ["row"]), _node("Unsqueeze", ["pos", "at1"], ["col"]),
        _node("Sub", ["row", "col"], ["rel"]), _node("Abs", ["rel"], ["dist"]),
        _node("Cast", ["dist"], ["dist_f"], to=1),
        _node("MatMul", ["dist_f", "x"], ["near"]),
        _node("Slice", ["x", "at1", "big", "seq_axis"], ["after"]), _node("Pad", ["after", "pads", "fzero"], ["next"]),
        # b.index [B, 1] and k.index [1, S] from Range over the sizes, as the legacy exporter's
        _node("Squeeze", ["b"], ["b_scalar"]), _node("Range", ["zero", "b_scalar", "one"], ["b.range"]),
        _node("Unsqueeze", ["b.range", "at1"], ["b.index"]), _node("Unsqueeze", ["pos", "at0"], ["k.index"]),
        _node("Concat", ["b", "s"], ["bk_shape"], axis=0),
        _node("Flatten", ["keep"], ["flat"], axis=2), _node("Mul", ["b.index", "s"], ["row_start"]),
        _node("Add", ["row_start", "k.index"], ["flat_index"]), _node("Gather", ["flat", "flat_index"], ["picked"]),
        _node("Reshape", ["picked", "bk_shape"], ["picked2"]), _node("Cast", ["picked2"], ["picked_f"], to=1)])
    feeds = []
    for batch, seq in ((3, 10), (1, 4), (2, 7)):
        ids = rng.integers(1, 50, (batch, seq))
        ids[-1, seq // 2:] = 0
        feeds.append({"x": rng.standard_normal((batch, seq, 8)).astype(np.float32), "ids": ids})
    names = {"x": ["batch", "seq", None], "ids": ["batch", "seq"]}
    data = onnx_model(nodes, feeds[0], [("y", np.float32), ("near", np.float32), ("next", np.float32),
                                        ("picked_f", np.float32)], consts, names=names)
    converted = matches_onnxruntime(data, feeds, dims={"batch": 3, "seq": 10})
    graph = converted.graph
    assert graph.dims == {"batch": 3, "seq": 10}
    assert graph.tensors["x"].dynamic == ("batch", "seq", None) and graph.tensors["ids"].dynamic == ("batch", "seq")
    assert "SUB" in {op.type for op in graph.ops}   # relative positions, at run time
    assert "GATHER_ELEMENTS" in {op.type for op in graph.ops}   # the shift


def test_dynamic_dimensions_refused_with_reasons():
    """Every named dimension needs a size; one no input has is refused; a slice whose start
    follows a dimension (the last token), and a size used as a value, are named with their op."""
    x = np.zeros((2, 6, 4), np.float32)
    names = {"x": ["batch", "seq", None]}
    last = onnx_model([_node("Gather", ["x", "minus1"], ["y"], axis=1)], {"x": x}, [("y", np.float32)],
                      {"minus1": np.int64(-1)}, names=names)
    with pytest.raises(sparselite.ConversionError, match=r"named dimensions 'batch' \(x axis 0\), 'seq' \(x axis 1\)"):
        from_onnx(last)
    with pytest.raises(sparselite.ConversionError, match=r"dims names \['tokens'\], which no input of the model has"):
        from_onnx(last, dims={"batch": 2, "seq": 6, "tokens": 6})
    with pytest.raises(sparselite.ConversionError, match=r"converts differently at batch=2, seq=6 and at batch=3, "
                                                         r"seq=3: op 0 is SLICE 'gather_y' \{'begin': \[0, 5, 0\]"):
        from_onnx(last, dims={"batch": 2, "seq": 6})
    assert from_onnx(last, dims={"batch": 2}, fixed_dims={"seq": 6}).graph.dims == {"batch": 2}
    scaled = onnx_model(_shape_value("x", 1, "s") + [_node("Cast", ["s"], ["sf"], to=1),
                                                     _node("Div", ["x", "sf"], ["y"])],
                        {"x": x}, [("y", np.float32)], {"at1": np.array([1])}, names=names)
    with pytest.raises(sparselite.ConversionError, match=r"Shape: computed at run time, as its value varies with the "
                                                         r"dynamic dimensions x1 \(first: node 0"):
        from_onnx(scaled, dims={"batch": 2, "seq": 6})


def test_gelu_new_is_one_activation():
    """Hugging Face's gelu_new (ALBERT's default) exports as eight nodes around Pow(x, 3): they
    become one GELU_TANH, fused into the linear layer before it."""
    _transformers()
    from transformers.activations import NewGELUActivation

    module = torch.nn.Sequential(torch.nn.Linear(8, 16), NewGELUActivation()).eval()
    x = np.random.default_rng(9).standard_normal((2, 5, 8)).astype(np.float32) * 3
    buf = io.BytesIO()
    torch.onnx.export(module, (torch.from_numpy(x),), buf, input_names=["x"], output_names=["y"], dynamo=False)
    converted = matches_onnxruntime(buf.getvalue(), [{"x": x}])
    assert [(op.type, op.options.get("activation")) for op in converted.graph.ops] == [("FULLY_CONNECTED", "GELU_TANH")]


def test_a_first_axis_of_k_times_a_dimension():
    """[batch * 4, seq] (DeBERTa's batch x heads) is held as [batch, 4, seq]: ops over the other
    axes see the same data (their axes move by one); one over the merged axis is refused."""
    x = np.random.default_rng(11).standard_normal((3, 4, 10)).astype(np.float32)
    names = {"x": ["batch", None, "seq"]}
    merge = [_node("Shape", ["x"], ["x_shape"]), _node("Slice", ["x_shape", "two", "three"], ["seq"]),
             _node("Concat", ["minus1", "seq"], ["flat"], axis=0), _node("Reshape", ["x", "flat"], ["merged"])]
    nodes = merge + [_node("Softmax", ["merged"], ["p"], axis=1), _node("CumSum", ["p", "one"], ["c"]),
                     _node("Unsqueeze", ["c", "minus1"], ["c3"]), _node("Transpose", ["c3"], ["ct"], perm=[0, 2, 1]),
                     _node("Transpose", ["ct"], ["back"], perm=[0, 2, 1]), _node("Reshape", ["back", "x_shape"], ["y"])]
    consts = {"two": np.array([2]), "three": np.array([3]), "minus1": np.array([-1]), "one": np.int64(1)}
    feeds = [{"x": x[:b, :, :s]} for b, s in ((3, 10), (1, 4), (2, 7))]
    data = onnx_model(nodes, feeds[0], [("y", np.float32)], consts, names=names)
    graph = matches_onnxruntime(data, feeds, dims={"batch": 3, "seq": 10}).graph
    assert any(graph.tensors[op.outputs[0]].dynamic == ("batch", None, "seq", None) for op in graph.ops
               if op.type == "TRANSPOSE")   # [batch * 4, seq, 1] held as [batch, 4, seq, 1]
    reduced = onnx_model(merge + [_node("ReduceSum", ["merged", "zero"], ["y"])], feeds[0], [("y", np.float32)],
                         dict(consts, zero=np.array([0])), names=names)
    with pytest.raises(sparselite.ConversionError, match=r"REDUCE '[^']*' works along a tensor whose first axis is "
                                                         r"k times a dynamic dimension"):
        from_onnx(reduced, dims={"batch": 3, "seq": 10})
