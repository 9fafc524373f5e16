"""from_torch's mappings for issue 17 (booleans, selection, integer tensors, attention, conv1d,
group norm, fused products), each a small module converted and run against torch, with dynamic
dimensions where the op must follow them."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sparselite
from helpers import rel_err
from sparselite.converters import from_torch
from sparselite.converters.missing import UnsupportedOps

g = torch.Generator().manual_seed(0)


def _rand(*shape):
    return torch.randn(*shape, generator=g)


def _check(module, examples, dynamic_axes=None, runs=(), tol=1e-5):
    """Converts module on the examples (a dict), runs it on them and on each feeds dict of `runs`
    (smaller along dynamic axes) from one load, comparing every output with torch."""
    module = module.eval()
    model = sparselite.load(from_torch(module, examples, dynamic_axes=dynamic_axes).to_bytes())
    for feeds in (examples,) + tuple(runs):
        outs = model.run({k: v.numpy() for k, v in feeds.items()})
        with torch.no_grad():
            refs = module(**feeds)
        refs = refs if isinstance(refs, tuple) else (refs,)
        assert len(outs) == len(refs)
        for out, ref in zip(outs, refs):
            ref = ref.numpy()
            assert out.shape == ref.shape and out.dtype == ref.dtype, (out.shape, out.dtype, ref.shape, ref.dtype)
            if ref.dtype == np.float32:
                assert rel_err(out, ref) <= tol, rel_err(out, ref)
            else:
                np.testing.assert_array_equal(out, ref)
    return model


def _fn(fn):
    """A module whose forward takes the named inputs fn takes."""
    import inspect

    names = list(inspect.signature(fn).parameters)

    class M(torch.nn.Module):
        pass

    M.forward = lambda self, *args, **kwargs: fn(*args, **kwargs)
    M.forward.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
    return M()


SEQ = {0: "batch", 1: "seq"}


def test_comparisons_and_logic():
    x, y = _rand(3, 7), _rand(3, 7)
    x[0, :3] = y[0, :3]
    ids = torch.randint(0, 5, (3, 7), generator=g)

    def fn(x, y, ids):
        return (x > y, x >= y, x < 0.5, x <= y, x == y, x != y, ids.ne(1), ids.eq(2), ids < y,
                (x > 0) & (y < 0), (x > 0) | ids.bool(), (x > 0) ^ (y > 0), ~(x > y), torch.logical_not(ids.bool()),
                torch.logical_and(x > 0, ids > 2))
    small = {"x": x[:2, :4], "y": y[:2, :4], "ids": ids[:2, :4]}
    _check(_fn(fn), {"x": x, "y": y, "ids": ids}, {k: SEQ for k in "x y ids".split()}, runs=[small])


def test_where_masked_fill_and_casts():
    x, y = _rand(2, 5, 6), _rand(2, 5, 6)
    mask = torch.randint(0, 2, (2, 1, 6), generator=g)

    def fn(x, y, mask):
        keep = mask.bool()
        return (torch.where(keep, x, y), torch.where(keep, x, -1.0), torch.where(keep, 2.0, y),
                x.masked_fill(~keep, float(torch.finfo(torch.float32).min)), keep.float() * 3 + x,
                (x > 0).int(), (x > 0).long() * mask, keep.to(torch.int32), torch.where(x > 0, mask, 7))
    _check(_fn(fn), {"x": x, "y": y, "mask": mask}, {"x": {0: "batch"}, "y": {0: "batch"}, "mask": {0: "batch"}},
           runs=[{"x": x[:1], "y": y[:1], "mask": mask[:1]}])


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -0.5, -1, 1.7])
def test_pow(exponent):
    x = _rand(2, 9).abs() + 0.1
    model = _check(_fn(lambda x: x ** exponent), {"x": x}, tol=2e-6)
    assert model is not None


def test_unary_activations_and_integer_negation():
    x = _rand(4, 10)
    ids = torch.randint(-5, 5, (4, 10), generator=g)

    def fn(x, ids):
        return (torch.rsqrt(x.abs() + 0.1), torch.sqrt(x.abs()), -x, torch.exp(x), torch.log(x.abs() + 1e-3),
                torch.erf(x), x.abs(), -ids, torch.minimum(x, x.flip(1)), torch.maximum(ids, ids.flip(0)))
    _check(_fn(fn), {"x": x, "ids": ids}, tol=2e-6)


def test_integer_arithmetic_and_cumsum_follow_the_length():
    ids = torch.randint(0, 9, (3, 12), generator=g)

    def fn(ids):
        mask = ids.ne(1).int()   # RoBERTa's position ids
        positions = (torch.cumsum(mask, dim=1).type_as(mask) + 0) * mask
        return (positions.long() + 1, ids * 3 - 7, torch.div(ids - 4, 3, rounding_mode="trunc"),
                torch.div(ids - 4, 3, rounding_mode="floor"),
                torch.div(ids - 4, torch.where(ids[:, :1] > 4, -3, 2), rounding_mode="floor"),
                torch.cumsum(ids.float(), 1), torch.cumsum(ids, 0))
    _check(_fn(fn), {"ids": ids}, {"ids": SEQ}, runs=[{"ids": ids[:2, :5]}, {"ids": ids[:1, :1]}])


def test_expand_fills_and_index_by_aranges():
    x = _rand(3, 1, 8)
    mask = torch.randint(0, 2, (3, 8), generator=g)

    def fn(x, mask):
        b, t = mask.shape
        picked = mask.bool()[torch.arange(b)[:, None, None, None], torch.arange(t)[None, None, None, :]]
        return (x.expand(-1, 4, -1), torch.zeros_like(x) + x, torch.ones_like(mask), torch.full_like(x, 2.5),
                x.new_zeros(b, t) + 1, picked, torch.ones(b, t, t) * x[:, :, :1])
    _check(_fn(fn), {"x": x, "mask": mask}, {"x": {0: "batch", 2: "seq"}, "mask": SEQ},
           runs=[{"x": x[:2, :, :5], "mask": mask[:2, :5]}])


def test_neighbour_tokens_follow_the_length():
    """A slice dropping k tokens padded back by k zeros at the other end (MobileBERT's trigram
    input), both ways, is one GATHER_ELEMENTS that follows the length; padded otherwise, it is
    refused naming the slice's length."""
    x = _rand(3, 9, 4)

    def fn(x):
        return torch.cat([F.pad(x[:, 1:], [0, 0, 0, 1]), x, F.pad(x[:, :-2], [0, 0, 2, 0])], dim=2)
    _check(_fn(fn), {"x": x}, {"x": SEQ}, runs=[{"x": x[:2, :5]}, {"x": x[:1, :2]}])
    types = {op.type for op in from_torch(_fn(fn), {"x": x}, dynamic_axes={"x": SEQ}).graph.ops}
    assert "GATHER_ELEMENTS" in types and not types & {"PAD", "SLICE"}
    with pytest.raises(UnsupportedOps, match=r"a slice of a dynamic axis \(seq - 1 elements\) padded other than"):
        from_torch(_fn(lambda x: F.pad(x[:, 1:], [0, 0, 1, 0])), {"x": x}, dynamic_axes={"x": SEQ})


