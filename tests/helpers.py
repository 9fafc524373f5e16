"""Shared test helpers: build one-op graphs, run them, numpy references."""
import os
import subprocess
from unittest import mock

import numpy as np

import sparselite
from sparselite import _schema as S
from sparselite.converters import writer
from sparselite.converters.ir import Graph
from sparselite.converters.passes import run_all
from sparselite.converters.writer import serialize


NATIVE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "native")
# The C runtime's sanitizer build (native tests, the hostile corpus): one flag string, so ccache
# (native/build.mk) shares its objects between the test files that build it.
SANITIZE = "-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"


def native_make(build, target, **variables):
    """Builds native/Makefile's `target` in the folder `build` on every core; returns its path."""
    cmd = ["make", "-s", f"-j{os.cpu_count() or 1}", "-C", NATIVE, f"BUILD={build}", f"{build}/{target}"]
    result = subprocess.run(cmd + [f"{k}={v}" for k, v in variables.items()], capture_output=True, text=True)
    assert result.returncode == 0, f"make {target} failed:\n{result.stderr[-4000:]}"
    return os.path.join(build, target)


# Kernel configurations op tests run under: portable C, SSE2 only, and the
# best ISA on two threads (on this machine AVX2+FMA).
KERNELS = {"c": dict(isa=[]), "sse2": dict(isa=["sse2"]), "best-2threads": dict(num_threads=2)}


def _erf(v):
    from scipy.special import erf

    return erf(v)


def run_graph(graph, inputs, weights="fp32", **load_kwargs):
    run_all(graph, sparse=False)
    model = sparselite.load(serialize(graph, weights=weights), **load_kwargs)
    return model.run(inputs)


def single_op(op_type, input_arrays, out_shape, consts=(), options=None, group_size=0):
    """A graph with one op over the given inputs (then constants); returns (graph, input list)."""
    g = Graph()
    names = [g.add_input(f"x{i}", a.shape) for i, a in enumerate(input_arrays)]
    for i, c in enumerate(consts):
        names.append(None if c is None else g.add_const(f"c{i}", c))
    out = g.add_op(op_type, names, out_shape, options=options, name="op")
    g.outputs.append(out)
    if group_size:
        g.tensors[names[len(input_arrays)]].group_size = group_size
    return g, list(input_arrays)


def rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


ACTIVATIONS = {
    "NONE": lambda v, lo, hi: v,
    "RELU": lambda v, lo, hi: np.maximum(v, 0),
    "RELU6": lambda v, lo, hi: np.clip(v, 0, 6),
    "CLAMP": lambda v, lo, hi: np.clip(v, lo, hi),
    "HARDSWISH": lambda v, lo, hi: v * np.clip(v + 3, 0, 6) / 6,
    "HARDSIGMOID": lambda v, lo, hi: np.clip(v + 3, 0, 6) / 6,
    "SIGMOID": lambda v, lo, hi: 1 / (1 + np.exp(-v)),
    "SILU": lambda v, lo, hi: v / (1 + np.exp(-v)),
    "GELU": lambda v, lo, hi: 0.5 * v * (1 + _erf(v / np.sqrt(2))),
    "GELU_TANH": lambda v, lo, hi: 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v ** 3))),
    "TANH": lambda v, lo, hi: np.tanh(v),
}


def conv2d_ref(x, w, b, stride, dilation, pads, groups):
    n, c, h, wd = x.shape
    oc, icg, kh, kw = w.shape
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + pl + pr - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((n, oc, oh, ow), dtype=np.float64)
    ocg = oc // groups
    for g in range(groups):
        xs = xp[:, g * icg:(g + 1) * icg]
        ws = w[g * ocg:(g + 1) * ocg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dilation[0]:i * dilation[0] + stride[0] * (oh - 1) + 1:stride[0],
                           j * dilation[1]:j * dilation[1] + stride[1] * (ow - 1) + 1:stride[1]]
                y[:, g * ocg:(g + 1) * ocg] += np.einsum("nchw,oc->nohw", patch, ws[:, :, i, j])
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def group_sparse_weight(rng, oc, k, r, density, empty_rows=True):
    """Random W[OC x K] whose nonzeros come in r x 1 output-channel groups; some group rows empty."""
    rows = (oc + r - 1) // r
    mask = rng.random((rows, k)) < density
    if empty_rows and rows > 1:
        mask[rng.integers(rows)] = False
    full = np.repeat(mask, r, axis=0)[:oc]
    return (rng.standard_normal((oc, k)) * full).astype(np.float32)


