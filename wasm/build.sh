#!/usr/bin/env bash
# Builds the C runtime for WebAssembly (wasm32-wasi, SIMD128) with Debian's clang-19 + wasi-libc:
#   wasm/dist/sparselite.wasm   the runtime as a reactor module exporting the C API
#   wasm/dist/sparselite.mjs    the ES-module loader for pages and Node, and the sparselite_abi.mjs it
#                               imports (both copied from wasm/)
#   wasm/dist/sparselite_wasm-<version>-py3-none-any.whl   the Pyodide wheel (wasm/make_wheel.py)
#   wasm/dist/kernel_test.wasm  every WASM microkernel against the C references (run it in wasmtime)
#   wasm/dist/sl_run_test.wasm  load/run + truncated/bit-flipped files, as natively
# Needs: apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32
set -euo pipefail
cd "$(dirname "$0")/.."
CC=${CC:-clang-19}
OUT=${OUT:-wasm/dist}
mkdir -p "$OUT"
# Sources and flags as every native build states them (native/build.mk).
setting() { sed -n "s/^$1 *= *//p" native/build.mk; }
read -ra WARN <<< "$(setting SL_WARN)"
read -ra FP <<< "$(setting SL_FP)"
read -ra OPT <<< "$(setting SL_OPT)"
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' sdk/sparselite/__init__.py)
FLAGS=(--target=wasm32-wasi --sysroot=/usr -msimd128 "${WARN[@]}" "${FP[@]}" "${OPT[@]}" "-DSL_VERSION=\"$VERSION\"" -Inative/include)
read -ra PATTERNS <<< "$(setting SL_SOURCES)"
SOURCES=()
for pattern in "${PATTERNS[@]}"; do SOURCES+=(native/$pattern); done
# Exports: every function the C API header declares (the one FFI source), plus malloc/free for hosts.
EXPORTS=(-Wl,--export=malloc -Wl,--export=free)
for fn in $(sed -n '/SL_CDEF_BEGIN/,/SL_CDEF_END/p' native/include/sparselite.h | grep -oE '\bsl_[a-z_]+\(' | tr -d '('); do
  EXPORTS+=("-Wl,--export=$fn")
done
"$CC" "${FLAGS[@]}" -mexec-model=reactor "${EXPORTS[@]}" "${SOURCES[@]}" -o "$OUT/sparselite.wasm"
"$CC" "${FLAGS[@]}" "${SOURCES[@]}" native/tests/kernel_test.c -o "$OUT/kernel_test.wasm"
"$CC" "${FLAGS[@]}" "${SOURCES[@]}" native/tests/sl_run_test.c -o "$OUT/sl_run_test.wasm"
cp wasm/sparselite.mjs wasm/sparselite_abi.mjs "$OUT/"
python3 wasm/make_wheel.py "$OUT" >/dev/null
ls -l "$OUT"
