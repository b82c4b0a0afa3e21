"""Containers and services: a direct-IO writer placed in a cgroup named like a systemd
service (db.service) and a holder that maps the file shared, placed in one named like a
docker container's scope, both cgroups created by the test. trace --json, top -b --json
and diagnose --json must name each one's cgroup v2 path, and the unit or the container
id that path shows; the exporter's per-inode writer series carries the unit label."""

import json
import os
import subprocess
import sys
import time
import unittest

from fusemount import MODES, testfs_mount
from fusescope_run import Fusescope
from whowhere import CgroupTree, free_port, hold_mapping, scrape, series

CONTAINER = "0123456789abcdef" * 4  # 64 hex digits, as docker names its scopes

# A direct-IO writer: writes within EOF (FOPEN_DIRECT_IO) until its stdin closes.
WRITE = r"""
import os, select, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
print("writing", flush=True)
while not select.select([sys.stdin], [], [], 0)[0]:
    os.pwrite(fd, b"w" * 4096, 0)
os.close(fd)
"""


class WhereTheyRun(unittest.TestCase):
    def test_writer_in_a_service_holder_in_a_container(self):
        port = free_port()
        with testfs_mount(*MODES["direct-io-allow-mmap"]) as m, \
                CgroupTree(f"fusescope-test-{os.getpid()}") as tree:
            service = tree.make("db.service")
            container = tree.make(f"docker-{CONTAINER}.scope")
            data = m.path("data")
            with open(data, "wb") as f:
                f.write(b"d" * 65536)
            ino = os.stat(data).st_ino
            trace = Fusescope("trace", "--json", "--mount", m.mountpoint)
            top = Fusescope("top", "-b", "--json", "--interval", "0.5", "--mount", m.mountpoint)
            diag = Fusescope("diagnose", "--json", "--duration", "60", "--mount", m.mountpoint)
            export = Fusescope("export", "--listen", f"127.0.0.1:{port}", "--mount", m.mountpoint)
            try:
                trace.wait_watching()
                diag.wait_watching()
                time.sleep(1.0)  # top's first refresh
                writer = tree.spawn(service, [sys.executable, "-c", WRITE, data],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                self.assertEqual(writer.stdout.readline().strip(), "writing")
                holder = hold_mapping(data, 2.0,
                                      spawn=lambda argv, **kw: tree.spawn(container, argv, **kw))
                time.sleep(1.5)  # while it holds: top and the exporter show it
                metrics = scrape(port)
                holder.wait(timeout=30)
                holder.stdout.close()
                writer.communicate("", timeout=30)
                time.sleep(1.0)
            finally:
                results = {name: s.finish() for name, s in
                           (("trace", trace), ("top", top), ("diagnose", diag),
                            ("export", export))}
            for name, (rc, _, err) in results.items():
                self.assertIn(rc, (0, 5), f"{name}: {err!r}")
            svc_rel, ctr_rel = tree.rel(service), tree.rel(container)

            # trace: every event of the writer and of the holder says where it ran
            events = [json.loads(l) for l in results["trace"][1].splitlines()]
            mine = [e for e in events if e.get("ino") == ino]
            w_events = [e for e in mine if e["pid"] == writer.pid]
            h_events = [e for e in mine if e["pid"] == holder.pid]
            self.assertTrue(any(e["event"] == "write" for e in w_events), mine[:5])
            self.assertTrue(any(e["event"] == "mmap" for e in h_events), mine[:5])
            for e in w_events:
                self.assertEqual((e["cgroup"], e.get("unit")), (svc_rel, "db.service"), e)
            for e in h_events:
                self.assertEqual((e["cgroup"], e.get("container"), e.get("container_runtime")),
                                 (ctr_rel, CONTAINER, "docker"), e)

            # top: the holder while it held, the writer program
            frames = [json.loads(l) for l in results["top"][1].decode().splitlines()
                      if l.startswith("{")]
            held = [r for f in frames for r in f["rows"] if r["ino"] == ino and r["holders_now"]]
            self.assertTrue(held, frames[-1:])
            where = held[-1]["holders_now"][0]["where"]
            self.assertEqual((where["cgroup"], where["container"], where["container_runtime"]),
                             (ctr_rel, CONTAINER, "docker"))
            last = [r for r in frames[-1]["rows"] if r["ino"] == ino][0]
            self.assertEqual([(w["where"]["cgroup"], w["where"]["unit"]) for w in last["writers"]],
                             [(svc_rel, "db.service")])

            # diagnose: the culprit in its container, the writer in its service
            rep = json.loads(results["diagnose"][1])
            cache = [f for f in rep["findings"] if f["kind"] == "cache_io_mode"
                     and f["inode"] and f["inode"]["ino"] == ino]
            self.assertEqual(len(cache), 1, rep["findings"])
            (c,) = cache[0]["culprits"]
            self.assertEqual((c["cgroup"], c["container"], c["container_runtime"]),
                             (ctr_rel, CONTAINER, "docker"))
            self.assertEqual([(w["cgroup"], w["unit"]) for w in cache[0]["writers"]],
                             [(svc_rel, "db.service")])

            # the exporter: the writer's unit and the holder's container as labels
            writers = [l for l, _ in series(metrics, "fusescope_inode_writer_processes")
                       if l["ino"] == str(ino)]
            self.assertEqual([(l["cgroup"], l["unit"]) for l in writers],
                             [(svc_rel, "db.service")])
            holders = [l for l, _ in series(metrics, "fusescope_inode_cache_mode_holder_info")
                       if l["ino"] == str(ino)]
            self.assertEqual([(l["cgroup"], l["container"]) for l in holders],
                             [(ctr_rel, CONTAINER[:12])])


if __name__ == "__main__":
    unittest.main(verbosity=2)
