"""Each op's reference kernel against numpy, on random shapes including odd sizes."""
import numpy as np
import pytest

import sparselite
from helpers import ACTIVATIONS, KERNELS, conv2d_ref, group_sparse_weight, rel_err, run_graph, single_op, tiny_encoder
from sparselite.converters.ir import Graph
from sparselite.converters.writer import serialize

rng = np.random.default_rng(7)

CONV_CASES = [
    # n, c, h, w, oc, k, stride, dilation, pads (t, l, b, r), groups
    (1, 3, 17, 13, 8, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 1),
    (2, 5, 9, 11, 7, (3, 2), (1, 2), (1, 1), (0, 1, 2, 0), 1),
    (1, 6, 15, 15, 6, (3, 3), (1, 1), (2, 2), (2, 2, 2, 2), 6),      # depthwise, dilated
    (1, 8, 14, 10, 8, (5, 5), (2, 2), (1, 1), (1, 2, 2, 1), 8),      # depthwise 5x5, TF 'same'
    (1, 6, 7, 9, 9, (3, 1), (1, 1), (1, 3), (1, 0, 1, 0), 3),        # grouped
    (1, 4, 5, 5, 3, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 1),        # pointwise -> GEMM path
    (2, 24, 8, 8, 40, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 1),      # pointwise 8x8: gemm on whole vectors of pixels
    (1, 4, 6, 6, 5, (1, 1), (2, 2), (1, 1), (0, 0, 0, 0), 1),        # strided 1x1 -> subsampled pointwise
    (1, 3, 25, 30, 6, (1, 1), (3, 2), (1, 1), (0, 0, 0, 0), 1),      # strided 1x1, uneven strides
    (1, 5, 40, 37, 5, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 5),      # depthwise, full vector tiles + tail
    (2, 3, 20, 21, 3, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 3),      # depthwise stride 2, odd width
    (1, 4, 19, 18, 4, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1), 4),      # depthwise stride 2, TF 'same'
    (1, 3, 23, 35, 3, (5, 5), (2, 2), (1, 1), (2, 2, 2, 2), 3),      # depthwise 5x5 stride 2
    (1, 4, 9, 133, 4, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1), 4),      # depthwise stride 2, rows past a tile
    (1, 3, 8, 70, 3, (5, 3), (1, 2), (1, 1), (2, 1, 2, 1), 3),       # depthwise stride 1 x 2
    (1, 2, 7, 75, 2, (5, 5), (2, 2), (1, 1), (1, 2, 2, 1), 2),       # depthwise 5x5 stride 2, TF 'same', wide
    (2, 21, 15, 16, 21, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 21),   # depthwise past a channel group: short last one
    (1, 40, 30, 28, 40, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 40),   # depthwise stride 2, tall: dwconv_nc's window slides
    (1, 37, 9, 9, 37, (5, 5), (1, 1), (1, 1), (2, 2, 2, 2), 37),     # depthwise 5x5 on a small map
    (1, 19, 6, 7, 19, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1), 19),     # depthwise stride 2, rows under a vector
    (1, 3, 50, 45, 16, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 1),     # RGB stem: implicit GEMM (>256 outputs)
    (1, 6, 40, 37, 9, (3, 3), (1, 1), (2, 2), (2, 1, 2, 3), 3),      # implicit: grouped, dilated, uneven pads
    (2, 4, 53, 35, 8, (5, 3), (3, 2), (1, 1), (0, 2, 1, 0), 1),      # implicit: odd strides, two images
    (1, 3, 40, 40, 10, (7, 7), (2, 2), (1, 1), (3, 3, 3, 3), 1),     # implicit: 7x7 stride-2 stem
    (1, 3, 21, 230, 10, (7, 7), (2, 2), (1, 1), (3, 3, 3, 3), 1),    # 7x7 stem, rows of 115: in place
    (1, 3, 41, 52, 8, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1), 1),      # stem, TF 'same': rows in place, no left pad
    (1, 3, 70, 66, 12, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 1),     # stem, rows of 33: in place, a partial tile
    (1, 2, 33, 47, 5, (5, 5), (2, 2), (1, 1), (2, 3, 2, 3), 1),      # 5x5 stem, odd left pad
    (1, 3, 20, 61, 4, (3, 3), (2, 2), (1, 1), (0, 0, 0, 0), 1),      # stride 2 reads only part of each row
    (1, 3, 30, 40, 6, (3, 3), (2, 2), (2, 2), (2, 1, 2, 1), 1),      # stride 2, dilated
    (1, 16, 30, 31, 8, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 1),     # stride 2, 144 weights a row: copied out
    (1, 2, 30, 30, 4, (2, 2), (5, 5), (1, 1), (1, 0, 4, 3), 1),      # stride above the kernel: im2col
    (1, 24, 34, 36, 10, (2, 2), (2, 2), (1, 1), (0, 0, 0, 0), 1),    # 2x2 stride 2: no junk columns, in place
    (2, 8, 36, 41, 12, (4, 4), (4, 4), (1, 1), (0, 0, 0, 0), 1),     # patch embedding, two images, cut column
    (1, 48, 20, 22, 16, (2, 2), (2, 2), (1, 1), (0, 0, 0, 0), 2),    # grouped 2x2 stride 2, in place
    (1, 16, 7, 7, 16, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 2),      # 8-channel groups, 7x7: implicit (AVX2/512)
    (1, 32, 14, 15, 32, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 4),    # RegNet's 8-channel groups at stride 2, small map
    # Few pixels: gemm_nc's pixel-major patches copied straight from the image, or from its padded copy
    (1, 32, 6, 7, 64, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 2),      # padded, groups
    (1, 24, 13, 14, 20, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 1),    # padded stride 2 (ResNet's last stage)
    (2, 5, 6, 4, 7, (3, 2), (1, 2), (1, 1), (2, 0, 3, 1), 1),        # uneven pads, two images
    (1, 3, 3, 1, 4, (2, 2), (1, 3), (1, 1), (0, 5, 0, 0), 1),        # every window inside the left padding
    (1, 4, 2, 2, 3, (1, 1), (4, 4), (1, 1), (5, 6, 2, 1), 1),        # windows far apart in padding: gathered
    (1, 16, 8, 8, 24, (2, 2), (2, 2), (1, 1), (0, 0, 0, 0), 1),      # 2x2 stride 2 (MediaPipe)
    (1, 6, 9, 9, 5, (2, 2), (2, 2), (1, 1), (0, 0, 0, 0), 1),        # the last input row and column unread
    (2, 12, 9, 11, 10, (3, 3), (1, 1), (1, 1), (0, 0, 0, 0), 2),     # overlapping windows, groups, two images
    (1, 4, 17, 16, 6, (2, 2), (5, 4), (1, 1), (0, 0, 0, 0), 1),      # stride above the kernel
    (1, 8, 7, 7, 20, (7, 7), (1, 1), (1, 1), (0, 0, 0, 0), 1),       # one output pixel: the whole image
    (1, 5, 8, 9, 7, (2, 3), (2, 1), (2, 1), (0, 0, 0, 0), 1),        # dilated: gathered as before
]


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("act", ["NONE", "RELU6", "HARDSWISH"])
def test_conv2d(case, act, kernels):
    n, c, h, w, oc, (kh, kw), stride, dil, pads, groups = case
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((oc, c // groups, kh, kw)).astype(np.float32)
    b = rng.standard_normal(oc).astype(np.float32)
    ref = ACTIVATIONS[act](conv2d_ref(x, wt, b, stride, dil, pads, groups), 0, 0)
    g, ins = single_op("CONV2D", [x], ref.shape, consts=[wt, b], options=dict(
        stride=stride, dilation=dil, padding=pads, groups=groups, activation=act))
    (y,) = run_graph(g, ins, **KERNELS[kernels])
    assert y.shape == ref.shape
    assert rel_err(y, ref) < 1e-5


@pytest.mark.parametrize("kernels", sorted(KERNELS))
def test_sparse_3x3_conv_runs_densified(kernels):
    x = rng.standard_normal((1, 6, 9, 8)).astype(np.float32)
    wt = group_sparse_weight(rng, 12, 6 * 9, 4, 0.3).reshape(12, 6, 3, 3)
    ref = conv2d_ref(x, wt, None, (1, 1), (1, 1), (1, 1, 1, 1), 1)
    g, ins = single_op("CONV2D", [x], ref.shape, consts=[wt], options=dict(padding=(1, 1, 1, 1)), group_size=4)
    (y,) = run_graph(g, ins, **KERNELS[kernels])
    assert rel_err(y, ref) < 1e-5


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("r", [1, 2, 4, 8])
@pytest.mark.parametrize("oc,k,hw,density", [(13, 7, (5, 3), 0.5), (32, 24, (7, 7), 0.1), (9, 40, (1, 1), 0.0),
                                             (16, 5, (2, 9), 1.0)])
def test_sparse_conv1x1(r, oc, k, hw, density, kernels):
    x = rng.standard_normal((1, k) + hw).astype(np.float32)
    wt = group_sparse_weight(rng, oc, k, r, density)
    b = rng.standard_normal(oc).astype(np.float32)
    ref = np.maximum(np.einsum("ok,nkhw->nohw", wt, x) + b.reshape(1, -1, 1, 1), 0)
    g, ins = single_op("CONV2D", [x], ref.shape, consts=[wt.reshape(oc, k, 1, 1), b],
                       options=dict(activation="RELU"), group_size=r)
    (y,) = run_graph(g, ins, **KERNELS[kernels])
    assert rel_err(y, ref) < 1e-5 if density else np.allclose(y, ref)


@pytest.mark.parametrize("kernels", ["best", "best-2threads"])
@pytest.mark.parametrize("r", [1, 4])
@pytest.mark.parametrize("shape,stride", [((2, 40, 6, 6), (1, 1)), ((1, 24, 14, 14), (1, 1)),
                                          ((2, 32, 13, 13), (2, 2)), ((1, 48, 4, 4), (1, 1))])
def test_sparse_conv1x1_padded_planes(shape, stride, r, kernels):
    """Maps whose planes do not start on a cache line (6x6, 14x14, 7x7 after a stride) and weights
    dense enough for AVX-512's spmm to read x from a whole-line copy (ops/linear.c), batch 2 and a
    strided layer's subsampled input in the same scratch included."""
    x = rng.standard_normal(shape).astype(np.float32)
    oc, k = 96, shape[1]
    wt = group_sparse_weight(rng, oc, k, r, 0.3 if r == 1 else 0.5)  # denser r = 1 layers run dense
    b = rng.standard_normal(oc).astype(np.float32)
    ref = np.einsum("ok,nkhw->nohw", wt, x[:, :, ::stride[0], ::stride[1]]) + b.reshape(1, -1, 1, 1)
    g, ins = single_op("CONV2D", [x], ref.shape, consts=[wt.reshape(oc, k, 1, 1), b], options=dict(stride=stride),
                       group_size=r)
    model = sparselite.load(serialize(g), **dict(KERNELS, best={})[kernels])
    (y,) = model.run(ins)
    assert rel_err(y, ref) < 1e-5
    assert "spmm" in model.profile(ins, runs=1)[0].kernel


@pytest.mark.parametrize("kernels", ["best", "best-2threads"])
@pytest.mark.parametrize("shape,stride", [((2, 40, 14, 14), (1, 1)), ((1, 24, 27, 27), (2, 2)),
                                          ((1, 16, 5, 7), (1, 1))])
def test_dense_conv1x1_padded_planes(shape, stride, kernels):
    """Dense 1x1 layers of 64 panels or more on maps whose planes do not start on a cache line:
    AVX-512's gemm reads x from whole-line planes (ops/linear.c), a strided layer's subsampled
    copy written so directly; 520 output channels leave a last panel of fewer rows."""
    x = rng.standard_normal(shape).astype(np.float32)
    oc, k = 520, shape[1]
    wt = rng.standard_normal((oc, k)).astype(np.float32)
    b = rng.standard_normal(oc).astype(np.float32)
    ref = np.einsum("ok,nkhw->nohw", wt, x[:, :, ::stride[0], ::stride[1]]) + b.reshape(1, -1, 1, 1)
    g, ins = single_op("CONV2D", [x], ref.shape, consts=[wt.reshape(oc, k, 1, 1), b], options=dict(stride=stride))
    model = sparselite.load(serialize(g), **dict(KERNELS, best={})[kernels])
    (y,) = model.run(ins)
    assert rel_err(y, ref) < 1e-5
    assert "gemm" in model.profile(ins, runs=1)[0].kernel


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("stride", [(2, 2), (3, 1)])
def test_sparse_strided_conv1x1(stride, kernels):
    """A strided 1x1 conv (ResNet's downsample) keeps its sparse weights: the input is subsampled first."""
    x = rng.standard_normal((2, 24, 15, 14)).astype(np.float32)
    wt = group_sparse_weight(rng, 20, 24, 4, 0.4)
    ref = np.einsum("ok,nkhw->nohw", wt, x[:, :, ::stride[0], ::stride[1]])
    g, ins = single_op("CONV2D", [x], ref.shape, consts=[wt.reshape(20, 24, 1, 1)], options=dict(stride=stride),
                       group_size=4)
    model = sparselite.load(serialize(g), **KERNELS[kernels])
    (y,) = model.run(ins)
    assert rel_err(y, ref) < 1e-5
    assert "spmm" in model.profile(ins, runs=1)[0].kernel


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("rows", [1, 3, 40])
@pytest.mark.parametrize("r", [1, 4, 8])
@pytest.mark.parametrize("weights", ["fp32", "fp16"])
def test_sparse_fully_connected(r, weights, rows, kernels):
    x = rng.standard_normal((rows, 37)).astype(np.float32)
    wt = group_sparse_weight(rng, 21, 37, r, 0.3)
    if weights == "fp16":
        wt = wt.astype(np.float16).astype(np.float32)
    ref = x @ wt.T
    g, ins = single_op("FULLY_CONNECTED", [x], ref.shape, consts=[wt], group_size=r)
    (y,) = run_graph(g, ins, weights=weights, **KERNELS[kernels])
    assert rel_err(y, ref) < 1e-5


@pytest.mark.parametrize("kernels", sorted(KERNELS))
def test_dense_fully_connected_with_bias_and_rank3(kernels):
    x = rng.standard_normal((2, 3, 10)).astype(np.float32)
    wt = rng.standard_normal((4, 10)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    ref = np.clip(x @ wt.T + b, -1, 0.5)
    g, ins = single_op("FULLY_CONNECTED", [x], ref.shape, consts=[wt, b],
                       options=dict(activation="CLAMP", act_min=-1.0, act_max=0.5))
    (y,) = run_graph(g, ins, **KERNELS[kernels])
    assert rel_err(y, ref) < 1e-5


BINARY = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "DIV": np.divide}


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("sa,sb", [((2, 3, 4, 5), (2, 3, 4, 5)), ((1, 6, 5, 5), (1, 6, 1, 1)),
                                   ((3, 1, 7), (4, 1)), ((5,), (2, 3, 5)), ((1, 4, 3, 3), ()),
                                   ((2, 1, 1, 9), (2, 12, 9, 9)), ((3, 1, 5, 1), (1, 4, 1, 6)),
                                   ((2, 40000), (1, 40000)), ((1, 1, 1), (1, 1))])
def test_binary_broadcast(op, sa, sb):
    """Both operand orders; masks over attention scores, outer products, rows past a task's size."""
    a = rng.standard_normal(sa).astype(np.float32)
    b = (rng.standard_normal(sb) + (3 if op == "DIV" else 0)).astype(np.float32)
    for x, y in ((a, b), (b, a)):
        ref = BINARY[op](x, y)
        g, ins = single_op(op, [x, y], ref.shape)
        (out,) = run_graph(g, ins, num_threads=2)
        assert out.shape == ref.shape and rel_err(out, ref) < 1e-6


def test_binary_with_constant_and_fused_relu():
    a = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)
    c = rng.standard_normal((3, 1, 1)).astype(np.float32)
    g, ins = single_op("ADD", [a], a.shape, consts=[c], options=dict(activation="RELU"))
    (y,) = run_graph(g, ins)
    assert rel_err(y, np.maximum(a + c, 0)) < 1e-6


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_activation(act):
    x = (rng.standard_normal((2, 3, 7)) * 5).astype(np.float32)
    ref = ACTIVATIONS[act](x, -0.5, 2.0)
    g, ins = single_op("ACTIVATION", [x], x.shape, options=dict(activation=act, min=-0.5, max=2.0))
    (y,) = run_graph(g, ins)
    assert np.allclose(y, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("is_max", [True, False])
@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("h,w,k,s,p,ceil", [(9, 7, (3, 3), (2, 2), 1, True), (8, 8, (2, 2), (2, 2), 0, False),
                                            (10, 11, (3, 2), (2, 3), 1, False), (7, 7, (3, 3), (3, 3), 0, True)])
def test_pool2d(is_max, include_pad, h, w, k, s, p, ceil):
    import torch  # the pool reference (PyTorch ceil-mode and padding semantics)

    x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
    fn = torch.nn.functional.max_pool2d if is_max else torch.nn.functional.avg_pool2d
    kw = dict(ceil_mode=ceil) if is_max else dict(ceil_mode=ceil, count_include_pad=include_pad)
    ref = fn(torch.from_numpy(x), k, s, p, **kw).numpy()
    g, ins = single_op("MAX_POOL2D" if is_max else "AVG_POOL2D", [x], ref.shape, options=dict(
        kernel=k, stride=s, padding=(p, p, p, p), count_include_pad=include_pad))
    (y,) = run_graph(g, ins)
    assert rel_err(y, ref) < 1e-6


POOL_CASES = [
    # h, w, kernel, stride, padding, ceil: the fast paths' strides and widths and the generic one
    (112, 112, (3, 3), (2, 2), 1, False),  # ResNet's stem: several output rows a task, tails
    (13, 17, (3, 3), (1, 1), 1, True),     # stride 1, ceil mode changes nothing
    (16, 15, (2, 2), (2, 2), 0, True),     # odd width: the last window hangs past the input
    (9, 10, (3, 2), (2, 3), (1, 1), True),  # stride > kernel along w: columns no window reads
    (11, 11, (5, 5), (3, 3), 2, True),     # kernel > stride, wide padding
    (1, 23, (1, 4), (1, 3), (0, 2), False),  # 1 x N
    (23, 1, (4, 1), (3, 1), (2, 0), True),   # N x 1
    (5, 6, (5, 6), (1, 1), 0, False),      # one window: the whole plane
    (7, 40, (2, 7), (1, 5), (1, 3), True),
    (30, 31, (11, 11), (2, 2), 5, False),  # windows past the maxpool kernel's 8 rows a call
    (20, 25, (9, 10), (1, 1), 4, True),
]


@pytest.mark.parametrize("num_threads", [1, 2, 3])
@pytest.mark.parametrize("is_max", [True, False])
@pytest.mark.parametrize("h,w,k,s,p,ceil", POOL_CASES)
def test_pool2d_shapes_against_torch(h, w, k, s, p, ceil, is_max, num_threads):
    import torch

    x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
    pads = (p, p) if isinstance(p, int) else p
    for include_pad in ([True] if is_max else [True, False]):
        fn = torch.nn.functional.max_pool2d if is_max else torch.nn.functional.avg_pool2d
        kw = dict(ceil_mode=ceil) if is_max else dict(ceil_mode=ceil, count_include_pad=include_pad)
        ref = fn(torch.from_numpy(x), k, s, pads, **kw).numpy()
        g, ins = single_op("MAX_POOL2D" if is_max else "AVG_POOL2D", [x], ref.shape, options=dict(
            kernel=k, stride=s, padding=(pads[0], pads[1], pads[0], pads[1]), count_include_pad=include_pad))
        (y,) = run_graph(g, ins, num_threads=num_threads)
        assert y.shape == ref.shape
        assert np.array_equal(y, ref) if is_max else rel_err(y, ref) < 1e-6


def pool_ref(x, k, s, pads, out_hw, is_max, include_pad):
    """Windows as the op defines them (top, left, bottom, right paddings, which torch cannot take
    unequal), one output at a time in float64."""
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = k, s, pads
    h, w = x.shape[2:]
    y = np.empty(x.shape[:2] + out_hw)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            y0, x0 = oy * sh - pt, ox * sw - pl
            win = x[:, :, max(y0, 0):min(y0 + kh, h), max(x0, 0):min(x0 + kw, w)].astype(np.float64)
            if is_max:
                y[:, :, oy, ox] = win.max(axis=(2, 3))
            else:
                count = ((min(y0 + kh, h + pb) - y0) * (min(x0 + kw, w + pr) - x0) if include_pad
                         else win.shape[2] * win.shape[3])
                y[:, :, oy, ox] = win.sum(axis=(2, 3)) / count
    return y


@pytest.mark.parametrize("is_max", [True, False])
@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("h,w,k,s,pads,out_hw", [
    (10, 9, (3, 3), (2, 2), (0, 0, 1, 1), (5, 5)),    # TF 'same': padding only after
    (8, 11, (4, 3), (2, 2), (3, 2, 0, 1), (5, 7)),    # paddings over half the kernel, ceil mode
    (6, 7, (3, 4), (3, 1), (2, 0, 2, 3), (3, 7)),
])
def test_pool2d_unequal_paddings(h, w, k, s, pads, out_hw, is_max, include_pad):
    x = rng.standard_normal((1, 4, h, w)).astype(np.float32)
    ref = pool_ref(x, k, s, pads, out_hw, is_max, include_pad)
    g, ins = single_op("MAX_POOL2D" if is_max else "AVG_POOL2D", [x], ref.shape, options=dict(
        kernel=k, stride=s, padding=pads, count_include_pad=include_pad))
    (y,) = run_graph(g, ins, num_threads=2)
    assert rel_err(y, ref) < 1e-6


@pytest.mark.parametrize("out_rank", [2, 4])
def test_global_avg_pool(out_rank):
    x = rng.standard_normal((2, 5, 7, 3)).astype(np.float32)
    ref = x.mean(axis=(2, 3), keepdims=out_rank == 4)
    g, ins = single_op("GLOBAL_AVG_POOL", [x], ref.shape)
    (y,) = run_graph(g, ins)
    assert rel_err(y, ref) < 1e-6


@pytest.mark.parametrize("num_threads", [1, 3])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 1, 7), (1, 300, 3, 3), (3, 40, 56, 56), (1, 2, 181, 183)])
def test_global_avg_pool_sizes(shape, num_threads):
    """Planes shorter than, equal to and past the vector sums' width; many planes a task, and one."""
    x = (rng.standard_normal(shape) + 3).astype(np.float32)
    ref = x.astype(np.float64).mean(axis=(2, 3), keepdims=True)
    g, ins = single_op("GLOBAL_AVG_POOL", [x], ref.shape)
    (y,) = run_graph(g, ins, num_threads=num_threads)
    assert rel_err(y, ref) < 1e-5  # float32 sums of up to 33,000 values


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(axis):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    arrays = []
    for i, s in enumerate(shapes):
        s = list(s)
        s[axis] += i
        arrays.append(rng.standard_normal(s).astype(np.float32))
    ref = np.concatenate(arrays, axis=axis)
    g, ins = single_op("CONCAT", arrays, ref.shape, options=dict(axis=axis))
    (y,) = run_graph(g, ins)
    assert np.array_equal(y, ref)


