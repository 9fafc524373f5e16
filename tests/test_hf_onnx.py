"""Raw torch.onnx.export of Hugging Face encoders (transformers 5.x, small random-init configs, no
wrapper) through from_onnx, against onnxruntime on the same file: the default (dynamo) exporter for
all fourteen, the legacy one for those it exports; two lengths and a padded batch from one load
(dynamic batch and sequence), dense and 80% 4x1-pruned."""
import io

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
    # DeBERTa's attention runs over [batch * heads, ...]: that axis cannot follow a dynamic batch.
    "deberta-v2": (_text("DebertaV2Config", "DebertaV2Model", relative_attention=True, position_buckets=32,
                         pos_att_type=["p2c", "c2p"], max_relative_positions=-1, norm_rel_ebd="layer_norm",
                         position_biased_input=False), "text", ("batch",)),
    "vit": (_vision("ViTConfig", "ViTModel"), "image", ()),
    "deit": (_vision("DeiTConfig", "DeiTModel"), "image", ()),
    "whisper-encoder": (_whisper, "mel", ()),
    # The feature extractor's strided convolutions make the length a computed one: fixed.
    "wav2vec2": (_wav2vec2, "audio", ("samples",)),
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
    if kind == "audio":
        return {"input_values": rng.standard_normal((batch, 800)).astype(np.float32)}
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
    return [_inputs(kind, MAX_BATCH if "batch" in fixed else b, seed=b) for b in BATCHES]


def ort_run(data, feeds):
    import onnxruntime as ort

    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)


_EXPORTS = {}


def exported(name):
    """(kind, fixed names, pad id, dense export, pruned export) of a family, exported once."""
    if name not in _EXPORTS:
        make, kind, fixed = FAMILIES[name]
        model = make()
        data = export(model, kind)
        _EXPORTS[name] = kind, fixed, _pad_id(model), data, pruned(data)
    return _EXPORTS[name]


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    return exported(request.param)


def _check(data, converted, kind, fixed, pad_id):
    model = sparselite.load(converted.to_bytes())   # one load for every size
    for feeds in cases(kind, fixed, pad_id):
        outputs, refs = model.run(feeds), ort_run(data, feeds)
        assert len(outputs) == len(refs)   # the last hidden state, and a pooler's output where there is one
        for y, ref in zip(outputs, refs):
            assert y.shape == ref.shape
            assert rel_err(y, ref) < 1e-4


def test_default_export_matches_onnxruntime(family):
    kind, fixed, pad_id, data, _ = family
    converted = convert(data, kind, fixed)
    assert converted.graph.dims == {d: SIZES[d] for d in SIZES
                                    if d not in fixed and any(d in a.values() for a in _axes(kind).values())}
    _check(data, converted, kind, fixed, pad_id)


def test_pruned_export_matches_onnxruntime(family):
    kind, fixed, pad_id, _, data = family
    converted = convert(data, kind, fixed)
    weights = [converted.graph.tensors[op.inputs[1]] for op in converted.graph.ops if op.type == "FULLY_CONNECTED"]
    assert weights and all(w.group_size == 4 for w in weights)
    assert all(0.15 < np.count_nonzero(w.data) / w.data.size < 0.25 for w in weights)
    _check(data, converted, kind, fixed, pad_id)


@pytest.mark.parametrize("name", LEGACY)
def test_legacy_export_matches_onnxruntime(name):
    make, kind, fixed = FAMILIES[name]
    model = make()
    data = export(model, kind, dynamo=False)
    _check(data, convert(data, kind, fixed), kind, fixed, _pad_id(model))


def test_what_cannot_vary_is_named():
    """Wav2Vec2's convolutions compute the frame count from the samples, and DeBERTa attends over
    [batch * heads, ...]: neither axis is a dimension itself, so each must be fixed; the error
    names the tensor and op, and says how."""
    for name, message in (
            ("wav2vec2", r"\(CONV2D '[^']*'\) has shape \[3, 32, 1, 159\] at .*samples=800.* and \[2, 32, 1, 79\] "
                         r"at .*samples=400.*: an axis follows no single dimension .* fixed_dims="),
            ("deberta-v2", r"has shape \[12, 16, 16\] at .*seq=16.* and \[8, 8, 16\] at .*seq=8.*: an axis follows "
                           r"no single dimension")):
        kind, _, _, data, _ = exported(name)
        with pytest.raises(sparselite.ConversionError, match=message):
            convert(data, kind, ())
