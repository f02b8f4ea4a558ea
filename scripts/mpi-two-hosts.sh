#!/usr/bin/env bash
# Two test hosts on this machine, and a 2-rank `dsi train` across them over TCP (issue 13).
#
# Makes two network namespaces (dsi-host-a, dsi-host-b) joined by a veth pair with
# addresses 10.77.0.1 and 10.77.0.2 (only inside them), runs mpirun in host a with one
# slot on each host (Open MPI starts host b's daemon through an "ssh" that enters the
# namespace instead), restricts MPI to TCP over the link (no shared memory), and prints
# the bytes the link carried. Cleans up after itself, also on failure. Needs root.
#
# Usage: scripts/mpi-two-hosts.sh [CORPUS] [STEPS]   (default Corpora/demo, 20 steps)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="$(realpath "${1:-Corpora/demo}")"
steps="${2:-20}"
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (it creates network namespaces)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "error: mpirun is missing: bash scripts/install-deps.sh" >&2; exit 1; }
swift build -c release --product dsi >/dev/null
dsi="$(swift build -c release --show-bin-path)/dsi"
work="$(mktemp -d)"
cleanup() {
  ip netns del dsi-host-a 2>/dev/null || true
  ip netns del dsi-host-b 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cleanup
work="$(mktemp -d)"
ip netns add dsi-host-a
ip netns add dsi-host-b
ip link add dsi-veth-a type veth peer name dsi-veth-b
ip link set dsi-veth-a netns dsi-host-a
ip link set dsi-veth-b netns dsi-host-b
ip -n dsi-host-a addr add 10.77.0.1/24 dev dsi-veth-a
ip -n dsi-host-b addr add 10.77.0.2/24 dev dsi-veth-b
for h in a b; do
  ip -n "dsi-host-$h" link set lo up
  ip -n "dsi-host-$h" link set "dsi-veth-$h" up
done
echo "hosts: dsi-host-a 10.77.0.1 <-> dsi-host-b 10.77.0.2 (veth pair)"

# Open MPI starts the remote daemon with `<agent> <host> <command>`: this agent enters
# the namespace that owns the address instead of using ssh.
cat >"$work/agent" <<'AGENT'
#!/bin/sh
host="$1"; shift
case "$host" in
  10.77.0.1) ns=dsi-host-a ;;
  10.77.0.2) ns=dsi-host-b ;;
  *) echo "unknown test host $host" >&2; exit 1 ;;
esac
exec ip netns exec "$ns" /bin/sh -c "$*"
AGENT
chmod +x "$work/agent"
printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' >"$work/hosts"

bytes() { ip netns exec dsi-host-a cat /sys/class/net/dsi-veth-a/statistics/tx_bytes /sys/class/net/dsi-veth-a/statistics/rx_bytes | paste -sd' '; }
before=($(bytes))
ip netns exec dsi-host-a mpirun --allow-run-as-root -np 2 --hostfile "$work/hosts" \
  --mca plm_rsh_agent "$work/agent" \
  --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
  -x PATH ${OPENBLAS_CORETYPE:+-x OPENBLAS_CORETYPE} \
  "$dsi" train --corpus "$corpus" --steps "$steps" --threads 1 --eval-every 100000 --output "$work/checkpoint" --json \
  >"$work/report.json"
after=($(bytes))
cat "$work/report.json"
python3 - "$work/report.json" "${before[@]}" "${after[@]}" "$steps" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
tx0, rx0, tx1, rx1, steps = map(int, sys.argv[2:7])
dp = r["data_parallel"]
sent, received = tx1 - tx0, rx1 - rx0
print(f"2 ranks on 2 hosts: {r['steps']} steps in {r['seconds']:.1f} s; host a's link sent {sent / 2**20:.1f} MB "
      f"and received {received / 2**20:.1f} MB ({(sent + received) / 2**20 / steps:.1f} MB per step; "
      f"rank 0 contributed {dp['exchange_mb_per_step']:.1f} MB per step)")
if received < dp["exchange_mb_per_step"] * 2**20 * steps / 2:
    sys.exit("error: the gradients did not cross the link")
PY
