#!/usr/bin/python3
"""The exporter binds 127.0.0.1 by default, and survives malformed and oversized requests
sent on a raw socket: it keeps answering /metrics and exits 0 on SIGTERM."""

import os
import signal
import socket
import time
import unittest
import urllib.request

from fusemount import testfs_mount
from robusthelp import Running, wait_for


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.status, r.read().decode()


def listening(pid):
    """(ip, port) of the TCP sockets pid listens on, from /proc/net/tcp{,6}."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    out = []
    for name in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{name}") as f:
            for line in f.readlines()[1:]:
                p = line.split()
                if p[3] == "0A" and p[9] in inodes:  # LISTEN
                    addr, port = p[1].split(":")
                    if name == "tcp":
                        ip = socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1])
                    else:
                        ip = "v6:" + addr
                    out.append((ip, int(port, 16)))
    return out


def send_raw(port, data, read=True, timeout=10):
    """Sends data, returns what came back (b"" if the server closed or reset)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            return b""  # the server closed while we were still sending: fine
        got = b""
        if read:
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except OSError:
                pass
        return got


def cap_sets(pid):
    with open(f"/proc/{pid}/status") as f:
        st = dict(l.split(":", 1) for l in f if ":" in l)
    return {k: int(st[k].strip(), 16) for k in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb")}, \
        st["NoNewPrivs"].strip()


def counter(body, name):
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return None


# CAP_DAC_READ_SEARCH 2, CAP_SYS_PTRACE 19, CAP_PERFMON 38, CAP_BPF 39 (privileges.h)
KEPT = (1 << 2) | (1 << 19) | (1 << 38) | (1 << 39)

BAD_REQUESTS = [
    ("binary garbage", bytes(range(256)) * 8 + b"\r\n\r\n"),
    ("no method", b"\r\n\r\n"),
    ("bad version", b"GET /metrics HTTP/9.9\r\n\r\n"),
    ("bad method", b"FROB /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("header without colon", b"GET /metrics HTTP/1.1\r\nnot a header\r\n\r\n"),
    ("1 MB header", b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"),
    ("1 MB URI", b"GET /" + b"m" * (1 << 20) + b" HTTP/1.1\r\n\r\n"),
    ("10000 headers", b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 10000 + b"\r\n"),
    ("negative length", b"POST /metrics HTTP/1.1\r\nContent-Length: -5\r\n\r\nabc"),
    ("huge length", b"POST /metrics HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\nabc"),
    ("bad chunk", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n"),
    ("path traversal", b"GET /../../../../etc/shadow HTTP/1.1\r\n\r\n"),
    ("NUL in path", b"GET /metrics\x00/x HTTP/1.1\r\n\r\n"),
    ("truncated", b"GET /metr"),
]


@unittest.skipUnless(os.geteuid() == 0, "needs root (BPF, FUSE mounts)")
class Exporter(unittest.TestCase):
    def test_default_listen_is_loopback(self):
        with testfs_mount("--direct-io") as m:
            with Running("export", "--mount", m.mountpoint) as e:
                try:
                    e.wait_attached("serving ")
                except AssertionError:
                    if "already in use" in e.stderr():
                        self.skipTest("default port busy (another exporter): " + e.stderr())
                    raise
                self.assertIn("http://127.0.0.1:10100/metrics", e.stderr())
                self.assertEqual(listening(e.pid), [("127.0.0.1", 10100)])
                e.signal(signal.SIGTERM)
                self.assertEqual(e.wait(30), 0, e.stderr())

    def test_drops_capabilities_and_census_still_runs(self):
        port = free_port()
        with testfs_mount("--direct-io") as m:
            with Running("export", "--listen", f"127.0.0.1:{port}", "--mount", m.mountpoint) as e:
                e.wait_attached("serving ")
                caps, nnp = cap_sets(e.pid)
                self.assertEqual(caps, {"CapEff": KEPT, "CapPrm": KEPT, "CapBnd": KEPT,
                                        "CapInh": 0, "CapAmb": 0}, e.stderr())
                self.assertEqual(nnp, "1")
                for task in os.listdir(f"/proc/{e.pid}/task"):  # civetweb's threads too
                    with open(f"/proc/{e.pid}/task/{task}/status") as f:
                        eff = next(l for l in f if l.startswith("CapEff:"))
                    self.assertEqual(int(eff.split()[1], 16), KEPT, f"thread {task}")
                # the tracepoint backend re-runs the census every 2 s: it must keep working
                first = counter(metrics(port)[1], "fusescope_census_runs_total")
                self.assertIsNotNone(first)
                self.assertTrue(wait_for(lambda: counter(metrics(port)[1],
                                                         "fusescope_census_runs_total") > first,
                                         15), "census stopped running after the drop")
                self.assertNotIn("warning", e.stderr())
                e.signal(signal.SIGTERM)
                self.assertEqual(e.wait(30), 0, e.stderr())

    def test_malformed_and_oversized_requests(self):
        port = free_port()
        with testfs_mount("--direct-io") as m:
            with Running("export", "--listen", f"127.0.0.1:{port}", "--mount", m.mountpoint) as e:
                e.wait_attached("serving ")
                self.assertEqual(metrics(port)[0], 200)
                for name, data in BAD_REQUESTS:
                    with self.subTest(request=name):
                        reply = send_raw(port, data)
                        self.assertFalse(reply.startswith(b"HTTP/1.1 200") and b"etc" in data,
                                         reply[:200])
                        self.assertTrue(e.alive(), f"exporter died on {name}: {e.stderr()}")
                        status, body = metrics(port)
                        self.assertEqual(status, 200)
                        self.assertIn("fusescope_", body)
                # connections that never finish their request must not lock out scrapes
                idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
                try:
                    for s in idle:
                        s.sendall(b"GET /metrics HTTP/1.1\r\n")
                    t0 = time.monotonic()
                    self.assertEqual(metrics(port)[0], 200)
                    print(f"scrape with 8 idle connections: {time.monotonic() - t0:.2f}s")
                finally:
                    for s in idle:
                        s.close()
                e.signal(signal.SIGTERM)
                self.assertEqual(e.wait(30), 0, e.stderr())


if __name__ == "__main__":
    unittest.main(verbosity=2)
