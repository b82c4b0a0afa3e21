"""fusescope's core on the running kernel: lock mode and reason of every
direct-IO write, the holder of cache IO mode (by event and by census), and
the return to parallel writes. Deterministic workloads, exact counts.

The single-load lock/reason scenarios are the rows of tests/scenarios/core.txt
(one test_NAME each, run_row), the same table the VM guests run
(tests/vm/guest-core.sh); the scenarios of several steps are methods here.

Runs on the host (tracepoint backend) and inside the VMs (trampoline
backend) with the same assertions; FUSESCOPE_BACKEND forces a backend.

Every scenario runs over both FUSE transports: /dev/fuse (CoreTest) and FUSE
over io_uring (CoreTestIoUring: fusescope-testfs --io-uring, Linux 6.14+),
where the kernel queues requests on per-CPU rings instead of the device's
pending list. The io_uring class skips on kernels without it, unless
FUSESCOPE_EXPECT_MODES names io-uring (ctest sets it on the host): then it
fails.
"""

import os
import signal
import subprocess
import time
import unittest

from fusemount import LOAD, IoUringTransport, Transport, run_load
from fusescope_run import Trace, assert_writes, run_fusescope
from scenarios import core_scenarios

PARALLEL = ("--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap",
            "--write-delay-us", "200")
BACKEND = os.environ.get("FUSESCOPE_BACKEND")
EXTRA = ("--backend", BACKEND) if BACKEND else ()
IO_MODES = os.environ.get("FUSESCOPE_EXPECT_IOMODES", "1") == "1"


def parallel(m, threads, writes_per_thread, name="db"):
    return run_load("parallel", "--file", m.path(name), "--threads", str(threads),
                    "--writes", str(writes_per_thread), "--size", "65536", "--sync-start")


