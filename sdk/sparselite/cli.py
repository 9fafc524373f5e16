"""The `sparselite` command: convert models, inspect and run .slite files, build the runtime for devices."""
import argparse
import os
import shutil
import subprocess
import sys
import time

import numpy as np


def _inspect(args):
    from .inspect import format_summary, summarize_file

    summary = summarize_file(args.model)
    print(format_summary(summary))
    for k, v in summary.metadata.items():
        print(f"metadata {k}: {v[:200]}")


def _progress_bar(done, total):
    """Redraws one line on stderr: `converting [#####.....] done/total ops`."""
    stream, width = sys.stderr, 30
    filled = width * done // max(total, 1)
    stream.write(f"\rconverting [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ops")
    if done == total:
        stream.write("\n")
    stream.flush()


def _convert(args):
    from .converters import from_onnx, from_tflite
    from .inspect import format_summary, summarize
    from .model import load

    ext = os.path.splitext(args.model)[1].lower()
    if ext not in (".tflite", ".onnx"):
        raise ValueError(f"convert reads .tflite and .onnx files, got '{args.model}'")
    from .errors import ConversionError

    show = _progress_bar if os.path.getsize(args.model) > 1 << 20 or args.progress else None
    options = dict(weights=args.weights, progress=show)
    if ext == ".onnx":
        options.update(dims=_sizes(args.dims, "--dims"), fixed_dims=_sizes(args.fixed_dims, "--fixed-dims"))
    elif args.dims or args.fixed_dims:
        raise ValueError("--dims and --fixed-dims name an ONNX model's dimensions")
    convert = from_tflite if ext == ".tflite" else from_onnx
    try:   # a malformed model raises ConversionError (a message, no traceback); so does running out of memory
        converted = convert(args.model, **options)
    except MemoryError as e:
        raise ConversionError(f"{args.model}: out of memory while converting") from e
    out = args.output or os.path.splitext(args.model)[0] + ".slite"
    data = converted.to_bytes()
    loaded = load(data)   # verify it as every reader will (InvalidModelError), before anything is written
    converted.save(out)   # atomic: an existing .slite is replaced only by a verified one
    print(format_summary(summarize(data, loaded)))
    print(f"wrote {out}")


def _sizes(text, flag):
    """{name: size} from "batch=8,seq=128"."""
    sizes = {}
    for item in filter(None, (text or "").split(",")):
        name, _, size = item.partition("=")
        if not name or not size.isdigit():
            raise ValueError(f"{flag} takes name=size pairs separated by commas (batch=8,seq=128), got '{item}'")
        sizes[name.strip()] = int(size)
    return sizes


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


def _columns(names, width=100):
    """names wrapped into indented lines of at most `width` characters."""
    lines, line = [], "  "
    for name in names:
        if len(line) + len(name) > width and line.strip():
            lines.append(line.rstrip())
            line = "  "
        line += name + "  "
    return lines + ([line.rstrip()] if line.strip() else [])


def _ops(args):
    """What each frontend converts, and the runtime's ops."""
    sections = []
    if args.frontend in ("torch", "all"):
        from .converters.torch_frontend import supported_ops

        names = supported_ops()
        sections.append((f"torch (from_torch): {len(names)} aten ops; any op whose inputs are all constants is "
                         "evaluated by torch", names))
    if args.frontend in ("onnx", "all"):
        from .converters.onnx_frontend import supported_ops

        mapped, folded = supported_ops()
        sections.append((f"onnx (from_onnx): {len(mapped)} ops", mapped))
        sections.append((f"onnx, when all inputs are constants (evaluated while converting): {len(folded)} more",
                         folded))
    if args.frontend in ("tflite", "all"):
        from .converters.tflite_frontend import supported_ops

        names = supported_ops()
        sections.append((f"tflite (from_tflite): {len(names)} builtin ops", names))
    if args.frontend in ("runtime", "all"):
        from . import _schema

        names = sorted((k for k in vars(_schema.OpType) if not k.startswith("_")), key=lambda k: getattr(_schema.OpType, k))
        sections.append((f"runtime (.slite op types): {len(names)}", names))
    print("\n\n".join("\n".join([title] + _columns(names)) for title, names in sections))


# Cross compilers per target: Debian's gcc cross packages, or `zig cc` (PyPI ziglang) as a fallback.
TARGETS = {
    "aarch64": (["aarch64-linux-gnu-gcc"], ["zig", "cc", "-target", "aarch64-linux-musl"],
                "apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross, or pip install ziglang"),
    "x86_64": (["cc"], ["zig", "cc", "-target", "x86_64-linux-musl"], "a C compiler (cc)"),
}


def _native_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.path.join(here, "..", "..", "native"), os.path.join(here, "native")):
        if os.path.exists(os.path.join(candidate, "Makefile")):
            return os.path.abspath(candidate)
    raise OSError("build-runtime needs the C sources: run it from a sparselite source checkout or sdist")


def _compiler(target):
    gcc, zig, hint = TARGETS[target]
    if shutil.which(gcc[0]):
        return gcc
    if shutil.which("zig"):
        return zig
    try:
        import ziglang  # noqa: F401  (ships the zig binary)
        return [sys.executable, "-m", "ziglang", *zig[1:]]
    except ImportError:
        raise OSError(f"no compiler for {target}: {hint}") from None


