"""The CLI people expect, without root: --version; man pages for fusescope and each command,
generated from the command line's definitions (every option --help lists is in the page,
and groff renders the page without a warning); a bash completion that completes commands,
options and option values (run in a real bash)."""

import os
import re
import subprocess
import tempfile
import unittest

FUSESCOPE = os.environ.get("FUSESCOPE", "fusescope")
COMMANDS = ("doctor", "trace", "top", "export", "diagnose", "demo")


def run(*args):
    p = subprocess.run([FUSESCOPE, *args], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"{args}: exit {p.returncode}: {p.stderr}")
    return p.stdout


def long_options(help_text):
    return set(re.findall(r"(?<![\w-])(--[a-z][\w.-]*)", help_text))


class CliDocs(unittest.TestCase):
    def test_version(self):
        out = run("--version")
        self.assertRegex(out, r"^fusescope, version \d+\.\d+\.\d+ \(revision: [^)]+\)\n$")

    def test_man_pages_cover_every_option(self):
        with tempfile.TemporaryDirectory() as d:
            run("--generate-man", d)
            self.assertEqual(sorted(os.listdir(d)),
                             sorted(["fusescope.1"] + [f"fusescope-{c}.1" for c in COMMANDS]))
            for page, help_args in [("fusescope.1", ["--help"])] + [
                    (f"fusescope-{c}.1", [c, "--help"]) for c in COMMANDS]:
                with self.subTest(page=page):
                    path = os.path.join(d, page)
                    g = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", path],
                                       capture_output=True, text=True, timeout=60)
                    self.assertEqual((g.returncode, g.stderr), (0, ""))
                    # no hyphenation: an option must not be split over two lines
                    text = subprocess.run(["groff", "-man", "-Tutf8", "-rHY=0", path],
                                          capture_output=True, text=True, timeout=60,
                                          env={**os.environ, "GROFF_NO_SGR": "1"}).stdout
                    text = re.sub(r".\x08", "", text).replace("\u2010", "-").replace("\u2212", "-")
                    missing = long_options(run(*help_args)) - long_options(text)
                    self.assertFalse(missing, f"{page} lacks {missing}")
                    if page == "fusescope.1":  # the command list points to each page
                        for c in COMMANDS:
                            self.assertIn(f"see fusescope-{c}(1)", " ".join(text.split()))

    def complete(self, script, line):
        words = line.split(" ")
        bash = (f"source {script}\n"
                f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
                f"COMP_CWORD={len(words) - 1}\n"
                "_fusescope\n"
                'printf "%s\\n" "${COMPREPLY[@]}"\n')
        p = subprocess.run(["bash", "--norc", "--noprofile", "-c", bash], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.stderr, "")
        return sorted(w for w in p.stdout.split("\n") if w)

    def test_bash_completion(self):
        with tempfile.TemporaryDirectory() as d:
            script = os.path.join(d, "fusescope.bash")
            with open(script, "w") as f:
                f.write(run("--generate-completion"))
            self.assertEqual(self.complete(script, "fusescope t"), ["top", "trace"])
            self.assertEqual(self.complete(script, "fusescope --back"), ["--backend"])
            self.assertEqual(self.complete(script, "fusescope --backend t"),
                             ["tracepoint", "trampoline"])
            self.assertEqual(self.complete(script, "fusescope top --so"), ["--sort"])
            self.assertEqual(self.complete(script, "fusescope top --sort w"), ["wait", "writes"])
            self.assertEqual(self.complete(script, "fusescope diagnose --j"), ["--json"])
            os.mkdir(os.path.join(d, "mnt"))
            self.assertEqual(self.complete(script, f"fusescope top --mount {d}/m"),
                             [f"{d}/mnt"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
