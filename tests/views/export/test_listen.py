"""`fusescope export` with a malformed --web.listen-address (or its alias --listen), or an address
already in use: one clear line on stderr, a non-zero status (2 = usage, 3 = environment), no
exception, no hang. IPv6 ([::1]) works, alone and next to an IPv4 address."""

import os
import socket
import subprocess
import sys
import unittest

from exporthelp import FUSESCOPE, Exporter, free_port, http_get, skip_unless_root
from fusemount import testfs_mount


def run_export(*args):
    return subprocess.run([FUSESCOPE, "export", *args], capture_output=True, text=True, timeout=30)


class ListenTest(unittest.TestCase):
    def check_one_line(self, p, code):
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, f"expected one line on stderr, got {p.stderr!r}")
        self.assertIn("fusescope export", lines[0])
        self.assertNotIn("terminate", lines[0])
        self.assertEqual(p.returncode, code, p.stderr)

    def test_malformed(self):
        for bad in ["nonsense", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:0",
                    "127.0.0.1:80x", "1.2.3:9", "[::1]9", "[::1:9", "::1:9", "host.example:9",
                    "[]:9", "127.0.0.1:-1"]:
            for flag in ("--listen", "--web.listen-address"):
                with self.subTest(listen=bad, flag=flag):
                    p = run_export(flag, bad, "--mount", "/")
                    self.check_one_line(p, 2)
                    self.assertIn("--web.listen-address", p.stderr)

    def test_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            p = run_export("--listen", f"127.0.0.1:{port}", "--mount", "/")
        self.check_one_line(p, 3)
        self.assertIn("in use", p.stderr)

    def test_ipv6(self):
        skip_unless_root(self)
        port = free_port()
        with testfs_mount("--direct-io") as m, \
                Exporter(m.mountpoint, listen=[f"[::1]:{port}", f"127.0.0.1:{port}"]) as ex:
            self.assertIn(f"http://[::1]:{port}/metrics", ex.stderr())
            for addr in (f"[::1]:{port}", f"127.0.0.1:{port}"):
                with self.subTest(addr=addr):
                    status, _, body = http_get(f"http://{addr}/metrics")
                    self.assertEqual(status, 200)
                    self.assertIn("fusescope_build_info{", body)
            # [::1] is IPv6 only: it does not take the IPv4-mapped loopback
            with socket.socket(socket.AF_INET6) as s:
                s.settimeout(5)
                self.assertNotEqual(s.connect_ex(("::ffff:127.0.0.2", port)), 0)

    def test_not_local_address(self):
        # 192.0.2.0/24 is TEST-NET-1: not an address of this machine
        p = run_export("--listen", f"192.0.2.1:{free_port()}", "--mount", "/")
        self.check_one_line(p, 3)


if __name__ == "__main__":
    unittest.main(verbosity=2)
