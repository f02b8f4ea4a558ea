#!/usr/bin/env bash
# The Quick start's main job, on the corpus this project ships (Corpora/demo: 311
# hand-written documents, 311 train and 311 test queries):
#   1. dsi train   the default configuration (small preset, atomic docids: one output
#                  token per document, LSA initialisation), 20 epochs, a few minutes on 2 cores
#   2. dsi query   a few questions from the test split
#   3. dsi eval    the test split, next to dsi bm25, and the two fused (the fusion
#                  weight dsi train chose on the 31 dev questions)
#   4. dsi add     six documents the model has never seen (Corpora/demo/added), replay
#                  mode (seconds), then the questions they answer
# Checkpoints go to Checkpoints/demo and Checkpoints/demo-grown (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product dsi 2>&1 | tail -n 1
DSI=.build/release/dsi
CK=Checkpoints/demo

echo; echo "== dsi train --corpus Corpora/demo --output $CK"
$DSI train --corpus Corpora/demo --output "$CK"

echo; echo "== dsi query --checkpoint $CK (questions from the test split)"
$DSI query --checkpoint "$CK" --top-k 3 \
  "why are earthworms good for a garden" "can loud noise damage hearing permanently" "which river carries the most water" "at what temperature does popcorn pop"

echo; echo "== dsi eval --checkpoint $CK --corpus Corpora/demo --split test"
$DSI eval --checkpoint "$CK" --corpus Corpora/demo --split test
echo "== dsi bm25 --corpus Corpora/demo --split test"
$DSI bm25 --corpus Corpora/demo --split test
echo "== dsi eval --checkpoint $CK --corpus Corpora/demo --split test --fusion bm25"
$DSI eval --checkpoint "$CK" --corpus Corpora/demo --split test --fusion bm25

echo; echo "== dsi add --checkpoint $CK --documents Corpora/demo/added/documents.jsonl --output $CK-grown"
$DSI add --checkpoint "$CK" --documents Corpora/demo/added/documents.jsonl --output "$CK-grown"
echo; echo "== dsi query --checkpoint $CK-grown (questions about the added documents)"
$DSI query --checkpoint "$CK-grown" --top-k 3 \
  "what causes the northern lights" "how do tardigrades survive in space" "how were egyptian hieroglyphs deciphered"
