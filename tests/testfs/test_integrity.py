#!/usr/bin/python3
"""Data written through fusescope-testfs in every mode reads back byte-exact, through the mount
and from the backing directory; request counts of the writer scenarios are exact."""

import errno
import json
import mmap
import os
import shutil
import stat
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fusemount import (available_modes, pattern_block, passthrough_supported,  # noqa: E402
                       run_load, testfs_mount)

K, N, SIZE = 3, 40, 64 * 1024

def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def expected_positional(scenario, k, n, size):
    """Whole-file content for parallel/extend (block b at offset b*size)."""
    blocks = k * n
    return b"".join(pattern_block(b, size) for b in range(blocks))


def check_append(test, data, k, n, size):
    test.assertEqual(len(data), k * n * size)
    seen = set()
    for off in range(0, len(data), size):
        chunk = data[off:off + size]
        b = int.from_bytes(chunk[:8], "little")
        test.assertEqual(chunk, pattern_block(b, size), f"block at {off} is not intact")
        test.assertNotIn(b, seen, f"block {b} appended twice")
        seen.add(b)
    test.assertEqual(seen, set(range(k * n)))


@unittest.skipUnless(os.geteuid() == 0, "needs root (mounts FUSE)")
class WriterScenarios(unittest.TestCase):
    def run_mode(self, name, opts, extra=()):
        for scenario in ("parallel", "append", "extend"):
            with self.subTest(mode=name, scenario=scenario), testfs_mount(*opts) as m:
                fname = f"{scenario}.dat"
                threads = K if scenario != "extend" else 2
                res = run_load(scenario, "--file", m.path(fname), "--threads", threads,
                               "--writes", N, "--size", SIZE, "--verify", *extra)
                self.assertEqual(res["total_writes"], threads * N)
                self.assertEqual([t["writes"] for t in res["per_thread"]], [N] * threads)
                self.assertEqual(res["errors"], 0)
                self.assertEqual(res["verify_errors"], 0)
                self.assertEqual(res["prealloc_writes"], 0)
                for where in (m.path(fname), m.backing_path(fname)):
                    data = read_file(where)
                    if scenario == "append":
                        check_append(self, data, threads, N, SIZE)
                    else:
                        self.assertEqual(len(data), threads * N * SIZE, where)
                        self.assertTrue(data == expected_positional(scenario, threads, N, SIZE),
                                        f"{where}: content differs")

    def test_every_mode(self):
        for name, opts in available_modes().items():
            self.run_mode(name, opts)

    def test_o_direct_on_cached_mount(self):
        # O_DIRECT without FOPEN_DIRECT_IO goes through the kernel's fuse_direct_IO path.
        self.run_mode("cached+O_DIRECT", [], extra=("--o-direct",))

    def test_exact_write_request_count(self):
        # Preallocation is an ftruncate (SETATTR): the server must see exactly K*N WRITEs.
        stats = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"testfs-stats-{os.getpid()}.json")
        try:
            with testfs_mount("--direct-io", "--parallel-direct-writes", "--stats", stats) as m:
                res = run_load("parallel", "--file", m.path("count.dat"), "--threads", 4,
                               "--writes", 50, "--size", 4096)
                self.assertEqual(res["total_writes"], 200)
            with open(stats) as f:
                counts = json.load(f)["requests"]
            self.assertEqual(counts.get("WRITE"), 200)
            self.assertGreaterEqual(counts.get("SETATTR", 0), 1)
        finally:
            if os.path.exists(stats):
                os.unlink(stats)


