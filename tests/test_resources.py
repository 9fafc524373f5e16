"""Bounded loading: the memory limit, arenas zeroed lazily, planning and verifying huge graphs in
near-linear time, files read (not mapped) by path, a stricter verifier (sorted sparse columns,
buffer layout), and integer inputs that must fit their dtype."""
import json
import os
import re
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import sparselite
from helpers import group_sparse_weight, single_op
from sparselite import InputError, InvalidModelError
from sparselite import _schema as S
from sparselite.converters.ir import Graph
from sparselite.converters.passes import run_all
from sparselite.converters.writer import serialize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rng = np.random.default_rng(13)
LIMIT_HINT = r"raise it with sl_model_set_memory_limit / sparselite\.load\(\.\.\., max_memory_bytes=\.\.\.\)"
FLOAT32, INT64 = 0, 3
RESHAPE = 10


# --- .slite files written byte by byte: the Python FlatBuffers builder would take minutes for a
# million entries. Every reference points forward, as FlatBuffers' unsigned offsets require.

def _int_vector(values):
    values = np.asarray(values, "<i4")
    return struct.pack("<I", len(values)) + values.tobytes()


def crafted(num_tensors, shape, inputs, outputs, ops=0, dtype=FLOAT32):
    """`num_tensors` tensors sharing one table (shape, dtype, no data), the given graph inputs and
    outputs, and `ops` RESHAPE ops chained through tensors 0 -> 1 -> ... -> ops."""
    out = bytearray(struct.pack("<I4s", 0, b"SLIT"))
    vtable = len(out)  # Model: format_version, then tensors, operators, inputs, outputs, buffers
    out += struct.pack("<10H", 20, 28, 4, 0, 0, 8, 12, 16, 20, 24)
    root = len(out)
    struct.pack_into("<I", out, 0, root)
    out += struct.pack("<iI5I", root - vtable, 1, 0, 0, 0, 0, 0)

    def point(field):  # the Model field (0 = tensors .. 4 = buffers) refers to what comes next
        at = root + 8 + 4 * field
        struct.pack_into("<I", out, at, len(out) - at)

    def offsets(count):  # a vector of `count` uoffsets, filled by the caller; returns its first entry
        out.extend(struct.pack("<I", count))
        out.extend(bytes(4 * count))
        return len(out) - 4 * count

    point(0)
    entries = offsets(num_tensors)
    tensor_vtable = len(out)  # Tensor: name absent, dtype, shape
    out += struct.pack("<5H2x", 10, 12, 0, 4, 8)
    table = len(out)
    out += struct.pack("<iB3xI", table - tensor_vtable, dtype, 4) + _int_vector(shape)
    out[entries:entries + 4 * num_tensors] = (table - entries - 4 * np.arange(num_tensors)).astype("<u4").tobytes()
    for field, values in ((2, inputs), (3, outputs)):
        point(field)
        out += _int_vector(values)
    point(4)
    out += struct.pack("<I", 0)  # no buffers
    if ops:
        point(1)
        entries = offsets(ops)
        op_vtable = len(out)  # Operator: type, version absent, name absent, inputs, outputs
        out += struct.pack("<7H2x", 14, 16, 4, 0, 0, 8, 12)
        base = len(out)
        records = np.zeros(ops, [("soffset", "<i4"), ("type", "<u2"), ("pad", "<u2"), ("inputs", "<u4"),
                                 ("outputs", "<u4"), ("in_len", "<u4"), ("input", "<i4"), ("out_len", "<u4"),
                                 ("output", "<i4")])
        index = np.arange(ops)
        records["soffset"] = base + 32 * index - op_vtable
        records["type"] = RESHAPE
        records["inputs"], records["outputs"] = 8, 12   # the one-element vectors right after the table
        records["in_len"] = records["out_len"] = 1
        records["input"], records["output"] = index, index + 1
        out += records.tobytes()
        out[entries:entries + 4 * ops] = (base - entries + 28 * index).astype("<u4").tobytes()
    return bytes(out)


def _chain(ops):
    return crafted(ops + 1, [1], [0], [ops], ops=ops)


