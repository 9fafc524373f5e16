"""Runs corpus files in worker processes under an address-space limit and a per-file timeout.

Each worker takes a batch of files and reports one line per file as it finishes; a worker that
dies (a signal) or stops reporting (a timeout) is charged to the file it was on, and a new worker
resumes with the next file. A file passes when it loads and runs (resized too, when it has dynamic
axes), or fails with sparselite's own exceptions and a message: InvalidModelError, UnsupportedError,
InputError, ConversionError, or the memory budget's MemoryError (naming max_memory_bytes). Anything
else fails it: a signal, a timeout, any other exception.

    python runner.py WORKER LIMIT_BYTES MANIFEST FILE...      (the worker; the test calls run_corpus)
"""
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
MARK = "@@hostile "
# Inputs and outputs past this go straight to the arena (zeroed at load): building them as numpy
# arrays would need as much memory again, outside sparselite.
BIG_IO = 64 << 20
# The value filling the decoy files an importer must never read (outside the model's directory).
DECOY = -4242.4242


# --- the worker ---------------------------------------------------------------------------------

def _inputs(model, shapes):
    """Deterministic values; inputs of one shape and dtype share an array (a million inputs must
    cost the host, not this harness)."""
    import numpy as np

    made = {}
    for spec, shape in zip(model.inputs, shapes):
        key = (spec.dtype, tuple(shape))
        if key not in made:   # float inputs in [-1, 1); valid ids and mask values for integers
            made[key] = (np.sin(np.arange(np.prod(shape, dtype=np.int64)) * 0.1).astype(np.float32).reshape(shape)
                         if spec.dtype == "float32" else np.zeros(shape, spec.dtype))
    return [made[(spec.dtype, tuple(shape))] for spec, shape in zip(model.inputs, shapes)]


def _run_model(source):
    import sparselite
    from math import prod

    model = sparselite.load(source)
    size = lambda specs: sum(prod(s.shape) * 8 for s in specs)   # at most 8 bytes per element
    if size(model.inputs) + size(model.outputs) > BIG_IO:
        model._backend.run()
        return "ran on the zeroed arena"
    model.run(_inputs(model, [s.shape for s in model.inputs]))
    if not any(s.dynamic_axes for s in model.inputs):
        return "ran"
    for resized in (lambda d: (d + 1) // 2, lambda d: 1):   # every dynamic axis at half, then at 1
        model.run(_inputs(model, [tuple(resized(d) if a in s.dynamic_axes else d for a, d in enumerate(s.shape))
                                  for s in model.inputs]))
    return "ran, resized"


def _convert(path, kind, extra):
    import numpy as np
    from sparselite.converters import from_onnx, from_tflite

    source = path
    if extra.get("as_bytes"):
        with open(path, "rb") as f:
            source = f.read()
    converted = (from_tflite if kind == "tflite" else from_onnx)(source)
    data = converted.to_bytes()
    if data.count(np.float32(DECOY).tobytes()) >= 16:
        raise AssertionError("the converted model holds the values of a file outside the model's directory")
    return data


def _sparselite_frame(exc):
    """Whether the innermost frame that raised exc is sparselite's own code (not numpy's or onnx's
    running out of memory on sparselite's behalf)."""
    import sparselite
    import sparselite.converters

    roots = [os.path.dirname(os.path.abspath(p.__file__)) + os.sep for p in (sparselite, sparselite.converters)]
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(tuple(roots))


def _classify(exc):
    import sparselite

    own = (sparselite.InvalidModelError, sparselite.UnsupportedError, sparselite.InputError,
           sparselite.ConversionError)
    if isinstance(exc, own) and str(exc):
        return "error"
    # A file asking for more than the memory budget must be refused before anything that large is
    # allocated, with a MemoryError naming the option that raises the budget; a bare allocation
    # failure, or numpy's MemoryError (a subclass), means a file's claim was allocated as is.
    if type(exc) is MemoryError and "max_memory_bytes" in str(exc) and _sparselite_frame(exc):
        return "error"
    return "fail"


def worker(limit, manifest_path, files):
    import faulthandler
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    faulthandler.enable()   # a crash prints the Python stack on stderr
    report = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)   # anything else printed goes to stderr, not into the protocol
    with open(manifest_path) as f:
        manifest = json.load(f)
    import numpy  # noqa: F401  (imported before the first file, so no file pays for it)
    import sparselite  # noqa: F401
    kinds = {os.path.splitext(p)[1][1:] for p in files}
    if "onnx" in kinds:
        import onnx  # noqa: F401
    if "tflite" in kinds:
        import tflite  # noqa: F401
    for path in files:
        name = os.path.basename(path)
        kind = os.path.splitext(name)[1][1:]
        extra = manifest.get(name, {})
        report.write(MARK + json.dumps(dict(start=name)) + "\n")
        t0 = time.monotonic()
        try:
            source = _convert(path, kind, extra) if kind in ("tflite", "onnx") else path
            outcome, detail = "ok", _run_model(source)
        except Exception as exc:   # classified, not swallowed: the parent fails the test on "fail"
            outcome = _classify(exc)
            detail = f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:300]}"
            if outcome == "fail":
                detail += " | " + "".join(traceback.format_tb(exc.__traceback__)[-2:]).replace("\n", " ")[-600:]
        report.write(MARK + json.dumps(dict(done=name, outcome=outcome, detail=detail,
                                            seconds=round(time.monotonic() - t0, 3))) + "\n")


