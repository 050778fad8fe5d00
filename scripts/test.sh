#!/usr/bin/env bash
# Command 2 of the README (and what .ci/run calls): install what the tests need, then run the whole suite.
# The tests use real parts: GStreamer decoding vtest.avi, ONNX Runtime running the committed models, a mosquitto
# broker each test starts on a free port. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
bash scripts/deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
# daemon tests each use both cores: run test binaries' cases one at a time
cargo test --release --locked -- --test-threads=1
