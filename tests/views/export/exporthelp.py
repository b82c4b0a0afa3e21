"""Helpers for the `fusescope export` tests: run the exporter, free ports, HTTP(S) GET.
Standard library only. Binaries come from the environment (ctest sets them)."""

import base64
import os
import signal
import socket
import time
import urllib.error
import urllib.request

from fusescope_run import FUSESCOPE, Fusescope  # noqa: F401 (tests import FUSESCOPE from here)

DASHBOARD = os.environ.get("FUSESCOPE_DASHBOARD", "dashboards/fusescope.json")


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5, context=None, auth=None):
    """(status, content type, body) of a GET; auth is (user, password) for basic auth.
    4xx/5xx answers are returned, not raised."""
    req = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode(errors="replace")


def wait_http(url, timeout=30, proc=None, context=None, auth=None):
    """Polls url until it answers 200; raises AssertionError on timeout or if proc exited."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} while waiting for {url}")
        try:
            status, _, body = http_get(url, timeout=2, context=context, auth=auth)
            if status == 200:
                return body
            last = status
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s ({last})")


class Exporter:
    """`fusescope export --web.listen-address ADDR... --mount MNT ...` as a context manager,
    ready once /metrics answers 200 (with context and auth for TLS and basic auth).
    listen: addresses (default one free port on 127.0.0.1); self.addr is the first.
    Stops it with SIGTERM on exit (SIGKILL if it ignores that) and checks it exited 0.
    Runs through fusescope_run.Fusescope (self.fs): attached once it says "watching"."""

    def __init__(self, mount, *args, port=None, listen=None, context=None, auth=None):
        self.port = port or free_port()
        self.listen = listen or [f"127.0.0.1:{self.port}"]
        self.addr = self.listen[0]
        self.scheme = "https" if context else "http"
        self.context, self.auth = context, auth
        cmd = ["export", "--mount", mount]
        for a in self.listen:
            cmd += ["--web.listen-address", a]
        self.fs = Fusescope(*cmd, *args)
        self.proc = self.fs.proc
        self.pid = self.fs.pid
        self.returncode = None
        try:
            self.fs.wait_watching(60)
            wait_http(self.url("/metrics"), timeout=60, proc=self.proc, context=context, auth=auth)
        except AssertionError as e:
            self.stop()
            err = self.stderr()
            self.fs.close()
            raise AssertionError(f"{e}; exporter stderr: {err}")

    def url(self, path, addr=None):
        return f"{self.scheme}://{addr or self.addr}{path}"

    def stderr(self):
        return self.fs.stderr()

    def metrics(self, addr=None):
        status, _, body = http_get(self.url("/metrics", addr), context=self.context, auth=self.auth)
        if status != 200:
            raise AssertionError(f"/metrics answered {status}: {body}")
        return body

    def stop(self):
        if self.returncode is not None:
            return self.returncode
        try:
            self.returncode = self.fs.stop(signal.SIGTERM, 20)
        except AssertionError:  # did not exit: Fusescope killed it
            self.returncode = "killed"
        return self.returncode

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        rc = self.stop()
        err = self.stderr()
        self.fs.close()
        if exc_type is None and rc != 0:
            raise AssertionError(f"fusescope export exited with {rc} on SIGTERM: {err}")
        return False


def metric_value(body, name, **labels):
    """The value of the first sample of name whose labels include labels, else None."""
    for line in body.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if head != name and not head.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def skip_unless_root(testcase):
    if os.geteuid() != 0:
        testcase.skipTest("needs root (BPF, FUSE mounts)")
