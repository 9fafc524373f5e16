#!/usr/bin/env bash
# Builds the C runtime for WebAssembly (wasm32-wasi) with Debian's clang-19 + wasi-libc, three times:
# SIMD128 (every engine with SIMD), relaxed SIMD (FMA; Chromium >= 114, Node >= 22), the latter
# chosen by the loaders where a relaxed op validates, and relaxed SIMD with threads (shared memory):
#   wasm/dist/sparselite.wasm   the runtime as a reactor module exporting the C API (SIMD128)
#   wasm/dist/sparselite-relaxed.wasm   the same with relaxed SIMD kernels (and the SIMD128 ones)
#   wasm/dist/sparselite-threads.wasm   the relaxed build with the wasi-threads pool (imports a shared
#                               memory and wasi.thread-spawn; sparselite.mjs answers it with workers)
#   wasm/dist/sparselite.mjs    the ES-module loader for pages and Node, and the sparselite_abi.mjs it
#                               imports (both copied from wasm/)
#   wasm/dist/sparselite_wasm-<version>-py3-none-any.whl   the Pyodide wheel (wasm/make_wheel.py)
#   wasm/dist/kernel_test.wasm, kernel_test-relaxed.wasm  every WASM microkernel of each build
#                               against the C references (run them in wasmtime)
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
# variant SUFFIX [FLAGS...]: the runtime and the kernel test of one build.
variant() {
  local suffix=$1
  shift
  "$CC" "${FLAGS[@]}" "$@" -mexec-model=reactor "${EXPORTS[@]}" "${SOURCES[@]}" -o "$OUT/sparselite$suffix.wasm"
  "$CC" "${FLAGS[@]}" "$@" "${SOURCES[@]}" native/tests/kernel_test.c -o "$OUT/kernel_test$suffix.wasm"
}
variant "" &
simd128=$!
variant -relaxed -mrelaxed-simd &
relaxed=$!
# Debian's wasi-libc has no threads build, so the single-threaded one links into a shared memory
# (--no-check-features: its objects lack the atomics feature); only the calling thread enters libc
# (native/runtime/threadpool.c says why). The memory's sizes are the ones sparselite.mjs creates.
"$CC" "${FLAGS[@]}" -mrelaxed-simd -matomics -mbulk-memory -mexec-model=reactor "${EXPORTS[@]}" "${SOURCES[@]}" \
  native/runtime/wasm_thread_start.s -o "$OUT/sparselite-threads.wasm" \
  -Wl,--import-memory,--shared-memory,--initial-memory=16777216,--max-memory=4294967296,--no-check-features
"$CC" "${FLAGS[@]}" "${SOURCES[@]}" native/tests/sl_run_test.c -o "$OUT/sl_run_test.wasm"
wait "$simd128"
wait "$relaxed"
cp wasm/sparselite.mjs wasm/sparselite_abi.mjs "$OUT/"
python3 wasm/make_wheel.py "$OUT" >/dev/null
ls -l "$OUT"
