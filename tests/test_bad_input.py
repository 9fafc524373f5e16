"""Bad files and bad inputs give clear Python exceptions, never crashes."""
import struct

import numpy as np
import pytest

import sparselite
from helpers import group_sparse_weight, single_op
from sparselite import InputError, InvalidModelError, UnsupportedError
from sparselite.converters.passes import run_all
from sparselite.converters.writer import serialize

rng = np.random.default_rng(11)


def small_model_bytes(group_size=4):
    x = rng.standard_normal((1, 8, 3, 3)).astype(np.float32)
    w = group_sparse_weight(rng, 12, 8, group_size, 0.5).reshape(12, 8, 1, 1)
    g, _ = single_op("CONV2D", [x], (1, 12, 3, 3), consts=[w, np.zeros(12, np.float32)], group_size=group_size)
    run_all(g, sparse=False)
    return g, serialize(g)


def test_truncated_files_are_rejected():
    _, data = small_model_bytes()
    for cut in list(range(0, 64)) + list(range(64, len(data), 37)):
        with pytest.raises(InvalidModelError):
            sparselite.load(data[:cut])


def test_truncated_message_says_what_is_wrong():
    _, data = small_model_bytes()
    with pytest.raises(InvalidModelError, match="past the end|truncated|outside the file"):
        sparselite.load(data[: len(data) - 100])


def test_wrong_file_identifier():
    _, data = small_model_bytes()
    with pytest.raises(InvalidModelError, match="identifier"):
        sparselite.load(data[:4] + b"TFL3" + data[8:])


def test_flipped_bytes_never_crash():
    _, data = small_model_bytes()
    ok = 0
    for trial in range(300):
        buf = bytearray(data)
        for _ in range(1 + trial % 3):
            buf[rng.integers(min(len(buf), 2048))] ^= 1 << int(rng.integers(8))
        try:
            m = sparselite.load(bytes(buf))
            m.run(np.zeros(m.inputs[0].shape, np.float32))
            ok += 1
        except (InvalidModelError, UnsupportedError) as exc:
            assert str(exc)
    assert ok < 300  # most flips must be caught


def _patch_sparse_index(data, g, new_index):
    """Rewrites the first column index of the sparse weight in place."""
    from sparselite import _schema as S

    model = S.Model.GetRootAs(data, 0)
    for i in range(model.TensorsLength()):
        sp = model.Tensors(i).Sparsity()
        if sp is not None:
            off = model.Buffers(sp.ColIdx()).Offset()
            return data[:off] + struct.pack("<H", new_index) + data[off + 2:]
    raise AssertionError("no sparse tensor")


def test_out_of_range_column_index():
    g, data = small_model_bytes()
    with pytest.raises(InvalidModelError, match="column index 9999 .* out of range"):
        sparselite.load(_patch_sparse_index(data, g, 9999))


def test_tensor_sizes_that_disagree():
    g, _ = small_model_bytes()
    out = g.outputs[0]
    g.tensors[out].shape = (1, 12, 3, 4)
    with pytest.raises(InvalidModelError, match=r"shape \[1,12,3,4\], expected \[1,12,3,3\]"):
        sparselite.load(serialize(g))


def test_constant_with_wrong_byte_count():
    g, _ = small_model_bytes()
    bias = g.ops[0].inputs[2]
    g.tensors[bias].data = np.zeros(13, np.float32)  # the shape still says 12
    with pytest.raises(InvalidModelError, match="holds 52 bytes, its shape needs 48"):
        sparselite.load(serialize(g))


def test_newer_format_version_is_unsupported(monkeypatch):
    from sparselite.converters import writer

    g, _ = small_model_bytes()
    monkeypatch.setattr(writer, "FORMAT_VERSION", 99)
    with pytest.raises(UnsupportedError, match="format version 99"):
        sparselite.load(serialize(g))


def test_unknown_op_type_is_unsupported(monkeypatch):
    from sparselite import _schema as S

    g, _ = small_model_bytes()
    monkeypatch.setattr(S.OpType, "CONV2D", 999)
    with pytest.raises(UnsupportedError, match="type 999"):
        sparselite.load(serialize(g))


