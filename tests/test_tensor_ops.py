"""CUMSUM, EXPAND, GATHER_ELEMENTS, GROUP_NORM and the elementwise activations NEG..POW (issue 17)
against numpy and torch: every dtype each takes, ranks 1-5, every axis (negative ones too), large
tensors split over threads, dynamic dimensions from one load, under each kernel configuration;
what each refuses at load, naming the op; and that the elementwise functions never fuse into
another op. Models are written without the converter's passes (they would fold constants, and
Graph.check refuses the dtypes only the runtime takes)."""
from collections import namedtuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sparselite
from helpers import KERNELS, run_graph, single_op
from sparselite.converters.ir import Graph
from sparselite.converters.writer import serialize

Input = namedtuple("Input", "shape dtype dynamic", defaults=("float32", ()))
INPUT_DTYPES = {"float32": np.float32, "int32": np.int32, "int64": np.int64, "uint16": np.uint16,
                "uint32": np.uint32, "bool": np.bool_}


def build(op, inputs, out_shape, options=None, out_dtype="float32", out_dynamic=(), dims=None):
    """The .slite bytes of one op over `inputs`: Input specs (graph inputs), arrays (constants) or
    None (an absent optional input)."""
    g = Graph()
    g.dims.update(dims or {})
    names = []
    for i, a in enumerate(inputs):
        if isinstance(a, Input):
            names.append(g.add_input(f"x{i}", a.shape, a.dtype))
            g.tensors[names[-1]].dynamic = tuple(a.dynamic)
        else:
            names.append(None if a is None else g.add_const(f"c{i}", a))
    y = g.add_op(op, names, out_shape, options=options, name=op.lower(), dtype=out_dtype)
    g.tensors[y].dynamic = tuple(out_dynamic)
    g.outputs.append(y)
    return serialize(g)


def random_values(rng, shape, dtype):
    """Floats around 0, or integers over their dtype's whole range (sums wrap)."""
    if dtype == "float32":
        return rng.standard_normal(shape).astype(np.float32)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    info = np.iinfo(INPUT_DTYPES[dtype])
    return rng.integers(info.min, info.max, shape, dtype=INPUT_DTYPES[dtype], endpoint=True)


def random_shape(rng, rank, high=6):
    return tuple(int(n) for n in rng.integers(1, high, rank))


def refused(data, message):
    with pytest.raises(sparselite.InvalidModelError, match=message):
        sparselite.load(data)


# --- CUMSUM ---------------------------------------------------------------------------------------

def cumsum_ref(x, axis, exclusive=False, reverse=False):
    """Sums in float64 for float32 (rounded once), in the integer's own dtype (wrapping) else."""
    acc = np.float64 if x.dtype == np.float32 else x.dtype
    v = np.flip(x, axis) if reverse else x
    y = np.cumsum(v, axis=axis, dtype=acc)
    if exclusive:
        y = y - v.astype(acc)
    return (np.flip(y, axis) if reverse else y).astype(x.dtype)


def assert_cumsum(y, want, key):
    if want.dtype == np.float32:
        assert y.dtype == want.dtype and np.allclose(y, want, rtol=1e-5, atol=1e-5), key
    else:
        assert y.dtype == want.dtype and np.array_equal(y, want), key


@pytest.mark.parametrize("config", sorted(KERNELS))
@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
def test_cumsum_every_axis_matches_numpy(dtype, config):
    """Ranks 1-5, every axis (odd ones negative), exclusive and reverse; integers over their whole
    range, so the sums wrap as numpy's do."""
    rng = np.random.default_rng(hash((dtype, config)) % 2**32)
    for rank in range(1, 6):
        shape = random_shape(rng, rank, 8 if rank < 4 else 5)
        x = random_values(rng, shape, dtype)
        for axis in range(rank):
            for exclusive in (False, True):
                for reverse in (False, True):
                    opts = dict(axis=axis - rank if axis % 2 else axis, exclusive=exclusive, reverse=reverse)
                    model = sparselite.load(build("CUMSUM", [Input(shape, dtype)], shape, opts, dtype), **KERNELS[config])
                    (y,) = model.run(x)
                    assert_cumsum(y, cumsum_ref(x, axis, exclusive, reverse), (shape, opts))


