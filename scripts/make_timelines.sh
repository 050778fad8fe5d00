#!/usr/bin/env bash
# Cuts the photo timelines of eval/dev.toml from the real sample photos (fetched by scripts/deps.sh): each
# timeline is a sequence of whole photos, each held still for a number of seconds, scaled and letterboxed to
# 768x576, 5 fps, MJPEG in Matroska (decoded by GStreamer's matroskademux + jpegdec). Nothing is composited:
# a person is on screen exactly while a photo with a person is, so the truth follows from the cut list below.
#
# Deterministic and idempotent: ffmpeg runs bit-exact, and a timeline is rebuilt only when its cut list (kept in
# a .recipe file next to it) or a source photo's sha256 changed.
# Env: SCENEWATCH_CACHE (default /var/cache/scenewatch), SCENEWATCH_MEDIA (default $SCENEWATCH_CACHE/media).
# Writes $SCENEWATCH_CACHE/timelines/*.mkv.
set -euo pipefail

CACHE="${SCENEWATCH_CACHE:-/var/cache/scenewatch}"
MEDIA="${SCENEWATCH_MEDIA:-$CACHE/media}"
OUT="$CACHE/timelines"
mkdir -p "$OUT"
log() { printf '\033[1m[timelines]\033[0m %s\n' "$*" >&2; }
command -v ffmpeg >/dev/null || { echo "ffmpeg is missing: run scripts/deps.sh" >&2; exit 1; }

# name: photo:seconds ...   (keep eval/dev.toml's truth in step with these cuts)
TIMELINES=(
  # TUNING. person [[10, 20]]
  "tl_person_a leuvenA.jpg:10 astronaut.png:10 leuvenA.jpg:10"
  # TUNING. vehicle [[10, 20]]
  "tl_vehicle leuvenA.jpg:10 motorcycle_left.png:10 leuvenA.jpg:10"
  # TUNING. no person, no vehicle: 5 min for false alerts per hour
  "tl_empty leuvenA.jpg:60 rocket.jpg:60 chelsea.png:60 coffee.png:60 fruits.jpg:60"
  # HELD APART. person [[10, 20], [32, 40]]
  "tl_person_b leuvenB.jpg:10 basketball1.png:5 basketball2.png:5 leuvenB.jpg:12 messi5.jpg:8 leuvenB.jpg:10"
)

for spec in "${TIMELINES[@]}"; do
  set -- $spec
  name="$1"; shift
  recipe="768x576 5fps mjpeg q5 bitexact 1thread:"
  inputs=(); filters=""; i=0
  for cut in "$@"; do
    photo="${cut%%:*}"; secs="${cut##*:}"
    src="$MEDIA/$photo"
    [ -f "$src" ] || { echo "$src is missing: run scripts/deps.sh" >&2; exit 1; }
    recipe+=" $photo:$secs:$(sha256sum "$src" | cut -c1-16)"
    inputs+=(-loop 1 -framerate 5 -t "$secs" -i "$src")
    filters+="[$i:v]scale=768:576:force_original_aspect_ratio=decrease,pad=768:576:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuvj420p[v$i];"
    i=$((i + 1))
  done
  concat=""; for ((j = 0; j < i; j++)); do concat+="[v$j]"; done
  filters+="${concat}concat=n=$i:v=1:a=0[out]"
  out="$OUT/$name.mkv"
  if [ -f "$out" ] && [ "$(cat "$out.recipe" 2>/dev/null)" = "$recipe" ]; then
    continue
  fi
  log "cutting $name.mkv: $*"
  tmp="$OUT/.$name.tmp.mkv"
  ffmpeg -v error -y -filter_complex_threads 1 "${inputs[@]}" -filter_complex "$filters" -map "[out]" -r 5 -threads 1 \
    -c:v mjpeg -q:v 5 -fflags +bitexact -flags:v +bitexact -map_metadata -1 "$tmp"
  mv "$tmp" "$out"
  printf '%s' "$recipe" >"$out.recipe"
done
log "ready: $OUT"