def tiny_encoder():
    """A small attention + MLP layer with pooling (torch module, converted with a dynamic sequence length)."""
    import torch

    from sparselite.converters import from_torch
    from sparselite.converters.torch_ops import l2_normalize, mean_pool

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.pos = torch.nn.Embedding(40, 16), torch.nn.Parameter(torch.randn(1, 12, 16))
            self.q, self.k, self.v = (torch.nn.Linear(16, 16) for _ in range(3))
            self.out, self.norm = torch.nn.Linear(16, 16), torch.nn.LayerNorm(16)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 16))

        def forward(self, ids, mask):
            t = ids.shape[1]
            h = self.embed(ids) + self.pos[:, :t]
            q, k, v = (p(h).view(ids.shape[0], t, 2, 8).transpose(1, 2) for p in (self.q, self.k, self.v))
            bias = (1.0 - mask[:, None, None, :].float()) * -1e4
            att = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5 + bias, dim=-1)
            h = self.norm(h + self.out((att @ v).transpose(1, 2).reshape(ids.shape[0], t, 16)))
            h = h + self.mlp(h)
            return h, l2_normalize(mean_pool(h, mask))

    net = Layer().eval()
    ids = torch.randint(0, 40, (2, 12))
    mask = torch.ones_like(ids)
    axes = {"ids": {1: "seq"}, "mask": {1: "seq"}}
    return net, from_torch(net, {"ids": ids, "mask": mask}, dynamic_axes=axes)


def without_padding(build):
    """build()'s bytes up to the end of the FlatBuffer or of the last buffer: the writer pads the
    file to 64 bytes, and a truncation that only drops padding still loads (sl_run_test checks
    that every truncation is refused)."""
    heads, flatbuffer = [], writer._flatbuffer

    def measured(*args, **kwargs):
        out = flatbuffer(*args, **kwargs)
        heads.append(len(out))
        return out

    with mock.patch.object(writer, "_flatbuffer", measured):
        data = build()
    model = S.Model.GetRootAs(data, 0)
    buffers = (model.Buffers(i) for i in range(model.BuffersLength()))
    return data[:max([heads[-1]] + [b.Offset() + b.Size() for b in buffers])]


# (batch, in channels, expanded, out channels, H, W, kernel, stride, pads (t, l, b, r), residual, sparse r)
FUSED_CASES = [
    (1, 8, 24, 8, 13, 11, 3, (1, 1), (1, 1, 1, 1), True, 0),     # stride 1, in place, residual
    (2, 6, 20, 10, 9, 12, 3, (2, 2), (0, 0, 1, 1), False, 4),     # TF 'same' stride 2, sparse 4x1
    (1, 5, 16, 5, 17, 7, 5, (1, 1), (2, 2, 2, 2), True, 2),       # 5x5 in place
    (1, 4, 12, 6, 15, 16, 5, (2, 2), (2, 2, 2, 2), False, 0),     # 5x5 stride 2
    (1, 3, 10, 3, 12, 9, 7, (1, 1), (3, 3, 3, 3), True, 0),       # 7x7: per-band depthwise, not in place
    (1, 4, 8, 4, 10, 10, 3, (1, 1), (0, 0, 0, 0), False, 1),      # valid padding: narrower output
    (1, 6, 18, 7, 11, 13, 3, (2, 1), (1, 1, 1, 1), False, 0),     # vertical stride only
    (1, 6, 18, 7, 11, 13, 3, (1, 2), (1, 0, 1, 2), False, 8),     # horizontal stride, asymmetric pads
    (2, 16, 40, 16, 8, 8, 3, (1, 1), (1, 1, 1, 1), True, 4),      # batch 2, sparse, residual
    (1, 8, 128, 8, 10, 10, 3, (1, 1), (1, 1, 1, 1), True, 4),     # sparse expand whose planes AVX-512 pads unfused
]


