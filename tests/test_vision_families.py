"""torchvision's classification architectures through from_torch, against torch: ResNet (basic and
bottleneck blocks), ConvNeXt (depthwise 7x7, LayerNorm and linear layers on channels-last), RegNet
X and Y (grouped 3x3, squeeze-excitation), DenseNet (concatenation) and GoogLeNet (inception
branches). Random weights (no pretrained ones offline), made numerically meaningful first: random
BatchNorm affines with statistics measured on a batch, random LayerNorm affines and ConvNeXt layer
scales, so that no block is a no-op and activations neither vanish nor explode."""
import io

import numpy as np
import pytest
import torch

import sparselite
from helpers import rel_err
from sparselite.converters import from_onnx, from_torch, prune_groups, zoo

ARCHITECTURES = ["resnet18", "resnet50", "convnext_tiny", "regnet_y_400mf", "regnet_x_400mf", "densenet121",
                 "googlenet"]
SIZE = 224


def lively(model, seed=0):
    """`model` (eval mode) with random norm affines and layer scales, and BatchNorm statistics
    measured on a random batch: torchvision's init leaves BN at mean 0 / variance 1, under which
    activations shrink to ~1e-11 in GoogLeNet (its output no longer depends on the input), and
    ConvNeXt's layer scales at 1e-6, which leave its blocks out of the output."""
    g = torch.Generator().manual_seed(seed)
    norms = []
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm)) and mod.weight is not None:
                mod.weight.copy_(0.5 + torch.rand(mod.weight.shape, generator=g))
                mod.bias.copy_(0.2 * torch.randn(mod.bias.shape, generator=g))
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.reset_running_stats()
                mod.momentum = None   # cumulative average: one batch gives its exact statistics
                mod.train()
                norms.append(mod)
            if hasattr(mod, "layer_scale"):   # ConvNeXt's CNBlock
                mod.layer_scale.copy_(0.1 + 0.4 * torch.rand(mod.layer_scale.shape, generator=g))
        if norms:
            model(torch.randn(4, 3, SIZE, SIZE, generator=g))
    for mod in norms:
        mod.eval()
    return model


def build(name):
    options = {"init_weights": True} if name == "googlenet" else {}   # (silences a FutureWarning)
    return lively(zoo.torchvision_model(name, **options))


@pytest.fixture(scope="module")
def x():
    return torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def check_against_torch(model, x, name):
    converted = from_torch(model, x)
    with torch.no_grad():
        ref = model(x).numpy()
    assert ref.shape == (1, 1000) and np.abs(ref).max() > 1e-3, name
    (y,) = sparselite.load(converted.to_bytes()).run(x.numpy())
    assert y.shape == ref.shape
    assert rel_err(y, ref) < 1e-4, name   # max abs error relative to the output's largest value
    return converted


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_dense_matches_torch(name, x):
    model = build(name)
    with torch.no_grad():   # the input matters (GoogLeNet's output did not before lively())
        other = model(torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).numpy()
        assert rel_err(model(x).numpy(), other) > 0.05
    check_against_torch(model, x, name)


# Layers stored group-sparse after 80% pruning in 4x1 groups, at least: ResNet-18's classifier (its only
# 1x1 convs are the strided downsample shortcuts, which prune_groups prunes but the converter stores
# dense: it stores only stride-1 ones sparse), ConvNeXt-T's 36 block linear layers and its classifier.
PRUNED = {"resnet18": 1, "convnext_tiny": 37}


@pytest.mark.parametrize("name", sorted(PRUNED))
def test_pruned_matches_torch(name, x):
    model = build(name)
    kept = prune_groups(model, 0.2, group=4)
    assert kept and all(abs(d - 0.2) < 0.01 for d in kept.values())
    converted = check_against_torch(model, x, name)
    sparse = [layer for layer in converted.layers() if layer[3]]
    assert len(sparse) >= PRUNED[name]
    assert all(r == 4 and abs(d - 0.2) < 0.02 for _, _, d, r in sparse)


def test_onnx_path_matches_onnxruntime(x):
    """The ONNX importer on a pruned ConvNeXt-T export (LayerNorm, erf GELU, MatMul on channels-last)
    against ONNX Runtime."""
    import onnxruntime as ort

    model = build("convnext_tiny")
    prune_groups(model, 0.2, group=4)
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, input_names=["input"], output_names=["output"], opset_version=17,
                      dynamo=False)
    converted = from_onnx(buf.getvalue())
    assert sum(1 for layer in converted.layers() if layer[3] == 4) >= 37
    (y,) = sparselite.load(converted.to_bytes()).run(x.numpy())
    ref = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    assert rel_err(y, ref) < 1e-4


@pytest.mark.parametrize("version", [1, 2])
def test_swin_blocks_match_torch_and_onnxruntime(version):
    """A shifted Swin block at a small size: the in-place window mask (folded), roll, relative
    position bias, and for V2 the cosine attention (vector norms, clamp_min) and its log-spaced
    position table MLP, through from_torch against torch and from_onnx against ONNX Runtime."""
    import onnxruntime as ort

    zoo.allow_torchvision_import()
    from torchvision.models.swin_transformer import SwinTransformerBlock, SwinTransformerBlockV2

    torch.manual_seed(0)
    block = (SwinTransformerBlock if version == 1 else SwinTransformerBlockV2)(32, 2, [4, 4], [2, 2]).eval()
    with torch.no_grad():
        for p in block.parameters():   # random biases and norm affines too
            p.add_(0.1 * torch.randn(p.shape))
    x = torch.randn(1, 12, 8, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = block(x).numpy()
    (y,) = sparselite.load(from_torch(block, x).to_bytes()).run(x.numpy())
    assert rel_err(y, ref) < 1e-5
    buf = io.BytesIO()
    torch.onnx.export(block, (x,), buf, input_names=["input"], opset_version=17, dynamo=False)
    (y,) = sparselite.load(from_onnx(buf.getvalue()).to_bytes()).run(x.numpy())
    theirs = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    assert rel_err(y, theirs) < 1e-5
