"""Fused inverted-residual blocks (runtime/fuse.c, ops/fused_block.c): random [depthwise ->] 1x1 -> depthwise
-> 1x1 (+ residual ADD) chains run fused against unfused and against numpy, over band heights, strides,
paddings, kernel sizes, activations, dense and group-sparse weights, batches, kernel configurations
and thread counts."""
import numpy as np
import pytest

import sparselite
from helpers import FUSED_CASES as CASES
from helpers import FUSED_PRE_CASES as PRE_CASES
from helpers import ACTIVATIONS, KERNELS, conv2d_ref, group_sparse_weight, inverted_residual, rel_err
from sparselite.converters.ir import Graph
from sparselite.converters.passes import run_all
from sparselite.converters.writer import serialize

def fused_members(model, x):
    return [p.name for p in model.profile(x, runs=1) if p.fused_into is not None]


def check_bands(data, x, ref, members, kernels):
    """Unfused against numpy, then fused over several band heights against both. Not bit for bit:
    the kernels' partial pixel tiles fall elsewhere in a band."""
    (unfused,) = sparselite.load(data, fuse=False, **KERNELS[kernels]).run(x)
    assert rel_err(unfused, ref) < 1e-5
    for band_rows in (1, 2, 3, 5, 64):
        model = sparselite.load(data, fuse=band_rows, **KERNELS[kernels])
        assert fused_members(model, x) == members
        (y,) = model.run(x)
        assert rel_err(y, ref) < 1e-5, band_rows
        assert rel_err(y, unfused) < 1e-5, band_rows


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("case", CASES)
def test_fused_chain_matches_unfused_and_numpy(case, kernels):
    data, x, ref = inverted_residual(case)
    check_bands(data, x, ref, ["dw", "project", "add"] if case[9] else ["dw", "project"], kernels)


# Expands that widen their input run in chunks of channels whose expanded rows stay in L1: maps wide
# enough for several chunks, rows stored shuffled (out_perm) and rows past the last whole group.
CHUNKED_CASES = [
    (1, 6, 30, 6, 20, 64, 3, (1, 1), (1, 1, 1, 1), True, 4),      # in place, 7 groups of 4 and 2 rows
    (1, 6, 30, 8, 21, 64, 3, (2, 2), (1, 1, 1, 1), False, 4),     # stride 2
    (1, 5, 22, 5, 15, 64, 7, (1, 1), (3, 3, 3, 3), True, 2),      # 7x7: per-band depthwise
    (1, 6, 30, 6, 20, 64, 3, (1, 1), (1, 1, 1, 1), True, 0),      # dense: chunks of gemm panels
    (1, 16, 10, 16, 20, 64, 3, (1, 1), (1, 1, 1, 1), True, 4),    # narrowing: one chunk, rows at their channels
]


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("case,permuted", [(c, False) for c in CHUNKED_CASES] +
                         [(c, True) for c in CHUNKED_CASES if c[-1]])  # dense weights have no row order
def test_fused_chunks_of_channels(case, permuted, kernels):
    data, x, ref = inverted_residual(case, permuted=permuted)
    check_bands(data, x, ref, ["dw", "project", "add"] if case[9] else ["dw", "project"], kernels)
    outs = [sparselite.load(data, fuse=3, **{**KERNELS[kernels], "num_threads": t}).run(x)[0] for t in (1, 3)]
    assert np.array_equal(outs[0], outs[1])


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
    assert fused_members(sparselite.load(data), x) == ["add"]  # the project convolution runs it
    # A widening expand runs in chunks, which pay from 200 KB (602 KB here) where bands share few rows...
    small = (1, 32, 192, 32, 28, 28, 3, (1, 1), (1, 1, 1, 1), True, 4)
    data, x, ref = inverted_residual(small)
    model = sparselite.load(data)
    assert fused_members(model, x) == ["dw", "project", "add"]
    assert rel_err(model.run(x)[0], ref) < 1e-5
    # ... but not where a 5x5 kernel's 4 shared rows would be computed twice for bands of 4 (7x7 maps).
    data, x, _ = inverted_residual((1, 32, 1152, 32, 7, 7, 5, (1, 1), (2, 2, 2, 2), True, 4))
    assert fused_members(sparselite.load(data), x) == ["add"]