def _write_options(monkeypatch, g, tag, table=None):
    """g's .slite with every op's options union set to (tag, table built by table(builder)), as if
    another writer had made it."""
    from sparselite import _schema as S
    from sparselite.converters import writer

    def options(builder, op):
        return getattr(S.OpOptions, tag) if isinstance(tag, str) else tag, table and table(builder)

    monkeypatch.setattr(writer, "_options", options)
    return serialize(g)


def _pad_table(builder):
    from sparselite.converters import writer

    return writer._pad_options(builder, {"pads": [0] * 8})


def _concat_table(builder):
    from sparselite.converters import writer

    return writer._concat_options(builder, {"axis": 0})


def _reshape_graph():
    g, _ = single_op("RESHAPE", [rng.standard_normal((2, 6)).astype(np.float32)], (3, 4))
    return g


@pytest.mark.parametrize("graph, tag, table, message", [
    (lambda: small_model_bytes()[0], "PadOptions", _pad_table,
     r"operator 0 \(op\): CONV2D takes Conv2DOptions, got PadOptions"),
    (_reshape_graph, "ConcatOptions", _concat_table, r"operator 0 \(op\): RESHAPE takes no options, got ConcatOptions"),
    (lambda: small_model_bytes()[0], 200, _pad_table, "CONV2D takes Conv2DOptions, got options type 200"),
    (lambda: small_model_bytes()[0], "NONE", _pad_table, "CONV2D has options without their type"),
])
def test_options_of_another_table_are_refused(monkeypatch, graph, tag, table, message):
    """An op reads its options by its own table's field names: any other table would be misread."""
    data = _write_options(monkeypatch, graph(), tag, table)
    with pytest.raises(InvalidModelError, match=message):
        sparselite.load(data)


def test_absent_options_mean_the_schema_defaults(monkeypatch):
    g, _ = small_model_bytes()
    want = sparselite.load(serialize(g))
    x = rng.standard_normal((1, 8, 3, 3)).astype(np.float32)
    got = sparselite.load(_write_options(monkeypatch, g, "NONE"))  # stride, dilation, groups 1; no padding
    np.testing.assert_array_equal(got.run(x)[0], want.run(x)[0])
    reshape = sparselite.load(_write_options(monkeypatch, _reshape_graph(), "NONE"))
    assert reshape.run(np.arange(12, dtype=np.float32).reshape(2, 6))[0].shape == (3, 4)


def test_wrong_input_shape_dtype_and_name():
    _, data = small_model_bytes()
    model = sparselite.load(data)
    good = np.zeros((1, 8, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"shape \[1, 8, 3, 3\], got \[1, 8, 3\]"):
        model.run(good[..., 0])
    with pytest.raises(ValueError, match="must be float32, got int64"):
        model.run(good.astype(np.int64))
    with pytest.raises(ValueError, match="unknown input name"):
        model.run({"nope": good})
    with pytest.raises(ValueError, match="expected 1 inputs"):
        model.run([good, good])
    assert model.run(good.astype(np.float64))[0].shape == (1, 12, 3, 3)  # float64 is narrowed


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError):
        sparselite.load(tmp_path / "missing.slite")
    (tmp_path / "empty.slite").write_bytes(b"")
    with pytest.raises(InvalidModelError, match="empty"):
        sparselite.load(tmp_path / "empty.slite")
    with pytest.raises(TypeError):
        sparselite.load(42)
    with pytest.raises(InputError):
        sparselite.load(small_model_bytes()[1], num_threads=0)


def test_unsupported_torch_op_names_the_module():
    import torch

    from sparselite import ConversionError
    from sparselite.converters import from_torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.ELU())

        def forward(self, x):
            return self.body(x)

    with pytest.raises(ConversionError, match=r"aten.elu.default x1 \(first: module 'body.1', node elu\)"):
        from_torch(Net(), torch.zeros(1, 3, 4, 4))


def test_inputs_without_numpy_types():
    """array.array / memoryview / Tensor inputs: the path Pyodide without numpy takes."""
    import array

    from sparselite import Tensor
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    wt = np.ones((4, 3), np.float32)
    g, _ = single_op("FULLY_CONNECTED", [x], (2, 4), consts=[wt])
    run_all(g, sparse=False)
    model = sparselite.load(serialize(g))
    (want,) = model.run(x)
    flat = array.array("f", x.ravel().tolist())
    for value in (flat, memoryview(flat), Tensor(flat, (2, 3))):
        assert np.array_equal(model.run(value)[0], want)
    with pytest.raises(InputError, match="float32"):
        model.run(array.array("d", [0.0] * 6))
    with pytest.raises(InputError, match="needs 6 values"):
        model.run(array.array("f", [0.0] * 5))
    with pytest.raises(InputError, match="shape"):
        model.run(Tensor(flat, (3, 2)))


