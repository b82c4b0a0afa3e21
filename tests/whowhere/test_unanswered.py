"""Never block on the filesystem being diagnosed: with the FUSE server stopped (SIGSTOP),
`diagnose --path FILE` and `diagnose --mount` must not hang in request_wait_answer; they
report "server not answering" (exit 5) and print the report. The server is continued
(SIGCONT) in a finally, before the mount is taken down."""

import json
import os
import signal
import subprocess
import unittest

from fusemount import MODES, testfs_mount
from whowhere import FUSESCOPE

EXIT_FINDINGS = 5
HANG_GUARD_S = 60  # not a timing assertion: a diagnose that hangs fails instead of blocking


class StoppedServer(unittest.TestCase):
    def run_stopped(self, m, *args):
        conn = os.stat(m.mountpoint).st_dev  # asked before the server stops
        os.kill(m.pid, signal.SIGSTOP)
        try:
            p = subprocess.run([FUSESCOPE, "diagnose", "--json", *args], capture_output=True,
                               timeout=HANG_GUARD_S)
        finally:
            os.kill(m.pid, signal.SIGCONT)
        self.assertEqual(p.returncode, EXIT_FINDINGS, p.stderr)
        rep = json.loads(p.stdout)
        found = [f for f in rep["findings"] if f["kind"] == "server_not_answering"]
        self.assertEqual(len(found), 1, rep["findings"])
        self.assertEqual(found[0]["severity"], "critical")
        self.assertIn("not answering", found[0]["title"])
        self.assertFalse(rep["healthy"])
        if os.path.isdir(f"/sys/fs/fuse/connections/{conn}"):
            # fusectl counts the request the lookup left waiting (and any the server held)
            self.assertGreaterEqual(found[0]["evidence"]["waiting"], 1, found[0])
            self.assertIn("requests waiting for at least", found[0]["title"])
        return found[0]

    def test_path_on_a_stopped_server(self):
        with testfs_mount(*MODES["direct-io-allow-mmap"]) as m:
            path = m.path("f")
            with open(path, "wb") as f:
                f.write(b"x" * 4096)
            self.run_stopped(m, "--path", path, "--duration", "0")

    def test_mount_on_a_stopped_server(self):
        with testfs_mount(*MODES["direct-io-allow-mmap"]) as m:
            with open(m.path("f"), "wb") as f:
                f.write(b"x" * 4096)
            self.run_stopped(m, "--mount", m.mountpoint, "--duration", "1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
