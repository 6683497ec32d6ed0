#!/usr/bin/env python3
"""CPU and wall time of one small append + fdatasync, three ways, on the file
system of DIR (default: target/fsync-bench): appending (the file grows, so the
fsync writes the inode too), overwriting zeros written ahead (what the embedded
log does), and writing into fallocate()d space. Run it pinned to one core:

    taskset -c 1 python3 bench/log-fsync.py [DIR] [N]
"""
import os
import resource
import sys
import time

DIR = sys.argv[1] if len(sys.argv) > 1 else "target/fsync-bench"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
RECORD = b"x" * 200


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(label, fd):
    c0, t0 = cpu(), time.monotonic()
    for _ in range(N):
        os.write(fd, RECORD)
        os.fdatasync(fd)
    c, t = (cpu() - c0) / N * 1e6, (time.monotonic() - t0) / N * 1e6
    print(f"{label:<34} CPU {c:6.1f} µs   wall {t:6.1f} µs")
    os.close(fd)


def fresh(name):
    path = os.path.join(DIR, name)
    if os.path.exists(path):
        os.unlink(path)
    return os.open(path, os.O_CREAT | os.O_WRONLY)


os.makedirs(DIR, exist_ok=True)
size = N * len(RECORD) + 4096
measure("append (the file grows)", fresh("append"))
fd = fresh("ahead")
os.write(fd, b"\0" * size)
os.fsync(fd)
os.lseek(fd, 0, os.SEEK_SET)
measure("overwrite zeros written ahead", fd)
fd = fresh("fallocated")
os.posix_fallocate(fd, 0, size)
os.fsync(fd)
measure("write into fallocate()d space", fd)
for name in ("append", "ahead", "fallocated"):
    os.unlink(os.path.join(DIR, name))