def core_l2_bytes():
    """This core's L2 as Linux reports it (the runtime asks cpuid: the same number on x86)."""
    with open("/sys/devices/system/cpu/cpu0/cache/index2/size") as f:
        size = f.read().strip()
    return int(size[:-1]) * {"K": 1024, "M": 1024 * 1024}[size[-1]]


@pytest.mark.parametrize("side, expanded_bytes", [(112, 4816896), (56, 1806336)])
def test_automatic_fusion_of_stride_2_blocks_follows_the_l2(side, expanded_bytes):
    # MobileNetV2's stride-2 blocks at 90%: fused where a core's L2 is 2 MB or more, or the expanded
    # tensor at least 4 L2s (the 112x112 block, not the 56x56 one, on 1 MB L2s).
    mid = 96 if side == 112 else 144
    data, x, ref = inverted_residual((1, 24, mid, 32, side, side, 3, (2, 2), (1, 1, 1, 1), False, 4), density=0.1)
    assert 4 * mid * side * side == expanded_bytes
    l2 = core_l2_bytes()
    model = sparselite.load(data)
    expected = l2 >= 2 * 1024 * 1024 or expanded_bytes >= 4 * l2
    assert fused_members(model, x) == (["dw", "project"] if expected else [])
    assert rel_err(model.run(x)[0], ref) < 1e-5


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


# A CONV2D followed by the ADD of another tensor and/or a PRELU: those run inside the convolution, on
# each block it writes (pointwise and implicit-GEMM paths); other paths leave them separate ops. Cases:
# (batch, in channels, out channels, h, w, kernel, stride, pads, group size, fused).
CONV_ADD_CASES = [
    (1, 24, 40, 20, 21, 1, 1, (0, 0, 0, 0), 0, True),     # dense 1x1, gemm over pixel tiles
    (2, 32, 48, 9, 7, 1, 1, (0, 0, 0, 0), 0, True),       # few pixels: gemm_nc, two images
    (1, 40, 24, 19, 17, 1, 1, (0, 0, 0, 0), 4, True),     # group-sparse 1x1: spmm + tail rows
    (1, 16, 24, 26, 25, 1, 2, (0, 0, 0, 0), 2, True),     # strided 1x1 (subsampled)
    (1, 3, 16, 41, 38, 3, 2, (1, 1, 1, 1), 0, True),      # RGB stem: rows written in place
    (1, 20, 12, 23, 29, 3, 2, (1, 0, 1, 2), 0, True),     # implicit GEMM copied out of scratch
    (1, 24, 20, 34, 30, 2, 2, (0, 0, 0, 0), 0, True),     # 2x2 stride 2 implicit GEMM, written in place
    (1, 16, 16, 6, 5, 3, 1, (1, 1, 1, 1), 0, False),      # 30 outputs: im2col, the ADD stays apart
]


