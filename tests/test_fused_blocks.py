"""Fused inverted-residual blocks (runtime/fuse.c, ops/fused_block.c): random 1x1 -> depthwise -> 1x1
(+ residual ADD) chains run fused against unfused and against numpy, over band heights, strides,
paddings, kernel sizes, activations, dense and group-sparse weights, batches, kernel configurations
and thread counts."""
import numpy as np
import pytest

import sparselite
from helpers import FUSED_CASES as CASES
from helpers import KERNELS, inverted_residual, rel_err
from sparselite.converters.ir import Graph
from sparselite.converters.passes import run_all
from sparselite.converters.writer import serialize

def fused_members(model, x):
    return [p.name for p in model.profile(x, runs=1) if p.fused_into is not None]


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("case", CASES)
def test_fused_chain_matches_unfused_and_numpy(case, kernels):
    data, x, ref = inverted_residual(case)
    (unfused,) = sparselite.load(data, fuse=False, **KERNELS[kernels]).run(x)
    assert rel_err(unfused, ref) < 1e-5
    members = ["dw", "project", "add"] if case[9] else ["dw", "project"]
    for band_rows in (1, 2, 3, 5, 64):
        model = sparselite.load(data, fuse=band_rows, **KERNELS[kernels])
        assert fused_members(model, x) == members
        (y,) = model.run(x)
        assert rel_err(y, ref) < 1e-5, band_rows
        assert rel_err(y, unfused) < 1e-5, band_rows


@pytest.mark.parametrize("acts,add_act", [(("HARDSWISH", "SILU", "RELU"), "RELU6"), (("NONE", "NONE", "NONE"), "NONE"),
                                          (("RELU", "HARDSWISH", "TANH"), "HARDSWISH")])
def test_fused_activations(acts, add_act):
    data, x, ref = inverted_residual(CASES[0], acts, add_act, seed=3)
    (y,) = sparselite.load(data, fuse=2).run(x)
    assert rel_err(y, ref) < 1e-5


def test_fused_results_do_not_depend_on_threads():
    for case in (CASES[1], CASES[8]):
        data, x, _ = inverted_residual(case, seed=5)
        outs = [sparselite.load(data, fuse=2, num_threads=t).run(x)[0] for t in (1, 2, 3)]
        assert all(np.array_equal(outs[0], o) for o in outs[1:])


def test_automatic_fusion_takes_large_sparse_blocks_only():
    big = (1, 24, 96, 24, 56, 56, 3, (1, 1), (1, 1, 1, 1), True, 4)  # 1.2 MB expanded, sparse
    data, x, ref = inverted_residual(big)
    model = sparselite.load(data)
    assert fused_members(model, x) == ["dw", "project", "add"]
    (y,) = model.run(x)
    assert rel_err(y, ref) < 1e-5
    # The block's inner tensors get no arena slot.
    assert model.arena_bytes < sparselite.load(data, fuse=False).arena_bytes
    dense = big[:-1] + (0,)
    data, x, _ = inverted_residual(dense)
    assert fused_members(sparselite.load(data), x) == []


def test_chains_others_read_are_not_fused():
    _, x, _ = inverted_residual(CASES[0])
    graph_out = Graph()
    # The depthwise output is also a graph output: the block cannot keep it to itself.
    n, cin, mid, cout, h, w, k, stride, pads, residual, r = CASES[0]
    g = np.random.default_rng(1)
    t = graph_out.add_input("x", (1, cin, h, w))
    t = graph_out.add_op("CONV2D", [t, graph_out.add_const("w1", g.standard_normal((mid, cin, 1, 1)))],
                         (1, mid, h, w), name="expand")
    d = graph_out.add_op("CONV2D", [t, graph_out.add_const("w2", g.standard_normal((mid, 1, 3, 3)))], (1, mid, h, w),
                         name="dw", options=dict(padding=(1, 1, 1, 1), groups=mid))
    p = graph_out.add_op("CONV2D", [d, graph_out.add_const("w3", g.standard_normal((cout, mid, 1, 1)))],
                         (1, cout, h, w), name="project")
    graph_out.outputs += [p, d]
    run_all(graph_out, sparse=False)
    data = serialize(graph_out)
    fused, unfused = sparselite.load(data, fuse=1), sparselite.load(data, fuse=False)
    assert fused_members(fused, x) == []
    for a, b in zip(fused.run(x), unfused.run(x)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("bad", [-1, 0, 65537, 1.5, "yes", None])
def test_fuse_argument_is_checked(bad):
    data, _, _ = inverted_residual(CASES[0])
    with pytest.raises(sparselite.InputError, match="fuse must be"):
        sparselite.load(data, fuse=bad)


def test_inspect_shows_the_plan(tmp_path):
    from sparselite.inspect import format_summary, summarize_file

    big = (1, 24, 96, 24, 56, 56, 3, (1, 1), (1, 1, 1, 1), True, 4)
    path = tmp_path / "block.slite"
    path.write_bytes(inverted_residual(big)[0])
    summary = summarize_file(str(path))
    assert [layer.fused_into for layer in summary.layers] == [None, 0, 0, 0]
    text = format_summary(summary)
    assert "+ dw" in text and "+ add" in text and "1 fused blocks" in text