@pytest.mark.parametrize("shape,pads", [((1, 2, 3, 5), [(0, 0), (1, 0), (0, 2), (3, 1)]), ((7,), [(2, 3)]),
                                        ((2, 3, 4), [(1, 1), (0, 0), (0, 0)]), ((2, 1, 2, 2, 3), [(0, 1)] * 5)])
def test_pad(shape, pads):
    x = rng.standard_normal(shape).astype(np.float32)
    ref = np.pad(x, pads, constant_values=-1.5)
    g, ins = single_op("PAD", [x], ref.shape, options=dict(pads=[p[0] for p in pads] + [p[1] for p in pads],
                                                           value=-1.5))
    (y,) = run_graph(g, ins)
    assert np.array_equal(y, ref)


def test_reshape():
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    g, ins = single_op("RESHAPE", [x], (6, 4))
    (y,) = run_graph(g, ins)
    assert np.array_equal(y, x.reshape(6, 4))


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax(axis):
    x = (rng.standard_normal((3, 5, 4)) * 10).astype(np.float32)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    ref = e / e.sum(axis=axis, keepdims=True)
    g, ins = single_op("SOFTMAX", [x], x.shape, options=dict(axis=axis))
    (y,) = run_graph(g, ins)
    assert rel_err(y, ref) < 1e-5


