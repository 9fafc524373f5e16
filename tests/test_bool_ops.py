"""BOOL tensors and integer arithmetic in the runtime, against numpy: COMPARE (every kind and dtype),
LOGICAL and WHERE over random broadcasts of ranks 0-6 with NaN and infinities; integer ADD, SUB, MUL
and DIV (wrapping, truncating division, x / 0 = 0); CAST to and from bool; RESHAPE, TRANSPOSE, SLICE,
CONCAT and GATHER on bool (and TRANSPOSE on every dtype); dynamic dimensions from one load; bool
inputs and outputs through model.run; and files the runtime refuses at load with a message naming
the op. The WASM build runs a bool graph in tests/test_wasm.py."""
import array
import operator
import re
from unittest import mock

import numpy as np
import pytest

import sparselite
from sparselite.converters import writer
from sparselite.converters.ir import Graph
from sparselite.converters.writer import serialize
from test_slicing import numpy_slice, random_slice

DTYPES = ("float32", "int32", "int64", "bool")
COMPARE = {"EQUAL": np.equal, "NOT_EQUAL": np.not_equal, "LESS": np.less, "LESS_EQUAL": np.less_equal,
           "GREATER": np.greater, "GREATER_EQUAL": np.greater_equal}
LOGICAL = {"AND": np.logical_and, "OR": np.logical_or, "XOR": np.logical_xor}
THREADS = (1, 3)


def model(op, inputs, out_shape, out_dtype, options=None, **load_kwargs):
    """One op over graph inputs x0, x1, ... of the arrays' shapes and dtypes."""
    g = Graph()
    names = [g.add_input(f"x{i}", a.shape, str(a.dtype)) for i, a in enumerate(inputs)]
    g.outputs.append(g.add_op(op, names, out_shape, options=options, name="op", dtype=out_dtype))
    return sparselite.load(serialize(g), **load_kwargs)


def run_op(op, inputs, out_shape, out_dtype, options=None, **load_kwargs):
    (y,) = model(op, inputs, out_shape, out_dtype, options, **load_kwargs).run(list(inputs))
    assert y.dtype == np.dtype(out_dtype) and y.shape == tuple(out_shape)
    return y


def broadcast_shapes(rng, count):
    """The broadcast shape of `count` random shapes, and the shapes: the first of rank 0-6, the others
    trailing parts of it (scalars among them), each with random dimensions set to 1."""
    rank = int(rng.integers(0, 7))
    full = tuple(int(d) for d in rng.integers(1, 5 if rank > 3 else 7, rank))
    shapes = []
    for i in range(count):
        r = rank if i == 0 else int(rng.integers(0, rank + 1))
        shapes.append(tuple(1 if rng.random() < 0.3 else d for d in full[rank - r:]))
    return tuple(int(d) for d in np.broadcast_shapes(*shapes)), shapes


