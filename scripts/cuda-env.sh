#!/usr/bin/env bash
# Prints the exports that point scenewatch at the GPU build of ONNX Runtime and its CUDA 13 / cuDNN 9 libraries
# (installed by `WITH_CUDA=1 scripts/deps.sh`). Use: eval "$(bash scripts/cuda-env.sh)"
set -euo pipefail
CACHE="${SCENEWATCH_CACHE:-/var/cache/scenewatch}"
SP=$(ls -d "$CACHE"/onnxruntime/gpu/venv/lib/python3*/site-packages | head -1)
LIB=$(ls "$SP"/onnxruntime/capi/libonnxruntime.so.* | head -1)
LD=$(find "$SP/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | tr '\n' ':')
echo "export ORT_DYLIB_PATH='$LIB'"
echo "export LD_LIBRARY_PATH='$SP/onnxruntime/capi:${LD}${LD_LIBRARY_PATH:-}'"
