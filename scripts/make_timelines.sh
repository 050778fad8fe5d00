#!/usr/bin/env bash
# Cuts the timelines of eval/dev.toml and eval/holdout.toml from the real sample media (fetched by
# scripts/deps.sh): each timeline is a sequence of whole photos, each held for a number of seconds
# (`photo:secs`), or stretches of a real video (`video@start+secs`), scaled and letterboxed to 768x576, 5 fps,
# MJPEG in Matroska (decoded by GStreamer's matroskademux + jpegdec). Nothing is composited: a person is on
# screen exactly while a photo or video stretch with a person is, so the truth follows from the cut list below.
#
# A timeline named `pan:NAME` moves a slow virtual camera over each photo (a zoom of up to 15 % drifting across
# it) and adds temporal sensor-like noise, so that no two frames are the same: an hour of one still frame would
# be one detection repeated, not an hour of evidence about false alerts.
#
# Deterministic and idempotent: ffmpeg runs bit-exact, and a timeline is rebuilt only when its cut list (kept in
# a .recipe file next to it) or a source photo's sha256 changed.
# `--dev`: only what eval/dev.toml uses (skips the tl_holdout_* timelines, which no test reads).
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
  # TUNING. person [[10, 30]]: a man at a desk (webcam) between empty street views
  "tl_webcam leuvenA.jpg:10 cap13_edit2.mp4@5+20 leuvenA.jpg:10"
  # TUNING. no person, no vehicle, panned + noisy: 8 min, including the hard negatives that score as a person
  # in single frames (hubble_deep_field 0.45, building's hedge 0.42)
  "pan:tl_empty_pan hubble_deep_field.jpg:60 coins.png:60 leuvenA.jpg:60 rocket.jpg:60 chelsea.png:60 coffee.png:60 fruits.jpg:60 baboon.jpg:60"
  # tests/unusual.rs: 5 min of the same street, panned + noisy, then 20 s of something else (the astronaut),
  # then the street again for 60 s
  "pan:tl_unusual leuvenA.jpg:300 astronaut.png:20 leuvenA.jpg:60"
  # tests/unusual.rs after a restart: another insertion (a motorcycle), 8 s of street before it
  "pan:tl_unusual_short leuvenA.jpg:8 motorcycle_left.png:20 leuvenA.jpg:12"
  # HOLDOUT (eval/holdout.toml only). person [[15, 25], [40, 50], [65, 75]]
  "tl_holdout_people stuff.jpg:15 SeanConnery.jpg:10 board.jpg:15 camera.png:10 box_in_scene.png:15 cage.jpg:10 stuff.jpg:15"
  # HOLDOUT. no person, no vehicle, panned + noisy: 24 min
  "pan:tl_holdout_empty stuff.jpg:120 board.jpg:120 box_in_scene.png:120 horse.png:120 logo.png:120 cell.png:120 retina.jpg:120 page.png:120 text.png:120 brick.png:120 gravel.png:120 grass.png:120"
)

