"""`fusescope export --web.config.file` with TLS, a client CA (RequireAndVerifyClientCert) and
basic auth, listening on 127.0.0.1 and [::1]: the right client certificate and password get
200 on both; a wrong or missing password 401 (with WWW-Authenticate); no client certificate,
one from another CA, and plain HTTP on the TLS port get no HTTP answer at all. 500 idle
half-open connections (250 that stopped inside the TLS handshake, 250 inside an HTTP request)
do not delay a scrape (it completes within 1 s) and cost a bounded amount of memory; an idle
connection is closed after the server's idle timeout."""

import os
import shutil
import socket
import ssl
import tempfile
import time
import unittest

from exporthelp import Exporter, free_port, http_get, metric_value, rss_bytes, skip_unless_root
from fusemount import testfs_mount
from webtls import make_pki, ssl_context, write_web_config

USER, PASSWORD = "prometheus", "correct horse"
IDLE = 500
# Per idle connection: libmicrohttpd's request buffer (16 KiB at most), a GnuTLS session and
# its record buffers for the established ones. 64 KiB each is a generous bound.
MAX_BYTES_PER_IDLE = 64 * 1024


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (BPF, FUSE mounts)")
        cls.tmp = tempfile.mkdtemp(prefix="fusescope-tls-")
        cls.pki = make_pki(cls.tmp)
        web = write_web_config(os.path.join(cls.tmp, "web.yml"), cls.pki, {USER: PASSWORD},
                               "RequireAndVerifyClientCert")
        cls.port = free_port()
        cls.mount = testfs_mount("--direct-io")
        cls.m = cls.mount.__enter__()
        try:
            cls.ex = Exporter(cls.m.mountpoint, "--web.config.file", web,
                              listen=[f"127.0.0.1:{cls.port}", f"[::1]:{cls.port}"],
                              context=ssl_context(cls.pki), auth=(USER, PASSWORD))
        except BaseException:
            cls.mount.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        rc = cls.ex.stop()
        cls.mount.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, f"exporter exited {rc}: {cls.ex.stderr()}"

    def get(self, path="/metrics", addr=None, context=None, auth=(USER, PASSWORD)):
        return http_get(self.ex.url(path, addr), context=context or ssl_context(self.pki), auth=auth)

    def test_client_certificate_and_password_on_ipv4_and_ipv6(self):
        self.assertIn("https://127.0.0.1:", self.ex.stderr())
        self.assertIn(f"https://[::1]:{self.port}/metrics", self.ex.stderr())
        for addr in (f"127.0.0.1:{self.port}", f"[::1]:{self.port}"):
            with self.subTest(addr=addr):
                status, ctype, body = self.get(addr=addr)
                self.assertEqual(status, 200, body)
                self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
                self.assertIn("fusescope_build_info{", body)
                self.assertEqual(self.get("/-/ready", addr=addr)[0], 200)

    def test_wrong_or_missing_password_is_401(self):
        for auth in [(USER, "wrong"), ("nobody", PASSWORD), (USER, ""), None]:
            with self.subTest(auth=auth):
                status, _, body = self.get(auth=auth)
                self.assertEqual(status, 401, body)
                self.assertNotIn("fusescope_", body)
        # the challenge Prometheus and browsers expect
        import urllib.request
        req = urllib.request.Request(self.ex.url("/metrics"))
        try:
            urllib.request.urlopen(req, timeout=5, context=ssl_context(self.pki))
            self.fail("no 401")
        except urllib.error.HTTPError as e:
            self.assertEqual(e.code, 401)
            self.assertEqual(e.headers.get("WWW-Authenticate"), 'Basic realm="fusescope"')

    def expect_no_http_answer(self, context):
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            status, _, body = self.get(context=context)
            self.fail(f"answered {status}: {body[:200]}")

    def test_client_certificate_is_required_and_verified(self):
        self.expect_no_http_answer(ssl_context(self.pki, client=False))
        rogue = ssl_context(self.pki, client=False)
        rogue.load_cert_chain(self.pki.rogue_crt, self.pki.rogue_key)
        self.expect_no_http_answer(rogue)
        # a certificate from the right CA but for servers only (no clientAuth purpose)
        server_as_client = ssl_context(self.pki, client=False)
        server_as_client.load_cert_chain(self.pki.server_crt, self.pki.server_key)
        self.expect_no_http_answer(server_as_client)

    def test_plain_http_on_the_tls_port_fails(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except OSError:
                pass
        self.assertFalse(got.startswith(b"HTTP/"), got[:100])
        self.assertNotIn(b"fusescope_", got)
        with self.assertRaises(OSError):
            http_get(f"http://127.0.0.1:{self.port}/metrics", timeout=10)

    def test_500_idle_half_open_connections(self):
        before = rss_bytes(self.ex.pid)
        conns = []
        try:
            for i in range(IDLE // 2):
                # stopped inside the handshake: the first bytes of a TLS record
                s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                s.sendall(b"\x16\x03\x01\x02")
                conns.append(s)
            for i in range(IDLE - IDLE // 2):
                # through the handshake, then half a request
                raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                s = ssl_context(self.pki).wrap_socket(raw, server_hostname="127.0.0.1")
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                conns.append(s)
            t0 = time.monotonic()
            status, _, body = self.get()
            took = time.monotonic() - t0
            self.assertEqual(status, 200)
            print(f"scrape with {len(conns)} idle connections: {took:.3f} s")
            self.assertLess(took, 1.0)
            self.assertGreaterEqual(metric_value(body, "fusescope_http_connections"), IDLE)
            self.assertGreaterEqual(metric_value(body, "process_open_fds"), IDLE)
            grown = rss_bytes(self.ex.pid) - before
            print(f"RSS {before / 1e6:.1f} MB before, +{grown / 1e6:.1f} MB with {IDLE} idle connections")
            self.assertLess(grown, IDLE * MAX_BYTES_PER_IDLE)
        finally:
            for s in conns:
                s.close()

        def settled():
            n = metric_value(self.get()[2], "fusescope_http_connections")
            return n is not None and n <= 5
        deadline = time.monotonic() + 30
        while not settled() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertTrue(settled(), "closed connections still counted")

    def test_idle_connection_is_closed(self):
        # libmicrohttpd's per-connection idle timeout (10 s): the server ends it, not us
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as s:
            s.sendall(b"\x16\x03\x01")
            t0 = time.monotonic()
            got = b""
            try:
                while chunk := s.recv(4096):
                    got += chunk
            except ConnectionResetError:
                pass
            # nothing, or a TLS alert record (0x15) before the end of the connection
            self.assertTrue(got == b"" or got.startswith(b"\x15\x03"), got)
            print(f"idle connection closed by the server after {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    unittest.main(verbosity=2)
