#!/usr/bin/python3
"""fusescope-testfs never leaves a mount behind: SIGINT, SIGTERM, busy mounts, external
unmounts and aborted connections all end with the mountpoint gone from /proc/self/mounts."""

import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fusemount import LOAD, is_mounted, testfs_mount  # noqa: E402


def wait_for(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


@unittest.skipUnless(os.geteuid() == 0, "needs root (mounts FUSE)")
class Lifecycle(unittest.TestCase):
    def test_ready_line_and_mount_entry(self):
        with testfs_mount("--direct-io") as m:
            self.assertTrue(is_mounted(m.mountpoint))
            with open("/proc/self/mounts") as f:
                line = next(x for x in f if x.split()[1] == m.mountpoint)
            self.assertEqual(line.split()[0], "fusescope-testfs")
            self.assertEqual(line.split()[2], "fuse.fusescope-testfs")
            self.assertIn("allow_other", line)

    def test_async_dio_is_on_by_default(self):
        # As libfuse3 does; --no-async-dio turns it off, --async-dio is the default's old name.
        FUSE_ASYNC_DIO = 1 << 15
        for opts, want in (((), True), (("--async-dio",), True), (("--no-async-dio",), False)):
            with self.subTest(opts=opts), testfs_mount("--debug", *opts) as m:
                line = next(l for l in m.stderr().splitlines() if "INIT done" in l)
                flags = int(line.rsplit("flags ", 1)[1], 16)
                self.assertEqual(bool(flags & FUSE_ASYNC_DIO), want, line)

    def test_sigint_unmounts_and_exits_0(self):
        with testfs_mount() as m:
            with open(m.path("f"), "w") as f:
                f.write("x")
            self.assertEqual(m.stop(signal.SIGINT), 0, m.stderr())
            self.assertFalse(is_mounted(m.mountpoint))
            with open(m.backing_path("f")) as f:
                self.assertEqual(f.read(), "x")

    def test_sigterm_unmounts_and_exits_0(self):
        with testfs_mount("--direct-io", "--parallel-direct-writes") as m:
            self.assertEqual(m.stop(signal.SIGTERM), 0, m.stderr())
            self.assertFalse(is_mounted(m.mountpoint))

    def test_signal_while_busy(self):
        # An open file, a shared mapping and a cwd inside the mount make a plain umount fail
        # with EBUSY; the server must still go away and take the mount with it.
        with testfs_mount("--direct-io", "--direct-io-allow-mmap") as m:
            with open(m.path("held"), "wb") as f:
                f.write(b"\0" * 65536)
            holder = subprocess.Popen([LOAD, "mmap-holder", "--file", m.path("held"),
                                       "--hold-until-signal"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            cwd_proc = subprocess.Popen(["sleep", "60"], cwd=m.mountpoint)
            try:
                line = holder.stderr.readline()
                self.assertEqual(line.strip(), f"holding {holder.pid}")
                self.assertEqual(m.stop(signal.SIGINT), 0, m.stderr())
                self.assertFalse(is_mounted(m.mountpoint))
                holder.send_signal(signal.SIGUSR1)  # must not hang on the dead connection
                holder.communicate(timeout=20)
            finally:
                cwd_proc.kill()
                cwd_proc.wait()
                if holder.poll() is None:
                    holder.kill()
                    holder.wait()

    def test_crash_detaches_mount(self):
        # Even a crashing server (here: SIGSEGV from outside) must not leave a dead mount.
        with testfs_mount() as m:
            self.assertEqual(m.stop(signal.SIGSEGV), -signal.SIGSEGV)
            self.assertFalse(is_mounted(m.mountpoint))

    def test_external_unmount(self):
        with testfs_mount() as m:
            subprocess.run(["umount", m.mountpoint], check=True)
            self.assertTrue(wait_for(lambda: m.proc.poll() is not None), "server kept running")
            self.assertEqual(m.proc.returncode, 0, m.stderr())
            self.assertFalse(is_mounted(m.mountpoint))

    @unittest.skipUnless(shutil.which("unshare"), "needs unshare(1)")
    def test_aborted_connection(self):
        # Abort through fusectl. Where the machine has not mounted it, mount it in a private
        # mount namespace so the host is untouched; where it has (a second fusectl mount on
        # the same place then fails with EBUSY, seen on CI machines), use that one.
        with testfs_mount("--direct-io") as m:
            conn = os.minor(os.stat(m.mountpoint).st_dev)
            abort = f"/sys/fs/fuse/connections/{conn}/abort"
            script = (f"{{ [ -e {abort} ] || mount -t fusectl none /sys/fs/fuse/connections; }} && "
                      f"echo 1 > {abort}")
            subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                           check=True)
            self.assertTrue(wait_for(lambda: m.proc.poll() is not None), "server kept running")
            self.assertEqual(m.proc.returncode, 1, m.stderr())
            self.assertIn("aborted", m.stderr())
            self.assertFalse(is_mounted(m.mountpoint))


if __name__ == "__main__":
    unittest.main(verbosity=2)
