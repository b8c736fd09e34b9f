#!/bin/sh
# Installs the Debian packages a make target needs, when they are missing.
# Usage: scripts/deps.sh build|train|test|deb|arm64|ci
set -eu
build="cmake make gcc pkg-config zlib1g-dev libpng-dev"
case "${1:-build}" in
  build) want="$build" ;;
  train) want="$build dataset-fashion-mnist" ;;
  # tests/system_mpi.c runs training across processes with Open MPI
  test)  want="$build dataset-fashion-mnist openmpi-bin libopenmpi-dev" ;;
  # scripts/deb.sh: the Debian packages' build dependencies and tools
  # (dpkg-buildpackage also checks for build-essential).
  deb)   want="$build build-essential dpkg-dev debhelper lintian libopenmpi-dev" ;;
  # scripts/arm64.sh: the cross compiler, qemu, and the libraries for arm64
  # from Debian's multiarch (added below when missing).
  arm64) want="$build gcc-aarch64-linux-gnu libc6-dev-arm64-cross libgomp1-arm64-cross qemu-user zlib1g-dev:arm64 libpng-dev:arm64" ;;
  # CI also brings the optional checkers (PyTorch reference, ONNX runtime, browser);
  # OpenBLAS so that PyTorch (bench/compare) is not on the slow reference BLAS.
  ci)    want="$build dataset-fashion-mnist openmpi-bin libopenmpi-dev build-essential dpkg-dev debhelper lintian clang libclang-rt-14-dev python3 python3-numpy python3-torch libopenblas0-pthread python3-onnx python3-opencv chromium" ;;
  *) echo "usage: $0 build|train|test|deb|arm64|ci" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "Installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  case "$missing" in
    *:arm64*) dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64 ;;
  esac
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
else
  echo "Missing Debian packages. Install them with:" >&2
  case "$missing" in
    *:arm64*) echo "  sudo dpkg --add-architecture arm64 && sudo apt-get update" >&2 ;;
  esac
  echo "  sudo apt-get install -y$missing" >&2
  exit 1
fi