def test_gather_and_take_along_dim():
    x = _rand(2, 5, 6)
    index = torch.randint(0, 5, (2, 5, 6), generator=g)

    def fn(x, index):
        return (torch.gather(x, 2, index), torch.gather(x, 1, index[:, :3]), torch.take_along_dim(x, index, dim=-1),
                torch.gather(index, 0, index[:1] - index[:1]))
    _check(_fn(fn), {"x": x, "index": index})


def test_constants_of_two_dynamic_axes_are_cut_to_the_run():
    """Relative positions (a [T, T] function of aranges, folded at the maximum) follow the length."""
    x = _rand(2, 10, 10)

    def fn(x):
        t = x.shape[1]
        pos = torch.arange(t)
        rel = (pos[None, :] - pos[:, None]).float()
        return x + rel, x * torch.triu(torch.ones(t, t))
    _check(_fn(fn), {"x": x}, {"x": {1: "seq", 2: "seq"}}, runs=[{"x": x[:, :4, :4]}, {"x": x[:, :1, :1]}])


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float", "causal"])
def test_scaled_dot_product_attention(mask_kind):
    q, k, v = _rand(2, 3, 9, 8), _rand(2, 3, 9, 8), _rand(2, 3, 9, 8)
    keep = torch.ones(2, 9, dtype=torch.int64)
    keep[1, 6:] = 0

    def fn(q, k, v, keep):
        if mask_kind == "causal":
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        mask = keep.bool()[:, None, None, :]
        if mask_kind == "float":
            mask = (1.0 - keep[:, None, None, :].float()) * -1e4
        return F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask_kind == "none" else mask,
                                              scale=0.3 if mask_kind == "float" else None)
    axes = {"q": {0: "batch", 2: "seq"}, "k": {0: "batch", 2: "seq"}, "v": {0: "batch", 2: "seq"}, "keep": SEQ}
    feeds = {"q": q, "k": k, "v": v, "keep": keep}
    small = {n: t[:1, :, :5] if t.dim() == 4 else t[:1, :5] for n, t in feeds.items()}
    _check(_fn(fn), feeds, axes, runs=[small])


