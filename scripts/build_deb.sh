#!/usr/bin/env bash
# Builds scenewatch_<version>_amd64.deb from an already-built binary with dpkg-deb (no debhelper, nothing fetched):
#   /usr/bin/scenewatch (stripped)            /usr/lib/scenewatch/libonnxruntime.so (ONNX Runtime, CPU)
#   /usr/share/scenewatch/models/             /lib/systemd/system/scenewatch.service
#   /usr/lib/sysusers.d/scenewatch.conf       /usr/lib/scenewatch/configure-unit (render group, ReadWritePaths)
#   /etc/scenewatch/scenewatch.toml (conffile: dpkg keeps local edits on upgrade)
# The postinst creates the user (systemd-sysusers), writes the host's drop-ins and enables the unit where systemd
# runs; it does not start it (the config names the broker and cameras first). Purge removes the state directory
# /var/lib/scenewatch (spool, media); the label-bank cache under /var/cache/scenewatch is left alone.
#   BIN=target/release/scenewatch ORT_LIB=… OUT_DIR=target/deb COMPRESS=xz scripts/build_deb.sh
# COMPRESS: xz (default), gzip or none (what the test uses: fast on 2 cores). Prints the path of the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="${BIN:-$TARGET_DIR/release/scenewatch}"
ORT_LIB="${ORT_LIB:-/var/cache/scenewatch/onnxruntime/cpu/libonnxruntime.so}"
OUT_DIR="${OUT_DIR:-$TARGET_DIR/deb}"
COMPRESS="${COMPRESS:-xz}"
ARCH=amd64

[ -x "$BIN" ] || { echo "$BIN missing: cargo build --release first (or set BIN)" >&2; exit 1; }
[ -f "$ORT_LIB" ] || { echo "$ORT_LIB missing: run scripts/deps.sh first (or set ORT_LIB)" >&2; exit 1; }

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
ROOT="$STAGE/scenewatch_${VERSION}_$ARCH"
umask 022
install -d "$ROOT/DEBIAN" "$ROOT/usr/bin" "$ROOT/usr/lib/scenewatch" "$ROOT/usr/share/scenewatch/models" \
  "$ROOT/lib/systemd/system" "$ROOT/usr/lib/sysusers.d" "$ROOT/etc/scenewatch" "$ROOT/usr/share/doc/scenewatch"

strip --strip-unneeded -o "$ROOT/usr/bin/scenewatch" "$BIN"
chmod 0755 "$ROOT/usr/bin/scenewatch"
install -m 0644 "$ORT_LIB" "$ROOT/usr/lib/scenewatch/libonnxruntime.so"
install -m 0755 deploy/configure-unit.sh "$ROOT/usr/lib/scenewatch/configure-unit"
install -m 0644 models/*.onnx models/*.toml models/*.json models/*.txt models/README.md \
  "$ROOT/usr/share/scenewatch/models/"
install -m 0644 README.md "$ROOT/usr/share/doc/scenewatch/README.md"
install -m 0644 docs/mqtt.md docs/operations.md "$ROOT/usr/share/doc/scenewatch/"
printf 'scenewatch\nLicense: Apache-2.0 (see /usr/share/common-licenses/Apache-2.0)\nBundled: ONNX Runtime (MIT), models (see /usr/share/scenewatch/models/README.md)\n' \
  >"$ROOT/usr/share/doc/scenewatch/copyright"
# the package puts everything under /usr, not /usr/local
sed -e 's|/usr/local/bin/scenewatch|/usr/bin/scenewatch|g' \
    -e 's|file:///usr/local/share/doc/scenewatch|file:///usr/share/doc/scenewatch|g' \
    -e 's|installed by deploy/install.sh to /etc/systemd/system/scenewatch.service|installed by the scenewatch package|' \
    deploy/scenewatch.service >"$ROOT/lib/systemd/system/scenewatch.service"
sed -e 's|/usr/local/share/scenewatch/models|/usr/share/scenewatch/models|g' \
    -e 's|/usr/local/lib/scenewatch/libonnxruntime.so|/usr/lib/scenewatch/libonnxruntime.so|g' \
    deploy/scenewatch.example.toml >"$ROOT/etc/scenewatch/scenewatch.toml"
chmod 0640 "$ROOT/etc/scenewatch/scenewatch.toml"
cat >"$ROOT/usr/lib/sysusers.d/scenewatch.conf" <<'SYSUSERS'
# the service user (scenewatch.service runs as it); video: V4L2 cameras
u scenewatch - "scenewatch camera monitor" /var/lib/scenewatch /usr/sbin/nologin
m scenewatch video
SYSUSERS

echo /etc/scenewatch/scenewatch.toml >"$ROOT/DEBIAN/conffiles"
SIZE_KB="$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)"
cat >"$ROOT/DEBIAN/control" <<CONTROL
Package: scenewatch
Version: $VERSION
Architecture: $ARCH
Maintainer: scenewatch developers <scenewatch@localhost>
Installed-Size: $SIZE_KB
Depends: libc6 (>= 2.34), libgcc-s1, libglib2.0-0, libgstreamer1.0-0 (>= 1.22), libgstreamer-plugins-base1.0-0 (>= 1.22), gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, gstreamer1.0-plugins-ugly | gstreamer1.0-plugins-bad, adduser | systemd
Recommends: gstreamer1.0-plugins-bad, gstreamer1.0-libav
Suggests: mosquitto
Section: video
Priority: optional
Description: camera scene monitor: GStreamer + ONNX Runtime -> MQTT
 Watches camera streams (RTSP, V4L2, files) with real vision models and
 tells people over MQTT what is happening: alerts with snapshots and
 recordings, period summaries, Home Assistant discovery. Runs as the
 systemd service scenewatch.service with a crash-safe delivery spool.
CONTROL

cat >"$ROOT/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers scenewatch.conf
  elif ! getent passwd scenewatch >/dev/null; then
    adduser --system --group --home /var/lib/scenewatch --no-create-home scenewatch
    adduser scenewatch video >/dev/null 2>&1 || true
  fi
  chgrp scenewatch /etc/scenewatch /etc/scenewatch/scenewatch.toml
  chmod 0750 /etc/scenewatch
  chmod 0640 /etc/scenewatch/scenewatch.toml
  SCENEWATCH_BIN=/usr/bin/scenewatch /usr/lib/scenewatch/configure-unit || true
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    systemctl enable scenewatch.service >/dev/null 2>&1 || true
    echo "scenewatch: edit /etc/scenewatch/scenewatch.toml (broker, cameras), then: systemctl start scenewatch"
  fi
fi
exit 0
POSTINST
cat >"$ROOT/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl stop scenewatch.service >/dev/null 2>&1 || true
fi
exit 0
PRERM
cat >"$ROOT/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
case "$1" in
  remove)
    if [ -d /run/systemd/system ]; then
      systemctl disable scenewatch.service >/dev/null 2>&1 || true
      systemctl daemon-reload || true
    fi
    ;;
  purge)
    # drop-ins written by configure-unit, the enable symlink, and the state (spool, media); the user stays
    # (Debian practice: files it owned may remain elsewhere)
    rm -rf /etc/systemd/system/scenewatch.service.d /var/lib/scenewatch
    rm -f /etc/systemd/system/multi-user.target.wants/scenewatch.service
    ;;
esac
exit 0
POSTRM
chmod 0755 "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/prerm" "$ROOT/DEBIAN/postrm"

mkdir -p "$OUT_DIR"
DEB="$OUT_DIR/scenewatch_${VERSION}_$ARCH.deb"
dpkg-deb --root-owner-group -Z"$COMPRESS" --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
