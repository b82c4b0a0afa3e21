#!/usr/bin/python3
"""fusescope top against the db-and-indexer scenario (issue 5).

The live screen is read from tmux (capture-pane), batch mode from its stdout. In both: while the
indexer maps the database MAP_SHARED, the database inode is the top row, its mode reads cached,
the indexer (comm and pid from fusescope-load's JSON) is named as holder and most writes are
exclusive; after the indexer unmapped, the mode returns to parallel/none. q, Ctrl-C and SIGTERM
restore the terminal; a too-small terminal shows a message.

Needs root (FUSE mounts, BPF). Binaries from the environment: FUSESCOPE, FUSESCOPE_TESTFS,
FUSESCOPE_LOAD (ctest sets them).
"""

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from fusemount import LOAD, testfs_mount  # noqa: E402

FUSESCOPE = os.environ.get("FUSESCOPE", "fusescope")
MOUNT_OPTS = ("--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap",
              "--write-delay-us", "200")
MODES = ("cached", "parallel", "none", "passthrough", "n/a")


def load_cmd(m, duration, delay, hold):
    return [LOAD, "db-and-indexer", "--file", m.path("db"), "--threads", "4", "--writes",
            "100", "--size", "16384", "--duration", str(duration), "--indexer-delay",
            str(delay), "--indexer-hold", str(hold)]


class Load:
    """fusescope-load in the background; .result is its JSON once it finished."""

    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.result = None

    def wait(self, timeout=120):
        out, err = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            raise AssertionError(f"fusescope-load exited {self.proc.returncode}: {err} {out}")
        self.result = json.loads(out)
        return self.result

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def table(text):
    """(header line, [rows]) of the first table in text (a screen or one batch snapshot)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("PATH") and " MODE" in line and "HOLDERS" in line:
            rows = []
            for r in lines[i + 1:]:
                if (not r.strip() or r.startswith("-- detail") or " q quit " in r
                        or r.startswith("... ")):
                    break
                rows.append(r)
            return line, rows
    return None, []


def field(header, row, title, width):
    """A right-aligned fixed-width column's text, located by its title in the header."""
    m = re.search(re.escape(title) + r"[v^]?", header)
    if not m:
        return None
    end = m.end()
    return row[end - width:end].strip() if len(row) >= end else None


def mode_of(row):
    m = re.search(r"\b(cached|parallel|none|passthrough|n/a)(\([^)]*\))?", row)
    return m.group(1) if m else None


def is_db_row(row, ino):
    return bool(re.match(r"\S*/db\s", row) or row.startswith(f"ino {ino} ("))


class Frame:
    def __init__(self, t, text):
        self.t = t
        self.text = text
        self.header, self.rows = table(text)


def check_story(tc, frames, ino, indexer_pid, indexer_comm):
    """The common assertions over a sequence of screens/snapshots."""
    holder = f"{indexer_comm}:{indexer_pid}"
    cached = [f for f in frames if f.rows and is_db_row(f.rows[0], ino)
              and mode_of(f.rows[0]) == "cached" and holder in f.rows[0]]
    dump = "\n=====\n".join(f.text for f in frames[-40:])
    tc.assertTrue(cached, f"no screen with the db inode on top, cached, held by {holder}:\n{dump}")
    excl = [int(e) for f in cached
            for e in [field(f.header, f.rows[0], "EXCL%", 6)] if e and e.isdigit()]
    tc.assertTrue(excl, f"no EXCL% read from the cached screens:\n{cached[0].text}")
    tc.assertGreaterEqual(max(excl), 80, f"exclusive % not high: {excl}\n{cached[0].text}")
    # After the indexer's map: back to parallel (writers still running) or none.
    last_cached = max(f.t for f in cached)
    after = [f for f in frames if f.t > last_cached and f.rows]
    back = [f for f in after for r in f.rows if is_db_row(r, ino)
            and mode_of(r) in ("parallel", "none") and holder not in r]
    tc.assertTrue(back, "mode never returned to parallel/none after the indexer:\n"
                  + "\n=====\n".join(f.text for f in after[-5:]))


