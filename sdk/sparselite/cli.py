"""The `sparselite` command: convert models, inspect and run .slite files, build the runtime for devices."""
import argparse
import os
import shutil
import subprocess
import sys
import time

import numpy as np


def _inspect(args):
    from .inspect import format_io, format_summary, summarize_file

    summary = summarize_file(args.model)
    print(format_io(summary))
    print()
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


def _cores():
    try:
        return len(os.sched_getaffinity(0))   # the cores this process may use (containers, taskset)
    except AttributeError:
        return os.cpu_count() or 1


def _load_to_run(args):
    """The model on --threads threads; warns when they outnumber the cores (they then take turns on
    them and every op waits for the slowest: 4 threads on 2 cores ran MobileNetV2 10x slower)."""
    from . import cpu_isa
    from .model import load

    cores = _cores()
    if args.threads > cores:
        print(f"sparselite: warning: --threads {args.threads} is more than the {cores} CPU cores here: threads "
              f"would take turns on the cores and runs get slower, not faster; use --threads {cores} or fewer",
              file=sys.stderr)
    if args.precision == "fp16" and "neon_fp16" not in cpu_isa():
        print(f"sparselite: note: --precision fp16 needs ARMv8.2-A fp16 arithmetic (neon_fp16); this CPU has "
              f"{' '.join(cpu_isa()) or 'none of the SIMD ISAs'}, so every layer runs fp32", file=sys.stderr)
    return load(args.model, num_threads=args.threads, precision=args.precision)


def _shape(text, flag):
    dims = text.lower().split("x")
    if not all(d.isdigit() and int(d) > 0 for d in dims):
        raise ValueError(f"{flag} takes NAME=1x3x224x224 (sizes joined by x), got '{text}'")
    return tuple(int(d) for d in dims)


def _named(item, flag, needs_name):
    name, eq, value = item.partition("=")
    if not eq:
        if needs_name:
            raise ValueError(f"{flag} takes NAME=VALUE, got '{item}'")
        return None, item
    return name, value


def _inputs(model, args):
    """{name: array} from --input [NAME=]x.npy (without NAME=, the inputs in order) and --shape
    NAME=1x128; inputs without a file are seeded: standard-normal floats, or 1s for integers (a valid
    token id, a full attention mask; as sparselite-bench), at their --shape or the model's shape."""
    specs = {spec.name: spec for spec in model.inputs}

    def spec_of(name, flag, item):
        if name not in specs:
            raise ValueError(f"{flag} {item}: the model has no input '{name}' (its inputs: {', '.join(specs)})")
        return name

    files, shapes, order = {}, {}, iter(specs)
    for item in args.input or []:
        name, path = _named(item, "--input", False)
        if name is None:
            name = next(order, None)
            if name is None:
                raise ValueError(f"more --input files than the model's {len(specs)} inputs")
        files[spec_of(name, "--input", item)] = path
    for item in args.shape or []:
        name, text = _named(item, "--shape", True)
        shapes[spec_of(name, "--shape", item)] = _shape(text, "--shape")
    both = set(files) & set(shapes)
    if both:
        raise ValueError(f"input '{both.pop()}' has both --input and --shape: a .npy file brings its own shape")
    rng, values = np.random.default_rng(0), {}
    for name, spec in specs.items():
        if name in files:
            values[name] = np.load(files[name])
            continue
        shape = shapes.get(name, spec.shape)
        if np.dtype(spec.dtype).kind == "f":
            values[name] = rng.standard_normal(shape).astype(spec.dtype)
        else:
            values[name] = np.ones(shape, spec.dtype)
    return values


