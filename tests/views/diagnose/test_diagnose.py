#!/usr/bin/python3
"""Scenario tests of `fusescope diagnose` on the host kernel (issue 7).

Each test mounts fusescope-testfs, starts `fusescope diagnose --mount MNT --duration D`, waits for
its "watching" status line (the census is taken and the probes are attached), runs a
fusescope-load workload inside the window and asserts the report: the JSON schema documented in
include/fusescope/views/diagnose.h, the exit status (0 healthy, 5 findings, 3 bad --path) and,
in text mode, the key sentences.

Environment (ctest sets it): FUSESCOPE, FUSESCOPE_TESTFS, FUSESCOPE_LOAD. Needs root.
"""

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from fusemount import LOAD, IoUringTransport, Transport, run_load, testfs_mount  # noqa: E402
from fusescope_run import FUSESCOPE, Fusescope  # noqa: E402

EXIT_OK, EXIT_ENV, EXIT_FINDINGS = 0, 3, 5
PARALLEL = ("--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap",
            "--write-delay-us", "200")


class Diagnose(Fusescope):
    """A running `fusescope diagnose`, returned once its status stream says "watching";
    result() waits for it and returns (rc, stdout, stderr)."""

    def __init__(self, mount, duration, *extra, json_out=True, ready_timeout=90, global_args=()):
        super().__init__(*global_args, "diagnose", "--mount", mount, "--duration", str(duration),
                         *extra, *(["--json"] if json_out else []))
        try:
            self.wait_watching(ready_timeout)
        except AssertionError:
            self.close()
            raise

    def result(self, timeout=120):
        rc = self.wait(timeout)
        return rc, self.stdout(), self.stderr()

    def report(self, timeout=120):
        rc, out, err = self.result(timeout)
        try:
            rep = json.loads(out)
        except json.JSONDecodeError as e:
            raise AssertionError(f"diagnose printed bad JSON ({e}), rc={rc}: {out!r} {err}")
        return rc, rep


def kinds(rep):
    return [f["kind"] for f in rep["findings"]]


def finding(rep, kind):
    for f in rep["findings"]:
        if f["kind"] == kind:
            return f
    return None


class SchemaMixin:
    def assert_schema(self, rep):
        self.assertEqual(rep["schema_version"], 1)
        self.assertIsInstance(rep["healthy"], bool)
        env = rep["environment"]
        for key in ("kernel", "io_modes", "backend", "roles", "mount", "path", "pid", "events_lost"):
            self.assertIn(key, env)
        self.assertEqual(env["kernel"], os.uname().release)
        self.assertIn(env["backend"], ("tracepoint", "trampoline"))
        self.assertTrue(rep["findings"])
        for f in rep["findings"]:
            for key in ("kind", "severity", "title", "inode", "culprits", "evidence", "cost_ns",
                        "advice"):
                self.assertIn(key, f)
            self.assertIn(f["severity"], ("critical", "warning", "info", "ok"))
            if f["inode"] is not None:
                self.assertEqual(set(f["inode"]),
                                 {"dev", "ino", "path", "path_source", "path_may_be_stale"})
                self.assertIn(f["inode"]["path_source"], ("", "fd", "kernel", "walk", "argument"))
                # only a name the kernel spelled at the first open may be out of date
                self.assertEqual(f["inode"]["path_may_be_stale"],
                                 f["inode"]["path_source"] == "kernel")
            for c in f["culprits"]:
                self.assertIn(c["how"], ("open", "mmap"))
                self.assertIsInstance(c["pid"], int)
            for v in f["evidence"].values():
                self.assertIsInstance(v, (int, float))
            self.assertIsInstance(f["advice"], list)
        # ranked: problems first, by cost
        problems = [f for f in rep["findings"] if f["severity"] in ("critical", "warning")]
        self.assertEqual(rep["findings"][:len(problems)], problems)
        costs = [f["cost_ns"] for f in problems]
        self.assertEqual(costs, sorted(costs, reverse=True))
        self.assertEqual(rep["healthy"], not problems)