def conv_add_graph(case, conv_act, add_act, residual_first, seed=0, conv_is_output=False, add=True, prelu=None):
    """CONV2D -> ADD (if add) -> PRELU (prelu: slopes per "channel", "shared", per "element", or None)."""
    n, cin, cout, h, w, k, stride, pads, r, _ = case
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, cin, h, w)).astype(np.float32)
    wt = (group_sparse_weight(g, cout, cin * k * k, r, 0.4) if r else g.standard_normal((cout, cin * k * k)))
    wt = wt.astype(np.float32).reshape(cout, cin, k, k)
    b = g.standard_normal(cout).astype(np.float32)
    y = ACTIVATIONS[conv_act](conv2d_ref(x, wt, b, (stride, stride), (1, 1), pads, 1), 0, 0).astype(np.float32)
    res = g.standard_normal(y.shape).astype(np.float32)
    ref = ACTIVATIONS[add_act](y + res, 0, 0) if add else y
    graph = Graph()
    t = graph.add_input("x", x.shape)
    inputs = {"x": x}
    t = graph.add_op("CONV2D", [t, graph.add_const("w", wt), graph.add_const("b", b)], y.shape, name="conv",
                     options=dict(stride=(stride, stride), padding=pads, activation=conv_act))
    conv = t
    if add:
        graph.add_input("res", res.shape)
        inputs["res"] = res
        t = graph.add_op("ADD", ["res", t] if residual_first else [t, "res"], ref.shape, name="add",
                         options=dict(activation=add_act))
    if prelu:
        shape = {"channel": (1, cout, 1, 1), "shared": (1,), "element": (1,) + y.shape[1:]}[prelu]
        slopes = g.standard_normal(shape).astype(np.float32)
        ref = np.where(ref > 0, ref, slopes * ref)
        t = graph.add_op("PRELU", [t, graph.add_const("slopes", slopes)], ref.shape, name="prelu")
    graph.outputs += [t, conv] if conv_is_output else [t]
    if r:
        graph.tensors["w"].group_size = r
    run_all(graph, sparse=False)
    return serialize(graph), inputs, ref.astype(np.float32)


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("case", CONV_ADD_CASES)
@pytest.mark.parametrize("conv_act,add_act,residual_first,add,prelu", [
    ("NONE", "RELU", False, True, None), ("SILU", "HARDSWISH", True, True, "channel"),
    ("RELU6", "NONE", False, False, "channel"), ("NONE", "NONE", True, True, "shared")])
def test_conv_add_prelu_matches_unfused_and_numpy(case, conv_act, add_act, residual_first, add, prelu, kernels):
    data, inputs, ref = conv_add_graph(case, conv_act, add_act, residual_first, add=add, prelu=prelu)
    model = sparselite.load(data, **KERNELS[kernels])
    members = (["add"] if add else []) + (["prelu"] if prelu else [])
    assert fused_members(model, inputs) == (members if case[-1] else [])
    (y,) = model.run(inputs)
    (unfused,) = sparselite.load(data, fuse=False, **KERNELS[kernels]).run(inputs)
    if add and conv_act == "NONE" and add_act in ("NONE", "RELU"):
        # 1x1 spmm and gemm start their sums from the residual: the same terms in another order
        assert rel_err(y, unfused) < 1e-6
    else:
        assert np.array_equal(y, unfused)  # the same kernels, the ADD only moved
    assert rel_err(y, ref) < 1e-5


def test_conv_add_does_not_depend_on_threads_and_keeps_shared_outputs():
    for case in CONV_ADD_CASES[:7]:
        data, inputs, _ = conv_add_graph(case, "RELU", "NONE", False, seed=7)
        outs = [sparselite.load(data, num_threads=t).run(inputs)[0] for t in (1, 2, 3)]
        assert all(np.array_equal(outs[0], o) for o in outs[1:])
    # The residual is the convolution's own input (an identity shortcut): the ADD's output must
    # get bytes of its own, not the input's.
    g = np.random.default_rng(2)
    x = g.standard_normal((1, 8, 30, 30)).astype(np.float32)
    wt = g.standard_normal((8, 8, 1, 1)).astype(np.float32)
    graph = Graph()
    t = graph.add_input("x", x.shape)
    t = graph.add_op("CONV2D", [t, graph.add_const("w", wt)], x.shape, name="conv")
    t = graph.add_op("ADD", [t, "x"], x.shape, name="add", options=dict(activation="RELU"))
    graph.outputs.append(graph.add_op("MUL", [t, "x"], x.shape, name="mul"))
    run_all(graph, sparse=False)
    model = sparselite.load(serialize(graph))
    assert fused_members(model, x) == ["add"]
    ref = np.maximum(conv2d_ref(x, wt, None, (1, 1), (1, 1), (0, 0, 0, 0), 1) + x, 0) * x
    assert rel_err(model.run(x)[0], ref) < 1e-5
    # Slopes per element are no epilogue: the PRELU stays an op of its own after the fused ADD.
    data, inputs, ref = conv_add_graph(CONV_ADD_CASES[0], "NONE", "NONE", False, prelu="element")
    model = sparselite.load(data)
    assert fused_members(model, inputs) == ["add"]
    assert rel_err(model.run(inputs)[0], ref) < 1e-5
    # A convolution output that something else (here the graph's outputs) reads too stays unfused.
    data, inputs, ref = conv_add_graph(CONV_ADD_CASES[0], "NONE", "NONE", False, conv_is_output=True)
    model = sparselite.load(data)
    assert fused_members(model, inputs) == []
    assert rel_err(model.run(inputs)[0], ref) < 1e-5


