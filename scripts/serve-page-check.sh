#!/usr/bin/env bash
# The search page in a real browser (run by hand): starts `dsi serve` on a copy of
# CHECKPOINT, takes headless Chromium screenshots of a search result and of the add form
# (after adding a document through the form), and checks them: PNGs of the requested
# size that are not blank, and the DOM Chromium rendered holding the results table, the
# learning curve and the form. Screenshots go to a temporary folder (OUT to keep them;
# never commit them).
#   scripts/serve-page-check.sh CHECKPOINT "QUERY"
set -euo pipefail
cd "$(dirname "$0")/.."
CK=${1:?usage: scripts/serve-page-check.sh CHECKPOINT QUERY}
QUERY=${2:?usage: scripts/serve-page-check.sh CHECKPOINT QUERY}
DSI=${DSI:-.build/release/dsi}
PORT=${PORT:-18097}
BROWSER=$(command -v chromium || command -v chromium-browser || true)
[ -n "$BROWSER" ] || { echo "error: chromium is not installed (apt-get install chromium)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/dsi-page.XXXXXX)
OUT=${OUT:-$WORK}
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cp -r "$CK" "$WORK/ck"
$DSI serve --checkpoint "$WORK/ck" --port "$PORT" --threads 2 --consolidate-every 0 > /dev/null 2> "$WORK/serve.err" &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
Q=$(python3 -c "import sys, urllib.parse; print(urllib.parse.quote_plus(sys.argv[1]))" "$QUERY")
curl -sf -X POST "http://127.0.0.1:$PORT/" --data "id=page-check-1&title=Page+check&text=A+document+added+through+the+page%27s+form." > /dev/null
shot() { "$BROWSER" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,1400 --screenshot="$1" "$2" 2>/dev/null; }
dom() { "$BROWSER" --headless=new --no-sandbox --disable-gpu --dump-dom "$1" 2>/dev/null; }
shot "$OUT/search.png" "http://127.0.0.1:$PORT/?q=$Q"
shot "$OUT/form.png" "http://127.0.0.1:$PORT/"
dom "http://127.0.0.1:$PORT/?q=$Q" > "$WORK/search.html"
python3 - "$OUT/search.png" "$OUT/form.png" "$WORK/search.html" <<'PY'
import struct, sys, zlib
def check_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    w, h = struct.unpack(">II", data[16:24])
    assert (w, h) == (1000, 1400), f"{path}: {w}x{h}, expected 1000x1400"
    idat, i = b"", 8
    while i < len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]; kind = data[i + 4:i + 8]
        if kind == b"IDAT": idat += data[i + 8:i + 8 + n]
        i += 12 + n
    raw = zlib.decompress(idat)
    distinct = len(set(raw[::97]))
    assert distinct > 20, f"{path}: looks blank ({distinct} distinct byte values)"
    print(f"{path}: {w}x{h} PNG, {len(data)} bytes, {distinct} distinct sampled byte values")
check_png(sys.argv[1]); check_png(sys.argv[2])
html = open(sys.argv[3]).read()
for needle in ["<table class=\"results\">", "<svg", "polyline", "method=\"post\"", "name=\"text\"", "documents in"]:
    assert needle in html, f"the rendered page lacks {needle!r}"
rows = html.count("<tr>") - 1
assert rows >= 1, "no result rows"
print(f"rendered DOM: {rows} result rows, learning curve and add form present")
PY
echo "page check passed (screenshots: $OUT)"
