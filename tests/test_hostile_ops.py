"""Hostile shapes and options through each op's prepare: sizes whose int32 arithmetic wraps,
divisors that are 0 once wrapped, paddings past the input, rank-0 and absent inputs. Each file
must fail with InvalidModelError and a message naming the problem, or, where the model is valid,
run and match numpy: never crash. Loads run in a child process under a 4 GiB address-space limit
and a timeout, so a regression fails its test instead of killing pytest; the small files also go
through the ASan/UBSan build of the C runtime."""
import json
import os
import re
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest

from helpers import SANITIZE, conv2d_ref, native_make, single_op, without_padding
from sparselite import _schema as S
from sparselite.converters import writer
from sparselite.converters.ir import Graph
from sparselite.converters.writer import serialize

BIG = 2**31 - 1   # the largest dimension a tensor may have (alone: the loader bounds elements to 2^31)

# Loads the model, runs it on the saved inputs (zeros of each input's shape when none were saved),
# saves the outputs and prints [outcome, message]: a crash shows as the child's exit status.
CHILD = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
import numpy as np
import sparselite
model_path, inputs_path, outputs_path = sys.argv[1:]
try:
    model = sparselite.load(model_path)
    saved = np.load(inputs_path)
    feeds = [saved[f"x{i}"] for i in range(len(saved.files))] or [np.zeros(s.shape, s.dtype) for s in model.inputs]
    np.savez(outputs_path, *model.run(feeds))
    print(json.dumps(["ok", ""]))
except (sparselite.SparseliteError, MemoryError) as exc:
    print(json.dumps([type(exc).__name__, str(exc)]))
"""


def run_in_child(tmp_path, data, inputs=(), timeout=120):
    """(outcome, message, outputs) of loading and running data in a child process."""
    model, feeds, outs = tmp_path / "model.slite", tmp_path / "inputs.npz", tmp_path / "outputs.npz"
    model.write_bytes(data)
    np.savez(feeds, **{f"x{i}": a for i, a in enumerate(inputs)})
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", CHILD, str(model), str(feeds), str(outs)], capture_output=True,
                            text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"the child died with status {result.returncode}: {result.stderr[-3000:]}"
    outcome, message = json.loads(result.stdout.strip().splitlines()[-1])
    outputs = None
    if outcome == "ok":
        with np.load(outs) as saved:
            outputs = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    return outcome, message, outputs


def expect_invalid(tmp_path, data, match):
    outcome, message, _ = run_in_child(tmp_path, data)
    assert outcome == "InvalidModelError" and re.search(match, message), (outcome, message)


def one_op(op, input_shapes, out_shape, options=None, absent_inputs=0):
    """A graph of one op over graph inputs of these shapes (then absent optional inputs)."""
    g = Graph()
    names = [g.add_input(f"x{i}", shape) for i, shape in enumerate(input_shapes)]
    g.outputs.append(g.add_op(op, names + [None] * absent_inputs, out_shape, options=options, name="op"))
    return g


def serialize_with_empty_sparse(g, names):
    """g's .slite where each named constant is group-sparse (r = 1) with no stored value: a
    weight of any shape in a few bytes, as a hostile file can declare."""
    encode = writer._encode

    def empty_sparse(data, t, fp16):
        if t.name not in names:
            return encode(data, t, fp16)
        row_ptr = data.add(np.zeros(t.shape[0] + 1, np.uint32))
        return {"buffer": data.add(np.zeros(0, np.float32)), "storage": S.DType.FLOAT32,
                "sparse": (1, row_ptr, data.add(np.zeros(0, np.uint16)), S.DType.UINT16, None)}

    with mock.patch.object(writer, "_encode", empty_sparse):
        return serialize(g)


# --- the files -----------------------------------------------------------------------------------
# Each builder returns .slite bytes; those small enough for the sanitizer run are listed in SMALL.

def concat_65536():
    """65,536 inputs of [1, 65536] and one [1, 1]: 2^32 + 1 along the axis, 1 in an int32 sum. One graph
    input read 65,536 times (graph inputs are capped at 65,536, operator inputs are not)."""
    g = Graph()
    x, y = g.add_input("x", (1, 65536)), g.add_input("y", (1, 1))
    g.outputs.append(g.add_op("CONCAT", [x] * 65536 + [y], (1, 1), options=dict(axis=1), name="op"))
    return serialize(g)


def concat_three():
    """The same wrap with three inputs: 2 (2^31 - 1) + 3 = 2^32 + 1."""
    return serialize(one_op("CONCAT", [(1, BIG), (1, BIG), (1, 3)], (1, 1), dict(axis=-1)))


def depth_to_space(block, x_shape, y_shape):
    return lambda: serialize(one_op("DEPTH_TO_SPACE", [x_shape], y_shape, dict(block_size=block)))


def softmax_rank0_mask():
    """A scalar mask: "ends in the softmax axis" read the mask's dimension -1."""
    return serialize(one_op("SOFTMAX", [(2, 3), ()], (2, 3), dict(axis=-1)))