def test_interleaved_branches_fuse_where_inputs_are_ready():
    """Two branches whose ops interleave (TFLite's order in MediaPipe models): each ADD and PRELU
    joins its convolution; an ADD of two convolutions joins the second, whose input is ready last."""
    g = np.random.default_rng(4)
    x = g.standard_normal((1, 8, 12, 12)).astype(np.float32)
    wa, wb, wc = (g.standard_normal((8, 8, 1, 1)).astype(np.float32) for _ in range(3))
    slopes = g.standard_normal((1, 8, 1, 1)).astype(np.float32)
    graph = Graph()
    graph.add_input("x", x.shape)
    a = graph.add_op("CONV2D", ["x", graph.add_const("wa", wa)], x.shape, name="conv_a")
    b = graph.add_op("CONV2D", ["x", graph.add_const("wb", wb)], x.shape, name="conv_b")
    a = graph.add_op("ADD", [a, "x"], x.shape, name="add_a")
    b = graph.add_op("ADD", ["x", b], x.shape, name="add_b")
    a = graph.add_op("PRELU", [a, graph.add_const("slopes", slopes)], x.shape, name="prelu_a")
    c = graph.add_op("CONV2D", [a, graph.add_const("wc", wc)], x.shape, name="conv_c")
    graph.outputs.append(graph.add_op("ADD", [b, c], x.shape, name="sum"))
    run_all(graph, sparse=False)
    data = serialize(graph)
    model = sparselite.load(data)
    assert sorted(fused_members(model, x)) == ["add_a", "add_b", "prelu_a", "sum"]

    def conv(v, w):
        return conv2d_ref(v, w, None, (1, 1), (1, 1), (0, 0, 0, 0), 1)
    pa = conv(x, wa) + x
    pa = np.where(pa > 0, pa, slopes * pa)
    ref = conv(x, wb) + x + conv(pa, wc)
    (y,) = model.run(x)
    assert rel_err(y, ref) < 1e-5
    # "sum" is written over b's bytes, its sums started from them: the unfused floats to rounding
    assert rel_err(y, sparselite.load(data, fuse=False).run(x)[0]) < 1e-6


@pytest.mark.parametrize("pads,folded", [((0, 0, 0, 0, 0, 8, 0, 0), True),    # BlazeFace: channels padded after
                                         ((0, 3, 0, 0, 0, 5, 0, 0), True),    # and on both sides
                                         ((0, 0, 0, 0, 0, 8, 1, 0), False)])  # rows too, then cropped: not ready