class CModel:
    """The C API through cffi, without the Python Model's per-input work (a million TensorSpecs)."""

    def __init__(self, data, limit=None):
        from sparselite._native import ffi, lib

        self.ffi, self.lib = ffi, lib
        self.m = ffi.gc(lib.sl_model_new(), lib.sl_model_free)
        if limit is not None:
            assert lib.sl_model_set_memory_limit(self.m, limit) == lib.SL_OK
        start = time.perf_counter()
        self.status = lib.sl_model_load_buffer(self.m, data, len(data), 1)
        self.seconds = time.perf_counter() - start
        self.error = ffi.string(lib.sl_model_last_error(self.m)).decode()

    def io(self, kind, index):
        ptr = self.ffi.new("void**")
        fn = self.lib.sl_model_input_data if kind == "input" else self.lib.sl_model_output_data
        assert fn(self.m, index, ptr) == self.lib.SL_OK
        return self.ffi.cast("float*", ptr[0])


# --- the memory limit --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mobilenet():
    import torch

    from sparselite.converters import from_torch, zoo

    return from_torch(zoo.mobilenet_v2(), torch.zeros(1, 3, 224, 224)).to_bytes()


@pytest.fixture(scope="module")
def minilm():
    """all-MiniLM-L6-v2 with pooling, planned for the README's batch 8 x 128 tokens."""
    import torch

    from sparselite.converters import from_torch, hf, zoo

    ids = torch.zeros(8, 128, dtype=torch.int64)
    return from_torch(hf.Encoder(zoo.minilm_l6(), pooling="mean", normalize=True),
                      {"input_ids": ids, "attention_mask": ids}, dynamic_axes=zoo.MINILM_AXES).to_bytes()


def _run_capped(tmp_path, files, address_space):
    """Loads each file in a fresh interpreter whose address space is capped; returns per file
    (exception type, message, seconds)."""
    script = f"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({address_space}, {address_space}))
import sparselite
results = []
for path in sys.argv[1:]:
    start = time.perf_counter()
    try:
        sparselite.load(path)
        results.append(["loaded", "", time.perf_counter() - start])
    except Exception as exc:
        results.append([type(exc).__name__, str(exc), time.perf_counter() - start])
print(json.dumps(results))
"""
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(zip(files, json.loads(result.stdout)))


def test_small_files_claiming_huge_memory_are_refused_before_allocating(tmp_path):
    """Under a 1 GiB address-space cap, files of a few hundred bytes (one of 8 MB: a million inputs)
    asking for 16 GiB or 4 TiB of activations, or 1.5 GiB (under the limit, over the cap), fail with
    MemoryError at once; the first two name the option before any allocation is tried."""
    files = {
        "arena_16g.slite": crafted(1, [2, 2 ** 30], [0], [0], dtype=INT64),
        "inputs_256g.slite": crafted(1 << 16, [2 ** 20], np.arange(1 << 16), [0]),
        "arena_1g5.slite": crafted(1, [3, 2 ** 27], [0], [0]),
    }
    assert len(files["arena_16g.slite"]) < 512
    got = _run_capped(tmp_path, files, 1 << 30)
    for name in ("arena_16g.slite", "inputs_256g.slite"):
        kind, message, seconds = got[name]
        assert kind == "MemoryError", (name, message)
        assert "over the memory limit of 2147483648 bytes" in message and "max_memory_bytes" in message
        assert seconds < 10, (name, seconds)  # complexity guard: the old planner was quadratic
    kind, message, _ = got["arena_1g5.slite"]
    assert kind == "MemoryError" and "out of memory: cannot allocate" in message, message


def test_arenas_are_zeroed_lazily(tmp_path):
    """A 1.5 GiB arena under the default limit loads without touching its pages (no memset):
    resident memory grows by far less than the arena, and the input reads as zeros."""
    path = tmp_path / "big.slite"
    path.write_bytes(crafted(1, [3, 2 ** 27], [0], [0]))
    script = f"""
import resource, sparselite
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
m = sparselite.load({str(path)!r})
assert m.arena_bytes == 3 * 2 ** 29, m.arena_bytes
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
assert grew < 200 * 1024, f"{{grew}} KiB resident after loading"
assert not any(m._backend.output(0, 4096)), "the arena holds old heap contents"
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_memory_limit_counts_every_block(mobilenet, tmp_path):
    """The smallest limit MobileNetV2 loads under covers the file's copy, the arena, the scratch
    and the rest (tables, packed weights); one byte less fails, naming the option and both sizes."""
    lo, hi = 1, 1 << 31
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            sparselite.load(mobilenet, max_memory_bytes=mid)
            hi = mid
        except MemoryError:
            lo = mid + 1
    m = sparselite.load(mobilenet, max_memory_bytes=lo)
    assert lo > len(mobilenet) + m.arena_bytes + m.scratch_bytes
    assert lo < 4 * len(mobilenet) + m.arena_bytes + m.scratch_bytes  # no block counted twice over
    with pytest.raises(MemoryError, match=rf"loading needs \d+ bytes, over the memory limit of {lo - 1} bytes: "
                                          + LIMIT_HINT):
        sparselite.load(mobilenet, max_memory_bytes=lo - 1)
    path = tmp_path / "mbv2.slite"   # a path is read into counted memory too
    path.write_bytes(mobilenet)
    sparselite.load(path, max_memory_bytes=lo)
    with pytest.raises(MemoryError, match=LIMIT_HINT):
        sparselite.load(path, max_memory_bytes=lo - 1)


