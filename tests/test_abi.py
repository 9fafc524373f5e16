"""The host ABI tables (native/tools/gen_abi.py -> sdk/sparselite/_abi.py, wasm/sparselite_abi.mjs):
up to date with the header, and every struct layout in them checked against the compilers' own
sizeof/offsetof: clang for wasm32 (run in wasmtime) and gcc natively (against cffi's too)."""
import ast
import importlib.util
import os
import shutil
import subprocess

import numpy as np

from sparselite import _abi
from sparselite._native import ffi, lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KIND_BYTES = {"u32": 4, "i32": 4, "u64": 8, "f64": 8}


def _generator():
    spec = importlib.util.spec_from_file_location("gen_abi", os.path.join(ROOT, "native", "tools", "gen_abi.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_match_the_header():
    for path, text in _generator().outputs().items():
        with open(path, encoding="utf-8") as f:
            assert f.read() == text, f"{os.path.relpath(path, ROOT)} is stale: python native/tools/gen_abi.py"


def test_tables_match_the_native_constants():
    assert _abi.STATUS == {name: getattr(lib, name) for name in _abi.STATUS}
    assert {f"SL_DTYPE_{name.upper()}": value for value, (name, _) in _abi.DTYPES.items()} == {
        name: getattr(lib, name) for name in dir(lib) if name.startswith("SL_DTYPE_")}
    assert all(np.dtype(name).itemsize == size for name, size in _abi.DTYPES.values())
    assert _abi.ISA_BITS == {"sse2": lib.SL_ISA_SSE2, "avx2": lib.SL_ISA_AVX2_FMA, "neon": lib.SL_ISA_NEON,
                             "wasm_simd128": lib.SL_ISA_WASM_SIMD128, "avx512": lib.SL_ISA_AVX512,
                             "wasm_relaxed_simd": lib.SL_ISA_WASM_RELAXED_SIMD, "neon_fp16": lib.SL_ISA_NEON_FP16,
                             "neon_inorder": lib.SL_ISA_NEON_INORDER}
    for struct, layout in _abi.STRUCTS.items():
        assert list(layout["fields"]) == [name for name, _ in ffi.typeof(struct).fields], struct


def test_backends_do_not_import_model():
    """model.py imports the backends (lazily); they take the ABI from _abi, so no cycle."""
    for backend in ("_backend_native.py", "_backend_wasm.py"):
        with open(os.path.join(ROOT, "sdk", "sparselite", backend), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert "model" not in imported and "sparselite.model" not in imported, backend


def _layout_program():
    """C that prints, per struct, its size and per field: offset, size, and for numbers whether the
    type is floating and signed (so the storage kind is checked too, not only the offsets)."""
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "sparselite.h"', "int main(void) {"]
    for struct, layout in _abi.STRUCTS.items():
        lines.append(f"  static {struct} {struct}_v;")
        lines.append(f'  printf("{struct} %zu\\n", sizeof({struct}));')
        for field, spec in layout["fields"].items():
            member = f"{struct}_v.{field}" + ("[0]" if spec["count"] > 1 else "")
            kind = "0, 0" if spec["ctype"].endswith("*") else (
                f"(__typeof__({member}))0.5 != 0, (__typeof__({member}))-1 < 0")
            lines.append(f'  printf("{struct}.{field} %zu %zu %d %d\\n", offsetof({struct}, {field}), '
                         f"sizeof({struct}_v.{field}), {kind});")
    lines += ["  return 0;", "}"]
    return "\n".join(lines) + "\n"


def _parse(output):
    return {key: tuple(map(int, values)) for key, *values in (line.split() for line in output.splitlines())}


def _expected(offset_and_size):
    """{struct: (size,), struct.field: (offset, size, floating, signed)} from the generated table's kinds,
    with offsets and sizes from offset_and_size(struct, field, spec) (None: the struct itself)."""
    out = {}
    for struct, layout in _abi.STRUCTS.items():
        out[struct] = offset_and_size(struct, None, None)
        for field, spec in layout["fields"].items():
            kind = spec["kind"]
            numeric = not spec["ctype"].endswith("*")
            out[f"{struct}.{field}"] = (*offset_and_size(struct, field, spec), int(numeric and kind == "f64"),
                                        int(numeric and kind in ("i32", "f64")))
    return out


def test_wasm32_layout_matches_clang(tmp_path):
    from test_wasm import run_command

    assert shutil.which("clang-19") and os.path.exists("/usr/lib/wasm32-wasi/libc.a"), (
        "apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32")
    (tmp_path / "layout.c").write_text(_layout_program())
    subprocess.run(["clang-19", "--target=wasm32-wasi", "--sysroot=/usr", "-O1", "-std=c11", "-Wall", "-Werror",
                    f"-I{ROOT}/native/include", str(tmp_path / "layout.c"), "-o", str(tmp_path / "layout.wasm")],
                   check=True)
    code, out, err = run_command(tmp_path / "layout.wasm")
    assert code == 0, err

    def generated(struct, field, spec):
        layout = _abi.STRUCTS[struct]
        return (layout["size"],) if field is None else (spec["offset"], spec["count"] * KIND_BYTES[spec["kind"]])

    assert _parse(out) == _expected(generated)


def test_native_layout_matches_gcc_and_cffi(tmp_path):
    """The native backend decodes through cffi: its offsets must be gcc's for every field in the table."""
    (tmp_path / "layout.c").write_text(_layout_program())
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", f"-I{ROOT}/native/include", str(tmp_path / "layout.c"),
                    "-o", str(tmp_path / "layout")], check=True)
    out = subprocess.run([str(tmp_path / "layout")], check=True, capture_output=True, text=True).stdout

    def cffi_layout(struct, field, spec):
        if field is None:
            return (ffi.sizeof(struct),)
        return ffi.offsetof(struct, field), ffi.sizeof(dict(ffi.typeof(struct).fields)[field].type)

    assert _parse(out) == _expected(cffi_layout)
