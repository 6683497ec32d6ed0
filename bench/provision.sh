#!/usr/bin/env bash
# Zero-touch provisioning at fleet scale, beside a plain connect in the same run: the
# server pinned to core 1 (taskset), `tether simulate --provision` on core 0. N devices
# (10,000 by default) each connect with the claim's token, send their raw P-256 key
# with a proof, get the reply and disconnect; then every device connects once with
# the key it registered (the plain connect, same run, same server). Prints both rows;
# the JSON report stays in the output directory.
#
#   cargo build --release -p tether-cli
#   bench/provision.sh [OUT_DIR] [N]
#
# Needs: taskset, python3, 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${TETHER_BIN:-target/release/tether}
OUT=${1:-/tmp/tether-provision}
N=${2:-10000}
SERVER_CORE=${SERVER_CORE:-1}
LOAD_CORE=${LOAD_CORE:-0}
[ -x "$T" ] || { echo "build first: cargo build --release -p tether-cli" >&2; exit 2; }
ulimit -n 20000
rm -rf "$OUT"; mkdir -p "$OUT"
DATA=$OUT/tether-data
export TETHER_ADMIN_TOKEN=provision-bench-admin-token

taskset -c "$SERVER_CORE" "$T" serve --data-dir "$DATA" --http-addr 127.0.0.1:18080 \
  --mqtt-addr 127.0.0.1:18883 --https-addr 127.0.0.1:18443 --pubsub-addr off --grpc-addr off \
  --max-connections 15000 --connect-rate-per-ip 0 > "$OUT/tether.log" 2>&1 &
TPID=$!
trap 'kill $TPID 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do [ -f "$DATA/server.key" ] && break; sleep 0.2; done
sleep 1

taskset -c "$LOAD_CORE" "$T" simulate --json --quiet --provision \
  --server http://127.0.0.1:18080 --mqtt 127.0.0.1:18883 --ca "$DATA/ca.pem" \
  --server-pid "$TPID" -n "$N" --rate 0 --duration 0 --concurrency 64 \
  > "$OUT/provision.json"

python3 - "$OUT/provision.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["provision"]
def q(h, k):
    v = (h or {}).get(k)
    return "-" if v is None else f"{v/1000:.1f} ms"
print(f"{'':28} {'per second':>12} {'server CPU':>12} {'p50':>9} {'p99':>9}")
print(f"{'provision (claim → own key)':28} {p['per_sec']:>12.0f} {p['server_cpu_per_provision_us'] or 0:>9.0f} µs"
      f" {q(p['latency'],'p50_us'):>9} {q(p['latency'],'p99_us'):>9}")
print(f"{'connect with the own key':28} {r['connects_per_sec']:>12.0f} {r['server_cpu_per_connect_us'] or 0:>9.0f} µs"
      f" {q(r['connect_latency'],'p50_us'):>9} {q(r['connect_latency'],'p99_us'):>9}")
ratio = (p['server_cpu_per_provision_us'] or 0) / (r['server_cpu_per_connect_us'] or 1)
print(f"provisioned {p['provisioned']} of {p['devices']} ({p['refused']} refused, {p['failed']} failed); "
      f"connected {r['connected']}; server CPU per provision = {ratio:.2f}x a connect")
PY