@pytest.mark.parametrize("batch", [1, 2])
def test_channel_padding_folds_into_the_residual(pads, folded, batch):
    """CONV2D -> ADD(conv, PAD(x) along channels with zeros) -> RELU: the convolution adds x to its
    padded channels' range and only clamps the others; the PAD never runs."""
    g = np.random.default_rng(6)
    c, h, w = 8, 11, 13
    x = g.standard_normal((batch, c, h, w)).astype(np.float32)
    padded = np.pad(x, [(pads[i], pads[i + 4]) for i in range(4)])
    wt = g.standard_normal((padded.shape[1], c, 3, 3)).astype(np.float32)
    graph = Graph()
    graph.add_input("x", x.shape)
    y = graph.add_op("CONV2D", ["x", graph.add_const("w", wt)], (batch, padded.shape[1], h, w), name="conv",
                     options=dict(padding=(1, 1, 1, 1)))
    p = graph.add_op("PAD", ["x"], padded.shape, name="pad", options=dict(pads=list(pads), value=0.0))
    if not folded:  # rows padded too: crop back to the convolution's shape
        p = graph.add_op("SLICE", [p], (batch, padded.shape[1], h, w), name="crop",
                         options=dict(begin=[0, 0, 0, 0], step=[1, 1, 1, 1]))
        padded = padded[:, :, :h, :w]
    graph.outputs.append(graph.add_op("ADD", [y, p], (batch, padded.shape[1], h, w), name="add",
                                      options=dict(activation="RELU")))
    run_all(graph, sparse=False)
    data = serialize(graph)
    model = sparselite.load(data)
    assert sorted(fused_members(model, x)) == (["add", "pad"] if folded else [])
    ref = np.maximum(conv2d_ref(x, wt, None, (1, 1), (1, 1), (1, 1, 1, 1), 1) + padded, 0)
    (out,) = model.run(x)
    assert rel_err(out, ref) < 1e-5
    assert np.array_equal(out, sparselite.load(data, fuse=False).run(x)[0])


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("case,pre", PRE_CASES)
def test_leading_depthwise_chain_matches_unfused_and_numpy(case, pre, kernels):
    data, x, ref = inverted_residual(case, ("RELU", "NONE", "NONE"), "RELU", seed=4, pre=pre)
    check_bands(data, x, ref, ["expand", "dw", "project"] + (["add"] if case[9] else []), kernels)


def test_leading_depthwise_results_do_not_depend_on_threads():
    for case, pre in PRE_CASES[:3]:
        data, x, _ = inverted_residual(case, pre=pre, seed=6)
        outs = [sparselite.load(data, fuse=2, num_threads=t).run(x)[0] for t in (1, 2, 3)]
        assert all(np.array_equal(outs[0], o) for o in outs[1:])


def test_leading_depthwise_that_cannot_run_in_place_stays_apart():
    # 7x7 (wider than the in-place kernel's reach) and valid padding (a smaller output): the chain
    # after it still fuses, without the ADD, whose residual is the depthwise's input.
    for pre, residual in (((7, (3, 3, 3, 3), "NONE"), True), ((3, (0, 0, 0, 0), "NONE"), False)):
        rows = 12 if residual else 10  # valid padding: the expand sees 10x10
        case = (1, 6, 8, 6, rows, rows, 3, (1, 1), (1, 1, 1, 1), residual, 0)
        data, x, ref = inverted_residual(case, pre=pre, seed=2)
        model = sparselite.load(data, fuse=2)
        assert fused_members(model, x) == ["dw", "project"]
        assert rel_err(model.run(x)[0], ref) < 1e-5


def test_automatic_fusion_takes_blazeface_96x96_double_blocks():
    # 32 channels at 96x96 (1.2 MB a tensor), 1x1s 70% sparse: fused where a core's L2 is 2 MB (a
    # band of 13 rows in a quarter of it); a 1 MB L2's 256 KB band budget holds 5 rows, of which the
    # 2 rows bands share are more than 30% (the sparse BlazeFace's double blocks on a Zen 4 EPYC:
    # 0.33 ms unfused, 0.44 fused in bands of 5). The 48x48 twin (590 KB) is not fused anywhere.
    big = (1, 32, 8, 32, 96, 96, 3, (1, 1), (1, 1, 1, 1), True, 1)
    data, x, ref = inverted_residual(big, ("RELU", "NONE", "NONE"), "RELU", pre=(3, (1, 1, 1, 1), "NONE"),
                                     density=0.3)
    model = sparselite.load(data)
    if core_l2_bytes() >= 2 * 1024 * 1024:
        assert fused_members(model, x) == ["expand", "dw", "project", "add"]
        assert model.arena_bytes < sparselite.load(data, fuse=False).arena_bytes
    else:
        assert fused_members(model, x) == ["add"]
    assert rel_err(model.run(x)[0], ref) < 1e-5
    small = (1, 64, 16, 64, 48, 48) + big[6:]
    data, x, _ = inverted_residual(small, ("RELU", "NONE", "NONE"), "RELU", pre=(3, (1, 1, 1, 1), "NONE"),
                                   density=0.3)
    assert fused_members(sparselite.load(data), x) == ["add"]  # the project convolution's epilogue