# Chains with a leading depthwise (BlazeFace's double blocks): depthwise -> 1x1 -> depthwise -> 1x1
# (+ the ADD of the chain's input): (a FUSED_CASES case, (its kernel, pads (t, l, b, r), activation)).
FUSED_PRE_CASES = [
    ((1, 8, 6, 8, 13, 11, 3, (1, 1), (1, 1, 1, 1), True, 1), (3, (1, 1, 1, 1), "NONE")),    # BlazeFace's shape
    ((2, 6, 10, 6, 9, 7, 5, (1, 1), (2, 2, 2, 2), True, 0), (5, (2, 2, 2, 2), "RELU")),     # 5x5 both, batch 2
    ((1, 5, 12, 7, 17, 10, 3, (2, 2), (0, 0, 1, 1), False, 4), (3, (1, 1, 1, 1), "RELU6")), # stride-2 middle
    ((1, 7, 9, 7, 11, 14, 7, (1, 1), (3, 3, 3, 3), True, 2), (5, (2, 2, 2, 2), "NONE")),    # 7x7 middle, per band
    ((1, 4, 8, 4, 12, 3, 3, (1, 1), (1, 1, 1, 1), True, 0), (3, (0, 0, 2, 2), "NONE")),     # 3 columns, pads below
]


def inverted_residual(case, acts=("RELU6", "RELU6", "NONE"), add_act="NONE", seed=0, pre=None, density=0.4,
                      permuted=False):
    """A 1x1 expand -> depthwise -> 1x1 project (+ residual ADD) chain: (.slite bytes, input, numpy output).
    pre: (kernel, pads, activation) of a depthwise before the expand, stride 1 (BlazeFace's double
    blocks); the residual is then its input. permuted: the expand's group-sparse rows are stored
    in a shuffled order (the format's out_perm), as sparselite.prune's rearrangement stores them."""
    n, cin, mid, cout, h, w, k, stride, pads, residual, r = case
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, cin, h, w)).astype(np.float32)
    w1 = (group_sparse_weight(g, mid, cin, r, density) if r else g.standard_normal((mid, cin))).astype(np.float32)
    out_perm = None
    if permuted:  # stored row i (grouped) is channel out_perm[i]
        out_perm = np.random.default_rng(seed + 1).permutation(mid)
        w1[out_perm] = w1.copy()
    w3 = (group_sparse_weight(g, cout, mid, r, density) if r else g.standard_normal((cout, mid))).astype(np.float32)
    w2 = g.standard_normal((mid, 1, k, k)).astype(np.float32)
    b1, b2, b3 = (g.standard_normal(c).astype(np.float32) for c in (mid, mid, cout))
    act = [ACTIVATIONS[a] for a in acts]
    graph = Graph()
    t = graph.add_input("x", x.shape)
    e_in = x
    if pre is not None:
        pk, ppads, pact = pre
        w0 = g.standard_normal((cin, 1, pk, pk)).astype(np.float32)
        b0 = g.standard_normal(cin).astype(np.float32)
        e_in = ACTIVATIONS[pact](conv2d_ref(x, w0, b0, (1, 1), (1, 1), ppads, cin), 0, 0).astype(np.float32)
        t = graph.add_op("CONV2D", [t, graph.add_const("w0", w0), graph.add_const("b0", b0)], e_in.shape, name="pre",
                         options=dict(padding=ppads, groups=cin, activation=pact))
    e = act[0](conv2d_ref(e_in, w1.reshape(mid, cin, 1, 1), b1, (1, 1), (1, 1), (0, 0, 0, 0), 1), 0, 0)
    d = act[1](conv2d_ref(e, w2, b2, stride, (1, 1), pads, mid), 0, 0)
    ref = act[2](conv2d_ref(d, w3.reshape(cout, mid, 1, 1), b3, (1, 1), (1, 1), (0, 0, 0, 0), 1), 0, 0)
    t = graph.add_op("CONV2D", [t, graph.add_const("w1", w1.reshape(mid, cin, 1, 1)), graph.add_const("b1", b1)],
                     e.shape, name="expand", options=dict(activation=acts[0]))
    t = graph.add_op("CONV2D", [t, graph.add_const("w2", w2), graph.add_const("b2", b2)], d.shape, name="dw",
                     options=dict(stride=stride, padding=pads, groups=mid, activation=acts[1]))
    t = graph.add_op("CONV2D", [t, graph.add_const("w3", w3.reshape(cout, mid, 1, 1)), graph.add_const("b3", b3)],
                     ref.shape, name="project", options=dict(activation=acts[2]))
    if residual:
        ref = ACTIVATIONS[add_act](ref + x, 0, 0)
        t = graph.add_op("ADD", [t, "x"], ref.shape, name="add", options=dict(activation=add_act))
    graph.outputs.append(t)
    if r:
        graph.tensors["w1"].group_size = graph.tensors["w3"].group_size = r
        graph.tensors["w1"].out_perm = out_perm
    run_all(graph, sparse=False)
    return serialize(graph), x, ref.astype(np.float32)
