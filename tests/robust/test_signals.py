#!/usr/bin/python3
"""Every long-running command (trace, top -b, export, diagnose) exits cleanly on SIGINT,
SIGTERM and SIGHUP with its documented status, and after any exit, SIGKILL included, none
of the BPF programs or links it held stays in the kernel and it left no mount behind."""

import os
import signal
import socket
import time
import unittest

from fusemount import testfs_mount
from fusescope_run import Fusescope
from robusthelp import assert_released, bpf_fds, mount_table


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# (name, args before --mount, exit statuses a stop signal may give); each is attached once
# its status stream says "watching"
COMMANDS = [
    ("trace", ["trace", "--json"], {0}),
    ("top -b", ["top", "-b", "--interval", "0.5"], {0}),
    ("export", ["export", "--listen", "127.0.0.1:{port}"], {0}),
    # diagnose stops watching early and reports: 0 healthy, 5 findings
    ("diagnose", ["diagnose", "--duration", "600"], {0, 5}),
]


def foreign(before, after):
    """Mounts in `after` but not `before` that are not another test's testfs mount."""
    return [m for m in set(after) - set(before)
            if not (m.startswith("/tmp/fusescope-testfs-") or m.startswith("/tmp/fusescope-demo"))]


@unittest.skipUnless(os.geteuid() == 0, "needs root (BPF, FUSE mounts)")
class Signals(unittest.TestCase):
    def run_one(self, m, args, sig, want):
        args = [a.format(port=free_port()) for a in args]
        before = mount_table()
        with Fusescope(*args, "--mount", m.mountpoint) as r:
            self.assertEqual(r.wait_watching()["pid"], r.pid)
            progs, links = bpf_fds(r.pid)
            self.assertTrue(progs and links, f"no BPF programs/links seen in /proc/{r.pid}/fdinfo")
            r.signal(sig)
            rc = r.wait(30)  # and its status stream's exit line says rc
            if sig == signal.SIGKILL:
                self.assertEqual(rc, -signal.SIGKILL)
                self.assertEqual(r.status("exit"), [])
            else:
                self.assertIn(rc, want, f"{args} on {sig.name}: {r.stderr()}")
                self.assertNotIn("error", r.stderr().lower(), r.stderr())
                self.assertEqual(r.status_lines()[-1], {"status": "exit", "code": rc})
                self.assertEqual(r.health()["view"], args[0])
        assert_released(self, progs, links)
        self.assertEqual(foreign(before, mount_table()), [], "fusescope left a mount")

    def test_stop_signals(self):
        with testfs_mount("--direct-io", "--parallel-direct-writes") as m:
            for name, args, want in COMMANDS:
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL):
                    with self.subTest(command=name, signal=sig.name):
                        self.run_one(m, args, sig, want)

    def test_signal_during_startup(self):
        # A signal that arrives while the programs are still loading or the census runs must
        # not leave anything either (the process may exit before or after attaching).
        with testfs_mount("--direct-io") as m:
            for delay in (0.05, 0.3, 1.0):
                with self.subTest(delay=delay):
                    with Fusescope("trace", "--json", "--mount", m.mountpoint) as r:
                        time.sleep(delay)
                        seen = set(), set()
                        for _ in range(3):
                            p, l = bpf_fds(r.pid)
                            seen = (seen[0] | p, seen[1] | l)
                        r.signal(signal.SIGINT)
                        rc = r.wait(60)
                        self.assertEqual(rc, 0, r.stderr())
                    assert_released(self, *seen)


if __name__ == "__main__":
    unittest.main(verbosity=2)
