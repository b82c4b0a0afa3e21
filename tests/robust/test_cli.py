#!/usr/bin/python3
"""Every option with a bad value gets exactly one line on stderr, nothing on stdout, and the
documented status: 2 for a bad command line, 3 for an environment that does not have what
the value names (no such path, pid, mount). Runs as root so environment checks are reached;
none of these cases may load BPF (they fail before Session::open or inside its checks).
An error that cannot be printed (stderr closed or full) still ends in its status."""

import os
import subprocess
import time
import unittest

from robusthelp import FUSESCOPE

MISSING = "/nonexistent/fusescope-robust-test"
HUGE = "1" + "0" * 40

USAGE = [
    # global
    ["--backend", "magic", "doctor"],
    ["--backend", "", "doctor"],
    ["--no-such-flag", "doctor"],
    [],
    ["frobnicate"],
    # durations: negative, not a number, not finite, huge
    ["trace", "--duration", "-1"],
    ["trace", "--duration", "abc"],
    ["trace", "--duration", "nan"],
    ["trace", "--duration", "inf"],
    ["trace", "--duration", "1e300"],
    ["trace", "--duration", HUGE],
    ["trace", "--duration"],
    ["diagnose", "--duration", "-5"],
    ["diagnose", "--duration", "nan"],
    ["diagnose", "--duration", "1e9"],
    ["demo", "--duration", "-1"],
    ["demo", "--duration", "nan"],
    ["demo", "--duration", "1e300"],
    ["top", "-b", "--interval", "0"],
    ["top", "-b", "--interval", "-1"],
    ["top", "-b", "--interval", "nan"],
    ["top", "-b", "--interval", "inf"],
    ["top", "-b", "--interval", "1e300"],
    ["top", "-b", "-n", "-1"],
    ["top", "-b", "-n", HUGE],
    ["top", "-b", "-n", "x"],
    ["top", "-b", "--sort", "bogus"],
    # pids
    ["trace", "--pid", "abc"],
    ["trace", "--pid", "-1"],
    ["trace", "--pid", "0"],
    ["trace", "--pid", HUGE],
    ["trace", "--pid", "4294967296"],
    ["trace", "--pid", "1.5"],
    ["top", "-b", "--pid", "pid"],
    # exporter
    ["export", "--listen", "nonsense"],
    ["export", "--listen", "127.0.0.1"],
    ["export", "--listen", "127.0.0.1:0"],
    ["export", "--listen", "127.0.0.1:65536"],
    ["export", "--listen", "127.0.0.1:-1"],
    ["export", "--listen", "127.0.0.1:" + HUGE],
    ["export", "--listen", "300.1.1.1:9000"],
    ["export", "--listen", "example.com:9000"],
    ["export", "--listen", "[]:9000"],
    ["export", "--web.listen-address", "nonsense"],
    ["export", "--web.config.file", "/nonexistent/web.yml"],
    ["export", "--listen", "[::1:9000"],
    ["export", "--listen", "1.2.3.4:80:80"],
    ["export", "--per-inode-top", "-1"],
    ["export", "--per-inode-top", HUGE],
    ["export", "--per-inode-top", "nan"],
    # the status stream: not a descriptor, not open (one open only for reading:
    # tests/unit/test_status.cpp)
    ["--status-fd", "x", "doctor"],
    ["--status-fd", "-1", "doctor"],
    ["--status-fd", HUGE, "doctor"],
    ["--status-fd", "99", "trace"],
    # request slots: not a power of two, zero, too many, without --service-time
    ["--service-time", "--service-time-slots", "3", "doctor"],
    ["--service-time", "--service-time-slots", "0", "doctor"],
    ["--service-time", "--service-time-slots", str(1 << 21), "doctor"],
    ["--service-time-slots", "64", "doctor"],
]

ENVIRONMENT = [
    ["trace", "--mount", MISSING, "--duration", "1"],
    ["trace", "--mount", "/", "--duration", "1"],
    ["top", "-b", "-n", "1", "--mount", MISSING],
    ["export", "--listen", "127.0.0.1:1", "--mount", MISSING],
    ["diagnose", "--duration", "1", "--mount", MISSING],
    ["diagnose", "--duration", "1", "--path", MISSING],
    ["diagnose", "--duration", "1", "--path", "/etc/hostname"],
    ["trace", "--pid", "999999999", "--duration", "1"],
    ["trace", "--pid", "4194304", "--duration", "1"],  # above pid_max's ceiling
]


class BadValues(unittest.TestCase):
    def check(self, args, want):
        t0 = time.monotonic()
        r = subprocess.run([FUSESCOPE, *args], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(r.returncode, want, f"{args}: stderr {r.stderr!r}")
        self.assertEqual(len(lines), 1, f"{args}: want one stderr line, got {r.stderr!r}")
        self.assertTrue(lines[0].startswith("fusescope"), f"{args}: {lines[0]!r}")
        self.assertEqual(r.stdout, "", f"{args}: stdout {r.stdout!r}")
        self.assertLess(time.monotonic() - t0, 30, f"{args} took too long")

    def test_usage_errors_exit_2(self):
        for args in USAGE:
            with self.subTest(args=args):
                self.check(args, 2)

    @unittest.skipUnless(os.geteuid() == 0, "environment checks run as root")
    def test_environment_errors_exit_3(self):
        for args in ENVIRONMENT:
            with self.subTest(args=args):
                self.check(args, 3)


# Errors fusescope cannot print: a closed stderr or one on a full disk must still end in the
# error's status (an exception thrown by the failed write used to escape main(): SIGABRT).
UNPRINTABLE = [
    (["--no-such-flag", "doctor"], 2),
    (["trace", "--duration", "nan"], 2),
    (["--status-fd", "99", "doctor"], 2),
    ([], 2),
] + ([(["trace", "--mount", MISSING, "--duration", "1"], 3)] if os.geteuid() == 0 else [])


class UnwritableStderr(unittest.TestCase):
    def test_error_status_without_stderr(self):
        for args, want in UNPRINTABLE:
            for how in ("closed", "full"):
                with self.subTest(args=args, stderr=how):
                    if how == "closed":
                        r = subprocess.run(["/bin/sh", "-c", 'exec "$0" "$@" 2>&-', FUSESCOPE,
                                            *args], stdout=subprocess.PIPE, timeout=60,
                                           stdin=subprocess.DEVNULL)
                    else:
                        with open("/dev/full", "w") as full:
                            r = subprocess.run([FUSESCOPE, *args], stdout=subprocess.PIPE,
                                               stderr=full, timeout=60, stdin=subprocess.DEVNULL)
                    self.assertEqual(r.returncode, want, f"{args} with stderr {how}")
                    self.assertEqual(r.stdout, b"")


if __name__ == "__main__":
    unittest.main(verbosity=2)
