"""Holders and writers without the syscall hooks (the default of top and export).

While a syscalls:* tracepoint is attached every syscall on the machine takes the kernel's slow
path, so top and export find opens by the opener's FUSE_OPEN/FUSE_CREATE and a census of that
process (src/model/open_hints.cpp) instead of the open/mmap syscall exits. The same workload of
programs we did not write (coreutils' tail and dd, Debian's vmtouch) runs once with
`--syscall-hooks on` and once with `off`; both must report exactly what was done, and the same:
on fusescope-testfs, and on a server we did not write either (Debian's bindfs, where every open
is a caching open).
"""

import contextlib
import json
import os
import shutil
import subprocess
import time
import unittest

from fusemount import BindfsMount, testfs_mount
from fusescope_run import Fusescope, bpf_prog_ids_of

BACKEND = os.environ.get("FUSESCOPE_BACKEND")
EXTRA = ("--backend", BACKEND) if BACKEND else ()
CACHING = ("--direct-io", "--parallel-direct-writes", "--cache-readonly-opens",
           "--direct-io-allow-mmap")  # O_RDONLY opens are caching opens
DIRECT = ("--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap")
BLOCKS = 2048  # 4 KiB each: dd writes for ~0.1-0.5 s


def bpf_programs_of(pid):
    """names of the BPF programs process @pid holds open"""
    out = subprocess.run(["bpftool", "--json", "prog", "show"], capture_output=True, text=True,
                         check=True).stdout
    ids = bpf_prog_ids_of(pid)
    return {p.get("name", "") for p in json.loads(out) if p.get("id") in ids}


def summarize(snapshot, paths):
    """{name: {"holders": {(comm, how): (holds, holding_now, entered)}, "writers": {comm:
    opens}, "since_before_start": [...]}} of the rows of @paths ({path: name}); other tests'
    mounts may be in the snapshot too"""
    got = {}
    mounts = {os.path.dirname(p) for p in paths}
    for row in snapshot["rows"]:
        name = paths.get(row.get("path"))
        if name is None:
            if row.get("mount") in mounts:  # ours, but not named: say so in the diff
                got[f"unnamed {row.get('mount')} ino {row.get('ino')}"] = (
                    row.get("path"), row["writers"], row["holder_programs"])
            continue
        got[name] = {
            "holders": {(p["comm"], p["how"]): (p["holds"], p["holding_now"],
                                                p["entered_cache_mode"])
                        for p in row["holder_programs"]},
            "writers": {w["comm"]: w["opens"] for w in row["writers"]},
            "since_before_start": sorted(h["since_before_start"] for h in row["holders_now"]),
        }
    return got


