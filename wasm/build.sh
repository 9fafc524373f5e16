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
# Each build's objects are compiled once, on every core and through ccache where it is installed
# (SL_LAUNCHER= turns it off, as in native/build.mk), then linked into its runtime and test modules.
LAUNCHER=${SL_LAUNCHER-$(command -v ccache || true)}
OBJ=$(mktemp -d)
trap 'rm -rf "$OBJ"' EXIT
# objects NAME [FLAGS...]: every source compiled to $OBJ/NAME/.
objects() {
  local dir=$OBJ/$1 pids=() src obj
  shift
  for src in "${SOURCES[@]}"; do
    obj=$dir/${src%.c}.o
    mkdir -p "$(dirname "$obj")"
    $LAUNCHER "$CC" "${FLAGS[@]}" "$@" -c "$src" -o "$obj" &
    pids+=($!)
    if (( ${#pids[@]} >= $(nproc) )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
}
# link NAME OUTPUT [FLAGS or extra sources...]: NAME's objects into OUTPUT.
link() {
  local objs out=$2
  mapfile -t objs < <(find "$OBJ/$1" -name '*.o' | sort)
  shift 2
  "$CC" "${FLAGS[@]}" "$@" "${objs[@]}" -o "$OUT/$out"
}
objects simd128
link simd128 sparselite.wasm -mexec-model=reactor "${EXPORTS[@]}"
link simd128 kernel_test.wasm native/tests/kernel_test.c
link simd128 sl_run_test.wasm native/tests/sl_run_test.c
objects relaxed -mrelaxed-simd
link relaxed sparselite-relaxed.wasm -mrelaxed-simd -mexec-model=reactor "${EXPORTS[@]}"
link relaxed kernel_test-relaxed.wasm -mrelaxed-simd native/tests/kernel_test.c
# Debian's wasi-libc has no threads build, so the single-threaded one links into a shared memory
# (--no-check-features: its objects lack the atomics feature); only the calling thread enters libc
# (native/runtime/threadpool.c says why). The memory's sizes are the ones sparselite.mjs creates.
THREADS=(-mrelaxed-simd -matomics -mbulk-memory)
objects threads "${THREADS[@]}"
link threads sparselite-threads.wasm "${THREADS[@]}" -mexec-model=reactor "${EXPORTS[@]}" \
  native/runtime/wasm_thread_start.s \
  -Wl,--import-memory,--shared-memory,--initial-memory=16777216,--max-memory=4294967296,--no-check-features
cp wasm/sparselite.mjs wasm/sparselite_abi.mjs "$OUT/"
python3 wasm/make_wheel.py "$OUT" >/dev/null
ls -l "$OUT"
