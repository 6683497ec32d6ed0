#!/usr/bin/env bash
# A connect flood against the PUBACK latency of connected devices (issue 11), with
# handshakes and authentication on low-priority threads (`--connect-priority low`, the
# default) and on the device threads (`normal`), side by side in one run.
#
# The server is pinned to core 1, every load generator to core 0. 100 devices publish
# QoS 1 at 10 msg/s each (200-byte payloads) for 30 s from 4 addresses; 8 s in, a
# flood runs for 15 s:
#   spread: 1,000 connects/s from 128 addresses (7.8/s each, under the per-address
#           limit), half with tokens from unregistered keys, half good;
#   hot:    1,000 connects/s with bad tokens from one address (the limit cuts most).
# The flood's devices exist beforehand with one key (`simulate --key-file`), and the
# floods run with `--existing`: no admin API call, connects only.
#
# The flood's generators run at nice 10 (FLOOD_NICE) beside the measuring devices on
# the load core: their TLS handshakes and token signing fill that core, and without
# it the steady devices' PUBACK latency measures their own wait for the load core as
# much as the server (on other machines, as devices are, they would not share one).
#
# The measuring devices themselves run at realtime priority (`chrt -f 1`, when the
# user may; STEADY_RT=0 turns it off): `nice` alone does not keep the generators off
# their core. Linux's scheduler (EEVDF) lets the running thread finish its slice and
# holds back a woken one that has run ahead of its share, whatever their `nice`
# (BENCHMARKS.md, issue 11). A trace of the load core during the flood showed the
# measuring devices' thread waiting 480 times in 4 s (107 ms in all) for the
# generators at nice 10; at realtime priority, twice.
#
# Three ratios per run: its p99 ÷ the quiet run's p99; the p99 of the messages sent
# during the flood ÷ the quiet run's p99 (the strict reading of issue 11's "meanwhile":
# the whole run's p99 mixes in 13 quiet seconds); and the p99 of the messages sent
# during the flood ÷ the p99 of the same run's other messages (`simulate
# --latency-window`), which is immune to the machine changing between runs.
#
#   cargo build --release -p tether-cli
#   bench/connect-flood.sh [OUT_DIR]      (OUT_DIR on tmpfs, e.g. /dev/shm/flood, takes
#                                          the virtual disk's fsync out of the tail)
#   PRIORITIES="low" RUNS="quiet spread" FLOOD_NICE=0 bench/connect-flood.sh   (a subset;
#                                          FLOOD_NICE=0: the generators as before 2026-12-06;
#                                          STEADY_RT=0: the measuring devices as before 12-07)
#   TRACE=sched bench/connect-flood.sh    (needs perf and root: records the scheduler for 4 s
#                                          in the middle of each flood and prints who waited
#                                          for the server's core behind whom, bench/sched-waits.py)
#
# Needs: taskset, python3, 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${TETHER_BIN:-target/release/tether}
OUT=${1:-/tmp/tether-connect-flood}
SERVER_CORE=${SERVER_CORE:-1}
LOAD_CORE=${LOAD_CORE:-0}
[ -x "$T" ] || { echo "build first: cargo build --release -p tether-cli" >&2; exit 2; }
ulimit -n 20000
rm -rf "$OUT"; mkdir -p "$OUT"
DATA=$OUT/tether-data
export TETHER_ADMIN_TOKEN=connect-flood-admin-token
SPID=

serve() { # priority
  taskset -c "$SERVER_CORE" "$T" serve --data-dir "$DATA" --http-addr 127.0.0.1:29180 \
    --mqtt-addr 127.0.0.1:29883 --https-addr 127.0.0.1:29443 --pubsub-addr off --grpc-addr off \
    --max-connections 18000 --connect-priority "$1" >> "$OUT/tether.log" 2>&1 &
  SPID=$!
  for _ in $(seq 1 100); do
    curl -sf http://127.0.0.1:29180/healthz > /dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "tether serve did not start: see $OUT/tether.log" >&2; exit 1
}
stop() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null || true; SPID=; }
trap stop EXIT

STEADY_WRAP=()
if [ "${STEADY_RT:-1}" != 0 ]; then
  if chrt -f 1 true 2> /dev/null; then
    STEADY_WRAP=(chrt -f 1)
  else
    echo "cannot run the measuring devices at realtime priority (chrt -f): they share the load core with the flood as equals" >&2
  fi
fi

sim() { # registry, args…
  local registry=$1 wrap=(); shift
  if [ -n "${SIM_WRAP:-}" ]; then wrap=("${STEADY_WRAP[@]}"); fi
  "${wrap[@]}" taskset -c "$LOAD_CORE" nice -n "${SIM_NICE:-0}" "$T" simulate --json --quiet --key-file "$OUT/device.key" \
    --server http://127.0.0.1:29180 --mqtt 127.0.0.1:29883 --ca "$DATA/ca.pem" \
    --registry "$registry" "$@"
}
# The flood runs from about 7.5 to 22.5 s of the steady devices' publishing (it starts
# 8 s after they are launched, and they connect first): messages sent from 7 to 24 s
# are "in the flood", the rest of the same run is its quiet baseline.
STEADY=(--existing -n 100 --rate 10 --duration 30 --payload 200 --source-ips 127.0.0.50-127.0.0.53
        --latency-window 7..24)
