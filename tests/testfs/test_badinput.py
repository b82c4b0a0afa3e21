#!/usr/bin/python3
"""Bad input gets one clear line on stderr and a distinct exit status:
fusescope-testfs 2 usage, 3 environment, 4 mount failed; fusescope-load 2 usage, 3 file."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fusemount import ENABLE_URING, LOAD, TESTFS, is_mounted, uring_enabled  # noqa: E402


def run(argv, timeout=30):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


class OneLineMixin:
    def assert_fails(self, argv, code, needle, prog):
        rc, out, err = run(argv)
        self.assertEqual(rc, code, f"{argv}: stderr {err!r}")
        self.assertEqual(out, "", f"{argv}: nothing on stdout")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, f"{argv}: want one stderr line, got {err!r}")
        self.assertTrue(lines[0].startswith(f"{prog}: "), lines[0])
        self.assertIn(needle, lines[0])


@unittest.skipUnless(os.geteuid() == 0, "needs root (exit status 3 otherwise)")
class TestfsBadInput(OneLineMixin, unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fusescope-badinput-")
        self.b = os.path.join(self.tmp, "b")
        self.m = os.path.join(self.tmp, "m")
        os.mkdir(self.b)
        os.mkdir(self.m)

    def tearDown(self):
        self.assertFalse(is_mounted(self.m), "a failed start left a mount")
        shutil.rmtree(self.tmp)

    def fails(self, args, code, needle):
        self.assert_fails([TESTFS, *args], code, needle, "fusescope-testfs")

    def test_usage_errors(self):
        self.fails([], 2, "BACKING_DIR is required")
        self.fails([self.b], 2, "MOUNTPOINT is required")
        self.fails([self.b, os.path.join(self.tmp, "nope")], 2, "mountpoint")
        self.fails([os.path.join(self.tmp, "nope"), self.m], 2, "backing directory")
        self.fails(["--no-such-option", self.b, self.m], 2, "--no-such-option")
        self.fails(["--threads", "0", self.b, self.m], 2, "--threads")
        self.fails(["--max-write", "12", self.b, self.m], 2, "--max-write")
        self.fails(["--passthrough", "--keep-cache", self.b, self.m], 2, "--keep-cache")
        self.fails([self.tmp, self.m], 2, "inside the backing directory")

    def test_help_exits_0(self):
        rc, out, _ = run([TESTFS, "--help"])
        self.assertEqual(rc, 0)
        for word in ("--direct-io", "--parallel-direct-writes", "--passthrough", "ready",
                     "Exit status"):
            self.assertIn(word, out)

    @unittest.skipUnless(shutil.which("setpriv"), "needs setpriv(1)")
    def test_not_root(self):
        self.assert_fails(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           TESTFS, self.b, self.m], 3, "root", "fusescope-testfs")

    @unittest.skipUnless(shutil.which("unshare"), "needs unshare(1)")
    def test_no_dev_fuse(self):
        # A private mount namespace with an empty /dev: the host's /dev is untouched.
        script = f'mount -t tmpfs none /dev && exec "$0" "$@"'
        self.assert_fails(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                           TESTFS, self.b, self.m], 3, "/dev/fuse", "fusescope-testfs")

    @unittest.skipUnless(shutil.which("unshare"), "needs unshare(1)")
    def test_mount_failure(self):
        # Root in a new user namespace but in the host's mount namespace: mount(2) gets EPERM.
        self.assert_fails(["unshare", "-U", "-r", TESTFS, self.b, self.m], 4, "mount",
                          "fusescope-testfs")


    def test_io_uring_unavailable(self):
        # Exit 3 with one line when the kernel lacks FUSE over io_uring or has it switched off.
        if not os.path.exists(ENABLE_URING):
            return self.fails(["--io-uring", self.b, self.m], 3, "CONFIG_FUSE_IO_URING")
        with uring_enabled(on=False):
            self.fails(["--io-uring", self.b, self.m], 3, "enable_uring")


class LoadBadInput(OneLineMixin, unittest.TestCase):
    def fails(self, args, code, needle):
        self.assert_fails([LOAD, *args], code, needle, "fusescope-load")

    def test_usage_errors(self):
        self.fails([], 2, "SCENARIO is required")
        self.fails(["nonsense", "--file", "/tmp/x"], 2, "nonsense")
        self.fails(["parallel"], 2, "--file is required")
        self.fails(["parallel", "--file", "/tmp/x", "--threads", "0"], 2, "--threads")
        self.fails(["parallel", "--file", "/tmp/x", "--size", "abc"], 2, "--size")
        self.fails(["parallel", "--file", "/tmp/x", "--bogus"], 2, "--bogus")
        self.fails(["mmap-holder", "--file", "/tmp/x", "--comm", "x" * 16], 2, "--comm")

    def test_file_cannot_be_prepared(self):
        self.fails(["parallel", "--file", "/nonexistent-dir/f"], 3, "/nonexistent-dir/f")
        self.fails(["mmap-holder", "--file", "/nonexistent-dir/f"], 3, "/nonexistent-dir/f")

    def test_help_exits_0(self):
        rc, out, _ = run([LOAD, "--help"])
        self.assertEqual(rc, 0)
        for word in ("parallel", "append", "extend", "mmap-holder", "cached-reader",
                     "db-and-indexer", "mixed"):
            self.assertIn(word, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