def bottleneck_graph(tail, group, c=16, hw=20, seed=3):
    """x -> conv_a (the residual r) -> conv_b -> conv_c -> ADD(conv_c, r), all 1x1 with c channels, then
    `tail`: None (the sum is the output), "mul" (MUL(sum, r): r read after the ADD), "r_out" (r is a
    graph output too) or "mul_before" (MUL(r, r) between conv_b and conv_c: r read once more before)."""
    g = np.random.default_rng(seed)
    x = g.standard_normal((1, c, hw, hw)).astype(np.float32)
    wa, wb, wc = (g.standard_normal((c, c, 1, 1)).astype(np.float32) / 4 for _ in range(3))

    def conv(v, w):
        return conv2d_ref(v, w, None, (1, 1), (1, 1), (0, 0, 0, 0), 1)
    graph = Graph()
    graph.add_input("x", x.shape)
    r = graph.add_op("CONV2D", ["x", graph.add_const("wa", wa)], x.shape, name="conv_a")
    b = graph.add_op("CONV2D", [r, graph.add_const("wb", wb)], x.shape, name="conv_b")
    ra = conv(x, wa)
    rb = conv(ra, wb)
    if tail == "mul_before":
        sq = graph.add_op("MUL", [r, r], x.shape, name="square")
    y = graph.add_op("CONV2D", [b, graph.add_const("wc", wc)], x.shape, name="conv_c")
    y = graph.add_op("ADD", [y, r], x.shape, name="add", options=dict(activation="RELU"))
    ref = np.maximum(conv(rb, wc) + ra, 0)
    refs = [ref]
    if tail == "mul":
        y = graph.add_op("MUL", [y, r], x.shape, name="mul")
        refs = [ref * ra]
    graph.outputs.append(y)
    if tail == "r_out":
        graph.outputs.append(r)
        refs.append(ra)
    if tail == "mul_before":
        graph.outputs.append(sq)
        refs.append(ra * ra)
    if group:
        graph.tensors["wc"].group_size = group
    run_all(graph, sparse=False)
    return serialize(graph), x, refs


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("group", [0, 4])
@pytest.mark.parametrize("tail,live", [(None, 3), ("mul", 4), ("r_out", 4), ("mul_before", 4)])
def test_residual_sum_takes_the_residuals_bytes_only_where_nothing_else_reads_them(tail, live, group, kernels):
    """ResNet's bottleneck: the fused conv + ADD writes its sum over the residual it reads, so the
    block holds one activation less at a time; never where r is read again or returned (`live`:
    activations the arena holds at its peak, the graph's input among them for the whole run). Results
    catch a sum written too early, the arena one never written in place. In place, the kernel starts
    its sums from the residual (`add_y`): the unfused ADD's floats to rounding, not bit for bit."""
    data, x, refs = bottleneck_graph(tail, group)
    model = sparselite.load(data, **KERNELS[kernels])
    assert fused_members(model, x) == ["add"]
    unfused = sparselite.load(data, fuse=False, **KERNELS[kernels])
    outs = model.run(x)
    for y, u, ref in zip(outs, unfused.run(x), refs):
        assert rel_err(y, u) < 1e-6
        assert rel_err(y, ref) < 1e-5
    for t in (1, 2, 3):
        threaded = sparselite.load(data, num_threads=t, isa=KERNELS[kernels].get("isa")).run(x)
        assert all(np.array_equal(a, b) for a, b in zip(outs, threaded))
    assert model.arena_bytes == live * x.nbytes
    assert unfused.arena_bytes >= model.arena_bytes + (x.nbytes if tail in (None, "mul_before") else 0)