FLOOD=(--existing --rate 0 --duration 0 --ramp 500)
flood() { SIM_NICE=${FLOOD_NICE:-10} sim "$@"; }

serve low
echo "devices (not measured)" >&2
sim steady -n 100 --rate 0 --duration 0 --source-ips 127.0.0.50-127.0.0.53 > /dev/null
sim flood-good -n 7500 --rate 0 --duration 0 --source-ips 127.0.2.1-127.0.2.64 > /dev/null
sim flood-bad -n 15000 --rate 0 --duration 0 --source-ips 127.0.1.1-127.0.1.64 > /dev/null
stop

run() { # priority, name, flood…
  local priority=$1 name=$2; shift 2
  echo "  $priority: $name" >&2
  serve "$priority"
  SIM_WRAP=1 sim steady "${STEADY[@]}" > "$OUT/$priority.$name.steady.json" &
  local steady=$!
  local floods=() tracer=
  if [ "$name" != quiet ]; then
    sleep 8
    if [ "${TRACE:-}" = sched ]; then
      (sleep 6; taskset -c "$LOAD_CORE" perf record -q -m 32M -a -e sched:sched_switch \
        -e sched:sched_wakeup -o "$OUT/$priority.$name.sched.data" -- sleep 4 > /dev/null 2>&1) &
      tracer=$!
    fi
    case $name in
      spread)
        flood flood-bad -n 7500 "${FLOOD[@]}" --wrong-key --source-ips 127.0.1.1-127.0.1.64 \
          > "$OUT/$priority.$name.bad.json" &
        floods+=($!)
        flood flood-good -n 7500 "${FLOOD[@]}" --source-ips 127.0.2.1-127.0.2.64 \
          > "$OUT/$priority.$name.good.json" &
        floods+=($!) ;;
      hot)
        flood flood-bad -n 15000 --existing --rate 0 --duration 0 --ramp 1000 --wrong-key --source-ips 127.0.3.1 \
          > "$OUT/$priority.$name.bad.json" &
        floods+=($!) ;;
    esac
  fi
  wait "$steady"
  for f in "${floods[@]}"; do wait "$f" || true; done
  stop
  if [ -n "$tracer" ]; then
    wait "$tracer" || true
    perf script -i "$OUT/$priority.$name.sched.data" -F comm,tid,cpu,time,event,trace 2> /dev/null \
      | python3 bench/sched-waits.py --cpu "$SERVER_CORE" /dev/stdin > "$OUT/$priority.$name.waits.txt" \
      || echo "no scheduler trace for $priority $name (perf needs root)" >&2
  fi
}

echo "runs:" >&2
for priority in ${PRIORITIES:-low normal}; do
  for name in ${RUNS:-quiet spread hot}; do run "$priority" "$name"; done
done

python3 - "$OUT" "${PRIORITIES:-low normal}" "${RUNS:-quiet spread hot}" <<'PY'
import json, os, sys
out, priorities, runs = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def load(name):
    path = os.path.join(out, name)
    return json.load(open(path)) if os.path.exists(path) else None
print("| connect priority | flood | steady PUBACK p50 / p99 / p99.9 / max (µs) | p99 ÷ quiet | p99 7–24 s ÷ quiet | p99 7–24 s ÷ rest of the run | acked / sent | flood: connected, refused, failed |")
print("|---|---|---:|---:|---:|---:|---:|---|")
for priority in priorities:
    quiet = load(f"{priority}.quiet.steady.json")
    quiet = quiet["puback_latency"]["p99_us"] if quiet else None
    for name in runs:
        s = load(f"{priority}.{name}.steady.json")
        p = s["puback_latency"]
        floods = [load(f"{priority}.{name}.{k}.json") for k in ("bad", "good")]
        floods = [f for f in floods if f]
        flood = ", ".join(f"{f['connected']} / {f['refused']} / {f['failed']}" for f in floods) or "none"
        ratio = f"{p['p99_us'] / quiet:.2f}" if quiet else "(no quiet run)"
        inside, outside = s.get("puback_latency_in_window"), s.get("puback_latency_outside_window")
        same_run = f"{inside['p99_us'] / outside['p99_us']:.2f}" if inside and outside else "-"
        strict = f"{inside['p99_us'] / quiet:.2f}" if inside and quiet else "-"
        print(f"| {priority} | {name} | {p['p50_us']:,} / {p['p99_us']:,} / {p['p999_us']:,} / {p['max_us']:,} "
              f"| {ratio} | {strict} | {same_run} | {s['acked_total']} / {s['sent_total']} | {flood} |")
for priority in priorities:
    for name in runs:
        waits = os.path.join(out, f"{priority}.{name}.waits.txt")
        if os.path.exists(waits):
            print(f"\nscheduler, 4 s of {priority} {name} (server core):")
            print(open(waits).read().rstrip())
PY