def test_default_limit_loads_real_models(mobilenet, minilm):
    assert sparselite.load(mobilenet).outputs[0].shape == (1, 1000)
    assert len(minilm) > 80e6 and sparselite.load(minilm).inputs[0].shape == (8, 128)
    with pytest.raises(MemoryError, match=LIMIT_HINT):
        sparselite.load(minilm, max_memory_bytes=len(minilm))


def test_raising_the_limit_lets_a_model_load():
    data = crafted(1, [64, 2 ** 20], [0], [0])   # a 256 MiB arena
    with pytest.raises(MemoryError, match=r"over the memory limit of 134217728 bytes"):
        sparselite.load(data, max_memory_bytes=128 << 20)
    assert sparselite.load(data, max_memory_bytes=512 << 20).arena_bytes == 256 << 20
    assert sparselite.load(data, max_memory_bytes=2 ** 80).arena_bytes == 256 << 20  # past size_t: no limit


@pytest.mark.parametrize("bad", [0, -1, 1.5, "1", True])
def test_memory_limit_argument(bad):
    with pytest.raises(InputError, match="max_memory_bytes must be a positive int"):
        sparselite.load(crafted(1, [4], [0], [0]), max_memory_bytes=bad)


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(["bash", os.path.join(ROOT, "wasm", "build.sh")], check=True, capture_output=True,
                   env=dict(os.environ, OUT=str(out)))
    return out


def test_wasm_hosts_take_the_limit(dist, tmp_path):
    """rt.load(bytes, {maxMemoryBytes}) in sparselite.mjs and load(..., max_memory_bytes=) in Pyodide
    (size_t is 32 bits there: larger limits mean none)."""
    (tmp_path / "small.slite").write_bytes(crafted(1, [64, 2 ** 20], [0], [0]))   # a 256 MiB arena
    (tmp_path / "huge.slite").write_bytes(crafted(1, [3, 2 ** 28], [0], [0]))     # 3 GiB
    cases = [["small", 128 << 20], ["small", 2 ** 40], ["huge", None], ["small", 0]]
    js = tmp_path / "limit.mjs"
    js.write_text(f"""
import {{ readFile }} from "node:fs/promises";
import {{ loadRuntime }} from {json.dumps(str(dist / "sparselite.mjs"))};
const rt = await loadRuntime({json.dumps(str(dist / "sparselite.wasm"))});
const out = [];
for (const [name, limit] of {json.dumps(cases)}) {{
  const bytes = await readFile({json.dumps(str(tmp_path))} + "/" + name + ".slite");
  try {{
    rt.load(bytes, limit === null ? {{}} : {{ maxMemoryBytes: limit }}).free();
    out.push("loaded");
  }} catch (err) {{
    out.push(err.message);
  }}
}}
console.log(JSON.stringify(out));
""")
    (wheel,) = dist.glob("sparselite_wasm-*-py3-none-any.whl")
    pyodide = os.environ.get("SPARSELITE_PYODIDE_DIR", os.path.join(os.path.expanduser("~"), ".cache",
                                                                    "sparselite-npm", "node_modules", "pyodide"))
    assert os.path.exists(os.path.join(pyodide, "pyodide.mjs")), "tests/run.sh installs Pyodide from npm"
    py = tmp_path / "limit_pyodide.mjs"
    py.write_text(f"""
import {{ readFile }} from "node:fs/promises";
const {{ loadPyodide }} = await import({json.dumps(os.path.join(pyodide, "pyodide.mjs"))});
const py = await loadPyodide({{ stdout: () => {{}}, stderr: () => {{}} }});
await py.loadPackage({json.dumps(str(wheel))}, {{ messageCallback: () => {{}} }});
for (const name of ["small", "huge"])
  py.FS.writeFile("/" + name + ".slite", await readFile({json.dumps(str(tmp_path))} + "/" + name + ".slite"));
console.log(py.runPython(`
import json, sparselite
out = []
for name, limit in {json.dumps(cases).replace("null", "None")}:
    try:
        sparselite.load("/" + name + ".slite", max_memory_bytes=limit)
        out.append("loaded")
    except Exception as exc:
        out.append(type(exc).__name__ + ": " + str(exc))
json.dumps(out)
`));
""")
    for script, prefix, bad_limit in ((js, "", "maxMemoryBytes must be a positive integer, got 0"),
                                      (py, "MemoryError: ", "InputError: max_memory_bytes must be a positive int")):
        result = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        small_capped, small_uncapped, huge, zero = json.loads(result.stdout.strip().splitlines()[-1])
        assert re.match(prefix + r"loading needs \d+ bytes, over the memory limit of 134217728 bytes: " + LIMIT_HINT,
                        small_capped), small_capped
        assert small_uncapped == "loaded"
        assert (prefix + "loading needs") in huge and "over the memory limit of 2147483648 bytes" in huge, huge
        assert zero.startswith(bad_limit), zero