def test_arena_reuses_memory():
    """A chain of ops needs only two live activations at a time, not one per op."""
    g = Graph()
    t = g.add_input("x", (1, 1024))
    for i in range(10):
        t = g.add_op("ACTIVATION", [t], (1, 1024), options=dict(activation="RELU"), name=f"a{i}")
    g.outputs.append(t)
    model = sparselite.load(serialize(g))
    assert model.arena_bytes <= 3 * 4096
    x = rng.standard_normal((1, 1024)).astype(np.float32)
    for _ in range(3):  # reusable: same result every run
        assert np.array_equal(model.run(x)[0], np.maximum(x, 0))


@pytest.mark.parametrize("kernels", sorted(KERNELS))
def test_depthwise_chain_reuses_dirty_scratch(kernels):
    """Padded planes live in scratch shared by every op: each op must re-zero its own padding."""
    x = rng.standard_normal((1, 4, 15, 16)).astype(np.float32)
    w1 = rng.standard_normal((4, 1, 5, 5)).astype(np.float32)
    w2 = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    w3 = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    y1 = conv2d_ref(x, w1, None, (1, 1), (1, 1), (2, 2, 2, 2), 4)
    y2 = conv2d_ref(y1, w2, None, (2, 2), (1, 1), (0, 1, 1, 0), 4)
    y3 = conv2d_ref(y2, w3, None, (2, 2), (1, 1), (1, 0, 0, 1), 4)
    g = Graph()
    t = g.add_input("x", x.shape)
    for i, (w, y, stride, pads) in enumerate([(w1, y1, (1, 1), (2, 2, 2, 2)), (w2, y2, (2, 2), (0, 1, 1, 0)),
                                              (w3, y3, (2, 2), (1, 0, 0, 1))]):
        t = g.add_op("CONV2D", [t, g.add_const(f"w{i}", w)], y.shape, name=f"dw{i}",
                     options=dict(stride=stride, padding=pads, groups=4))
    g.outputs.append(t)
    (y,) = run_graph(g, [x], **KERNELS[kernels])
    assert rel_err(y, y3) < 1e-5


