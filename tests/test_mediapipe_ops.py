"""MediaPipe's custom ops of face_landmark_with_attention as runtime ops: LANDMARKS_TO_TRANSFORM_MATRIX,
TRANSFORM_TENSOR_BILINEAR and TRANSFORM_LANDMARKS against the numpy versions written from MediaPipe's
sources (benchmarks/mediapipe_ops.py) on random landmarks, matrices and feature maps of odd sizes,
batches and a dynamic batch, under each kernel configuration; what each refuses at load; the whole
model from from_tflite against LiteRT with those ops computed around it; benchmarks/graph64.py (the float64
reference of .tflite coverage rows) against LiteRT. The ops in WASM: test_mediapipe_ops_wasm.py."""
import os
import sys

import numpy as np
import pytest

import sparselite
from helpers import KERNELS, rel_err
from sparselite.converters.ir import Graph
from sparselite.converters.writer import serialize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import mediapipe_ops as ref  # noqa: E402


def one_op(op, inputs, out_shape, options=None, batch_dynamic=False):
    """The .slite bytes of `op` over graph inputs of the given shapes (x0, x1, ...)."""
    g = Graph()
    if batch_dynamic:
        g.dims["batch"] = inputs[0][0]
    names = []
    for i, shape in enumerate(inputs):
        names.append(g.add_input(f"x{i}", shape))
        if batch_dynamic:
            g.tensors[names[-1]].dynamic = ("batch",) + (None,) * (len(shape) - 1)
    y = g.add_op(op, names, out_shape, options=options, name=op.lower())
    if batch_dynamic:
        g.tensors[y].dynamic = ("batch",) + (None,) * (len(out_shape) - 1)
    g.outputs.append(y)
    return serialize(g)


def random_matrix(rng, batch, in_hw, out_hw):
    """[batch, 4, 4] affine maps from an out_hw crop into an in_hw image: rotated, scaled and shifted
    so some samples fall outside (0 there)."""
    m = np.zeros((batch, 4, 4), np.float32)
    for b in range(batch):
        angle, scale = rng.uniform(-np.pi, np.pi), rng.uniform(0.5, 2.0) * max(in_hw) / max(out_hw)
        c, s = np.cos(angle) * scale, np.sin(angle) * scale
        m[b, :2, :2] = [[c, -s], [s, c]]
        m[b, 0, 3], m[b, 1, 3] = rng.uniform(-0.2, 1.2) * in_hw[1], rng.uniform(-0.2, 1.2) * in_hw[0]
        m[b, 0, 2], m[b, 1, 2] = rng.standard_normal(2)   # multiplies z = 0: no effect
        m[b, 2, 2] = m[b, 3, 3] = 1
    return m


def l2m_options(rng, n):
    return dict(left_index=int(rng.integers(n)), right_index=int(rng.integers(n)),
                subset=[int(i) for i in rng.integers(0, n, int(rng.integers(1, 2 * n)))],
                target_rotation=float(rng.uniform(-3, 3)), output_height=int(rng.integers(1, 40)),
                output_width=int(rng.integers(1, 40)), scale_x=float(rng.uniform(0.5, 2)),
                scale_y=float(rng.uniform(0.5, 2)))


