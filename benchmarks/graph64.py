"""A converted graph (sparselite's IR) run in float64 with torch: the reference a float32 engine's
rounding is measured against where the framework has no float64 mode (LiteRT). Covers the ops of
the MediaPipe models' convolutional graphs and of LeViT's (FULLY_CONNECTED, MATMUL, SOFTMAX with its
scale and bias, SLICE, REDUCE MEAN); any other op raises NotImplementedError. `run_op` computes one
op in its inputs' dtype: torch float32 on float32 inputs (benchmarks/rounding.py --ops).

Convolutions, pools and resizes are torch's float64 kernels; a TFLite bilinear resize is torch's
with align_corners, or its half-pixel rule (align_corners=False), which is TFLite's
half_pixel_centers for the upsampling these models do; a resize in neither mode is refused."""
import numpy as np

_ACT = {"NONE": lambda t, lo, hi: t, "RELU": lambda t, lo, hi: t.clamp(min=0), "RELU6": lambda t, lo, hi: t.clamp(0, 6),
        "CLAMP": lambda t, lo, hi: t.clamp(lo, hi), "SIGMOID": lambda t, lo, hi: t.sigmoid(),
        "TANH": lambda t, lo, hi: t.tanh(), "HARDSWISH": lambda t, lo, hi: t * (t + 3).clamp(0, 6) / 6}


def _act(o, t):
    kind = o.get("activation") or "NONE"
    if kind not in _ACT:
        raise NotImplementedError(f"activation {kind}")
    return _ACT[kind](t, o.get("act_min", o.get("min", 0.0)), o.get("act_max", o.get("max", 0.0)))


def run_op(op, ins, shape):
    """One op of the graph on torch tensors `ins` (None for an absent input), its output of `shape`."""
    import torch
    import torch.nn.functional as F

    o = op.options or {}
    if op.type == "CONV2D":
        pt, pl, pb, pr = o.get("padding", (0, 0, 0, 0))
        y = F.conv2d(F.pad(ins[0], (pl, pr, pt, pb)), ins[1], ins[2] if len(ins) > 2 else None,
                     stride=o.get("stride", (1, 1)), dilation=o.get("dilation", (1, 1)), groups=o.get("groups", 1))
    elif op.type == "FULLY_CONNECTED":
        y = F.linear(ins[0], ins[1], ins[2] if len(ins) > 2 else None)
    elif op.type == "MATMUL":
        y = ins[0] @ ins[1]
    elif op.type in ("ADD", "MUL", "SUB", "DIV"):
        y = {"ADD": torch.add, "MUL": torch.mul, "SUB": torch.sub, "DIV": torch.div}[op.type](ins[0], ins[1])
    elif op.type == "PRELU":
        y = torch.where(ins[0] > 0, ins[0], ins[0] * ins[1])
    elif op.type == "ACTIVATION":
        y = ins[0]
    elif op.type == "SOFTMAX":
        z = ins[0] * o.get("scale", 1.0)
        y = torch.softmax(z + ins[1] if len(ins) > 1 and ins[1] is not None else z, dim=o.get("axis", -1))
    elif op.type == "REDUCE" and o.get("kind") == "MEAN":
        y = ins[0].mean(dim=tuple(o["axes"]), keepdim=bool(o.get("keep_dims")))
    elif op.type in ("MAX_POOL2D", "AVG_POOL2D"):
        pt, pl, pb, pr = o.get("padding", (0, 0, 0, 0))
        if (pt, pl, pb, pr) != (0, 0, 0, 0):
            raise NotImplementedError(f"{op.type} with padding")
        pool = F.max_pool2d if op.type == "MAX_POOL2D" else F.avg_pool2d
        y = pool(ins[0], o["kernel"], o.get("stride", (1, 1)))
    elif op.type == "GLOBAL_AVG_POOL":
        y = ins[0].mean(dim=(2, 3)).reshape(shape)
    elif op.type == "RESIZE_BILINEAR":
        if o.get("coordinates", "TFLITE") != "TFLITE" or o.get("align_corners") == o.get("half_pixel_centers"):
            raise NotImplementedError("RESIZE_BILINEAR outside TFLite's align_corners / half-pixel modes")
        y = F.interpolate(ins[0], size=shape[2:], mode="bilinear", align_corners=bool(o.get("align_corners")))
    elif op.type == "PAD":
        pads, rank = o["pads"], len(ins[0].shape)
        if o.get("value", 0.0) != 0.0:
            raise NotImplementedError("PAD with a nonzero value")
        return F.pad(ins[0], [p for d in reversed(range(rank)) for p in (pads[d], pads[rank + d])])
    elif op.type == "SLICE":
        return ins[0][tuple(slice(b, b + s * n, s) for b, s, n in zip(o["begin"], o["step"], shape))]
    elif op.type == "CONCAT":
        y = torch.cat(ins, o.get("axis", 0))
    elif op.type == "TRANSPOSE":
        return ins[0].permute(*o["perm"])
    elif op.type == "RESHAPE":
        return ins[0].reshape(shape)
    else:
        raise NotImplementedError(op.type)
    return _act(o, y)


def run_float64(graph, feeds):
    """The graph's outputs (numpy float64) for {input name: array}."""
    import torch

    env = {name: torch.from_numpy(np.asarray(feeds[name], np.float64)) for name in graph.inputs}

    def value(name):
        if name not in env:
            env[name] = torch.from_numpy(np.asarray(graph.tensors[name].data, np.float64))
        return env[name]

    for op in graph.ops:
        ins = [None if i is None else value(i) for i in op.inputs]
        env[op.outputs[0]] = run_op(op, ins, tuple(graph.tensors[op.outputs[0]].shape))
    return [env[name].numpy() for name in graph.outputs]