def test_cumsum_matches_torch_position_ids():
    """RoBERTa's position ids: cumsum of the padding mask along the sequence, times the mask."""
    ids = torch.randint(0, 5, (3, 17))
    mask = ids.ne(1).int()
    (y,) = sparselite.load(build("CUMSUM", [Input(mask.shape, "int32")], mask.shape, dict(axis=1), "int32")).run(
        mask.numpy())
    assert np.array_equal(y, torch.cumsum(mask, dim=1).int().numpy())
    x = torch.randn(4, 33, 5)
    (y,) = sparselite.load(build("CUMSUM", [Input(x.shape)], x.shape, dict(axis=-2))).run(x.numpy())
    assert np.allclose(y, torch.cumsum(x, dim=-2).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("config", sorted(KERNELS))
@pytest.mark.parametrize("shape, axis", [((4, 300, 70), 1), ((2, 50000), 1), ((3000, 9), 0), ((2, 3, 700), 2),
                                         ((5, 2000), 0)])
def test_cumsum_large_on_threads(shape, axis, config):
    """Long axes, wide inner blocks (several units per outer index) and many small units."""
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    for exclusive, reverse in ((False, False), (True, True)):
        opts = dict(axis=axis, exclusive=exclusive, reverse=reverse)
        (y,) = sparselite.load(build("CUMSUM", [Input(shape)], shape, opts), **KERNELS[config]).run(x)
        assert_cumsum(y, cumsum_ref(x, axis, exclusive, reverse), opts)


def test_cumsum_follows_dynamic_dimensions():
    dyn = (None, "seq", None)
    for axis in (1, 2):
        model = sparselite.load(build("CUMSUM", [Input((2, 9, 4), "int64", dyn)], (2, 9, 4), dict(axis=axis), "int64",
                                      dyn, dims={"seq": 9}))
        for length in (9, 4, 1):
            x = np.random.default_rng(length).integers(-9, 9, (2, length, 4))
            (y,) = model.run(x)
            assert np.array_equal(y, np.cumsum(x, axis)), (axis, length)


@pytest.mark.parametrize("shape, dtype, out_dtype, options, message", [
    ((3, 4), "float32", "float32", dict(axis=2), r"axis 2 is out of range for rank 2"),
    ((3, 4), "float32", "float32", dict(axis=-3), r"axis -3 is out of range for rank 2"),
    ((), "float32", "float32", dict(axis=0), r"is a scalar: CUMSUM needs an axis"),
    ((3, 4), "uint16", "uint16", dict(axis=0), r"is UINT16: CUMSUM sums float32, int32 or int64"),
    ((3, 4), "int32", "int64", dict(axis=0), r"output \(.*\) is INT64, the input INT32"),
])
def test_cumsum_refuses(shape, dtype, out_dtype, options, message):
    refused(build("CUMSUM", [Input(shape, dtype)], shape, options, out_dtype), r"CUMSUM.*" + message)


def test_cumsum_refuses_another_shape():
    refused(build("CUMSUM", [Input((3, 4))], (4, 3), dict(axis=0)), r"CUMSUM.*output .* has shape \[4,3\], expected "
                                                                   r"\[3,4\]")


# --- EXPAND ---------------------------------------------------------------------------------------

PATTERNS = [((), (3, 4)), ((1,), (5,)), ((4,), (3, 4)), ((3, 1), (3, 4)), ((1, 4), (3, 4)), ((2, 3), (2, 3)),
            ((6,), (1, 1, 6)), ((2, 1, 3), (4, 2, 5, 3)), ((1, 1, 1), (2, 3, 4)), ((5, 1, 1, 7), (5, 3, 2, 7)),
            ((1, 3, 1, 2, 1), (2, 3, 4, 2, 3)), ((2, 1, 1), (2, 1, 9))]


def random_pattern(rng):
    """A random output of rank 1-5 and an input with fewer or as many axes, each the output's or 1."""
    out = random_shape(rng, int(rng.integers(1, 6)))
    keep = int(rng.integers(0, len(out) + 1))
    return tuple(n if rng.random() < 0.5 else 1 for n in out[len(out) - keep:]), out


@pytest.mark.parametrize("config", sorted(KERNELS))
@pytest.mark.parametrize("dtype", sorted(INPUT_DTYPES))
def test_expand_matches_numpy(dtype, config):
    rng = np.random.default_rng(hash((dtype, config)) % 2**32)
    for in_shape, out_shape in PATTERNS + [random_pattern(rng) for _ in range(20)]:
        x = random_values(rng, in_shape, dtype)
        model = sparselite.load(build("EXPAND", [Input(in_shape, dtype)], out_shape, out_dtype=dtype),
                                **KERNELS[config])
        (y,) = model.run(x)
        assert y.dtype == x.dtype and np.array_equal(y, np.broadcast_to(x, out_shape)), (in_shape, out_shape)


def test_expand_of_constants_fills():
    """zeros_like / full: a scalar constant fills the output; bool and uint constants too."""
    rng = np.random.default_rng(0)
    for value, out_shape in [(np.float32(0), (2, 3, 5)), (np.float32(-2.5), (7,)), (np.int64(-2**40), (3, 4)),
                             (np.array(True), (2, 9)), (np.array([[False], [True]]), (2, 5)),
                             (rng.random((1, 3, 1)) < 0.5, (4, 3, 6)), (np.arange(3, dtype=np.uint16), (2, 3))]:
        value = np.asarray(value)
        (y,) = sparselite.load(build("EXPAND", [value], out_shape, out_dtype=str(value.dtype))).run({})
        assert y.dtype == value.dtype and np.array_equal(y, np.broadcast_to(value, out_shape)), (value, out_shape)


@pytest.mark.parametrize("config", sorted(KERNELS))
@pytest.mark.parametrize("in_shape, out_shape", [
    ((1, 300, 1), (8, 300, 500)),   # inner axis repeated, outer copied and repeated: many runs
    ((), (1 << 20,)),               # one run of 4 MB, cut in pieces
    ((1, 40000), (30, 40000)),      # runs of 160 KB copied, in pieces
    ((30, 1), (30, 40000)),         # runs of 160 KB filled, in pieces
    ((64, 1, 700), (64, 8, 700)),   # attention-mask style: runs grouped per task
])
def test_expand_large_on_threads(in_shape, out_shape, config):
    x = np.random.default_rng(2).standard_normal(in_shape).astype(np.float32)
    (y,) = sparselite.load(build("EXPAND", [Input(in_shape)], out_shape), **KERNELS[config]).run(x)
    assert np.array_equal(y, np.broadcast_to(x, out_shape))


def test_expand_follows_dynamic_dimensions():
    """An input axis that follows the output's dynamic dimension, and a constant filled to a dynamic
    output (zeros_like of a dynamic input), from one load."""
    g = Graph()
    g.dims["seq"] = 6
    x = g.add_input("x", (2, 1, 6))
    g.tensors[x].dynamic = (None, None, "seq")
    wide = g.add_op("EXPAND", [x], (2, 5, 6), name="wide")
    full = g.add_op("EXPAND", [g.add_const("c", np.float32(1.5))], (2, 1, 6), name="full")
    summed = g.add_op("ADD", [x, full], (2, 1, 6), name="add")
    for t in (wide, full, summed):
        g.tensors[t].dynamic = (None, None, "seq")
    g.outputs += [wide, summed]
    model = sparselite.load(serialize(g))
    for length in (6, 3, 1):
        v = np.random.default_rng(length).standard_normal((2, 1, length)).astype(np.float32)
        y, s = model.run(v)
        assert np.array_equal(y, np.broadcast_to(v, (2, 5, length))) and np.array_equal(s, v + 1.5), length


@pytest.mark.parametrize("inputs, out_shape, out_dtype, dims, out_dynamic, message", [
    ([Input((3,))], (4,), "float32", None, (), r"input \(x0\) axis 0 of 3 cannot broadcast to the output's 4"),
    ([Input((2, 3))], (3,), "float32", None, (), r"input \(x0\) has rank 2, more than the output's 1"),
    ([Input((2, 3))], (2, 3), "int32", None, (), r"input \(x0\) and output \(.*\) must have one dense dtype"),
    ([Input((2, 4), dynamic=(None, "seq"))], (2, 4), "float32", {"seq": 4}, (),
     r"axis 1 and the output's axis 1 follow different dynamic dimensions \(or one is fixed\)"),
    ([Input((2, 4))], (2, 4), "float32", {"seq": 4}, (None, "seq"),
     r"axis 1 and the output's axis 1 follow different dynamic dimensions \(or one is fixed\): only a fixed size "
     r"of 1 broadcasts to a dynamic one"),
])
def test_expand_refuses(inputs, out_shape, out_dtype, dims, out_dynamic, message):
    refused(build("EXPAND", inputs, out_shape, out_dtype=out_dtype, out_dynamic=out_dynamic, dims=dims),
            r"EXPAND.*" + message)


# --- GATHER_ELEMENTS ------------------------------------------------------------------------------

def gather_elements_ref(x, index, axis):
    """numpy's take_along_axis over the part of x the index covers; 0 where an index lies outside
    [-n, n), n the axis's size."""
    n = x.shape[axis]
    part = x[tuple(slice(None) if d == axis else slice(0, s) for d, s in enumerate(index.shape))]
    ok = (index >= -n) & (index < n)
    y = np.take_along_axis(part, np.where(ok, index % n, 0), axis)
    return np.where(ok, y, np.zeros((), x.dtype))


def random_index(rng, shape, axis, dtype, spread=2):
    """An index tensor for data of `shape`: each other axis up to the data's, indices in
    [-n - spread, n + spread)."""
    ishape = tuple(int(rng.integers(1, 8)) if d == axis else int(rng.integers(1, n + 1)) for d, n in enumerate(shape))
    n = shape[axis]
    return rng.integers(-n - spread, n + spread, ishape).astype(dtype)


@pytest.mark.parametrize("config", sorted(KERNELS))
@pytest.mark.parametrize("dtype", sorted(INPUT_DTYPES))
def test_gather_elements_matches_numpy(dtype, config):
    """Ranks 1-5, every axis (odd ones negative), int32 and int64 indices with negative and
    out-of-range entries."""
    rng = np.random.default_rng(hash((dtype, config)) % 2**32)
    for rank in range(1, 6):
        shape = random_shape(rng, rank)
        x = random_values(rng, shape, dtype)
        for axis in range(rank):
            for index_dtype in ("int32", "int64"):
                idx = random_index(rng, shape, axis, index_dtype)
                opts = dict(axis=axis - rank if axis % 2 else axis)
                data = build("GATHER_ELEMENTS", [Input(shape, dtype), Input(idx.shape, index_dtype)], idx.shape, opts,
                             dtype)
                (y,) = sparselite.load(data, **KERNELS[config]).run([x, idx])
                want = gather_elements_ref(x, idx, axis)
                assert y.dtype == want.dtype and np.array_equal(y, want), (shape, idx.shape, opts)


def test_gather_elements_matches_torch_gather():
    """torch.gather (index axes smaller than the input's) and a bool constant table."""
    x = torch.randn(3, 7, 5)
    idx = torch.randint(0, 7, (2, 4, 5))
    data = build("GATHER_ELEMENTS", [Input(x.shape), Input(idx.shape, "int64")], idx.shape, dict(axis=1))
    (y,) = sparselite.load(data).run([x.numpy(), idx.numpy()])
    assert np.array_equal(y, torch.gather(x, 1, idx).numpy())
    table = np.random.default_rng(0).random((4, 6)) < 0.5
    idx = np.array([[5, -1, 0, 6], [-7, 2, 3, 1]], np.int32)
    data = build("GATHER_ELEMENTS", [table, Input(idx.shape, "int32")], idx.shape, dict(axis=-1), "bool")
    (y,) = sparselite.load(data).run(idx)
    assert y.dtype == np.bool_ and np.array_equal(y, gather_elements_ref(table, idx, 1))


@pytest.mark.parametrize("config", sorted(KERNELS))
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_gather_elements_large_on_threads(axis, config):
    """DeBERTa-sized relative-position gathers, every index inside or outside at random."""
    rng = np.random.default_rng(axis)
    x = rng.standard_normal((4, 300, 200)).astype(np.float32)
    idx = rng.integers(-x.shape[axis] - 3, x.shape[axis] + 3, (4, 300, 200))
    data = build("GATHER_ELEMENTS", [Input(x.shape), Input(idx.shape, "int64")], idx.shape, dict(axis=axis))
    (y,) = sparselite.load(data, **KERNELS[config]).run([x, idx])
    assert np.array_equal(y, gather_elements_ref(x, idx, axis))


def test_gather_elements_follows_dynamic_dimensions():
    """DeBERTa's c2p: scores [BH, T, 2k] gathered along the last axis by positions [BH, T, T]."""
    dyn = (None, "seq", "seq")
    data = build("GATHER_ELEMENTS", [Input((3, 8, 10), dynamic=(None, "seq", None)), Input((3, 8, 8), "int64", dyn)],
                 (3, 8, 8), dict(axis=-1), out_dynamic=dyn, dims={"seq": 8})
    model = sparselite.load(data)
    for length in (8, 5, 1):
        rng = np.random.default_rng(length)
        x = rng.standard_normal((3, length, 10)).astype(np.float32)
        idx = rng.integers(0, 10, (3, length, length))
        (y,) = model.run([x, idx])
        assert np.array_equal(y, np.take_along_axis(x, idx, 2)), length


@pytest.mark.parametrize("x, idx, out_shape, out_dtype, options, message", [
    (Input((3, 4)), Input((3, 4)), (3, 4), "float32", dict(axis=0), r"indices \(x1\) are FLOAT32: they must be int32 "
                                                                   r"or int64"),
    (Input((3, 4)), Input((3, 4), "int32"), (3, 4), "float32", dict(axis=2), r"axis 2 is out of range for rank 2"),
    (Input((3, 4)), Input((3, 4), "int32"), (3, 4), "float32", dict(axis=-3), r"axis -3 is out of range"),
    (Input((3, 4)), Input((12,), "int32"), (12,), "float32", dict(axis=0), r"data \(x0\) of rank 2 and indices "
                                                                         r"\(x1\) of rank 1"),
    (Input((3, 4)), Input((3, 5), "int32"), (3, 5), "float32", dict(axis=0), r"indices \(x1\) axis 1 has 5 entries, "
                                                                           r"more than the data's 4"),
    (Input((3, 4)), Input((3, 2), "int32"), (3, 4), "float32", dict(axis=1), r"output .* has shape \[3,4\], expected "
                                                                           r"\[3,2\]"),
    (Input((3, 4)), Input((3, 2), "int32"), (3, 2), "int32", dict(axis=1), r"data \(x0\) and output .* must have one "
                                                                         r"dense dtype"),
    (Input((), "float32"), Input((), "int32"), (), "float32", dict(axis=0), r"need one rank >= 1"),
])
def test_gather_elements_refuses(x, idx, out_shape, out_dtype, options, message):
    refused(build("GATHER_ELEMENTS", [x, idx], out_shape, options, out_dtype), r"GATHER_ELEMENTS.*" + message)


def test_gather_elements_refuses_a_dynamic_data_axis_the_index_does_not_follow():
    data = build("GATHER_ELEMENTS", [Input((3, 8), dynamic=("seq", None)), Input((3, 8), "int32")], (3, 8),
                 dict(axis=1), dims={"seq": 3})
    refused(data, r"GATHER_ELEMENTS.*data \(x0\) axis 0 follows a dynamic dimension the indices' does not")


# --- GROUP_NORM -----------------------------------------------------------------------------------

def group_norm_model(shape, groups, affine, eps=1e-5, seed=0, dynamic=(), dims=None):
    """(bytes, gamma, beta) of GROUP_NORM over an input of `shape`; affine: "none", "gamma", "beta" or "both"."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    gamma = rng.standard_normal(c).astype(np.float32) if affine in ("gamma", "both") else None
    beta = rng.standard_normal(c).astype(np.float32) if affine in ("beta", "both") else None
    consts = [gamma, beta] if beta is not None else [gamma] if gamma is not None else []
    data = build("GROUP_NORM", [Input(shape, dynamic=dynamic)] + consts, shape, dict(groups=groups, epsilon=eps),
                 out_dynamic=dynamic, dims=dims)
    return data, gamma, beta


def torch_group_norm(x, groups, gamma, beta, eps):
    t = lambda a: None if a is None else torch.from_numpy(a).double()
    return F.group_norm(torch.from_numpy(x).double(), groups, t(gamma), t(beta), eps).numpy()


@pytest.mark.parametrize("config", sorted(KERNELS))
@pytest.mark.parametrize("shape", [(2, 12), (2, 12, 7), (3, 12, 5, 4), (1, 12, 2, 3, 5)])
def test_group_norm_matches_torch(shape, config):
    """Groups 1, C and between; with and without gamma / beta; inputs far from zero mean."""
    x = (np.random.default_rng(len(shape)).standard_normal(shape) * 3 + 5).astype(np.float32)
    for groups in (1, 2, 3, 12):
        for affine in ("none", "gamma", "beta", "both"):
            for eps in (1e-5, 1e-2):
                data, gamma, beta = group_norm_model(shape, groups, affine, eps)
                (y,) = sparselite.load(data, **KERNELS[config]).run(x)
                want = torch_group_norm(x, groups, gamma, beta, eps)
                assert np.allclose(y, want, rtol=1e-5, atol=1e-5), (groups, affine, eps)


def test_group_norm_is_stable_far_from_zero():
    """Variance from two passes in double: 1e4 + N(0, 1) keeps its spread (E[x^2] - E[x]^2 in
    float would lose it)."""
    x = (1e4 + np.random.default_rng(3).standard_normal((2, 8, 300))).astype(np.float32)
    data, gamma, beta = group_norm_model(x.shape, 4, "both")
    (y,) = sparselite.load(data).run(x)
    assert np.allclose(y, torch_group_norm(x, 4, gamma, beta, 1e-5), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("config", sorted(KERNELS))
@pytest.mark.parametrize("shape, groups", [((2, 512, 400), 512), ((1, 64, 10000), 32), ((1, 4, 70000), 1)])
def test_group_norm_large_on_threads(shape, groups, config):
    """Wav2Vec2's feature extractor (groups = channels), many small groups, one large one."""
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    data, gamma, beta = group_norm_model(shape, groups, "both")
    (y,) = sparselite.load(data, **KERNELS[config]).run(x)
    assert np.allclose(y, torch_group_norm(x, groups, gamma, beta, 1e-5), rtol=1e-4, atol=1e-4)


def test_group_norm_follows_dynamic_dimensions():
    data, gamma, beta = group_norm_model((2, 6, 10), 3, "both", dynamic=(None, None, "seq"), dims={"seq": 10})
    model = sparselite.load(data)
    for length in (10, 3, 1):
        x = np.random.default_rng(length).standard_normal((2, 6, length)).astype(np.float32)
        (y,) = model.run(x)
        assert np.allclose(y, torch_group_norm(x, 3, gamma, beta, 1e-5), rtol=1e-4, atol=1e-4), length


def test_group_norm_refuses_dynamic_channels():
    data, _, _ = group_norm_model((2, 6, 10), 3, "none", dynamic=(None, "c", None), dims={"c": 6})
    refused(data, r"GROUP_NORM.*input \(x0\) has its channels \(axis 1\) follow a dynamic dimension")


def test_group_norm_matches_torch_module():
    """nn.GroupNorm with trained-looking parameters, 4-D."""
    module = torch.nn.GroupNorm(4, 8, eps=1e-6)
    with torch.no_grad():
        module.weight.normal_()
        module.bias.normal_()
    x = torch.randn(2, 8, 9, 7)
    data = build("GROUP_NORM", [Input(x.shape), module.weight.detach().numpy(), module.bias.detach().numpy()], x.shape,
                 dict(groups=4, epsilon=1e-6))
    (y,) = sparselite.load(data).run(x.numpy())
    assert np.allclose(y, module(x).detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("inputs, shape, options, message", [
    ([Input((2, 6, 4))], (2, 6, 4), dict(groups=0), r"0 groups cannot split 6 channels"),
    ([Input((2, 6, 4))], (2, 6, 4), dict(groups=-2), r"-2 groups cannot split 6 channels"),
    ([Input((2, 6, 4))], (2, 6, 4), dict(groups=4), r"4 groups cannot split 6 channels: groups must be >= 1 and "
                                                    r"divide them"),
    ([Input((6,))], (6,), dict(groups=1), r"input \(x0\) has rank 1: GROUP_NORM needs \[N, C, ...\]"),
    ([Input((2, 6), "int32")], (2, 6), dict(groups=1), r"input \(x0\) must be float32"),
    ([Input((2, 6, 4))], (2, 6, 4), dict(groups=2, epsilon=0.0), r"epsilon 0 must be positive and finite"),
    ([Input((2, 6, 4))], (2, 6, 4), dict(groups=2, epsilon=-1.0), r"epsilon -1 must be positive"),
    ([Input((2, 6, 4))], (2, 6, 4), dict(groups=2, epsilon=float("inf")), r"epsilon inf must be positive and finite"),
    ([Input((2, 6, 4)), np.ones(4, np.float32)], (2, 6, 4), dict(groups=2), r"gamma \(c1\) has shape \[4\], expected "
                                                                           r"\[6\]"),
    ([Input((2, 6, 4)), Input((6,))], (2, 6, 4), dict(groups=2), r"gamma \(x1\) must be constant"),
    ([Input((2, 6, 4)), None, np.ones((1, 6), np.float32)], (2, 6, 4), dict(groups=2), r"beta \(c2\) has rank 2"),
    ([Input((2, 6, 4))], (2, 6, 5), dict(groups=2), r"output .* has shape \[2,6,5\], expected \[2,6,4\]"),
])
def test_group_norm_refuses(inputs, shape, options, message):
    refused(build("GROUP_NORM", inputs, shape, options), r"GROUP_NORM.*" + message)


# --- elementwise activations ----------------------------------------------------------------------

UNARY = {"NEG": torch.neg, "ABS": torch.abs, "SQRT": torch.sqrt, "RSQRT": torch.rsqrt, "EXP": torch.exp,
         "LOG": torch.log, "ERF": torch.erf}
POW_EXPONENTS = (2.0, 3.0, -1.0, 0.5, -0.5, 1.7, 0.0, -2.0, 4.0, 2.5, -0.3, 1e9)


def unary_inputs():
    """1037 values (vector tails on every ISA): negatives, zeros, tiny and subnormal ones, values
    exp overflows at, infinities and NaN."""
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.standard_normal(600) * 3, rng.uniform(-100, 100, 400),
                        [0.0, -0.0, 1e-40, -1e-40, 1e-30, 1.0, -1.0, 88.7, 89.0, -104.0, -87.5, 2.0, 1e30, -1e30,
                         np.inf, -np.inf, np.nan],
                        rng.standard_normal(20) * 1e-6])
    return x.astype(np.float32)