@unittest.skipUnless(os.geteuid() == 0, "needs root (BPF, FUSE)")
class Json(Transport, SchemaMixin, unittest.TestCase):
    """Over /dev/fuse; JsonIoUring runs the same over FUSE over io_uring."""

    def test_db_and_indexer_top_finding_is_cache_mode(self):
        with self.mount(*PARALLEL) as m:
            d = Diagnose(m.mountpoint, 7)
            try:
                res = run_load("db-and-indexer", "--file", m.path("db"), "--threads", 4,
                               "--size", 16384, "--duration", 3, "--indexer-delay", 0.5,
                               "--indexer-hold", 1.5, timeout=60)
            finally:
                rc, rep = d.report()
            self.assert_schema(rep)
            self.assertEqual(rc, EXIT_FINDINGS, rep)
            self.assertFalse(rep["healthy"])
            top = rep["findings"][0]
            self.assertEqual(top["kind"], "cache_io_mode", json.dumps(rep, indent=1))
            self.assertIn(top["severity"], ("critical", "warning"))
            ix = res["indexer"]
            culprits = {(c["pid"], c["comm"]) for c in top["culprits"]}
            self.assertIn((ix["pid"], "indexer"), culprits, top)
            self.assertEqual([c["how"] for c in top["culprits"] if c["pid"] == ix["pid"]][0], "mmap")
            self.assertGreater(top["cost_ns"], 0)
            self.assertGreater(top["evidence"]["wait_ns"], 0)
            self.assertGreater(top["evidence"]["cache_mode_writes"], 0)
            self.assertEqual(top["inode"]["ino"], os.stat(m.path("db")).st_ino)
            self.assertEqual(top["inode"]["path"], m.path("db"))
            self.assertTrue(any("O_DIRECT" in a for a in top["advice"]))

    def test_healthy_parallel_run(self):
        with self.mount(*PARALLEL) as m:
            d = Diagnose(m.mountpoint, 4)
            try:
                run_load("parallel", "--file", m.path("db"), "--threads", 4, "--writes", 200,
                         "--size", 16384, timeout=60)
            finally:
                rc, rep = d.report()
            self.assert_schema(rep)
            self.assertEqual(rc, EXIT_OK, json.dumps(rep, indent=1))
            self.assertTrue(rep["healthy"])
            h = finding(rep, "healthy")
            self.assertIsNotNone(h, rep)
            self.assertEqual(h["severity"], "ok")
            self.assertEqual(h["evidence"]["writes"], 800)
            self.assertEqual(h["evidence"]["shared_writes"], 800)
            self.assertEqual(h["evidence"]["exclusive_writes"], 0)
            self.assertEqual(h["evidence"]["files"], 1)

    def test_two_files_written_at_once_are_counted_exactly(self):
        # The threads of two writers share the CPUs, so each CPU's write-cache slot
        # (tracepoint backend) keeps changing inode: counts move from slots to the
        # map while diagnose reads them. Once with the cache off, as the reference.
        writes = 4 * 5000
        for cache in (True, False):
            with self.subTest(write_cache=cache), self.mount(*PARALLEL) as m:
                d = Diagnose(m.mountpoint, 6, global_args=() if cache else ("--no-write-cache",))
                try:
                    with concurrent.futures.ThreadPoolExecutor(2) as pool:
                        runs = [pool.submit(run_load, "parallel", "--file", m.path(name),
                                            "--threads", 4, "--writes", 5000, "--size", 4096,
                                            timeout=120) for name in ("a", "b")]
                        for r in runs:
                            self.assertEqual(r.result()["total_writes"], writes)
                finally:
                    rc, rep = d.report()
                self.assertEqual(rc, EXIT_OK, json.dumps(rep, indent=1))
                h = finding(rep, "healthy")
                self.assertIsNotNone(h, rep)
                self.assertEqual(h["evidence"]["writes"], 2 * writes)
                self.assertEqual(h["evidence"]["shared_writes"], 2 * writes)
                self.assertEqual(h["evidence"]["files"], 2)

    def test_no_parallel_flag(self):
        with self.mount("--direct-io", "--write-delay-us", "200") as m:
            d = Diagnose(m.mountpoint, 4)
            try:
                run_load("parallel", "--file", m.path("db"), "--threads", 4, "--writes", 100,
                         "--size", 16384, timeout=60)
            finally:
                rc, rep = d.report()
            self.assert_schema(rep)
            self.assertEqual(rc, EXIT_FINDINGS)
            self.assertEqual(rep["findings"][0]["kind"], "no_parallel_flag", kinds(rep))
            f = rep["findings"][0]
            self.assertEqual(f["evidence"]["no_parallel_flag_writes"], 400)
            self.assertEqual(f["evidence"]["shared_writes"], 0)
            self.assertEqual(f["severity"], "critical")

    def test_append(self):
        with self.mount(*PARALLEL) as m:
            d = Diagnose(m.mountpoint, 4)
            try:
                run_load("append", "--file", m.path("log"), "--threads", 4, "--writes", 100,
                         "--size", 4096, timeout=60)
            finally:
                rc, rep = d.report()
            self.assert_schema(rep)
            self.assertEqual(rc, EXIT_FINDINGS)
            f = finding(rep, "append")
            self.assertIsNotNone(f, kinds(rep))
            self.assertEqual(rep["findings"][0]["kind"], "append", kinds(rep))
            self.assertEqual(f["evidence"]["append_writes"], 400)
            self.assertEqual(f["inode"]["path"], m.path("log"))

    def test_extend(self):
        with self.mount(*PARALLEL) as m:
            d = Diagnose(m.mountpoint, 4)
            try:
                run_load("extend", "--file", m.path("grow"), "--threads", 2, "--writes", 100,
                         "--size", 4096, timeout=60)
            finally:
                rc, rep = d.report()
            self.assert_schema(rep)
            self.assertEqual(rc, EXIT_FINDINGS)
            self.assertEqual(rep["findings"][0]["kind"], "past_eof", kinds(rep))
            f = rep["findings"][0]
            self.assertGreater(f["evidence"]["past_eof_writes"], 0)
            self.assertTrue(any("fallocate" in a for a in f["advice"]))

    def test_drain_wait_of_a_caching_open(self):
        # A caching O_RDONLY open while parallel direct writers are in flight waits in
        # fuse_file_cached_io_open() for them to drain: diagnose names the opener.
        with self.mount("--direct-io", "--parallel-direct-writes", "--cache-readonly-opens",
                          "--write-delay-us", "2000") as m:
            run_load("parallel", "--file", m.path("db"), "--threads", 1, "--writes", 1)
            d = Diagnose(m.mountpoint, 5)
            try:
                writers = subprocess.Popen([LOAD, "parallel", "--file", m.path("db"), "--threads",
                                            "4", "--writes", "300", "--size", "4096"],
                                           stdout=subprocess.DEVNULL)
                time.sleep(0.3)
                reader = run_load("cached-reader", "--file", m.path("db"), "--opens", 20)
                writers.wait(timeout=60)
            finally:
                rc, rep = d.report()
            self.assert_schema(rep)
            self.assertEqual(rc, EXIT_FINDINGS)
            f = finding(rep, "drain_wait")
            self.assertIsNotNone(f, kinds(rep))
            self.assertGreaterEqual(f["evidence"]["drain_waits"], 1)
            self.assertGreater(f["evidence"]["drain_wait_ns"], 0)
            self.assertIn(reader["pid"], [c["pid"] for c in f["culprits"]], f)

    def test_census_only_reports_present_holder(self):
        """--duration 0: the holder that was there before diagnose started."""
        with self.mount(*PARALLEL) as m:
            with open(m.path("idx"), "wb") as f:
                f.write(b"\0" * 65536)
            holder = subprocess.Popen([LOAD, "mmap-holder", "--file", m.path("idx"),
                                       "--hold-until-signal", "--comm", "old-indexer"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                line = holder.stderr.readline().decode()
                self.assertIn("holding", line)
                p = subprocess.run([FUSESCOPE, "diagnose", "--mount", m.mountpoint, "--duration", "0",
                                    "--path", m.path("idx"), "--json"],
                                   capture_output=True, text=True, timeout=120)
            finally:
                holder.send_signal(signal.SIGTERM)
                holder.communicate(timeout=30)
            rep = json.loads(p.stdout)
            self.assert_schema(rep)
            self.assertEqual(rep["environment"]["path"], m.path("idx"))
            f = finding(rep, "cache_io_mode")
            self.assertIsNotNone(f, kinds(rep))
            self.assertIn({"pid": holder.pid, "comm": "old-indexer", "how": "mmap"},
                          [{k: c[k] for k in ("pid", "comm", "how")} for c in f["culprits"]])
            self.assertTrue([c for c in f["culprits"] if c["pid"] == holder.pid][0]["holding"])

    def test_unknown_path(self):
        with self.mount(*PARALLEL) as m:
            p = subprocess.run([FUSESCOPE, "diagnose", "--mount", m.mountpoint, "--duration", "0",
                                "--path", m.path("no-such-file")],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, EXIT_ENV, p.stderr)
            self.assertEqual(p.stdout, "")
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertIn("no-such-file", p.stderr)


@unittest.skipUnless(os.geteuid() == 0, "needs root (BPF, FUSE)")


class JsonIoUring(IoUringTransport, Json):
    pass


class Text(unittest.TestCase):
    def check_width(self, out):
        for line in out.splitlines():
            self.assertLessEqual(len(line), 80, line)

    def test_db_and_indexer_text(self):
        with testfs_mount(*PARALLEL) as m:
            d = Diagnose(m.mountpoint, 7, json_out=False)
            try:
                res = run_load("db-and-indexer", "--file", m.path("db"), "--threads", 4,
                               "--size", 16384, "--duration", 3, "--indexer-delay", 0.5,
                               "--indexer-hold", 1.5, timeout=60)
            finally:
                rc, out, err = d.result()
            self.assertEqual(rc, EXIT_FINDINGS, out + err)
            self.check_width(out)
            self.assertIn("problem(s) found", out)
            self.assertIn("1. [", out)
            first = " ".join(out.split("1. [", 1)[1].split("\n2. [", 1)[0].split())
            self.assertIn("Cache IO mode forced direct writes onto the exclusive lock", first)
            self.assertIn(f"Cached by indexer ({os.path.realpath(LOAD)}), pid {res['indexer']['pid']} via a shared mmap",
                          first)
            self.assertIn("took the exclusive inode lock because of it", first)
            self.assertIn("Fix:", first)
            self.assertNotIn("HEALTHY", out)

    def test_healthy_and_problems_text(self):
        with testfs_mount(*PARALLEL) as m:
            d = Diagnose(m.mountpoint, 4, json_out=False)
            try:
                run_load("parallel", "--file", m.path("db"), "--threads", 4, "--writes", 200,
                         "--size", 16384, timeout=60)
            finally:
                rc, out, err = d.result()
            self.assertEqual(rc, EXIT_OK, out + err)
            self.check_width(out)
            flat = " ".join(out.split())  # sentences may wrap
            self.assertIn("HEALTHY: nothing is slowing direct-IO writes down.", out)
            self.assertIn("800 writes on 1 file(s)", flat)
            self.assertIn("800 (100%) took the shared lock, 0 exclusive", flat)
        with testfs_mount("--direct-io", "--write-delay-us", "200") as m:
            d = Diagnose(m.mountpoint, 4, json_out=False)
            try:
                run_load("parallel", "--file", m.path("db"), "--threads", 2, "--writes", 50,
                         "--size", 16384, timeout=60)
                run_load("append", "--file", m.path("log"), "--threads", 2, "--writes", 50,
                         "--size", 4096, timeout=60)
            finally:
                rc, out, err = d.result()
            self.assertEqual(rc, EXIT_FINDINGS, out + err)
            self.check_width(out)
            self.assertIn("The server does not grant FOPEN_PARALLEL_DIRECT_WRITES", " ".join(out.split()))
        with testfs_mount(*PARALLEL) as m:
            d = Diagnose(m.mountpoint, 4, json_out=False)
            try:
                run_load("extend", "--file", m.path("grow"), "--writes", 50, "--size", 4096,
                         timeout=60)
                run_load("append", "--file", m.path("log"), "--threads", 2, "--writes", 50,
                         "--size", 4096, timeout=60)
            finally:
                rc, out, err = d.result()
            self.assertEqual(rc, EXIT_FINDINGS, out + err)
            self.check_width(out)
            self.assertIn("Writes past EOF take the exclusive lock", " ".join(out.split()))
            self.assertIn("Appending writes take the exclusive lock", " ".join(out.split()))
            self.assertIn("fallocate", " ".join(out.split()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