def values(rng, shape, dtype):
    """Few distinct values, so that equal pairs are common; NaN, infinities, -0.0 and integer extremes."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype == "float32":
        pool = np.array([-2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 3e38, np.nan, np.inf, -np.inf], np.float32)
    elif np.iinfo(dtype).min == 0:
        pool = np.array([0, 1, 3, 7, np.iinfo(dtype).max], dtype)
    else:
        info = np.iinfo(dtype)
        pool = np.array([info.min, info.min + 1, -7, -1, 0, 1, 3, 7, info.max], dtype)
    return rng.choice(pool, shape)


# --- COMPARE, LOGICAL, WHERE -------------------------------------------------------------------------

@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_compare_matches_numpy(dtype, threads):
    rng = np.random.default_rng(DTYPES.index(dtype))
    for _ in range(12):
        out, (sa, sb) = broadcast_shapes(rng, 2)
        a, b = values(rng, sa, dtype), values(rng, sb, dtype)
        for kind, ref in COMPARE.items():
            y = run_op("COMPARE", [a, b], out, "bool", dict(kind=kind), num_threads=threads)
            assert np.array_equal(y, ref(a, b)), (kind, sa, sb)


def test_compare_nan_and_signed_zero_as_ieee():
    a = np.array([np.nan, np.nan, 0.0, -0.0, np.inf, -np.inf, 1.0], np.float32)
    b = np.array([np.nan, 1.0, -0.0, 0.0, np.inf, np.nan, np.nan], np.float32)
    got = {kind: run_op("COMPARE", [a, b], a.shape, "bool", dict(kind=kind)) for kind in COMPARE}
    assert got["NOT_EQUAL"].tolist() == [True, True, False, False, False, True, True]
    assert not got["EQUAL"][[0, 1, 5, 6]].any() and not got["LESS"][[0, 1, 5, 6]].any()
    assert not got["GREATER_EQUAL"][[0, 1, 5, 6]].any() and got["LESS_EQUAL"][2:5].all()


@pytest.mark.parametrize("threads", THREADS)
def test_logical_matches_numpy(threads):
    rng = np.random.default_rng(7)
    for _ in range(12):
        out, (sa, sb) = broadcast_shapes(rng, 2)
        a, b = values(rng, sa, "bool"), values(rng, sb, "bool")
        for kind, ref in LOGICAL.items():
            y = run_op("LOGICAL", [a, b], out, "bool", dict(kind=kind), num_threads=threads)
            assert np.array_equal(y, ref(a, b)), (kind, sa, sb)
        assert np.array_equal(run_op("LOGICAL", [a], sa, "bool", dict(kind="NOT"), num_threads=threads), ~a)


def test_any_nonzero_byte_is_true_and_outputs_are_0_or_1():
    """A bool input may hold any byte (a uint8 buffer viewed as bool): every op reads nonzero as true
    and writes 0 or 1."""
    raw = np.array([0, 1, 2, 128, 255, 0], np.uint8).view(bool)
    ones = np.ones(6, bool)
    for op, ins, options, want in [
            ("LOGICAL", [raw], dict(kind="NOT"), [1, 0, 0, 0, 0, 1]),
            ("LOGICAL", [raw, ones], dict(kind="AND"), [0, 1, 1, 1, 1, 0]),
            ("LOGICAL", [raw, ones], dict(kind="XOR"), [1, 0, 0, 0, 0, 1]),
            ("COMPARE", [raw, ones], dict(kind="EQUAL"), [0, 1, 1, 1, 1, 0]),
            ("CAST", [raw], None, [0, 1, 1, 1, 1, 0])]:
        y = run_op(op, ins, (6,), "bool", options)
        assert y.view(np.uint8).tolist() == want, op
    where = run_op("WHERE", [raw, np.arange(6, dtype=np.int32), np.full(6, -1, np.int32)], (6,), "int32")
    assert where.tolist() == [-1, 1, 2, 3, 4, -1]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_where_matches_numpy(dtype, threads):
    rng = np.random.default_rng(10 + DTYPES.index(dtype))
    for _ in range(16):
        out, (sc, sx, sy) = broadcast_shapes(rng, 3)
        c, x, y = values(rng, sc, "bool"), values(rng, sx, dtype), values(rng, sy, dtype)
        got = run_op("WHERE", [c, x, y], out, dtype, num_threads=threads)
        assert np.array_equal(got, np.where(c, x, y), equal_nan=dtype == "float32"), (sc, sx, sy)


def test_where_copies_float_bits():
    """x and y pass as bits: a NaN's payload and -0.0 arrive unchanged."""
    x = np.array([0x7FC00123, 0xFFC00001, 0x80000000, 0x3F800000], np.uint32).view(np.float32)
    y = np.zeros(4, np.float32)
    got = run_op("WHERE", [np.ones(4, bool), x, y], (4,), "float32")
    assert got.view(np.uint32).tolist() == x.view(np.uint32).tolist()


