#!/usr/bin/env bash
# MQTT 5 re-authentication against a reconnect, on one server core: Tether pinned to
# core 1 (taskset), `tether simulate` on core 0. The same 2,000 devices connect with a
# full TLS handshake in MQTT 3.1.1 and in MQTT 5 and reconnect with the same token
# (--reconnect); then every MQTT 5 connection re-authenticates once with AUTH and a
# freshly minted token (--reauth). Prints the server CPU of each and the ratios; the
# JSON reports stay in the output directory. Mosquitto has no JWT re-authentication,
# so there is no peer column: the ratio is to Tether's own fresh connect.
#
#   cargo build --release -p tether-cli
#   bench/mqtt5-reauth.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
T=${TETHER_BIN:-target/release/tether}
OUT=${1:-/tmp/tether-mqtt5-reauth}
SERVER_CORE=${SERVER_CORE:-1}
LOAD_CORE=${LOAD_CORE:-0}
N=${DEVICES:-2000}
[ -x "$T" ] || { echo "build first: cargo build --release -p tether-cli" >&2; exit 2; }
ulimit -n 20000
rm -rf "$OUT"; mkdir -p "$OUT"
DATA=$OUT/tether-data
export TETHER_ADMIN_TOKEN=mqtt5-reauth-admin-token

taskset -c "$SERVER_CORE" "$T" serve --data-dir "$DATA" --http-addr 127.0.0.1:18080 \
  --mqtt-addr 127.0.0.1:18883 --https-addr 127.0.0.1:18443 --pubsub-addr off --grpc-addr off \
  --max-connections 15000 --connect-rate-per-ip 0 > "$OUT/tether.log" 2>&1 &
TPID=$!
trap 'kill $TPID 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do [ -f "$DATA/server.key" ] && break; sleep 0.2; done
sleep 1

SIM=(taskset -c "$LOAD_CORE" "$T" simulate --json --quiet --shared-key
     --server http://127.0.0.1:18080 --mqtt 127.0.0.1:18883 --ca "$DATA/ca.pem" --server-pid "$TPID")
echo "devices (not measured)" >&2
"${SIM[@]}" -n "$N" --rate 0 --duration 0 > /dev/null
for round in 1 2; do
  echo "round $round: 3.1.1 connect + reconnect, 5 connect + reconnect, 5 connect + AUTH" >&2
  "${SIM[@]}" -n "$N" --rate 0 --duration 0 --concurrency 64 --reconnect > "$OUT/v311.$round.json"
  "${SIM[@]}" -n "$N" --rate 0 --duration 0 --concurrency 64 --reconnect --mqtt5 > "$OUT/v5.$round.json"
  "${SIM[@]}" -n "$N" --rate 0 --duration 0 --concurrency 64 --mqtt5 --reauth > "$OUT/reauth.$round.json"
done

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(name):
    return json.load(open(os.path.join(out, name)))
print(f"{'round':<6} {'3.1.1 connect':>14} {'3.1.1 reconnect':>16} {'5 connect':>10} {'5 reconnect':>12} {'5 connect':>10} {'AUTH':>8} {'AUTH ÷ connect':>15} {'AUTH ÷ reconnect':>17}")
for r in (1, 2):
    a, b, c = load(f"v311.{r}.json"), load(f"v5.{r}.json"), load(f"reauth.{r}.json")
    auth = c["reauth"]["server_cpu_per_reauth_us"]
    print(f"{r:<6} {a['server_cpu_per_connect_us']:>12.0f}µs {a['reconnect']['server_cpu_per_connect_us']:>14.0f}µs "
          f"{b['server_cpu_per_connect_us']:>8.0f}µs {b['reconnect']['server_cpu_per_connect_us']:>10.0f}µs "
          f"{c['server_cpu_per_connect_us']:>8.0f}µs {auth:>6.1f}µs {c['reauth']['ratio_to_connect']:>14.3f}× "
          f"{auth / b['reconnect']['server_cpu_per_connect_us']:>16.3f}×  ({c['reauth']['done']} of {c['connected']} re-authenticated)")
PY