@unittest.skipUnless(os.geteuid() == 0, "needs root (FUSE mounts, BPF)")
class TopBatch(unittest.TestCase):
    def run_batch(self, m, args, start_load, timeout=120):
        """Runs `fusescope top ARGS --mount M` with stdout to a pipe; calls start_load() after
        the first snapshot. Returns (frames, stderr, returncode, load)."""
        p = subprocess.Popen([FUSESCOPE, "top", *args, "--mount", m.mountpoint],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        frames, cur, load = [], [], None
        err_chunks = []
        t_err = threading.Thread(target=lambda: err_chunks.append(p.stderr.read()))
        t_err.start()
        try:
            for line in p.stdout:
                if line.startswith("fusescope top - "):
                    if cur:
                        frames.append(Frame(time.monotonic(), "".join(cur)))
                        if load is None and start_load:
                            load = start_load()
                    cur = []
                cur.append(line)
            if cur:
                frames.append(Frame(time.monotonic(), "".join(cur)))
            p.wait(timeout)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            t_err.join()
            p.stdout.close()
            p.stderr.close()
        return frames, "".join(err_chunks), p.returncode, load

    def test_batch_db_and_indexer(self):
        with testfs_mount(*MOUNT_OPTS) as m:
            load = None
            try:
                frames, err, rc, load = self.run_batch(
                    m, ["-b", "-n", "16", "--interval", "0.5"],
                    lambda: Load(load_cmd(m, 4.5, 1.0, 2.0)))
                self.assertEqual(rc, 0, err)
                self.assertEqual(len(frames), 16, err)
                self.assertIsNotNone(load)
                res = load.wait()
            finally:
                if load:
                    load.kill()
            for f in frames:
                self.assertRegex(f.text.splitlines()[0],
                                 r"^fusescope top - \d\d:\d\d:\d\d  backend: \S+  kernel: \S+  "
                                 r"mounts: " + re.escape(m.mountpoint))
            ino = os.stat(m.path("db")).st_ino
            ix = res["indexer"]
            check_story(self, frames, ino, ix["pid"], ix["comm"])
            last = [r for r in frames[-1].rows if is_db_row(r, ino)]
            self.assertTrue(last, frames[-1].text)
            self.assertIn(mode_of(last[0]), ("parallel", "none"), frames[-1].text)

    def test_batch_n3_when_stdout_is_not_a_tty(self):
        # No -b: stdout is a pipe, so top behaves as batch; -n 3 prints three snapshots.
        with testfs_mount(*MOUNT_OPTS) as m:
            with open(m.path("f"), "wb") as f:
                f.write(b"x" * 4096)
            t0 = time.monotonic()
            frames, err, rc, _ = self.run_batch(m, ["-n", "3", "--interval", "0.3"], None)
            self.assertEqual(rc, 0, err)
            self.assertEqual(len(frames), 3, err)
            self.assertLess(time.monotonic() - t0, 60)
            for f in frames:
                self.assertIsNotNone(f.header, f.text)
                for title in ("MODE", "HOLDERS", "WR/s", "EXCL%", "REASON", "P50", "P99",
                              "WAIT/s", "DRAIN", "MOUNT"):
                    self.assertIn(title, f.header)

    def test_rows_limit_the_table_and_say_how_many_more(self):
        # Five files written once each after the first snapshot, and kept open (top's census
        # names open files): with --rows 2 and the path order, the table shows f1 and f2 and
        # says three more matched.
        with testfs_mount(*MOUNT_OPTS) as m:
            held = []

            def write_files():
                for i in range(1, 6):
                    held.append(open(m.path(f"f{i}"), "wb"))
                    held[-1].write(b"x" * 4096)
                    held[-1].flush()
                return True

            try:
                frames, err, rc, _ = self.run_batch(
                    m, ["-b", "-n", "8", "--interval", "0.5", "--sort", "path", "--rows", "2"],
                    write_files)
            finally:
                for f in held:
                    f.close()
            self.assertEqual(rc, 0, err)
            last = frames[-1]
            names = [os.path.basename(r.split()[0]) for r in last.rows]
            self.assertEqual(names, ["f1", "f2"], last.text)
            self.assertIn("... 3 more inodes (--rows N to show more, 0 for all)", last.text)

    def test_bad_sort_key_is_a_usage_error(self):
        p = subprocess.run([FUSESCOPE, "top", "-b", "-n", "1", "--sort", "bogus"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("unknown sort key", p.stderr)


class Tmux:
    """A private tmux server (own socket) with one pane running an interactive bash."""

    _ids = itertools.count()

    def __init__(self, width=120, height=40):
        # A fresh socket each time: a killed server may still hold the old one for a moment.
        self.sock = f"fusescope-top-test-{os.getpid()}-{next(Tmux._ids)}"
        env_term = "screen"
        self.cmd(["-f", "/dev/null", "new-session", "-d", "-x", str(width), "-y", str(height),
                  "-s", "t", f"env TERM={env_term} PS1='$ ' bash --norc --noprofile -i"])
        self.cmd(["set-option", "-g", "remain-on-exit", "on"])
        self.socket_path = self.cmd(["display-message", "-p", "#{socket_path}"]).stdout.strip()

    def cmd(self, args, check=True):
        p = subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True, text=True,
                           timeout=30)
        if check and p.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p

    def keys(self, *keys, literal=False):
        self.cmd(["send-keys", "-t", "t", *(["-l"] if literal else []), *keys])

    def screen(self):
        return self.cmd(["capture-pane", "-p", "-t", "t"]).stdout

    def resize(self, w, h):
        self.cmd(["resize-window", "-t", "t", "-x", str(w), "-y", str(h)])

    def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        s = ""
        while time.monotonic() < deadline:
            s = self.screen()
            if pred(s):
                return s
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{s}")

    def shell_pid(self):
        return int(self.cmd(["display-message", "-p", "-t", "t", "#{pane_pid}"]).stdout)

    def close(self):
        self.cmd(["kill-server"], check=False)
        if self.socket_path:
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


@unittest.skipUnless(os.geteuid() == 0, "needs root (FUSE mounts, BPF)")
@unittest.skipUnless(shutil.which("tmux"), "needs tmux")
class TopTty(unittest.TestCase):
    def setUp(self):
        self.tmux = Tmux()
        self.addCleanup(self.tmux.close)

    def start_top(self, m, *args):
        self.tmux.keys(f"{FUSESCOPE} top --mount {m.mountpoint} {' '.join(args)}; "
                       "echo TOP-EXIT=$?", literal=True)
        self.tmux.keys("Enter")
        return self.tmux.wait_for(lambda s: "fusescope top - " in s and "HOLDERS" in s, 90,
                                  "the top screen")

    def assert_terminal_restored(self, how):
        s = self.tmux.wait_for(lambda s: re.search(r"(?m)^TOP-EXIT=\d+", s), 30,
                               f"top to exit on {how}")
        self.assertRegex(s, r"(?m)^TOP-EXIT=0$")
        self.assertNotIn("HOLDERS", s, f"the top screen is still shown after {how}:\n{s}")
        # The line discipline is back to cooked mode with echo.
        self.tmux.keys("stty -a | tr ' ' '\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ,; "
                       "echo STTY-DONE", literal=True)
        self.tmux.keys("Enter")
        s = self.tmux.wait_for(lambda s: re.search(r"^\S*STTY-DONE", s, re.M), 10, "stty")
        self.assertRegex(s, r"(?m)^icanon,echo,STTY-DONE|^echo,icanon,STTY-DONE", s)

    def test_tty_db_and_indexer(self):
        with testfs_mount(*MOUNT_OPTS) as m:
            self.start_top(m, "--interval", "0.5")
            load = Load(load_cmd(m, 5.0, 1.0, 2.0))
            frames = []
            try:
                while load.proc.poll() is None:
                    frames.append(Frame(time.monotonic(), self.tmux.screen()))
                    time.sleep(0.2)
                res = load.wait()
                end = time.monotonic() + 2.0
                while time.monotonic() < end:
                    frames.append(Frame(time.monotonic(), self.tmux.screen()))
                    time.sleep(0.2)
            finally:
                load.kill()
            ino = os.stat(m.path("db")).st_ino
            ix = res["indexer"]
            check_story(self, frames, ino, ix["pid"], ix["comm"])
            # The detail pane of the (selected) top row.
            self.tmux.keys("Enter")
            s = self.tmux.wait_for(lambda s: "-- detail:" in s and "mode transitions" in s, 10,
                                   "the detail pane")
            self.assertIn(f"{ix['comm']}:{ix['pid']}", s)  # in the transitions
            self.tmux.keys("q")
            self.assert_terminal_restored("q")

    def test_tty_keys_resize_and_signals(self):
        with testfs_mount(*MOUNT_OPTS) as m:
            for name in ("a", "b"):
                with open(m.path(name), "wb") as f:
                    f.write(b"x" * 4096)
            # Keep both files open so the census resolves their paths.
            fds = [os.open(m.path(n), os.O_RDONLY) for n in ("a", "b")]
            try:
                self.start_top(m, "--interval", "0.3", "--sort", "path")
                s = self.tmux.wait_for(lambda s: len(table(s)[1]) >= 2 and "/b" in s, 30,
                                       "two rows")
                self.assertRegex(table(s)[1][0], r"/a\s")
                self.tmux.keys("r")
                s = self.tmux.wait_for(lambda s: table(s)[1] and
                                       re.match(r"\S*/b\s", table(s)[1][0]), 10, "reverse")
                self.tmux.keys("/")
                # (not just "a": the random temp dir name may contain one)
                self.tmux.keys("mnt/a", literal=True)
                self.tmux.keys("Enter")
                s = self.tmux.wait_for(lambda s: 'path~ "mnt/a"' in s and len(table(s)[1]) == 1,
                                       10, "the path filter")
                self.assertRegex(table(s)[1][0], r"/a\s")
                self.tmux.keys("c")
                self.tmux.keys("h")
                self.tmux.wait_for(lambda s: "fusescope top - keys" in s, 10, "help")
                self.tmux.keys("x")
                self.tmux.keys("p")
                self.tmux.wait_for(lambda s: "[PAUSED]" in s, 10, "pause")
                self.tmux.keys("p")
                self.tmux.resize(40, 10)
                self.tmux.wait_for(lambda s: "terminal too small" in s, 10, "too small")
                self.tmux.resize(80, 24)
                s = self.tmux.wait_for(lambda s: "HOLDERS" in s and "EXCL%" in s, 10, "80x24")
                for line in s.splitlines():
                    self.assertLessEqual(len(line), 80)
                self.tmux.keys("C-c")
                self.assert_terminal_restored("Ctrl-C")
                # SIGTERM
                self.start_top(m, "--interval", "0.3")
                top_pids = [p for p in children(self.tmux.shell_pid())]
                self.assertEqual(len(top_pids), 1, top_pids)
                os.kill(top_pids[0], signal.SIGTERM)
                self.assert_terminal_restored("SIGTERM")
            finally:
                for fd in fds:
                    os.close(fd)


if __name__ == "__main__":
    unittest.main(verbosity=2)