@pytest.mark.parametrize("op", ["COMPARE", "LOGICAL", "WHERE", "ADD"])
def test_large_broadcasts_split_over_threads(op):
    """Rows longer than a task and rows of a few elements, on 1 and 4 threads, against numpy."""
    rng = np.random.default_rng(3)
    for out, shapes in [((5, 40000), [(5, 1), (1, 40000), (40000,)]), ((3000, 3, 7), [(3000, 1, 7), (3, 1), (7,)])]:
        if op == "COMPARE":
            ins = [values(rng, s, "int32") for s in shapes[:2]]
            want, dtype, options = ins[0] < ins[1], "bool", dict(kind="LESS")
        elif op == "LOGICAL":
            ins = [values(rng, s, "bool") for s in shapes[:2]]
            want, dtype, options = ins[0] ^ ins[1], "bool", dict(kind="XOR")
        elif op == "WHERE":
            ins = [values(rng, shapes[0], "bool"), values(rng, shapes[1], "int64"), values(rng, shapes[2], "int64")]
            want, dtype, options = np.where(*ins), "int64", None
        else:
            ins = [values(rng, s, "int64") for s in shapes[:2]]
            want, dtype, options = wrap(ins[0].astype(object) + ins[1], "int64"), "int64", None
        for threads in (1, 4):
            assert np.array_equal(run_op(op, ins, out, dtype, options, num_threads=threads), want), (op, out, threads)


# --- integer arithmetic ------------------------------------------------------------------------------

def wrap(exact, dtype):
    """Python ints (an object array) wrapped to dtype, as two's complement arithmetic leaves them."""
    bits = np.iinfo(dtype).bits
    return np.array([(int(v) + (1 << bits - 1)) % (1 << bits) - (1 << bits - 1) for v in np.ravel(exact)],
                    dtype).reshape(np.shape(exact))


def truncating_div(a, b):
    """a / b rounded toward zero, 0 where b is 0 (the runtime's documented answer)."""
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


INT_OPS = {"ADD": operator.add, "SUB": operator.sub, "MUL": operator.mul,
           "DIV": np.frompyfunc(truncating_div, 2, 1)}


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("op", sorted(INT_OPS))
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_arithmetic_wraps_and_divides_toward_zero(dtype, op, threads):
    """Extremes overflow (INT_MAX + 1, INT_MIN * -1, INT_MIN / -1 wrap), DIV rounds toward zero and
    gives 0 for x / 0; random broadcasts."""
    rng = np.random.default_rng(20 + sorted(INT_OPS).index(op))
    info = np.iinfo(dtype)
    edge = np.array([info.min, info.min, info.max, info.max, -7, 7, -7, 7, 0, 5], dtype)
    by = np.array([-1, 0, 1, -1, 2, -2, -2, 2, 0, 0], dtype)
    cases = [(edge.shape, edge, by)]
    for _ in range(10):
        out, (sa, sb) = broadcast_shapes(rng, 2)
        cases.append((out, values(rng, sa, dtype), values(rng, sb, dtype)))
    for out, a, b in cases:
        got = run_op(op, [a, b], out, dtype, num_threads=threads)
        want = wrap(INT_OPS[op](a.astype(object), b.astype(object)), dtype)
        assert np.array_equal(got, want), (op, a, b, got, want)


def test_float_arithmetic_stays_on_the_vector_kernels():
    """float32 ADD still runs vbinary (its profile names the kernel); integer ADD is plain C."""
    a = np.ones((2, 3), np.float32)
    float_add = model("ADD", [a, a], (2, 3), "float32")
    assert "vbinary" in float_add.profile([a, a], runs=1)[0].kernel
    i = np.ones((2, 3), np.int64)
    assert model("ADD", [i, i], (2, 3), "int64").profile([i, i], runs=1)[0].kernel == ""


# --- CAST ----------------------------------------------------------------------------------------------

def test_cast_to_bool_is_nonzero_nan_included():
    floats = np.array([0.0, -0.0, 1e-45, -1e-45, np.nan, np.inf, -np.inf, 0.5, -3.0], np.float32)
    ints64 = np.array([0, 1, -1, 1 << 32, -(1 << 63), (1 << 53) + 1, 256], np.int64)
    ints32 = np.array([0, 1, -1, -(1 << 31), 256, 0], np.int32)
    for x in (floats, ints64, ints32):
        assert np.array_equal(run_op("CAST", [x], x.shape, "bool"), x.astype(bool)), x.dtype
    assert run_op("CAST", [floats], floats.shape, "bool")[4]   # NaN is true, as numpy and torch


@pytest.mark.parametrize("dtype", DTYPES)
def test_cast_from_bool(dtype):
    x = np.random.default_rng(1).random((3, 5, 4)) < 0.5
    y = run_op("CAST", [x], x.shape, dtype)
    assert np.array_equal(y, x.astype(dtype))