def pad_rank0():
    """PAD of a scalar: run copies rows of the last dimension, index -1."""
    return serialize(one_op("PAD", [()], (), dict(pads=[])))


def mean_pool_sparse_mask():
    """The weights mask a group-sparse constant: run reads its dense data, which it has none of."""
    mask = np.zeros((2, 8), np.float32)
    mask[:, 0] = 1.0
    g, _ = single_op("MEAN_POOL", [np.zeros((2, 8, 4), np.float32)], (2, 4), consts=[mask], group_size=1)
    return serialize(g)


def depthwise_pad_past_plane(x_shape=(1, 1, 8, 300), stride=(10, 1), pads=(13, 0, 0, 0)):
    """A 2x2 depthwise conv with a stride of 10 and 13 rows of top padding: the padded extent
    (oh - 1) * 10 + 2 = 12 ends before the first input row, which the plane copy placed anyway
    (past its phase) and whose zeroing took a negative length. Returns (bytes, x, numpy's y)."""
    w = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2)
    b = np.array([0.5], np.float32)
    oh = (x_shape[2] + pads[0] + pads[2] - 2) // stride[0] + 1
    ow = (x_shape[3] + pads[1] + pads[3] - 2) // stride[1] + 1
    x = np.random.default_rng(3).standard_normal(x_shape).astype(np.float32)
    g, _ = single_op("CONV2D", [x], (1, 1, oh, ow), consts=[w, b], options=dict(stride=stride, padding=pads))
    return serialize(g), x, conv2d_ref(x.astype(np.float64), w, b, stride, (1, 1), pads, 1)


def avg_pool_window_2_32():
    """count_include_pad over a 65536 x 65536 window (paddings 65535): an int32 window size of 2^32 is 0."""
    opts = dict(kernel=(65536, 65536), stride=(65536, 65536), padding=(65535,) * 4, count_include_pad=True)
    return serialize(one_op("AVG_POOL2D", [(1, 1, 2, 2)], (1, 1, 2, 2), opts))


def softmax_absent_mask():
    """The optional mask given as absent (index -1): run took input 1's data through a NULL tensor."""
    return serialize(one_op("SOFTMAX", [(2, 3)], (2, 3), dict(axis=-1, scale=0.5), absent_inputs=1))


def reduce_axis(axes):
    """REDUCE over axes given as file values: INT32_MIN has no negation, and adding the rank to it
    (or to INT32_MAX) wraps."""
    return lambda: serialize(one_op("REDUCE", [(3, 4)], (3,), dict(kind="SUM", axes=list(axes))))


def reduce_both_axes_negative():
    """Valid: MAX over axes -1 and -2 of a [3, 70001] input in a [1, 1] output (keep_dims)."""
    return serialize(one_op("REDUCE", [(3, 70001)], (1, 1), dict(kind="MAX", axes=[-1, -2], keep_dims=True)))


def slice_last_index_wraps():
    """A step of 2^30 over 5 elements from index 1: the last index, 2^32 + 1, is 1 in 32 bits."""
    return serialize(one_op("SLICE", [(1, BIG)], (1, 5), dict(begin=[0, 1], step=[1, 1 << 30])))


def slice_backwards():
    """Every axis read backwards: offsets step below the start in unsigned arithmetic."""
    return serialize(one_op("SLICE", [(3, 4, 5)], (2, 2, 3), dict(begin=[2, 3, 4], step=[-2, -3, -2])))


