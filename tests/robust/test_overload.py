#!/usr/bin/python3
"""Overload: a ring buffer flood (trace SIGSTOPped while writers run) is counted and shown,
and the watched workload does not wait for fusescope; inode churn (many distinct files
created, written, removed in batches) keeps fusescope's memory bounded."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

from fusemount import LOAD, run_load, testfs_mount
from fusescope_run import FUSESCOPE, Fusescope
from robusthelp import wait_for
from whowhere import free_port, scrape, series

PARALLEL = ("--direct-io", "--parallel-direct-writes")
CHURN_FILES = int(os.environ.get("FUSESCOPE_CHURN_FILES", "20000"))


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@unittest.skipUnless(os.geteuid() == 0, "needs root (BPF, FUSE mounts)")
class Overload(unittest.TestCase):
    def test_ringbuf_flood_is_counted_and_does_not_stall(self):
        with testfs_mount(*PARALLEL) as m:
            run_load("parallel", "--file", m.path("db"), "--threads", "1", "--writes", "1",
                     "--size", "4096")
            # baseline: the same workload without a stopped reader
            t0 = time.monotonic()
            run_load("parallel", "--file", m.path("db"), "--threads", "4", "--writes", "5000",
                     "--size", "4096")
            alone = time.monotonic() - t0
            with Fusescope("trace", "--json", "--mount", m.mountpoint) as r:
                r.wait_watching()
                r.signal(signal.SIGSTOP)  # a reader that does not read: the 1 MB ring fills
                try:
                    t0 = time.monotonic()
                    # 20000 write events, far more than the ring holds
                    run_load("parallel", "--file", m.path("db"), "--threads", "4", "--writes",
                             "5000", "--size", "4096", timeout=120)
                    stopped = time.monotonic() - t0
                finally:
                    r.signal(signal.SIGCONT)
                time.sleep(1.5)
                r.signal(signal.SIGINT)
                self.assertEqual(r.wait(60), 0, r.stderr())
                lost = r.health().get("events_lost")
                err = r.stderr()
            self.assertIsNotNone(lost, f"trace did not report its health: {err}")
            self.assertGreater(lost, 0, f"trace did not report lost events: {err}")
            # the workload did not wait for the stopped reader (generous: shared 2 cores)
            self.assertLess(stopped, max(10 * alone, alone + 20),
                            f"writers took {stopped:.1f}s with the reader stopped, {alone:.1f}s "
                            "without")

    def test_flood_shown_by_top(self):
        with testfs_mount() as m:  # caching opens: each one makes the file hold cache mode
            run_load("parallel", "--file", m.path("db"), "--threads", "1", "--writes", "1",
                     "--size", "4096")
            with Fusescope("top", "-b", "--interval", "0.5", "--mount", m.mountpoint) as t:
                t.wait_watching()
                t.signal(signal.SIGSTOP)
                try:
                    # top does not ask for write events, but every caching open that makes
                    # the file hold cache mode is one
                    run_load("cached-reader", "--file", m.path("db"), "--opens", "20000",
                             "--open-hold-ms", "0", timeout=180)
                finally:
                    t.signal(signal.SIGCONT)
                shown = wait_for(lambda: re.search(r"DROPPED: [1-9]\d* events lost", t.stdout()),
                                 10)
                t.signal(signal.SIGINT)
                self.assertEqual(t.wait(30), 0, t.stderr())
                self.assertTrue(shown, "top never showed the lost events: " + t.stdout()[-600:])
                # and said so on its status stream when the screen did
                self.assertGreater(t.health().get("events_lost", 0), 0, t.status_lines())

    def test_request_slots_taken_over_are_counted_and_writes_stay_exact(self):
        # --service-time keeps each FUSE_WRITE's start in a direct-mapped slot chosen by the
        # request's address. With one slot (--service-time-slots 1) and 32 async writes in
        # flight (fio's libaio, FUSE_ASYNC_DIO, up to testfs' max_background of 64) they all
        # share it: every send that finds it taken loses the other's sample and counts it
        # (req_map_full). No write may be lost. (With the default 4096 slots a collision
        # depends on which addresses the slab hands out: the test failed by chance.)
        if not shutil.which("fio"):
            self.skipTest("needs fio")
        jobs, ios = 4, 4000  # fewer than the file's 4096 blocks: fio stops at its size
        doctor = subprocess.run([FUSESCOPE, "--service-time",
                                 "--service-time-slots", "1", "doctor", "--json"],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(json.loads(doctor.stdout)["request_slots"], 1, doctor.stderr)
        with testfs_mount(*PARALLEL, "--write-delay-us", "200") as m:
            with open(m.path("db"), "wb") as f:
                f.truncate(16 << 20)
            port = free_port()
            with Fusescope("--service-time", "--service-time-slots", "1", "export", "--listen",
                           f"127.0.0.1:{port}", "--mount", m.mountpoint) as r:
                r.wait_watching()
                p = subprocess.run(
                    ["fio", "--name=w", f"--filename={m.path('db')}", "--size=16M", "--bs=4k",
                     "--rw=randwrite", "--norandommap", "--direct=1", "--allow_file_create=0",
                     "--ioengine=libaio", "--iodepth=8", f"--numjobs={jobs}",
                     f"--number_ios={ios}", "--group_reporting", "--output-format=json"],
                    capture_output=True, text=True, timeout=300)
                self.assertEqual(p.returncode, 0, p.stderr)
                issued = json.loads(p.stdout[p.stdout.index("{"):])["jobs"][0]["write"][
                    "total_ios"]
                counted = lambda: sum(v for _, v in series(scrape(port),  # noqa: E731
                                                           "fusescope_writes_total"))
                wait_for(lambda: counted() == issued, 10)  # a refresh later
                writes = counted()
                r.signal(signal.SIGINT)
                self.assertEqual(r.wait(60), 0, r.stderr())
                health = r.health()
        self.assertEqual(issued, jobs * ios)
        self.assertEqual(writes, issued)
        self.assertGreater(health.get("req_map_full", 0), 0, health)

    def test_inode_churn_memory_bounded(self):
        with testfs_mount(*PARALLEL) as m:
            with Fusescope("top", "-b", "--interval", "0.5", "--mount", m.mountpoint) as t:
                t.wait_watching()
                time.sleep(1)
                base = vm_rss_kb(t.pid)
                samples = []
                buf = b"x" * 4096
                # batches of 5000 live files, then removed (the test filesystem keeps a
                # descriptor per live file, and its RLIMIT_NOFILE is finite)
                for i in range(CHURN_FILES):
                    p = m.path(f"f{i}")
                    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
                    os.write(fd, buf)
                    os.close(fd)
                    if i % 5000 == 4999:
                        time.sleep(1)  # let top take a snapshot with them
                        samples.append(vm_rss_kb(t.pid))
                        for j in range(i - 4999, i + 1):
                            os.unlink(m.path(f"f{j}"))
                time.sleep(1.5)
                samples.append(vm_rss_kb(t.pid))
                self.assertTrue(t.alive(), t.stderr())
                seen = max(int(n) for n in re.findall(r"inodes: (\d+)", t.stdout()))
                t.signal(signal.SIGINT)
                self.assertEqual(t.wait(30), 0, t.stderr())
            growth = samples[-1] - base
            per_inode = growth * 1024 / CHURN_FILES
            print(f"VmRSS kB: start {base}, samples {samples}; {per_inode:.0f} B/inode; "
                  f"top showed up to {seen} inodes", flush=True)
            self.assertGreater(seen, 0)
            self.assertLess(samples[-1], 256 * 1024, f"RSS {samples}")
            self.assertLess(per_inode, 4096, f"RSS grew {growth} kB for {CHURN_FILES} inodes")


if __name__ == "__main__":
    unittest.main(verbosity=2)