def l2m_ref(x, o):
    return ref.landmarks_to_transform_matrix(x, o["left_index"], o["right_index"], o["subset"], o["target_rotation"],
                                             o["output_height"], o["output_width"], o["scale_x"], o["scale_y"])


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("seed", range(4))
def test_landmarks_to_transform_matrix_matches_numpy(seed, kernels):
    rng = np.random.default_rng(seed)
    batch, n, d = int(rng.integers(1, 4)), int(rng.integers(2, 40)), int(rng.integers(2, 5))
    x = (rng.standard_normal((batch, n, d)) * 50 + 100).astype(np.float32)
    o = l2m_options(rng, n)
    (y,) = sparselite.load(one_op("LANDMARKS_TO_TRANSFORM_MATRIX", [x.shape], (batch, 4, 4), o),
                           **KERNELS[kernels]).run(x)
    want = l2m_ref(x, o)
    assert np.allclose(y, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert np.abs(y).max() > 0   # a crop of nonzero size


def test_landmarks_to_transform_matrix_maps_the_crop_onto_the_rotated_box():
    """Independent of MediaPipe's code: the output pixel at the crop's centre maps to the box's centre,
    and the crop's edges to the box's edges scaled by scale_x / scale_y, along the rotated axes."""
    rng = np.random.default_rng(7)
    pts = rng.uniform(0, 100, (1, 12, 3)).astype(np.float32)
    o = dict(left_index=0, right_index=1, subset=list(range(12)), target_rotation=0.3, output_height=20,
             output_width=30, scale_x=1.5, scale_y=1.25)
    (m,) = sparselite.load(one_op("LANDMARKS_TO_TRANSFORM_MATRIX", [pts.shape], (1, 4, 4), o)).run(pts)
    d = pts[0, 1, :2].astype(np.float64) - pts[0, 0, :2]
    r = 0.3 - np.arctan2(d[1], d[0])
    rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    q = pts[0, :, :2].astype(np.float64) @ rot.T   # the landmarks in the crop's frame
    lo, hi = q.min(0), q.max(0)
    centre = rot.T @ ((lo + hi) / 2)
    assert np.allclose(m[0, :2, :2] @ [15, 10] + m[0, :2, 3], centre, atol=1e-3)
    corner = m[0, :2, :2] @ [30, 20] + m[0, :2, 3]   # the crop's far corner, back in the rotated frame
    assert np.allclose(rot @ corner - (lo + hi) / 2, (hi - lo) / 2 * [1.5, 1.25], atol=1e-3)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("seed", range(4))
def test_transform_tensor_bilinear_matches_numpy(seed, kernels):
    rng = np.random.default_rng(seed)
    batch, c = int(rng.integers(1, 4)), int(rng.integers(1, 9))
    in_hw, out_hw = tuple(int(v) for v in rng.integers(1, 30, 2)), tuple(int(v) for v in rng.integers(1, 20, 2))
    x = rng.standard_normal((batch, c) + in_hw).astype(np.float32)
    m = random_matrix(rng, batch, in_hw, out_hw)
    data = one_op("TRANSFORM_TENSOR_BILINEAR", [x.shape, m.shape], (batch, c) + out_hw)
    (y,) = sparselite.load(data, **KERNELS[kernels]).run([x, m])
    want = ref.transform_tensor_bilinear(x.transpose(0, 2, 3, 1), m, out_hw).transpose(0, 3, 1, 2)
    assert np.allclose(y, want, rtol=1e-6, atol=1e-6)


def test_transform_tensor_bilinear_identity_and_outside():
    """The identity matrix samples pixel centres (a copy); a shift by half the image leaves zeros
    past its edge; a matrix mapping everything outside gives zeros."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)
    eye = np.tile(np.eye(4, dtype=np.float32), (2, 1, 1))
    model = sparselite.load(one_op("TRANSFORM_TENSOR_BILINEAR", [x.shape, eye.shape], x.shape))
    (y,) = model.run([x, eye])
    assert np.array_equal(y, x)
    shifted = eye.copy()
    shifted[:, 0, 3] = 4.0
    (y,) = model.run([x, shifted])
    assert np.array_equal(y[..., :5], x[..., 4:]) and not y[..., 5:].any()
    shifted[:, 1, 3] = -100.0
    assert not model.run([x, shifted])[0].any()


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("d", [2, 3])
def test_transform_landmarks_matches_numpy(d, kernels):
    rng = np.random.default_rng(d)
    for batch, n in ((1, 1), (3, 17), (2, 80)):
        x = (rng.standard_normal((batch, n, d)) * 20).astype(np.float32)
        m = rng.standard_normal((batch, 4, 4)).astype(np.float32)
        model = sparselite.load(one_op("TRANSFORM_LANDMARKS", [x.shape, m.shape], x.shape), **KERNELS[kernels])
        (y,) = model.run([x, m])
        want = ref.transform_landmarks(x, m)
        assert np.allclose(y, want, rtol=1e-6, atol=1e-5)
        assert np.allclose(want[..., :2], np.einsum("bij,bnj->bni", m[:, :2, [0, 1, 3]],
                                                   np.concatenate([x[..., :2], np.ones((batch, n, 1))], -1)),
                           rtol=1e-4, atol=1e-4)
        if d == 3:
            assert np.array_equal(y[..., 2], x[..., 2])


def test_dynamic_batch_from_one_load():
    rng = np.random.default_rng(11)
    lm = (rng.standard_normal((4, 10, 3)) * 30 + 50).astype(np.float32)
    o = l2m_options(rng, 10)
    l2m = sparselite.load(one_op("LANDMARKS_TO_TRANSFORM_MATRIX", [lm.shape], (4, 4, 4), o, batch_dynamic=True))
    x = rng.standard_normal((4, 5, 11, 13)).astype(np.float32)
    ttb = sparselite.load(one_op("TRANSFORM_TENSOR_BILINEAR", [x.shape, (4, 4, 4)], (4, 5, 6, 8), batch_dynamic=True))
    tl = sparselite.load(one_op("TRANSFORM_LANDMARKS", [lm.shape, (4, 4, 4)], lm.shape, batch_dynamic=True))
    for batch in (1, 3, 4):
        (m,) = l2m.run(lm[:batch])
        assert m.shape == (batch, 4, 4) and np.allclose(m, l2m_ref(lm[:batch], o), rtol=1e-5, atol=1e-4)
        mats = random_matrix(rng, batch, (11, 13), (6, 8))
        (y,) = ttb.run([x[:batch], mats])
        want = ref.transform_tensor_bilinear(x[:batch].transpose(0, 2, 3, 1), mats, (6, 8)).transpose(0, 3, 1, 2)
        assert y.shape == (batch, 5, 6, 8) and np.allclose(y, want, rtol=1e-6, atol=1e-6)
        (z,) = tl.run([lm[:batch], mats])
        assert np.allclose(z, ref.transform_landmarks(lm[:batch], mats), rtol=1e-6, atol=1e-5)


GOOD = dict(left_index=0, right_index=1, subset=[0, 1, 2], target_rotation=0.0, output_height=4, output_width=4)


@pytest.mark.parametrize("op, inputs, out_shape, options, message", [
    ("LANDMARKS_TO_TRANSFORM_MATRIX", [(1, 5, 3)], (1, 4, 4), {**GOOD, "right_index": 5},
     r"right landmark 5 is out of range: the input has 5 landmarks"),
    ("LANDMARKS_TO_TRANSFORM_MATRIX", [(1, 5, 3)], (1, 4, 4), {**GOOD, "subset": [0, -1]},
     r"subset landmark -1 is out of range"),
    ("LANDMARKS_TO_TRANSFORM_MATRIX", [(1, 5, 3)], (1, 4, 4), {**GOOD, "subset": []},
     r"the subset of landmarks is empty"),
    ("LANDMARKS_TO_TRANSFORM_MATRIX", [(1, 5, 3)], (1, 4, 4), {**GOOD, "output_width": 0},
     r"output size 0 x 4 must be at least 1 x 1"),
    ("LANDMARKS_TO_TRANSFORM_MATRIX", [(1, 5, 3)], (1, 4, 4), {**GOOD, "scale_x": -1.0},
     r"scale -1 x 1 must be positive and finite"),
    ("LANDMARKS_TO_TRANSFORM_MATRIX", [(1, 5, 1)], (1, 4, 4), GOOD, r"have 1 values each: x and y are needed"),
    ("LANDMARKS_TO_TRANSFORM_MATRIX", [(1, 5, 3)], (1, 3, 4), GOOD, r"output"),
    ("TRANSFORM_TENSOR_BILINEAR", [(1, 2, 5, 5), (1, 3, 4)], (1, 2, 4, 4), None, r"matrix"),
    ("TRANSFORM_TENSOR_BILINEAR", [(2, 2, 5, 5), (1, 4, 4)], (2, 2, 4, 4), None, r"matrix"),
    ("TRANSFORM_TENSOR_BILINEAR", [(1, 2, 5, 5), (1, 4, 4)], (1, 3, 4, 4), None,
     r"keeps the input's batch and channels \[1, 2\]"),
    ("TRANSFORM_LANDMARKS", [(1, 5, 4), (1, 4, 4)], (1, 5, 4), None, r"have 4 values each: 2 \(x, y\) or 3"),
    ("TRANSFORM_LANDMARKS", [(1, 5, 2), (1, 4, 4)], (1, 5, 3), None, r"output"),
])
def test_refused_at_load_naming_the_op(op, inputs, out_shape, options, message):
    with pytest.raises(sparselite.InvalidModelError, match=op + ".*" + message):
        sparselite.load(one_op(op, inputs, out_shape, options))


def test_face_landmark_with_attention_matches_litert_around_the_custom_ops():
    """from_tflite maps the three custom ops; every output matches LiteRT running the rest of the
    model with those ops computed in numpy (three LiteRT passes)."""
    from bench_tflite import mediapipe_models
    from sparselite.converters import from_tflite

    path = mediapipe_models()["face_landmark_with_attention"]
    converted = from_tflite(path)
    types = [op.type for op in converted.graph.ops]
    assert types.count("LANDMARKS_TO_TRANSFORM_MATRIX") == 3 and types.count("TRANSFORM_TENSOR_BILINEAR") == 3
    assert types.count("TRANSFORM_LANDMARKS") == 5
    model = sparselite.load(converted.to_bytes())
    rng = np.random.default_rng(0)
    feeds = {spec.name: rng.uniform(-1, 1, spec.shape).astype(np.float32) for spec in model.inputs}
    theirs = ref.run_with_custom_ops(path, feeds)
    for spec, ours in zip(model.outputs, model.run(feeds)):
        assert rel_err(ours, theirs[spec.name]) < 1e-5, spec.name


@pytest.mark.parametrize("name", ["face_landmark", "hand_landmark_lite"])
def test_graph_in_float64_is_the_model(name):
    """benchmarks/graph64.py (model_coverage's float64 reference for .tflite rows) computes what
    LiteRT computes, to fp32 rounding: it runs the converted graph, not another function."""
    from bench_tflite import mediapipe_models
    from graph64 import run_float64
    from sparselite.converters import from_tflite

    path = mediapipe_models()[name]
    graph = from_tflite(path).graph
    feeds = {n: np.random.default_rng(1).uniform(-1, 1, graph.tensors[n].shape).astype(np.float32)
             for n in graph.inputs}
    theirs = ref.run_litert(path, feeds)
    exact = run_float64(graph, feeds)
    assert sorted(graph.outputs) == sorted(theirs)
    for out, value in zip(graph.outputs, exact):
        assert value.dtype == np.float64 and rel_err(theirs[out], value) < 1e-5, out


def edited_face_landmark(edit):
    """face_landmark_with_attention's bytes with edit(op, options) applied to its first
    Landmarks2TransformMatrix (options: its flexbuffer map as a dict; edit returns the new bytes)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    from bench_tflite import mediapipe_models

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(
        open(mediapipe_models()["face_landmark_with_attention"], "rb").read(), 0))
    op = next(op for op in model.subgraphs[0].operators
              if model.operatorCodes[op.opcodeIndex].customCode == b"Landmarks2TransformMatrix")
    op.customOptions = np.frombuffer(edit(ref.custom_options(op)), np.uint8)
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def test_hostile_custom_options_are_refused_with_the_reason():
    from flatbuffers import flexbuffers

    from sparselite.converters import from_tflite

    def far_subset(options):
        return bytes(flexbuffers.Dumps({**options, "subset_idxs": [0, 9999]}))

    with pytest.raises(sparselite.InvalidModelError, match=r"LANDMARKS_TO_TRANSFORM_MATRIX.*subset landmark 9999 is "
                                                           r"out of range: the input has 468 landmarks"):
        sparselite.load(from_tflite(edited_face_landmark(far_subset)).to_bytes())
    with pytest.raises(sparselite.ConversionError, match=r"Landmarks2TransformMatrix\) needs options .*scale_x.*the "
                                                      r"file gives \['left_rotation_idx'\]"):
        from_tflite(edited_face_landmark(lambda o: bytes(flexbuffers.Dumps({"left_rotation_idx": 1}))))
    for garbage in (b"\x01", b"\xff" * 7, bytes(range(40))):
        with pytest.raises(sparselite.ConversionError, match="operator 192"):
            from_tflite(edited_face_landmark(lambda o: garbage))
