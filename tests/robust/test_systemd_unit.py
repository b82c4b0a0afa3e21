#!/usr/bin/python3
"""dist/fusescope-exporter.service: `systemd-analyze verify` accepts it (with ExecStart
pointed at the built binary), it has the hardening options, and its capability bounding
set holds what fusescope needs to attach and what it keeps afterwards
(include/fusescope/core/privileges.h). Running it needs systemd as PID 1, which the test
containers do not have: that part is not tested here."""

import os
import shutil
import subprocess
import tempfile
import unittest

SRC = os.environ.get("FUSESCOPE_SOURCE_DIR",
                     os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
UNIT = os.path.join(SRC, "dist", "fusescope-exporter.service")
FUSESCOPE = os.environ.get("FUSESCOPE", "/usr/local/bin/fusescope")


def settings(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


class Unit(unittest.TestCase):
    def setUp(self):
        with open(UNIT) as f:
            self.text = f.read()
        self.s = settings(self.text)

    def test_hardening(self):
        want = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                "PrivateDevices": "yes", "ProtectKernelModules": "yes",
                "ProtectKernelTunables": "yes", "ProtectControlGroups": "yes",
                "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "RestrictSUIDSGID": "yes",
                "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
                "ProtectKernelLogs": "yes"}
        for k, v in want.items():
            self.assertEqual(self.s.get(k), [v], k)
        self.assertIn(self.s.get("ProtectHome"), (["yes"], ["read-only"], ["tmpfs"]))
        self.assertIn("--listen 127.0.0.1:", self.s["ExecStart"][0])

    def test_capabilities(self):
        caps = set(self.s["CapabilityBoundingSet"][0].split())
        attach = {"CAP_BPF", "CAP_PERFMON", "CAP_SETPCAP"}
        kept = {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}
        self.assertTrue(attach | kept <= caps, caps)
        for never in ("CAP_SYSLOG", "CAP_NET_ADMIN", "CAP_SYS_MODULE", "CAP_SETUID",
                      "CAP_DAC_OVERRIDE", "CAP_NET_RAW", "CAP_SYS_RAWIO"):
            self.assertNotIn(never, caps)
        with open(os.path.join(SRC, "src", "core", "privileges.cpp")) as f:
            src = f.read()
        for c in kept:
            self.assertIn(c, src, "privileges.cpp keeps a different set than the unit says")

    @unittest.skipUnless(shutil.which("systemd-analyze"), "no systemd-analyze")
    def test_systemd_analyze_verify(self):
        exe = FUSESCOPE if os.path.isabs(FUSESCOPE) and os.access(FUSESCOPE, os.X_OK) \
            else shutil.which("true")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "fusescope-exporter.service")
            with open(path, "w") as f:
                f.write(self.text.replace("/usr/local/bin/fusescope", exe))
            r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(r.stderr.strip(), "", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