def _run(args):
    from . import cpu_isa

    model = _load_to_run(args)
    x = _inputs(model, args)
    start = time.perf_counter()
    outputs = model.run(x)
    elapsed = time.perf_counter() - start
    for spec, y in zip(model.outputs, outputs):
        print(f"{spec.name}: shape {list(y.shape)}, argmax {int(y.argmax())}, mean {float(y.mean()):.6g}")
    print(f"latency: {elapsed * 1e3:.2f} ms (one run, {args.threads} threads, kernels for "
          f"{' '.join(cpu_isa()) or 'portable C'}; sparselite bench gives percentiles)")
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
    cmd = ["make", "-s", f"-j{os.cpu_count() or 1}", "-C", native, f"BUILD={build}", f"CC={' '.join(cc)}",
           "CFLAGS=-O3 -static", f"{build}/libsparselite.a", f"{build}/sparselite-bench"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise OSError(f"the {args.target} build failed:\n{result.stderr[-3000:]}")
    for name in ("libsparselite.a", "sparselite-bench"):
        shutil.copy(os.path.join(build, name), out)
    shutil.copy(os.path.join(native, "include", "sparselite.h"), out)
    shutil.rmtree(build)
    print(f"{out}: libsparselite.a, sparselite.h, sparselite-bench ({args.target}, {' '.join(cc)})")


def _measure(args):
    """A profile of args.model on its inputs (see _inputs)."""
    model = _load_to_run(args)
    return model.profile_report(_inputs(model, args), runs=args.runs, warmup=args.warmup, name=args.model)


def _profile(args):
    import json

    from .profiler import chrome_trace, format_compare, format_table, html_compare, html_report, load_profile

    profiles = [load_profile(path) for path in args.source or []] + ([_measure(args)] if args.model else [])
    if len(profiles) not in (1, 2):
        raise ValueError("give a model, or --from a profile JSON, or two profiles to compare (two --from, or a "
                         f"model and one --from); got {len(profiles)}")
    if len(profiles) == 2:
        if args.json or args.trace:
            raise ValueError("--json and --trace write one profile: leave them out when comparing two")
        print(format_compare(*profiles))
        if args.html:
            with open(args.html, "w") as f:
                f.write(html_compare(*profiles))
        return
    (profile,) = profiles
    print(format_table(profile))
    for path, content in ((args.json, profile), (args.trace, chrome_trace(profile))):
        if path:
            with open(path, "w") as f:
                json.dump(content, f, indent=1)
    if args.html:
        with open(args.html, "w") as f:
            f.write(html_report(profile))


def _bench(args):
    from .profiler import format_summary

    print(format_summary(_measure(args)))


def _add_run_options(p, timed=True):
    """The options run, profile and bench share with sparselite-bench."""
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="threads per op, the caller's included (default 1; at most the CPU cores)")
    p.add_argument("--input", action="append", metavar="[NAME=]x.npy",
                   help="a .npy for an input, by name or, without NAME=, the inputs in order; repeat for several "
                        "inputs (default: seeded random floats, 1s for integer inputs)")
    p.add_argument("--shape", action="append", metavar="NAME=1x3x224x224",
                   help="run input NAME at this shape without a file (a dynamic length or batch); repeatable")
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32",
                   help="fp16: 1x1, FC and depthwise layers in fp16 where the CPU has ARMv8.2-A fp16 arithmetic "
                        "(neon_fp16: most phones since 2018, Pi 5); elsewhere fp32, with a note (default fp32)")
    if timed:
        p.add_argument("--runs", type=int, default=50, metavar="N", help="timed runs (default 50)")
        p.add_argument("--warmup", type=int, default=5, metavar="N",
                       help="untimed runs first, to warm caches (default 5)")


def _doctor(args):
    from .doctor import print_report

    print_report(as_json=args.json)


def main(argv=None):
    from . import __version__

    parser = argparse.ArgumentParser(prog="sparselite", description="Inspect and run .slite models.")
    parser.add_argument("--version", action="version", version=f"sparselite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="graph inputs and outputs; per op: shapes, sparsity and group size, FLOPs; "
                                      "file size")
    p.add_argument("model", help="the .slite file")
    p.set_defaults(fn=_inspect)
    p = sub.add_parser("convert", help="convert a .tflite or .onnx model to .slite; prints the per-layer summary")
    p.add_argument("model", help="the .tflite or .onnx file")
    p.add_argument("-o", "--output", help="the .slite to write (default: next to the model)")
    p.add_argument("--weights", choices=["fp32", "fp16"], help="weight precision (default: the model's own)")
    p.add_argument("--progress", action="store_true", help="show the progress bar for small models too")
    p.add_argument("--dims", metavar="NAME=MAX,...", help="ONNX: maxima of the named dimensions that vary at run time")
    p.add_argument("--fixed-dims", metavar="NAME=SIZE,...", help="ONNX: sizes of named dimensions that stay fixed")
    p.set_defaults(fn=_convert)
    p = sub.add_parser("ops", help="the ops each converter maps (torch, onnx, tflite) and the runtime's op types")
    p.add_argument("frontend", nargs="?", choices=["torch", "onnx", "tflite", "runtime", "all"], default="all",
                   help="which list (default: all)")
    p.set_defaults(fn=_ops)
    p = sub.add_parser("run", help="run a model once on .npy inputs (seeded random if none) and print its outputs")
    p.add_argument("model", help="the .slite file")
    _add_run_options(p, timed=False)
    p.add_argument("--output", metavar="y.npy", help="write the first output to this .npy file")
    p.set_defaults(fn=_run)
    p = sub.add_parser("profile", help="per-op time, FLOPs, kernels and time by kernel family; table, --json, "
                                       "--trace (Perfetto), --html; two runs side by side")
    p.add_argument("model", nargs="?", help="the .slite to profile (or give --from)")
    p.add_argument("--from", dest="source", action="append", metavar="RUN.json",
                   help="a saved profile (sparselite profile --json or sparselite-bench --json); twice (or with a "
                        "model) compares the two runs layer by layer: desktop vs Pi, dense vs sparse")
    _add_run_options(p)
    p.add_argument("--json", help="write the profile JSON")
    p.add_argument("--trace", help="write Chrome-trace JSON (open in ui.perfetto.dev)")
    p.add_argument("--html", help="write a self-contained HTML report (or the comparison of two runs)")
    p.set_defaults(fn=_profile)
    p = sub.add_parser("bench", help="latency percentiles, time per op type and memory (sparselite-bench's summary)")
    p.add_argument("model", help="the .slite file")
    _add_run_options(p)
    p.set_defaults(fn=_bench)
    p = sub.add_parser("build-runtime", help="build libsparselite.a, sparselite.h and sparselite-bench for a device")
    p.add_argument("--target", choices=sorted(TARGETS), default="aarch64", help="the device's CPU (default aarch64)")
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
