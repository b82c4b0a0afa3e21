"""Mount fusescope-testfs for a test, and run fusescope-load.

Small on purpose; other test suites import it. Standard library only.

Binaries come from the environment (ctest sets them):
    FUSESCOPE_TESTFS   path of fusescope-testfs
    FUSESCOPE_LOAD     path of fusescope-load

API
    with testfs_mount("--direct-io", "--parallel-direct-writes") as m:
        m.mountpoint, m.backing      # temp dirs (absolute paths)
        m.path("f"), m.backing_path("f")
        m.pid                        # the server's pid
        m.stderr()                   # what the server wrote on stderr so far
        m.stop(signal.SIGINT)        # optional: stop it yourself, returns the exit status
    On leaving the block the server gets SIGTERM (unless already stopped) and must exit 0;
    the mountpoint must be gone from /proc/self/mounts. If it is still there the helper
    runs `umount -l`, and the test FAILS (AssertionError): a test must never leave a mount.

    run_load(scenario, *args, check=True) -> dict   # runs fusescope-load, parses its JSON
    pattern_block(block, size, seed=0) -> bytes      # the data fusescope-load writes
    is_mounted(path) -> bool                         # per /proc/self/mounts
    passthrough_supported() -> bool                  # can this kernel mount with --passthrough
    MountError                                       # raised if the server never got ready
"""

import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

__all__ = ["testfs_mount", "run_load", "pattern_block", "is_mounted",
           "passthrough_supported", "MountError", "TESTFS", "LOAD"]

TESTFS = os.environ.get("FUSESCOPE_TESTFS", "fusescope-testfs")
LOAD = os.environ.get("FUSESCOPE_LOAD", "fusescope-load")
MAGIC = 0x706F637365737566  # "fusescop", see fusescope-load --help


class MountError(RuntimeError):
    """fusescope-testfs exited or did not print its ready line in time."""

    def __init__(self, message, returncode=None, stderr=""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


def _unescape(field):
    # /proc/self/mounts escapes space, tab, newline, backslash as \ooo
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def is_mounted(path):
    """True if /proc/self/mounts lists a mount on path (after realpath)."""
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(_unescape(line.split()[1]) == path for line in f if line.strip())


def pattern_block(block, size, seed=0):
    """Content fusescope-load writes for block number `block`."""
    rec = struct.pack("<QQ", block, MAGIC ^ seed)
    return (rec * (size // len(rec) + 1))[:size]


class _Mount:
    def __init__(self, options, backing, ready_timeout, keep_dirs):
        self.options = list(options)
        self._tmp = tempfile.mkdtemp(prefix="fusescope-testfs-")
        self._own_backing = backing is None
        self.backing = os.path.realpath(backing or os.path.join(self._tmp, "backing"))
        self.mountpoint = os.path.join(self._tmp, "mnt")
        os.makedirs(self.backing, exist_ok=True)
        os.mkdir(self.mountpoint)
        self._err = tempfile.TemporaryFile(mode="w+b")
        self._keep = keep_dirs
        self.returncode = None
        self.proc = subprocess.Popen(
            [TESTFS, *self.options, self.backing, self.mountpoint],
            stdout=subprocess.PIPE, stderr=self._err, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self._abort()
                raise MountError(f"fusescope-testfs not ready after {timeout}s", None, self.stderr())
            r, _, _ = select.select([fd], [], [], min(left, 0.2))
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:  # exited
                    rc = self.proc.wait()
                    self.returncode = rc
                    err = self.stderr()
                    self._cleanup_dirs()
                    raise MountError(f"fusescope-testfs exited with {rc}: {err.strip()}", rc, err)
                buf += chunk
        line = buf.split(b"\n", 1)[0].decode()
        if line != f"ready {self.mountpoint}":
            self._abort()
            raise MountError(f"unexpected ready line {line!r}", None, self.stderr())

    def _abort(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if is_mounted(self.mountpoint):
            subprocess.run(["umount", "-l", self.mountpoint], check=False)

    def path(self, *parts):
        return os.path.join(self.mountpoint, *parts)

    def backing_path(self, *parts):
        return os.path.join(self.backing, *parts)

    def stderr(self):
        self._err.seek(0)
        return self._err.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signals the server and waits for it; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"fusescope-testfs ignored signal {sig} for {timeout}s")
        return self.returncode

    def _cleanup_dirs(self):
        if self._keep or is_mounted(self.mountpoint):
            return
        if self._own_backing:
            shutil.rmtree(self._tmp, ignore_errors=True)
        else:
            shutil.rmtree(self.mountpoint, ignore_errors=True)
            try:
                os.rmdir(self._tmp)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        problems = []
        stopped_by_test = self.returncode is not None or self.proc.poll() is not None
        try:
            rc = self.stop(signal.SIGTERM)
            if not stopped_by_test and rc != 0:
                problems.append(f"fusescope-testfs exited with {rc} on SIGTERM")
        except AssertionError as e:
            problems.append(str(e))
        if is_mounted(self.mountpoint):
            subprocess.run(["umount", "-l", self.mountpoint], check=False)
            problems.append(f"{self.mountpoint} was still mounted after the server exited "
                            "(removed with umount -l)")
        self.proc.stdout.close()
        err = self.stderr()
        self._err.close()
        self._cleanup_dirs()
        if problems:
            msg = "; ".join(problems) + (f"\nserver stderr:\n{err}" if err else "")
            if exc_type is None:
                raise AssertionError(msg)
            print(f"fusemount: {msg}", file=sys.stderr)  # do not hide the test's own failure
        return False


def testfs_mount(*options, backing=None, ready_timeout=10.0, keep_dirs=False):
    """Starts fusescope-testfs with `options` on fresh temp dirs (or on `backing`) and waits
    until it printed its ready line. Use as a context manager (see the module doc)."""
    return _Mount(options, backing, ready_timeout, keep_dirs)


def run_load(scenario, *args, check=True, timeout=300):
    """Runs fusescope-load SCENARIO ARGS... and returns its JSON summary as a dict.
    check=True asserts exit status 0. The dict also gets "_stderr" and "_returncode"."""
    p = subprocess.run([LOAD, scenario, *[str(a) for a in args]], capture_output=True,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"fusescope-load {scenario} {' '.join(map(str, args))} exited "
                             f"{p.returncode}: {p.stderr.strip()} {p.stdout.strip()}")
    try:
        out = json.loads(p.stdout) if p.stdout.strip() else {}
    except json.JSONDecodeError as e:
        raise AssertionError(f"fusescope-load printed bad JSON ({e}): {p.stdout!r}")
    out["_stderr"] = p.stderr
    out["_returncode"] = p.returncode
    return out


_passthrough = None


def passthrough_supported():
    """True if fusescope-testfs --passthrough mounts on this kernel (cached per process)."""
    global _passthrough
    if _passthrough is None:
        try:
            with testfs_mount("--passthrough"):
                _passthrough = True
        except MountError as e:
            if e.returncode != 3:
                raise
            _passthrough = False
    return _passthrough
