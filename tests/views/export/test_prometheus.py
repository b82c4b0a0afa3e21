"""A real Prometheus server scrapes `fusescope export` every second over TLS, with a client
certificate and basic auth (its own tls_config and basic_auth; the exporter's web config
asks for RequireAndVerifyClientCert), with fusescope's rules loaded, during the
db-and-indexer scenario. Then:
- the exclusive-writes series for reason cache_io_mode rises while the indexer holds its
  shared mapping (and not before);
- every query of dashboards/fusescope.json returns data through Prometheus' HTTP API while
  the indexer holds the file, "who holds cache mode now" names it, and every templating
  variable lists this job, instance and mount;
- every recording rule of dashboards/fusescope.rules.yml has data, and the recorded ratios
  equal the dashboard's own queries over the same window; every rule is healthy."""

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
from webtls import make_pki, ssl_context, write_web_config

RULES = os.path.join(os.path.dirname(DASHBOARD), "fusescope.rules.yml")
TESTFS_OPTS = ("--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap", "--write-delay-us", "200")
DELAY, HOLD, DURATION = 4.0, 5.0, 12.0
JOB, USER, PASSWORD = "fusescope", "prometheus", "s3cret-for-the-test"

# dashboard panel -> the recording rule that records its ratio
RECORDED_PANELS = {
    "Exclusive share of writes": "instance_mount:fusescope_writes_exclusive:ratio_rate5m",
    "Writes serialized by cache mode": "instance_mount:fusescope_writes_cache_mode:ratio_rate5m",
}


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


def substitute(expr, values, rate="5s"):
    # variables are used in =~ matchers; the values here have no regex metacharacters
    # but '.', '/', '-' (which match themselves or more; the result is checked to be ours)
    for k in ("__rate_interval", "__interval", "__range"):
        expr = expr.replace(f"${{{k}}}", rate).replace(f"${k}", rate)
    for k, v in values.items():
        expr = expr.replace(f"${{{k}}}", v).replace(f"${k}", v)
    return expr


class Prometheus:
    """A Prometheus server scraping target over TLS with a client certificate and basic auth,
    with fusescope's rules loaded."""

    def __init__(self, target, pki):
        self.dir = tempfile.mkdtemp(prefix="fusescope-prom-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                    f"rule_files: ['{RULES}']\n"
                    f"scrape_configs:\n  - job_name: {JOB}\n    scheme: https\n"
                    f"    tls_config:\n      ca_file: {pki.ca}\n      cert_file: {pki.client_crt}\n"
                    f"      key_file: {pki.client_key}\n"
                    f"    basic_auth:\n      username: {USER}\n      password: {PASSWORD}\n"
                    f"    static_configs:\n      - targets: ['{target}']\n")
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
        self.tmp = tempfile.mkdtemp(prefix="fusescope-pki-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.pki = make_pki(self.tmp)
        self.web = write_web_config(os.path.join(self.tmp, "web.yml"), self.pki, {USER: PASSWORD},
                                    "RequireAndVerifyClientCert")

    def test_dashboard_rules_and_cache_mode_reason_over_tls(self):
        queries, variables = dashboard_queries(DASHBOARD)
        self.assertGreater(len(queries), 5)
        with testfs_mount(*TESTFS_OPTS) as m, \
                Exporter(m.mountpoint, "--per-inode-top", "5", "--bpf-stats", "--web.config.file", self.web,
                         context=ssl_context(self.pki), auth=(USER, PASSWORD)) as ex, \
                Prometheus(ex.addr, self.pki) as prom:
            mount = m.mountpoint
            # Prometheus has scraped over TLS before the load starts
            deadline = time.monotonic() + 30
            up = []
            while time.monotonic() < deadline:
                up = prom.api("query", query=f'up{{job="{JOB}"}}')["result"]
                if up and up[0]["value"][1] == "1":
                    break
                time.sleep(0.5)
            else:
                targets = prom.api("targets")
                self.fail(f"Prometheus never scraped the exporter over TLS: {up} {targets}")
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

            # 2. every dashboard query returns data for this instance while the indexer holds
            #    the file (1 s before its hold ends, so at least 2 scrapes saw the holder)
            at = hold_end - 1.0
            values = {"job": JOB, "instance": ex.addr, "mount": mount}
            for title, expr in queries:
                q = substitute(expr, values)
                with self.subTest(panel=title, query=q):
                    self.assertNotIn("$", q)
                    result = prom.api("query", query=q, time=at)["result"]
                    self.assertTrue(result, f"no data for {q!r} while the indexer holds the file")
                    for r in result:
                        self.assertIn(r["metric"].get("instance", ex.addr), (ex.addr,))
            holders = prom.api("query", query=substitute(
                dict(queries)["Who holds cache mode now"], values), time=at)["result"]
            self.assertIn(("indexer", "mmap"), {(h["metric"]["comm"], h["metric"]["how"]) for h in holders},
                          holders)
            for name, q in variables:
                with self.subTest(variable=name, query=q):
                    self.assertTrue(q.startswith("label_values(") and q.endswith(")"), q)
                    metric, label = [x.strip() for x in substitute(q[len("label_values("):-1], values)
                                     .rsplit(",", 1)]
                    got = prom.api(f"label/{label}/values", **{"match[]": metric})
                    self.assertIn(values[name], got)

            # 3. the rules: every group healthy, every recorded series present, and the
            #    recorded ratios equal to the dashboard's queries over the same 5 minutes
            groups = prom.api("rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            self.assertEqual({r["health"] for r in rules}, {"ok"}, rules)
            self.assertGreaterEqual(len([r for r in rules if r["type"] == "alerting"]), 5)
            now = time.time()
            for r in rules:
                if r["type"] != "recording":
                    continue
                with self.subTest(record=r["name"]):
                    got = prom.api("query", query=f'{r["name"]}{{instance="{ex.addr}",mount="{mount}"}}',
                                   time=now)["result"]
                    self.assertTrue(got, f"recording rule {r['name']} has no data")
            for title, record in RECORDED_PANELS.items():
                with self.subTest(panel=title, record=record):
                    drawn = prom.api("query", query=substitute(dict(queries)[title], values, rate="5m"),
                                     time=now)["result"]
                    recorded = prom.api("query", query=f'{record}{{instance="{ex.addr}",mount="{mount}"}}',
                                        time=now)["result"]
                    self.assertTrue(drawn and recorded, (drawn, recorded))
                    self.assertAlmostEqual(float(drawn[0]["value"][1]), float(recorded[0]["value"][1]),
                                           delta=0.02)
            self.assertIsNotNone(res)


if __name__ == "__main__":
    unittest.main(verbosity=2)
