"""LANDMARKS_TO_TRANSFORM_MATRIX, TRANSFORM_TENSOR_BILINEAR and TRANSFORM_LANDMARKS compiled for
wasm32 (the runtime module driven through its C API, tests/test_wasm.py's build) against native."""
import numpy as np

import sparselite
from sparselite.converters.ir import Graph
from sparselite.converters.writer import serialize
from test_wasm import WasmModel, dist  # noqa: F401 (dist: the build fixture)


def crop_model():
    """landmarks [1, 30, 3] -> matrix; a constant feature map sampled by it and the landmarks mapped by
    it, flattened into one output (the WASM harness reads output 0)."""
    rng = np.random.default_rng(5)
    g = Graph()
    lm = g.add_input("landmarks", (1, 30, 3))
    matrix = g.add_op("LANDMARKS_TO_TRANSFORM_MATRIX", [lm], (1, 4, 4), dict(
        left_index=3, right_index=17, subset=list(range(0, 30, 2)), target_rotation=0.5, output_height=9,
        output_width=7, scale_x=1.5, scale_y=1.5), name="l2m")
    features = g.add_const("features", rng.standard_normal((1, 5, 40, 40)).astype(np.float32))
    crop = g.add_op("TRANSFORM_TENSOR_BILINEAR", [features, matrix], (1, 5, 9, 7), name="crop")
    moved = g.add_op("TRANSFORM_LANDMARKS", [lm, matrix], (1, 30, 3), name="moved")
    flat = [g.add_op("RESHAPE", [t], (1, size), name=f"{t}:flat") for t, size in ((crop, 315), (moved, 90))]
    g.outputs.append(g.add_op("CONCAT", flat, (1, 405), dict(axis=1), name="all"))
    x = rng.uniform(0, 40, (1, 30, 3)).astype(np.float32)
    return serialize(g), x


def test_mediapipe_ops_in_wasm_match_native(dist):  # noqa: F811
    data, x = crop_model()
    (native,) = sparselite.load(data).run(x)
    assert np.abs(native[0, :315]).max() > 0.5   # the crop lies (at least partly) inside the map
    wasm = WasmModel(dist / "sparselite.wasm", data).run(x, native.size)
    assert np.allclose(wasm, native.ravel(), rtol=1e-5, atol=1e-5)
