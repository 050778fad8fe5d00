#!/usr/bin/env bash
# The GPU check, run as one script whenever a CUDA machine is available: sets up the GPU build of ONNX Runtime
# (WITH_CUDA=1), proves every model really runs on the CUDA execution provider (the daemon's <prefix>/info and
# `scenewatch detect` logs report the provider each session got; a silent CPU fallback fails this script), then
# records cameras sustained at 2 sampled fps and p95 latency with `scenewatch bench --json` (vtest and the
# camera-shaped 1080p H.264 input and the same camera with a detect sub-stream and a record input, with the video
# decoder each used: NVDEC where present).
# Then the same end-to-end phases with detector batching off and on (bench-gpu-batch1.json, bench-gpu-batch0.json).
# Output: bench-gpu.json and bench-gpu.log in $OUT (or the current directory).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-.}"
WITH_CUDA=1 bash scripts/deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --locked
eval "$(bash scripts/cuda-env.sh)"
BIN="${CARGO_TARGET_DIR:-target}/release/scenewatch"
# the int8 detector is for CPUs (VNNI); on the GPU the fp32 model is the one to measure
export SCENEWATCH__MODELS__DETECTOR=nanodet_g_416.onnx   # the default; explicit in case the default changes
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/bench-gpu.log"
# every model on CUDA: a posture rule and prompts make the daemon load all five
RUST_LOG=info "$BIN" detect -c pipelines/demo.toml --pose /var/cache/scenewatch/media/basketball1.png 2>&1 | tee -a "$OUT/bench-gpu.log" | grep -i "model loaded" || true
if grep -q "CUDA not available" "$OUT/bench-gpu.log"; then
  echo "FAIL: a model fell back to the CPU (see bench-gpu.log)" >&2
  exit 1
fi
bash bench/setup.sh
RUST_LOG=error "$BIN" bench --json --seconds 15 --repeat 1 --max-cameras 64 --inputs clip,camera1080,camera1080sub | tee "$OUT/bench-gpu.json"
# NVDEC: scenewatch ranks nvh264dec first when GStreamer offers it (gstreamer1.0-plugins-bad's nvcodec, NVIDIA driver);
# the JSON's inputs[].decoder says which decoder ran (avdec_h264 = the CPU fallback)
grep -o '"decoder":"[^"]*"' "$OUT/bench-gpu.json" | tee -a "$OUT/bench-gpu.log" || true
# detector batching (inference.detector_batch; auto = 16 on CUDA): the detector alone by batch size is in the JSON
# above (detector_batch_ms); here the end-to-end phases with batching off and on, side by side
for b in 1 0; do
  echo "detector_batch = $b (0 = auto)" | tee -a "$OUT/bench-gpu.log"
  SCENEWATCH__INFERENCE__DETECTOR_BATCH=$b RUST_LOG=error "$BIN" bench --json --seconds 15 --repeat 1 --skip bound,python,decode \
    --max-cameras 64 --inputs camera1080sub > "$OUT/bench-gpu-batch$b.json"
  grep -o '"e2e_fps":[^,]*\|"e2e_box_fps":[^,]*\|"cameras_realtime":[^,]*' "$OUT/bench-gpu-batch$b.json" | tee -a "$OUT/bench-gpu.log" || true
done
grep -o '"detector_batch_ms":\[\(\[[^]]*\],\{0,1\}\)*\]' "$OUT/bench-gpu.json" | tee -a "$OUT/bench-gpu.log" || true
