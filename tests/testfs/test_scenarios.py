#!/usr/bin/python3
"""fusescope-load scenarios other than the plain writers: mixed finishes and leaves consistent
data, db-and-indexer reports its indexer, mmap-holder and cached-reader behave as documented."""

import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fusemount import (LOAD, pattern_block, passthrough_supported, run_load,  # noqa: E402
                       testfs_mount)

MIXED_MODES = {
    "direct-io": ["--direct-io", "--parallel-direct-writes"],
    "direct-io-allow-mmap": ["--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap"],
    "cached": [],
    "cache-readonly-opens": ["--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap",
                             "--cache-readonly-opens"],
}


@unittest.skipUnless(os.geteuid() == 0, "needs root (mounts FUSE)")
class Mixed(unittest.TestCase):
    def test_mixed_finishes_in_every_mode(self):
        modes = dict(MIXED_MODES)
        if passthrough_supported():
            modes["passthrough"] = ["--passthrough"]
        for name, opts in modes.items():
            with self.subTest(mode=name), testfs_mount(*opts) as m:
                t0 = time.monotonic()
                res = run_load("mixed", "--file", m.path("mixed.dat"), "--duration", 2,
                               "--file-size", 4 << 20, timeout=60)
                self.assertLess(time.monotonic() - t0, 30)
                self.assertEqual(res["verify_errors"], 0)
                self.assertEqual(res["unexpected_errors"], 0, res)
                ops = res["ops"]
                self.assertGreater(ops["dio_write"], 0)
                self.assertGreater(ops["buffered_write"], 0)
                self.assertGreater(ops["cached_open"], 0)
                # Plain direct-io mounts refuse shared maps; everything else must map.
                self.assertEqual(res["mmap_refused"], name == "direct-io")
                if name != "direct-io":
                    self.assertGreater(ops["mmap_write"], 0)
                # The server is still alive and serving.
                self.assertEqual(os.stat(m.path("mixed.dat")).st_size, 4 << 20)
                self.assertIsNone(m.proc.poll())


@unittest.skipUnless(os.geteuid() == 0, "needs root (mounts FUSE)")
class Story(unittest.TestCase):
    def test_db_and_indexer(self):
        with testfs_mount("--direct-io", "--parallel-direct-writes",
                          "--direct-io-allow-mmap", "--write-delay-us", "200") as m:
            res = run_load("db-and-indexer", "--file", m.path("db"), "--threads", 4,
                           "--writes", 300, "--size", 16384, "--indexer-delay", 0.1,
                           "--indexer-hold", 0.2, "--verify")
            self.assertEqual(res["total_writes"], 1200)
            self.assertEqual(res["verify_errors"], 0)
            ix = res["indexer"]
            self.assertGreater(ix["pid"], 0)
            self.assertNotEqual(ix["pid"], res["pid"])
            self.assertEqual(ix["comm"], "indexer")
            self.assertEqual(ix["error"], "")
            self.assertEqual(ix["exit_status"], 0)
            self.assertEqual(ix["length"], 1200 * 16384)
            self.assertGreater(ix["unmapped_at_s"], ix["mapped_at_s"])
            self.assertGreaterEqual(ix["mapped_at_s"], 0.1)

    def test_db_and_indexer_by_duration(self):
        with testfs_mount("--direct-io", "--parallel-direct-writes",
                          "--direct-io-allow-mmap") as m:
            res = run_load("db-and-indexer", "--file", m.path("db"), "--threads", 2,
                           "--writes", 50, "--size", 4096, "--duration", 1,
                           "--indexer-delay", 0.2, "--indexer-hold", 0.2, "--verify")
            self.assertGreaterEqual(res["duration_s"], 1.0)
            self.assertGreater(res["total_writes"], 100)
            self.assertEqual(res["errors"], 0)
            self.assertEqual(res["verify_errors"], 0)

    def test_mmap_holder_signals_and_comm(self):
        with testfs_mount("--direct-io", "--direct-io-allow-mmap") as m:
            with open(m.path("f"), "wb") as f:
                f.write(pattern_block(0, 3 * 4096))
            p = subprocess.Popen([LOAD, "mmap-holder", "--file", m.path("f"),
                                  "--hold-until-signal", "--comm", "holder-x"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                self.assertEqual(p.stderr.readline().strip(), f"holding {p.pid}")
                with open(f"/proc/{p.pid}/comm") as c:
                    self.assertEqual(c.read().strip(), "holder-x")
                with open(f"/proc/{p.pid}/maps") as maps:
                    self.assertIn(m.path("f"), maps.read())
                p.send_signal(signal.SIGUSR1)
                out, err = p.communicate(timeout=10)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            self.assertEqual(p.returncode, 0, err)
            self.assertIn(f"released {p.pid}", err)
            import json
            res = json.loads(out)
            self.assertEqual(res["pid"], p.pid)
            self.assertEqual(res["pages_touched"], 3)
            self.assertEqual(res["ended_by"], "SIGUSR1")

    def test_mmap_holder_timed_and_extends(self):
        with testfs_mount() as m:
            open(m.path("empty"), "wb").close()
            res = run_load("mmap-holder", "--file", m.path("empty"), "--size", 8192,
                           "--hold", 0.2)
            self.assertTrue(res["extended"])
            self.assertEqual(res["ended_by"], "timeout")
            self.assertGreaterEqual(res["held_s"], 0.2)
            self.assertEqual(os.path.getsize(m.backing_path("empty")), 8192)

    def test_cached_reader(self):
        with testfs_mount("--direct-io", "--cache-readonly-opens") as m:
            with open(m.path("f"), "wb") as f:
                f.write(b"y" * 100000)
            res = run_load("cached-reader", "--file", m.path("f"), "--opens", 7,
                           "--open-hold-ms", 1)
            self.assertEqual(res["opens"], 7)
            self.assertEqual(res["errors"], 0)
            self.assertEqual(res["bytes_read"], 7 * 65536)


if __name__ == "__main__":
    unittest.main(verbosity=2)
