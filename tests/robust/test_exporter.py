#!/usr/bin/python3
"""The exporter binds 127.0.0.1 by default, and survives malformed and oversized requests
sent on a raw socket: it keeps answering /metrics and exits 0 on SIGTERM. 500 idle half-open
connections do not delay a scrape and cost bounded memory. Its HTTP threads hold no
capability; the session thread keeps only what the census needs. --bpf-stats has the
kernel account fusescope's BPF run time while it runs, and the accounting ends with the
process, even when it is killed."""

import json
import os
import signal
import socket
import subprocess
import time
import unittest
import urllib.request

from fusemount import run_load, testfs_mount
from fusescope_run import Fusescope
from robusthelp import bpf_fds, wait_for


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


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))


def bpf_stats_sysctl():
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        return f.read().strip() == "1"


def prog_run_cnt(prog_id):
    """run_cnt of one BPF program (bpftool prints it only when the kernel counted runs)."""
    out = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)], capture_output=True,
                         text=True, timeout=30)
    return json.loads(out.stdout).get("run_cnt", 0) if out.returncode == 0 and out.stdout else 0


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
            with Fusescope("export", "--mount", m.mountpoint) as e:
                try:
                    e.wait_watching()
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
            with Fusescope("export", "--listen", f"127.0.0.1:{port}", "--mount", m.mountpoint) as e:
                e.wait_watching()
                caps, nnp = cap_sets(e.pid)
                self.assertEqual(caps, {"CapEff": KEPT, "CapPrm": KEPT, "CapBnd": KEPT,
                                        "CapInh": 0, "CapAmb": 0}, e.stderr())
                self.assertEqual(nnp, "1")
                http_threads = 0
                for task in os.listdir(f"/proc/{e.pid}/task"):
                    with open(f"/proc/{e.pid}/task/{task}/comm") as f:
                        comm = f.read().strip()
                    with open(f"/proc/{e.pid}/task/{task}/status") as f:
                        st = dict(l.split(":", 1) for l in f if ":" in l)
                    sets = {k: int(st[k].strip(), 16) for k in ("CapEff", "CapPrm", "CapBnd")}
                    if comm.startswith("MHD-"):  # libmicrohttpd's threads: nothing at all
                        http_threads += 1
                        self.assertEqual(sets, {"CapEff": 0, "CapPrm": 0, "CapBnd": 0}, comm)
                    else:
                        self.assertEqual(sets, {"CapEff": KEPT, "CapPrm": KEPT, "CapBnd": KEPT},
                                         f"thread {task} ({comm})")
                self.assertEqual(http_threads, 1)
                # the census must keep working: an open's FUSE_OPEN brings a census of its
                # opener (and the periodic one comes every 30 s)
                first = counter(metrics(port)[1], "fusescope_census_runs_total")
                self.assertIsNotNone(first)
                with open(m.path("opened-after-the-drop"), "w"):
                    pass
                self.assertTrue(wait_for(lambda: counter(metrics(port)[1],
                                                         "fusescope_census_runs_total") > first,
                                         15), "census stopped running after the drop")
                self.assertNotIn("warning", e.stderr())
                e.signal(signal.SIGTERM)
                self.assertEqual(e.wait(30), 0, e.stderr())

    def test_malformed_and_oversized_requests(self):
        port = free_port()
        with testfs_mount("--direct-io") as m:
            with Fusescope("export", "--listen", f"127.0.0.1:{port}", "--mount", m.mountpoint) as e:
                e.wait_watching()
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
                e.signal(signal.SIGTERM)
                self.assertEqual(e.wait(30), 0, e.stderr())

    def test_500_idle_half_open_connections(self):
        # connections that never finish their request must not lock out scrapes (civetweb,
        # before libmicrohttpd: 30 of them timed a scrape out) nor grow memory without bound
        port = free_port()
        with testfs_mount("--direct-io") as m:
            with Fusescope("export", "--listen", f"127.0.0.1:{port}", "--mount", m.mountpoint) as e:
                e.wait_watching()
                self.assertEqual(metrics(port)[0], 200)
                before = rss(e.pid)
                idle = []
                try:
                    for _ in range(500):
                        s = socket.create_connection(("127.0.0.1", port), timeout=10)
                        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                        idle.append(s)
                    t0 = time.monotonic()
                    status, body = metrics(port)
                    took = time.monotonic() - t0
                    self.assertEqual(status, 200)
                    print(f"scrape with 500 idle connections: {took:.3f}s")
                    self.assertLess(took, 1.0)
                    self.assertGreaterEqual(counter(body, "fusescope_http_connections"), 500)
                    grown = rss(e.pid) - before
                    print(f"RSS +{grown / 1e6:.1f} MB with 500 idle connections")
                    # at most libmicrohttpd's 16 KiB request buffer each, and some slack
                    self.assertLess(grown, 500 * 32 * 1024)
                finally:
                    for s in idle:
                        s.close()
                e.signal(signal.SIGTERM)
                self.assertEqual(e.wait(30), 0, e.stderr())

    def test_bpf_stats_end_with_the_process(self):
        if bpf_stats_sysctl():
            self.skipTest("kernel.bpf_stats_enabled is 1 (someone else accounts BPF run time)")
        with testfs_mount("--direct-io", "--parallel-direct-writes") as m:
            port = free_port()
            with Fusescope("export", "--listen", f"127.0.0.1:{port}", "--mount", m.mountpoint,
                         "--bpf-stats") as e:
                e.wait_watching()
                progs, _ = bpf_fds(e.pid)
                run_load("parallel", "--file", m.path("f"), "--threads", "2", "--writes", "100",
                         "--size", "4096")
                self.assertTrue(wait_for(lambda: (counter(metrics(port)[1],
                                                          "fusescope_bpf_program_runs_total") or 0) > 0,
                                         10), metrics(port)[1])
                body = metrics(port)[1]
                self.assertEqual(counter(body, "fusescope_bpf_stats_enabled"), 1)
                runs = sum(float(l.split()[-1]) for l in body.splitlines()
                           if l.startswith("fusescope_bpf_program_runs_total{"))
                self.assertGreaterEqual(runs, 200)  # a program on every one of the 200 writes
                self.assertFalse(bpf_stats_sysctl(), "--bpf-stats changed the sysctl")
                e.kill()  # SIGKILL: no destructor runs
            # a second exporter's programs are not accounted: nothing holds stats on any more
            port = free_port()
            with Fusescope("export", "--listen", f"127.0.0.1:{port}", "--mount", m.mountpoint) as e:
                e.wait_watching()
                progs, _ = bpf_fds(e.pid)
                run_load("parallel", "--file", m.path("g"), "--threads", "2", "--writes", "100",
                         "--size", "4096")
                body = metrics(port)[1]
                if bpf_stats_sysctl():
                    self.skipTest("kernel.bpf_stats_enabled turned 1 during the test")
                self.assertEqual(counter(body, "fusescope_bpf_stats_enabled"), 0)
                self.assertIsNone(counter(body, "fusescope_bpf_program_runs_total"))
                self.assertEqual(sum(prog_run_cnt(p) for p in progs), 0,
                                 "BPF run time still accounted after the --bpf-stats exporter died")
                e.signal(signal.SIGTERM)
                self.assertEqual(e.wait(30), 0, e.stderr())


if __name__ == "__main__":
    unittest.main(verbosity=2)
