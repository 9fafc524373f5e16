"""NaN and infinities behave as the references do, on every kernel configuration: a NaN in goes
out as NaN through convolutions, FC, clamps, ReLU, pooling, softmax and layer norm (never -inf,
0 or a skipped value), whatever instruction set runs. The WASM and NEON builds run the same
checks at the kernel level (tests/test_wasm.py, tests/test_arm.py run kernel_test)."""
import numpy as np
import pytest
import torch

import sparselite
from helpers import ACTIVATIONS, KERNELS, conv2d_ref, group_sparse_weight, run_graph, single_op

rng = np.random.default_rng(11)


def poisoned(shape, infinities=True):
    """Random floats with a NaN, and a +inf and a -inf when `infinities`, at random places."""
    x = rng.standard_normal(shape).astype(np.float32)
    flat = x.reshape(-1)
    spots = rng.choice(flat.size, 3, replace=False)
    flat[spots[0]] = np.nan
    if infinities:
        flat[spots[1]], flat[spots[2]] = np.inf, -np.inf
    return x


def assert_same_nonfinite(y, ref):
    """NaN exactly where the reference has NaN, the same infinities, and the finite values close."""
    ref = np.asarray(ref, dtype=np.float64)
    assert np.array_equal(np.isnan(y), np.isnan(ref)), f"NaN at {np.argwhere(np.isnan(y) != np.isnan(ref))[:5]}"
    inf = np.isinf(ref)
    assert np.array_equal(y[inf], ref[inf]) and not np.isinf(y[~inf]).any()
    finite = np.isfinite(ref)
    assert np.allclose(y[finite], ref[finite], rtol=1e-4, atol=1e-4)