def assert_elementwise(y, want, key, rtol=1e-5):
    assert np.array_equal(np.isnan(y), np.isnan(want)), (key, x_at(y, want))
    inf = np.isinf(want)
    assert np.array_equal(y[inf], want[inf]), key
    fin = ~np.isnan(want) & ~inf
    assert np.allclose(y[fin], want[fin], rtol=rtol, atol=1e-6), (key, x_at(y, want))


def x_at(y, want):
    """The first index where y and want differ, for messages."""
    bad = ~np.isclose(y, want, rtol=1e-5, atol=1e-6, equal_nan=True)
    return int(np.argmax(bad)) if bad.any() else None


@pytest.mark.parametrize("config", sorted(KERNELS))
@pytest.mark.parametrize("act", sorted(UNARY))
def test_elementwise_activation_matches_torch(act, config):
    x = unary_inputs()
    g, ins = single_op("ACTIVATION", [x], x.shape, options=dict(activation=act))
    (y,) = run_graph(g, ins, **KERNELS[config])
    assert_elementwise(y, UNARY[act](torch.from_numpy(x)).numpy(), act)


@pytest.mark.parametrize("config", sorted(KERNELS))
@pytest.mark.parametrize("exponent", POW_EXPONENTS)
def test_pow_matches_torch(exponent, config):
    """Integer exponents (repeated multiplication), +-0.5 (square roots) and the rest (e^(p ln|x|),
    NaN for negative bases). torch takes sqrt / rsqrt for +-0.5, which differ from powf (C, numpy,
    onnxruntime) at -inf and -0: those two are left out here (the C kernel test holds every ISA to
    powf there)."""
    x = unary_inputs()
    x = x[(x != -np.inf) & ~((x == 0) & np.signbit(x))]
    g, ins = single_op("ACTIVATION", [x], x.shape, options=dict(activation="POW", exponent=exponent))
    (y,) = run_graph(g, ins, **KERNELS[config])
    assert_elementwise(y, torch.pow(torch.from_numpy(x), exponent).numpy(), exponent, rtol=2e-5)


