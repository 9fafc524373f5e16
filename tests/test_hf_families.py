"""Hugging Face encoder families (small random-init configs) through from_torch, against torch:
two lengths and a padded batch from one load (dynamic batch and length), dense and 80% 4x1
pruned, sdpa and eager attention; token types of sentence pairs; pooling; what is refused."""
import copy
import functools

import numpy as np
import pytest
import torch

import sparselite
from helpers import rel_err
from sparselite.converters import from_torch, hf, prune_groups, zoo
from sparselite.errors import ConversionError

zoo.allow_torchvision_import()
import transformers as T  # noqa: E402  (after allow_torchvision_import)

H, LAYERS, HEADS, FFN, VOCAB = 64, 2, 4, 128, 1000
SMALL = dict(hidden_size=H, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=FFN)
MAX_BATCH, MAX_SEQ = 3, 16
BOTH = {0: "batch", 1: "seq"}

# family -> (config maker, the axes that may vary). Whisper's encoder takes one length (its
# positional table); ViT's and DeiT's images one size.
FAMILIES = {
    "bert": (lambda: T.BertModel(T.BertConfig(vocab_size=VOCAB, **SMALL)), BOTH),
    "distilbert": (lambda: T.DistilBertModel(T.DistilBertConfig(vocab_size=VOCAB, dim=H, n_layers=LAYERS,
                                                                 n_heads=HEADS, hidden_dim=FFN)), BOTH),
    "roberta": (lambda: T.RobertaModel(T.RobertaConfig(vocab_size=VOCAB, **SMALL)), BOTH),
    "xlm-roberta": (lambda: T.XLMRobertaModel(T.XLMRobertaConfig(vocab_size=VOCAB, **SMALL)), BOTH),
    "mpnet": (lambda: T.MPNetModel(T.MPNetConfig(vocab_size=VOCAB, **SMALL)), BOTH),
    "albert": (lambda: T.AlbertModel(T.AlbertConfig(vocab_size=VOCAB, embedding_size=32, **SMALL)), BOTH),
    "electra": (lambda: T.ElectraModel(T.ElectraConfig(vocab_size=VOCAB, embedding_size=H, **SMALL)), BOTH),
    "electra-small": (lambda: T.ElectraModel(T.ElectraConfig(vocab_size=VOCAB, embedding_size=32, **SMALL)), BOTH),
    "mobilebert": (lambda: T.MobileBertModel(T.MobileBertConfig(
        vocab_size=VOCAB, embedding_size=32, intra_bottleneck_size=32, true_hidden_size=32,
        num_feedforward_networks=2, **SMALL)), BOTH),
    "deberta-v2": (lambda: T.DebertaV2Model(T.DebertaV2Config(
        vocab_size=VOCAB, relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=32,
        max_relative_positions=64, norm_rel_ebd="layer_norm", share_att_key=True, position_biased_input=False,
        **SMALL)), BOTH),
    "vit": (lambda: T.ViTModel(T.ViTConfig(image_size=32, patch_size=8, **SMALL)), {0: "batch"}),
    "deit": (lambda: T.DeiTModel(T.DeiTConfig(image_size=32, patch_size=8, **SMALL)), {0: "batch"}),
    "whisper": (lambda: T.WhisperModel(T.WhisperConfig(
        vocab_size=VOCAB, d_model=H, encoder_layers=LAYERS, decoder_layers=1, encoder_attention_heads=HEADS,
        decoder_attention_heads=HEADS, encoder_ffn_dim=FFN, decoder_ffn_dim=FFN, num_mel_bins=16,
        max_source_positions=50, pad_token_id=1, bos_token_id=2, eos_token_id=3, decoder_start_token_id=2)),
        {0: "batch"}),
    "wav2vec2": (lambda: T.Wav2Vec2Model(T.Wav2Vec2Config(
        conv_dim=(32, 32), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, **SMALL)), {0: "batch", 1: "samples"}),
}
TEXT = [f for f in FAMILIES if f not in ("vit", "deit", "whisper", "wav2vec2")]
EAGER_ONLY = {"mpnet", "deberta-v2"}   # transformers has no sdpa attention for these


def _attentions(family):
    return ["eager"] if family in EAGER_ONLY else ["sdpa", "eager"]


@functools.lru_cache(maxsize=None)
def _torch_model(family, attention="sdpa", pruned=False):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(sorted(FAMILIES).index(family))
        model = FAMILIES[family][0]()
    model.set_attn_implementation(attention)
    model = model.eval()
    if pruned:
        model = copy.deepcopy(model)
        prune_groups(model, density=0.2, group=4)
    return model