def _dynamic_graph(op="SOFTMAX", const_shape=None):
    """x [2, seq<=6, 5] -> op; optionally ADD a constant of const_shape marked dynamic on axis 1."""
    from sparselite.converters.ir import Graph

    g = Graph()
    g.dims["seq"] = 6
    x = g.add_input("x", (2, 6, 5))
    g.tensors[x].dynamic = (None, "seq", None)
    if const_shape is not None:
        c = g.add_const("c", np.ones(const_shape, np.float32))
        g.tensors[c].dynamic = (None, "seq", None)
        y = g.add_op("ADD", [x, c], (2, 6, 5), name="add")
    else:
        y = g.add_op(op, [x], (2, 6, 5), name="op", options=dict(axis=-1))
    g.tensors[y].dynamic = (None, "seq", None)
    g.outputs.append(y)
    return g


def test_dynamic_dimension_declarations_are_verified():
    g = _dynamic_graph()
    assert sparselite.load(serialize(g)).inputs[0].dynamic_axes == (1,)
    g.dims["seq"] = 7    # the tensors' size no longer matches the declared maximum
    with pytest.raises(InvalidModelError, match="dynamic dimension 1"):
        sparselite.load(serialize(g))
    g = _dynamic_graph()
    g.tensors["x"].dynamic = (None, None, "seq")   # axis 2 is 5, not seq's maximum 6
    with pytest.raises(InvalidModelError, match="axis 2 refers to dynamic dimension 1"):
        sparselite.load(serialize(g))
    # A constant may only vary along one axis after axes of size 1 (its prefix is the smaller tensor).
    with pytest.raises(InvalidModelError, match="dynamic constant"):
        sparselite.load(serialize(_dynamic_graph(const_shape=(2, 6, 5))))
    assert sparselite.load(serialize(_dynamic_graph(const_shape=(1, 6, 5)))).run(np.zeros((2, 3, 5), np.float32))


def test_ops_without_dynamic_support_are_refused_at_load():
    from sparselite.converters.ir import Graph

    g = Graph()
    g.dims["h"] = 8
    x = g.add_input("x", (1, 3, 8, 8))
    g.tensors[x].dynamic = (None, None, "h", None)
    y = g.add_op("MAX_POOL2D", [x], (1, 3, 4, 4), name="pool", options=dict(kernel=(2, 2), stride=(2, 2)))
    g.outputs.append(y)
    with pytest.raises(UnsupportedError, match=r"MAX_POOL2D supports a dynamic batch \(axis 0\) only, but x varies "
                       "along axis 2"):
        sparselite.load(serialize(g))


def test_resize_errors_name_the_axis():
    model = sparselite.load(serialize(_dynamic_graph()))
    with pytest.raises(InputError, match=r"must have shape \[2, <=6, 5\], got \[2, 7, 5\]"):
        model.run(np.zeros((2, 7, 5), np.float32))
    with pytest.raises(InputError, match=r"got \[3, 4, 5\]"):
        model.run(np.zeros((3, 4, 5), np.float32))
    (y,) = model.run(np.zeros((2, 4, 5), np.float32))
    assert y.shape == (2, 4, 5) and np.allclose(y, 0.2)


def test_c_resize_checks_rank_static_axes_and_range():
    backend = sparselite.load(serialize(_dynamic_graph()))._backend   # past the Python checks
    with pytest.raises(InputError, match=r"axis 1 \(seq\) must be 1..6"):
        backend.resize_input(0, (2, 7, 5))
    with pytest.raises(InputError, match="axis 0 is fixed at 2"):
        backend.resize_input(0, (1, 3, 5))
    with pytest.raises(InputError, match="rank 3, got a shape of rank 2"):
        backend.resize_input(0, (2, 3))
    backend.resize_input(0, (2, 3, 5))
    assert backend.shape("output", 0) == (2, 3, 5)
