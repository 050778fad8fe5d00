#!/bin/sh
# Writes the host-specific parts of scenewatch.service as drop-ins, so the shipped unit starts on any box:
#   10-render.conf  SupplementaryGroups=render, only where a `render` group exists (GPU device nodes). Naming a group
#                   that does not exist makes systemd refuse to start the service (status 216/GROUP).
#   20-paths.conf   ReadWritePaths= for the directories the config writes outside the unit's StateDirectory
#                   ([media] dir, [spool] path): ProtectSystem=strict makes everything else read-only. The
#                   directories are created, owned by the service user.
# Run by deploy/install.sh and the Debian package's postinst; run it again after changing [media] dir or [spool]
# path, then `systemctl daemon-reload && systemctl restart scenewatch`.
#   SCENEWATCH_BIN=/usr/bin/scenewatch CONFIG=/etc/scenewatch/scenewatch.toml DROPIN_DIR=… configure-unit.sh
set -eu
BIN="${SCENEWATCH_BIN:-/usr/local/bin/scenewatch}"
CONFIG="${CONFIG:-/etc/scenewatch/scenewatch.toml}"
DROPIN_DIR="${DROPIN_DIR:-/etc/systemd/system/scenewatch.service.d}"
GPU_GROUP="${GPU_GROUP:-render}"
SERVICE_USER="${SERVICE_USER:-scenewatch}"
# the unit's StateDirectory and CacheDirectory: writable already
MANAGED="${MANAGED:-/var/lib/scenewatch /var/cache/scenewatch}"

mkdir -p "$DROPIN_DIR"
if getent group "$GPU_GROUP" >/dev/null 2>&1; then
  printf '# written by configure-unit.sh: the %s group exists on this host\n[Service]\nSupplementaryGroups=%s\n' \
    "$GPU_GROUP" "$GPU_GROUP" >"$DROPIN_DIR/10-render.conf"
else
  rm -f "$DROPIN_DIR/10-render.conf"
fi

paths=""
if [ -f "$CONFIG" ] && dirs=$("$BIN" validate --config "$CONFIG" --writable-paths 2>/dev/null); then
  for d in $dirs; do
    inside=no
    for m in $MANAGED; do
      case "$d/" in "$m"/*) inside=yes ;; esac
    done
    [ "$inside" = yes ] && continue
    mkdir -p "$d"
    if id "$SERVICE_USER" >/dev/null 2>&1; then chown "$SERVICE_USER:" "$d"; fi
    paths="$paths $d"
  done
else
  echo "configure-unit: $CONFIG does not validate; ReadWritePaths left as it was" >&2
  exit 0
fi
if [ -n "$paths" ]; then
  printf '# written by configure-unit.sh from %s\n[Service]\nReadWritePaths=%s\n' "$CONFIG" "${paths# }" \
    >"$DROPIN_DIR/20-paths.conf"
else
  rm -f "$DROPIN_DIR/20-paths.conf"
fi
rmdir "$DROPIN_DIR" 2>/dev/null || true
