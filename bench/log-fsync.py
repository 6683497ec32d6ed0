#!/usr/bin/env python3
"""CPU and wall time of one small append + fdatasync, four ways, on the file
system of DIR (default: target/fsync-bench): appending (the file grows, so the
fsync writes the inode too), overwriting zeros written ahead (what the embedded
log does), writing into fallocate()d space, and overwriting zeros written ahead
with O_DIRECT (the record's 4 KiB block rewritten from an aligned buffer, no page
cache). Run it pinned to one core:

    taskset -c 1 python3 bench/log-fsync.py [DIR] [N]

"CPU" is the process's own (getrusage); "core" is the whole pinned core's busy
time from /proc/stat (it also counts the disk's interrupts and kernel threads;
ticks of 10 ms, so use N of 20,000 or more for it).
"""
import mmap
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


def core_busy():
    """Busy seconds of the core this process is pinned to (None if not pinned)."""
    cores = os.sched_getaffinity(0)
    if len(cores) != 1:
        return None
    name = f"cpu{next(iter(cores))} "
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(name):
                ticks = [int(x) for x in line.split()[1:]]
                idle = ticks[3] + ticks[4]
                return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return None


def measure(label, fd, append=None):
    append = append or (lambda: (os.write(fd, RECORD), os.fdatasync(fd)))
    b0, c0, t0 = core_busy(), cpu(), time.monotonic()
    for _ in range(N):
        append()
    c, t = (cpu() - c0) / N * 1e6, (time.monotonic() - t0) / N * 1e6
    b1 = core_busy()
    core = f"   core {(b1 - b0) / N * 1e6:6.1f} µs" if b0 is not None else ""
    print(f"{label:<34} CPU {c:6.1f} µs   wall {t:6.1f} µs{core}")
    os.close(fd)


def direct_appender(fd):
    """Appends RECORD at the end of the data with O_DIRECT: the block holding
    it is kept in an aligned buffer and written whole (two if it straddles)."""
    block = 4096
    buf = mmap.mmap(-1, 2 * block)  # page-aligned, as O_DIRECT needs
    state = {"end": 0}

    def append():
        end = state["end"]
        start = end - end % block
        at = end - start
        buf[at:at + len(RECORD)] = RECORD
        span = block if at + len(RECORD) <= block else 2 * block
        os.pwrite(fd, memoryview(buf)[:span], start)
        os.fdatasync(fd)
        state["end"] = end + len(RECORD)
        if at + len(RECORD) >= block:  # the next record starts in the next block
            buf[:block] = buf[block:]
            buf[block:] = bytes(block)

    return append


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
fd = fresh("direct")
os.write(fd, b"\0" * (size + 4096))
os.fsync(fd)
os.close(fd)
fd = os.open(os.path.join(DIR, "direct"), os.O_WRONLY | os.O_DIRECT)
measure("overwrite zeros ahead, O_DIRECT", fd, direct_appender(fd))
for name in ("append", "ahead", "fallocated", "direct"):
    os.unlink(os.path.join(DIR, name))
