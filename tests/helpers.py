"""Shared test helpers: build one-op graphs, run them, numpy references."""
import numpy as np

import sparselite
from sparselite.converters.ir import Graph
from sparselite.converters.passes import run_all
from sparselite.converters.writer import serialize


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
