#!/usr/bin/env bash
# Data-parallel benchmark (issue 13): on one machine, one process with 2 threads against
# 2 MPI ranks with 1 thread each, the reference configuration (small preset) at batch 64.
# Prints one line per run: steps/s, gradient exchange ms and MB per step, peak RSS per
# process. Usage: scripts/mpi-bench.sh [CORPUS] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${1:-Corpora/demo}"
steps="${2:-40}"
swift build -c release --product dsi >/dev/null
dsi="$(swift build -c release --show-bin-path)/dsi"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
args=(train --corpus "$corpus" --steps "$steps" --batch-size 64 --eval-every 100000 --json)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); OpenBLAS kernels: $("$dsi" kernels --core)"
report() { # name json rss-lines
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
name, j, rss = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3].split()
dp = j.get("data_parallel") or {}
print(f"{name}: {j['steps'] / j['seconds']:.3f} steps/s ({j['steps']} steps in {j['seconds']:.1f} s), "
      f"exchange {dp.get('exchange_ms_per_step', 0):.1f} ms and {dp.get('exchange_mb_per_step', 0):.1f} MB per step, "
      f"peak RSS per process {', '.join(f'{int(r) / 1024:.0f} MB' for r in rss)}")
PY
}
j1=$(/usr/bin/time -f "%M" -o "$out/rss1" "$dsi" "${args[@]}" --threads 2 --output "$out/one" 2>/dev/null)
report "1 process, 2 threads" "$j1" "$(cat "$out/rss1")"
j2=$(mpirun --allow-run-as-root --oversubscribe -np 2 sh -c "/usr/bin/time -f %M -o $out/rss2.\$OMPI_COMM_WORLD_RANK \"$dsi\" \"\$@\" 2>/dev/null" -- "${args[@]}" --threads 1 --output "$out/two")
report "2 ranks, 1 thread each" "$j2" "$(cat "$out"/rss2.*)"