def test_multi_query_attention_broadcasts_keys_and_values():
    """MobileNetV4's hybrid blocks: keys and values of one head for every query head."""
    q, k, v = _rand(2, 4, 9, 8), _rand(2, 1, 6, 8), _rand(2, 1, 6, 8)
    axes = {"q": {0: "batch"}, "k": {0: "batch"}, "v": {0: "batch"}}
    _check(_fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v)), {"q": q, "k": k, "v": v}, axes,
           runs=[{"q": q[:1], "k": k[:1], "v": v[:1]}])


def test_conv1d_and_group_norm():
    class Audio(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(4, 6, 5, stride=2, padding=2, dilation=1)
            self.grouped = torch.nn.Conv1d(6, 6, 3, padding=2, dilation=2, groups=2)
            self.same = torch.nn.Conv1d(6, 4, 4, padding="same", bias=False)
            self.norm = torch.nn.GroupNorm(2, 6)
            self.norm4 = torch.nn.GroupNorm(3, 6, affine=False)

        def forward(self, x):
            y = self.norm(F.gelu(self.conv(x)))
            z = self.grouped(y)
            return self.same(z), self.norm4(z[:, :, None, :] * 2)
    _check(Audio(), {"x": _rand(2, 4, 31)}, tol=2e-5)
    # Along a dynamic length: one tap at a time, the lengths computed from it at each run.
    x = _rand(3, 4, 40)
    _check(Audio(), {"x": x}, {"x": {0: "batch", 2: "samples"}}, tol=2e-5,
           runs=[{"x": x[:1, :, :23]}, {"x": x[:2, :, :9]}, {"x": x[:1, :, :1]}])


def test_lengths_computed_from_a_dynamic_one():
    """Sizes torch computes from a dynamic dimension as (s + a) // b + c follow it at run time:
    slices that drop the last elements, a strided subsampling, a select and flip along the
    length, x[arange(B), index] on a matrix of that length, repeat along the other axes."""
    x = _rand(3, 12, 4)
    ids = torch.tensor([-1, 2, -4])   # from either end of rows of at least 4

    def fn(x, ids):
        last = x.cumsum(1)[:, -1]
        head = x[:, :-3] * 2
        every_other = x[:, ::2] + 1
        marks = torch.zeros(x.shape[0], x.shape[1])
        marks[(torch.arange(x.shape[0]), ids)] = 1.0
        return last, head, every_other, x.flip([1]).cumsum(1).flip([1]), marks, x[:, :, :1].repeat(1, 1, 3)
    runs = [{"x": x[:2, :7], "ids": ids[:2]}, {"x": x[:1, :4], "ids": ids[:1]}]
    _check(_fn(fn), {"x": x, "ids": ids}, {"x": SEQ, "ids": {0: "batch"}}, runs=runs)


def test_addmm_and_baddbmm():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(_rand(6, 5))
            self.b = torch.nn.Parameter(_rand(5))

        def forward(self, x, y, z):
            return (torch.addmm(self.b, x, self.w), torch.addmm(self.b, x, self.w, beta=0.5, alpha=2.0),
                    torch.addmm(z, x, y), torch.baddbmm(z[None], x[None], y[None], beta=2.0, alpha=0.5))
    _check(M(), {"x": _rand(4, 6), "y": _rand(6, 5), "z": _rand(4, 5)})


def test_failures_name_the_aten_op_and_the_module():
    class Inner(torch.nn.Module):
        def forward(self, x):
            return torch.sort(x, dim=-1).values + torch.cummax(x, dim=-1).values

    class Outer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

        def forward(self, x):
            return self.inner(x)
    with pytest.raises(UnsupportedOps) as info:
        from_torch(Outer(), _rand(2, 5))
    message = str(info.value)
    assert "aten.sort" in message and "aten.cummax" in message and "module 'inner'" in message


def test_attention_as_decompositions_leave_it(monkeypatch):
    """run_decompositions keeps sdpa as _scaled_dot_product_flash_attention_for_cpu (mask made
    additive by where) when the table does not lower that one further."""
    from torch.export import default_decompositions

    from sparselite.converters import torch_frontend

    table = {k: v for k, v in default_decompositions().items() if "_flash_attention_for_cpu" not in str(k)}
    export = torch_frontend._export
    seen = set()

    def decomposed(*args, **kwargs):
        ep, axes = export(*args, **kwargs)
        ep = ep.run_decompositions(table)
        seen.update(str(n.target) for n in ep.graph.nodes)
        return ep, axes

    monkeypatch.setattr(torch_frontend, "_export", decomposed)

    def fn(q, k, v, keep):
        return (F.scaled_dot_product_attention(q, k, v, attn_mask=keep.bool()[:, None, None, :]),
                F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.2))
    keep = torch.ones(2, 9, dtype=torch.int64)
    keep[0, 5:] = 0
    _check(_fn(fn), {"q": _rand(2, 3, 9, 8), "k": _rand(2, 3, 9, 8), "v": _rand(2, 3, 9, 8), "keep": keep})
    assert "aten._scaled_dot_product_flash_attention_for_cpu.default" in seen


