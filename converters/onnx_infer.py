"""ONNX shape inference in a helper process.

onnx's C++ shape inference is not hardened against malformed models: a Slice over a dimension it
computed as 0 or read as -1 fails an assertion (std::clamp) and aborts the whole process. The
converter therefore runs inference in a helper subprocess (started once, on first use, fed one
model at a time): if it dies or takes longer than TIMEOUT_S on a model, that model fails with a
ConversionError and the next call starts a new helper. The helper gets a copy of the model without
the data of large tensors (shape inference reads only the values of small shape-like inputs), under
an address-space cap where the platform has one. Where no helper can run (no subprocesses, no
select() on pipes), inference runs in process.
"""
import atexit
import os
import select
import struct
import subprocess
import sys
import threading

from sparselite.errors import ConversionError

TIMEOUT_S = 120.0
HELPER_MEMORY_BYTES = 4 << 30
_STRIP_BYTES = 4096          # tensors with more data than this go to the helper without it

_COMMAND = [sys.executable, "-c", "from sparselite.converters.onnx_infer import _serve; _serve()"]
_lock = threading.Lock()
_helper = None


def infer_shapes(model):
    """onnx.shape_inference.infer_shapes of a copy of `model` whose large tensors carry no data:
    use its value_info, inputs and outputs for shapes, not its tensors."""
    import onnx

    stripped = strip(model)
    if os.name == "nt" or sys.platform == "emscripten":
        return onnx.shape_inference.infer_shapes(stripped)
    data = stripped.SerializeToString()
    with _lock:
        for attempt in range(2):
            helper = _start()
            try:
                _write(helper, data)
            except OSError:          # the helper had died before this model: start another
                _stop()
                continue
            status, payload = _read(helper)
            if status == "ok":
                out = onnx.ModelProto()
                out.ParseFromString(payload)
                return out
            if status == "error":
                raise ConversionError(f"ONNX shape inference failed: {payload.decode(errors='replace')}")
            _stop()
            raise ConversionError(f"ONNX shape inference {payload.decode()} on this model: it is malformed")
    raise ConversionError("ONNX shape inference: the helper process could not be started")


def strip(model):
    """A copy of the model without the data of its large tensors (all shape inference reads)."""
    import onnx

    from .onnx_frontend import _all_tensors

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for t in _all_tensors(copy):
        if t.ByteSize() > _STRIP_BYTES:
            for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data",
                          "string_data"):
                t.ClearField(field)
    return copy


def _start():
    global _helper
    if _helper is not None and _helper.poll() is None:
        return _helper
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    _helper = subprocess.Popen(_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               env=env, bufsize=0)
    return _helper


def _stop():
    global _helper
    if _helper is not None:
        try:
            _helper.kill()
            _helper.wait()
            _helper.stdin.close()
            _helper.stdout.close()
        except OSError:
            pass
        _helper = None


atexit.register(_stop)


def _write(helper, data):
    helper.stdin.write(struct.pack("<Q", len(data)) + data)
    helper.stdin.flush()


def _read(helper):
    """('ok' | 'error', payload) from the helper, or ('died', why) when it exits or overruns."""
    fd = helper.stdout.fileno()
    try:
        head = _read_exact(fd, 9)
        payload = head and _read_exact(fd, struct.unpack("<Q", head[1:])[0])
    except TimeoutError:
        return "died", f"did not finish in {TIMEOUT_S:g} s".encode()
    if payload is None:
        try:
            code = helper.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return "died", b"closed its output"
        return "died", (f"crashed (signal {-code})" if code < 0 else f"exited with status {code}").encode()
    return ("ok" if head[0] == 0 else "error"), payload


def _read_exact(fd, n):
    """n bytes, None at end of file; TimeoutError past TIMEOUT_S."""
    import time

    deadline, chunks = time.monotonic() + TIMEOUT_S, []
    while n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _serve():
    """The helper: reads length-prefixed models on stdin, answers with status byte, length, bytes."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (HELPER_MEMORY_BYTES, HELPER_MEMORY_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    import onnx

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(8)
        if len(head) < 8:
            return
        data = stdin.read(struct.unpack("<Q", head)[0])
        try:
            model = onnx.ModelProto()
            model.ParseFromString(data)
            status, out = 0, onnx.shape_inference.infer_shapes(model).SerializeToString()
        except Exception as e:   # noqa: BLE001 - reported to the converter as a ConversionError
            status, out = 1, f"{type(e).__name__}: {e}".encode()
        stdout.write(bytes([status]) + struct.pack("<Q", len(out)) + out)
        stdout.flush()
