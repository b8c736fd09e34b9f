#!/bin/sh
# Installs onnxruntime (npm's onnxruntime-node, whose CPU library ships in
# the package) into .ort/ of the source tree, where system_onnx_ort and
# bench/compare look for it; Node.js and npm from Debian when missing.
# --ignore-scripts: the package's install script would download CUDA parts.
# Usage: scripts/ort.sh
set -eu
cd "$(dirname "$0")/.."
version=1.30.0
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm
  else
    echo "Node.js and npm are missing: sudo apt-get install -y nodejs npm" >&2
    exit 1
  fi
fi
if [ -f .ort/node_modules/onnxruntime-node/package.json ] &&
   grep -q "\"version\": \"$version\"" .ort/node_modules/onnxruntime-node/package.json; then
  exit 0
fi
mkdir -p .ort
npm install --prefix .ort --ignore-scripts --no-audit --no-fund --loglevel=error \
  "onnxruntime-node@$version"
