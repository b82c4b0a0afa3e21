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

    With "--io-uring" among the options, FUSE over io_uring is switched on
    (/sys/module/fuse/parameters/enable_uring = Y) only while the server starts, and the old
    value is put back in a finally, whatever happens; the connection keeps its rings after.
    Such a mount also gets --stats (unless given) and FAILS on leaving the block if any request
    but INIT, FORGET, BATCH_FORGET or INTERRUPT came through /dev/fuse (those are the ones the
    kernel still sends there), or none through the rings. m.stats is the parsed file then.

    run_load(scenario, *args, check=True) -> dict   # runs fusescope-load, parses its JSON
    pattern_block(block, size, seed=0) -> bytes      # the data fusescope-load writes
    is_mounted(path) -> bool                         # per /proc/self/mounts
    passthrough_supported() -> bool                  # can this kernel mount with --passthrough
    uring_supported() -> bool                        # ... with --io-uring (enable_uring toggled)
    uring_enabled(on=True)                           # context manager: enable_uring Y/N inside
    MODES                                            # every server mode: name -> options
    available_modes(*names) -> {name: options}       # those this kernel runs (see below)
    shared_mmap_allowed(options) -> bool             # MAP_SHARED works on such a mount
    MountError                                       # raised if the server never got ready
    BindfsMount(*opts) as b: b.src, b.mnt            # Debian's bindfs, not our server

    class T(Transport, unittest.TestCase): ...       # self.mount(*options): testfs_mount over
    class TU(IoUringTransport, T): ...               # the class's transport; TU runs T's tests
                                                     # again over FUSE over io_uring (skipped
                                                     # without it, unless expected, see below)

    Modes the kernel cannot run (passthrough, io-uring) are left out by available_modes(),
    unless FUSESCOPE_EXPECT_MODES (comma-separated names; ctest sets it on the host) lists
    them: then it raises, so a missing kernel feature fails the test instead of skipping it.
