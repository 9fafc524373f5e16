"""Winograd convolutions (native/ops/winograd.c): 3x3 stride-1 CONV2D layers through F(2x2, 3x3) and
F(4x4, 3x3) against numpy in float64, on odd shapes and every kernel configuration, bit-identical over
thread counts. load(winograd=2 or 4) forces a tile on layers the cost rule would leave to implicit
GEMM (tiny maps, few channels), so edge cases run on the Winograd kernels too."""
import numpy as np
import pytest

import sparselite
from helpers import ACTIVATIONS, KERNELS, conv2d_ref, group_sparse_weight, run_graph, single_op

rng = np.random.default_rng(14)

SHAPES = [  # batch, in channels, out channels, h, w, pads (t, l, b, r)
    (2, 1, 3, 1, 1, (1, 1, 1, 1)),         # 1x1 map: one tile, mostly padding
    (2, 3, 5, 2, 2, (2, 2, 2, 2)),         # 2x2 map, padding 2
    (2, 7, 300, 3, 3, (0, 0, 0, 0)),       # 3x3 map, no padding: one output
    (2, 300, 17, 13, 11, (1, 0, 2, 1)),    # asymmetric padding, partial tiles right and bottom
    (2, 33, 40, 23, 29, (1, 1, 1, 1)),     # several vectors of tiles per row
    (2, 16, 24, 9, 70, (0, 2, 1, 0)),      # rows of tiles past a vector, tails
    (2, 64, 64, 14, 14, (1, 1, 1, 1)),     # ResNet-like
]


def conv_case(shape, act="NONE", bias=True, sparse=False):
    n, c, oc, h, w, pads = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    if sparse:
        wt = group_sparse_weight(rng, oc, c * 9, 4, 0.6).reshape(oc, c, 3, 3)
    else:
        wt = rng.standard_normal((oc, c, 3, 3)).astype(np.float32)
    b = rng.standard_normal(oc).astype(np.float32) if bias else None
    pre = conv2d_ref(x, wt, b, (1, 1), (1, 1), pads, 1)
    g, ins = single_op("CONV2D", [x], pre.shape, consts=[wt] + ([b] if bias else []),
                       options=dict(padding=pads, activation=act, act_min=-0.5, act_max=0.7),
                       group_size=4 if sparse else 0)
    return g, ins, pre, ACTIVATIONS[act](pre, -0.5, 0.7)


def check(y, pre, ref, tol):
    """Within tol of the float64 result at the scale of the convolution's output."""
    assert y.shape == ref.shape
    err = np.abs(y - ref).max() / max(np.abs(pre).max(), 1e-12)
    assert err < tol, err


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("shape", SHAPES)
def test_odd_shapes_against_float64(shape, tile, kernels):
    sparse = shape[1] * shape[2] % 2 == 0  # every other shape stores its weights group-sparse
    g, ins, pre, ref = conv_case(shape, bias=shape[2] % 2 == 1, sparse=sparse)
    (y,) = run_graph(g, ins, winograd=tile, **KERNELS[kernels])
    check(y, pre, ref, 1e-5 if tile == 2 else 3e-5)


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_every_activation(act, tile):
    g, ins, pre, ref = conv_case((2, 20, 19, 15, 17, (1, 1, 1, 1)), act=act)
    (y,) = run_graph(g, ins, num_threads=2, winograd=tile)
    check(y, pre, ref, 1e-5 if tile == 2 else 3e-5)


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("shape", [(2, 40, 72, 31, 29, (1, 2, 1, 0)), (1, 256, 64, 14, 14, (1, 1, 1, 1))])
def test_bit_identical_over_thread_counts(shape, tile):
    g, ins, _, _ = conv_case(shape, act="HARDSWISH")
    from sparselite.converters.passes import run_all
    from sparselite.converters.writer import serialize

    run_all(g, sparse=False)
    data = serialize(g)
    outs = [sparselite.load(data, num_threads=t, winograd=tile).run(ins)[0] for t in (1, 2, 3)]
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


