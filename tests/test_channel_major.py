"""ConvNeXt-style blocks stay channel-major: the converter turns TRANSPOSE to channels-last,
LAYER_NORM / FULLY_CONNECTED per pixel, TRANSPOSE back into LAYER_NORM over axis 1 and 1x1
CONV2Ds (passes.keep_channel_major) where an FC is group-sparse or there is none, and the runtime
normalizes the channels of each pixel."""
import numpy as np
import pytest
import torch

import sparselite
from sparselite.converters import from_torch, prune_groups, zoo

from helpers import rel_err, run_graph, single_op


def layer_norm_channels(x, gamma, beta, eps):
    mean = x.mean(axis=1, keepdims=True, dtype=np.float64)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y.astype(np.float32)


@pytest.mark.parametrize("shape", [(1, 5, 3, 4), (2, 96, 17, 19), (3, 7, 300), (1, 33, 1, 1), (2, 1, 9, 9)])
@pytest.mark.parametrize("affine", ["none", "gamma", "both"])
def test_layer_norm_over_channels_matches_numpy(shape, affine):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    c = shape[1]
    gamma = rng.standard_normal(c).astype(np.float32) if affine != "none" else None
    beta = rng.standard_normal(c).astype(np.float32) if affine == "both" else None
    consts = [gamma] + ([beta] if beta is not None else []) if gamma is not None else []
    g, inputs = single_op("LAYER_NORM", [x], shape, consts=consts, options=dict(epsilon=1e-6, axis=1))
    for threads in (1, 2):
        got = run_graph(g, inputs, num_threads=threads)[0]
        assert rel_err(got, layer_norm_channels(x, gamma, beta, 1e-6)) < 1e-5


@pytest.mark.parametrize("axis", [0, 2])
def test_layer_norm_refuses_other_axes(axis):
    x = np.ones((1, 4, 3, 3), np.float32)
    g, inputs = single_op("LAYER_NORM", [x], x.shape, options=dict(axis=axis))
    with pytest.raises(sparselite.SparseliteError, match=f"axis {axis} is not supported"):
        run_graph(g, inputs)


def tiny_convnext(seed=0):
    zoo.allow_torchvision_import()
    from torchvision.models.convnext import CNBlock, LayerNorm2d

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 24, 4, 4), LayerNorm2d(24, eps=1e-6),
                              CNBlock(24, 0.5, 0.0), CNBlock(24, 0.5, 0.0), LayerNorm2d(24, eps=1e-6),
                              torch.nn.Conv2d(24, 48, 2, 2), CNBlock(48, 0.5, 0.0),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(48, 10)).eval()
    with torch.no_grad():  # LayerNorm's default affine (1, 0) would hide a gamma/beta mix-up
        for m in net.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.normal_(1.0, 0.3)
                m.bias.normal_(0.0, 0.3)
    return net


@pytest.mark.parametrize("density", [None, 0.2])
def test_convnext_blocks_run_channel_major_like_torch(density):
    net = tiny_convnext()
    if density is not None:
        prune_groups(net, density, group=4)
    x = torch.randn(3, 3, 64, 64)
    converted = from_torch(net, x, dynamic_axes={"input": {0: "batch"}})
    types = [op.type for op in converted.graph.ops]
    channel_major_norms = sum(op.type == "LAYER_NORM" and op.options.get("axis") == 1 for op in converted.graph.ops)
    if density is None:  # dense blocks stay token-major (gemm_nc reads the rows as they are); LayerNorm2d not
        assert types.count("TRANSPOSE") == 6 and types.count("FULLY_CONNECTED") == 7 and channel_major_norms == 2
    else:
        assert "TRANSPOSE" not in types and types.count("FULLY_CONNECTED") == 1 and channel_major_norms == 5
    model = sparselite.load(converted.to_bytes())
    for batch in (3, 1, 2):
        with torch.no_grad():
            expected = net(x[:batch]).numpy()
        assert rel_err(model.run(x[:batch].numpy())[0], expected) < 1e-4
    kernels = {p.kernel for p in model.profile(x.numpy(), runs=1) if p.op == "CONV2D"}
    assert any("spmm" in k for k in kernels) == (density is not None)


def test_channels_last_regions_that_are_not_per_pixel_stay_as_they_are():
    class Mixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm, self.fc = torch.nn.LayerNorm(8), torch.nn.Linear(8, 8)

        def forward(self, x):
            y = self.fc(self.norm(x.permute(0, 2, 3, 1)))
            return torch.softmax(y, dim=2).permute(0, 3, 1, 2)  # softmax over a spatial axis

    torch.manual_seed(1)
    net, x = Mixed().eval(), torch.randn(2, 8, 5, 6)
    converted = from_torch(net, x)
    assert "TRANSPOSE" in [op.type for op in converted.graph.ops]
    with torch.no_grad():
        expected = net(x).numpy()
    assert rel_err(sparselite.load(converted.to_bytes()).run(x.numpy())[0], expected) < 1e-5
