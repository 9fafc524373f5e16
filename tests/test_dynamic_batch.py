"""A dynamic batch through conv nets: CONV2D (every path: pointwise, depthwise, Winograd, implicit
GEMM, im2col, fused blocks), CONV_TRANSPOSE2D, the pools, RESIZE and DEPTH_TO_SPACE plan for one
image and take any batch up to the converted one from one load, against torch. Any other dynamic
axis of these ops is refused at load with a message naming the axis."""
import numpy as np
import pytest
import torch

import sparselite
from helpers import rel_err
from sparselite.converters import from_torch, prune_groups, zoo
from sparselite.converters.ir import Graph
from sparselite.converters.writer import serialize


class Decoder(torch.nn.Module):
    """The ops a segmentation or super-resolution head adds to a backbone's."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.pool = torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False)
        self.up = torch.nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)

    def forward(self, x):
        y = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2, ceil_mode=True)
        y = self.up(self.pool(y))
        y = torch.nn.functional.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
        y = torch.nn.functional.interpolate(y, size=(40, 40), mode="nearest")
        return y.mean(dim=(2, 3))


def bottlenecks():
    """ResNet-50's bottleneck blocks behind a stem: each block's sum is written over its residual."""
    zoo.allow_torchvision_import()
    from torchvision.models.resnet import Bottleneck

    return torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), Bottleneck(64, 16), Bottleneck(64, 16))


def torchvision(name, density=None):
    module = zoo.torchvision_model(name)
    if density is not None:
        prune_groups(module, density, group=4)
    return module


CASES = {
    "resnet18": lambda: (torchvision("resnet18"), 56, {}),                       # Winograd, implicit, pools
    "resnet18 no winograd": lambda: (torchvision("resnet18"), 56, dict(winograd=False)),
    "mobilenet_v2 pruned, fused": lambda: (torchvision("mobilenet_v2", 0.2), 96, dict(fuse=True)),
    "squeezenet": lambda: (torchvision("squeezenet1_0"), 64, {}),                # strided pools, 1x1
    "decoder": lambda: (Decoder().eval(), 20, {}),
    "bottlenecks": lambda: (bottlenecks().eval(), 20, {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_load_runs_every_batch_like_torch(case):
    torch.manual_seed(0)
    module, size, load_kwargs = CASES[case]()
    x = torch.randn(3, 3, size, size)
    name = next(iter(torch.export.export(module, (x,)).graph_signature.user_inputs))
    model = sparselite.load(from_torch(module, x, dynamic_axes={name: {0: "batch"}}).to_bytes(), **load_kwargs)
    for batch in (3, 1, 2, 3):
        with torch.no_grad():
            expected = module(x[:batch]).numpy()
        got = model.run(x[:batch].numpy())[0]
        assert got.shape == expected.shape
        assert rel_err(got, expected) < 1e-4, (case, batch)


def test_depth_to_space_takes_any_batch():
    """TensorFlow's channel order: y[n][c][h*b + i][w*b + j] = x[n][(i*b + j)*C + c][h][w]."""
    g = Graph()
    x = g.add_input("x", (3, 8, 5, 6))
    g.outputs.append(g.add_op("DEPTH_TO_SPACE", [x], (3, 2, 10, 12), options=dict(block_size=2), name="d2s"))
    g.dims["batch"] = 3
    for t in (x, g.outputs[0]):
        g.tensors[t].dynamic = ("batch", None, None, None)
    model = sparselite.load(serialize(g))
    data = np.random.default_rng(1).standard_normal((3, 8, 5, 6)).astype(np.float32)
    for batch in (2, 1, 3):
        expected = data[:batch].reshape(batch, 2, 2, 2, 5, 6).transpose(0, 3, 4, 1, 5, 2).reshape(batch, 2, 10, 12)
        np.testing.assert_array_equal(model.run(data[:batch])[0], expected)


def conv_graph(dynamic_axis):
    """x [2, 4, 8, 8] -> 3x3 CONV2D, with `dynamic_axis` of x and y following dimension 'd'."""
    g = Graph()
    x = g.add_input("x", (2, 4, 8, 8))
    w = g.add_const("w", np.random.default_rng(0).standard_normal((4, 4, 3, 3)).astype(np.float32))
    y = g.add_op("CONV2D", [x, w], (2, 4, 8, 8), options=dict(padding=(1, 1, 1, 1)), name="conv")
    g.outputs.append(y)
    g.dims["d"] = g.tensors[x].shape[dynamic_axis]
    for t in (x, y):
        g.tensors[t].dynamic = tuple("d" if a == dynamic_axis else None for a in range(4))
    return g


def test_only_the_batch_may_vary():
    sparselite.load(serialize(conv_graph(0)))
    for axis in (1, 2, 3):
        with pytest.raises(sparselite.UnsupportedError, match=f"CONV2D supports a dynamic batch .* along axis {axis}"):
            sparselite.load(serialize(conv_graph(axis)))


def strided_graph(offset=-1):
    """x [2, 11] -> SLICE of every other element from 1: y, its axis 1 the computed dimension
    frames = floor((samples + offset) / 2)."""
    g = Graph()
    x = g.add_input("x", (2, 11))
    frames = (11 + offset) // 2
    y = g.add_op("SLICE", [x], (2, frames), options=dict(begin=[0, 1], step=[1, 2]), name="taps")
    g.outputs.append(y)
    g.dims["samples"] = 11
    g.dims["frames"] = frames
    g.derived_dims["frames"] = ("samples", offset, 2)
    g.tensors[x].dynamic, g.tensors[y].dynamic = (None, "samples"), (None, "frames")
    return g


def test_computed_dimensions_follow_their_source():
    x = np.arange(22, dtype=np.float32).reshape(2, 11)
    model = sparselite.load(serialize(strided_graph()))
    for samples in (11, 4, 3, 10):
        (y,) = model.run(x[:, :samples])
        np.testing.assert_array_equal(y, x[:, :samples][:, 1::2][:, :(samples - 1) // 2])
    with pytest.raises(sparselite.InputError, match=r"input 0 \(x\) is too short: dimension frames = "
                                                    r"floor\(\(samples - 1\) / 2\) would be 0 at samples = 2"):
        model.run(x[:, :2])
    (y,) = model.run(x[:, :5])   # still usable after the refusal
    np.testing.assert_array_equal(y, x[:, 1:5:2])


@pytest.mark.parametrize("formula,why", [(("samples", -1, 0), "a divisor 1..65536"),
                                         (("samples", -70000, 1), "an offset within"),
                                         (("frames", -1, 2), "an earlier dimension"),
                                         (("samples", 4, 2), "the maximum the formula gives")])
def test_computed_dimensions_are_verified(formula, why):
    g = strided_graph(offset=-1)
    g.derived_dims["frames"] = formula
    with pytest.raises(sparselite.InvalidModelError, match=rf"dynamic dimension 1 \(frames\) = .*{why}"):
        sparselite.load(serialize(g))


def test_inputs_cannot_follow_a_computed_dimension():
    g = strided_graph()
    extra = g.add_input("z", (1, g.dims["frames"]))
    g.tensors[extra].dynamic = (None, "frames")
    g.outputs.append(extra)
    with pytest.raises(sparselite.InvalidModelError, match=r"graph input 1 \(z\): axis 1 follows dimension frames, "
                                                           r"which is computed"):
        sparselite.load(serialize(g))