def conv_transpose_rows_wrap():
    """A stride of 65536 over 65,537 input rows: (H - 1) * stride is 2^32, one output row in 32 bits."""
    g, _ = single_op("CONV_TRANSPOSE2D", [np.zeros((1, 1, 65537, 1), np.float32)], (1, 1, 1, 1),
                     consts=[np.ones((1, 1, 1, 1), np.float32)], options=dict(stride=(65536, 1)))
    return serialize(g)


def conv_transpose_dilated_crop():
    """Valid: a 3x3 kernel dilated by 65536 and cropped by 65536 on every side, so only its centre tap
    lands in the output, y = sum over channels of w[c, 0, 1, 1] x[c] + b; the bands' row arithmetic
    runs 2^17 past the output. Returns (bytes, x, numpy's y)."""
    x = np.random.default_rng(6).standard_normal((1, 2, 3, 4)).astype(np.float32)
    w = np.random.default_rng(7).standard_normal((2, 1, 3, 3)).astype(np.float32)
    b = np.array([0.25], np.float32)
    g, _ = single_op("CONV_TRANSPOSE2D", [x], (1, 1, 3, 4), consts=[w, b],
                     options=dict(dilation=(65536, 65536), padding=(65536,) * 4))
    return serialize(g), x, np.einsum("nchw,c->nhw", x, w[:, 0, 1, 1])[:, None] + b[0]


# --- ops whose arithmetic wrapped or divided by zero ------------------------------------------------

def test_concat_axis_sum_wrapping_to_the_output(tmp_path):
    """The review's heap overflow: run would copy 16 GB into the 4-byte output."""
    expect_invalid(tmp_path, concat_65536(), r"CONCAT.*add up to more than 2147483647 along axis 1")
    expect_invalid(tmp_path, concat_three(), r"add up to more than 2147483647 along axis 1")


@pytest.mark.parametrize("block, x_shape, y_shape", [
    (65536, (1, 4, 1, 1), (1, 1, 1, 1)),             # b*b wraps to 0: SIGFPE at load
    (2**30 + 2, (1, 4, 4, 4), (1, 1, 8, 8)),         # b*b wraps to 4, H*b to 8: writes ~4 GB past the arena
    (46341, (1, 4, 1, 1), (1, 1, 1, 1)),             # b*b just past 2^31: negative
    (-65536, (1, 4, 1, 1), (1, 1, 1, 1)),
])
def test_depth_to_space_block_squared(tmp_path, block, x_shape, y_shape):
    expect_invalid(tmp_path, depth_to_space(block, x_shape, y_shape)(),
                   rf"DEPTH_TO_SPACE.*block size {block} does not divide the 4 channels")


def test_conv2d_output_side_past_int32(tmp_path):
    """65,536 rows of padding on a 2^31 - 1 row input: the output side no longer fits an int32."""
    g, _ = single_op("CONV2D", [np.zeros((1, 1, 1, 1), np.float32)], (1, 1, BIG, 1),
                     consts=[np.ones((1, 1, 1, 1), np.float32)], options=dict(padding=(65536, 0, 0, 0)))
    g.tensors["x0"].shape = (1, 1, BIG, 1)
    expect_invalid(tmp_path, serialize(g), r"CONV2D.*output would be 2147549183x1, over 2\^31 - 1 per axis")


def test_depthwise_strides_of_2_16_on_one_pixel(tmp_path):
    """Strides of 65536 x 65536 on one pixel: a layout of every stride phase would be 2^32 planes
    of one float each, past what 32-bit tap offsets reach; only the phases taps read are laid out."""
    g, _ = single_op("CONV2D", [np.zeros((1, 1, 1, 1), np.float32)], (1, 1, 1, 1),
                     consts=[np.full((1, 1, 1, 1), 2.0, np.float32)], options=dict(stride=(65536, 65536)))
    outcome, message, outputs = run_in_child(tmp_path, serialize(g), [np.full((1, 1, 1, 1), 3.0, np.float32)])
    assert outcome == "ok", message
    np.testing.assert_array_equal(outputs[0], np.full((1, 1, 1, 1), 6.0, np.float32))


