#!/bin/sh
# Installs the Debian packages a make target needs, when they are missing.
# Usage: scripts/deps.sh build|train|test|deb|ci
set -eu
build="cmake make gcc pkg-config zlib1g-dev libpng-dev"
case "${1:-build}" in
  build) want="$build" ;;
  train) want="$build dataset-fashion-mnist" ;;
  test)  want="$build dataset-fashion-mnist" ;;
  # scripts/deb.sh: the Debian packages' build dependencies and tools
  # (dpkg-buildpackage also checks for build-essential).
  deb)   want="$build build-essential dpkg-dev debhelper lintian" ;;
  # CI also brings the optional checkers (PyTorch reference, ONNX runtime, browser).
  ci)    want="$build dataset-fashion-mnist build-essential dpkg-dev debhelper lintian clang libclang-rt-14-dev python3 python3-numpy python3-torch python3-onnx python3-opencv chromium" ;;
  *) echo "usage: $0 build|train|test|deb|ci" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "Installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
else
  echo "Missing Debian packages. Install them with:" >&2
  echo "  sudo apt-get install -y$missing" >&2
  exit 1
fi
