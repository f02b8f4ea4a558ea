#!/usr/bin/env bash
# Crash test of `dsi serve` (run by hand; README "Service" reports its figures):
#   scripts/serve-crash.sh CHECKPOINT [TRIALS] [NEW_DOCS]
# Each trial starts the server on a copy of CHECKPOINT (the copy persists across trials,
# with its write-ahead log), streams documents from NEW_DOCS into POST /documents one by
# one (recording every id acknowledged with 200), and kill -9s the server at a random
# moment (0.3-12 s in; with --consolidate-every 8 consolidations run often, so many kills
# land in one; every tenth trial waits for a consolidation to finish and kills within a
# second of it). Then it restarts the server and checks that every document ever
# acknowledged is indexed (GET /documents/{id}) and found by its own title (GET /search,
# top 10), and that the checkpoint loads. Prints one line per trial and a JSON summary.
# Environment: DSI (default .build/release/dsi), PORT (18095), SEED (1).
set -euo pipefail
cd "$(dirname "$0")/.."
CK=${1:?usage: scripts/serve-crash.sh CHECKPOINT [TRIALS] [NEW_DOCS]}
TRIALS=${2:-50}
NEWDOCS=${3:-../shared/corpora/cranfield/corpus.jsonl}
DSI=${DSI:-.build/release/dsi}
PORT=${PORT:-18095}
RANDOM=${SEED:-1}
WORK=$(mktemp -d /tmp/dsi-crash.XXXXXX)
SERVER=""
ADDER=""
cleanup() { for p in $SERVER $ADDER; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cp -r "$CK" "$WORK/ck"
touch "$WORK/acked"
start_server() {
  $DSI serve --checkpoint "$WORK/ck" --port "$PORT" --threads 2 --consolidate-every 8 --consolidate-minutes 0 \
    >> "$WORK/serve.out" 2>> "$WORK/serve.err" &
  SERVER=$!
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return 0
    kill -0 "$SERVER" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
lost_total=0; unloadable=0; next=0; consolidations_hit=0
for trial in $(seq "$TRIALS"); do
  if ! start_server; then
    unloadable=$((unloadable + 1)); echo "trial $trial: the server did not start:"; tail -5 "$WORK/serve.err"; break
  fi
  # Check every document acknowledged so far (all earlier trials).
  lost=$(python3 - "$PORT" "$WORK/acked" <<'PY'
import json, sys, urllib.parse, urllib.request
port, acked = sys.argv[1], [l.split("\t") for l in open(sys.argv[2]).read().splitlines()]
lost = 0
for doc_id, title in acked:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/documents/{urllib.parse.quote(doc_id)}", timeout=60).read()
    except Exception:
        lost += 1; print(f"LOST {doc_id}", file=sys.stderr); continue
print(lost)
PY
)
  lost_total=$((lost_total + lost))
  # Stream adds, then kill -9 at a random moment.
  python3 - "$PORT" "$NEWDOCS" "$next" "$WORK/acked" > "$WORK/adder.out" 2>&1 <<'PY' &
import json, sys, urllib.request
port, docs, start, acked = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = open(docs).read().splitlines()
i = start
while True:
    d = json.loads(lines[i % len(lines)])
    doc = {"id": f"crash-{i}", "title": d.get("title") or d["text"][:80], "text": d["text"]}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/documents", data=json.dumps(doc).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            if r.status == 200:
                with open(acked, "a") as f:
                    f.write(f"{doc['id']}\t{doc['title']}\n"); f.flush()
    except Exception:
        break
    i += 1
    print(i, flush=True)
PY
  ADDER=$!
  if [ $((trial % 10)) -eq 0 ]; then
    # Every tenth trial lets a few adds through, stops adding, waits (up to 5 minutes) for
    # the consolidation to finish, and kills within a second of it: the moments after the
    # checkpoint is written (log rewrite, adds re-applied).
    sleep 3
    curl -s -m 5 -X POST "http://127.0.0.1:$PORT/consolidate" > /dev/null || true
    kill "$ADDER" 2>/dev/null || true
    for _ in $(seq 1500); do
      n=$(curl -s -m 2 "http://127.0.0.1:$PORT/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['consolidations'])" 2>/dev/null || echo 0)
      [ "$n" -ge 1 ] && break
      sleep 0.2
    done
    sleep "$(python3 -c "import random; random.seed($RANDOM); print(round(random.uniform(0, 1), 2))")"
  else
    sleep "$(python3 -c "import random; random.seed($RANDOM); print(round(random.uniform(0.3, 12), 2))")"
  fi
  consolidating=$(curl -s -m 2 "http://127.0.0.1:$PORT/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['consolidating'])" 2>/dev/null || echo "?")
  kill -9 "$SERVER"; wait "$SERVER" 2>/dev/null || true
  wait "$ADDER" 2>/dev/null || true
  [ "$consolidating" = "True" ] && consolidations_hit=$((consolidations_hit + 1))
  next=$(( $(wc -l < "$WORK/acked") + 1000 * trial ))
  echo "trial $trial: $(wc -l < "$WORK/acked") acknowledged so far, $lost lost at this restart, killed during a consolidation: $consolidating"
done
# The last restart and check.
start_server || unloadable=$((unloadable + 1))
final=$(python3 - "$PORT" "$WORK/acked" <<'PY'
import json, sys, urllib.parse, urllib.request
port, acked = sys.argv[1], [l.split("\t") for l in open(sys.argv[2]).read().splitlines()]
lost = found = 0
for doc_id, title in acked:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/documents/{urllib.parse.quote(doc_id)}", timeout=60).read()
    except Exception:
        lost += 1; continue
    r = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/search?k=10&q=" + urllib.parse.quote(title[:900]), timeout=60).read())
    found += doc_id in [x["id"] for x in r["results"]]
print(json.dumps({"acknowledged": len(acked), "lost": lost, "found_by_title_top10": found}))
PY
)
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
$DSI query --checkpoint "$WORK/ck" --top-k 1 "test" > /dev/null || unloadable=$((unloadable + 1))
echo "{\"trials\": $TRIALS, \"lost_at_restarts\": $lost_total, \"unloadable\": $unloadable, \"kills_during_consolidation\": $consolidations_hit, \"final\": $final}"
grep -c "consolidated" "$WORK/serve.err" | sed 's/^/consolidations completed: /'
grep -c "torn last record" "$WORK/serve.err" | sed 's/^/torn tails cut off: /' || true
