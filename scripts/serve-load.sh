#!/usr/bin/env bash
# Load test of `dsi serve` (run by hand; README "Service" reports its figures):
#   scripts/serve-load.sh CHECKPOINT [CORPUS] [NEW_DOCS]
# CHECKPOINT  a trained checkpoint (copied first: the server rewrites its copy)
# CORPUS      the corpus it was trained on (default ../shared/corpora/scifact): its test
#             queries are the load
# NEW_DOCS    JSON lines of documents to add under load (default
#             ../shared/corpora/cranfield/corpus.jsonl; ids get a "new-" prefix)
# Phases, 2 compute threads for the server and for dsi eval, wrk on loopback:
#   1. dsi eval --json on the test split, 3 runs: its own queries per second (the fastest run is the reference)
#   2. wrk, 16 connections, 30 s of GET /search over the test queries: throughput, p50, p99
#   3. wrk, 8 connections, while ADDS documents are added one by one (POST /documents),
#      each then searched by its own title: found, and how long after its acknowledgement
#   4. wrk, 8 connections, 3 x 10 s without adds (the baseline for phase 3's p99)
# Environment: DSI (binary, default .build/release/dsi), PORT (18090), ADDS (500),
# DURATION (30), CONSOLIDATE_EVERY (the server's --consolidate-every during phase 3; 100).
set -euo pipefail
cd "$(dirname "$0")/.."
CK=${1:?usage: scripts/serve-load.sh CHECKPOINT [CORPUS] [NEW_DOCS]}
CORPUS=${2:-../shared/corpora/scifact}
NEWDOCS=${3:-../shared/corpora/cranfield/corpus.jsonl}
DSI=${DSI:-.build/release/dsi}
PORT=${PORT:-18090}
ADDS=${ADDS:-500}
DURATION=${DURATION:-30}
CONSOLIDATE_EVERY=${CONSOLIDATE_EVERY:-100}
command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/dsi-load.XXXXXX)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cp -r "$CK" "$WORK/ck"
python3 scripts/serve_load.py queries "$CORPUS" "$WORK/queries.lua"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores); $($DSI kernels)"

echo "== 1. dsi eval (reference queries per second)"
# Three runs; the fastest is the reference (the strictest for the server on a noisy machine).
for i in 1 2 3; do
  $DSI eval --checkpoint "$CK" --corpus "$CORPUS" --split test --threads 2 --json > "$WORK/eval$i.json"
done
EVAL_QPS=$(python3 -c "import json;print(round(max(1000/json.load(open('$WORK/eval%d.json' % i))['ms_per_query'] for i in (1,2,3)),2))")
echo "dsi eval: $EVAL_QPS queries/s (fastest of 3 runs)"

start_server() {
  $DSI serve --checkpoint "$WORK/ck" --port "$PORT" --threads 2 --consolidate-every "$1" --consolidate-minutes 0 \
    > "$WORK/serve.out" 2>> "$WORK/serve.err" &
  SERVER=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return; sleep 0.2; done
  echo "error: the server did not start:" >&2; cat "$WORK/serve.err" >&2; exit 1
}
run_wrk() { wrk -t1 -c"$1" -d"$2"s --timeout 10s -s "$WORK/queries.lua" "http://127.0.0.1:$PORT" | sed -n 's/^WRK //p'; }

start_server "$CONSOLIDATE_EVERY"
echo "== 2. wrk, 16 connections, ${DURATION} s"
run_wrk 16 5 > /dev/null  # warm-up
W16=$(run_wrk 16 "$DURATION"); echo "$W16"
# wrk in 10-second chunks: phase 3 runs until the adds are done, and its p99 is the
# largest chunk's (phase 4, the baseline, is measured the same way).
chunks() { for _ in $(seq "$1"); do run_wrk 8 10; done; }
echo "== 4. wrk, 8 connections, 3 chunks of 10 s, no adds (baseline)"
W8=$(chunks 3); echo "$W8"
echo "== 3. wrk, 8 connections in 10 s chunks, while $ADDS documents are added one by one"
( while [ ! -f "$WORK/adds.json" ]; do run_wrk 8 10; done ) > "$WORK/w8adds.txt" &
LOOP=$!
python3 scripts/serve_load.py adds "http://127.0.0.1:$PORT" "$NEWDOCS" "$ADDS" "$WORK/adds.json"
wait $LOOP
W8A=$(cat "$WORK/w8adds.txt"); echo "$W8A"
curl -s "http://127.0.0.1:$PORT/stats"; echo
python3 - "$EVAL_QPS" "$W16" "$W8" "$W8A" "$WORK/adds.json" <<'PY'
import json, sys
qps = float(sys.argv[1]); w16 = json.loads(sys.argv[2]); adds = json.load(open(sys.argv[5]))
def merge(text):
    cs = [json.loads(l) for l in text.splitlines() if l.strip()]
    p99s = sorted(c["p99_ms"] for c in cs)
    return {"chunks": len(cs), "requests": sum(c["requests"] for c in cs), "errors": sum(c["errors"] for c in cs),
            "non2xx": sum(c["non2xx"] for c in cs), "p99_ms": p99s[-1], "p99_ms_median_chunk": p99s[len(p99s) // 2],
            "p50_ms_median_chunk": sorted(c["p50_ms"] for c in cs)[len(cs) // 2]}
w8, w8a = merge(sys.argv[3]), merge(sys.argv[4])
t16 = w16["requests"] / w16["seconds"]
print(json.dumps({
  "eval_qps": qps, "serve_qps_16": round(t16, 2), "throughput_ratio": round(t16 / qps, 3),
  "p50_ms_16": w16["p50_ms"], "p99_ms_16": w16["p99_ms"], "p99_over_p50": round(w16["p99_ms"] / w16["p50_ms"], 2),
  "errors_16": w16["errors"] + w16["non2xx"],
  "baseline_8": w8, "during_adds_8": w8a, "p99_adds_ratio": round(w8a["p99_ms"] / w8["p99_ms"], 2),
  "p99_adds_ratio_median_chunk": round(w8a["p99_ms_median_chunk"] / w8["p99_ms_median_chunk"], 2),
  "errors_during_adds": w8a["errors"] + w8a["non2xx"], "adds": adds}, indent=1))
PY
