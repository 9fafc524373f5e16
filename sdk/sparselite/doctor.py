"""`sparselite doctor`: what this machine and this install give sparselite, the first thing to run on a new board."""
import importlib
import inspect
import json
import os
import platform
import sys

from . import __version__

# Optional extras: the import name, and the pip package and extra that provides it.
EXTRAS = [
    ("torch", "torch", "torch"),
    ("onnx", "onnx", "onnx"),
    ("onnxruntime", "onnxruntime", "bench"),
    ("tflite", "tflite", "tflite"),
    ("ai_edge_litert", "ai-edge-litert", "bench"),
    ("transformers", "transformers", "transformers"),
]


def _board():
    """The board's name where the firmware states it (Raspberry Pi and other device-tree boards)."""
    try:
        with open("/proc/device-tree/model", "rb") as f:
            return f.read().rstrip(b"\0").decode(errors="replace")
    except OSError:
        return None


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count()


def _extra(module):
    """The module's version if it imports, else why not (a broken install shows here, not at convert time)."""
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        return dict(ok=False, error="not installed" if exc.name == module else f"import fails: {exc}")
    except Exception as exc:  # noqa: BLE001  (a broken install raises anything)
        return dict(ok=False, error=f"import fails: {type(exc).__name__}: {exc}")
    return dict(ok=True, version=getattr(imported, "__version__", "?"))


def report():
    """Everything doctor prints, as a dict (`sparselite doctor --json`)."""
    from . import cpu_isa, load
    from .profiler import cpu_name

    info = dict(version=__version__, python=platform.python_version(), platform=sys.platform,
                arch=platform.machine(), cpu=cpu_name(), board=_board(), isa=cpu_isa(), cores=_cores(),
                default_threads=inspect.signature(load).parameters["num_threads"].default)
    if sys.platform != "emscripten":
        from ._native import ffi, lib

        info["runtime_version"] = ffi.string(lib.sl_version_string()).decode()
        info["build"] = json.loads(ffi.string(lib.sl_ffi_build_info()).decode())
    info["extras"] = {module: dict(package=package, extra=extra, **_extra(module)) for module, package, extra in EXTRAS}
    return info


def format_report(info):
    lines = [f"sparselite {info['version']} (Python {info['python']}, {info['platform']} {info['arch']})",
             f"cpu: {info['cpu']}" + (f" on {info['board']}" if info["board"] else ""),
             f"isa: {' '.join(info['isa']) or 'scalar'} (kernels chosen at run time)",
             f"threads: {info['default_threads']} by default (load(..., num_threads=N)), {info['cores']} cores here"]
    if "build" in info:
        build = info["build"]
        lines.append(f"runtime {info['runtime_version']} built by {build['cc']} ({build['compiler']}): {build['flags']}")
        if info["runtime_version"] != info["version"]:
            lines.append(f"warning: the native runtime is {info['runtime_version']}, the Python package {info['version']}: "
                         "reinstall sparselite")
    lines.append("optional extras (converters, comparisons):")
    for module, extra in info["extras"].items():
        state = extra["version"] if extra["ok"] else f"{extra['error']}; pip install 'sparselite[{extra['extra']}]'"
        lines.append(f"  {module:<15} {state}")
    return "\n".join(lines)


def print_report(as_json=False):
    info = report()
    print(json.dumps(info, indent=1) if as_json else format_report(info))
