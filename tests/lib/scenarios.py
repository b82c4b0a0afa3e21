"""The scenario tables of tests/scenarios/, parsed. Standard library only.

One definition of each scenario, read here by the host tests and by
tests/vm/guest-core.sh in the kernel matrix.

    for sc in write_path_scenarios("host"):   # write-paths.txt
        sc.name, sc.testfs_flags, sc.fio_args, sc.jobs, sc.ios
        sc.expected(backend)   # Counter {(lock, reason): count} for jobs * ios writes

    for sc in core_scenarios():                # core.txt
        sc.name, sc.testfs_flags, sc.load_args
        sc.expected(backend)   # Counter {(lock, reason): count}
"""

import collections
import os

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scenarios")
TABLE = os.path.join(HERE, "write-paths.txt")
CORE_TABLE = os.path.join(HERE, "core.txt")


def _rows(path, nfields):
    """(line number, fields) of every row of a '|' table; comments and blank lines skipped."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = [x.strip() for x in line.split("|")]
            if len(fields) != nfields:
                raise ValueError(f"{path}:{n}: {len(fields)} fields, want {nfields}: {line}")
            yield n, fields


def expected_counts(items, backend, n=None):
    """Counter {(lock, reason): count} of lock/reason=count[@BACKEND] items on `backend`;
    a count of N is `n`, an item of another backend is left out (that backend must see
    none of those writes)."""
    want = collections.Counter()
    for item in items:
        item, _, only = item.partition("@")
        if only and only != backend:
            continue
        key, count = item.split("=")
        lock, reason = key.split("/")
        want[(lock, reason)] += n if count == "N" else int(count)
    return want


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
        return expected_counts(self.expect, backend, self.writes)


def parse(path=TABLE):
    out = []
    for n, (name, flags, fio, counts, expect, where) in _rows(path, 6):
        jobs, ios = (int(x) for x in counts.split())
        if where not in ("host", "vm", "both"):
            raise ValueError(f"{path}:{n}: where must be host, vm or both: {where}")
        out.append(Scenario(name, flags.split(), fio.split(), jobs, ios, expect.split(), where))
    return out


def write_path_scenarios(place):
    """The scenarios for `place` ("host" or "vm")."""
    return [s for s in parse() if s.where in (place, "both")]


class CoreScenario:
    def __init__(self, name, testfs_flags, load_args, expect):
        self.name = name
        self.testfs_flags = testfs_flags
        self.load_args = load_args  # fusescope-load SCENARIO OPTIONS..., without --file
        self.expect = expect

    def expected(self, backend):
        """Counter {(lock, reason): count} that `backend` must see."""
        return expected_counts(self.expect, backend)


def core_scenarios(path=CORE_TABLE):
    out = []
    for n, (name, flags, load, expect) in _rows(path, 4):
        # guest-core.sh adds the counts up as they are: plain numbers, every backend
        if not all(item.partition("=")[2].isdigit() for item in expect.split()):
            raise ValueError(f"{path}:{n}: counts are plain numbers here (no N, no @): {expect}")
        if "--file" in load.split():
            raise ValueError(f"{path}:{n}: the runner adds --file: {load}")
        out.append(CoreScenario(name, flags.split(), load.split(), expect.split()))
    if len({s.name for s in out}) != len(out):
        raise ValueError(f"{path}: row names must be unique (they name the results)")
    return out
