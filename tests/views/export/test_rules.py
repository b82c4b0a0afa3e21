"""dashboards/fusescope.rules.yml: `promtool check rules` accepts it, `promtool test rules`
passes its unit tests (dashboards/fusescope.rules.test.yml), and those tests fail when any
rule is broken: each alert's expression replaced by one that never fires and by one that
always fires, each recording rule's by a constant. Every metric the rules and the dashboard
use is one the exporter serves (docs/metrics.md, generated from its family table).
Needs promtool (Debian: prometheus); no root."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from exporthelp import DASHBOARD

RULES = os.environ.get("FUSESCOPE_RULES", os.path.join(os.path.dirname(DASHBOARD), "fusescope.rules.yml"))
RULE_TESTS = os.path.join(os.path.dirname(RULES), "fusescope.rules.test.yml")
METRICS_DOC = os.path.join(os.path.dirname(RULES), "..", "docs", "metrics.md")


def rule_blocks(text):
    """[(kind, name, start, end)] of every rule: kind 'alert' or 'record', and the line range
    [start, end) of its `expr:` (the key line and a block scalar's lines below it)."""
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"\s*- (alert|record): (\S+)\s*$", line)
        if not m:
            continue
        j = i + 1
        while not re.match(r"\s*expr:", lines[j]):
            j += 1
        indent = len(lines[j]) - len(lines[j].lstrip())
        k = j + 1
        if lines[j].rstrip().endswith(("|", ">", "|-", ">-")):
            while k < len(lines) and (not lines[k].strip() or len(lines[k]) - len(lines[k].lstrip()) > indent):
                k += 1
        out.append((m.group(1), m.group(2), j, k))
    return out


def with_expr(text, start, end, expr):
    lines = text.split("\n")
    indent = lines[start][:len(lines[start]) - len(lines[start].lstrip())]
    return "\n".join(lines[:start] + [f"{indent}expr: {expr}"] + lines[end:])


class RulesTest(unittest.TestCase):
    def setUp(self):
        if not shutil.which("promtool"):
            self.skipTest("no promtool (Debian: prometheus)")
        with open(RULES) as f:
            self.text = f.read()

    def promtool_test(self, rules_text):
        """promtool test rules on a copy of the tests with rules_text as the rules file."""
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, os.path.basename(RULES)), "w") as f:
                f.write(rules_text)
            shutil.copy(RULE_TESTS, d)
            return subprocess.run(["promtool", "test", "rules", os.path.basename(RULE_TESTS)], cwd=d,
                                  capture_output=True, text=True, timeout=120)

    def test_check_rules(self):
        r = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        n = len(rule_blocks(self.text))
        self.assertIn(f"SUCCESS: {n} rules found", r.stdout)

    def test_unit_tests_pass(self):
        r = self.promtool_test(self.text)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_every_alert_and_record_is_tested(self):
        with open(RULE_TESTS) as f:
            tests = f.read()
        for kind, name, _, _ in rule_blocks(self.text):
            with self.subTest(rule=name):
                if kind == "alert":
                    self.assertIn(f"alertname: {name}\n", tests)
                else:
                    self.assertIn(f"- expr: {name}\n", tests)

    def test_broken_rules_fail_their_tests(self):
        blocks = rule_blocks(self.text)
        self.assertGreaterEqual(len([b for b in blocks if b[0] == "alert"]), 5)
        for kind, name, start, end in blocks:
            mutations = ["vector(0) == 1", "vector(1)"] if kind == "alert" else ["vector(0.125)"]
            for expr in mutations:
                with self.subTest(rule=name, expr=expr):
                    broken = with_expr(self.text, start, end, expr)
                    self.assertNotEqual(broken, self.text)
                    r = self.promtool_test(broken)
                    self.assertNotEqual(r.returncode, 0, f"tests still pass with {name}: {expr}")
                    if kind == "alert":
                        self.assertIn(f"alertname: {name}", r.stdout + r.stderr)

    def test_metrics_used_exist(self):
        with open(METRICS_DOC) as f:
            served = set(re.findall(r"^\| `((?:fusescope|process)_[a-z0-9_]+)` \|", f.read(), re.M))
        self.assertIn("fusescope_writes_total", served)
        histograms = {n for n in served if n == "fusescope_lock_wait_seconds"}
        with open(DASHBOARD) as f:
            dash = f.read()
        records = {name for kind, name, _, _ in rule_blocks(self.text) if kind == "record"}
        used = set(re.findall(r"\b((?:fusescope|process)_[a-z0-9_]+)", self.text + json.dumps(json.loads(dash))))
        for name in sorted(used):
            base = re.sub(r"_(bucket|sum|count)$", "", name) if re.sub(r"_(bucket|sum|count)$", "", name) in histograms else name
            if any(name in r for r in records):
                continue  # part of a recorded series' name
            with self.subTest(metric=name):
                self.assertIn(base, served, f"{name} is used but the exporter serves no such family")


if __name__ == "__main__":
    unittest.main(verbosity=2)