DEV_ONLY=0
[ "${1:-}" = "--dev" ] && DEV_ONLY=1
for spec in "${TIMELINES[@]}"; do
  set -- $spec
  name="$1"; shift
  pan=0
  case "$name" in pan:*) pan=1; name="${name#pan:}" ;; esac
  [ "$DEV_ONLY" = 1 ] && [[ "$name" == tl_holdout_* ]] && continue
  recipe="768x576 5fps mjpeg q5 bitexact 1thread pan=$pan:"
  inputs=(); filters=""; i=0
  for cut in "$@"; do
    if [[ "$cut" == *@* ]]; then      # video@start+secs
      src_name="${cut%%@*}"; span="${cut#*@}"; from="${span%%+*}"; secs="${span#*+}"
      src="$MEDIA/$src_name"
      [ -f "$src" ] || { echo "$src is missing: run scripts/deps.sh" >&2; exit 1; }
      recipe+=" $src_name@$from+$secs:$(sha256sum "$src" | cut -c1-16)"
      inputs+=(-ss "$from" -t "$secs" -i "$src")
      filters+="[$i:v]fps=5,scale=768:576:force_original_aspect_ratio=decrease,pad=768:576:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuvj420p,trim=duration=$secs,setpts=PTS-STARTPTS[v$i];"
    else                               # photo:secs
      photo="${cut%%:*}"; secs="${cut##*:}"
      src="$MEDIA/$photo"
      [ -f "$src" ] || { echo "$src is missing: run scripts/deps.sh" >&2; exit 1; }
      recipe+=" $photo:$secs:$(sha256sum "$src" | cut -c1-16)"
      inputs+=(-loop 1 -framerate 5 -t "$secs" -i "$src")
      if [ "$pan" = 1 ]; then
        # cover 960x720, then a zoom growing to 1.15 with the window drifting on a slow ellipse; noise per frame
        filters+="[$i:v]scale=960:720:force_original_aspect_ratio=increase,crop=960:720,setsar=1,"
        filters+="zoompan=z='1+0.15*(0.5-0.5*cos(on/40))':x='(iw-iw/zoom)*(0.5+0.5*sin(on/57))':y='(ih-ih/zoom)*(0.5+0.5*cos(on/73))':d=1:s=768x576:fps=5,"
        filters+="noise=alls=8:allf=t,format=yuvj420p[v$i];"
      else
        filters+="[$i:v]scale=768:576:force_original_aspect_ratio=decrease,pad=768:576:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuvj420p[v$i];"
      fi
    fi
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
# Single frames of vtest.avi (the [[photo]] entries vtest_tNN.png of eval/dev.toml: people counted by eye)
for t in 05 15 25 35 45 65 75; do
  out="$OUT/vtest_t$t.png"
  [ -f "$out" ] && continue
  src="$MEDIA/vtest.avi"
  [ -f "$src" ] || { echo "$src is missing: run scripts/deps.sh" >&2; exit 1; }
  ffmpeg -v error -y -ss "$t" -i "$src" -frames:v 1 -fflags +bitexact -flags:v +bitexact "$OUT/.vtest_t$t.png"
  mv "$OUT/.vtest_t$t.png" "$out"
done
# Stills for eval/prompts.toml (issue 18), derived from whole real photos and frames, nothing composited:
#   *_rot90 / *_rot270: the photo turned on its side (people standing become people lying, as in tests/posture.rs);
#   *_flip: mirrored left-right (the person moves to the other half of the frame, for zone prompts);
#   *_dark: a NIGHT PROXY: the photo's levels scaled to about a quarter plus sensor-like noise. Real night photos
#           are scarce in the registries (hubble_deep_field.jpg is the only one); these stand in for "at night" and
#           are labelled as such in the manifest;
#   cap13_tNN: single frames of the webcam video (a man at a desk, indoors).
still() { # name source filter
  local out="$OUT/$1.png" src="$2"
  [ -f "$src" ] || { echo "$src is missing: run scripts/deps.sh" >&2; exit 1; }
  local recipe="$3:$(sha256sum "$src" | cut -c1-16)"
  if [ -f "$out" ] && [ "$(cat "$out.recipe" 2>/dev/null)" = "$recipe" ]; then return; fi
  ffmpeg -v error -y -i "$src" -vf "$3" -frames:v 1 -fflags +bitexact -flags:v +bitexact "$OUT/.$1.png"
  mv "$OUT/.$1.png" "$out"
  printf '%s' "$recipe" >"$out.recipe"
}
for photo in basketball1.png basketball2.png messi5.jpg; do
  still "${photo%.*}_rot90" "$MEDIA/$photo" "transpose=1"
  still "${photo%.*}_rot270" "$MEDIA/$photo" "transpose=2"
done
for photo in astronaut.png camera.png cage.jpg audrey.jpg SeanConnery.jpg; do
  still "${photo%.*}_flip" "$MEDIA/$photo" "hflip"
done
DARK="format=rgb24,colorlevels=romax=0.22:gomax=0.22:bomax=0.26,noise=alls=6:all_seed=7"
for photo in leuvenA.jpg leuvenB.jpg basketball1.png basketball2.png; do
  still "${photo%.*}_dark" "$MEDIA/$photo" "$DARK"
done
for t in 25 65 75; do
  still "vtest_t${t}_dark" "$OUT/vtest_t$t.png" "$DARK"
done
for t in 04 12 20 28; do
  out="$OUT/cap13_t$t.png"
  [ -f "$out" ] && continue
  ffmpeg -v error -y -ss "$t" -i "$MEDIA/cap13_edit2.mp4" -frames:v 1 -fflags +bitexact -flags:v +bitexact "$OUT/.cap13_t$t.png"
  mv "$OUT/.cap13_t$t.png" "$out"
done
log "ready: $OUT"
