"""Names are untrusted input: a process that calls itself ESC[2J ESC[31mEVIL (prctl
PR_SET_NAME, as any user may) maps and writes a FUSE file whose name holds ESC too. Not
one raw ESC byte may reach fusescope's text outputs (trace, top -b, diagnose, doctor);
each shows the names escaped as \\x1b. The JSON outputs keep the names exactly."""

import json
import os
import subprocess
import sys
import time
import unittest

from fusemount import MODES, testfs_mount
from fusescope_run import Fusescope
from whowhere import FUSESCOPE, hold_mapping

EVIL = "\x1b[2J\x1b[31mEVIL"  # 13 bytes: fits TASK_COMM_LEN
FILE = "\x1b[31mred"
SEEN = "\\x1b[2J\\x1b[31mEVIL"  # how a text output spells EVIL

# A writer named EVIL: direct-IO writes until stdin closes.
WRITE = r"""
import ctypes, os, sys
ctypes.CDLL(None).prctl(15, sys.argv[2].encode("latin-1"), 0, 0, 0)  # PR_SET_NAME
fd = os.open(sys.argv[1], os.O_WRONLY)
print("writing", flush=True)
for _ in range(200):
    os.pwrite(fd, b"w" * 4096, 0)
os.close(fd)
sys.stdin.read()
"""


class EscapedNames(unittest.TestCase):
    def test_no_raw_escape_in_text_outputs(self):
        with testfs_mount(*MODES["direct-io-allow-mmap"]) as m:
            path = m.path(FILE)
            with open(path, "wb") as f:
                f.write(b"d" * 65536)
            sessions = {
                "trace": Fusescope("trace", "--mount", m.mountpoint),
                "trace --json": Fusescope("trace", "--json", "--mount", m.mountpoint),
                "top -b": Fusescope("top", "-b", "--interval", "0.5", "--mount", m.mountpoint),
                "diagnose": Fusescope("diagnose", "--duration", "60", "--mount", m.mountpoint),
            }
            try:
                sessions["trace"].wait_watching()
                sessions["trace --json"].wait_watching()
                sessions["diagnose"].wait_watching()
                time.sleep(1.0)  # top's first refresh
                holder = hold_mapping(path, 3.0, comm=EVIL)
                writer = subprocess.Popen([sys.executable, "-c", WRITE, path, EVIL],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          text=True)
                self.assertEqual(writer.stdout.readline().strip(), "writing")
                time.sleep(1.5)  # top shows the holder, diagnose saw it all
                doctor = subprocess.run([FUSESCOPE, "doctor"], capture_output=True, timeout=120)
                writer.communicate("", timeout=30)
                holder.wait(timeout=30)
                holder.stdout.close()
                time.sleep(1.0)
            finally:
                results = {name: s.finish() for name, s in sessions.items()}
            results["doctor"] = (doctor.returncode, doctor.stdout, doctor.stderr)
            for name, (rc, out, err) in results.items():
                with self.subTest(output=name):
                    self.assertIn(rc, (0, 5), err)
                    self.assertNotIn(b"\x1b", out, f"raw ESC in {name}'s output")
                    self.assertNotIn(b"\x1b", err, f"raw ESC in {name}'s messages")
            for name in ("trace", "top -b", "diagnose"):
                with self.subTest(output=name):
                    self.assertIn(SEEN.encode(), results[name][1], results[name][1][-2000:])
            self.assertIn(b"\\x1b[31mred", results["trace"][1])
            # JSON keeps the exact names, escaped JSON's way
            events = [json.loads(l) for l in results["trace --json"][1].splitlines()]
            comms = {e["comm"] for e in events if e.get("ino") == os.stat(path).st_ino}
            self.assertIn(EVIL, comms)
            self.assertIn(path, {e.get("path") for e in events})


if __name__ == "__main__":
    unittest.main(verbosity=2)