def test_depthwise_sparse_kernel_of_2_31_taps(tmp_path):
    """A [1, 1, 65536, 32768] group-sparse depthwise kernel in a few bytes: 2^31 taps on a
    [1, 1, 65536, 32768] input. Its 8 GB of densified weights are refused by the memory limit
    before anything is allocated; nothing wraps on the way there."""
    g, _ = single_op("CONV2D", [np.zeros((1, 1, 1, 1), np.float32)], (1, 1, 1, 1),
                     consts=[np.zeros((1, 1, 1, 1), np.float32)])
    g.tensors["x0"].shape = (1, 1, 65536, 32768)
    g.tensors["c0"].shape = (1, 1, 65536, 32768)
    outcome, message, _ = run_in_child(tmp_path, serialize_with_empty_sparse(g, {"c0"}))
    assert outcome in ("MemoryError", "InvalidModelError") and message, (outcome, message)


def test_conv_transpose_output_past_int32_and_dilated_crop(tmp_path):
    expect_invalid(tmp_path, conv_transpose_rows_wrap(),
                   r"CONV_TRANSPOSE2D.*output would be 4294967297x1: the paddings crop all of it, or it passes")
    data, x, want = conv_transpose_dilated_crop()
    outcome, message, outputs = run_in_child(tmp_path, data, [x])
    assert outcome == "ok", message
    np.testing.assert_allclose(outputs[0], want, rtol=1e-5, atol=1e-6)


def test_pool2d_padded_input_past_int32(tmp_path):
    """2^31 - 1 rows plus a row of padding each side: int32 sums wrapped to a negative extent."""
    opts = dict(kernel=(2, 1), padding=(1, 0, 1, 0))
    expect_invalid(tmp_path, serialize(one_op("MAX_POOL2D", [(1, 1, BIG, 1)], (1, 1, BIG, 1), opts)),
                   r"MAX_POOL2D.*output would be 2147483648x1, over 2\^31 - 1 per axis")


def test_avg_pool_window_of_2_32_padded_pixels(tmp_path):
    """count_include_pad divides by the padded window, 65536^2 = 2^32: an int32 product made it 0
    (every output 0); each window holds one input pixel, so y = x / 2^32."""
    x = (np.arange(1, 5, dtype=np.float32) * 2.0**32).reshape(1, 1, 2, 2)
    outcome, message, outputs = run_in_child(tmp_path, avg_pool_window_2_32(), [x])
    assert outcome == "ok", message
    np.testing.assert_array_equal(outputs[0], np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2))


def test_pad_past_int32_and_of_a_scalar(tmp_path):
    expect_invalid(tmp_path, serialize(one_op("PAD", [(1, BIG)], (1, 1), dict(pads=[0, 0, 0, 1]))),
                   r"PAD.*dimension 1 would pad to 2147483648")
    expect_invalid(tmp_path, pad_rank0(), r"PAD.*input must have rank >= 1")


@pytest.mark.parametrize("x_shape, stride, pads", [
    ((1, 1, 8, 300), (10, 1), (13, 0, 0, 0)),    # a large plane: zeroed around the copy
    ((1, 1, 8, 8), (10, 10), (13, 13, 0, 0)),    # a small one, cleared whole; columns past it too
])
def test_depthwise_padding_past_the_padded_extent(tmp_path, x_shape, stride, pads):
    """Valid (torch pads any amount): outputs that see only padding are the bias; the plane copy
    must neither write past its phase nor zero a negative length."""
    data, x, want = depthwise_pad_past_plane(x_shape, stride, pads)
    outcome, message, outputs = run_in_child(tmp_path, data, [x])
    assert outcome == "ok", message
    np.testing.assert_allclose(outputs[0], want, rtol=1e-5, atol=1e-5)


def test_softmax_rank0_mask_and_absent_mask(tmp_path):
    expect_invalid(tmp_path, softmax_rank0_mask(), r"SOFTMAX.*mask \(x1\) must end in the softmax axis")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    outcome, message, outputs = run_in_child(tmp_path, softmax_absent_mask(), [x])
    assert outcome == "ok", message
    e = np.exp(0.5 * x - (0.5 * x).max(-1, keepdims=True))
    np.testing.assert_allclose(outputs[0], e / e.sum(-1, keepdims=True), rtol=1e-6)


