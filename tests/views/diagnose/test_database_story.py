"""The story fusescope exists for, with software we did not write.

A real database engine from Debian (MariaDB's InnoDB: O_DIRECT data files, native AIO
through io_uring) runs on fusescope-testfs with parallel direct writes, allow-mmap and
async DIO (libfuse3's default); a real program from Debian (vmtouch) maps one of its data
files shared and holds the mapping, as an indexer or a virus scanner would, while the
database writes. `diagnose` must name that program and count the exclusive cache-mode
writes on that file (not call the run healthy), and `top` must show the file cached with
vmtouch holding it. Host only: a database does not fit the VM guests.
"""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fusemount import MODES, testfs_mount  # noqa: E402
from fusescope_run import FUSESCOPE  # noqa: E402
from realapps import MariaDB, mariadb_available  # noqa: E402
from test_diagnose import Diagnose, finding  # noqa: E402


def flush_table(db):
    # Writes the table's dirty pages to its .ibd now (InnoDB's page cleaner would, later).
    db.sql("FLUSH TABLES fsw.t FOR EXPORT; UNLOCK TABLES;")


@unittest.skipUnless(mariadb_available(), "MariaDB is not installed")
class DatabaseStory(unittest.TestCase):
    def test_indexer_mapping_a_data_file_is_named_and_its_writes_counted(self):
        with testfs_mount(*MODES["direct-io-allow-mmap"]) as m, MariaDB(m.path("data")) as db:
            self.assertIn(db.aio(), ("io_uring", "libaio"), db.error_log())
            db.write_workload(clients=2, transactions=20, rows=20)
            flush_table(db)  # quiet: no dirty pages of the table left before watching
            ibd = m.path("data", "fsw", "t.ibd")
            diag = Diagnose(m.mountpoint, 10)
            indexer = subprocess.Popen(["vmtouch", "-l", "-q", ibd])
            try:
                time.sleep(1)
                top = subprocess.run([FUSESCOPE, "top", "-b", "-n", "1", "--rows", "0",
                                      "--mount", m.mountpoint], capture_output=True,
                                     text=True, timeout=60)
                for _ in range(5):
                    db.sql("update fsw.t set k = k + 1")
                flush_table(db)
            finally:
                indexer.terminate()
                indexer.wait(timeout=30)
            rc, rep = diag.report()

        self.assertEqual(rc, 5, json.dumps(rep, indent=1))
        self.assertFalse(rep["healthy"])
        f = finding(rep, "cache_io_mode")
        self.assertIsNotNone(f, json.dumps(rep, indent=1))
        self.assertTrue(f["inode"]["path"].endswith("/data/fsw/t.ibd"), f["inode"])
        self.assertIn((indexer.pid, "vmtouch", "mmap"),
                      [(c["pid"], c["comm"], c["how"]) for c in f["culprits"]], f)
        ev = f["evidence"]
        # every write on the table's file while vmtouch held it took the lock exclusively
        # for cache IO mode, and nothing else wrote it in the window
        self.assertGreater(ev["cache_mode_writes"], 0, f)
        self.assertEqual(ev["cache_mode_writes"], ev["exclusive_writes"], f)
        self.assertEqual(ev["exclusive_writes"], ev["writes"], f)
        self.assertTrue(any("vmtouch" in a for a in f["advice"]), f["advice"])

        self.assertEqual(top.returncode, 0, top.stderr)
        rows = [line for line in top.stdout.splitlines() if "t.ibd" in line]
        self.assertEqual(len(rows), 1, top.stdout)
        self.assertIn("cached", rows[0])
        self.assertIn("vmtouch", rows[0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
