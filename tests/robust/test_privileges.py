#!/usr/bin/python3
"""After attaching, trace, top, diagnose and export keep only CAP_BPF, CAP_PERFMON,
CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (include/fusescope/core/privileges.h), in every
thread, with no_new_privs; and they still work: trace sees writes, top keeps printing,
diagnose reports (the exporter's census is checked in test_exporter.py)."""

import os
import signal
import unittest

from fusemount import run_load, testfs_mount
from fusescope_run import Fusescope
from robusthelp import wait_for

# CAP_DAC_READ_SEARCH 2, CAP_SYS_PTRACE 19, CAP_PERFMON 38, CAP_BPF 39
KEPT = (1 << 2) | (1 << 19) | (1 << 38) | (1 << 39)
PARALLEL = ("--direct-io", "--parallel-direct-writes")


def status(pid, task=None):
    path = f"/proc/{pid}/status" if task is None else f"/proc/{pid}/task/{task}/status"
    with open(path) as f:
        return {k: v.strip() for k, v in (l.split(":", 1) for l in f if ":" in l)}


@unittest.skipUnless(os.geteuid() == 0, "needs root (BPF, FUSE mounts)")
class Privileges(unittest.TestCase):
    def assert_dropped(self, r):
        for task in os.listdir(f"/proc/{r.pid}/task"):
            st = status(r.pid, task)
            for k in ("CapEff", "CapPrm", "CapBnd"):
                self.assertEqual(int(st[k], 16), KEPT, f"{r.args} thread {task} {k}")
            self.assertEqual(int(st["CapInh"], 16), 0)
            self.assertEqual(int(st["CapAmb"], 16), 0)
            self.assertEqual(st["NoNewPrivs"], "1")
        self.assertNotIn("warning", r.stderr())

    def test_views_drop_and_still_work(self):
        with testfs_mount(*PARALLEL) as m:
            with Fusescope("trace", "--json", "--mount", m.mountpoint) as r, \
                    Fusescope("top", "-b", "--interval", "0.5", "--mount", m.mountpoint) as t, \
                    Fusescope("diagnose", "--duration", "4", "--json", "--mount",
                              m.mountpoint) as d:
                r.wait_watching()
                t.wait_watching()
                d.wait_watching()
                for p in (r, t, d):
                    self.assert_dropped(p)
                run_load("parallel", "--file", m.path("db"), "--threads", "2", "--writes", "50",
                         "--size", "65536")
                self.assertTrue(wait_for(lambda: r.stdout().count('"event":"write"') >= 100, 15),
                                r.stdout()[-1000:])
                n = t.stdout().count("fusescope top - ")
                self.assertTrue(wait_for(lambda: t.stdout().count("fusescope top - ") > n + 4, 15))
                self.assertIn(d.wait(60), (0, 5), d.stderr())
                self.assertIn('"findings"', d.stdout())
                for p in (r, t):
                    p.signal(signal.SIGINT)
                    self.assertEqual(p.wait(30), 0, p.stderr())


if __name__ == "__main__":
    unittest.main(verbosity=2)