CONVS = {  # c, oc, kernel, stride, pads, groups: each of CONV2D's paths
    "im2col 3x3": (3, 8, (3, 3), (2, 2), (1, 1, 1, 1), 1),
    "gemm 1x1": (6, 10, (1, 1), (1, 1), (0, 0, 0, 0), 1),
    "depthwise 3x3": (6, 6, (3, 3), (1, 1), (1, 1, 1, 1), 6),
}


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("conv", sorted(CONVS))
@pytest.mark.parametrize("act", ["NONE", "RELU", "RELU6", "CLAMP", "SIGMOID", "GELU"])
def test_conv_propagates_nan_and_infinities(conv, act, kernels):
    c, oc, k, stride, pads, groups = CONVS[conv]
    x = poisoned((1, c, 11, 9), infinities=act in ("NONE", "RELU", "RELU6", "CLAMP"))
    w = rng.standard_normal((oc, c // groups) + k).astype(np.float32)
    b = rng.standard_normal(oc).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        ref = ACTIVATIONS[act](conv2d_ref(x, w, b, stride, (1, 1), pads, groups), -0.5, 0.5)
    g, ins = single_op("CONV2D", [x], ref.shape, consts=[w, b], options=dict(
        stride=stride, padding=pads, groups=groups, activation=act, act_min=-0.5, act_max=0.5))
    (y,) = run_graph(g, ins, **KERNELS[kernels])
    assert_same_nonfinite(y, ref)


@pytest.mark.parametrize("kernels", sorted(KERNELS))
def test_fully_connected_propagates_nan(kernels):
    x = poisoned((5, 24))
    w = rng.standard_normal((7, 24)).astype(np.float32)
    with np.errstate(invalid="ignore"):
        ref = np.maximum(x.astype(np.float64) @ w.T, 0)
    g, ins = single_op("FULLY_CONNECTED", [x], ref.shape, consts=[w], options=dict(activation="RELU"))
    (y,) = run_graph(g, ins, **KERNELS[kernels])
    assert_same_nonfinite(y, ref)


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("r", [1, 4, 8])
def test_group_sparse_conv_carries_nan_through_stored_weights(r, kernels):
    """A sparse layer multiplies only stored weights: a NaN input reaches every output whose row stores a
    nonzero for its channel (whether the layer runs sparse or densified), and no other pixel."""
    x = rng.standard_normal((1, 16, 5, 6)).astype(np.float32)
    x[0, 3, 2, 4] = np.nan
    w = group_sparse_weight(rng, 24, 16, r, 0.4)
    g, ins = single_op("CONV2D", [x], (1, 24, 5, 6), consts=[w.reshape(24, 16, 1, 1)], group_size=r)
    (y,) = run_graph(g, ins, **KERNELS[kernels])
    nan = np.isnan(y[0])
    assert nan[w[:, 3] != 0, 2, 4].all()
    nan[:, 2, 4] = False
    assert not nan.any()


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("pool", ["MAX_POOL2D", "AVG_POOL2D", "GLOBAL_AVG_POOL"])
def test_pooling_propagates_nan(pool, kernels):
    x = poisoned((1, 3, 8, 9), infinities=pool == "MAX_POOL2D")
    t = torch.from_numpy(x)
    if pool == "GLOBAL_AVG_POOL":
        ref, options = x.astype(np.float64).mean(axis=(2, 3), keepdims=True), None
    else:
        fn = torch.nn.functional.max_pool2d if pool == "MAX_POOL2D" else torch.nn.functional.avg_pool2d
        ref, options = fn(t, 3, 2, 1).numpy(), dict(kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1))
    g, ins = single_op(pool, [x], ref.shape, options=options)
    (y,) = run_graph(g, ins, **KERNELS[kernels])
    assert_same_nonfinite(y, ref)


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("num_threads", [1, 3])
@pytest.mark.parametrize("k,s,p,ceil", [((3, 3), (2, 2), 1, False), ((2, 2), (2, 2), 0, True),
                                        ((3, 3), (1, 1), 1, True), ((3, 2), (1, 3), (1, 1), True),
                                        ((1, 5), (1, 2), (0, 2), False), ((4, 1), (3, 1), (2, 0), True)])
def test_max_pool_nan_anywhere_in_a_window_wins(k, s, p, ceil, num_threads, kernels):
    """NaN in corners, edges and the interior, in windows' first, middle and last rows and columns,
    beside infinities and in columns no window reads: every window holding one gives NaN, and no
    other (the maxpool kernel carries NaN through its vector and edge windows alike)."""
    x = rng.standard_normal((2, 3, 15, 14)).astype(np.float32)
    flat = x.reshape(-1)
    spots = rng.choice(flat.size, 24, replace=False)
    flat[spots[:8]], flat[spots[8:16]], flat[spots[16:]] = np.nan, np.inf, -np.inf
    x[0, 0, 0, 0] = x[0, 1, -1, -1] = x[1, 2, 0, -1] = x[1, 0, -1, 0] = np.nan
    x[1, 1] = -np.inf  # a plane of -inf but one NaN
    x[1, 1, 7, 6] = np.nan
    pads = (p, p) if isinstance(p, int) else p
    ref = torch.nn.functional.max_pool2d(torch.from_numpy(x), k, s, pads, ceil_mode=ceil).numpy()
    g, ins = single_op("MAX_POOL2D", [x], ref.shape, options=dict(kernel=k, stride=s,
                                                                  padding=(pads[0], pads[1], pads[0], pads[1])))
    (y,) = run_graph(g, ins, **{"num_threads": num_threads, **KERNELS[kernels]})
    assert_same_nonfinite(y, ref)


@pytest.mark.parametrize("kernels", sorted(KERNELS))
def test_softmax_and_layer_norm_turn_a_row_with_nan_into_nan(kernels):
    x = rng.standard_normal((4, 37)).astype(np.float32)
    x[1, 5] = np.nan
    g, ins = single_op("SOFTMAX", [x], x.shape, options=dict(axis=-1))
    (y,) = run_graph(g, ins, **KERNELS[kernels])
    ref = torch.softmax(torch.from_numpy(x), -1).numpy()
    assert_same_nonfinite(y, ref)
    g, ins = single_op("LAYER_NORM", [x], x.shape, options=dict(epsilon=1e-5))
    (y,) = run_graph(g, ins, **KERNELS[kernels])
    ref = torch.nn.functional.layer_norm(torch.from_numpy(x), (37,)).numpy()
    assert_same_nonfinite(y, ref)


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_every_activation_keeps_nan(act, kernels):
    x = poisoned((3, 41), infinities=False)
    g, ins = single_op("ACTIVATION", [x], x.shape, options=dict(activation=act, min=-1.0, max=1.0))
    (y,) = run_graph(g, ins, **KERNELS[kernels])
    assert np.array_equal(np.isnan(y), np.isnan(x))


@pytest.mark.parametrize("kernels", sorted(KERNELS))
@pytest.mark.parametrize("op", ["ADD", "MUL", "PRELU"])
def test_binary_ops_propagate_nan_through_fused_relu(op, kernels):
    a = poisoned((2, 3, 17))
    b = rng.standard_normal((3, 1)).astype(np.float32)
    with np.errstate(invalid="ignore"):
        raw = {"ADD": a + b, "MUL": a * b, "PRELU": np.where(a > 0, a, a * b)}[op]
    ref = np.maximum(raw, 0) if op != "PRELU" else raw
    g, ins = single_op(op, [a], ref.shape, consts=[b], options=dict(activation="RELU" if op != "PRELU" else "NONE"))
    (y,) = run_graph(g, ins, **KERNELS[kernels])
    assert_same_nonfinite(y, ref)


def test_one_nan_pixel_makes_a_pruned_mobilenet_output_nan_on_every_isa():
    from sparselite.converters import from_torch, prune_groups, zoo

    model = zoo.mobilenet_v2()
    prune_groups(model, 0.1, group=4)
    data = from_torch(model, torch.zeros(1, 3, 224, 224)).to_bytes()
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    x[0, 1, 100, 100] = np.nan
    for options in KERNELS.values():
        (y,) = sparselite.load(data, **options).run(x)
        assert np.isnan(y).all(), options
