#!/usr/bin/env bash
# Tether beside Mosquitto on the same core, in one run: each server pinned to core 1
# (taskset), the load (`tether simulate`) on core 0; the same certificate, the same
# CONNECT bytes (IoT Core client ids and ES256 JWTs), TLS 1.3. Prints one table with
# the ratios; the JSON reports stay in the output directory.
#
#   cargo build --release -p tether-cli
#   bench/vs-mosquitto.sh [OUT_DIR]
#
# Needs: mosquitto (Debian's /usr/sbin/mosquitto), taskset, python3, 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${TETHER_BIN:-target/release/tether}
OUT=${1:-/tmp/tether-vs-mosquitto}
SERVER_CORE=${SERVER_CORE:-1}
LOAD_CORE=${LOAD_CORE:-0}
[ -x "$T" ] || { echo "build first: cargo build --release -p tether-cli" >&2; exit 2; }
command -v /usr/sbin/mosquitto >/dev/null || { echo "mosquitto is not installed" >&2; exit 2; }
ulimit -n 20000
rm -rf "$OUT"; mkdir -p "$OUT"
DATA=$OUT/tether-data
export TETHER_ADMIN_TOKEN=vs-mosquitto-admin-token

taskset -c "$SERVER_CORE" "$T" serve --data-dir "$DATA" --http-addr 127.0.0.1:18080 \
  --mqtt-addr 127.0.0.1:18883 --https-addr 127.0.0.1:18443 --pubsub-addr off --grpc-addr off \
  --max-connections 15000 --connect-rate-per-ip 0 > "$OUT/tether.log" 2>&1 &
TPID=$!
trap 'kill $TPID ${MPID:-} 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do [ -f "$DATA/server.key" ] && break; sleep 0.2; done
sleep 1
printf 'listener 18884 127.0.0.1\nallow_anonymous true\nmax_connections -1\nuser root\ncertfile %s\nkeyfile %s\n' \
  "$DATA/server.pem" "$DATA/server.key" > "$OUT/mosquitto.conf"
taskset -c "$SERVER_CORE" /usr/sbin/mosquitto -c "$OUT/mosquitto.conf" > "$OUT/mosquitto.log" 2>&1 &
MPID=$!
sleep 1

SIM=(taskset -c "$LOAD_CORE" "$T" simulate --json --quiet --shared-key)
TETHER=(--server http://127.0.0.1:18080 --mqtt 127.0.0.1:18883 --ca "$DATA/ca.pem" --server-pid "$TPID")
MOSQ=(--target mqtts://127.0.0.1:18884 --ca "$DATA/ca.pem" --server-pid "$MPID")

run() { # name, args…
  local name=$1; shift
  echo "  $name" >&2
  "${SIM[@]}" "${TETHER[@]}" "$@" > "$OUT/$name.tether.json"
  "${SIM[@]}" "${MOSQ[@]}" "$@" > "$OUT/$name.mosquitto.json"
}

echo "devices for Tether (not measured)" >&2
"${SIM[@]}" "${TETHER[@]}" -n 2000 --rate 0 --duration 0 > /dev/null
echo "runs:" >&2
run connect   -n 2000 --rate 0 --duration 0 --concurrency 64 --reconnect
run resume    -n 2000 --rate 0 --duration 0 --concurrency 64 --reconnect --resume
run qos1-100  -n 100  --rate 100 --duration 15 --payload 100
run fleet     -n 2000 --rate 1   --duration 20 --payload 100
run saturate  -n 1000 --rate 100 --duration 15 --payload 100 --inflight 10

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(name, who):
    return json.load(open(os.path.join(out, f"{name}.{who}.json")))
def f(v, unit=""):
    return "—" if v is None else (f"{v:,.1f}{unit}" if isinstance(v, float) else f"{v:,}{unit}")
rows = []
c_t, c_m = load("connect", "tether"), load("connect", "mosquitto")
rows.append(("fresh TLS connect (+ ES256 JWT + registry for Tether): server CPU per connect",
             c_t["server_cpu_per_connect_us"], c_m["server_cpu_per_connect_us"], "µs"))
rows.append(("reconnect with the same token, full TLS handshake: server CPU per connect",
             c_t["reconnect"]["server_cpu_per_connect_us"], c_m["reconnect"]["server_cpu_per_connect_us"], "µs"))
r_t, r_m = load("resume", "tether"), load("resume", "mosquitto")
rows.append(("reconnect storm (TLS resumption + the same token): server CPU per connect",
             r_t["reconnect"]["server_cpu_per_connect_us"], r_m["reconnect"]["server_cpu_per_connect_us"], "µs"))
for name, label in [("qos1-100", "QoS 1, 100 devices × 100 msg/s"),
                    ("fleet", "QoS 1, 2,000 devices × 1 msg/s"),
                    ("saturate", "QoS 1, 1,000 devices × 100 msg/s offered")]:
    t, m = load(name, "tether"), load(name, "mosquitto")
    rows.append((f"{label}: server CPU per message", t["server_cpu_per_message_us"], m["server_cpu_per_message_us"], "µs"))
    rows.append((f"{label}: messages/s", t["messages_per_sec"], m["messages_per_sec"], ""))
    for q in ("p50_us", "p99_us"):
        tp = (t["puback_latency"] or {}).get(q); mp = (m["puback_latency"] or {}).get(q)
        rows.append((f"{label}: PUBACK {q[:3]}", tp, mp, "µs"))
    if name == "saturate":
        # Whether the offered rate saturated the server's core: at 100 % busy the row is
        # the server's ceiling; below, both kept up and the load generator is the limit.
        busy = lambda d: 100 * d["server_cpu_publish_secs"] / d["publish_secs"] if d["publish_secs"] else None
        rows.append((f"{label}: server core busy", busy(t), busy(m), "%"))
        saturated = [who for who, d in (("Tether", t), ("Mosquitto", m)) if (busy(d) or 0) >= 90]
print("| work | Tether | Mosquitto | Tether ÷ Mosquitto |")
print("|---|---:|---:|---:|")
for label, t, m, unit in rows:
    ratio = "—" if not t or not m else f"{t / m:.2f}×"
    print(f"| {label} | {f(t, ' ' + unit if unit else '')} | {f(m, ' ' + unit if unit else '')} | {ratio} |")
if not saturated:
    print("\nNeither server's core was 90 % busy in the saturation run: the load generator was"
          " the limit, and its messages/s compare nothing.")
fresh = c_t["server_cpu_per_connect_us"]
for label, v in [("same token", c_t["reconnect"]["server_cpu_per_connect_us"]),
                 ("TLS resumption + same token", r_t["reconnect"]["server_cpu_per_connect_us"])]:
    if fresh and v:
        print(f"\nTether reconnect ({label}) ÷ Tether fresh connect: {v / fresh:.2f}×", end="")
print()
PY
