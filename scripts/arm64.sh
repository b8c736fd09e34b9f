#!/bin/sh
# Cross-builds fmnist for 64-bit ARM (aarch64: Apple silicon under Linux,
# Graviton, Raspberry Pi 4/5) on an x86-64 Debian machine and runs, under
# qemu-aarch64 user emulation, the tests that say the ARM build computes what
# the x86 one does: the portable kernel table against the reference kernels
# on varied shapes, the layers' gradients against finite differences, the
# network against the PyTorch fixtures, the optimizers, short trainings, and
# int8 models (quantized, saved, loaded, run).
# (Emulation is some 20x slower than the CPU, so it is not the whole suite:
# the parsers, the CLI and the run folder are plain C and tested natively;
# test_csv, whose pipe case forks, hangs under qemu-user.) It is built
# without OpenMP: Debian 12's qemu-aarch64 (7.2) hangs in the first
# pthread_create on the machines this was written on, so the tests run one
# thread; the threaded paths are the same C and run natively in
# test_kernels's "portable" rows.
# Usage: scripts/arm64.sh [BUILD_DIR]   (default build-arm64)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build-arm64}
tests="test_kernels test_gradcheck test_model test_torch_reference test_optim test_adam test_tta test_train test_train_recipe test_quant test_bf16"
scripts/deps.sh arm64
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
  -DFM_OPENMP=OFF -DFM_MPI=OFF
# Only what runs (Debian 12's aarch64 gcc stops with an internal error on
# tests/system_onnx.c).
cmake --build "$build" -j "$(nproc)" --target fmnist $tests
readelf -h "$build/fmnist" | grep -q AArch64 || { echo "arm64.sh: $build/fmnist is not an aarch64 binary" >&2; exit 1; }
regex="^($(echo "$tests" | tr ' ' '|'))\$"
cd "$build" && ctest --output-on-failure -R "$regex"
