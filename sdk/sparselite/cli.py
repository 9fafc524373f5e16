"""The `sparselite` command: inspect and run .slite models."""
import argparse
import sys
import time

import numpy as np


def _inspect(args):
    from .inspect import format_summary, summarize_file

    summary = summarize_file(args.model)
    print(format_summary(summary))
    for k, v in summary.metadata.items():
        print(f"metadata {k}: {v[:200]}")


def _run(args):
    from .model import load

    model = load(args.model, num_threads=args.threads)
    if args.input:
        x = np.load(args.input)
    else:
        spec = model.inputs[0]
        x = np.random.default_rng(0).standard_normal(spec.shape).astype(spec.dtype)
    start = time.perf_counter()
    outputs = model.run(x)
    elapsed = time.perf_counter() - start
    for spec, y in zip(model.outputs, outputs):
        print(f"{spec.name}: shape {list(y.shape)}, argmax {int(y.argmax())}, mean {float(y.mean()):.6g}")
    print(f"latency: {elapsed * 1e3:.2f} ms")
    if args.output:
        np.save(args.output, outputs[0])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sparselite", description="Inspect and run .slite models.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="ops, shapes, per-layer sparsity and group size, FLOPs, file size")
    p.add_argument("model")
    p.set_defaults(fn=_inspect)
    p = sub.add_parser("run", help="run a model on a .npy input (random if none) and print its outputs")
    p.add_argument("model")
    p.add_argument("--input", help=".npy file for the (single) input")
    p.add_argument("--output", help="write the first output to this .npy file")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(fn=_run)
    args = parser.parse_args(argv)
    from .errors import SparseliteError

    try:
        args.fn(args)
    except (SparseliteError, OSError, ValueError) as exc:
        print(f"sparselite: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
