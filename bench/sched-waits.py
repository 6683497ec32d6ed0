#!/usr/bin/env python3
"""Who waited for the server's core, and who held it, from a scheduler trace.

    perf record -a -e sched:sched_switch -e sched:sched_wakeup -o trace.data -- sleep 4
    perf script -i trace.data -F comm,tid,cpu,time,event,trace > trace.txt
    bench/sched-waits.py trace.txt [--cpu 1] [--who tokio-rt-worker] [--who tether-log-writ]

For each thread whose name starts with a --who prefix, on --cpu: the time from each
wake-up to the moment it got the core, the waits over 100, 300 and 500 µs, which
thread woke it and which one had the core when it got it (the one it waited behind);
then, for the server's threads, how long each ran at a stretch. `bench/connect-flood.sh`
runs it with TRACE=sched.
"""
import argparse
import collections
import re

LINE = re.compile(r"\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:(\w+):\s+(.*)")
WAKEUP = re.compile(r"comm=(.*?) pid=(\d+) .*target_cpu=(\d+)")
SWITCH = re.compile(r"prev_comm=(.*?) prev_pid=(\d+) .*next_comm=(.*?) next_pid=(\d+)")
RUNNERS = ("tokio-rt-worker", "tether-admit", "tether-log-writ", "sqlx-sqlite-wor")


def main():
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("trace", help="perf script -F comm,tid,cpu,time,event,trace output")
    args.add_argument("--cpu", type=int, default=1, help="the server's core (default 1)")
    args.add_argument("--who", action="append", help="thread name prefix (repeatable; "
                      "default: tokio-rt-worker and tether-log-writ)")
    a = args.parse_args()
    who = a.who or ["tokio-rt-worker", "tether-log-writ"]

    woken = {}  # tid -> (time, waker as name@cpu, the --who prefix it matched)
    waits = collections.defaultdict(list)  # prefix -> [(µs, waker, holder)]
    runs = collections.defaultdict(list)  # comm -> [µs]
    running, since = None, None
    with open(a.trace, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            comm, _tid, cpu, t, event, rest = m.groups()
            t = float(t)
            if event == "sched_wakeup":
                w = WAKEUP.search(rest)
                if w and int(w.group(3)) == a.cpu:
                    prefix = next((p for p in who if w.group(1).startswith(p)), None)
                    if prefix:
                        # The waker's CPU tells the server's threads from the load
                        # generator's, which may have the same names.
                        woken.setdefault(int(w.group(2)), (t, f"{comm}@{cpu.lstrip('0') or '0'}", prefix))
            elif event == "sched_switch" and int(cpu) == a.cpu:
                s = SWITCH.search(rest)
                if not s:
                    continue
                if running is not None:
                    runs[running].append((t - since) * 1e6)
                running, since = s.group(3), t
                started = woken.pop(int(s.group(4)), None)
                if started:
                    t0, waker, prefix = started
                    waits[prefix].append(((t - t0) * 1e6, waker, s.group(1)))

    for prefix in who:
        w = sorted(waits[prefix], reverse=True)
        over = [x for x in w if x[0] > 100]
        print(f"{prefix}: {len(w)} wake-ups; waits over 100 µs {len(over)}, over 300 µs "
              f"{sum(1 for x in w if x[0] > 300)}, over 500 µs {sum(1 for x in w if x[0] > 500)}; "
              f"those over 100 µs {sum(x[0] for x in over) / 1000:.1f} ms in all")
        print("  behind:", ", ".join(f"{c} {n}" for c, n in
                                     collections.Counter(x[2] for x in over).most_common(6)))
        print("  woken by:", ", ".join(f"{c} {n}" for c, n in
                                       collections.Counter(x[1] for x in over).most_common(6)))
        print("  longest (µs, woken by, behind):",
              ", ".join(f"{x[0]:.0f} {x[1]} {x[2]}" for x in w[:5]))
    for comm in RUNNERS:
        r = sorted(x for c, vs in runs.items() if c.startswith(comm) for x in vs)
        if r:
            print(f"{comm} runs: {len(r)}, {sum(r) / 1000:.0f} ms in all; over 1 ms "
                  f"{sum(1 for x in r if x > 1000)}; longest {', '.join(f'{x:.0f}' for x in r[-5:])} µs")


if __name__ == "__main__":
    main()
