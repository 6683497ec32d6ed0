#!/usr/bin/env bash
# Two Tether builds on the same load, alternating: each round starts each binary
# fresh (`tether serve` pinned to core 1, embedded default), creates the fleet (not
# measured) and runs one `tether simulate` on core 0 with the arguments given, then
# prints the server's CPU per message, messages/s and PUBACK p50/p99. Alternating
# rounds is what makes a difference of a few µs readable on a noisy machine.
#
#   cargo build --release -p tether-cli && cp target/release/tether /tmp/tether-before
#   ... change, rebuild ...
#   bench/ab.sh /tmp/tether-before target/release/tether 3 -n 2000 --rate 1 --duration 20 --payload 100
#   bench/ab.sh /tmp/tether-before target/release/tether 3 -n 2000 --rate 0 --duration 0
#                                   (connects only: the server's CPU per connect; add
#                                   --reconnect [--resume] for the reconnect round)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: bench/ab.sh BEFORE AFTER ROUNDS SIMULATE-ARGS..." >&2; exit 2; }
A=$1 B=$2 ROUNDS=$3; shift 3
SERVER_CORE=${SERVER_CORE:-1}
LOAD_CORE=${LOAD_CORE:-0}
OUT=${OUT:-/tmp/tether-ab}
export TETHER_ADMIN_TOKEN=ab-bench-admin-token
ulimit -n 20000
TPID=
trap 'if [ -n "$TPID" ]; then kill "$TPID" 2> /dev/null || true; fi' EXIT
for _ in $(seq 1 "$ROUNDS"); do
  for T in "$A" "$B"; do
    rm -rf "$OUT"; mkdir -p "$OUT"; DATA=$OUT/data
    taskset -c "$SERVER_CORE" "$T" serve --data-dir "$DATA" --http-addr 127.0.0.1:18080 \
      --mqtt-addr 127.0.0.1:18883 --https-addr 127.0.0.1:18443 --pubsub-addr off --grpc-addr off \
      --max-connections 15000 --connect-rate-per-ip 0 ${SERVE_ARGS:-} > "$OUT/tether.log" 2>&1 &
    TPID=$!
    for _ in $(seq 1 50); do [ -f "$DATA/server.key" ] && break; sleep 0.2; done
    sleep 1
    SIM=(taskset -c "$LOAD_CORE" "$T" simulate --json --quiet --shared-key --server http://127.0.0.1:18080
         --mqtt 127.0.0.1:18883 --ca "$DATA/ca.pem" --server-pid "$TPID")
    "${SIM[@]}" -n 2000 --rate 0 --duration 0 > /dev/null
    "${SIM[@]}" "$@" > "$OUT/run.json"
    kill "$TPID"; wait "$TPID" 2>/dev/null || true
    TPID=
    python3 - "$OUT/run.json" "$T" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["puback_latency"]
if d["sent"]:
    print(f"{sys.argv[2]:<40} CPU/msg {d['server_cpu_per_message_us']:6.1f} µs  "
          f"{d['messages_per_sec']:9.0f} msg/s  PUBACK p50 {p['p50_us']} µs  p99 {p['p99_us']} µs")
else:  # a connect-only run (--rate 0 --duration 0)
    c = d["connect_latency"]
    fresh = d['server_cpu_per_connect_us']
    line = (f"{sys.argv[2]:<40} CPU/connect {fresh:7.1f} µs  "
            f"{d['connects_per_sec']:7.0f} connects/s  p50 {c['p50_us']} µs  p99 {c['p99_us']} µs")
    r = d.get("reconnect")
    if r:  # --reconnect: the second round, and its cost against the fresh one
        line += (f"  reconnect {r['server_cpu_per_connect_us']:7.1f} µs"
                 f" ({r['server_cpu_per_connect_us'] / fresh:.2f}× fresh)")
    print(line)
PY
  done
done