def resnet_like(c, hw, seed):
    r = np.random.default_rng(seed)
    x = np.maximum(r.standard_normal((1, c, hw, hw)), 0).astype(np.float32)  # after BN and ReLU
    w = (r.standard_normal((c, c, 3, 3)) * np.sqrt(2 / (9 * c))).astype(np.float32)  # He init
    return x, w


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("c,hw", [(64, 56), (128, 28), (256, 14), (512, 7)])
def test_error_on_resnet_like_layers(c, hw, tile):
    """The bar F(4x4) was kept by: within 1e-5 of float64 at the output's scale on ResNet-50's 3x3
    layers (measured 1.7e-6 to 5.5e-6 for F(4x4), under 1e-6 for F(2x2) and implicit GEMM)."""
    x, w = resnet_like(c, hw, seed=c)
    ref = conv2d_ref(x, w, None, (1, 1), (1, 1), (1, 1, 1, 1), 1)
    g, ins = single_op("CONV2D", [x], ref.shape, consts=[w], options=dict(padding=(1, 1, 1, 1)))
    (y,) = run_graph(g, ins, winograd=tile)
    assert np.abs(y - ref).max() / np.abs(ref).max() < 1e-5


@pytest.mark.parametrize("c,hw,tile", [(64, 56, 4), (128, 28, 4), (256, 14, 2), (128, 10, 2), (512, 7, 0), (256, 5, 0),
                                       (8, 56, 0)])
def test_the_rule_picks_the_tile_and_profiles_name_it(c, hw, tile):
    """ResNet-50's layers take F(4x4) on 28x28 and larger maps and F(2x2) down to 7x7; smaller maps and
    few channels stay on implicit GEMM / im2col. FLOPs stay the direct convolution's."""
    x, w = resnet_like(c, hw, seed=1)
    g, ins = single_op("CONV2D", [x], (1, c, hw, hw), consts=[w], options=dict(padding=(1, 1, 1, 1)))
    from sparselite.converters.passes import run_all
    from sparselite.converters.writer import serialize

    run_all(g, sparse=False)
    (op,) = sparselite.load(serialize(g)).profile(ins, runs=1)
    if tile:
        assert "winograd_in" in op.kernel and op.kernel.split("__")[0].endswith(f"x{tile}"), op.kernel
    else:
        assert "winograd" not in op.kernel, op.kernel
    assert op.flops == op.dense_flops == 2 * c * c * 9 * hw * hw


@pytest.mark.parametrize("tile", [2, 4])
def test_nan_reaches_every_output_the_reference_has_it(tile):
    """Winograd mixes a tile's inputs before the products, so a NaN spreads over whole tiles: outputs
    are NaN wherever the direct convolution's are (and may be NaN a few pixels further)."""
    x = rng.standard_normal((1, 24, 17, 19)).astype(np.float32)
    x[0, 5, 8, 3] = np.nan
    w = rng.standard_normal((16, 24, 3, 3)).astype(np.float32)
    with np.errstate(invalid="ignore"):
        ref = conv2d_ref(x, w, None, (1, 1), (1, 1), (1, 1, 1, 1), 1)
    g, ins = single_op("CONV2D", [x], ref.shape, consts=[w], options=dict(padding=(1, 1, 1, 1)))
    (y,) = run_graph(g, ins, winograd=tile)
    assert np.isnan(y[np.isnan(ref)]).all()
    finite = ~np.isnan(y)
    assert np.allclose(y[finite], ref[finite], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("tile", [2, 4])
def test_forcing_a_tile_runs_it_on_a_1x1_map(tile):
    g, ins, _, _ = conv_case(SHAPES[0])
    from sparselite.converters.passes import run_all
    from sparselite.converters.writer import serialize

    run_all(g, sparse=False)
    (op,) = sparselite.load(serialize(g), winograd=tile).profile(ins, runs=1)
    assert "winograd_in" in op.kernel and op.kernel.split("__")[0].endswith(f"x{tile}"), op.kernel