# --- dtype-generic ops on bool -------------------------------------------------------------------------

@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", ["bool", "uint16", "int32", "int64", "float32"])
def test_transpose_of_every_dtype(dtype, threads):
    rng = np.random.default_rng(4)
    for rank in range(1, 7):
        for _ in range(4):
            shape = tuple(int(d) for d in rng.integers(1, 6 if rank < 5 else 4, rank))
            perm = [int(p) for p in rng.permutation(rank)]
            x = values(rng, shape, dtype)
            y = run_op("TRANSPOSE", [x], tuple(shape[p] for p in perm), dtype, dict(perm=perm), num_threads=threads)
            assert np.array_equal(y, x.transpose(perm), equal_nan=dtype == "float32"), (shape, perm)
    x = values(rng, (70, 300, 3), dtype)   # rows long enough for several tasks
    y = run_op("TRANSPOSE", [x], (3, 300, 70), dtype, dict(perm=[2, 1, 0]), num_threads=threads)
    assert np.array_equal(y, x.transpose(2, 1, 0), equal_nan=dtype == "float32")


def test_bool_through_reshape_slice_concat_gather():
    rng = np.random.default_rng(5)
    x = rng.random((4, 6, 5)) < 0.5
    assert np.array_equal(run_op("RESHAPE", [x], (24, 5), "bool"), x.reshape(24, 5))
    for _ in range(20):
        begin, step, counts = random_slice(rng, x.shape)
        y = run_op("SLICE", [x], counts, "bool", dict(begin=begin, step=step))
        assert np.array_equal(y, numpy_slice(x, begin, step, counts)), (begin, step)
    for axis in range(-3, 3):
        other = rng.random(tuple(2 if d == axis % 3 else n for d, n in enumerate(x.shape))) < 0.5
        out = np.concatenate([x, other, x], axis)
        assert np.array_equal(run_op("CONCAT", [x, other, x], out.shape, "bool", dict(axis=axis)), out)
    for dtype in ("bool", "int32", "int64"):
        table = values(rng, (7, 3, 2), dtype)
        ids = np.array([[0, 6, -1], [7, 3, 3]], np.int64)   # -1 and 7 are outside: zero (false) rows
        want = np.where((ids >= 0) & (ids < 7), 1, 0)[..., None, None] * table[np.clip(ids, 0, 6)]
        y = run_op("GATHER", [table, ids], (2, 3, 3, 2), dtype)
        assert np.array_equal(y, want.astype(dtype)), dtype


# --- dynamic dimensions ----------------------------------------------------------------------------------

def masks_file():
    """RoBERTa's padding logic on dynamic batch and length: ids != pad, AND an attention mask, the
    positions' int64 arithmetic, WHERE over token embeddings, a bool output."""
    g = Graph()
    g.dims.update(batch=3, seq=7)
    dyn = ("batch", "seq")

    def op(type, inputs, shape, dtype, options=None, dynamic=dyn):
        out = g.add_op(type, inputs, shape, options=options, name=type.lower(), dtype=dtype)
        g.tensors[out].dynamic = dynamic
        return out

    ids = g.add_input("ids", (3, 7), "int64")
    mask = g.add_input("mask", (3, 7), "bool")
    emb = g.add_input("emb", (3, 7, 4), "float32")
    for name, dynamic in ((ids, dyn), (mask, dyn), (emb, dyn + (None,))):
        g.tensors[name].dynamic = dynamic
    pad = g.add_const("pad", np.array(1, np.int64))
    keep = op("COMPARE", [ids, pad], (3, 7), "bool", dict(kind="NOT_EQUAL"))
    both = op("LOGICAL", [keep, mask], (3, 7), "bool", dict(kind="AND"))
    as_int = op("CAST", [both], (3, 7), "int64")
    positions = op("ADD", [op("MUL", [as_int, ids], (3, 7), "int64"), pad], (3, 7), "int64")
    cond = op("RESHAPE", [both], (3, 7, 1), "bool", dynamic=dyn + (None,))
    zero = g.add_const("zero", np.zeros((1, 4), np.float32))
    masked = op("WHERE", [cond, emb, zero], (3, 7, 4), "float32", dynamic=dyn + (None,))
    flipped = op("TRANSPOSE", [op("LOGICAL", [both], (3, 7), "bool", dict(kind="NOT"))], (7, 3), "bool",
                 dict(perm=[1, 0]), dynamic=("seq", "batch"))
    g.outputs += [positions, masked, flipped]
    return serialize(g)