def test_c_limit_is_an_option_set_before_loading():
    from sparselite._native import ffi, lib

    assert lib.SL_DEFAULT_MEMORY_LIMIT == 2 ** 31
    fresh = ffi.gc(lib.sl_model_new(), lib.sl_model_free)
    assert lib.sl_model_set_memory_limit(fresh, 0) == lib.SL_ERROR_INVALID_ARGUMENT
    c = CModel(crafted(1, [4], [0], [0]))
    assert c.status == lib.SL_OK
    assert lib.sl_model_set_memory_limit(c.m, 1 << 30) == lib.SL_ERROR_STATE


# --- planning and verifying big graphs ---------------------------------------------------------

def test_many_graph_inputs_load_quickly():
    start = time.perf_counter()
    m = sparselite.load(crafted(40000, [1], np.arange(40000), [0]))
    assert time.perf_counter() - start < 20  # a complexity guard, not a benchmark: quadratic before
    assert len(m.inputs) == 40000 and m.arena_bytes == 40000 * 64
    c = CModel(crafted(1 << 16, [1], np.arange(1 << 16), [(1 << 16) - 1]))
    assert c.status == 0, c.error
    assert c.lib.sl_model_num_inputs(c.m) == 1 << 16 and c.lib.sl_model_arena_bytes(c.m) == 64 << 16
    c = CModel(crafted(10 ** 6, [1], np.arange(10 ** 6), [10 ** 6 - 1]))  # never finished before
    assert c.status == c.lib.SL_ERROR_UNSUPPORTED and "at most 65536" in c.error, c.error
    assert c.seconds < 20, c.seconds


def test_million_op_graph_loads_and_runs():
    c = CModel(_chain(10 ** 6))
    assert c.status == 0, c.error
    assert c.seconds < 30, c.seconds
    assert c.lib.sl_model_num_ops(c.m) == 10 ** 6
    assert c.lib.sl_model_arena_bytes(c.m) == 3 * 64  # input, output, and one slot reused by the chain
    c.io("input", 0)[0] = 2.5
    assert c.lib.sl_model_run(c.m) == 0 and c.io("output", 0)[0] == 2.5
    m = sparselite.load(_chain(40000))
    assert m.run(np.array([1.25], np.float32))[0][0] == 1.25


def _lifetimes(data):
    """(size, first op, last op, index) of every planned tensor of a .slite, read with the Python schema."""
    model = S.Model.GetRootAs(data, 0)
    end = model.OperatorsLength()
    first, last = {}, {}
    for i in range(model.InputsLength()):
        first[model.Inputs(i)], last[model.Inputs(i)] = -1, end
    for k in range(end):
        op = model.Operators(k)
        for i in range(op.InputsLength()):
            t = op.Inputs(i)
            if t >= 0 and model.Tensors(t).Buffer() == 0:
                last[t] = max(last.get(t, k), k)
        first[op.Outputs(0)] = k
        last.setdefault(op.Outputs(0), k)
    for i in range(model.OutputsLength()):
        last[model.Outputs(i)] = end
    sizes = {}
    for t in first:
        tensor = model.Tensors(t)
        count = int(np.prod([tensor.Shape(d) for d in range(tensor.ShapeLength())]))
        sizes[t] = (count * {0: 4, 2: 4, 3: 8, 4: 2, 5: 4, 6: 1}[tensor.Dtype()] + 63) // 64 * 64
    return [(sizes[t], first[t], last[t], t) for t in first]


