#!/usr/bin/env python3
"""The console's device list at scale: fills a registry with N devices through the
admin API, then walks every page exactly as the console asks for it (50 devices, the
list's fieldMask, then the presence call for those numIds) and prints the latency of
each call: first page, every page, last page.

    bench/console-paging.py --url http://127.0.0.1:8080 --token TOKEN --devices 100000
"""
import argparse
import json
import statistics
import sys
import threading
import time
import urllib.parse
import http.client

FIELDS = ("id,num_id,blocked,last_heartbeat_time,last_event_time,last_state_time,"
          "last_config_ack_time,last_error_time,last_error_status,gateway_config")


class Api:
    def __init__(self, url, token):
        u = urllib.parse.urlparse(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers=self.headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300 and r.status != 409:
            raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
        return json.loads(data or b"{}")


def fill(url, token, registry, n, threads):
    done = [0]
    lock = threading.Lock()

    def work(k):
        api = Api(url, token)
        for i in range(k, n, threads):
            api.call("POST", f"/v1/{registry}/devices", {"id": f"d{i:06d}"})
            with lock:
                done[0] += 1
                if done[0] % 10000 == 0:
                    print(f"  {done[0]} devices", file=sys.stderr)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def ms(samples):
    s = sorted(samples)
    return (f"median {statistics.median(s):.2f} ms, p99 {s[int(len(s) * 0.99) - 1]:.2f} ms, "
            f"max {s[-1]:.2f} ms over {len(s)} calls")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--devices", type=int, default=100000)
    p.add_argument("--project", default="acme")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--no-fill", action="store_true", help="the registry is already filled")
    a = p.parse_args()
    parent = f"projects/{a.project}/locations/us-central1"
    registry = f"{parent}/registries/paging"
    api = Api(a.url, a.token)
    api.call("POST", f"/v1/{parent}/registries", {"id": "paging"})
    if not a.no_fill:
        t0 = time.time()
        fill(a.url, a.token, registry, a.devices, a.threads)
        print(f"created {a.devices} devices in {time.time() - t0:.0f} s", file=sys.stderr)
    # A fresh connection: the server closes one left idle while the registry filled.
    api = Api(a.url, a.token)
    lists, presences, token = [], [], ""
    first = last = None
    while True:
        q = {"pageSize": 50, "fieldMask": FIELDS}
        if token:
            q["pageToken"] = token
        t = time.perf_counter()
        page = api.call("GET", f"/v1/{registry}/devices?{urllib.parse.urlencode(q)}")
        lists.append((time.perf_counter() - t) * 1000)
        ids = ",".join(d["numId"] for d in page.get("devices", []))
        t = time.perf_counter()
        api.call("GET", "/console/api/presence?" + urllib.parse.urlencode(
            {"registry": registry, "numIds": ids}))
        presences.append((time.perf_counter() - t) * 1000)
        first = first if first is not None else lists[-1]
        token = page.get("nextPageToken", "")
        if not token:
            last = lists[-1]
            break
    print(f"device list, {a.devices} devices, pages of 50: first page {first:.2f} ms, "
          f"last page {last:.2f} ms; every page: {ms(lists)}")
    print(f"presence of a page's 50 devices: {ms(presences)}")


if __name__ == "__main__":
    main()