@pytest.mark.parametrize("shape,k,pads", [((1, 24, 40, 37), (3, 3), (1, 1, 1, 1)), ((2, 16, 13, 45), (5, 5), (2, 2, 2, 2)),
                                          ((1, 8, 16, 52), (3, 5), (1, 2, 1, 2)), ((1, 8, 16, 32), (3, 3), (0, 0, 0, 0))])
@pytest.mark.parametrize("isa", [None, ["avx2"], ["sse2"], []])
def test_depthwise_row_bands_match_one_thread(shape, k, pads, isa):
    """Threads split large stride-1 depthwise layers into bands of output rows (ops/depthwise.c):
    bands cross the padded top and bottom rows and the rows read in place, split where the
    kernels' row tiles do (square kernels, wide rows with other taps), and give the single-thread
    answer bit for bit, on every ISA's kernel (narrow vectors' tiles fall elsewhere in each band)."""
    x = rng.standard_normal(shape).astype(np.float32)
    c = shape[1]
    wt = rng.standard_normal((c, 1) + k).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    ref = np.clip(conv2d_ref(x, wt, b, (1, 1), (1, 1), pads, c), 0, 6)
    g, ins = single_op("CONV2D", [x], ref.shape, consts=[wt, b], options=dict(
        padding=pads, groups=c, activation="RELU6"))
    kernels = {} if isa is None else dict(isa=isa)
    outs = [run_graph(g, ins, num_threads=t, **kernels)[0] for t in (1, 2, 3, 4)]
    assert rel_err(outs[0], ref) < 1e-5
    assert all(np.array_equal(outs[0], y) for y in outs[1:])


