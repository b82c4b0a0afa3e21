#!/usr/bin/env python3
"""fusescope overhead benchmark (issue 8). Root, real FUSE mount, real BPF. Standard library only.

Measures, on fusescope-testfs --direct-io --parallel-direct-writes (no write delay):
  * throughput of fusescope-load `parallel` (4 threads, 4 KiB in-EOF writes) and `append`,
    without fusescope (A) and with `fusescope export --mount MNT` attached (B), alternated
    (ABBA...), reporting the median of the per-pair ratios B/A;
  * BPF run time per program per run and per write, from the kernel's own accounting
    (kernel.bpf_stats_enabled=1 only around that measurement; `bpftool prog show --json`),
    for fusescope-load's scenarios and for fio's psync, libaio and io_uring engines (4 KiB
    in-EOF O_DIRECT random writes; the async ones as FUSE_ASYNC_DIO background requests);
  * frontend CPU (/proc/PID/stat utime+stime) idle and at the highest write rate we reach,
    and RSS; the same after touching --inodes distinct files (create + one direct write),
    then idle, then with one of those files rewritten 20 times a second;
  * start to first data: exec of `fusescope trace --json --mount MNT` until its "watching"
    line on stderr and until its first write event, with writers running; `export` until
    its "serving" line.
Prints a Markdown table (bench/report.py renders it from the JSON too) and writes JSON.
"""

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import re
import resource
import traceback
import select
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
import fusemount  # noqa: E402
from fusescope_run import bpf_prog_ids_of  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Programs that run for each write, per backend (the rest run on open/mmap: reported on their
# own, they are not per write).
WRITE_PATH = {
    "tracepoint": ["fs_request_send", "fs_request_end", "fs_contention_begin",
                   "fs_contention_end"],
    "trampoline": ["fs_write_enter", "fs_write_exit", "fs_uncached_io_start_exit",
                   "fs_dio_decision", "fs_direct_io_enter", "fs_contention_begin",
                   "fs_contention_end"],
}


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def proc_cpu_s(pid):
    """utime+stime of the whole process (all threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK  # fields 14, 15


def proc_exec_ns(pid):
    """Sum of sum_exec_runtime over the process's threads (ns precision)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def proc_mem_kb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Frontend:
    """`fusescope export --mount MNT` (or top -b) as a user runs it."""

    def __init__(self, fusescope, mnt, kind="export", global_args=()):
        self.port = free_port()
        if kind == "export":
            cmd = [fusescope, *global_args, "export", "--mount", mnt, "--listen", f"127.0.0.1:{self.port}"]
            ready = b"serving"
        else:
            cmd = [fusescope, "top", "-b", "--mount", mnt]
            ready = None
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.ready_s = None
        if ready:
            buf = b""
            deadline = time.monotonic() + 30
            while ready not in buf:
                r, _, _ = select.select([self.proc.stderr], [], [], 0.5)
                if r:
                    chunk = os.read(self.proc.stderr.fileno(), 4096)
                    if not chunk:
                        raise RuntimeError(f"{kind} exited: {buf.decode(errors='replace')}")
                    buf += chunk
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{kind} not ready: {buf.decode(errors='replace')}")
            self.ready_s = time.monotonic() - self.t0
        else:
            time.sleep(1.0)

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            return r.read().decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()
        return self.proc.returncode


def metric_sum(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_load(load, scenario, path, threads, writes, size=4096, extra=()):
    p = subprocess.run([load, scenario, "--file", path, "--threads", str(threads), "--writes",
                        str(writes), "--size", str(size), "--sync-start", *extra],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"fusescope-load {scenario} failed: {p.stderr} {p.stdout}")
    return json.loads(p.stdout)


def bpf_progs(pid):
    """{name: (run_time_ns, run_cnt)} of the fs_* programs of process pid (other fusescope
    instances on the machine, e.g. other people's tests, are not ours to count)."""
    ids = bpf_prog_ids_of(pid)
    out = subprocess.run(["bpftool", "--json", "prog", "show"], capture_output=True, text=True,
                         check=True).stdout
    progs = {}
    for p in json.loads(out):
        name = p.get("name", "")
        if name.startswith("fs_") and p.get("id") in ids:
            t, c = progs.get(name, (0, 0))
            progs[name] = (t + p.get("run_time_ns", 0), c + p.get("run_cnt", 0))
    return progs


def bpf_names():
    out = subprocess.run(["bpftool", "--json", "prog", "show"], capture_output=True, text=True,
                         check=True).stdout
    return [p.get("name", "") for p in json.loads(out)]


def set_bpf_stats(on):
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("1" if on else "0")


def backend_of(fusescope):
    p = subprocess.run([fusescope, "doctor", "--json"], capture_output=True, text=True)
    try:
        return json.loads(p.stdout).get("backend")
    except ValueError:
        return None


# ---------------------------------------------------------------------------- measurements

def children_cpu_ns():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return int((ru.ru_utime + ru.ru_stime) * 1e9)


def abba_pairs(a, mnt, run_once, global_args=()):
    """a.pairs pairs of runs without (A) and with (B) `fusescope [global_args] export --mount
    MNT` attached, in ABBA order (a drift of the machine falls on both sides alike), a fresh
    frontend per B run. run_once(fe) runs the workload once (fe: the attached Frontend, None on
    A). Yields (i, {"A": result, "B": result}) per pair."""
    for i in range(a.pairs):
        order = ("A", "B") if i % 2 == 0 else ("B", "A")
        got = {}
        for side in order:
            fe = Frontend(a.fusescope, mnt, global_args=global_args) if side == "B" else None
            try:
                got[side] = run_once(fe)
            finally:
                if fe:
                    fe.stop()
        yield i, got


def throughput(a, mnt, scenario, writes):
    """ABBA-alternated pairs; returns per-run data and the median pair ratio.

    Besides writes/s, each run's CPU time per write: the writers (fusescope-load), the FUSE
    server and (B) the frontend, whose threads also run the BPF programs of their own events.
    Measured here, it moves with the throughput pair for pair (the runs are CPU-bound: 2 vCPUs,
    4 writers and a server), so the other tenants' noise is in both; it shows that the
    BPF-CPU estimate in the report is the right stand-in for the throughput cost."""
    path = os.path.join(mnt, f"bench-{scenario}")
    runs = {"A": [], "B": []}
    cpu = {"A": [], "B": []}
    cpu_ratios = []
    ratios = []
    fe_cpu = []
    counted = []
    foreign = []
    run_load(a.load, scenario, path, a.threads, max(writes // 10, 100))  # warm-up

    def once(fe):
        if fe:
            c0, w0 = proc_exec_ns(fe.pid), time.monotonic()
        k0, s0 = children_cpu_ns(), proc_exec_ns(a.server_pid)
        r = run_load(a.load, scenario, path, a.threads, writes)
        spent = children_cpu_ns() - k0 + proc_exec_ns(a.server_pid) - s0
        if fe:
            fe_ns = proc_exec_ns(fe.pid) - c0
            spent += fe_ns
            fe_cpu.append(fe_ns / 1e9 / (time.monotonic() - w0))
            time.sleep(1.3)  # one refresh interval: the counters reach the model
            counted.append((metric_sum(fe.metrics(), "fusescope_writes_total"),
                            r["total_writes"]))
        else:  # other people's fusescope (tests) attached to the same hooks
            foreign.append(sum(1 for _ in bpf_names() if _.startswith("fs_request_send")
                               or _.startswith("fs_write_enter")))
        return {"writes_per_s": r["writes_per_s"], "cpu": spent / r["total_writes"]}

    for i, got in abba_pairs(a, mnt, once):
        for side in ("A", "B"):
            runs[side].append(got[side]["writes_per_s"])
            cpu[side].append(got[side]["cpu"])
        wa, wb = got["A"]["writes_per_s"], got["B"]["writes_per_s"]
        ca, cb = got["A"]["cpu"], got["B"]["cpu"]
        ratios.append(wb / wa)
        cpu_ratios.append(ca / cb)
        log(f"{scenario} pair {i + 1}/{a.pairs}: A {wa:.0f}/s B {wb:.0f}/s "
            f"ratio {ratios[-1]:.3f}; CPU per write A {ca:.0f} ns B {cb:.0f} ns "
            f"ratio {cpu_ratios[-1]:.3f} (load {loadavg()})")
    return {"A": runs["A"], "B": runs["B"], "ratios": ratios,
            "median_ratio": statistics.median(ratios),
            "median_A": statistics.median(runs["A"]), "median_B": statistics.median(runs["B"]),
            "cpu_ns_per_write": cpu, "cpu_ratios": cpu_ratios,
            "median_cpu_ratio": statistics.median(cpu_ratios),
            "frontend_cpu_frac": fe_cpu, "writes_counted_vs_done": counted,
            "foreign_fusescope_during_A": foreign}


class Floor:
    """fusescope-bench-floor: an empty program on sched_switch, attached while measuring."""

    def __init__(self, binary):
        self.proc = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if self.proc.stdout.readline().strip() != b"ready":
            self.stop()
            raise RuntimeError(f"{binary} did not attach")
        self.pid = self.proc.pid

    def stop(self):
        self.proc.stdin.close()  # it detaches and exits
        self.proc.wait(20)


def run_fio(path, jobs, ios, engine, iodepth):
    """fio (Debian's) writing 4 KiB in-EOF random O_DIRECT blocks into @path: the writes a
    database issues through psync, libaio or io_uring. Returns run_load's keys."""
    size = 64 << 20
    if not os.path.exists(path) or os.path.getsize(path) < size:
        with open(path, "wb") as f:  # through the mount: the kernel's i_size covers every write
            f.truncate(size)
    p = subprocess.run(["fio", "--name=bench", f"--filename={path}", f"--size={size}", "--bs=4k",
                        "--rw=randwrite", "--norandommap", "--direct=1", "--allow_file_create=0",
                        f"--ioengine={engine}", f"--iodepth={iodepth}", f"--numjobs={jobs}",
                        f"--number_ios={ios}", "--group_reporting", "--output-format=json"],
                       capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError(f"fio failed: {p.stderr} {p.stdout[-1000:]}")
    out = json.loads(p.stdout[p.stdout.index("{"):])
    job = out["jobs"][0]
    writes = job["write"]["total_ios"]
    secs = job["job_runtime"] / 1000.0 if job.get("job_runtime") else job["write"]["runtime"] / 1000.0
    return {"total_writes": writes, "writes_per_s": job["write"]["iops"],
            "seconds": secs}


def runs_between(before, after):
    """{name: (ns, runs)} of the programs between two bpf_progs() readings"""
    return {n: (t1 - before.get(n, (0, 0))[0], c1 - before.get(n, (0, 0))[1])
            for n, (t1, c1) in after.items()}


def bpf_cost(a, mnt, scenario, writes, backend, global_args=(), workload=None):
    """BPF run time per write of @scenario (fusescope-load), or of @workload(path) -> run_load
    keys (fio)."""
    path = os.path.join(mnt, f"bench-{scenario.replace(' ', '-')}")
    fe = Frontend(a.fusescope, mnt, global_args=global_args)
    floor = Floor(a.floor) if getattr(a, "floor", None) else None
    try:
        set_bpf_stats(True)
        before = bpf_progs(fe.pid)
        f0 = bpf_progs(floor.pid) if floor else {}
        r = workload(path) if workload else run_load(a.load, scenario, path, a.threads, writes)
        after = bpf_progs(fe.pid)
        f1 = bpf_progs(floor.pid) if floor else {}
    finally:
        set_bpf_stats(False)
        fe.stop()
        if floor:
            floor.stop()
    nw = r["total_writes"]
    progs = {name: {"runs": dc, "ns_total": dt, "ns_per_run": dt / dc if dc else 0.0,
                    "runs_per_write": dc / nw, "ns_per_write": dt / nw}
             for name, (dt, dc) in runs_between(before, after).items()}
    wp = [n for n in WRITE_PATH.get(backend or "", []) if n in progs] or list(progs)
    # bpf_stats' own cost per run (the clock read around the program) is in every run time:
    # an empty program measures it (else the cheapest of ours, mostly early returns)
    empty = [dt / dc for dt, dc in runs_between(f0, f1).values() if dc >= 1000]
    busy = [p["ns_per_run"] for p in progs.values() if p["runs"] >= 1000]
    return {"writes": nw, "floor_ns_per_run": empty[0] if empty else (min(busy) if busy else None),
            "floor_is_empty_program": bool(empty), "writes_per_s": r["writes_per_s"], "programs": progs,
            "write_path": wp,
            "write_path_ns_per_write": sum(progs[n]["ns_per_write"] for n in wp)}


def run_stress_ng(stressor, workers, seconds):
    """stress-ng (Debian's): @workers of @stressor for @seconds; its bogo ops per second (real
    time). flock contends on the kernel's file-lock spinlocks: about 10^5 lock:contention_begin
    events per second on 2 CPUs, none of them a FUSE inode's i_rwsem."""
    with tempfile.TemporaryDirectory() as d:
        y = os.path.join(d, "m.yaml")
        subprocess.run(["stress-ng", f"--{stressor}", str(workers), "--timeout", f"{seconds}s",
                        "--metrics", "--yaml", y, "--temp-path", d],  # -q drops the metrics
                       check=True, capture_output=True, timeout=seconds + 60)
        text = open(y).read()
    m = re.search(r"bogo-ops-per-second-real-time:\s*([0-9.e+]+)", text)
    if not m:
        raise RuntimeError(f"stress-ng wrote no bogo ops: {text[:500]}")
    return float(m.group(1))


def contention_tax(a, mnt):
    """What fusescope costs a workload that contends on non-FUSE locks only: the
    lock:contention_* programs run on every contended lock of the machine and must stop at
    the Bloom filter of watched i_rwsems. ABBA pairs of stress-ng --flock without (A) and with
    (B) `fusescope export` attached, then one B run with bpf_stats for the programs' cost."""
    ratios, runs = [], {"A": [], "B": []}
    for i, got in abba_pairs(a, mnt, lambda fe: run_stress_ng("flock", a.threads, a.contend_s)):
        for side in ("A", "B"):
            runs[side].append(got[side])
        ratios.append(got["B"] / got["A"])
        log(f"contention pair {i + 1}/{a.pairs}: A {got['A']:.0f} B {got['B']:.0f} bogo ops/s "
            f"ratio {ratios[-1]:.3f} (load {loadavg()})")
    fe = Frontend(a.fusescope, mnt)
    try:
        set_bpf_stats(True)
        before = bpf_progs(fe.pid)
        run_stress_ng("flock", a.threads, a.contend_s)
        after = bpf_progs(fe.pid)
    finally:
        set_bpf_stats(False)
        fe.stop()
    progs = {n: {"runs": dc, "ns_per_run": dt / dc}
             for n, (dt, dc) in runs_between(before, after).items() if dc > 0}
    return {"stressor": "flock", "workers": a.threads, "seconds": a.contend_s, "A": runs["A"],
            "B": runs["B"], "ratios": ratios, "median_ratio": statistics.median(ratios),
            "programs": progs}


def machine_busy_ns():
    """CPU time the whole machine spent busy (all CPUs, /proc/stat: not idle, not iowait)"""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) * 1e9 / os.sysconf("SC_CLK_TCK")


def fio_machine(a, mnt):
    """fio (4 jobs of 4 KiB in-EOF random O_DIRECT writes, psync) with and without `export`:
    ABBA pairs of its IOPS and of the whole machine's busy CPU time per write (the writers, the
    FUSE server, fusescope and whatever fusescope makes every other task pay)."""
    path = os.path.join(mnt, "bench-fio-machine")
    run_fio(path, a.threads, max(a.fio_ios // 10, 100), "psync", 1)  # warm-up, file made

    def once(fe):
        b0 = machine_busy_ns()
        r = run_fio(path, a.threads, a.fio_ios, "psync", 1)
        return {"iops": r["writes_per_s"], "machine_ns": (machine_busy_ns() - b0) / r["total_writes"]}

    iops, cpu = [], []
    for i, got in abba_pairs(a, mnt, once):
        iops.append(got["B"]["iops"] / got["A"]["iops"])
        cpu.append(got["A"]["machine_ns"] / got["B"]["machine_ns"])
        log(f"fio machine pair {i + 1}/{a.pairs}: IOPS ratio {iops[-1]:.3f}, machine CPU per "
            f"write A {got['A']['machine_ns']:.0f} B {got['B']['machine_ns']:.0f} ns ratio "
            f"{cpu[-1]:.3f} (load {loadavg()})")
    return {"jobs": a.threads, "ios": a.fio_ios, "iops_ratios": iops, "cpu_ratios": cpu,
            "median_iops_ratio": statistics.median(iops),
            "median_cpu_ratio": statistics.median(cpu)}


def run_syscalls(binary, calls):
    """fusescope-bench-syscalls: ns per getppid() over @calls calls"""
    out = subprocess.run([binary, str(calls)], capture_output=True, text=True, check=True).stdout
    return float(out.split()[1])


def syscall_tax(a, mnt):
    """What fusescope costs every syscall of the machine, none of them on FUSE: while any
    syscalls:* tracepoint is attached the kernel sends every syscall of every task through its
    slow path. ABBA pairs of a getppid() loop without (A) and with (B) `export` as it runs by
    default (no syscall hooks), then with `--syscall-hooks on` for comparison. Ratio: A's time
    per syscall over B's (1: no tax)."""
    out = {}
    for label, args in (("default", ()), ("--syscall-hooks on", ("--syscall-hooks", "on"))):
        ratios, runs = [], {"A": [], "B": []}
        for i, got in abba_pairs(a, mnt, lambda fe: run_syscalls(a.syscalls, a.syscall_calls),
                                 global_args=args):
            for side in ("A", "B"):
                runs[side].append(got[side])
            ratios.append(got["A"] / got["B"])
            log(f"syscalls ({label}) pair {i + 1}/{a.pairs}: A {got['A']:.1f} B {got['B']:.1f} "
                f"ns per syscall, ratio {ratios[-1]:.3f} (load {loadavg()})")
        out[label] = {"A": runs["A"], "B": runs["B"], "ratios": ratios,
                      "median_ratio": statistics.median(ratios),
                      "median_A": statistics.median(runs["A"]),
                      "median_B": statistics.median(runs["B"])}
    return {"calls": a.syscall_calls, "runs": out}


OPENER = r"""
import os, sys, time
d, n, flags = sys.argv[1], int(sys.argv[2]), os.O_RDWR if sys.argv[3] == "rw" else os.O_RDONLY
t0 = time.monotonic()
fds = [os.open(os.path.join(d, f"f{i:05d}"), flags) for i in range(n)]
t1 = time.monotonic()
time.sleep(1.5)  # past the last hint's last census (open_hints.h: 1 s)
for fd in fds:
    os.close(fd)
print(t1 - t0)
"""


def open_census_cost(a, mnt):
    """What the opens of one process cost fusescope without the syscall hooks (the default of
    top and export): each FUSE_OPEN is a hint answered by a census of its opener (one per due
    time, however many of its hints are due), and that census walks every file the process
    has open. A process opens a.opens files of the mount one after the other and keeps them
    open, as a database does at start: once read-write (found at the first census), once
    read-only (on a direct-IO mount a read-only open changes nothing, so it is asked again
    until its last retry). Per kind: the opener's time with (B) and without (A) `export`, and
    the frontend's CPU time and census runs during B."""
    d = os.path.join(mnt, "opens")
    os.makedirs(d, exist_ok=True)
    for i in range(a.opens):
        open(os.path.join(d, f"f{i:05d}"), "wb").close()

    def opener(kind):
        out = subprocess.run([sys.executable, "-c", OPENER, d, str(a.opens), kind],
                             capture_output=True, text=True, check=True).stdout
        return float(out.split()[-1])

    res = {"opens": a.opens}
    for kind in ("rw", "ro"):
        opener(kind)  # warm: the kernel's dentries
        a_s = opener(kind)
        fe = Frontend(a.fusescope, mnt)
        try:
            time.sleep(0.5)
            m0, c0 = fe.metrics(), proc_exec_ns(fe.pid)
            b_s = opener(kind)
            time.sleep(1.5)  # the model takes the last census in
            m1, c1 = fe.metrics(), proc_exec_ns(fe.pid)
        finally:
            fe.stop()
        runs = metric_sum(m1, "fusescope_census_runs_total") - metric_sum(m0, "fusescope_census_runs_total")
        res[kind] = {"opener_s_A": a_s, "opener_s_B": b_s, "frontend_cpu_s": (c1 - c0) / 1e9,
                     "census_runs": runs,
                     "opens_unexplained": metric_sum(m1, "fusescope_opens_unexplained_total"),
                     "frontend_cpu_us_per_open": (c1 - c0) / 1e3 / a.opens}
        log(f"opens ({kind}): {res[kind]}")
    shutil.rmtree(d, ignore_errors=True)
    return res


def frontend_steady(a, mnt):
    """Frontend CPU idle and under the highest write rate we reach, over a long window."""
    path = os.path.join(mnt, "bench-steady")
    fe = Frontend(a.fusescope, mnt)
    try:
        time.sleep(1)
        c0, s0, w0 = proc_cpu_s(fe.pid), proc_exec_ns(fe.pid), time.monotonic()
        time.sleep(a.steady_s)
        idle = {"cpu_stat": (proc_cpu_s(fe.pid) - c0) / (time.monotonic() - w0),
                "cpu_exec": (proc_exec_ns(fe.pid) - s0) / 1e9 / (time.monotonic() - w0)}
        c0, s0, w0 = proc_cpu_s(fe.pid), proc_exec_ns(fe.pid), time.monotonic()
        r = run_load(a.load, "parallel", path, a.threads, 10_000_000,
                     extra=("--duration", str(a.steady_s)))
        w = time.monotonic() - w0
        busy = {"cpu_stat": (proc_cpu_s(fe.pid) - c0) / w,
                "cpu_exec": (proc_exec_ns(fe.pid) - s0) / 1e9 / w,
                "writes_per_s": r["writes_per_s"], "writes": r["total_writes"]}
        mem = proc_mem_kb(fe.pid)
    finally:
        fe.stop()
    return {"idle": idle, "busy": busy, "rss_kb": mem.get("VmRSS"), "hwm_kb": mem.get("VmHWM")}


def _touch_files(args):
    d, lo, hi = args
    buf = b"x" * 4096
    for i in range(lo, hi):
        fd = os.open(os.path.join(d, f"f{i:06d}"), os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, buf)  # a direct write (the mount gives FOPEN_DIRECT_IO)
        os.close(fd)


def many_inodes(a, mnt, kind):
    """100k files created and written with `kind` (export, or top -b as a user logs it) attached."""
    d = os.path.join(mnt, "many")
    os.makedirs(d, exist_ok=True)
    fe = Frontend(a.fusescope, mnt, kind=kind)
    try:
        mem0 = proc_mem_kb(fe.pid)
        c0, w0 = proc_cpu_s(fe.pid), time.monotonic()
        n, k, step = a.inodes, 4, 8000
        with multiprocessing.Pool(k) as pool:
            for lo in range(0, n, step):
                hi = min(lo + step, n)
                pool.map(_touch_files, [(d, lo + (hi - lo) * j // k, lo + (hi - lo) * (j + 1) // k)
                                        for j in range(k)])
                # fusescope-testfs holds a backing fd per inode the kernel remembers, and
                # RLIMIT_NOFILE may be capped (20000 here): let the kernel forget the dentries
                # and inodes (FUSE_FORGET closes them); page cache is left alone
                with open("/proc/sys/vm/drop_caches", "w") as f:
                    f.write("2")
        create_s = time.monotonic() - w0
        cpu_create = (proc_cpu_s(fe.pid) - c0) / create_s
        time.sleep(2.5)  # let the model take the last counters in
        m = fe.metrics() if kind == "export" else ""
        mem1 = proc_mem_kb(fe.pid)
        c0, w0 = proc_cpu_s(fe.pid), time.monotonic()
        time.sleep(a.steady_s)
        cpu_after = (proc_cpu_s(fe.pid) - c0) / (time.monotonic() - w0)
        mem2 = proc_mem_kb(fe.pid)
        # one of them rewritten 20 times a second, the rest idle: a counter read should
        # cost what changed, not the whole kernel map
        stop = threading.Event()

        def rewrite_one():
            fd = os.open(os.path.join(d, "f000000"), os.O_WRONLY)
            try:
                while not stop.wait(0.05):
                    os.pwrite(fd, b"y" * 4096, 0)
            finally:
                os.close(fd)

        writer = threading.Thread(target=rewrite_one)
        writer.start()
        try:
            time.sleep(1)
            c0, w0 = proc_cpu_s(fe.pid), time.monotonic()
            time.sleep(a.steady_s)
            cpu_one = (proc_cpu_s(fe.pid) - c0) / (time.monotonic() - w0)
        finally:
            stop.set()
            writer.join()
    finally:
        fe.stop()
    shutil.rmtree(d, ignore_errors=True)
    return {"inodes": a.inodes, "create_s": create_s, "files_per_s": a.inodes / create_s,
            "rss_kb_start": mem0.get("VmRSS"), "rss_kb_after": mem1.get("VmRSS"),
            "rss_kb_later": mem2.get("VmRSS"), "hwm_kb": mem2.get("VmHWM"),
            "cpu_during_create": cpu_create, "cpu_idle_after": cpu_after,
            "cpu_one_written": cpu_one,
            **({"model_inodes": metric_sum(m, "fusescope_model_inodes"),
                "model_evictions": metric_sum(m, "fusescope_model_evictions_total"),
                "map_full": metric_sum(m, "fusescope_map_full_total")} if m else {})}


def attach_latency(a, mnt):
    path = os.path.join(mnt, "bench-attach")
    def start_writer():  # a steady writer, so that the first write event comes at once
        return subprocess.Popen([a.load, "parallel", "--file", path, "--threads", "1",
                                 "--writes", "1000000", "--size", "4096", "--duration", "600"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    writer = start_writer()
    res = {"trace_watching_s": [], "trace_first_write_s": [], "export_serving_s": []}
    try:
        time.sleep(0.5)
        for _ in range(a.attach_runs):
            if writer.poll() is not None:
                writer = start_writer()
                time.sleep(0.5)
            t0 = time.monotonic()
            p = subprocess.Popen([a.fusescope, "trace", "--json", "--mount", mnt],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL)
            watching = first = None
            bufs = {p.stdout.fileno(): b"", p.stderr.fileno(): b""}
            while (watching is None or first is None) and time.monotonic() - t0 < 20:
                r, _, _ = select.select(list(bufs), [], [], 0.2)
                for fd in r:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        bufs.pop(fd)
                        continue
                    bufs[fd] += chunk
                    now = time.monotonic() - t0
                    if fd == p.stderr.fileno() and watching is None and b"watching" in bufs[fd]:
                        watching = now
                    if fd == p.stdout.fileno() and first is None and b'"event":"write"' in \
                            bufs[fd].replace(b" ", b""):
                        first = now
                if not bufs:
                    break
            p.send_signal(signal.SIGINT)
            try:
                p.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
            res["trace_watching_s"].append(watching)
            res["trace_first_write_s"].append(first)
            fe = Frontend(a.fusescope, mnt)
            res["export_serving_s"].append(fe.ready_s)
            fe.stop()
    finally:
        writer.send_signal(signal.SIGINT)
        try:
            writer.wait(20)
        except subprocess.TimeoutExpired:
            writer.kill()
            writer.wait()
    for k in list(res):
        vals = [v for v in res[k] if v is not None]
        res[k + "_median"] = statistics.median(vals) if vals else None
        res[k + "_max"] = max(vals) if vals else None
    return res


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    os_name = ""
    try:
        with open("/etc/os-release") as f:
            os_name = re.search(r'PRETTY_NAME="([^"]*)"', f.read()).group(1)
    except Exception:
        pass
    return {"kernel": platform.release(), "cpus": os.cpu_count(), "cpu": model, "os": os_name,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--fusescope", required=True)
    ap.add_argument("--testfs", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--floor", help="fusescope-bench-floor (bpf_stats' own cost per run)")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--writes", type=int, default=20000, help="per thread, parallel")
    ap.add_argument("--append-writes", type=int, default=5000, help="per thread, append")
    ap.add_argument("--fio-ios", type=int, default=10000, help="per fio job (bpf section)")
    ap.add_argument("--inodes", type=int, default=100000)
    ap.add_argument("--steady-s", type=float, default=10.0)
    ap.add_argument("--attach-runs", type=int, default=5)
    ap.add_argument("--contend-s", type=int, default=5, help="per stress-ng run (contention)")
    ap.add_argument("--syscalls", help="fusescope-bench-syscalls (the syscalls section)")
    ap.add_argument("--syscall-calls", type=int, default=2000000, help="per run (syscalls)")
    ap.add_argument("--opens", type=int, default=2000, help="files one process opens (opens)")
    ap.add_argument("--only",
                    default="throughput,fio,bpf,contention,syscalls,opens,frontend,inodes,attach")
    ap.add_argument("--json", default=os.path.join(HERE, "results.json"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (./bench/run.sh does that)")
    fusemount.TESTFS = a.testfs
    only = set(a.only.split(","))
    res = {"machine": machine(), "load_start": loadavg(), "backend": backend_of(a.fusescope),
           # what the user typed (run.sh passes it on), for the report's header
           "command": os.environ.get("FUSESCOPE_BENCH_COMMAND", "bench/bench.py"),
           "params": {k: v for k, v in vars(a).items() if k not in ("json",)}}
    log("machine", res["machine"], "backend", res["backend"], "load", res["load_start"])
    # the test filesystem keeps a backing fd per inode: 100k inodes need more than 20000 fds
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = max(a.inodes * 2 + 1024, 65536)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError) as e:
        log(f"cannot raise RLIMIT_NOFILE to {want}: {e}")

    def save():
        res["load_end"] = loadavg()
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)

    sections = [
        ("throughput", lambda mnt: {"parallel": throughput(a, mnt, "parallel", a.writes),
                                    "append": throughput(a, mnt, "append", a.append_writes)}),
        ("bpf", lambda mnt: {
            "parallel": bpf_cost(a, mnt, "parallel", a.writes, res["backend"]),
            "append": bpf_cost(a, mnt, "append", a.append_writes, res["backend"]),
            # opt-in per-request timing (tracepoint backend): what it adds
            **({"parallel --service-time": bpf_cost(a, mnt, "parallel", a.writes, res["backend"],
                                                    ("--service-time",))}
               if res["backend"] == "tracepoint" else {}),
            # software we did not write: fio's engines, async ones through FUSE_ASYNC_DIO
            **{f"fio {engine}": bpf_cost(
                a, mnt, f"fio {engine}", 0, res["backend"],
                workload=lambda path, e=engine, d=depth: run_fio(path, a.threads, a.fio_ios, e, d))
               for engine, depth in (("psync", 1), ("libaio", 2), ("io_uring", 2))}}),
        ("fio", lambda mnt: fio_machine(a, mnt)),
        ("contention", lambda mnt: contention_tax(a, mnt)),
        ("syscalls", lambda mnt: syscall_tax(a, mnt)),
        ("opens", lambda mnt: open_census_cost(a, mnt)),
        ("frontend", lambda mnt: frontend_steady(a, mnt)),
        ("inodes", lambda mnt: {"export": many_inodes(a, mnt, "export"),
                                "top -b": many_inodes(a, mnt, "top")}),
        ("attach", lambda mnt: attach_latency(a, mnt)),
    ]
    with fusemount.testfs_mount("--direct-io", "--parallel-direct-writes") as m:
        a.server_pid = m.pid
        for name, fn in sections:
            if name not in only:
                continue
            try:
                res[name] = fn(m.mountpoint)
                log(name, json.dumps(res[name])[:600])
            except Exception:  # keep the other sections' numbers
                res.setdefault("errors", {})[name] = traceback.format_exc()
                log(f"{name} failed:", traceback.format_exc())
            save()
    sys.path.insert(0, HERE)
    import report
    print(report.markdown(res))


if __name__ == "__main__":
    main()
