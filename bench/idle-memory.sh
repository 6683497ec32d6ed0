#!/usr/bin/env bash
# Memory per idle connection, Tether builds beside Mosquitto: each round starts each
# server fresh on core 1, connects N devices from core 0 (`tether simulate --rate 0
# --hold 5`, full TLS 1.3 handshakes, ES256 JWTs) and prints the server's RSS after the
# connections sat idle, minus its RSS before, per connection (issue 12's figure).
#
#   cargo build --release -p tether-cli && cp target/release/tether /tmp/tether-before
#   ... change, rebuild ...
#   bench/idle-memory.sh 19000 2 /tmp/tether-before target/release/tether
#
# The devices (up to N, one shared key) are created once in $DATA, which later runs
# reuse. N up to 19,000 fits the 20,000 open files of this machine's processes: the
# server runs with --https-max-connections 64 --admin-max-connections 64 so that its
# descriptor budget leaves the MQTT listener room. Needs: mosquitto, taskset, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: bench/idle-memory.sh N ROUNDS TETHER_BIN..." >&2; exit 2; }
N=$1 ROUNDS=$2; shift 2
DATA=${DATA:-/dev/shm/tether-idle}
SERVER_CORE=${SERVER_CORE:-1}
LOAD_CORE=${LOAD_CORE:-0}
SOURCES=${SOURCES:-127.0.0.2-127.0.0.5}
export TETHER_ADMIN_TOKEN=idle-memory-admin-token
ulimit -n 20000
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; true' EXIT

serve() { # binary
  taskset -c "$SERVER_CORE" "$1" serve --data-dir "$DATA" --http-addr 127.0.0.1:18080 \
    --mqtt-addr 127.0.0.1:18883 --https-addr 127.0.0.1:18443 --pubsub-addr off --grpc-addr off \
    --connect-rate-per-ip 0 --max-connections $((N + 500)) \
    --https-max-connections 64 --admin-max-connections 64 > "$DATA.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18080/healthz >/dev/null && return; sleep 0.2; done
  echo "tether did not start; see $DATA.log" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
per_connection() {
  python3 -c 'import json, sys
d = json.load(sys.stdin)
print("%6d connected %9.0f B per idle connection" % (d["connected"], d["server_rss_per_connection"]))'
}
SIM=(simulate --json --quiet --rate 0 --duration 0 --concurrency 64 --source-ips "$SOURCES" -n "$N")

FIRST=$1
if [ ! -f "$DATA/fleet.key" ]; then
  echo "creating $N devices in $DATA (once)" >&2
  mkdir -p "$DATA"; serve "$FIRST"
  taskset -c "$LOAD_CORE" "$FIRST" "${SIM[@]}" --server http://127.0.0.1:18080 --mqtt 127.0.0.1:18883 \
    --ca "$DATA/ca.pem" --shared-key --key-file "$DATA/fleet.key" > /dev/null
  stop
fi

printf 'listener 18884 127.0.0.1\nallow_anonymous true\nmax_connections -1\nuser root\ncertfile %s\nkeyfile %s\n' \
  "$DATA/server.pem" "$DATA/server.key" > "$DATA.mosquitto.conf"
for round in $(seq 1 "$ROUNDS"); do
  for T in "$@"; do
    serve "$T"
    printf '%-40s ' "$T"
    taskset -c "$LOAD_CORE" "$FIRST" "${SIM[@]}" --hold 5 --existing --key-file "$DATA/fleet.key" \
      --server http://127.0.0.1:18080 --mqtt 127.0.0.1:18883 --ca "$DATA/ca.pem" \
      --server-pid "$PID" | per_connection
    stop
  done
  taskset -c "$SERVER_CORE" /usr/sbin/mosquitto -c "$DATA.mosquitto.conf" > "$DATA.mosquitto.log" 2>&1 &
  PID=$!; sleep 1
  printf '%-40s ' "mosquitto (round $round)"
  taskset -c "$LOAD_CORE" "$FIRST" "${SIM[@]}" --hold 5 --target mqtts://127.0.0.1:18884 --ca "$DATA/ca.pem" \
    --server-pid "$PID" | per_connection
  stop
done
