"""Convert MobileNetV2 (real ImageNet weights) to .slite, run it on a photo, print the dense and the
pruned model's top-5 side by side, how far they agree, and the latency.

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
import copy
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--density", type=float, default=0.8,
                        help="keep this fraction of the 1x1 conv / classifier weights (4x1 groups); 1 = dense")
    parser.add_argument("--method", choices=["calibrated", "magnitude"], default="calibrated")
    parser.add_argument("--calibration", type=int, default=64, help="calibration crops (--method calibrated)")
    parser.add_argument("--weights", choices=["fp32", "fp16"], default="fp32")
    parser.add_argument("--out", default=tempfile.gettempdir(), help="where to write the .slite")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    dense = zoo.mobilenet_v2()
    x = zoo.preprocess(data.chelsea())
    model = copy.deepcopy(dense)
    if args.density < 1.0 and args.method == "calibrated":
        batches = calibration_batches(args.calibration)
        prune.calibrated_oneshot(model, batches, args.density, group=4)
        prune.recalibrate_batchnorm(model, batches)
    elif args.density < 1.0:
        prune.magnitude_oneshot(model, args.density, group=4)
    converted = from_torch(model, torch.from_numpy(x), weights=args.weights,
                           metadata={"preprocessing": "imagenet mean/std, 224x224 RGB, NCHW"})
    path = converted.save(os.path.join(args.out, f"mobilenet_v2_d{args.density:g}_{args.weights}.slite"))
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)")

    slite = sparselite.load(path)
    (logits,) = slite.run(x)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        slite.run(x)
        times.append(time.perf_counter() - start)
    with torch.no_grad():
        dense_logits = dense(torch.from_numpy(x)).numpy()[0]
        ref = model(torch.from_numpy(x)).numpy()
    ours, theirs = softmax(logits[0]), softmax(dense_logits)
    top, dense_top = np.argsort(-ours)[:5], np.argsort(-theirs)[:5]
    label = "dense" if args.density >= 1.0 else f"{args.density:.0%} density, {args.method}"
    print(f"top-5 ImageNet classes for skimage's 'chelsea' (a cat: {CATS.start}-{CATS.stop - 1} are cats):")
    print(f"  {'dense (torch)':<24}{'pruned, ' + label + ' (sparselite)'}")
    for d, p in zip(dense_top, top):
        print(f"  class {d:4d}  p={theirs[d]:.3f}     class {p:4d}  p={ours[p]:.3f}")
    shared = len(set(top) & set(dense_top))
    print(f"agreement: top-1 {'the same' if top[0] == dense_top[0] else 'DIFFERENT'}, {shared} of 5 classes "
          f"shared, probability of the dense top-1 {theirs[dense_top[0]]:.3f} -> {ours[dense_top[0]]:.3f}")
    if top[0] != dense_top[0]:
        print("The pruned model's answer differs from the dense model's: one-shot pruning at this density "
              "needs fine-tuning (gradual pruning with distillation: see the README's pruning recipe).")
    print(f"sparselite vs torch on the same pruned weights: max |diff| = {np.abs(logits - ref).max():.2e}")
    print(f"latency: median {statistics.median(times) * 1e3:.1f} ms over {args.runs} runs, one thread, "
          f"kernels for {sparselite.cpu_isa() or ['portable C']}")


if __name__ == "__main__":
    main()
