"""Real-weight models against torch: dense and one-shot pruned (4x1 groups), fp32 and fp16."""
import numpy as np
import pytest
import torch

import sparselite
from helpers import rel_err
from sparselite.converters import from_torch, prune_groups, zoo

MODELS = {"mobilenet_v2": zoo.mobilenet_v2, "efficientnet_lite0": zoo.efficientnet_lite0}


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return zoo.preprocess(data.chelsea())


@pytest.fixture(scope="module", params=sorted(MODELS))
def family(request, photo):
    """{density: (torch module, converted fp32, converted fp16)} for one architecture."""
    out = {}
    for density in (1.0, 0.5, 0.1):
        model = MODELS[request.param]()
        if density < 1.0:
            prune_groups(model, density, group=4)
        x = torch.from_numpy(photo)
        out[density] = (model, from_torch(model, x), from_torch(model, x, weights="fp16"))
    return request.param, out


def run_both(module, converted, x):
    """(sparselite output, torch output) of one model on one input."""
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    (y,) = sparselite.load(converted.to_bytes()).run(x)
    return y, ref


@pytest.mark.parametrize("density", [1.0, 0.5, 0.1])
def test_matches_torch(family, photo, density):
    name, models = family
    module, converted, _ = models[density]
    rng = np.random.default_rng(3)
    for x in (photo, rng.standard_normal(photo.shape).astype(np.float32)):
        y, ref = run_both(module, converted, x)
        assert rel_err(y, ref) < 1e-4, name


@pytest.mark.parametrize("density", [0.5, 0.1])
def test_pruned_layers_stored_group_sparse(family, density):
    _, models = family
    layers = models[density][1].layers()
    pointwise = [l for l in layers if l[3]]
    assert len(pointwise) >= 30
    assert all(r == 4 for _, _, _, r in pointwise)
    assert all(abs(d - density) < 0.05 for _, _, d, _ in pointwise)


def test_dense_model_classifies_like_torch(family, photo):
    _, models = family
    module, converted, _ = models[1.0]
    y, ref = run_both(module, converted, photo)
    assert list(np.argsort(-y[0])[:5]) == list(np.argsort(-ref[0])[:5])
    assert int(ref.argmax()) in (281, 282, 285)  # tabby / tiger cat / Egyptian cat: it is a cat


def test_fp16_weights_close_to_torch(family, photo):
    _, models = family
    module, _, converted16 = models[0.1]
    y, ref = run_both(module, converted16, photo)
    assert rel_err(y, ref) < 2e-2


def test_file_sizes(family):
    name, models = family
    # MobileNetV2's targets are the issue's; EfficientNet-Lite0 keeps more dense depthwise weights.
    fp32_limit, fp16_limit = (0.20, 0.11) if name == "mobilenet_v2" else (0.20, 0.12)
    dense = len(models[1.0][1].to_bytes())
    assert len(models[0.1][1].to_bytes()) <= fp32_limit * dense
    assert len(models[0.1][2].to_bytes()) <= fp16_limit * dense


def test_save_and_load_from_path(family, photo, tmp_path):
    _, models = family
    converted = models[0.5][1]
    path = converted.save(tmp_path / "m.slite")
    a = sparselite.load(path).run(photo)[0]
    b = sparselite.load(converted.to_bytes()).run(photo)[0]
    assert np.array_equal(a, b)


# Every ISA path and thread count against the portable C kernels: same model,
# same input. The C kernels are themselves checked against torch above.
KERNEL_PATHS = [dict(isa=["sse2"]), dict(isa=["sse2"], num_threads=2), dict(), dict(num_threads=2),
                dict(tune=True)]


@pytest.mark.parametrize("density", [1.0, 0.5, 0.1])
def test_simd_and_threads_match_portable_kernels(family, photo, density):
    name, models = family
    data = models[density][1].to_bytes()
    (ref,) = sparselite.load(data, isa=[]).run(photo)
    for options in KERNEL_PATHS:
        model = sparselite.load(data, **options)
        first = model.run(photo)[0]
        assert rel_err(first, ref) < 1e-4, (name, options)
        for _ in range(3):  # bit-identical run to run, threads or not
            assert np.array_equal(model.run(photo)[0], first), (name, options)


def test_profile_reports_kernels_and_flops(family, photo):
    _, models = family
    dense = sparselite.load(models[1.0][1].to_bytes()).profile(photo, runs=2)
    sparse = sparselite.load(models[0.1][1].to_bytes()).profile(photo, runs=2)
    assert [p.name for p in dense] == [p.name for p in sparse]
    assert all(p.ms >= 0 for p in dense) and sum(p.ms for p in dense) > 0
    kernels = {p.kernel for p in sparse}
    assert any("spmm" in k for k in kernels) and any("dwconv" in k for k in kernels)
    # Dense-equivalent work is the same model; stored work shrinks with pruning.
    assert sum(p.dense_flops for p in sparse) == pytest.approx(sum(p.dense_flops for p in dense))
    assert sum(p.flops for p in sparse) < 0.5 * sum(p.flops for p in dense)
    macs = sum(p.dense_flops for p in dense if p.op in ("CONV2D", "FULLY_CONNECTED")) / 2
    assert 2.5e8 < macs < 6.5e8  # MobileNetV2 ~300M, EfficientNet-Lite0 ~400M multiply-adds
