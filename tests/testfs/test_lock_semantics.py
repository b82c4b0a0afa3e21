#!/usr/bin/python3
"""The FOPEN/INIT options really change the kernel's locking of direct-IO writes.

With --write-delay-us every WRITE takes a fixed time in the server, so the wall time of
4 threads x 50 writes shows whether the kernel let them run in parallel (shared i_rwsem,
~50 x delay) or one at a time (exclusive i_rwsem, ~200 x delay). Thresholds are a factor 2
apart from the ideal ratio of 4, so a busy machine does not make them flaky.
"""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fusemount import LOAD, run_load, testfs_mount  # noqa: E402

DELAY_US = "2000"
ARGS = ("--threads", 4, "--writes", 50, "--size", 4096, "--sync-start")


def duration(m, scenario="parallel", name="f"):
    res = run_load(scenario, "--file", m.path(name), *ARGS)
    assert res["total_writes"] == 200, res
    return res["duration_s"]


def best_of(n, fn):
    return min(fn() for _ in range(n))


@unittest.skipUnless(os.geteuid() == 0, "needs root (mounts FUSE)")
class LockSemantics(unittest.TestCase):
    def test_parallel_direct_writes_run_in_parallel(self):
        with testfs_mount("--direct-io", "--parallel-direct-writes",
                          "--write-delay-us", DELAY_US) as m:
            parallel = best_of(2, lambda: duration(m))
            append = duration(m, "append", "a")
        with testfs_mount("--direct-io", "--write-delay-us", DELAY_US) as m:
            serial = duration(m)
        self.assertLess(parallel * 2, serial, f"parallel {parallel:.3f}s vs serial {serial:.3f}s")
        # O_APPEND always takes the exclusive lock, FOPEN_PARALLEL_DIRECT_WRITES or not.
        self.assertLess(parallel * 2, append, f"parallel {parallel:.3f}s vs append {append:.3f}s")

    def test_shared_mapping_serializes_writers(self):
        with testfs_mount("--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap",
                          "--write-delay-us", DELAY_US) as m:
            parallel = best_of(2, lambda: duration(m))
            holder = subprocess.Popen([LOAD, "mmap-holder", "--file", m.path("f"),
                                       "--hold-until-signal"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                self.assertTrue(holder.stderr.readline().startswith("holding"))
                held = duration(m)
            finally:
                holder.terminate()
                holder.communicate(timeout=10)
            after = best_of(2, lambda: duration(m))
        self.assertLess(parallel * 2, held, f"parallel {parallel:.3f}s vs held {held:.3f}s")
        self.assertLess(after * 2, held, f"after unmap {after:.3f}s vs held {held:.3f}s")

    def test_cached_readonly_open_serializes_writers(self):
        with testfs_mount("--direct-io", "--parallel-direct-writes", "--cache-readonly-opens",
                          "--write-delay-us", DELAY_US) as m:
            parallel = best_of(2, lambda: duration(m))
            fd = os.open(m.path("f"), os.O_RDONLY)  # a caching open: inode in cached io mode
            try:
                held = duration(m)
            finally:
                os.close(fd)
        self.assertLess(parallel * 2, held, f"parallel {parallel:.3f}s vs cached {held:.3f}s")


if __name__ == "__main__":
    unittest.main(verbosity=2)
