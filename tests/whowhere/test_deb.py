"""The Debian package, built by the one documented command (`cpack -G DEB` in the build
directory; here into a temporary directory), holds the binaries, man pages, bash completion,
dashboard, rules and the exporter's unit under the usual paths; installed with dpkg,
`/usr/bin/fusescope doctor` runs from it; removed again in a finally. Needs root; skipped
when a fusescope package is installed already (the test would replace it)."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("FUSESCOPE_BUILD_DIR", "build")
EXPECTED = [
    "./usr/bin/fusescope",
    "./usr/bin/fusescope-testfs",
    "./usr/bin/fusescope-load",
    "./usr/share/man/man1/fusescope.1",
    "./usr/share/man/man1/fusescope-top.1",
    "./usr/share/man/man1/fusescope-diagnose.1",
    "./usr/share/bash-completion/completions/fusescope",
    "./usr/share/fusescope/dashboards/fusescope.json",
    "./usr/share/fusescope/dashboards/fusescope.rules.yml",
    "./lib/systemd/system/fusescope-exporter.service",
]


def installed():
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "fusescope"], capture_output=True,
                       text=True)
    return "install ok installed" in p.stdout


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("dpkg"), "needs root and dpkg")
class DebianPackage(unittest.TestCase):
    def test_build_install_run_remove(self):
        if installed():
            self.skipTest("a fusescope package is installed already")
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(["cpack", "-G", "DEB", "-B", d, "--config",
                            os.path.join(BUILD, "CPackConfig.cmake")], check=True,
                           capture_output=True, timeout=600)
            (deb,) = [os.path.join(d, f) for f in os.listdir(d) if f.endswith(".deb")]
            listing = subprocess.run(["dpkg-deb", "-c", deb], check=True, capture_output=True,
                                     text=True).stdout
            paths = {l.split()[5].removesuffix(".gz") for l in listing.splitlines()}
            for path in EXPECTED:
                self.assertIn(path, paths)
            try:
                subprocess.run(["dpkg", "-i", deb], check=True, capture_output=True, timeout=300)
                p = subprocess.run(["/usr/bin/fusescope", "doctor", "--json"],
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertTrue(json.loads(p.stdout)["ok"])
                v = subprocess.run(["/usr/bin/fusescope", "--version"], capture_output=True,
                                   text=True, timeout=30)
                self.assertTrue(v.stdout.startswith("fusescope, version "), v)
                if shutil.which("man"):
                    page = subprocess.run(["man", "-w", "fusescope-diagnose"],
                                          capture_output=True, text=True, timeout=30)
                    self.assertTrue(page.stdout.startswith("/usr/share/man/man1/"), page)
                with open("/lib/systemd/system/fusescope-exporter.service") as f:
                    self.assertIn("/usr/bin/fusescope export", f.read())
            finally:
                subprocess.run(["dpkg", "-r", "fusescope"], check=True, capture_output=True,
                               timeout=300)
            self.assertFalse(os.path.exists("/usr/bin/fusescope"))
            self.assertFalse(installed())


if __name__ == "__main__":
    unittest.main(verbosity=2)