@unittest.skipUnless(os.geteuid() == 0, "needs root (mounts FUSE)")
class MmapData(unittest.TestCase):
    BLOCKS = 64
    BS = 4096

    def mmap_roundtrip(self, opts):
        with testfs_mount(*opts) as m:
            p = m.path("mapped.dat")
            fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                os.ftruncate(fd, self.BLOCKS * self.BS)
                with mmap.mmap(fd, self.BLOCKS * self.BS, mmap.MAP_SHARED) as mm:
                    for b in range(self.BLOCKS):
                        mm[b * self.BS:(b + 1) * self.BS] = pattern_block(b, self.BS, seed=7)
                    mm.flush()
            finally:
                os.close(fd)
            want = b"".join(pattern_block(b, self.BS, seed=7) for b in range(self.BLOCKS))
            self.assertTrue(read_file(p) == want, "through the mount")
            self.assertTrue(read_file(m.backing_path("mapped.dat")) == want, "backing file")

    def test_mmap_cached(self):
        self.mmap_roundtrip([])

    def test_mmap_direct_io_allow_mmap(self):
        self.mmap_roundtrip(["--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap"])

    def test_mmap_passthrough(self):
        if not passthrough_supported():
            self.skipTest("kernel without FUSE passthrough")
        self.mmap_roundtrip(["--passthrough"])

    def test_mmap_refused_on_plain_direct_io(self):
        # Without FUSE_DIRECT_IO_ALLOW_MMAP the kernel refuses shared maps of direct-io files.
        with testfs_mount("--direct-io") as m:
            with open(m.path("f"), "wb") as f:
                f.write(b"x" * 4096)
            res = run_load("mmap-holder", "--file", m.path("f"), "--hold", 0, check=False)
            self.assertEqual(res["_returncode"], 1)
            self.assertIn("No such device", res["_stderr"])

    def test_mmap_holder_touch_write(self):
        with testfs_mount("--direct-io", "--direct-io-allow-mmap") as m:
            data = pattern_block(3, 8192)
            with open(m.path("h"), "wb") as f:
                f.write(data)
            res = run_load("mmap-holder", "--file", m.path("h"), "--hold", 0, "--touch-write")
            self.assertEqual(res["pages_touched"], 2)
            self.assertEqual(read_file(m.backing_path("h")), data)  # rewritten unchanged


