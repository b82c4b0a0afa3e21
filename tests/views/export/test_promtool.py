"""`curl -s 127.0.0.1:PORT/metrics | promtool check metrics` is clean while fusescope export watches
a fusescope-testfs mount under direct-IO write load; `/` links to /metrics."""

import subprocess
import threading
import unittest

from exporthelp import Exporter, http_get, skip_unless_root
from fusemount import run_load, testfs_mount

TESTFS_OPTS = ("--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap", "--write-delay-us", "200")


class PromtoolTest(unittest.TestCase):
    def setUp(self):
        skip_unless_root(self)

    def test_metrics_are_clean(self):
        with testfs_mount(*TESTFS_OPTS) as m, Exporter(m.mountpoint, "--per-inode-top", "3") as ex:
            # some writes of every kind: parallel writers plus an indexer holding cache mode
            run_load("db-and-indexer", "--file", m.path("db"), "--threads", "4", "--duration", "4",
                     "--size", "4096", "--indexer-delay", "1", "--indexer-hold", "2")
            run_load("parallel", "--file", m.path("other"), "--threads", "2", "--writes", "50", "--size", "4096")
            status, ctype, page = http_get(f"http://{ex.addr}/")
            self.assertEqual(status, 200)
            self.assertIn("text/html", ctype)
            self.assertIn('href="/metrics"', page)

            # wait for a refresh that saw the writes
            body = ""
            for _ in range(50):
                body = ex.metrics()
                if "fusescope_inode_writes_total{" in body:
                    break
                threading.Event().wait(0.2)
            self.assertIn("fusescope_writes_total{", body)
            self.assertIn("fusescope_lock_wait_seconds_bucket{", body)
            self.assertIn('le="+Inf"', body)
            self.assertIn("fusescope_build_info{", body)
            self.assertIn("process_resident_memory_bytes ", body)
            self.assertIn("fusescope_probes_attached{", body)
            self.assertIn("fusescope_scrape_duration_seconds", body)
            self.assertIn("fusescope_inode_write_lock_wait_seconds_total{", body)
            self.assertNotIn("pid=", body)

            curl = subprocess.run(["curl", "-sf", f"http://{ex.addr}/metrics"], capture_output=True, timeout=30)
            self.assertEqual(curl.returncode, 0, curl.stderr)
            check = subprocess.run(["promtool", "check", "metrics"], input=curl.stdout, capture_output=True,
                                   timeout=30)
            self.assertEqual(check.returncode, 0,
                             f"promtool: {check.stdout.decode()} {check.stderr.decode()}")
            self.assertEqual(check.stdout.decode().strip() + check.stderr.decode().strip(), "",
                             "promtool reported problems")

            # per-inode series only for the top-K: 3 inodes at most
            inodes = {line.split("ino=\"")[1].split("\"")[0] for line in body.splitlines()
                      if line.startswith("fusescope_inode_writes_total{")}
            self.assertLessEqual(len(inodes), 3)
            self.assertGreaterEqual(len(inodes), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