"""

import contextlib
import fcntl
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

__all__ = ["testfs_mount", "run_load", "pattern_block", "is_mounted", "passthrough_supported",
           "uring_supported", "uring_enabled", "ENABLE_URING", "MODES", "available_modes",
           "shared_mmap_allowed", "Transport", "IoUringTransport", "MountError", "TESTFS",
           "LOAD"]

TESTFS = os.environ.get("FUSESCOPE_TESTFS", "fusescope-testfs")
LOAD = os.environ.get("FUSESCOPE_LOAD", "fusescope-load")
MAGIC = 0x706F637365737566  # "fusescop", see fusescope-load --help


ENABLE_URING = "/sys/module/fuse/parameters/enable_uring"
_URING_LOCK = "/run/lock/fusescope-enable-uring.lock"

# Every mode fusescope-testfs offers, by name: the options that select it. The one table that
# tests parametrize over. The io-uring modes are the transport with two of the modes above.
MODES = {
    "direct-io": ["--direct-io"],
    "parallel": ["--direct-io", "--parallel-direct-writes"],
    "cached": [],
    "keep-cache": ["--keep-cache"],
    "direct-io-allow-mmap": ["--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap"],
    "passthrough": ["--passthrough"],
    "io-uring-parallel": ["--io-uring", "--direct-io", "--parallel-direct-writes",
                          "--direct-io-allow-mmap"],
    "io-uring-cached": ["--io-uring"],
    "io-uring-passthrough": ["--io-uring", "--passthrough"],
}


def shared_mmap_allowed(options):
    """Whether the kernel lets a mount with these options map files MAP_SHARED: it refuses
    (ENODEV) on FOPEN_DIRECT_IO files unless FUSE_DIRECT_IO_ALLOW_MMAP was negotiated."""
    return "--direct-io" not in options or "--direct-io-allow-mmap" in options


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
        self.stats = None
        self._stats_path = None
        if "--io-uring" in self.options and "--stats" not in self.options:
            self._stats_path = os.path.join(self._tmp, "stats.json")
            self.options += ["--stats", self._stats_path]
        # The rings are registered before the ready line, so enable_uring is needed only
        # until then.
        with uring_enabled() if "--io-uring" in self.options else contextlib.nullcontext():
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

    # What the kernel sends through /dev/fuse even when the rings serve the connection.
    _DEV_FUSE_ON_URING = {"INIT", "FORGET", "BATCH_FORGET", "INTERRUPT"}

    def _check_transport(self):
        try:
            with open(self._stats_path) as f:
                self.stats = json.load(f)
        except (OSError, ValueError) as e:
            return [f"no --stats from an --io-uring mount: {e}"]
        t = self.stats["transport"]
        stray = set(t["dev_fuse"]) - self._DEV_FUSE_ON_URING
        problems = []
        if stray:
            problems.append(f"--io-uring mount served {sorted(stray)} through /dev/fuse: {t}")
        if not t["io_uring"]:
            problems.append(f"--io-uring mount served nothing through its rings: {t}")
        return problems

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
        if self._stats_path:
            problems += self._check_transport()
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


@contextlib.contextmanager
def uring_enabled(on=True):
    """FUSE over io_uring switched on (enable_uring = Y; off with on=False) inside the block;
    the old value is put back in a finally. A lock file keeps two of our tests from
    interleaving save and restore. Raises FileNotFoundError if the kernel has no FUSE over
    io_uring."""
    want = "Y" if on else "N"
    with open(_URING_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(ENABLE_URING) as f:
            old = f.read().strip()
        try:
            if old != want:
                with open(ENABLE_URING, "w") as f:
                    f.write(want)
            yield
        finally:
            if old != want:
                with open(ENABLE_URING, "w") as f:
                    f.write(old)


_uring = None


def uring_supported():
    """True if fusescope-testfs --io-uring mounts on this kernel (cached per process)."""
    global _uring
    if _uring is None:
        if not os.path.exists(ENABLE_URING):
            _uring = False
        else:
            try:
                with testfs_mount("--io-uring") as m:
                    os.listdir(m.mountpoint)  # one request through the rings, checked on exit
                    _uring = True
            except MountError as e:
                if e.returncode != 3:
                    raise
                _uring = False
    return _uring


# Options that need a kernel feature: the feature's name (for FUSESCOPE_EXPECT_MODES), its probe.
_NEEDS = {"--passthrough": ("passthrough", passthrough_supported),
          "--io-uring": ("io-uring", uring_supported)}


def available_modes(*names):
    """The MODES (all, or those named) this kernel can run, as {name: options}. A mode whose
    kernel feature is missing is left out, or raises if FUSESCOPE_EXPECT_MODES names it."""
    expected = _expected_modes()
    out = {}
    for name in names or MODES:
        missing = [feature for flag, (feature, probe) in _NEEDS.items()
                   if flag in MODES[name] and not probe()]
        for feature in missing:
            if feature in expected:
                raise AssertionError(f"mode {name}: this kernel cannot run fusescope-testfs "
                                     f"--{feature}, and FUSESCOPE_EXPECT_MODES says it must")
        if not missing:
            out[name] = MODES[name]
    return out


def _expected_modes():
    return set(filter(None, os.environ.get("FUSESCOPE_EXPECT_MODES", "").split(",")))


class Transport:
    """unittest.TestCase mixin: self.mount(*options) is testfs_mount over TRANSPORT's options
    (none: /dev/fuse)."""

    TRANSPORT = ()

    def mount(self, *options, **kwargs):
        return testfs_mount(*options, *self.TRANSPORT, **kwargs)


class IoUringTransport(Transport):
    """The same tests over FUSE over io_uring. Skips the class on kernels without it, or fails
    it if FUSESCOPE_EXPECT_MODES names io-uring."""

    TRANSPORT = ("--io-uring",)

    @classmethod
    def setUpClass(cls):
        if not uring_supported():
            if "io-uring" in _expected_modes():
                raise AssertionError("FUSESCOPE_EXPECT_MODES has io-uring, but "
                                     "fusescope-testfs --io-uring cannot mount on this kernel")
            import unittest
            raise unittest.SkipTest("kernel without FUSE over io_uring")
        super().setUpClass()


class BindfsMount:
    """Debian's bindfs (a libfuse2 server written by others) mounting SRC on MNT with extra
    options, both in a fresh temporary directory; unmounted and removed on leaving."""

    def __init__(self, *opts):
        self.opts = opts

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="fusescope-bindfs-")
        self.src, self.mnt = os.path.join(self.tmp, "src"), os.path.join(self.tmp, "mnt")
        os.mkdir(self.src)
        os.mkdir(self.mnt)
        subprocess.run(["bindfs", *self.opts, self.src, self.mnt], check=True, timeout=30)
        return self

    def __exit__(self, *exc):
        subprocess.run(["fusermount", "-u", self.mnt], check=False, timeout=30)
        if is_mounted(self.mnt):
            subprocess.run(["umount", "-l", self.mnt], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False