def test_dynamic_batch_and_length_from_one_load():
    m = sparselite.load(masks_file())
    assert [(s.name, s.dtype, s.dynamic_axes) for s in m.inputs] == [
        ("ids", "int64", (0, 1)), ("mask", "bool", (0, 1)), ("emb", "float32", (0, 1))]
    assert [s.dtype for s in m.outputs] == ["int64", "float32", "bool"]
    rng = np.random.default_rng(6)
    for b, t in [(3, 7), (2, 5), (1, 1), (3, 2), (1, 7)]:
        ids = rng.integers(0, 4, (b, t))
        mask = rng.random((b, t)) < 0.7
        emb = rng.standard_normal((b, t, 4)).astype(np.float32)
        positions, masked, flipped = m.run({"ids": ids, "mask": mask, "emb": emb})
        both = (ids != 1) & mask
        assert np.array_equal(positions, both * ids + 1), (b, t)
        assert np.array_equal(masked, np.where(both[..., None], emb, 0)), (b, t)
        assert flipped.dtype == bool and np.array_equal(flipped, ~both.T), (b, t)


def test_inspect_names_the_dtype_of_non_float_outputs():
    from sparselite.inspect import format_summary, summarize

    data = masks_file()
    text = format_summary(summarize(data, sparselite.load(data)))
    assert re.search(r"COMPARE +compare +\[batch<=3, seq<=7\] bool ", text), text
    assert re.search(r"ADD +add +\[batch<=3, seq<=7\] int64 ", text), text
    assert re.search(r"WHERE +where +\[batch<=3, seq<=7, 4\]  ", text), text   # float32: the shape alone


# --- bool inputs and outputs through model.run --------------------------------------------------------

def test_bool_inputs_take_bool_and_refuse_other_dtypes():
    m = model("LOGICAL", [np.zeros((2, 3), bool)], (2, 3), "bool", dict(kind="NOT"))
    assert m.inputs[0].dtype == "bool" and m.outputs[0].dtype == "bool"
    x = np.array([[True, False, True], [False, False, True]])
    (y,) = m.run(x)
    assert y.dtype == bool and np.array_equal(y, ~x)
    assert np.array_equal(m.run([[[True, False, True], [False, False, True]]])[0], ~x)   # nested lists too
    for bad in (x.astype(np.int64), x.astype(np.float32), x.astype(np.uint8)):
        with pytest.raises(sparselite.InputError, match=f"input 'x0' must be bool, got {bad.dtype}"):
            m.run(bad)
    flat = array.array("B", [1, 0, 1, 0, 0, 1])   # buffers: bytes of 0 and 1, or numpy's '?' format
    assert np.array_equal(m.run(flat)[0], ~x)
    assert np.array_equal(m.run(memoryview(x.ravel()))[0], ~x)
    with pytest.raises(sparselite.InputError, match=r"must be bool \(array typecode 'B'\), got format 'i'"):
        m.run(array.array("i", [1] * 6))


def test_bool_outputs_without_numpy(monkeypatch):
    """Without numpy (Pyodide), a bool output is a Tensor of array('B') with dtype 'bool'."""
    from sparselite import model as model_module

    m = model("COMPARE", [np.zeros(3, np.float32), np.zeros(3, np.float32)], (3,), "bool", dict(kind="LESS"))
    monkeypatch.setattr(model_module, "np", None)
    (y,) = m.run([array.array("f", [1, 2, 3]), array.array("f", [2, 2, 2])])
    assert isinstance(y, sparselite.Tensor) and y.dtype == "bool" and y.tolist() == [1, 0, 0]


# --- refused at load -----------------------------------------------------------------------------------

F, I32, I64, B = (np.zeros((2, 3), t) for t in (np.float32, np.int32, np.int64, bool))