def test_pow_far_from_one_stays_within_float_rounding():
    """e^(p ln x) loses about |p ln x| units in the last place; with |p ln x| < 10 that stays
    within 2e-6 of torch (which computes powf in double)."""
    x = np.random.default_rng(9).uniform(1e-3, 300, 5000).astype(np.float32)
    g, ins = single_op("ACTIVATION", [x], x.shape, options=dict(activation="POW", exponent=1.37))
    (y,) = run_graph(g, ins)
    want = torch.pow(torch.from_numpy(x).double(), 1.37).numpy()
    assert np.max(np.abs(y - want) / want) < 2e-6


def test_elementwise_activations_follow_dynamic_dimensions():
    g = Graph()
    g.dims["seq"] = 9
    x = g.add_input("x", (2, 9))
    g.tensors[x].dynamic = (None, "seq")
    y = g.add_op("ACTIVATION", [x], (2, 9), options=dict(activation="POW", exponent=3.0), name="cube")
    z = g.add_op("ACTIVATION", [y], (2, 9), options=dict(activation="RSQRT"), name="rsqrt")
    for t in (y, z):
        g.tensors[t].dynamic = (None, "seq")
    g.outputs.append(z)
    model = sparselite.load(serialize(g))
    for length in (9, 2):
        v = np.random.default_rng(length).uniform(0.5, 2, (2, length)).astype(np.float32)
        (out,) = model.run(v)
        assert np.allclose(out, v.astype(np.float64) ** -1.5, rtol=1e-5), length


