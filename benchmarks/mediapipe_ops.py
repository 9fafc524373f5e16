"""MediaPipe's custom TFLite ops of face_landmark_with_attention in numpy, and LiteRT running the
rest of such a model around them.

The ops (Landmarks2TransformMatrix v2, TransformTensorBilinear v2, TransformLandmarks v2) are
written from MediaPipe's sources (mediapipe/util/tflite/operations/) with their float / double
arithmetic, NHWC as TFLite holds tensors. LiteRT's Python interpreter has no MediaPipe op
resolver, so `run_with_custom_ops` cuts the custom ops out of the file (their outputs become graph
inputs, their inputs graph outputs), runs that graph in LiteRT, computes the cut ops in numpy from
its outputs and feeds them back, until every custom op has seen final inputs (one pass per level
of custom ops: three for face_landmark_with_attention)."""
import numpy as np

f32 = np.float32


def _rotate(c, s, u, v):
    return f32(f32(c * u) + f32(-s * v))


def landmarks_to_transform_matrix(landmarks, left_index, right_index, subset, target_rotation, output_height,
                                  output_width, scale_x, scale_y):
    """landmarks [B, N, D] float32 -> [B, 4, 4]."""
    out = np.zeros((landmarks.shape[0], 4, 4), f32)
    for b, lm in enumerate(landmarks.astype(f32)):
        left, right = lm[left_index], lm[right_index]
        r = f32(f32(target_rotation) - np.arctan2(f32(right[1] - left[1]), f32(right[0] - left[0]), dtype=f32))
        c, s = np.cos(r, dtype=f32), np.sin(r, dtype=f32)
        pts = lm[list(subset)]
        u = np.array([_rotate(c, s, p[0], p[1]) for p in pts], f32)
        v = np.array([_rotate(s, -c, p[0], p[1]) for p in pts], f32)
        width, height = f32(u.max() - u.min()), f32(v.max() - v.min())
        mid_x, mid_y = f32(f32(u.min() + u.max()) / f32(2)), f32(f32(v.min() + v.max()) / f32(2))
        ci, si = np.cos(-r, dtype=f32), np.sin(-r, dtype=f32)
        cx, cy = _rotate(ci, si, mid_x, mid_y), _rotate(si, -ci, mid_x, mid_y)
        sx = f32(f32(f32(scale_x) * width) / f32(output_width))
        sy = f32(f32(f32(scale_y) * height) / f32(output_height))
        mats = [np.array(m, f32).reshape(4, 4) for m in (
            [1, 0, 0, cx, 0, 1, 0, cy, 0, 0, 1, 0, 0, 0, 0, 1],
            [ci, -si, 0, 0, si, ci, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1],
            [sx, 0, 0, 0, 0, sy, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1],
            [1, 0, 0, -output_width / 2.0, 0, 1, 0, -output_height / 2.0, 0, 0, 1, 0, 0, 0, 0, 1])]
        t = np.eye(4, dtype=f32)
        for m in mats:   # sums from 0 in k order, in float
            t = np.array([[np.cumsum(t[i] * m[:, j], dtype=f32)[-1] for j in range(4)] for i in range(4)], f32)
        out[b] = t
    return out