@pytest.mark.parametrize("value", [0.0, 0.5])
def test_zero_pad_folds_into_the_next_conv(value):
    import torch

    from sparselite.converters import from_torch

    class SamePad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 4, 3, 2, groups=4)

        def forward(self, x):
            return self.conv(torch.nn.functional.pad(x, (0, 1, 0, 1), value=value))

    net = SamePad().eval()
    x = rng.standard_normal((1, 4, 10, 9)).astype(np.float32)
    converted = from_torch(net, torch.from_numpy(x))
    ops = [op.type for op in converted.graph.ops]
    assert ops == (["CONV2D"] if value == 0.0 else ["PAD", "CONV2D"])
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    (y,) = sparselite.load(converted.to_bytes()).run(x)
    assert rel_err(y, ref) < 1e-5


@pytest.mark.parametrize("shape", [(5,), (3, 7), (2, 3, 33)])
@pytest.mark.parametrize("affine", [0, 1, 2])
def test_layer_norm(shape, affine):
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    gamma = rng.standard_normal(shape[-1]).astype(np.float32)
    beta = rng.standard_normal(shape[-1]).astype(np.float32)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)
    ref = ref * (gamma if affine >= 1 else 1) + (beta if affine == 2 else 0)
    g, ins = single_op("LAYER_NORM", [x], x.shape, consts=[gamma, beta][:affine], options=dict(epsilon=1e-6))
    (y,) = run_graph(g, ins)
    assert rel_err(y, ref) < 1e-5