@pytest.mark.parametrize("exponent", [float("nan"), float("inf"), float("-inf")])
def test_pow_refuses_a_non_finite_exponent(exponent):
    g, _ = single_op("ACTIVATION", [np.ones(3, np.float32)], (3,), options=dict(activation="POW", exponent=exponent))
    refused(serialize(g), r"ACTIVATION.*POW's exponent (nan|inf|-inf) must be finite")


@pytest.mark.parametrize("op, act", [("ADD", "NEG"), ("MUL", "POW"), ("FULLY_CONNECTED", "EXP"), ("CONV2D", "LOG")])
def test_elementwise_activations_are_never_fused(op, act):
    """The runtime refuses them fused into another op, naming both; the converter's pass leaves
    them as ACTIVATION ops, which match torch."""
    x = np.random.default_rng(0).uniform(0.5, 2, (1, 4, 3, 3)).astype(np.float32)
    w = np.random.default_rng(1).uniform(0.1, 1, (5, 3) if op == "FULLY_CONNECTED" else (2, 4, 1, 1))
    consts, ref = {"ADD": ([x], lambda: x + x), "MUL": ([x], lambda: x * x),
                   "FULLY_CONNECTED": ([w.astype(np.float32)], lambda: x @ w.T),
                   "CONV2D": ([w.astype(np.float32)], lambda: np.einsum("nchw,oc->nohw", x, w[:, :, 0, 0]))}[op]
    ref = ref()
    fn = {"NEG": np.negative, "POW": lambda v: v ** 2.0, "EXP": np.exp, "LOG": np.log}[act]
    g, _ = single_op(op, [x], ref.shape, consts=consts, options=dict(activation=act, exponent=2.0))
    refused(serialize(g), rf"{op}.*activation {act} cannot be fused into an op: it runs as an ACTIVATION op of its own")
    g, ins = single_op(op, [x], ref.shape, consts=consts)
    y = g.add_op("ACTIVATION", [g.outputs.pop()], ref.shape, options=dict(activation=act, exponent=2.0), name="act")
    g.outputs.append(y)
    (out,) = run_graph(g, ins)
    assert [o.type for o in g.ops] == [op, "ACTIVATION"]
    assert np.allclose(out, fn(ref.astype(np.float64)), rtol=1e-5)