def test_slice_indices_past_int32(tmp_path):
    expect_invalid(tmp_path, slice_last_index_wraps(), r"SLICE.*axis 1 reads indices 1 to 4294967297 "
                                                       r"\(step 1073741824\) of an input dimension of 2147483647")
    x = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    outcome, message, outputs = run_in_child(tmp_path, slice_backwards(), [x])
    assert outcome == "ok", message
    np.testing.assert_array_equal(outputs[0], x[2::-2, 3::-3, 4::-2])


def test_mean_pool_group_sparse_mask(tmp_path):
    expect_invalid(tmp_path, mean_pool_sparse_mask(), r"MEAN_POOL.*mask \(c0\) must be dense float32, int32 or int64")


@pytest.mark.parametrize("axes, match", [([-2**31], "axis -2147483648 is out of range for rank 2"),
                                         ([2**31 - 1], "axis 2147483647 is out of range for rank 2"),
                                         ([1, -1], "axis 1 is given twice"), ([0, 1, 0], "3 axes given")])
def test_reduce_axes_past_the_rank(tmp_path, axes, match):
    expect_invalid(tmp_path, reduce_axis(axes)(), rf"REDUCE.*{match}")


def test_reduce_negative_axes_over_a_long_run(tmp_path):
    x = np.random.default_rng(5).standard_normal((3, 70001)).astype(np.float32)
    outcome, message, outputs = run_in_child(tmp_path, reduce_both_axes_negative(), [x])
    assert outcome == "ok", message
    np.testing.assert_array_equal(outputs[0], x.max(keepdims=True))


# --- the same small files under ASan/UBSan -----------------------------------------------------------

SMALL = {  # name: (bytes, whether the file is valid)
    "d2s_65536": (depth_to_space(65536, (1, 4, 1, 1), (1, 1, 1, 1)), False),
    "d2s_2_30": (depth_to_space(2**30 + 2, (1, 4, 4, 4), (1, 1, 8, 8)), False),
    "softmax_rank0_mask": (softmax_rank0_mask, False),
    "pad_rank0": (pad_rank0, False),
    "mean_pool_sparse_mask": (mean_pool_sparse_mask, False),
    "depthwise_pad": (lambda: depthwise_pad_past_plane()[0], True),
    "avg_pool_2_32": (avg_pool_window_2_32, True),
    "softmax_absent_mask": (softmax_absent_mask, True),
    "reduce_axis_int_min": (reduce_axis([-2**31]), False),
    "reduce_negative_axes": (reduce_both_axes_negative, True),
    "slice_last_wraps": (slice_last_index_wraps, False),
    "slice_backwards": (slice_backwards, True),
    "conv_transpose_rows_wrap": (conv_transpose_rows_wrap, False),
    "conv_transpose_dilated_crop": (lambda: conv_transpose_dilated_crop()[0], True),
}


def test_small_hostile_files_under_sanitizers(tmp_path):
    """sl_run_test loads, runs (also tuned, threaded, through the file path) and mutates each
    file; a hostile one fails its four "loads" checks and nothing else, and no sanitizer fires."""
    build = str(tmp_path / "build")
    native_make(build, "sl_run_test", CC="gcc", CFLAGS=SANITIZE)
    paths = []
    for name, (build_file, _) in SMALL.items():
        paths.append(tmp_path / f"{name}.slite")
        paths[-1].write_bytes(without_padding(build_file))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1",
               UBSAN_OPTIONS="print_stacktrace=1")
    result = subprocess.run([f"{build}/sl_run_test", *map(str, paths)], capture_output=True, text=True, env=env,
                            timeout=600)
    report = result.stdout[-2000:] + result.stderr[-4000:]
    assert "runtime error" not in result.stderr and "Sanitizer" not in result.stderr, report
    assert re.search(r"\d+ passed, \d+ failed", result.stdout), report
    failed = sorted(line for line in result.stderr.splitlines() if line.startswith("FAIL"))
    want = sorted(f"FAIL {path}: {check}" for path, (_, valid) in zip(paths, SMALL.values()) if not valid
                  for check in ("valid model loads and runs", "runs tuned on a thread pool",
                                "runs every fusable chain fused", "loads from its path"))
    assert failed == want, report
