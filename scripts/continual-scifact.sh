#!/usr/bin/env bash
# Continual-indexing benchmark on SciFact (issue protocol): hold out 10% of the documents
# by a hash of the id, train on the other 90%, add the 10% with each mode, and compare
# with the model before the add and with a model trained on the full corpus for the same
# time. Usage: scripts/continual-scifact.sh [MINUTES] [WORKDIR]
# The two trainings run side by side, one thread each (the machine has 2 cores). The
# README's figures come from `env -u OPENBLAS_CORETYPE scripts/continual-scifact.sh 45`
# (dsi then picks OpenBLAS's AVX-512 kernels where the environment pins AVX2 ones).
set -euo pipefail
cd "$(dirname "$0")/.."
MIN=${1:-45}
W=${2:-/tmp/dsi-continual}
SF=../shared/corpora/scifact
swift build -c release --product dsi >/dev/null
DSI=.build/release/dsi
mkdir -p "$W"
[ -d "$W/sf90" ] || $DSI holdout --corpus $SF --fraction 0.1 --output "$W/sf90"
$DSI train --corpus $SF --output "$W/full" --time-budget "$MIN" --threads 1 --json > "$W/full.train.json" 2> "$W/full.train.log" &
$DSI train --corpus "$W/sf90" --output "$W/base" --time-budget "$MIN" --threads 1 --json > "$W/base.train.json" 2> "$W/base.train.log" &
wait
for mode in replay fast; do
  $DSI add --checkpoint "$W/base" --documents "$W/sf90/held-out.jsonl" --mode $mode --output "$W/base+$mode" --json > "$W/add-$mode.json" 2> "$W/add-$mode.log"
  $DSI eval --checkpoint "$W/base+$mode" --corpus $SF --split test --json > "$W/eval-$mode.json"
done
$DSI eval --checkpoint "$W/base" --corpus "$W/sf90" --split test --json > "$W/eval-before.json"
$DSI eval --checkpoint "$W/full" --corpus $SF --split test --added "$W/sf90/held-out.jsonl" --json > "$W/eval-full.json"
for f in "$W"/add-*.json "$W"/eval-*.json; do echo "$f"; cat "$f"; echo; done
