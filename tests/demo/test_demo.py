"""`fusescope demo`, the README's first command: it shows the indexer taking the database
file into cache mode, and leaves no mount, directory, process or BPF program behind, whether
it ends by itself, by SIGINT, or is SIGKILLed."""

import os
import re
import signal
import subprocess
import time
import unittest

FUSESCOPE = os.environ.get("FUSESCOPE", "fusescope")


def demo_mounts():
    with open("/proc/self/mounts") as f:
        return [l.split()[1] for l in f if "/fusescope-demo." in l]


def fs_programs():
    out = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if re.search(r"\bname fs_", l)]


def wait_for(pred, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


class DemoTest(unittest.TestCase):
    def setUp(self):
        self.assertEqual(demo_mounts(), [], "a demo mount exists before the test")
        self.progs_before = fs_programs()

    def assert_nothing_left(self, demo_dir):
        self.assertTrue(wait_for(lambda: not demo_mounts()), demo_mounts())
        self.assertTrue(wait_for(lambda: fs_programs() == self.progs_before), fs_programs())
        out = subprocess.run(["pgrep", "-f", demo_dir], capture_output=True, text=True).stdout
        self.assertTrue(wait_for(lambda: subprocess.run(["pgrep", "-f", demo_dir],
                                                        capture_output=True).returncode != 0), out)

    def start(self):
        p = subprocess.Popen([FUSESCOPE, "demo", "-b"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        m = re.search(r"mounts: (/tmp/fusescope-demo\.\w+)/mnt", line)
        self.assertIsNotNone(m, line + p.stderr.read() if p.poll() is not None else line)
        return p, m.group(1)

    def test_shows_indexer_and_cleans_up(self):
        r = subprocess.run([FUSESCOPE, "demo", "-b", "--duration", "9"], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"db\.dat .*cached\(1\) +indexer:\d+")
        self.assertRegex(r.stdout, r"db\.dat .*parallel\(\d\)")
        demo_dir = re.search(r"mounts: (/tmp/fusescope-demo\.\w+)/mnt", r.stdout).group(1)
        self.assertFalse(os.path.exists(demo_dir))
        self.assert_nothing_left(demo_dir)

    def test_sigint(self):
        p, demo_dir = self.start()
        time.sleep(2)
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0)
        self.assertFalse(os.path.exists(demo_dir))
        self.assert_nothing_left(demo_dir)

    def test_sigkill(self):
        p, demo_dir = self.start()
        time.sleep(2)
        p.kill()
        p.communicate(timeout=30)
        # the children die with it (PR_SET_PDEATHSIG): the server unmounts, the kernel drops
        # the BPF links and programs with the demo's file descriptors
        self.assert_nothing_left(demo_dir)
        subprocess.run(["rm", "-rf", demo_dir])  # the empty directories are all that stays


if __name__ == "__main__":
    unittest.main(verbosity=2)