def test_transformer_block_pieces_convert_from_torch():
    import torch

    from sparselite.converters import from_torch

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.LayerNorm(24)
            self.fc1 = torch.nn.Linear(24, 48)
            self.fc2 = torch.nn.Linear(48, 24)

        def forward(self, x):
            h = torch.nn.functional.gelu(self.fc1(self.norm(x)))
            h = torch.nn.functional.gelu(h, approximate="tanh")
            return torch.tanh(self.fc2(h) + x)

    net = Block().eval()
    x = rng.standard_normal((2, 5, 24)).astype(np.float32)
    converted = from_torch(net, torch.from_numpy(x))
    assert "LAYER_NORM" in [op.type for op in converted.graph.ops]
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    for kernels in sorted(KERNELS):
        (y,) = sparselite.load(converted.to_bytes(), **KERNELS[kernels]).run(x)
        assert rel_err(y, ref) < 1e-5, kernels


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("a_shape,b_shape", [((5, 7), (7, 3)), ((2, 3, 9, 16), (2, 3, 16, 33)), ((4, 1, 5), (5, 26)),
                                              ((3, 17, 8), (3, 8, 17))])
def test_matmul(a_shape, b_shape, kernels):
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    ref = a @ b
    g, ins = single_op("MATMUL", [a, b], ref.shape)
    (y,) = run_graph(g, ins, **KERNELS[kernels])
    assert rel_err(y, ref) < 1e-5


@pytest.mark.parametrize("shape,perm", [((3, 4), (1, 0)), ((2, 3, 4, 5), (0, 2, 1, 3)), ((2, 3, 4), (2, 0, 1))])
def test_transpose(shape, perm):
    x = rng.standard_normal(shape).astype(np.float32)
    ref = x.transpose(perm)
    g, ins = single_op("TRANSPOSE", [x], ref.shape, options=dict(perm=list(perm)))
    (y,) = run_graph(g, ins)
    assert np.array_equal(y, ref)