def transform_tensor_bilinear(x, matrix, out_hw):
    """x NHWC [B, H, W, C], matrix [B, 4, 4] -> [B, OH, OW, C]."""
    batch, h, w, ch = x.shape
    oh, ow = out_hw
    y = np.zeros((batch, oh, ow, ch), f32)
    for b in range(batch):
        t = matrix[b].astype(f32).ravel()
        x3 = f32(float(t[3]) + (float(t[0]) * 0.5 + float(t[1]) * 0.5 - 0.5))
        y3 = f32(float(t[7]) + (float(t[4]) * 0.5 + float(t[5]) * 0.5 - 0.5))
        oy, ox = np.meshgrid(np.arange(oh, dtype=f32), np.arange(ow, dtype=f32), indexing="ij")
        u = (t[0] * ox + t[1] * oy + t[2] * f32(0)) + x3
        v = (t[4] * ox + t[5] * oy + t[6] * f32(0)) + y3
        inside = (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
        fu, fv = np.floor(np.where(inside, u, 0)), np.floor(np.where(inside, v, 0))
        col, row = fu.astype(int), fv.astype(int)
        wu, wv = (np.where(inside, u, 0) - fu)[..., None], (np.where(inside, v, 0) - fv)[..., None]
        padded = np.zeros((h + 1, w + 1, ch), f32)
        padded[:h, :w] = x[b]

        def mix(wt, a, c):
            return ((1.0 - wt.astype(np.float64)) * a + (wt * c).astype(np.float64)).astype(f32)

        upper = mix(wu, padded[row, col], padded[row, col + 1])
        lower = mix(wu, padded[row + 1, col], padded[row + 1, col + 1])
        y[b] = np.where(inside[..., None], mix(wv, upper, lower), f32(0))
    return y


def transform_landmarks(landmarks, matrix):
    """landmarks [B, N, D] (D 2 or 3), matrix [B, 4, 4] -> [B, N, D]."""
    y = landmarks.astype(f32).copy()
    for b in range(landmarks.shape[0]):
        t = matrix[b].astype(f32)
        u, v = landmarks[b, :, 0].astype(f32), landmarks[b, :, 1].astype(f32)
        for axis in range(2):
            r = t[axis]
            y[b, :, axis] = ((r[0] * u + r[1] * v) + r[2] * f32(0)) + r[3]
    return y


def custom_options(op):
    """The flexbuffer map of a custom op's options ({} without)."""
    from flatbuffers import flexbuffers

    raw = bytes(op.customOptions) if op.customOptions is not None and len(op.customOptions) else b""
    return flexbuffers.Loads(raw) if raw else {}


def _compute(code, options, inputs, out_shape):
    if code == "Landmarks2TransformMatrix":
        subset = list(options["subset_idxs"])
        return landmarks_to_transform_matrix(inputs[0], options["left_rotation_idx"], options["right_rotation_idx"],
                                             subset, options["target_rotation_radians"], options["output_height"],
                                             options["output_width"], options["scale_x"], options["scale_y"])
    if code == "TransformTensorBilinear":
        return transform_tensor_bilinear(inputs[0], inputs[1], out_shape[1:3])
    if code == "TransformLandmarks":
        return transform_landmarks(inputs[0], inputs[1])
    raise ValueError(f"no numpy version of custom op {code}")


CUSTOM_CODES = ("Landmarks2TransformMatrix", "TransformTensorBilinear", "TransformLandmarks")


def uses_mediapipe_ops(path):
    """Whether the .tflite at `path` has a custom op of CUSTOM_CODES (which LiteRT lacks)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(open(path, "rb").read(), 0)
    return any((model.OperatorCodes(k).CustomCode() or b"").decode() in CUSTOM_CODES
               for k in range(model.OperatorCodesLength()))


def run_litert(path, feeds, num_threads=1):
    """{output name: array} of LiteRT running the .tflite at `path` on {input name: array}."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=path, num_threads=num_threads)
    interp.allocate_tensors()
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], feeds[d["name"]])
    interp.invoke()
    return {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}


def run_with_custom_ops(path, feeds, num_threads=1):
    """{output name: array} of the .tflite at `path` for {input name: array}, its MediaPipe custom
    ops computed here and everything else by LiteRT."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(open(path, "rb").read(), 0))
    graph = model.subgraphs[0]
    name = {i: t.name.decode() for i, t in enumerate(graph.tensors)}
    cut = [op for op in graph.operators if model.operatorCodes[op.opcodeIndex].customCode]
    custom = [(model.operatorCodes[op.opcodeIndex].customCode.decode(), custom_options(op), list(op.inputs),
               int(op.outputs[0])) for op in cut]
    outputs = [int(i) for i in graph.outputs]
    graph.operators = [op for op in graph.operators if op not in cut]
    cut_inputs = sorted({i for _, _, ins, _ in custom for i in ins if graph.tensors[i].buffer == 0
                         or not model.buffers[graph.tensors[i].buffer].data})
    graph.inputs = np.array(list(graph.inputs) + [out for *_, out in custom], np.int32)
    graph.outputs = np.array(outputs + [i for i in cut_inputs if i not in outputs], np.int32)
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), b"TFL3")
    interp = Interpreter(model_content=bytes(builder.Output()), num_threads=num_threads)
    interp.allocate_tensors()
    by_name = {d["name"]: d for d in interp.get_input_details() + interp.get_output_details()}
    values = {out: np.zeros(graph.tensors[out].shape, f32) for *_, out in custom}
    for _ in range(len(custom) + 1):
        for n, v in feeds.items():
            interp.set_tensor(by_name[n]["index"], v)
        for out, v in values.items():
            interp.set_tensor(by_name[name[out]]["index"], v)
        interp.invoke()
        got = {i: interp.get_tensor(by_name[name[i]]["index"]) for i in graph.outputs}
        new = {}
        for code, options, ins, out in custom:
            args = [got[i] if i in got else values[i] for i in ins]
            new[out] = _compute(code, options, args, list(graph.tensors[out].shape))
        if all(np.array_equal(new[k], values[k]) for k in values):
            return {name[i]: got[i] for i in outputs}
        values = new
    raise RuntimeError("the custom ops' inputs did not settle")
