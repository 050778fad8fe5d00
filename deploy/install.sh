#!/usr/bin/env bash
# Installs scenewatch as a systemd service on Debian 12 (run as root; after scripts/deps.sh, which setup.sh runs).
# Builds the release binary first when it is missing. Re-running is safe: binaries and models are replaced, an existing
# /etc/scenewatch/scenewatch.toml is kept.
#   PREFIX=/usr/local  CONFIG_DIR=/etc/scenewatch  ./deploy/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX="${PREFIX:-/usr/local}"
CONFIG_DIR="${CONFIG_DIR:-/etc/scenewatch}"
TARGET="${CARGO_TARGET_DIR:-target}/release/scenewatch"
ORT_LIB="${ORT_LIB:-/var/cache/scenewatch/onnxruntime/cpu/libonnxruntime.so}"

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
[ -x "$TARGET" ] || cargo build --release --locked
[ -x "$TARGET" ] || { echo "$TARGET missing after the build" >&2; exit 1; }
[ -f "$ORT_LIB" ] || { echo "$ORT_LIB missing: run scripts/deps.sh first" >&2; exit 1; }

if ! id scenewatch >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/scenewatch --no-create-home --shell /usr/sbin/nologin scenewatch
fi
getent group video >/dev/null && usermod -a -G video scenewatch || true

install -D -m 0755 "$TARGET" "$PREFIX/bin/scenewatch"
install -D -m 0644 "$ORT_LIB" "$PREFIX/lib/scenewatch/libonnxruntime.so"
install -d -m 0755 "$PREFIX/share/scenewatch/models"
install -m 0644 models/*.onnx models/*.toml models/*.json models/*.txt models/README.md "$PREFIX/share/scenewatch/models/"
install -D -m 0644 README.md "$PREFIX/share/doc/scenewatch/README.md"
install -d -m 0750 -g scenewatch "$CONFIG_DIR"
if [ ! -f "$CONFIG_DIR/scenewatch.toml" ]; then
  install -m 0640 -g scenewatch deploy/scenewatch.example.toml "$CONFIG_DIR/scenewatch.toml"
  echo "installed an example config: edit $CONFIG_DIR/scenewatch.toml (cameras, broker), then start the service"
fi
install -m 0644 deploy/scenewatch.service /etc/systemd/system/scenewatch.service
install -D -m 0755 deploy/configure-unit.sh "$PREFIX/lib/scenewatch/configure-unit"
# host-specific drop-ins: the render group where it exists, ReadWritePaths for a media dir outside the state dir
SCENEWATCH_BIN="$PREFIX/bin/scenewatch" CONFIG="$CONFIG_DIR/scenewatch.toml" "$PREFIX/lib/scenewatch/configure-unit"
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable scenewatch.service
  echo "enabled; start with: systemctl start scenewatch   (check the config: scenewatch validate --config $CONFIG_DIR/scenewatch.toml)"
else
  echo "systemd is not running here; the unit is installed at /etc/systemd/system/scenewatch.service"
fi