@pytest.mark.parametrize("op, inputs, out_dtype, options, match", [
    ("COMPARE", [F, I32], "bool", dict(kind="LESS"), r"COMPARE, op\): inputs x0 \(float32\) and x1 \(int32\) must "
                                                     "share one dtype"),
    ("COMPARE", [F, F], "float32", dict(kind="LESS"), r"COMPARE, op\): output .* must be bool, not float32"),
    ("COMPARE", [F, np.zeros((3, 2), np.float32)], "bool", dict(kind="EQUAL"),
     r"COMPARE, op\): inputs x0 and x1 do not broadcast along dimension 0 \(2 vs 3\)"),
    ("COMPARE", [F, np.zeros((2, 3), np.uint16)], "bool", dict(kind="EQUAL"), r"COMPARE, op\): inputs .* one dtype"),
    ("LOGICAL", [B, I32], "bool", dict(kind="AND"), r"LOGICAL, op\): input 1 \(x1\) must be bool, not int32"),
    ("LOGICAL", [B, B], "bool", dict(kind="NOT"), r"LOGICAL, op\): NOT takes 1 input, got 2"),
    ("LOGICAL", [B], "bool", dict(kind="OR"), r"LOGICAL, op\): OR takes 2 inputs, got 1"),
    ("LOGICAL", [B, B], "int32", dict(kind="XOR"), r"LOGICAL, op\): output .* must be bool, not int32"),
    ("WHERE", [F, F, F], "float32", None, r"WHERE, op\): condition \(x0\) must be bool, not float32"),
    ("WHERE", [B, I32, F], "int32", None, r"WHERE, op\): x \(x1, int32\), y \(x2, float32\) .* must share one dtype"),
    ("WHERE", [B, I64, I64], "int32", None, r"WHERE, op\): .*output .*int32.* must share one dtype"),
    ("WHERE", [np.zeros((4, 1, 3), bool), F, np.zeros((5, 1, 1), np.float32)], "float32", None,
     r"WHERE, op\): inputs x0 and x2 do not broadcast along dimension 0 \(4 vs 5\)"),
    ("ADD", [I32, I64], "int32", None, r"ADD, op\): inputs x0 \(int32\), x1 \(int64\) .* must share one dtype"),
    ("DIV", [I64, I64], "int32", None, r"DIV, op\): .*the output .*int32.* must share one dtype"),
    ("MUL", [I32, I32], "int32", dict(activation="RELU"), r"MUL, op\): fused activations apply to float32 only, and x0 is int32"),
    ("PRELU", [I32, I32], "int32", None, r"PRELU, op\): first input \(x0\) must be float32"),
    ("ADD", [B, B], "bool", None, r"ADD, op\): first input \(x0\) must be float32"),
    ("CAST", [np.zeros(3, np.uint16)], "bool", None, r"CAST, op\): casts only between float32, int32, int64 and bool"),
])
def test_refused_at_load_naming_the_op(op, inputs, out_dtype, options, match):
    try:
        out = np.broadcast_shapes(*(a.shape for a in inputs))
    except ValueError:   # the case is that they do not broadcast
        out = inputs[0].shape
    with pytest.raises(sparselite.InvalidModelError, match=match):
        model(op, inputs, out, out_dtype, options)


def test_output_shape_and_unknown_kinds_refused():
    with pytest.raises(sparselite.InvalidModelError, match=r"WHERE, op\): output .* has shape \[2,3\], expected \[2,4\]"):
        model("WHERE", [np.zeros((2, 1), bool), np.zeros((1, 4), np.int32), np.zeros(4, np.int32)], (2, 3), "int32")
    with mock.patch.dict(writer.COMPARE_KINDS, BAD=6):
        with pytest.raises(sparselite.InvalidModelError, match=r"COMPARE, op\): unknown comparison 6"):
            model("COMPARE", [F, F], (2, 3), "bool", dict(kind="BAD"))
    with mock.patch.dict(writer.LOGICAL_KINDS, BAD=200):
        with pytest.raises(sparselite.InvalidModelError, match=r"LOGICAL, op\): unknown logical op 200"):
            model("LOGICAL", [B, B], (2, 3), "bool", dict(kind="BAD"))
