"""Run fusescope for a test. Standard library only.

    FUSESCOPE  path of the fusescope binary (ctest sets it)

The one launcher of a fusescope that runs in the background, for every test:

    with Fusescope("trace", "--json", "--mount", M) as f:  # `fusescope --status-fd N ARGS`
        f.wait_watching()             # its status line "watching" (probes attached, census
                                      # taken): {"status": "watching", "view", "backend", "pid"}
        f.stdout(), f.stderr()        # what it printed so far (text; *_bytes() for bytes)
        f.health()                    # its last "health" status line ({} before one)
        f.stop()                      # SIGINT (or sig=...), wait: the exit status
        f.finish()                    # the same, then (status, stdout bytes, stderr bytes)
        f.signal(sig), f.wait(t), f.kill(), f.alive(), f.pid, f.args
    # leaving the block kills it if it still runs (what it wrote stays readable)

The status lines (include/fusescope/core/status.h, docs/architecture.md) are read from a
temporary file passed as the descriptor (pass_fds), so nothing here parses fusescope's human
text. Once fusescope watched and exited with a status, its "exit" line must say that status.

    with Trace(mountpoint) as t:      # `fusescope trace --json --mount M`, returns once attached
        ...workload...
    t.events                          # list of dicts, every JSON line it printed
    t.backend                         # "tracepoint" / "trampoline"
    t.prog_misses                     # probe runs the kernel skipped (its last health line)
    writes(events) -> Counter of (lock, reason)
    assert_writes(testcase, t, want)  # exact, or short by no more than t.prog_misses
    run_fusescope(*args) -> CompletedProcess
"""

import collections
import json
import os
import signal
import subprocess
import tempfile
import time

FUSESCOPE = os.environ.get("FUSESCOPE", "fusescope")
SIGINT = signal.SIGINT  # (Fusescope.signal hides the module in its class body)


def bpf_prog_ids_of(pid):
    """ids of the BPF programs process @pid holds (from /proc/PID/fdinfo): other fusescope
    instances on the machine are not ours to count (also bench/bench.py's)."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def run_fusescope(*args, timeout=120, check=False):
    return subprocess.run([FUSESCOPE, *args], capture_output=True, text=True, timeout=timeout,
                          check=check)


class Fusescope:
    """`fusescope --status-fd N ARGS` in the background: stdout and stderr in temporary files
    (a full pipe cannot stall it), the status stream in a third one."""

    def __init__(self, *args, stdin=subprocess.DEVNULL):
        self._status = tempfile.TemporaryFile(mode="w+b")
        self._out = tempfile.TemporaryFile(mode="w+b")
        self._err = tempfile.TemporaryFile(mode="w+b")
        self._kept = {}  # id of a file -> its bytes once closed
        fd = self._status.fileno()
        self.args = [FUSESCOPE, "--status-fd", str(fd), *map(str, args)]
        self.proc = subprocess.Popen(self.args, stdout=self._out, stderr=self._err, stdin=stdin,
                                     pass_fds=(fd,))
        self.pid = self.proc.pid
        self.backend = None
        self.returncode = None

    # --- what it wrote
    def _read(self, f):
        if f.closed:  # after close(): what it held then
            return self._kept[id(f)]
        return os.pread(f.fileno(), os.fstat(f.fileno()).st_size, 0)  # the offset is shared

    def stdout_bytes(self):
        return self._read(self._out)

    def stderr_bytes(self):
        return self._read(self._err)

    def stdout(self):
        return self.stdout_bytes().decode(errors="replace")

    def stderr(self):
        return self.stderr_bytes().decode(errors="replace")

    def status_lines(self):
        """Every complete status line so far, parsed."""
        data = self._read(self._status)
        return [json.loads(l) for l in data[:data.rfind(b"\n") + 1].splitlines()]

    def status(self, kind):
        return [s for s in self.status_lines() if s["status"] == kind]

    def health(self):
        h = self.status("health")
        return h[-1] if h else {}

    def wait_status(self, kind, timeout=90):
        """The first status line of this kind; fails if fusescope exits or takes too long."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.status(kind)
            if seen:
                return seen[0]
            if self.proc.poll() is not None:
                raise AssertionError(f"{' '.join(self.args)} exited {self.proc.returncode} "
                                     f"before its {kind!r} status line: {self.stderr()}")
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError(f"{' '.join(self.args)}: no {kind!r} status line in "
                                     f"{timeout}s: {self.stderr()}")
            time.sleep(0.05)

    def wait_watching(self, timeout=90):
        w = self.wait_status("watching", timeout)
        self.backend = w["backend"]
        return w

    # --- its life
    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=30):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{' '.join(self.args)} did not exit within {timeout}s")
        if self.returncode is None and rc >= 0 and self.status("watching"):
            ex = self.status("exit")
            if not ex or ex[-1]["code"] != rc:
                raise AssertionError(f"{' '.join(self.args)} exited {rc}, its status stream "
                                     f"says {ex}: {self.stderr()}")
        self.returncode = rc
        return rc

    def stop(self, sig=SIGINT, timeout=30):
        if self.proc.poll() is None:
            self.signal(sig)
        return self.wait(timeout)

    def finish(self, sig=SIGINT, timeout=120):
        rc = self.stop(sig, timeout)
        return rc, self.stdout_bytes(), self.stderr_bytes()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def alive(self):
        return self.proc.poll() is None

    def close(self):
        """Kills it if it still runs; what it wrote stays readable."""
        self.kill()
        files = (self._status, self._out, self._err)
        self._kept.update({id(f): self._read(f) for f in files if not f.closed})
        for f in files:
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Trace:
    """`fusescope [EXTRA...] trace --json --mount M`: returns from `with` once attached; stop()
    (or leaving the block) stops it with SIGINT and reads its events."""

    def __init__(self, mountpoint, *extra, ready_timeout=60):
        self.args = [*extra, "trace", "--json", "--mount", mountpoint]
        self.ready_timeout = ready_timeout
        self.events = []
        self.backend = None
        self.returncode = None
        self.prog_misses = 0

    def __enter__(self):
        self.fs = Fusescope(*self.args)
        try:
            self.backend = self.fs.wait_watching(self.ready_timeout)["backend"]
        except AssertionError as e:
            self.fs.close()
            raise RuntimeError(f"fusescope trace did not attach: {e}")
        return self

    def stderr(self):
        return self.fs.stderr()

    def stop(self):
        if self.returncode is None:
            time.sleep(0.3)  # let the last events reach the ring buffer reader
            self.returncode = self.fs.stop(timeout=30)
            self.events = [json.loads(l) for l in self.fs.stdout_bytes().splitlines()
                           if l.startswith(b"{")]
            self.prog_misses = self.fs.health().get("prog_misses", 0)
        return self.events

    def __exit__(self, *exc):
        try:
            if self.fs.alive():
                self.stop()
        finally:
            self.fs.close()
        return False


def writes(events):
    return collections.Counter((e["lock"], e["reason"]) for e in events if e["event"] == "write")


def assert_writes(tc, trace, want):
    """Exact counts, unless the kernel reported skipped probe runs: then each count may be
    short, by no more than prog_misses in total (fusescope counts what it could not see)."""
    got = writes(trace.stop())
    if got == collections.Counter(want) or not trace.prog_misses:
        tc.assertEqual(got, collections.Counter(want), trace.stderr())
        return
    short = 0
    for k in set(got) | set(want):
        tc.assertLessEqual(got.get(k, 0), want.get(k, 0), (got, want))
        short += want.get(k, 0) - got.get(k, 0)
    tc.assertLessEqual(short, trace.prog_misses, (got, want, trace.prog_misses))