def test_in_place_writes_into_a_mask_of_constant_shape_fold():
    """Swin's shifted-window mask: zeros of the padded size written slice by slice in place (the
    graph is functionalized into slice_scatter), compared pairwise, then added to attention scores;
    the mask depends only on shapes and folds into a constant."""
    def fn(x):
        h, w = x.shape[1], x.shape[2]
        mask = x.new_zeros((h, w))
        count = 0
        for hs in ((0, -4), (-4, -2), (-2, None)):
            for ws in ((0, -4), (-4, -2), (-2, None)):
                mask[hs[0]:hs[1], ws[0]:ws[1]] = count
                count += 1
        windows = mask.view(h // 4, 4, w // 4, 4).permute(0, 2, 1, 3).reshape(-1, 16)
        pairs = windows.unsqueeze(1) - windows.unsqueeze(2)
        pairs = pairs.masked_fill(pairs != 0, -100.0).masked_fill(pairs == 0, 0.0)
        rolled = torch.roll(x, shifts=(-2, -2), dims=(1, 2))
        tokens = rolled.view(1, h // 4, 4, w // 4, 4, -1).permute(0, 1, 3, 2, 4, 5).reshape(-1, 16, x.shape[3])
        scores = tokens @ tokens.transpose(1, 2) / 4 + pairs
        return scores.softmax(-1) @ tokens
    model = _check(_fn(fn), {"x": _rand(1, 8, 12, 6)})
    assert model.inputs[0].shape == (1, 8, 12, 6)


@pytest.mark.parametrize("ord_", [2, 1, float("inf"), float("-inf"), 3.0])
def test_vector_norm_and_normalize(ord_):
    def fn(x):
        return (torch.linalg.vector_norm(x, ord_, dim=-1, keepdim=True), torch.linalg.vector_norm(x, ord_, dim=(0, 2)),
                torch.linalg.vector_norm(x, ord_), F.normalize(x, p=2.0, dim=-1), torch.clamp_max(x, 0.3))
    _check(_fn(fn), {"x": _rand(3, 5, 7)})


@pytest.mark.parametrize("equation, shapes", [
    ("bghid,bghjd->bghij", [(2, 3, 4, 5, 6), (2, 3, 4, 7, 6)]),   # MaxViT's relative attention
    ("bghij,bghjd->bghid", [(2, 3, 4, 5, 7), (2, 3, 4, 7, 6)]),
    ("ij,jk->ik", [(3, 5), (5, 4)]), ("bhqd,khd->bhqk", [(2, 3, 5, 4), (7, 3, 4)]),
    ("...ij,...jk", [(2, 3, 4), (2, 4, 5)]), ("bi,bj->bij", [(3, 4), (3, 5)]), ("bnd,d->bn", [(2, 3, 4), (4,)]),
    ("iak,bkj->abij", [(3, 2, 5), (4, 5, 6)]), ("i,i->", [(5,), (5,)]), ("bij->bji", [(2, 3, 4)]),
    ("ijk->k", [(2, 3, 4)]), ("nct,nc->nt", [(2, 3, 5), (1, 3)]),
])
def test_einsum_as_matmul_transpose_and_sums(equation, shapes):
    names = "ab"[:len(shapes)]
    if len(shapes) == 1:
        fn = _fn(lambda a: torch.einsum(equation, a))
    else:
        fn = _fn(lambda a, b: torch.einsum(equation, a, b))
    if equation == "nct,nc->nt":   # n broadcast from 1: refused, naming the reason
        with pytest.raises(UnsupportedOps, match="broadcasting between operands"):
            from_torch(fn, {n: _rand(*s) for n, s in zip(names, shapes)})
        return
    _check(fn, {n: _rand(*s) for n, s in zip(names, shapes)})


def test_hard_swish_hard_sigmoid_and_means_are_unbiased():
    """x / 6 as x * fl(1/6) is 3e-8 too large on every output (a mean over 384 as a sum times fl(1/384)
    likewise), a bias that BatchNorm after it amplifies (pruned LeViT was 5x torch's error against
    float64); the mean relative error against float64 stays at rounding noise, as torch's does."""
    x = torch.randn(200000, generator=g) * 4
    rows = torch.randn(2000, 384, generator=g) + 1

    def fn(x, rows):
        return F.hardswish(x), F.hardsigmoid(x), rows.mean(-1)
    outs = sparselite.load(from_torch(_fn(fn), {"x": x, "rows": rows}).to_bytes()).run(
        {"x": x.numpy(), "rows": rows.numpy()})
    for out, ref in zip(outs, fn(x.double(), rows.double())):
        ref = ref.numpy()
        nz = ref != 0
        assert abs(((out[nz] - ref[nz]) / ref[nz]).mean()) < 3e-9
        assert rel_err(out, ref) < 2e-6


@pytest.mark.parametrize("frontend", ["torch", "onnx"])
def test_batch_norm_parameters_round_once(frontend):
    """A folded convolution's weights and bias, and the scale and shift of a BatchNorm lowered to
    MUL + ADD (LeViT's, over flattened tokens), are computed in float64 and rounded once, through
    from_torch and from_onnx (BatchNormalization kept by the export): in float32, var + eps, the
    root, the quotient, the product and the sum each round (pruned LeViT's converted graph in
    float64 was 6e-5 from the model in float64 that way, 4e-5 now)."""
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn2 = torch.nn.Conv2d(8, 16, 3), torch.nn.BatchNorm2d(16)
            self.fc, self.bn1 = torch.nn.Linear(16, 32, bias=False), torch.nn.BatchNorm1d(32)

        def forward(self, x):
            t = self.bn2(self.conv(x)).flatten(2).transpose(1, 2)   # tokens
            return self.bn1(self.fc(t).flatten(0, 1)).reshape(t.shape[0], -1, 32)

    m = M().eval()
    with torch.no_grad():
        for bn in (m.bn2, m.bn1):   # variances over decades, as after pruning
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=g))
            bn.running_var.copy_(torch.exp(3 * torch.randn(bn.num_features, generator=g)))
            bn.weight.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
            bn.bias.copy_(torch.randn(bn.num_features, generator=g))
    x = _rand(1, 8, 6, 6)
    if frontend == "torch":
        graph = from_torch(m, x).graph
    else:
        import io

        from sparselite.converters import from_onnx

        buf = io.BytesIO()
        torch.onnx.export(m, (x,), buf, input_names=["x"], opset_version=17, dynamo=False, do_constant_folding=False)
        graph = from_onnx(buf.getvalue()).graph

    m.requires_grad_(False)

    def exact(bn):
        s = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        return s, bn.bias.double() - bn.running_mean.double() * s

    def data(name):
        return graph.tensors[name].data

    conv = next(op for op in graph.ops if op.type == "CONV2D")
    s, t = exact(m.bn2)
    np.testing.assert_array_equal(data(conv.inputs[1]), (m.conv.weight.double() * s[:, None, None, None]).float())
    np.testing.assert_array_equal(data(conv.inputs[2]), (m.conv.bias.double() * s + t).float())
    mul = next(op for op in graph.ops if op.type == "MUL")
    add = next(op for op in graph.ops if op.type == "ADD")
    s, t = exact(m.bn1)
    np.testing.assert_array_equal(data(mul.inputs[1]).ravel(), s.float())
    np.testing.assert_array_equal(data(add.inputs[1]).ravel(), t.float())
    if frontend == "torch":
        _check(m, {"x": x})


