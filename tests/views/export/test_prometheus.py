"""A real Prometheus server scrapes `fusescope export` every second during the db-and-indexer
scenario. Then every query of dashboards/fusescope.json must return data through Prometheus'
HTTP API, and the exclusive-writes series for reason cache_io_mode must rise while the indexer
holds its shared mapping (and not before)."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from exporthelp import DASHBOARD, Exporter, free_port, http_get, skip_unless_root, wait_http
from fusemount import run_load, testfs_mount

TESTFS_OPTS = ("--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap", "--write-delay-us", "200")
DELAY, HOLD, DURATION = 4.0, 4.0, 12.0


def dashboard_queries(path):
    """(panel title, expr) of every target, plus the templating variable queries."""
    with open(path) as f:
        dash = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p.get("title", "?"), t["expr"]))
            walk(p.get("panels", []))
    walk(dash.get("panels", []))
    variables = []
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            variables.append((v["name"], q["query"] if isinstance(q, dict) else q))
    return out, variables


def substitute(expr, mount):
    # $mount is used in =~ matchers; the mount point has no regex metacharacters but '-'/'/'
    return (expr.replace("$__rate_interval", "5s").replace("${__rate_interval}", "5s")
            .replace("$__interval", "1s").replace("$__range", "60s").replace("${mount}", mount)
            .replace("$mount", mount))


class Prometheus:
    def __init__(self, target):
        self.dir = tempfile.mkdtemp(prefix="fusescope-prom-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: fusescope\n    static_configs:\n"
                    f"      - targets: ['{target}']\n")
        self.log = open(os.path.join(self.dir, "log"), "w+b")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_http(f"{self.url}/-/ready", timeout=60, proc=self.proc)
        except AssertionError:
            self.close()
            raise

    def api(self, path, **params):
        status, _, body = http_get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}", 10)
        j = json.loads(body)
        if j.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body}")
        return j["data"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class PrometheusTest(unittest.TestCase):
    def setUp(self):
        skip_unless_root(self)

    def test_dashboard_queries_and_cache_mode_reason(self):
        queries, variables = dashboard_queries(DASHBOARD)
        self.assertGreater(len(queries), 5)
        with testfs_mount(*TESTFS_OPTS) as m, Exporter(m.mountpoint, "--per-inode-top", "5") as ex, \
                Prometheus(ex.addr) as prom:
            mount = m.mountpoint
            # Prometheus has scraped at least twice before the load starts
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                up = prom.api("query", query='up{job="fusescope"}')["result"]
                if up and up[0]["value"][1] == "1":
                    break
                time.sleep(0.5)
            else:
                self.fail("Prometheus never scraped the exporter")
            time.sleep(2)
            t_start = time.time()
            res = run_load("db-and-indexer", "--file", m.path("db"), "--threads", "4", "--duration", DURATION,
                           "--size", "4096", "--indexer-delay", DELAY, "--indexer-hold", HOLD)
            t_end = time.time()
            time.sleep(4)  # let the last refreshes be scraped

            # 1. the cache_io_mode reason rose while the indexer held the mapping, not before
            sel = f'sum(fusescope_writes_total{{mount="{mount}",lock="exclusive",reason="cache_io_mode"}})'
            data = prom.api("query_range", query=sel, start=t_start - 2, end=t_end + 3, step="1")["result"]
            self.assertTrue(data, f"no cache_io_mode series for {mount}")
            points = [(float(t), float(v)) for t, v in data[0]["values"]]

            def value_at(ts):
                before = [v for t, v in points if t <= ts]
                return before[-1] if before else 0.0
            hold_start, hold_end = t_start + DELAY, t_start + DELAY + HOLD
            before = value_at(hold_start - 0.5)
            during = value_at(hold_end + 2.0) - before  # +2 s: refresh interval + scrape
            self.assertEqual(before, 0.0, f"cache_io_mode writes before the indexer mapped the file: {points}")
            self.assertGreater(during, 0.0, f"cache_io_mode writes did not rise during the hold: {points}")
            shared = prom.api("query", query=f'sum(fusescope_writes_total{{mount="{mount}",lock="shared"}})',
                              time=t_end + 3)["result"]
            self.assertTrue(shared and float(shared[0]["value"][1]) > 0, "no shared writes seen")

            # 2. every dashboard query returns data, evaluated just after the hold
            at = hold_end + 1.0
            for title, expr in queries:
                q = substitute(expr, mount)
                with self.subTest(panel=title, query=q):
                    self.assertNotIn("$", q)
                    result = prom.api("query", query=q, time=at)["result"]
                    self.assertTrue(result, f"no data for {q!r} at hold end")
            for name, q in variables:
                with self.subTest(variable=name, query=q):
                    self.assertTrue(q.startswith("label_values("), q)
                    metric, label = [x.strip() for x in q[len("label_values("):-1].split(",")]
                    values = prom.api(f"label/{label}/values", **{"match[]": metric})
                    self.assertIn(mount, values)
            self.assertIsNotNone(res)


if __name__ == "__main__":
    unittest.main(verbosity=2)