def _text(batch, seq, pads, seed, types=False):
    """Token ids framed by 101 ... 102 with trailing padding per row (pads[i] tokens of row i)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    for row, pad in enumerate(pads):
        ids[row, 0], ids[row, seq - pad - 1] = 101, 102
        ids[row, seq - pad:], mask[row, seq - pad:] = 0, 0
    feeds = {"input_ids": ids, "attention_mask": mask}
    if types:   # a sentence pair: segment 1 from the middle on
        feeds["token_type_ids"] = (torch.arange(seq) >= seq // 2).long().expand(batch, seq).contiguous() * mask
    return feeds


def _feeds(family, case, seed=0):
    g = torch.Generator().manual_seed(seed)
    if family in ("vit", "deit"):
        return {"pixel_values": torch.randn(case[0], 3, 32, 32, generator=g)}
    if family == "whisper":
        return {"input_features": torch.randn(case[0], 16, 100, generator=g)}
    if family == "wav2vec2":   # rows end in case[2] samples of padding, which the mask leaves out
        mask = torch.ones(case[0], case[1], dtype=torch.int64)
        for row, pad in enumerate(case[2]):
            mask[row, case[1] - pad:] = 0
        return {"input_values": torch.randn(case[0], case[1], generator=g), "attention_mask": mask}
    return _text(*case, seed=seed)


def _cases(family):
    """(batch, length, pads) to run from one load: a padded batch at the maxima and two others."""
    axes = FAMILIES[family][1]
    if family in TEXT:
        seq = [MAX_SEQ, 9, 5] if 1 in axes else [MAX_SEQ] * 3
        batch = [MAX_BATCH, 1, 2] if 0 in axes else [MAX_BATCH] * 3
        return [(batch[0], seq[0], [0, 4, 9][:batch[0]]), (batch[1], seq[1], [0, 3, 1][:batch[1]]),
                (batch[2], seq[2], [1, 0, 2][:batch[2]])]
    if family == "wav2vec2":
        return [(MAX_BATCH, 400, [0, 60, 150]), (1, 333, [0]), (2, 250, [17, 0])]
    return [(MAX_BATCH,), (1,), (2,)]


def _axes(family, feeds):
    axes = FAMILIES[family][1]
    return {k: {a: n for a, n in axes.items() if a < v.dim()} for k, v in feeds.items()} if axes else None


@functools.lru_cache(maxsize=None)
def _converted(family, attention="sdpa", pruned=False):
    model = _torch_model(family, attention, pruned)
    examples = _feeds(family, _cases(family)[0])
    converted = from_torch(model, examples, dynamic_axes=_axes(family, examples))
    return converted, sparselite.load(converted.to_bytes())


def _reference(model, feeds):
    with torch.no_grad():
        return hf.Encoder(model)(**feeds).numpy()


@pytest.mark.parametrize("family,attention", [(f, a) for f in FAMILIES for a in _attentions(f)])
def test_family_matches_torch(family, attention):
    converted, model = _converted(family, attention)
    eager = _torch_model(family, "eager")
    for i, case in enumerate(_cases(family)):
        feeds = _feeds(family, case, seed=i + 1)
        (out,) = model.run({k: v.numpy() for k, v in feeds.items()})
        ref = _reference(_torch_model(family, attention), feeds)
        assert out.shape == ref.shape
        assert rel_err(out, ref) <= 1e-4, (case, rel_err(out, ref))
        assert rel_err(out, _reference(eager, feeds)) <= 1e-4   # the same function as eager attention


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_pruned_family_matches_torch(family):
    converted, model = _converted(family, _attentions(family)[0], pruned=True)
    linear = [op for op in converted.graph.ops if op.type == "FULLY_CONNECTED"]
    weights = {op.inputs[1] for op in linear}
    sparse = [w for w in weights if converted.graph.tensors[w].group_size == 4]
    if family == "albert":   # one layer's weights shared by every layer: stored sparse once, all of them
        shared = [w for w in sparse if sum(op.inputs[1] == w for op in linear) == LAYERS]
        assert set(sparse) == weights and len(shared) == 6 and len(linear) == 6 * LAYERS + 1
    else:
        assert len(sparse) >= LAYERS * 4, sorted(weights - set(sparse))
    pruned = _torch_model(family, _attentions(family)[0], pruned=True)
    for i, case in enumerate(_cases(family)):
        feeds = _feeds(family, case, seed=10 + i)
        (out,) = model.run({k: v.numpy() for k, v in feeds.items()})
        assert rel_err(out, _reference(pruned, feeds)) <= 1e-4


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_mobilebert_shortest_lengths(attention):
    """MobileBERT's neighbour tokens (`x[:, 1:]` padded back) trace only with torch's size-1 checks
    relaxed (eager attention from length 2): the converted model still runs lengths 1 and 2."""
    _, model = _converted("mobilebert", attention)
    for seq in (1, 2):
        feeds = _text(2, seq, [0, 0], seed=20 + seq)
        (out,) = model.run({k: v.numpy() for k, v in feeds.items()})
        assert rel_err(out, _reference(_torch_model("mobilebert", attention), feeds)) <= 1e-4


def test_whisper_length_is_refused_with_the_reason():
    examples = _feeds("whisper", (2,))
    for model in (_torch_model("whisper"), hf.Encoder(_torch_model("whisper").get_encoder(), pooling="mean")):
        with pytest.raises(ConversionError, match=r"Whisper(Model|Encoder) takes exactly 100 frames of input_features "
                                                  r"\(its positional embeddings are a fixed table of "
                                                  r"max_source_positions=50 positions.*only the batch"):
            from_torch(model, examples, dynamic_axes={"input_features": {0: "batch", 2: "frames"}})


def test_audio_too_short_for_the_convolutions_is_refused():
    """Wav2Vec2's frames are computed from the samples (floor((samples - 10) / 10) here): an input
    with too few samples for one frame is refused naming the dimension and its formula."""
    _, model = _converted("wav2vec2")
    feeds = _feeds("wav2vec2", (1, 12, [0]))
    with pytest.raises(sparselite.InputError, match=r"input 0 \(input_values\) is too short: dimension "
                                                    r"\(samples-10\)//10 = floor\(\(samples - 10\) / 10\) would be 0 "
                                                    r"at samples = 12"):
        model.run({k: v.numpy() for k, v in feeds.items()})
    feeds = _feeds("wav2vec2", (1, 20, [0]))   # the least: one frame
    (out,) = model.run({k: v.numpy() for k, v in feeds.items()})
    assert out.shape == (1, 1, H) and rel_err(out, _reference(_torch_model("wav2vec2"), feeds)) <= 1e-4


def test_wav2vec2_padded_batch_with_attention_mask():
    """At one length: the mask at the samples becomes one at the frames (floor divisions, index_put,
    flip, cumsum) as slices and constants of that length."""
    feeds = _feeds("wav2vec2", (2, 400, [0, 110]), seed=6)
    model = sparselite.load(from_torch(_torch_model("wav2vec2"), feeds).to_bytes())
    for m in (feeds["attention_mask"], torch.ones_like(feeds["attention_mask"])):
        run = {**feeds, "attention_mask": m}
        (out,) = model.run({k: v.numpy() for k, v in run.items()})
        assert rel_err(out, _reference(_torch_model("wav2vec2"), run)) <= 1e-4


# --- token types ------------------------------------------------------------------------------------------
# The families with token type embeddings of two segments or more (RoBERTa's and XLM-R's have one;
# DeBERTa's none unless type_vocab_size is set, as here).
PAIRS = ["bert", "albert", "electra", "electra-small", "mobilebert", "deberta-v2"]


@functools.lru_cache(maxsize=None)
def _pair_model(family):
    """(torch model, the .slite loaded) converted from sentence-pair examples, batch and length dynamic."""
    if family == "deberta-v2":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            config = _torch_model(family).config
            model = T.DebertaV2Model(T.DebertaV2Config(**{**config.to_dict(), "type_vocab_size": 2})).eval()
        model.set_attn_implementation("eager")
    else:
        model = _torch_model(family, _attentions(family)[0])
    examples = _text(MAX_BATCH, MAX_SEQ, [0, 4, 9], seed=0, types=True)
    converted = from_torch(model, examples, dynamic_axes={k: BOTH for k in examples})
    return model, sparselite.load(converted.to_bytes())


@pytest.mark.parametrize("family", PAIRS)
def test_sentence_pairs_use_token_types(family):
    torch_model, model = _pair_model(family)
    assert [t.name for t in model.inputs] == ["input_ids", "attention_mask", "token_type_ids"]
    for batch, seq, pads in [(MAX_BATCH, MAX_SEQ, [0, 4, 9]), (2, 11, [0, 3]), (1, 6, [0])]:
        feeds = _text(batch, seq, pads, seed=seq, types=True)
        (out,) = model.run({k: v.numpy() for k, v in feeds.items()})
        with torch.no_grad():
            ref = torch_model(**feeds).last_hidden_state.numpy()
            segment0 = torch_model(input_ids=feeds["input_ids"], attention_mask=feeds["attention_mask"])
        assert rel_err(out, ref) <= 1e-4
        # The types matter: running them all as segment 0 (what the old wrapper did) is far off.
        assert rel_err(segment0.last_hidden_state.numpy(), ref) > 0.05


def test_token_types_default_to_zero_and_are_refused_where_absent():
    bert, model = _pair_model("bert")
    feeds = _text(2, 10, [0, 2], seed=3)
    (with_zeros,) = model.run({**{k: v.numpy() for k, v in feeds.items()},
                               "token_type_ids": np.zeros((2, 10), np.int64)})
    (without,) = sparselite.load(from_torch(bert, _text(2, 10, [0, 2], seed=0)).to_bytes()).run(
        {k: v.numpy() for k, v in feeds.items()})
    assert rel_err(with_zeros, without) <= 1e-5
    examples = _text(2, 10, [0, 2], seed=0, types=True)
    with pytest.raises(ConversionError, match="DistilBertModel does not take token_type_ids"):
        from_torch(_torch_model("distilbert"), examples)


# --- pooling and refusals ---------------------------------------------------------------------------------
def _sentence_transformers(model, feeds, pooling):
    """sentence-transformers' pooling (mean over the mask, or the first token), then normalization."""
    with torch.no_grad():
        hidden = model(**feeds).last_hidden_state
    if pooling == "cls":
        out = hidden[:, 0]
    else:
        w = feeds["attention_mask"][..., None].to(hidden.dtype)
        out = (hidden * w).sum(1) / w.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(out, dim=-1).numpy()