# --- one chain of them, for the WASM and aarch64 builds -------------------------------------------

def chain_model():
    """(bytes, x, torch's output) of GROUP_NORM -> POW 3 -> ERF -> CUMSUM (reverse) ->
    GATHER_ELEMENTS (some indices outside) -> EXPAND -> NEG: test_wasm and test_arm run it."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 6, 10)).astype(np.float32)
    gamma, beta = (rng.standard_normal(6).astype(np.float32) * 0.5 for _ in range(2))
    idx = rng.integers(-12, 12, (2, 6, 4))
    g = Graph()
    t = g.add_input("x", x.shape)
    t = g.add_op("GROUP_NORM", [t, g.add_const("gamma", gamma), g.add_const("beta", beta)], x.shape,
                 options=dict(groups=3), name="norm")
    t = g.add_op("ACTIVATION", [t], x.shape, options=dict(activation="POW", exponent=3.0), name="cube")
    t = g.add_op("ACTIVATION", [t], x.shape, options=dict(activation="ERF"), name="erf")
    t = g.add_op("CUMSUM", [t], x.shape, options=dict(axis=2, reverse=True), name="cumsum")
    t = g.add_op("GATHER_ELEMENTS", [t, g.add_const("idx", idx)], idx.shape, options=dict(axis=-1), name="gather")
    t = g.add_op("EXPAND", [t], (3,) + idx.shape, name="expand")
    g.outputs.append(g.add_op("ACTIVATION", [t], (3,) + idx.shape, options=dict(activation="NEG"), name="neg"))
    v = torch.erf(F.group_norm(torch.from_numpy(x), 3, torch.from_numpy(gamma), torch.from_numpy(beta)) ** 3)
    v = torch.cumsum(v.flip(2), 2).flip(2)
    ok = torch.from_numpy((idx >= -10) & (idx < 10))
    v = torch.where(ok, torch.gather(v, 2, torch.from_numpy(idx % 10)), torch.zeros(()))
    return serialize(g), x, (-v.expand((3,) + idx.shape)).numpy()


def test_chain_matches_torch():
    data, x, want = chain_model()
    (y,) = sparselite.load(data).run(x)
    assert np.allclose(y, want, rtol=1e-5, atol=1e-5)