class OpensWithoutSyscallHooks(unittest.TestCase):
    maxDiff = None

    def run_workload(self, syscall_hooks, mounts):
        """@mounts: a context manager giving the directory of a mount whose read-only opens
        are caching opens and that of a direct-IO mount (None: the server has none)"""
        procs = []
        with mounts() as (cdir, ddir):
            files = [f"{cdir}/f1", f"{cdir}/f2"] + ([f"{ddir}/f3"] if ddir else [])
            for path in files:
                subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=4k", f"count={BLOCKS}",
                                "oflag=direct", "status=none"], check=True)
            top = Fusescope(*EXTRA, "--syscall-hooks", syscall_hooks, "top", "-b", "--json",
                            "--interval", "0.3", "--rows", "0")
            top.wait_watching()
            progs = bpf_programs_of(top.proc.pid)
            try:
                for _ in range(3):  # three caching opens, apart: each census sees one more
                    procs.append(subprocess.Popen(["tail", "-f", f"{cdir}/f1"],
                                                  stdout=subprocess.DEVNULL))
                    time.sleep(0.3)
                procs[0].kill()  # one hold ends by its release
                procs[0].wait()
                # a caching open that also maps; a direct-IO open whose shared map holds
                for path in files[1:]:
                    procs.append(subprocess.Popen(["vmtouch", "-l", "-q", path],
                                                  stdout=subprocess.DEVNULL))
                # direct-IO writers, one of an existing file, one creating its file
                # (FUSE_CREATE); each writes for longer than the census after its open takes
                # (a writer gone by then is counted but not named: open_hints.h)
                for path, conv in ((f"{cdir}/f1", ["conv=notrunc"]), (f"{cdir}/new", [])):
                    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=4k",
                                    f"count={BLOCKS}", "oflag=direct", *conv, "status=none"],
                                   check=True)
                time.sleep(1.5)  # past the hints' census and a few refreshes
                code, out, err = top.finish()
            finally:
                top.close()
                for p in procs:
                    p.kill()
                    p.wait()
        self.assertEqual(code, 0, err)
        snaps = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        paths = {f"{cdir}/{n}": n for n in ("f1", "f2", "new")}
        if ddir:
            paths[f"{ddir}/f3"] = "f3"
        return summarize(snaps[-1], paths), progs

    def assert_both_ways(self, mounts, want):
        results = {}
        for hooks in ("on", "off"):
            with self.subTest(syscall_hooks=hooks):
                got, progs = self.run_workload(hooks, mounts)
                syscall_progs = sorted(p for p in progs if p.startswith("fs_sys_"))
                if hooks == "off":
                    self.assertEqual(syscall_progs, [], "no syscall is taxed")
                    self.assertIn("fs_request_send", progs)
                elif not BACKEND or BACKEND == "tracepoint":
                    self.assertIn("fs_sys_exit_openat", syscall_progs)
                self.assertEqual(got, want)
                results[hooks] = got
        self.assertEqual(results.get("on"), results.get("off"))

    def test_both_ways_report_exactly_what_was_done(self):
        @contextlib.contextmanager
        def testfs_mounts():
            with testfs_mount(*CACHING) as cm, testfs_mount(*DIRECT) as dm:
                yield cm.mountpoint, dm.mountpoint

        want = {
            "f1": {"holders": {("tail", "open"): (3, 2, 1)}, "writers": {"dd": 1},
                   "since_before_start": [False, False]},
            "f2": {"holders": {("vmtouch", "open"): (1, 1, 1)}, "writers": {},
                   "since_before_start": [False]},
            "f3": {"holders": {("vmtouch", "mmap"): (1, 1, 1)}, "writers": {},
                   "since_before_start": [False]},
            "new": {"holders": {}, "writers": {"dd": 1}, "since_before_start": []},
        }
        self.assert_both_ways(testfs_mounts, want)

    @unittest.skipUnless(shutil.which("bindfs"), "bindfs not installed")
    def test_bindfs_both_ways_report_exactly_what_was_done(self):
        # bindfs (libfuse2, no direct_io here): every open is a caching open, dd's too, so dd
        # holds cache mode while it writes (O_DIRECT on a caching open): on f1 behind the
        # tails that hold it already, on the file it creates (FUSE_CREATE) as the first.
        # Without FUSE_DIRECT_IO_ALLOW_MMAP there is no direct-IO open to map (no f3).
        @contextlib.contextmanager
        def bindfs_mount():
            with BindfsMount() as bm:
                yield bm.mnt, None

        want = {
            "f1": {"holders": {("tail", "open"): (3, 2, 1), ("dd", "open"): (1, 0, 0)},
                   "writers": {"dd": 1}, "since_before_start": [False, False]},
            "f2": {"holders": {("vmtouch", "open"): (1, 1, 1)}, "writers": {},
                   "since_before_start": [False]},
            "new": {"holders": {("dd", "open"): (1, 0, 1)}, "writers": {"dd": 1},
                    "since_before_start": []},
        }
        self.assert_both_ways(bindfs_mount, want)


if __name__ == "__main__":
    unittest.main(verbosity=2)
