#!/usr/bin/python3
"""fusescope keeps running through faults of what it watches: the FUSE server killed with
SIGKILL while writers run, a lazy unmount of the watched mount, a FUSE mount that appears
after it started (its events are reported)."""

import os
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

from fusemount import LOAD, is_mounted, testfs_mount
from fusescope_run import Fusescope
from robusthelp import wait_for

PARALLEL = ("--direct-io", "--parallel-direct-writes", "--write-delay-us", "200")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            return r.read().decode()
    except OSError:
        return ""


def dev_of(path):
    st = os.stat(path)
    return f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"


@unittest.skipUnless(os.geteuid() == 0, "needs root (BPF, FUSE mounts)")
class Faults(unittest.TestCase):
    def assert_still_running(self, r, seconds=2.0):
        time.sleep(seconds)
        self.assertTrue(r.alive(), f"fusescope exited {r.proc.returncode}: {r.stderr()}")

    def stop_ok(self, r):
        r.signal(signal.SIGINT)
        self.assertEqual(r.wait(30), 0, r.stderr())

    def test_server_killed_mid_write(self):
        with testfs_mount(*PARALLEL) as m:
            with Fusescope("trace", "--json", "--mount", m.mountpoint) as r, \
                    Fusescope("top", "-b", "--interval", "0.5", "--mount", m.mountpoint) as t:
                r.wait_watching()
                t.wait_watching()
                writers = subprocess.Popen(
                    [LOAD, "parallel", "--file", m.path("db"), "--threads", "4", "--writes",
                     "100000", "--size", "65536"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    self.assertTrue(wait_for(lambda: '"event":"write"' in r.stdout(), 30),
                                    "no write seen before the kill")
                    os.kill(m.pid, signal.SIGKILL)
                    m.proc.wait(10)
                    # the dead connection fails the writers (ENOTCONN): they must not hang
                    writers.wait(30)
                finally:
                    if writers.poll() is None:
                        writers.kill()
                        writers.wait()
                    # SIGKILL leaves the mount (no handler can run): detach it like an admin
                    if is_mounted(m.mountpoint):
                        subprocess.run(["umount", "-l", m.mountpoint], check=False)
                self.assert_still_running(r)
                self.assert_still_running(t, 0.5)
                self.stop_ok(r)
                self.stop_ok(t)

    def test_lazy_unmount_while_watching(self):
        with testfs_mount(*PARALLEL) as m:
            with Fusescope("trace", "--json", "--mount", m.mountpoint) as r, \
                    Fusescope("top", "-b", "--interval", "0.5", "--mount", m.mountpoint) as t:
                r.wait_watching()
                t.wait_watching()
                subprocess.run(["umount", "-l", m.mountpoint], check=True)
                self.assertTrue(wait_for(lambda: m.proc.poll() is not None, 15),
                                "testfs kept running after umount -l")
                self.assert_still_running(r)
                n = t.stdout().count("fusescope top - ")
                self.assertTrue(wait_for(lambda: t.stdout().count("fusescope top - ") > n + 1, 10),
                                "top -b stopped printing after the unmount")
                self.stop_ok(r)
                self.stop_ok(t)

    def test_new_mount_is_reported(self):
        # One process (this test's child) is watched by trace with --pid; the mount it writes
        # to is created after fusescope started. The exporter watches every FUSE mount (its
        # mount table reloads each interval) and must name the new one in its series.
        # (top --pid is not used: a pid that only writes is matched only by trace's per-write
        # events, see the report of issue 9.)
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import os,sys\n"
             "for line in sys.stdin:\n"
             "    fd = os.open(line.strip(), os.O_WRONLY | os.O_CREAT, 0o644)\n"
             "    for i in range(200): os.pwrite(fd, b'x' * 4096, (i % 20) * 4096)\n"
             "    os.close(fd); print('done', flush=True)\n"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        port = free_port()
        try:
            with Fusescope("trace", "--json", "--pid", child.pid) as r, \
                    Fusescope("export", "--listen", f"127.0.0.1:{port}") as e:
                r.wait_watching()
                e.wait_watching()
                with testfs_mount(*PARALLEL) as m:
                    dev = dev_of(m.mountpoint)
                    child.stdin.write(m.path("late") + "\n")
                    child.stdin.flush()
                    self.assertEqual(child.stdout.readline().strip(), "done")
                    self.assertTrue(
                        wait_for(lambda: f'"dev":"{dev}"' in r.stdout(), 10),
                        f"no event on the new mount {dev}: {r.stdout()[-2000:]}")
                    label = f'mount="{m.mountpoint}"'
                    self.assertTrue(wait_for(lambda: label in metrics(port), 15),
                                    f"exporter never named the new mount {m.mountpoint}")
                    self.stop_ok(r)
                    e.signal(signal.SIGTERM)
                    self.assertEqual(e.wait(30), 0, e.stderr())
        finally:
            child.stdin.close()
            child.stdout.close()
            child.wait(10)


if __name__ == "__main__":
    unittest.main(verbosity=2)