class _ConvPReLU(torch.nn.Module):
    """Conv -> PReLU (fused into the conv when per channel or shared) -> LeakyReLU, as face and
    detection nets written in PyTorch use them."""

    def __init__(self, slopes, leak):
        super().__init__()
        self.conv = torch.nn.Conv2d(6, 8, 3, padding=1)
        self.prelu = torch.nn.PReLU(slopes)
        self.leak = torch.nn.LeakyReLU(leak)
        with torch.no_grad():
            self.prelu.weight.copy_(torch.rand(slopes, generator=g) * 0.5 - 0.1)

    def forward(self, x):
        return self.leak(self.prelu(self.conv(x)) - 0.3)


@pytest.mark.parametrize("slopes,leak", [(8, 0.01), (1, 0.2)])
def test_prelu_and_leaky_relu(slopes, leak):
    model = _check(_ConvPReLU(slopes, leak), {"x": _rand(2, 6, 12, 11)})
    assert [p.op for p in model.profile(_rand(2, 6, 12, 11).numpy(), runs=1) if p.fused_into is None].count("PRELU") == 1


def test_prelu_on_features_and_sequences():
    """Per-channel slopes along dim 1 of [N, C] and [N, C, L] inputs."""
    prelu = torch.nn.PReLU(5)
    with torch.no_grad():
        prelu.weight.copy_(torch.linspace(-0.5, 0.5, 5))
    _check(prelu, {"input": _rand(3, 5)})
    _check(prelu, {"input": _rand(2, 5, 11)})
