"""Writes the Pyodide wheel: the host API (no converters, no cffi) plus both sparselite.wasm builds.

    python wasm/make_wheel.py <dist dir with sparselite.wasm>

The distribution is `sparselite-wasm` (import name `sparselite`), a pure-Python py3-none-any
wheel that micropip installs. Its own name keeps a desktop `pip install sparselite` from ever
resolving to it; it only works where sys.platform == "emscripten"."""
import base64
import hashlib
import os
import re
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SDK = os.path.join(ROOT, "sdk", "sparselite")
MODULES = ["__init__.py", "errors.py", "model.py", "profiler.py", "_abi.py", "_backend_wasm.py"]


def version():
    text = open(os.path.join(SDK, "__init__.py"), encoding="utf-8").read()
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def main(dist):
    ver = version()
    info = f"sparselite_wasm-{ver}.dist-info"
    files = {f"sparselite/{m}": open(os.path.join(SDK, m), "rb").read() for m in MODULES}
    for build in ("sparselite.wasm", "sparselite-relaxed.wasm"):  # the backend picks one at import
        files[f"sparselite/{build}"] = open(os.path.join(dist, build), "rb").read()
    files[f"{info}/METADATA"] = (f"Metadata-Version: 2.1\nName: sparselite-wasm\nVersion: {ver}\n"
                                 "Summary: sparselite's host API on WebAssembly SIMD128 and relaxed SIMD, for Pyodide\n"
                                 "Requires-Python: >=3.10\n").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: sparselite make_wheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/top_level.txt"] = b"sparselite\n"
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = os.path.join(dist, f"sparselite_wasm-{ver}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for name, data in files.items():
            whl.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    print(path)


if __name__ == "__main__":
    main(sys.argv[1])
