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
        # loopback by default, TLS and basic auth from the web config
        self.assertIn("FUSESCOPE_LISTEN=127.0.0.1:", self.s["Environment"][0])
        self.assertIn("--web.listen-address ${FUSESCOPE_LISTEN}", self.s["ExecStart"][0])
        self.assertIn("--web.config.file ${FUSESCOPE_WEB_CONFIG}", self.s["ExecStart"][0])
        self.assertIn("FUSESCOPE_WEB_CONFIG=/etc/fusescope/web.yml", self.s["Environment"][0])
        self.assertGreaterEqual(int(self.s["LimitNOFILE"][0]), 1024 + 128)

    @unittest.skipUnless(shutil.which("openssl"), "no openssl")
    def test_shipped_web_config_is_accepted(self):
        # dist/web.yml with real files where it names them: past the web config checks
        from webtls import make_pki
        with tempfile.TemporaryDirectory() as d:
            pki = make_pki(d)
            shutil.copy(pki.server_crt, os.path.join(d, "fusescope.crt"))
            shutil.copy(pki.server_key, os.path.join(d, "fusescope.key"))
            shutil.copy(os.path.join(SRC, "dist", "web.yml"), os.path.join(d, "web.yml"))
            r = subprocess.run([FUSESCOPE, "export", "--web.config.file", os.path.join(d, "web.yml"),
                                "--web.listen-address", "127.0.0.1:1", "--mount", "/nonexistent-fusescope"],
                               capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 2, r.stderr)
        self.assertNotIn("web.config.file", r.stderr)

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
