"""Run fusescope for a test. Standard library only.

    FUSESCOPE  path of the fusescope binary (ctest sets it)

    with Trace(mountpoint) as t:      # `fusescope trace --json --mount M`, returns once attached
        ...workload...
    t.events                          # list of dicts, every JSON line it printed
    t.backend                         # "tracepoint" / "trampoline"
    t.prog_misses                     # probe runs the kernel skipped (trace's health line)
    writes(events) -> Counter of (lock, reason)
    assert_writes(testcase, t, want)  # exact, or short by no more than t.prog_misses
    run_fusescope(*args) -> CompletedProcess
"""

import collections
import json
import os
import select
import signal
import subprocess
import threading
import time

FUSESCOPE = os.environ.get("FUSESCOPE", "fusescope")


def run_fusescope(*args, timeout=120, check=False):
    return subprocess.run([FUSESCOPE, *args], capture_output=True, text=True, timeout=timeout,
                          check=check)


class Trace:
    def __init__(self, mountpoint, *extra, ready_timeout=60):
        self.args = [FUSESCOPE, *extra, "trace", "--json", "--mount", mountpoint]
        self.ready_timeout = ready_timeout
        self.events = []
        self.stderr = ""
        self.backend = None
        self.returncode = None
        self.prog_misses = 0

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        deadline = time.monotonic() + self.ready_timeout
        line = ""
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stderr], [], [], 0.5)
            if r:
                line = self.proc.stderr.readline()
                self.stderr += line
                if "watching (" in line:
                    self.backend = line.split("watching (")[1].split()[0]
                    # read stdout as it comes: a full pipe would stall fusescope's writer
                    self._lines = []
                    self._reader = threading.Thread(target=self._read_stdout, daemon=True)
                    self._reader.start()
                    return self
                if not line:
                    break
            if self.proc.poll() is not None:
                break
        self.proc.kill()
        out, err = self.proc.communicate()
        raise RuntimeError(f"fusescope trace did not attach: {self.stderr}{err}")

    def _read_stdout(self):
        for line in self.proc.stdout:
            self._lines.append(line)

    def stop(self):
        if self.returncode is None:
            time.sleep(0.3)  # let the last events reach the ring buffer reader
            self.proc.send_signal(signal.SIGINT)
            self.returncode = self.proc.wait(timeout=30)
            self._reader.join(timeout=30)
            self.stderr += self.proc.stderr.read()
            self.events = [json.loads(l) for l in self._lines if l.startswith("{")]
            for line in self.stderr.splitlines():
                if "prog_misses=" in line:
                    self.prog_misses = int(line.split("prog_misses=")[1].split()[0])
        return self.events

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.stop()
        return False


def writes(events):
    return collections.Counter((e["lock"], e["reason"]) for e in events if e["event"] == "write")


def assert_writes(tc, trace, want):
    """Exact counts, unless the kernel reported skipped probe runs: then each count may be
    short, by no more than prog_misses in total (fusescope counts what it could not see)."""
    got = writes(trace.stop())
    if got == collections.Counter(want) or not trace.prog_misses:
        tc.assertEqual(got, collections.Counter(want), trace.stderr)
        return
    short = 0
    for k in set(got) | set(want):
        tc.assertLessEqual(got.get(k, 0), want.get(k, 0), (got, want))
        short += want.get(k, 0) - got.get(k, 0)
    tc.assertLessEqual(short, trace.prog_misses, (got, want, trace.prog_misses))