# --- the parent ---------------------------------------------------------------------------------

def _signal_name(code):
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"exit {code}"


def _batch(files, manifest_path, limit, timeout, cwd):
    """Runs files in workers, restarting after a crash or a timeout; one result per file."""
    results, rest = {}, list(files)
    while rest:
        before = len(results)
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen([sys.executable, os.path.join(HERE, "runner.py"), "WORKER", str(limit),
                                     manifest_path, *rest], stdout=subprocess.PIPE, stderr=err, cwd=cwd)
            buf, current, deadline = b"", None, time.monotonic() + 60   # imports before the first file
            while True:
                left = deadline - time.monotonic()
                ready = select.select([proc.stdout], [], [], max(left, 0))[0] if left > 0 else []
                if not ready:
                    proc.kill()   # ours: started above
                    proc.wait()
                    break
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    proc.wait()
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if not line.startswith(MARK.encode()):
                        continue
                    msg = json.loads(line[len(MARK):])
                    if "start" in msg:
                        current, deadline = msg["start"], time.monotonic() + timeout
                    else:
                        results[msg["done"]] = msg
                        current, deadline = None, time.monotonic() + timeout
            err.seek(0)
            tail = err.read()[-1500:].decode("utf-8", "replace")
        code = proc.returncode
        if current is not None:
            what = f"timeout after {timeout:g} s" if code == -signal.SIGKILL else f"died: {_signal_name(code)}"
            results[current] = dict(done=current, outcome="fail", detail=f"{what}; stderr: {tail}")
        elif len(results) == before:
            raise RuntimeError(f"worker failed outside any file ({_signal_name(code)}): {tail}")
        rest = [f for f in rest if os.path.basename(f) not in results]
    return results


def run_corpus(files, manifest_path, limit=4 << 30, timeout=5.0, workers=2, batch=150, cwd=None):
    """{file name: {outcome: ok|error|fail, detail, seconds}} for every file, `workers` batches at a time."""
    files = sorted(files)
    batches = [files[i::-(-len(files) // batch)] for i in range(-(-len(files) // batch))]
    results = {}
    with ThreadPoolExecutor(workers) as pool:
        for part in pool.map(lambda b: _batch(b, manifest_path, limit, timeout, cwd), batches):
            results.update(part)
    return results


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "WORKER":
    sys.path.insert(0, HERE)
    worker(int(sys.argv[2]), sys.argv[3], sys.argv[4:])
