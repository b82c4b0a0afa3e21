"""Paths that outlive their fds: files written and closed before top's refresh or the
exporter's scrape still have their path, as the kernel spelled it at the first open
(path_source "kernel", which may be stale); one renamed after that keeps its old name,
flagged as possibly stale, and one still open has the current path from its descriptor.
The closed-file case runs once more on Debian's bindfs, written and renamed by coreutils'
dd and mv: the kernel's name does not depend on our server or our writer."""

import json
import mmap
import os
import shutil
import subprocess
import time
import unittest

from fusemount import MODES, BindfsMount, testfs_mount
from fusescope_run import Fusescope
from whowhere import free_port, scrape, series


def write_and_close(path, writes=20):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for _ in range(writes):
            os.pwrite(fd, b"w" * 4096, 0)
    finally:
        os.close(fd)


HOOKS = ("--syscall-hooks", "on")


class ClosedFiles(unittest.TestCase):
    def assert_kernel_paths(self, tout, terr, files):
        """top's last frame names each (ino, path) of @files by the kernel's name, marked as
        possibly stale (the file was closed, maybe renamed)"""
        frames = [json.loads(l) for l in tout.decode().splitlines() if l.startswith("{")]
        self.assertTrue(frames, terr)
        rows = {r["ino"]: r for r in frames[-1]["rows"]}
        for ino, path in files:
            with self.subTest(path=path):
                self.assertIn(ino, rows, frames[-1])
                r = rows[ino]
                self.assertEqual((r["path"], r["path_source"], r["path_may_be_stale"]),
                                 (path, "kernel", True))

    def test_closed_and_renamed_files_keep_a_path(self):
        port = free_port()
        with testfs_mount(*MODES["direct-io-allow-mmap"]) as m:
            os.mkdir(m.path("dir"))
            closed, moved = m.path("dir/closed"), m.path("dir/moved")
            # the kernel names a file at its open's syscall exit: a file closed before any
            # census is named only with the syscall hooks (top's and export's are off)
            top = Fusescope(*HOOKS, "top", "-b", "--json", "--interval", "0.5", "--mount",
                          m.mountpoint)
            export = Fusescope(*HOOKS, "export", "--listen", f"127.0.0.1:{port}", "--mount",
                             m.mountpoint)
            try:
                scrape(port)  # attached
                time.sleep(1.0)
                write_and_close(closed)
                write_and_close(moved)
                ino_closed, ino_moved = os.stat(closed).st_ino, os.stat(moved).st_ino
                os.rename(moved, m.path("dir/renamed"))
                time.sleep(1.5)  # refreshes after both were closed
                metrics = scrape(port)
            finally:
                _, tout, terr = top.finish()
                export.stop()
            self.assert_kernel_paths(tout, terr, ((ino_closed, closed), (ino_moved, moved)))
            labelled = {l["path"] for l, _ in series(metrics, "fusescope_inode_writer_processes")}
            self.assertIn(closed, labelled)
            self.assertIn(moved, labelled)
            self.assertNotIn("", labelled)

    @unittest.skipUnless(shutil.which("bindfs"), "needs bindfs")
    def test_closed_file_on_bindfs_written_by_dd_keeps_its_path(self):
        with BindfsMount() as b:
            os.mkdir(os.path.join(b.mnt, "dir"))
            closed = os.path.join(b.mnt, "dir", "closed")
            moved = os.path.join(b.mnt, "dir", "moved")
            top = Fusescope(*HOOKS, "top", "-b", "--json", "--interval", "0.5", "--mount", b.mnt)
            try:
                time.sleep(1.5)  # attached
                for path in (closed, moved):
                    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=4096", "count=20",
                                    "status=none"], check=True, timeout=60)
                ino_closed, ino_moved = os.stat(closed).st_ino, os.stat(moved).st_ino
                subprocess.run(["mv", moved, os.path.join(b.mnt, "dir", "renamed")], check=True,
                               timeout=60)
                time.sleep(1.5)  # refreshes after both were closed
            finally:
                _, tout, terr = top.finish()
            self.assert_kernel_paths(tout, terr, ((ino_closed, closed), (ino_moved, moved)))

    def test_an_open_file_has_its_current_path(self):
        with testfs_mount(*MODES["direct-io-allow-mmap"]) as m:
            first, now = m.path("first"), m.path("now")
            top = Fusescope("top", "-b", "--json", "--interval", "0.5", "--mount", m.mountpoint)
            fd = None
            try:
                time.sleep(1.5)
                fd = os.open(first, os.O_RDWR | os.O_CREAT, 0o644)
                os.pwrite(fd, b"w" * 4096, 0)
                ino = os.fstat(fd).st_ino
                os.rename(first, now)
                time.sleep(0.5)
                # a census (top's periodic one, or the mode change an mmap makes) reads the fd
                mm = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ)
                time.sleep(2.0)
                mm.close()
            finally:
                if fd is not None:
                    os.close(fd)
                _, tout, terr = top.finish()
            frames = [json.loads(l) for l in tout.decode().splitlines() if l.startswith("{")]
            rows = [r for r in frames[-1]["rows"] if r["ino"] == ino]
            self.assertEqual(len(rows), 1, frames[-1])
            self.assertEqual((rows[0]["path"], rows[0]["path_source"],
                              rows[0]["path_may_be_stale"]), (now, "fd", False))


if __name__ == "__main__":
    unittest.main(verbosity=2)
