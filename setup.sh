#!/usr/bin/env bash
# Command 1 of the README: set up everything on Debian 12 (as root) and run the demo — the real CCTV clip
# vtest.avi through the real models, alerts to MQTT, and the MQTT messages printed as they arrive.
# Safe to re-run. Env: WITH_CUDA=1 (GPU ONNX Runtime), SCENEWATCH__MQTT__HOST/PORT (use your broker instead of a
# local mosquitto), SCENEWATCH_CACHE (download cache, default /var/cache/scenewatch).
set -euo pipefail
cd "$(dirname "$0")"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
t0=$(date +%s)
bash scripts/deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
echo "[setup] building scenewatch (release)" >&2
cargo build --release --locked
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET_DIR/release/scenewatch"
CACHE="${SCENEWATCH_CACHE:-/var/cache/scenewatch}"
if [ "${WITH_CUDA:-0}" = "1" ]; then
  eval "$(bash scripts/cuda-env.sh)"
fi
echo "[setup] ready in $(( $(date +%s) - t0 )) s" >&2

HOST="${SCENEWATCH__MQTT__HOST:-127.0.0.1}"
PORT="${SCENEWATCH__MQTT__PORT:-1883}"
BROKER_PID=""
cleanup() {
  [ -n "${SUB_PID:-}" ] && kill "$SUB_PID" 2>/dev/null || true
  [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null || true
}
trap cleanup EXIT
if ! (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
  if [ "$HOST" = "127.0.0.1" ] || [ "$HOST" = "localhost" ]; then
    echo "[setup] no broker on $HOST:$PORT: starting a local mosquitto" >&2
    mosquitto -p "$PORT" >/dev/null 2>&1 &
    BROKER_PID=$!
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null && break; sleep 0.1; done
  else
    echo "[setup] broker $HOST:$PORT is not reachable; scenewatch will keep retrying" >&2
  fi
fi
echo "[setup] MQTT messages on $HOST:$PORT (topic scenewatch/#) follow; alerts are on scenewatch/walkway/alerts" >&2
echo "[setup] (JPEG snapshots on scenewatch/+/+/snapshot are not printed; the files are in /var/lib/scenewatch/media)" >&2
mosquitto_sub -h "$HOST" -p "$PORT" -v -t 'scenewatch/#' -T 'scenewatch/+/+/snapshot' &
SUB_PID=$!
sleep 0.5
SCENEWATCH__MQTT__HOST="$HOST" SCENEWATCH__MQTT__PORT="$PORT" "$BIN" run --config pipelines/demo.toml
sleep 0.5
