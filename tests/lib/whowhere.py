"""Helpers of the who-and-where tests (tests/whowhere). Standard library only. (fusescope
itself runs in the background through fusescope_run.py's Fusescope.)

    cgroup2_root() -> str            # where the cgroup v2 hierarchy is mounted
    CgroupTree(name)                 # cgroups created for a test under that root, removed
        .make(rel) -> path           #   (with their processes gone) on leaving the block
        .spawn(rel, argv) -> Popen   #   a process started inside one of them
    free_port() -> int
    scrape(port) -> str              # GET /metrics
    series(text, name) -> [(labels dict, value)]
    hold_mapping(path, seconds, comm=None) -> Popen  # python: a shared read-only mmap
"""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request

from fusescope_run import FUSESCOPE  # noqa: F401 (the tests import it from here)


def cgroup2_root():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            if parts[sep + 1] == "cgroup2":
                return parts[4]
    raise AssertionError("no cgroup2 mount")


class CgroupTree:
    """Cgroups of one test: created under the v2 root, removed afterwards."""

    def __init__(self, name):
        self.root = os.path.join(cgroup2_root(), name)
        self.made = []
        self.procs = []

    def __enter__(self):
        os.mkdir(self.root)
        self.made.append(self.root)
        return self

    def make(self, rel):
        path = os.path.join(self.root, rel)
        os.mkdir(path)
        self.made.append(path)
        return path

    def rel(self, path):
        """The cgroup's path as /proc/PID/cgroup spells it."""
        return "/" + os.path.relpath(path, cgroup2_root())

    def spawn(self, path, argv, **kw):
        # the child moves itself into the cgroup before it runs argv
        script = 'echo $$ > "$0/cgroup.procs" && exec "$@"'
        p = subprocess.Popen(["/bin/sh", "-c", script, path, *argv], **kw)
        self.procs.append(p)
        return p

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
        for path in reversed(self.made):
            for _ in range(50):  # a cgroup goes once its last process is reaped
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    time.sleep(0.1)
            assert not os.path.exists(path), f"cgroup {path} left behind"
        return False


def free_port():
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return r.read().decode("utf-8", "replace")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _labels(text):
    out, i = {}, 0
    while i < len(text):
        eq = text.index("=", i)
        key = text[i:eq].strip(", ")
        j, val = eq + 2, []
        while text[j] != '"':
            if text[j] == "\\":
                val.append({"n": "\n", "\\": "\\", '"': '"'}[text[j + 1]])
                j += 2
            else:
                val.append(text[j])
                j += 1
        out[key] = "".join(val)
        i = j + 1
    return out


def series(text, name):
    out = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            body, value = line[len(name) + 1:].rsplit("} ", 1)
            out.append((_labels(body), float(value)))
    return out


HOLD = r"""
import ctypes, mmap, os, sys, time
if len(sys.argv) > 3:
    ctypes.CDLL(None).prctl(15, sys.argv[3].encode("latin-1"), 0, 0, 0)  # PR_SET_NAME
fd = os.open(sys.argv[1], os.O_RDONLY)
m = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ)
print("mapped", flush=True)
time.sleep(float(sys.argv[2]))
m.close()
os.close(fd)
"""


def hold_mapping(path, seconds, comm=None, spawn=None):
    argv = [sys.executable, "-c", HOLD, path, str(seconds)] + ([comm] if comm else [])
    p = (spawn or subprocess.Popen)(argv, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "mapped"
    return p
