#!/usr/bin/python3
"""The randomized exerciser (tests/lib/exerciser.py) in every mode of fusescope-testfs: every
read, size, link count, listing and errno matches a model of POSIX semantics, through the mount
and in the backing directory. Seeds are fixed so CI is reproducible; a failure names its seed.
FUSESCOPE_EXERCISER_SEEDS=1,2,3 (and FUSESCOPE_EXERCISER_OPS=N) run other seeds."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from exerciser import exercise  # noqa: E402
from fusemount import available_modes, shared_mmap_allowed, testfs_mount  # noqa: E402

SEEDS = [int(s) for s in os.environ.get("FUSESCOPE_EXERCISER_SEEDS", "1,2").split(",")]
OPS = int(os.environ.get("FUSESCOPE_EXERCISER_OPS", "1500"))


@unittest.skipUnless(os.geteuid() == 0, "needs root (mounts FUSE)")
class Exerciser(unittest.TestCase):
    def test_every_mode_matches_the_model(self):
        for name, opts in available_modes().items():
            for seed in SEEDS:
                with self.subTest(mode=name, seed=seed), testfs_mount(*opts) as m:
                    exercise(m.mountpoint, seed, ops=OPS, shared_mmap=shared_mmap_allowed(opts),
                             backing=m.backing)

    def test_the_model_holds_on_the_backing_filesystem(self):
        # The model itself is checked against the local filesystem, same seeds.
        for seed in SEEDS:
            with self.subTest(seed=seed), tempfile.TemporaryDirectory() as d:
                exercise(d, seed, ops=OPS)


if __name__ == "__main__":
    unittest.main(verbosity=2)
