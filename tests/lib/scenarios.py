"""The write-path scenario table (tests/scenarios/write-paths.txt), parsed.

One definition of each scenario, read here by the host tests and by
tests/vm/guest-core.sh in the kernel matrix. Standard library only.

    for sc in write_path_scenarios("host"):
        sc.name, sc.testfs_flags, sc.fio_args, sc.jobs, sc.ios
        sc.expected(backend)   # Counter {(lock, reason): count} for jobs * ios writes
"""

import collections
import os

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scenarios",
                     "write-paths.txt")


class Scenario:
    def __init__(self, name, testfs_flags, fio_args, jobs, ios, expect, where):
        self.name = name
        self.testfs_flags = testfs_flags
        self.fio_args = fio_args
        self.jobs = jobs
        self.ios = ios
        self.expect = expect
        self.where = where

    @property
    def writes(self):
        return self.jobs * self.ios

    def expected(self, backend):
        """Counter {(lock, reason): count} that `backend` must see."""
        want = collections.Counter()
        for item in self.expect:
            item, _, only = item.partition("@")
            if only and only != backend:
                continue
            key, count = item.split("=")
            lock, reason = key.split("/")
            want[(lock, reason)] += self.writes if count == "N" else int(count)
        return want


def parse(path=TABLE):
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = [x.strip() for x in line.split("|")]
            if len(fields) != 6:
                raise ValueError(f"{path}:{n}: {len(fields)} fields, want 6: {line}")
            name, flags, fio, counts, expect, where = fields
            jobs, ios = (int(x) for x in counts.split())
            if where not in ("host", "vm", "both"):
                raise ValueError(f"{path}:{n}: where must be host, vm or both: {where}")
            out.append(Scenario(name, flags.split(), fio.split(), jobs, ios, expect.split(),
                                where))
    return out


def write_path_scenarios(place):
    """The scenarios for `place` ("host" or "vm")."""
    return [s for s in parse() if s.where in (place, "both")]