@unittest.skipUnless(os.geteuid() == 0, "needs root (mounts FUSE)")
class FilesystemOps(unittest.TestCase):
    """The namespace operations a test or demo may use behave like a local filesystem."""

    def test_namespace_and_attributes(self):
        for name, opts in available_modes().items():
            with self.subTest(mode=name), testfs_mount(*opts) as m:
                os.mkdir(m.path("d"))
                with open(m.path("d", "a"), "wb") as f:
                    f.write(b"hello")
                self.assertEqual(sorted(os.listdir(m.path("d"))), ["a"])
                self.assertTrue(os.path.isdir(m.backing_path("d")))
                os.rename(m.path("d", "a"), m.path("d", "b"))
                self.assertEqual(read_file(m.backing_path("d", "b")), b"hello")
                os.rename(m.path("d"), m.path("e"))
                self.assertEqual(read_file(m.path("e", "b")), b"hello")
                os.chmod(m.path("e", "b"), 0o600)
                self.assertEqual(stat.S_IMODE(os.stat(m.backing_path("e", "b")).st_mode), 0o600)
                os.utime(m.path("e", "b"), (1000000000, 1000000001))
                self.assertEqual(os.stat(m.path("e", "b")).st_mtime, 1000000001)
                os.truncate(m.path("e", "b"), 2)
                self.assertEqual(read_file(m.path("e", "b")), b"he")
                os.symlink("b", m.path("e", "l"))
                self.assertEqual(os.readlink(m.path("e", "l")), "b")
                self.assertEqual(read_file(m.path("e", "l")), b"he")
                os.link(m.path("e", "b"), m.path("e", "h"))
                self.assertEqual(os.stat(m.path("e", "h")).st_nlink, 2)
                # unlinked-but-open files keep working (fstat, read, write)
                fd = os.open(m.path("e", "b"), os.O_RDWR)
                os.unlink(m.path("e", "b"))
                os.unlink(m.path("e", "h"))
                os.pwrite(fd, b"XY", 0)
                self.assertEqual(os.pread(fd, 2, 0), b"XY")
                self.assertEqual(os.fstat(fd).st_size, 2)
                os.ftruncate(fd, 10)
                self.assertEqual(os.fstat(fd).st_size, 10)
                os.fsync(fd)
                os.close(fd)
                os.unlink(m.path("e", "l"))
                os.rmdir(m.path("e"))
                self.assertEqual(os.listdir(m.mountpoint), [])
                self.assertGreater(os.statvfs(m.mountpoint).f_blocks, 0)

    def test_o_nofollow_opens_an_existing_file(self):
        # Regression (issue 18): the server reopens the backing file through /proc/self/fd/N,
        # itself a symlink, and passed O_NOFOLLOW on: every O_NOFOLLOW open of an existing
        # regular file failed with ELOOP (InnoDB opens its files that way).
        for name, opts in available_modes().items():
            with self.subTest(mode=name), testfs_mount(*opts) as m:
                p = m.path("f")
                os.close(os.open(p, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o644))
                for flags in (os.O_RDWR, os.O_RDONLY, os.O_WRONLY | os.O_TRUNC):
                    fd = os.open(p, flags | os.O_NOFOLLOW)
                    os.close(fd)
                os.symlink("f", m.path("l"))
                with self.assertRaises(OSError) as e:
                    os.open(m.path("l"), os.O_RDONLY | os.O_NOFOLLOW)
                self.assertEqual(e.exception.errno, errno.ELOOP)
                os.mkdir(m.path("d"))
                os.close(os.open(m.path("d"), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW))

    @unittest.skipUnless(shutil.which("setpriv"), "needs setpriv(1)")
    def test_permissions_are_enforced_for_other_users(self):
        # The server runs as root: without default_permissions, nobody could read root's 0600
        # file, append to a 0644 one and create files in a 0700 directory (all three did).
        probe = """
import errno, json, os, sys
m = sys.argv[1]
def try_(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
print(json.dumps({
    "read 0600": try_(lambda: open(os.path.join(m, "secret")).read()),
    "read 0644": try_(lambda: open(os.path.join(m, "public")).read()),
    "append 0644": try_(lambda: open(os.path.join(m, "public"), "a").write("x")),
    "create in 0700": try_(lambda: open(os.path.join(m, "private", "x"), "w").close()),
    "create in 0777": try_(lambda: open(os.path.join(m, "open", "x"), "w").close()),
    "chmod not owned": try_(lambda: os.chmod(os.path.join(m, "public"), 0o666)),
    "unlink in sticky": try_(lambda: os.unlink(os.path.join(m, "sticky", "roots"))),
}))
"""
        want = {"read 0600": "EACCES", "read 0644": "ok", "append 0644": "EACCES",
                "create in 0700": "EACCES", "create in 0777": "ok",
                "chmod not owned": "EPERM", "unlink in sticky": "EPERM"}
        for name, opts in available_modes().items():
            with self.subTest(mode=name), testfs_mount(*opts) as m:
                os.chmod(os.path.dirname(m.mountpoint), 0o755)  # mkdtemp made it 0700
                for f, mode in (("secret", 0o600), ("public", 0o644)):
                    with open(m.path(f), "w") as fh:
                        fh.write("root's")
                    os.chmod(m.path(f), mode)
                for d, mode in (("private", 0o700), ("open", 0o777), ("sticky", 0o1777)):
                    os.mkdir(m.path(d))
                    os.chmod(m.path(d), mode)
                open(m.path("sticky", "roots"), "w").close()
                p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                    sys.executable, "-c", probe, m.mountpoint],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(json.loads(p.stdout), want)
                self.assertEqual(os.stat(m.backing_path("open", "x")).st_uid, 65534)
                with open(m.backing_path("public")) as fh:
                    self.assertEqual(fh.read(), "root's")

    def test_fallocate_and_large_directory(self):
        with testfs_mount("--direct-io", "--parallel-direct-writes") as m:
            fd = os.open(m.path("big"), os.O_RDWR | os.O_CREAT, 0o644)
            os.posix_fallocate(fd, 0, 1 << 20)
            self.assertEqual(os.fstat(fd).st_size, 1 << 20)
            self.assertEqual(os.stat(m.backing_path("big")).st_size, 1 << 20)
            os.close(fd)
            names = {f"file-{i:04d}-{'x' * 40}" for i in range(600)}  # several READDIR pages
            for n in names:
                open(m.path(n), "wb").close()
            self.assertEqual(set(os.listdir(m.mountpoint)) - {"big"}, names)

    def test_create_exclusive(self):
        with testfs_mount("--direct-io") as m:
            old = os.umask(0o022)
            try:
                fd = os.open(m.path("x"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            finally:
                os.umask(old)
            os.close(fd)
            with self.assertRaises(FileExistsError):
                os.open(m.path("x"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            self.assertEqual(stat.S_IMODE(os.stat(m.backing_path("x")).st_mode), 0o644)


if __name__ == "__main__":
    unittest.main(verbosity=2)
