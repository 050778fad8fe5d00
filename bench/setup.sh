#!/usr/bin/env bash
# The Python reference's environment for `scenewatch bench`: a venv outside the repo with the packages a user
# would pip install for the same pipeline. Safe to re-run.
set -euo pipefail
VENV="${SCENEWATCH_BENCH_VENV:-/var/cache/scenewatch/bench-venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q onnxruntime opencv-python-headless numpy "paho-mqtt>=2"
"$VENV/bin/python" -c "import onnxruntime, cv2, numpy, paho.mqtt; print('bench venv ready:', onnxruntime.__version__, cv2.__version__)"