@pytest.mark.parametrize("num_threads", [1, 2, 3])
@pytest.mark.parametrize("shape,perm", [
    ((2, 67, 13, 11), (0, 2, 3, 1)),     # NCHW -> NHWC: [67][143] slices, tiles with tails
    ((2, 13, 11, 67), (0, 3, 1, 2)),     # NHWC -> NCHW
    ((1, 96, 56, 56), (0, 2, 3, 1)),     # ConvNeXt's, many tiles
    ((1, 1024, 7, 7), (0, 2, 3, 1)),     # output rows 4 KB apart: tiles walked column by column
    ((1, 7, 7, 1030), (0, 3, 1, 2)),     # input rows near 4 KB apart: row by row, a tail column
    ((130, 67), (1, 0)), ((3, 1000), (1, 0)), ((1000, 2), (1, 0)),  # 2-D; fewer than 4 rows or columns
    ((5, 1, 7, 1), (3, 2, 1, 0)),        # size-1 dimensions dropped
    ((4, 3, 1, 2), (2, 0, 1, 3)),        # merged to a copy of runs
    ((1, 1, 1), (2, 1, 0)),
    ((3, 4, 5, 6, 7), (4, 1, 3, 0, 2)),  # slices indexed by three dimensions
    ((2, 3, 4, 5, 6, 2), (5, 4, 3, 2, 1, 0)),
    ((600, 3, 5), (0, 2, 1)),            # many small slices a task
    ((2, 61, 47, 3), (0, 3, 1, 2)),      # an RGB image NHWC -> NCHW: channels deinterleaved, tiles of rows
    ((1, 3001, 2), (0, 2, 1)),           # two interleaved channels, a row tile's tail
    ((5, 3, 2), (2, 1, 0)),              # 2 columns, rows 6 floats apart: the general tiles
])
def test_transpose_layouts(shape, perm, num_threads):
    x = rng.standard_normal(shape).astype(np.float32)
    x.reshape(-1)[::7] = np.nan  # moved as bits, NaN included
    ref = x.transpose(perm)
    g, ins = single_op("TRANSPOSE", [x], ref.shape, options=dict(perm=list(perm)))
    (y,) = run_graph(g, ins, num_threads=num_threads)
    assert y.shape == ref.shape and np.array_equal(y.view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("seed", range(20))
def test_transpose_random_permutations(seed):
    r = np.random.default_rng(seed)
    rank = int(r.integers(1, 7))
    shape = tuple(int(v) for v in r.integers(1, 7, rank))
    perm = tuple(int(v) for v in r.permutation(rank))
    x = r.standard_normal(shape).astype(np.float32)
    ref = x.transpose(perm)
    g, ins = single_op("TRANSPOSE", [x], ref.shape, options=dict(perm=list(perm)))
    (y,) = run_graph(g, ins, num_threads=int(r.integers(1, 4)))
    assert np.array_equal(y, ref)


def test_attention_converts_from_torch():
    import torch

    from sparselite.converters import from_torch

    class Attention(torch.nn.Module):
        """BERT-style self-attention: separate query/key/value projections, heads by reshape+permute."""

        def __init__(self, dim=32, heads=4):
            super().__init__()
            self.heads = heads
            self.q, self.k, self.v, self.out = (torch.nn.Linear(dim, dim) for _ in range(4))

        def forward(self, x):
            t, c = x.shape[1], x.shape[2]
            q, k, v = (f(x).reshape(1, t, self.heads, c // self.heads).permute(0, 2, 1, 3)
                       for f in (self.q, self.k, self.v))
            att = torch.softmax(q @ k.transpose(-2, -1) / (c // self.heads) ** 0.5, dim=-1)
            return self.out((att @ v).transpose(1, 2).reshape(1, t, c))

    net = Attention().eval()
    x = rng.standard_normal((1, 7, 32)).astype(np.float32)
    converted = from_torch(net, torch.from_numpy(x))
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    for kernels in sorted(KERNELS):
        (y,) = sparselite.load(converted.to_bytes(), **KERNELS[kernels]).run(x)
        assert rel_err(y, ref) < 1e-5, kernels


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_gather_rows_and_bad_ids(dtype):
    table = rng.standard_normal((11, 3, 4)).astype(np.float32)
    ids = np.array([[0, 10, 3], [-1, 11, 5]], dtype=dtype)  # -1 and 11 are out of range: zero rows
    ref = np.where((ids >= 0) & (ids < 11), 1, 0)[..., None, None] * table[np.clip(ids, 0, 10)]
    g = Graph()
    x = g.add_input("ids", ids.shape, dtype)
    y = g.add_op("GATHER", [g.add_const("table", table), x], ref.shape, name="embed")
    g.outputs.append(y)
    (out,) = run_graph(g, [ids])
    assert np.array_equal(out, ref)


def test_embedding_with_token_ids_converts_from_torch():
    import torch

    from sparselite.converters import from_torch

    class Embed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tokens, self.norm = torch.nn.Embedding(50, 16), torch.nn.LayerNorm(16)

        def forward(self, ids):
            return self.norm(self.tokens(ids))

    net = Embed().eval()
    ids = torch.tensor([[1, 7, 49, 0, 3]])
    converted = from_torch(net, ids)
    assert converted.graph.tensors[converted.graph.inputs[0]].dtype == "int64"
    with torch.no_grad():
        ref = net(ids).numpy()
    (y,) = sparselite.load(converted.to_bytes()).run(ids.numpy().astype(np.int32))  # int32 ids work too
    assert rel_err(y, ref) < 1e-5


@pytest.mark.parametrize("src,dst", [("int64", "float32"), ("int32", "float32"), ("float32", "int32"),
                                     ("float32", "int64"), ("int64", "int32"), ("int32", "int64")])
def test_cast(src, dst):
    if src == "float32":  # truncation toward zero, saturation, NaN -> 0
        x = np.array([[1.7, -1.7, 0.0, 3e9, -3e9, 1e30, -1e30, np.nan]], dtype=np.float32)
        info = np.iinfo(dst)
        ref = np.array([[0 if np.isnan(v) else min(max(int(v), info.min), info.max) for v in x[0]]], dtype=dst)
    else:
        x = np.array([[0, 1, -5, 2**31 - 1, -2**31, 7]], dtype=src)
        ref = x.astype(dst)
    g = Graph()
    inp = g.add_input("x", x.shape, src)
    g.outputs.append(g.add_op("CAST", [inp], x.shape, name="cast", dtype=dst))
    (out,) = run_graph(g, [x])
    assert out.dtype == np.dtype(dst) and np.array_equal(out, ref)


@pytest.mark.parametrize("mask_dtype", ["int64", "int32", "float32", None])
def test_mean_pool_with_mask(mask_dtype):
    x = rng.standard_normal((3, 7, 5)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0, 0, 0], [1] * 7, [0] * 7])  # the last row keeps nothing: zeros
    w = mask.astype(np.float32) if mask_dtype else np.ones((3, 7), np.float32)
    ref = (x * w[..., None]).sum(1) / np.maximum(w.sum(1, keepdims=True), 1e-9)
    g = Graph()
    names = [g.add_input("x", x.shape)] + ([g.add_input("mask", mask.shape, mask_dtype)] if mask_dtype else [])
    g.outputs.append(g.add_op("MEAN_POOL", names, ref.shape, name="pool"))
    (out,) = run_graph(g, [x] + ([mask.astype(mask_dtype)] if mask_dtype else []))
    assert rel_err(out, ref) < 1e-6 and not out[2].any() if mask_dtype else rel_err(out, ref) < 1e-6


@pytest.mark.parametrize("shape", [(4, 384), (2, 3, 17), (1,)])
def test_l2_normalize(shape):
    x = rng.standard_normal(shape).astype(np.float32)
    x[0] = 0  # a zero row stays zero (divided by epsilon)
    ref = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    g, ins = single_op("L2_NORMALIZE", [x], x.shape, options=dict(epsilon=1e-12))
    (out,) = run_graph(g, ins)
    assert rel_err(out, ref) < 1e-6


@pytest.mark.parametrize("kernels", sorted(KERNELS))
def test_dynamic_sequence_length(kernels):
    """One load runs every length up to the converted one, with padding, in any order."""
    import torch

    net, converted = tiny_encoder()
    assert converted.graph.dims == {"seq": 12}
    model = sparselite.load(converted.to_bytes(), **KERNELS[kernels])
    assert [s.dynamic_axes for s in model.inputs] == [(1,), (1,)]
    assert [s.dynamic_axes for s in model.outputs] == [(1,), ()]
    for t, pad in ((12, 0), (5, 2), (1, 0), (12, 7), (7, 3)):
        ids = torch.randint(0, 40, (2, t))
        mask = torch.ones_like(ids)
        mask[1, t - pad:] = 0
        with torch.no_grad():
            ref_h, ref_e = (r.numpy() for r in net(ids, mask))
        h, e = model.run({"ids": ids.numpy(), "mask": mask.numpy()})
        assert h.shape == (2, t, 16) and e.shape == (2, 16)
        assert rel_err(h, ref_h) < 1e-5 and rel_err(e, ref_e) < 1e-5, (t, pad)


def test_dynamic_sequence_length_errors():
    _, converted = tiny_encoder()
    model = sparselite.load(converted.to_bytes())
    ids = np.zeros((2, 13), np.int64)
    with pytest.raises(sparselite.InputError, match=r"must have shape \[2, <=12\], got \[2, 13\]"):
        model.run({"ids": ids, "mask": ids})
    with pytest.raises(sparselite.InputError, match="set by another input sharing a dynamic dimension"):
        model.run({"ids": ids[:, :5], "mask": ids[:, :6]})
    with pytest.raises(sparselite.InputError, match=r"must have shape \[2, <=12\], got \[3, 5\]"):
        model.run({"ids": np.zeros((3, 5), np.int64), "mask": ids[:, :5]})
    (h, _) = model.run({"ids": ids[:, :4], "mask": np.ones((2, 4), np.int64)})  # still usable
    assert h.shape == (2, 4, 16)


def _resize_ref(x, out_h, out_w, align, half):
    """TFLite's bilinear sampling, written out."""
    def axis(out, size):
        scale = (size - 1) / (out - 1) if align and out > 1 else size / out
        src = (np.arange(out) + 0.5) * scale - 0.5 if half else np.arange(out) * scale
        lo = np.clip(np.floor(src), 0, size - 1).astype(int)
        hi = np.clip(np.ceil(src), 0, size - 1).astype(int)
        return lo, hi, (src - lo).astype(np.float32)
    (yl, yh, fy), (xl, xh, fx) = axis(out_h, x.shape[2]), axis(out_w, x.shape[3])
    top = x[:, :, yl][..., xl] * (1 - fx) + x[:, :, yl][..., xh] * fx
    bottom = x[:, :, yh][..., xl] * (1 - fx) + x[:, :, yh][..., xh] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


@pytest.mark.parametrize("align,half", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("size", [(12, 12), (5, 9), (3, 2)])
def test_resize_bilinear(align, half, size):
    x = rng.standard_normal((2, 3, 6, 4)).astype(np.float32)
    ref = _resize_ref(x, *size, align, half)
    g, ins = single_op("RESIZE_BILINEAR", [x], ref.shape, options=dict(align_corners=align, half_pixel_centers=half))
    (y,) = run_graph(g, ins, num_threads=2)
    assert rel_err(y, ref) < 1e-6


@pytest.mark.parametrize("block", [2, 3])
def test_depth_to_space_in_tensorflow_order(block):
    x = rng.standard_normal((2, 2 * block * block, 3, 5)).astype(np.float32)
    nhwc = x.transpose(0, 2, 3, 1)   # TF's definition, on NHWC
    n, h, w, c = nhwc.shape
    ref = nhwc.reshape(n, h, w, block, block, c // block ** 2).transpose(0, 1, 3, 2, 4, 5)
    ref = ref.reshape(n, h * block, w * block, c // block ** 2).transpose(0, 3, 1, 2)
    g, ins = single_op("DEPTH_TO_SPACE", [x], ref.shape, options=dict(block_size=block))
    (y,) = run_graph(g, ins)
    assert np.array_equal(y, ref)


def test_prelu_with_per_channel_alpha():
    x = rng.standard_normal((1, 4, 3, 5)).astype(np.float32)
    alpha = rng.uniform(0, 0.5, (4, 1, 1)).astype(np.float32)
    g, ins = single_op("PRELU", [x], x.shape, consts=[alpha])
    (y,) = run_graph(g, ins)
    assert np.array_equal(y, np.where(x > 0, x, x * alpha))


@pytest.mark.parametrize("mask_shape", [None, (2, 1, 1, 9), (2, 1, 7, 9), (9,), (1, 3, 1, 9)])
@pytest.mark.parametrize("scale", [1.0, 0.125])
def test_softmax_with_scale_and_additive_mask(mask_shape, scale):
    """The fused attention softmax: softmax(scale * x + mask) over the last axis, mask broadcast."""
    x = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)
    mask = None if mask_shape is None else np.where(rng.random(mask_shape) < 0.3, -1e9, 0).astype(np.float32)
    z = x * scale + (0 if mask is None else mask)
    ref = np.exp(z - z.max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    g, ins = single_op("SOFTMAX", [x] + ([mask] if mask is not None else []), x.shape,
                       options=dict(axis=-1, scale=scale))
    (y,) = run_graph(g, ins, num_threads=2)
    assert rel_err(y, ref) < 1e-6


def test_softmax_mask_must_broadcast():
    g, ins = single_op("SOFTMAX", [np.zeros((2, 3, 4), np.float32), np.zeros((3, 3, 4), np.float32)], (2, 3, 4),
                       options=dict(axis=-1))
    with pytest.raises(sparselite.InvalidModelError, match="does not broadcast"):
        run_graph(g, ins)
