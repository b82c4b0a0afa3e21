#!/usr/bin/env python3
"""Compare the BPF cost per write of two fusescope builds (e.g. before/after a BPF change),
alternating them on one fusescope-testfs mount. As root. Standard library only.

    bench/compare_bpf.py --base BUILD/src/cli/fusescope --new OTHER/src/cli/fusescope \\
        --testfs BUILD/src/testfs/fusescope-testfs --load BUILD/src/load/fusescope-load [--rounds 3]

Prints, per scenario and program, the median ns per run of each build.
"""

import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--testfs", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--writes", type=int, default=20000)
    ap.add_argument("--append-writes", type=int, default=5000)
    ap.add_argument("--fio-ios", type=int, default=5000, help="per fio job; 0: no fio engines")
    a = ap.parse_args()
    bench.fusemount.TESTFS = a.testfs
    backend = bench.backend_of(a.base)
    got = {}  # (scenario, build, prog) -> [ns/run]
    # the load driver's scenarios, then Debian's fio through its engines (as bench.py's bpf)
    scenarios = [("parallel", a.writes, None), ("append", a.append_writes, None)]
    if a.fio_ios:
        scenarios += [(f"fio {e}", 0,
                       lambda path, e=e, d=d: bench.run_fio(path, a.threads, a.fio_ios, e, d))
                      for e, d in (("psync", 1), ("libaio", 2), ("io_uring", 2))]
    with bench.fusemount.testfs_mount("--direct-io", "--parallel-direct-writes") as m:
        for i in range(a.rounds):
            builds = [("base", a.base), ("new", a.new)]
            if i % 2:
                builds.reverse()
            for name, binary in builds:
                a.fusescope = binary
                for sc, n, workload in scenarios:
                    r = bench.bpf_cost(a, m.mountpoint, sc, n, backend, workload=workload)
                    for prog, p in r["programs"].items():
                        if p["runs"]:
                            got.setdefault((sc, name, prog), []).append(p["ns_per_run"])
                    got.setdefault((sc, name, "write path total/write"), []).append(
                        r["write_path_ns_per_write"])
            bench.log(f"round {i + 1}/{a.rounds} done (load {bench.loadavg()})")
    progs = sorted({k[2] for k in got})
    print(f"| scenario | program | base ns/run | new ns/run |\n|---|---|---|---|")
    for sc, _, _ in scenarios:
        for prog in progs:
            b, n = got.get((sc, "base", prog)), got.get((sc, "new", prog))
            if b or n:
                fb = f"{statistics.median(b):.0f}" if b else "-"
                fn = f"{statistics.median(n):.0f}" if n else "-"
                print(f"| {sc} | `{prog}` | {fb} | {fn} |")


if __name__ == "__main__":
    main()
