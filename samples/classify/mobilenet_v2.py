"""Convert MobileNetV2 (real ImageNet weights) to .slite, run it on a photo, print top-5 and latency.

    python samples/classify/mobilenet_v2.py [--density 0.1] [--weights fp16] [--out DIR]
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
from sparselite.converters import from_torch, prune_groups, zoo


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--density", type=float, default=1.0, help="prune 1x1 convs/linear to this density (4x1)")
    parser.add_argument("--weights", choices=["fp32", "fp16"], default="fp32")
    parser.add_argument("--out", default=tempfile.gettempdir(), help="where to write the .slite")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    model = zoo.mobilenet_v2()
    if args.density < 1.0:
        prune_groups(model, args.density, group=4)
    x = zoo.preprocess(data.chelsea())
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
        ref = model(torch.from_numpy(x)).numpy()
    probs = np.exp(logits[0] - logits[0].max())
    probs /= probs.sum()
    print("top-5 ImageNet classes for skimage's 'chelsea' (a cat: 281-285 are cats):")
    for c in np.argsort(-probs)[:5]:
        print(f"  class {c:4d}  p={probs[c]:.3f}")
    print(f"torch top-1: {int(ref.argmax())}; max |sparselite - torch| = {np.abs(logits - ref).max():.2e}")
    print(f"latency: median {statistics.median(times) * 1e3:.1f} ms over {args.runs} runs, one thread, "
          f"kernels for {sparselite.cpu_isa() or ['portable C']}")


if __name__ == "__main__":
    main()