def _greedy_by_size(live):
    """The planner before issue 13 (TFLite Micro's): largest first, at the lowest offset clear of
    every placed tensor that overlaps in time."""
    placed, total = [], 0
    for size, first, last, _ in sorted(live, key=lambda l: (-l[0], l[3])):
        offset = 0
        for p_off, p_size, p_first, p_last in sorted(placed):
            if p_last < first or last < p_first:
                continue
            if p_off >= offset + size:
                break
            offset = max(offset, p_off + p_size)
        placed.append((offset, size, first, last))
        total = max(total, offset + size)
    return total


def test_real_model_arenas_are_not_larger(mobilenet, minilm):
    """Against a Python rendering of the previous planner, and above the bound no plan can beat
    (the most bytes live at one time)."""
    for data in (mobilenet, minilm):
        live = _lifetimes(data)
        peak = max(sum(size for size, first, last, _ in live if first <= k <= last)
                   for k in range(-1, max(l[2] for l in live) + 1))
        arena = sparselite.load(data).arena_bytes
        assert peak <= arena <= _greedy_by_size(live)


def test_first_fit_plan_of_a_big_graph_is_correct():
    """Past the greedy planner's size, tensors with many overlapping lifetimes (skips of up to 50
    steps): a wrong plan would let one overwrite another."""
    steps = 2500   # two ops each, 5000 tensors
    g = Graph()
    names = [g.add_input("x", (1, 16))]
    half = g.add_const("half", np.full((1, 16), 0.5, np.float32))
    for i in range(1, steps + 1):
        skip = names[max(0, i - 1 - (i * 7919) % 50)]
        s = g.add_op("ADD", [names[-1], skip], (1, 16), name=f"add{i}")
        names.append(g.add_op("MUL", [s, half], (1, 16), name=f"mul{i}"))
    g.outputs.append(names[-1])
    run_all(g, sparse=False)
    x = rng.standard_normal((1, 16)).astype(np.float32)
    want = [x]
    for i in range(1, steps + 1):
        want.append((want[-1] + want[max(0, i - 1 - (i * 7919) % 50)]) * np.float32(0.5))
    m = sparselite.load(serialize(g))
    np.testing.assert_array_equal(m.run(x)[0], want[-1])
    assert m.arena_bytes <= 52 * 128   # about the 51 tensors live at once


# --- files read, not mapped --------------------------------------------------------------------

def _gather_graph(ids_dtype="int64"):
    """Embedding rows (a float32 table used in place from the file's bytes) by integer ids."""
    g = Graph()
    table = g.add_const("table", np.random.default_rng(5).standard_normal((50, 8)).astype(np.float32))
    ids = g.add_input("ids", (2, 3), ids_dtype)
    g.outputs.append(g.add_op("GATHER", [table, ids], (2, 3, 8), name="gather"))
    run_all(g, sparse=False)
    return serialize(g)