def _build_runtime(args):
    native, cc = _native_dir(), _compiler(args.target)
    out = os.path.abspath(args.out)
    build = os.path.join(out, "build")
    os.makedirs(build, exist_ok=True)
    # Static: the binary then runs on Raspberry Pi OS, other glibc/musl Linux and Android alike.
    cmd = ["make", "-s", "-C", native, f"BUILD={build}", f"CC={' '.join(cc)}", "CFLAGS=-O3 -static",
           f"{build}/libsparselite.a", f"{build}/sparselite-bench"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise OSError(f"the {args.target} build failed:\n{result.stderr[-3000:]}")
    for name in ("libsparselite.a", "sparselite-bench"):
        shutil.copy(os.path.join(build, name), out)
    shutil.copy(os.path.join(native, "include", "sparselite.h"), out)
    shutil.rmtree(build)
    print(f"{out}: libsparselite.a, sparselite.h, sparselite-bench ({args.target}, {' '.join(cc)})")


def _profile(args):
    import json

    from .profiler import chrome_trace, format_table, html_report, load_profile

    if args.source:
        profile = load_profile(args.source)
    else:
        if not args.model:
            raise ValueError("give a model, or --from a profile JSON")
        from .model import load

        model = load(args.model, num_threads=args.threads)
        spec = model.inputs[0]
        x = np.load(args.input) if args.input else np.random.default_rng(0).standard_normal(spec.shape).astype(
            spec.dtype)
        profile = model.profile_report(x, runs=args.runs, warmup=args.warmup, name=args.model)
    print(format_table(profile))
    for path, content in ((args.json, profile), (args.trace, chrome_trace(profile))):
        if path:
            with open(path, "w") as f:
                json.dump(content, f, indent=1)
    if args.html:
        with open(args.html, "w") as f:
            f.write(html_report(profile))


def _bench(args):
    from .model import load

    model = load(args.model, num_threads=args.threads)
    spec = model.inputs[0]
    x = np.random.default_rng(0).standard_normal(spec.shape).astype(spec.dtype)
    for _ in range(args.warmup):
        model.run(x)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        model.run(x)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    pick = lambda p: times[min(len(times) - 1, round(p / 100 * (len(times) - 1)))]  # noqa: E731
    print(f"latency ms: p50 {pick(50):.3f}  p90 {pick(90):.3f}  p99 {pick(99):.3f}  min {times[0]:.3f}  "
          f"({args.runs} runs, {args.threads} threads)")


def _doctor(args):
    from .doctor import print_report

    print_report(as_json=args.json)


def main(argv=None):
    from . import __version__

    parser = argparse.ArgumentParser(prog="sparselite", description="Inspect and run .slite models.")
    parser.add_argument("--version", action="version", version=f"sparselite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="ops, shapes, per-layer sparsity and group size, FLOPs, file size")
    p.add_argument("model")
    p.set_defaults(fn=_inspect)
    p = sub.add_parser("convert", help="convert a .tflite or .onnx model to .slite; prints the per-layer summary")
    p.add_argument("model")
    p.add_argument("-o", "--output", help="the .slite to write (default: next to the model)")
    p.add_argument("--weights", choices=["fp32", "fp16"], help="weight precision (default: the model's own)")
    p.add_argument("--progress", action="store_true", help="show the progress bar for small models too")
    p.add_argument("--dims", metavar="NAME=MAX,...", help="ONNX: maxima of the named dimensions that vary at run time")
    p.add_argument("--fixed-dims", metavar="NAME=SIZE,...", help="ONNX: sizes of named dimensions that stay fixed")
    p.set_defaults(fn=_convert)
    p = sub.add_parser("ops", help="the ops each converter maps (torch, onnx, tflite) and the runtime's op types")
    p.add_argument("frontend", nargs="?", choices=["torch", "onnx", "tflite", "runtime", "all"], default="all")
    p.set_defaults(fn=_ops)
    p = sub.add_parser("run", help="run a model on a .npy input (random if none) and print its outputs")
    p.add_argument("model")
    p.add_argument("--input", help=".npy file for the (single) input")
    p.add_argument("--output", help="write the first output to this .npy file")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(fn=_run)
    p = sub.add_parser("profile", help="per-op time, FLOPs, kernels; table, --json, --trace (Perfetto), --html")
    p.add_argument("model", nargs="?")
    p.add_argument("--from", dest="source", metavar="RUN.json", help="render a saved profile (Python or sparselite-bench)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--input", help=".npy input (seeded random if none)")
    p.add_argument("--json", help="write the profile JSON")
    p.add_argument("--trace", help="write Chrome-trace JSON (open in ui.perfetto.dev)")
    p.add_argument("--html", help="write a self-contained HTML chart of time per op")
    p.set_defaults(fn=_profile)
    p = sub.add_parser("bench", help="latency percentiles only")
    p.add_argument("model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.set_defaults(fn=_bench)
    p = sub.add_parser("build-runtime", help="build libsparselite.a, sparselite.h and sparselite-bench for a device")
    p.add_argument("--target", choices=sorted(TARGETS), default="aarch64")
    p.add_argument("--out", required=True, help="directory to write into")
    p.set_defaults(fn=_build_runtime)
    p = sub.add_parser("doctor", help="CPU, ISA the runtime picks, threads, build flags, which optional extras import")
    p.add_argument("--json", action="store_true", help="print it as JSON")
    p.set_defaults(fn=_doctor)
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