class Holder:
    """fusescope-load mmap-holder, held until we signal it."""

    def __init__(self, path, comm="indexer"):
        self.proc = subprocess.Popen([LOAD, "mmap-holder", "--file", path, "--size", "65536",
                                      "--hold-until-signal", "--comm", comm],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        if not line.startswith("holding "):
            self.proc.kill()
            raise RuntimeError("mmap-holder did not start: " + line + self.proc.stderr.read())
        self.pid = int(line.split()[1])

    def release(self):
        self.proc.send_signal(signal.SIGUSR1)
        self.proc.communicate(timeout=30)
        return self.proc.returncode


class CoreTest(Transport, unittest.TestCase):
    """Over /dev/fuse; CoreTestIoUring runs the same over FUSE over io_uring."""

    def run_row(self, sc):
        """One row of tests/scenarios/core.txt on its own mount: exactly the row's writes,
        and exactly what fusescope-load says it issued."""
        with self.mount(*sc.testfs_flags) as m:
            with Trace(m.mountpoint, *EXTRA) as t:
                load = run_load(*sc.load_args, "--file", m.path(sc.name))
            want = sc.expected(t.backend)
            self.assertEqual(load["total_writes"], sum(want.values()),
                             "fusescope-load did not issue what the row says")
            assert_writes(self, t, want)

    # Scenarios of several steps (a holder, the census, drains) do not fit the table's one
    # load per row: they are the methods below.

    @unittest.skipUnless(IO_MODES, "kernel has no IO modes")
    def test_mmap_holder_taints_then_release_restores(self):
        with self.mount(*PARALLEL) as m:
            parallel(m, 1, 1)  # create and size the file before watching
            with Trace(m.mountpoint, *EXTRA) as t:
                h = Holder(m.path("db"))
                parallel(m, 4, 25)
                self.assertEqual(h.release(), 0)
                time.sleep(0.5)
                parallel(m, 4, 25)
            ev = t.stop()
            assert_writes(self, t, {("exclusive", "cache_io_mode"): 100, ("shared", "shared"): 100})
            holders = [e for e in ev if e["event"] == "mmap" and "holder" in e]
            self.assertEqual(len(holders), 1, ev)
            self.assertEqual(holders[0]["holder"], {"pid": h.pid, "comm": "indexer", "how": "mmap"})
            self.assertTrue(holders[0]["entered_cache"])
            left = [e for e in ev if e["event"] == "release" and e.get("left_cache")]
            self.assertEqual(len(left), 1, [e for e in ev if e["event"] == "release"])
            # order: mmap holder, then the cached writes, then release, then shared writes
            seq = [e for e in ev if e["event"] in ("write", "mmap", "release") and
                   (e["event"] != "release" or e.get("left_cache"))]
            kinds = [e["event"] if e["event"] != "write" else e["reason"] for e in seq]
            first_shared = kinds.index("shared")
            self.assertLess(kinds.index("mmap"), kinds.index("cache_io_mode"))
            self.assertLess(kinds.index("release"), first_shared)
            self.assertNotIn("cache_io_mode", kinds[first_shared:])

    @unittest.skipUnless(IO_MODES, "kernel has no IO modes")
    def test_caching_open_and_mmap_with_no_writer_in_flight_wait_for_nothing(self):
        # A drain wait needs parallel writers in flight. The tracepoint backend infers one
        # from the opener's sleeps: the server's answer to its open must not count as one.
        with self.mount(*PARALLEL, "--cache-readonly-opens") as m:
            parallel(m, 1, 1)
            with Trace(m.mountpoint, *EXTRA) as t:
                parallel(m, 4, 25)  # the inode has had parallel writes
                reader = run_load("cached-reader", "--file", m.path("db"), "--opens", 20)
                h = Holder(m.path("db"), comm="late-indexer")
                self.assertEqual(h.release(), 0)
            ev = t.stop()
            assert_writes(self, t, {("shared", "shared"): 100})
            def held_by(kind, pid):
                return [e for e in ev if e["event"] == kind and
                        e.get("holder", {}).get("pid") == pid]
            self.assertEqual(len(held_by("open", reader["pid"])), 20, ev)
            self.assertEqual(len(held_by("mmap", h.pid)), 1, ev)
            self.assertEqual([e for e in ev if e["event"] == "drain_wait"], [])

    @unittest.skipUnless(IO_MODES, "kernel has no IO modes")
    def test_census_names_holder_mapped_before_start(self):
        with self.mount(*PARALLEL) as m:
            parallel(m, 1, 1)
            h = Holder(m.path("db"), comm="scanner")
            try:
                with Trace(m.mountpoint, *EXTRA) as t:
                    parallel(m, 2, 10)
                ev = t.stop()
            finally:
                h.release()
            census = [e for e in ev if e["event"] == "census"]
            self.assertEqual(len(census), 1, ev)
            self.assertEqual(census[0]["holder"], {"pid": h.pid, "comm": "scanner", "how": "mmap"})
            self.assertEqual(census[0]["mode"], "cached")
            self.assertTrue(census[0]["path"].endswith("/db"), census[0])
            assert_writes(self, t, {("exclusive", "cache_io_mode"): 20})

    def test_pid_filter_lists_what_a_writer_writes(self):
        with self.mount(*PARALLEL) as m:
            parallel(m, 1, 1)
            writer = subprocess.Popen([LOAD, "parallel", "--file", m.path("db"), "--threads", "2",
                                       "--writes", "100000", "--size", "4096", "--duration", "20"],
                                      stdout=subprocess.DEVNULL)
            try:
                r = run_fusescope(*EXTRA, "top", "-b", "-n", "3", "--interval", "0.5",
                                  "--mount", m.mountpoint, "--pid", str(writer.pid), timeout=60)
            finally:
                writer.kill()
                writer.wait()
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("/db ", r.stdout)


def _add_row_tests():
    for sc in core_scenarios():
        def test(self, sc=sc):
            self.run_row(sc)
        test.__doc__ = (f"{sc.name}: {' '.join(sc.testfs_flags)} / "
                        f"{' '.join(sc.load_args)} -> {' '.join(sc.expect)}")
        setattr(CoreTest, f"test_{sc.name}", test)


_add_row_tests()


class CoreTestIoUring(IoUringTransport, CoreTest):
    pass


class DoctorTest(unittest.TestCase):
    def test_doctor_names_backend(self):
        r = run_fusescope(*EXTRA, "doctor")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        want = BACKEND or os.environ.get("FUSESCOPE_EXPECT_BACKEND")
        if want:
            self.assertIn(f"backend       {want}:", r.stdout)
        if want == "tracepoint" and "refuses fentry" in r.stdout:
            self.assertIn("EPERM", r.stdout)
        self.assertIn("loaded and attached", r.stdout)


class BadInputTest(unittest.TestCase):
    def test_bad_backend(self):
        r = run_fusescope("--backend", "magic", "doctor")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

    def test_mount_not_fuse(self):
        r = run_fusescope("trace", "--mount", "/", "--duration", "1")
        self.assertEqual(r.returncode, 3)
        self.assertIn("not on a FUSE mount", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

    def test_negative_duration(self):
        r = run_fusescope("trace", "--duration", "-1")
        self.assertEqual(r.returncode, 2)

    def test_no_such_pid(self):
        r = run_fusescope("trace", "--pid", "999999999", "--duration", "1")
        self.assertIn(r.returncode, (2, 3))
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