@pytest.mark.parametrize("family,pooling", [("mpnet", "mean"), ("bert", "cls"), ("xlm-roberta", "mean")])
def test_sentence_embeddings(family, pooling):
    model = _torch_model(family, _attentions(family)[0])
    examples = _text(MAX_BATCH, MAX_SEQ, [0, 0, 0], seed=0)
    converted = from_torch(hf.Encoder(model, pooling=pooling, normalize=True), examples,
                           dynamic_axes={k: BOTH for k in examples})
    loaded = sparselite.load(converted.to_bytes())
    for case in [(MAX_BATCH, MAX_SEQ, [0, 4, 9]), (2, 7, [2, 0])]:
        feeds = _text(*case, seed=4)
        (emb,) = loaded.run({k: v.numpy() for k, v in feeds.items()})
        ref = _sentence_transformers(model, feeds, pooling)
        assert emb.shape == ref.shape and rel_err(emb, ref) <= 1e-4


def test_vision_mean_pooling():
    model = _torch_model("vit")
    examples = _feeds("vit", (2,))
    converted = from_torch(hf.Encoder(model, pooling="mean"), examples, dynamic_axes={"pixel_values": {0: "batch"}})
    (out,) = sparselite.load(converted.to_bytes()).run({"pixel_values": examples["pixel_values"][:1].numpy()})
    with torch.no_grad():
        ref = model(pixel_values=examples["pixel_values"][:1]).last_hidden_state.mean(1).numpy()
    assert rel_err(out, ref) <= 1e-4


def test_unknown_encoders_and_options_are_refused():
    squeeze = T.SqueezeBertModel(T.SqueezeBertConfig(vocab_size=VOCAB, embedding_size=H, **SMALL)).eval()
    with pytest.raises(ConversionError, match="SqueezeBertModel is not a transformers model"):
        from_torch(squeeze, _text(1, 8, [0], seed=0))
    with pytest.raises(ConversionError, match="pooling must be one of"):
        hf.Encoder(_torch_model("bert"), pooling="max")
    with pytest.raises(ConversionError, match="normalize=True needs pooling"):
        hf.Encoder(_torch_model("bert"), normalize=True)
    with pytest.raises(ConversionError, match="ViTModel does not take attention_mask, input_ids: its inputs are "
                                              "pixel_values"):
        from_torch(_torch_model("vit"), _text(1, 8, [0], seed=0))
