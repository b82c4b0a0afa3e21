"""Every write that reaches a FUSE regular file, as software we did not write
issues it: fio (Debian's) with psync, libaio and io_uring, on fusescope-testfs
with FUSE_ASYNC_DIO on and off, on FOPEN_DIRECT_IO opens, O_DIRECT on caching
opens and buffered writes (tests/scenarios/write-paths.txt, shared with the VM
matrix); then real FUSE servers from Debian (fuse-overlayfs, bindfs), a cache-
mode holder while async writers run, and an async queue deeper than the
connection's max_background.

The truth is what fio reports it issued, cross-checked with the FUSE_WRITE
requests fusescope-testfs counted (--stats): exact counts, by lock and reason.
FUSESCOPE_BACKEND forces a backend (the VM matrix runs both).
"""

import collections
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from fusemount import BindfsMount, is_mounted, passthrough_supported, testfs_mount, uring_supported
from fusescope_run import FUSESCOPE, Fusescope, Trace, assert_writes, writes
from scenarios import write_path_scenarios

BACKEND = os.environ.get("FUSESCOPE_BACKEND")
EXTRA = ("--backend", BACKEND) if BACKEND else ()
FILE_SIZE = 16 << 20
BLOCK = 4096


def fio(path, jobs, ios, *args):
    """Runs fio on `path` (which must exist with FILE_SIZE bytes); returns the writes it
    says it issued."""
    cmd = ["fio", "--name=w", f"--filename={path}", f"--size={FILE_SIZE}", f"--bs={BLOCK}",
           "--rw=randwrite", "--norandommap", "--randrepeat=1", "--allow_file_create=0",
           "--fallocate=none", f"--numjobs={jobs}", f"--number_ios={ios}",
           "--output-format=json", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError(f"fio failed ({p.returncode}): {p.stderr} {p.stdout[-2000:]}")
    out = json.loads(p.stdout[p.stdout.index("{"):])
    return sum(j["write"]["total_ios"] for j in out["jobs"])


def sized_file(backing_path):
    with open(backing_path, "wb") as f:
        f.truncate(FILE_SIZE)


def fuse_writes(stats_path):
    with open(stats_path) as f:
        return json.load(f)["requests"].get("WRITE", 0)


def write_bytes(events):
    return sum(e["bytes"] for e in events if e["event"] == "write")


def wait_mapped(pid, path, timeout=20):
    """Until /proc/PID/maps shows a mapping of `path` (the kernel's word that it exists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/maps") as f:
            if any(line.rstrip().endswith(path) for line in f):
                return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} did not map {path} in {timeout}s")


class WritePathTable(unittest.TestCase):
    """One test per row of tests/scenarios/write-paths.txt."""

    def run_row(self, sc):
        stats = tempfile.NamedTemporaryFile(prefix="fusescope-stats-", delete=False).name
        try:
            with testfs_mount(*sc.testfs_flags, "--stats", stats) as m:
                sized_file(m.backing_path("f"))
                with Trace(m.mountpoint, *EXTRA) as t:
                    issued = fio(m.path("f"), sc.jobs, sc.ios, *sc.fio_args)
                self.assertEqual(issued, sc.writes, "fio did not issue what the row says")
                want = sc.expected(t.backend)
                assert_writes(self, t, want)
                if not t.prog_misses:
                    self.assertEqual(write_bytes(t.events), sum(want.values()) * BLOCK)
            if "--passthrough" not in sc.testfs_flags:
                self.assertEqual(fuse_writes(stats), issued, "FUSE_WRITE requests the server saw")
        finally:
            os.unlink(stats)


def _add_row_tests():
    for sc in write_path_scenarios("host"):
        def test(self, sc=sc):
            self.run_row(sc)
        test.__doc__ = f"{sc.name}: {' '.join(sc.testfs_flags)} / {' '.join(sc.fio_args)}"
        setattr(WritePathTable, f"test_{sc.name}", test)


_add_row_tests()

PARALLEL = ("--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap", "--async-dio")


class WritePaths(unittest.TestCase):
    def test_cache_mode_holder_serializes_async_writers_until_released(self):
        # The database story in miniature: libaio writers on a parallel-direct-writes file;
        # a real program maps it shared (vmtouch, Debian's) and holds the mapping; its
        # writes take the exclusive lock for cache_io_mode until the mapping goes.
        with testfs_mount(*PARALLEL) as m:
            sized_file(m.backing_path("db"))
            with Trace(m.mountpoint, *EXTRA) as t:
                shared_before = fio(m.path("db"), 2, 64, "--ioengine=libaio", "--direct=1",
                                    "--iodepth=4")
                holder = subprocess.Popen(["vmtouch", "-l", "-q", m.path("db")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                try:
                    wait_mapped(holder.pid, m.path("db"))
                    cached = fio(m.path("db"), 2, 64, "--ioengine=libaio", "--direct=1",
                                 "--iodepth=4")
                finally:
                    holder.terminate()
                    holder.wait(timeout=20)
                time.sleep(0.5)
                shared_after = fio(m.path("db"), 2, 64, "--ioengine=libaio", "--direct=1",
                                   "--iodepth=4")
            ev = t.stop()
            assert_writes(self, t, {("shared", "shared"): shared_before + shared_after,
                                    ("exclusive", "cache_io_mode"): cached})
            held = [e for e in ev if e["event"] == "mmap" and e.get("holder")]
            self.assertEqual([(e["holder"]["pid"], e["holder"]["comm"]) for e in held],
                             [(holder.pid, "vmtouch")], ev)

    def test_async_queue_deeper_than_max_background_counts_every_write(self):
        # iodepth 32 x 2 against a slow server: the connection's 12 background slots fill
        # up and writers wait for one. A request that then sits in the background queue is
        # sent later by whoever completes another: its lock mode is not visible there, so it
        # is unclassified -- but counted, and never misclassified as exclusive.
        with testfs_mount(*PARALLEL, "--write-delay-us", "2000") as m:
            sized_file(m.backing_path("f"))
            with Trace(m.mountpoint, *EXTRA) as t:
                issued = fio(m.path("f"), 2, 512, "--ioengine=libaio", "--direct=1",
                             "--iodepth=32")
            got = writes(t.stop())
            self.assertEqual(issued, 1024)
            self.assertLessEqual(issued - sum(got.values()), t.prog_misses, got)
            self.assertLessEqual(set(got), {("shared", "shared"), ("unknown", "unclassified")},
                                 got)
            self.assertGreater(got[("shared", "shared")], 0, got)

    @unittest.skipUnless(shutil.which("fuse-overlayfs"), "fuse-overlayfs not installed")
    def test_fuse_overlayfs_odirect_writes(self):
        # Debian's fuse-overlayfs (libfuse3: async DIO on, no FOPEN_DIRECT_IO): O_DIRECT
        # writes go the caching open's path, exclusive, as background requests.
        with OverlayMount() as ov:
            path = os.path.join(ov.mnt, "f")
            sized_file(path)  # through the mount: the server keeps its own view of the layers
            with Trace(ov.mnt, *EXTRA) as t:
                a = fio(path, 2, 256, "--ioengine=psync", "--direct=1")
                b = fio(path, 2, 256, "--ioengine=libaio", "--direct=1", "--iodepth=4")
            assert_writes(self, t, {("exclusive", "no_direct_io_open"): a + b})
            self.assertEqual(a + b, 1024)

    @unittest.skipUnless(shutil.which("bindfs"), "bindfs not installed")
    def test_bindfs_buffered_and_direct_io_writes(self):
        # Debian's bindfs (libfuse2: no async DIO, no parallel direct writes flag).
        for opts, fio_args, want in (
                ((), ("--ioengine=psync", "--direct=0"), ("exclusive", "buffered")),
                (("-o", "direct_io"), ("--ioengine=libaio", "--direct=1", "--iodepth=4"),
                 ("exclusive", "no_parallel_flag"))):
            with self.subTest(opts=opts), BindfsMount(*opts) as bm:
                sized_file(os.path.join(bm.src, "f"))
                with Trace(bm.mnt, *EXTRA) as t:
                    n = fio(os.path.join(bm.mnt, "f"), 2, 256, *fio_args)
                assert_writes(self, t, {want: n})

    @unittest.skipUnless(passthrough_supported(), "kernel has no FUSE passthrough")
    def test_passthrough_writes(self):
        # No FUSE_WRITE is sent for them: the trampoline backend sees the write call; the
        # tracepoint backend cannot, and diagnose says so instead of calling it healthy.
        with testfs_mount("--passthrough") as m:
            sized_file(m.backing_path("f"))
            with Trace(m.mountpoint, *EXTRA) as t:
                n = fio(m.path("f"), 1, 64, "--ioengine=psync", "--direct=0")
            if t.backend == "trampoline":
                assert_writes(self, t, {("exclusive", "passthrough"): n})
                return
            assert_writes(self, t, {})
            with Fusescope(*EXTRA, "diagnose", "--json", "--duration", "4", "--mount",
                           m.mountpoint) as d:
                d.wait_watching()
                fd = os.open(m.path("f"), os.O_WRONLY)  # held open across the census
                try:
                    fio(m.path("f"), 1, 32, "--ioengine=psync", "--direct=0")
                    rc = d.wait(60)
                finally:
                    os.close(fd)
                out, err = d.stdout(), d.stderr()
            rep = json.loads(out)
            self.assertFalse(rep["healthy"], out)
            self.assertEqual(rc, 5, err)
            kinds = [f["kind"] for f in rep["findings"]]
            self.assertIn("writes_not_visible", kinds, out)


class OpenSyscalls(unittest.TestCase):
    def test_open_and_creat_syscalls_make_holders(self):
        # open(2) and creat(2), not openat(2): what static or old binaries call. Each caching
        # open of a parallel-direct-writes file is a cache-mode holder, named by its event.
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        SYS_open, SYS_creat, O_RDONLY = 2, 85, 0
        with testfs_mount(*PARALLEL, "--cache-readonly-opens") as m:
            sized_file(m.backing_path("f"))
            with Trace(m.mountpoint, *EXTRA) as t:
                fds = [libc.syscall(SYS_open, m.path("f").encode(), O_RDONLY) for _ in range(3)]
                fds.append(libc.syscall(SYS_creat, m.path("g").encode(), 0o644))
                self.assertTrue(all(fd >= 0 for fd in fds), ctypes.get_errno())
                for fd in fds:
                    os.close(fd)
            holders = [e for e in t.stop() if e["event"] == "open" and e.get("holder")]
            # the three O_RDONLY opens cache (testfs --cache-readonly-opens); creat's write
            # open keeps FOPEN_DIRECT_IO and holds nothing
            self.assertEqual([e["holder"]["pid"] for e in holders], [os.getpid()] * 3, holders)


class Transport(unittest.TestCase):
    @unittest.skipUnless(uring_supported(), "kernel has no FUSE over io_uring")
    def test_doctor_names_each_mounts_transport(self):
        # A file open on each mount lets the census see its connection: io_uring or /dev/fuse.
        with testfs_mount("--io-uring") as u, testfs_mount() as d:
            for m in (u, d):
                sized_file(m.backing_path("f"))
            fds = [os.open(m.path("f"), os.O_RDONLY) for m in (u, d)]
            try:
                p = subprocess.run([FUSESCOPE, *EXTRA, "doctor", "--json"], capture_output=True,
                                   text=True, timeout=120)
            finally:
                for fd in fds:
                    os.close(fd)
            self.assertEqual(p.returncode, 0, p.stderr)
            mounts = {e["mount"]: e for e in json.loads(p.stdout)["mounts"]}
            self.assertEqual(mounts[u.mountpoint]["transport"], "io_uring", mounts)
            self.assertEqual(mounts[d.mountpoint]["transport"], "/dev/fuse", mounts)


class OverlayMount:
    """fuse-overlayfs on fresh lower/upper/work dirs."""

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="fusescope-ovl-")
        self.lower, self.upper, self.work, self.mnt = (os.path.join(self.tmp, d) for d in
                                                        ("lower", "upper", "work", "mnt"))
        for d in (self.lower, self.upper, self.work, self.mnt):
            os.mkdir(d)
        subprocess.run(["fuse-overlayfs", "-o",
                        f"lowerdir={self.lower},upperdir={self.upper},workdir={self.work}",
                        self.mnt], check=True, timeout=30)
        return self

    def __exit__(self, *exc):
        subprocess.run(["fusermount3", "-u", self.mnt], check=False, timeout=30)
        if is_mounted(self.mnt):
            subprocess.run(["umount", "-l", self.mnt], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


if __name__ == "__main__":
    unittest.main(verbosity=2)
