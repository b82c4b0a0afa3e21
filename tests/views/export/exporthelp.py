"""Helpers for the `fusescope export` tests: run the exporter, free ports, HTTP GET.
Standard library only. Binaries come from the environment (ctest sets them)."""

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

FUSESCOPE = os.environ.get("FUSESCOPE", "fusescope")
DASHBOARD = os.environ.get("FUSESCOPE_DASHBOARD", "dashboards/fusescope.json")


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def wait_http(url, timeout=30, proc=None):
    """Polls url until it answers 200; raises AssertionError on timeout or if proc exited."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} while waiting for {url}")
        try:
            status, _, body = http_get(url, timeout=2)
            if status == 200:
                return body
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s ({last})")


class Exporter:
    """`fusescope export --listen 127.0.0.1:PORT --mount MNT ...` as a context manager.
    Stops it with SIGTERM on exit (SIGKILL if it ignores that) and checks it exited 0."""

    def __init__(self, mount, *args, port=None):
        self.port = port or free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self._err = tempfile.TemporaryFile(mode="w+b")
        self.proc = subprocess.Popen(
            [FUSESCOPE, "export", "--listen", self.addr, "--mount", mount, *map(str, args)],
            stdout=subprocess.DEVNULL, stderr=self._err, stdin=subprocess.DEVNULL)
        self.returncode = None
        try:
            wait_http(f"http://{self.addr}/metrics", timeout=60, proc=self.proc)
        except AssertionError as e:
            self.stop()
            raise AssertionError(f"{e}; exporter stderr: {self.stderr()}")

    def stderr(self):
        self._err.seek(0)
        return self._err.read().decode(errors="replace")

    def metrics(self):
        return http_get(f"http://{self.addr}/metrics")[2]

    def stop(self):
        if self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.returncode = "killed"
        return self.returncode

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        rc = self.stop()
        err = self.stderr()
        self._err.close()
        if exc_type is None and rc != 0:
            raise AssertionError(f"fusescope export exited with {rc} on SIGTERM: {err}")
        return False


def skip_unless_root(testcase):
    if os.geteuid() != 0:
        testcase.skipTest("needs root (BPF, FUSE mounts)")