def test_file_changed_after_loading_keeps_the_model(tmp_path):
    """A mapped file truncated after loading raised SIGBUS at the next run; read into memory, the
    model runs on, with the same output after truncation and after a rewrite."""
    path = tmp_path / "gather.slite"
    path.write_bytes(_gather_graph())
    script = f"""
import os, numpy as np, sparselite
path = {str(path)!r}
m = sparselite.load(path)
ids = np.array([[1, 2, 3], [49, 0, 7]])
(want,) = m.run(ids)
size = os.path.getsize(path)
os.truncate(path, 0)
np.testing.assert_array_equal(m.run(ids)[0], want)
open(path, "wb").write(b"\\xff" * size)
np.testing.assert_array_equal(m.run(ids)[0], want)
print("same")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "same" in result.stdout, (result.returncode, result.stderr[-3000:])


# --- the verifier ------------------------------------------------------------------------------

def _sparse_model():
    x = rng.standard_normal((1, 8, 3, 3)).astype(np.float32)
    w = group_sparse_weight(rng, 12, 8, 4, 0.6, empty_rows=False).reshape(12, 8, 1, 1)
    g, _ = single_op("CONV2D", [x], (1, 12, 3, 3), consts=[w, np.ones(12, np.float32)], group_size=4)
    run_all(g, sparse=False)
    return serialize(g)


def _tensor(model, name):
    return next(model.Tensors(i) for i in range(model.TensorsLength()) if model.Tensors(i).Name() == name.encode())


def _patch_columns(data, change):
    """The sparse weight's column indices after change(row_ptr, col_idx) edits them in place."""
    model = S.Model.GetRootAs(data, 0)
    sp = _tensor(model, "c0").Sparsity()
    rp, ci = model.Buffers(sp.RowPtr()), model.Buffers(sp.ColIdx())
    row_ptr = np.frombuffer(data, np.uint32, int(rp.Size()) // 4, int(rp.Offset()))
    col_idx = np.frombuffer(data, np.uint16, int(ci.Size()) // 2, int(ci.Offset())).copy()
    change(row_ptr, col_idx)
    return data[:ci.Offset()] + col_idx.tobytes() + data[ci.Offset() + ci.Size():]


def _first_long_row(row_ptr):
    return next(int(row_ptr[g]) for g in range(len(row_ptr) - 1) if row_ptr[g + 1] - row_ptr[g] >= 2)


def test_duplicate_and_unsorted_columns_are_refused():
    """Dense and sparse kernels would disagree on a repeated column (the output would depend on
    tune=True); unsorted ones are refused with them."""
    data = _sparse_model()
    sparselite.load(data)

    def duplicate(row_ptr, col_idx):
        e = _first_long_row(row_ptr)
        col_idx[e + 1] = col_idx[e]

    def swap(row_ptr, col_idx):
        e = _first_long_row(row_ptr)
        col_idx[e], col_idx[e + 1] = col_idx[e + 1], col_idx[e]

    for change in (duplicate, swap):
        with pytest.raises(InvalidModelError, match=r"tensor \d+ \(c0\): column index \d+ at element \d+ \(group row "
                                                    r"\d+\) follows \d+: indices must be strictly increasing"):
            sparselite.load(_patch_columns(data, change))


def _patch_buffer(data, tensor_name, offset):
    """Moves the data buffer of the named constant to `offset` (its size unchanged)."""
    model = S.Model.GetRootAs(data, 0)
    entry = model.Buffers(_tensor(model, tensor_name).Buffer())
    return data[:entry._tab.Pos] + struct.pack("<Q", offset) + data[entry._tab.Pos + 8:]


def test_buffer_layout_is_verified():
    data = _sparse_model()
    model = S.Model.GetRootAs(data, 0)
    bias = model.Buffers(_tensor(model, "c1").Buffer()).Offset()
    values = model.Buffers(_tensor(model, "c0").Buffer()).Offset()
    with pytest.raises(InvalidModelError, match=rf"buffer \d+ starts at offset {bias - 16}, not a multiple of 64"):
        sparselite.load(_patch_buffer(data, "c1", bias - 16))
    with pytest.raises(InvalidModelError, match=r"buffer \d+ \(offset 64\) overlaps the FlatBuffer, which extends to "
                                                r"byte \d+: data must follow it"):
        sparselite.load(_patch_buffer(data, "c1", 64))
    with pytest.raises(InvalidModelError, match=r"buffers \d+ \(offset \d+, \d+ bytes\) and \d+ \(offset \d+\) "
                                                r"overlap"):
        sparselite.load(_patch_buffer(data, "c1", values))


# --- integer inputs ----------------------------------------------------------------------------

def test_integer_inputs_must_fit_the_input_dtype():
    m = sparselite.load(_gather_graph())
    ids = np.array([[1, 2, 3], [49, 0, 7]])
    (want,) = m.run(ids)
    np.testing.assert_array_equal(m.run(ids.astype(np.uint64))[0], want)   # in range: accepted
    wrapped = ids.astype(np.uint64)
    wrapped[1, 1] = 2 ** 64 - 1    # -1 once wrapped into int64
    with pytest.raises(InputError, match=r"input 'ids' is int64, which holds -9223372036854775808\.\."
                                         r"9223372036854775807; got uint64 value 18446744073709551615"):
        m.run(wrapped)
    m32 = sparselite.load(_gather_graph("int32"))
    np.testing.assert_array_equal(m32.run(ids)[0], want)
    with pytest.raises(InputError, match=r"int32, which holds .*; got int64 value 4294967297"):
        m32.run(ids + np.array([[0, 0, 0], [0, 2 ** 32 + 1, 0]]))
    with pytest.raises(InputError, match=r"got int64 value -2147483649"):
        m32.run(ids - np.array([[2 ** 31 + 2, 0, 0], [0, 0, 0]]))
