#!/usr/bin/python3
"""Real programs from Debian live on fusescope-testfs, in every mode it offers (available_modes:
direct-io, parallel, cached, keep-cache, direct-io-allow-mmap, passthrough, and the io_uring
transport), and what they leave is checked against the backing directory: MariaDB's own install
and a write workload (then the same datadir served by MariaDB straight from the backing
directory), git (clone, commit, gc, fsck, clone back), tar and rsync round trips, sqlite3 with
WAL and mmap. Each test runs every mode as a subTest: one failing mode does not hide another."""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fusemount import MODES, available_modes, shared_mmap_allowed, testfs_mount  # noqa: E402
from realapps import MariaDB, mariadb_available  # noqa: E402
from trees import make_tree, tree_diff  # noqa: E402

NO_SHARED_MMAP = {name for name, opts in MODES.items() if not shared_mmap_allowed(opts)}


def _sqlite_expected():
    """count|sum(k)|sum(length(v)) that test_sqlite_wal_and_mmap's script leaves."""
    rows = {i: (i * 7 % 1000 + (1 if i % 3 == 0 else 0), 100 + i % 300)
            for i in range(1, 20001) if i % 10}
    rows[100000] = (1, 1)
    return (f"{len(rows)}|{sum(k for k, _ in rows.values())}|"
            f"{sum(n for _, n in rows.values())}")


SQLITE_EXPECTED = _sqlite_expected()


def run(argv, cwd=None, env=None, timeout=600):
    p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {p.returncode}:\n{p.stdout[-3000:]}"
                             f"{p.stderr[-3000:]}")
    return p.stdout


@unittest.skipUnless(os.geteuid() == 0, "needs root (mounts FUSE)")
class RealApps(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fusescope-realapps-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def local(self, name):
        """A fresh directory on the local filesystem (not on FUSE)."""
        p = os.path.join(self.tmp, name)
        shutil.rmtree(p, ignore_errors=True)
        return p

    def each_mode(self, check):
        for name, opts in available_modes().items():
            with self.subTest(mode=name), testfs_mount(*opts) as m:
                check(m, name)

    def assert_same(self, a, b, mtimes=True):
        self.maxDiff = None
        diffs = tree_diff(a, b, mtimes=mtimes)
        self.assertEqual(diffs, [], f"{a} vs {b}")

    # ---- MariaDB ------------------------------------------------------------------------

    @unittest.skipUnless(mariadb_available(), "mariadb-server not installed")
    def test_mariadb_install_and_write_workload(self):
        def check(m, mode):
            with MariaDB(m.path("data")) as db:
                self.assertIn(db.aio(), ("io_uring", "libaio"), db.error_log())
                w = db.write_workload(clients=4, transactions=40, rows=20, seed=len(mode))
                db.verify(w)
                db.slap(concurrency=4, queries=200)
                before = db.checksum()
                self.assertEqual(db.stop(), 0, db.error_log()[-3000:])
                self.assertNotIn("[ERROR]", db.error_log())
            # Every byte InnoDB wrote through the mount is in the backing directory...
            self.assert_same(m.path("data"), m.backing_path("data"))
            # ...and MariaDB serving the backing directory itself finds the same database.
            with MariaDB(m.backing_path("data")) as db:
                db.verify(w)
                self.assertEqual(db.checksum(), before)
                self.assertEqual(db.stop(), 0, db.error_log()[-3000:])

        self.each_mode(check)

    @unittest.skipUnless(mariadb_available(), "mariadb-server not installed")
    def test_mariadb_as_its_own_user_without_native_aio(self):
        # mariadbd as the mysql user (files created through FUSE belong to the caller), and
        # InnoDB's simulated AIO: plain pread/pwrite from its own threads.
        with testfs_mount("--direct-io", "--parallel-direct-writes") as m:
            os.chmod(os.path.dirname(m.mountpoint), 0o755)  # mkdtemp's 0700 keeps mysql out
            with MariaDB(m.path("data"), user="mysql", extra=("--innodb-use-native-aio=0",)) as db:
                w = db.write_workload(clients=2, transactions=20, rows=10)
                db.verify(w)
                self.assertEqual(db.stop(), 0)
            st = os.stat(m.backing_path("data", "ibdata1"))
            self.assertEqual(st.st_uid, pwd.getpwnam("mysql").pw_uid)

    # ---- git ----------------------------------------------------------------------------

    def test_git_clone_commit_gc_fsck(self):
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid",
                   GIT_CONFIG_NOSYSTEM="1", HOME=self.tmp)
        src = self.local("src")
        make_tree(os.path.join(src, "tree"), seed=1)
        os.unlink(os.path.join(src, "tree", "a", "fifo"))  # git does not keep FIFOs
        run(["git", "init", "-q", src], env=env)
        for i in range(5):
            with open(os.path.join(src, f"log{i}.txt"), "w") as f:
                f.write(f"commit {i}\n" * (i + 1) * 100)
            run(["git", "add", "-A"], cwd=src, env=env)
            run(["git", "commit", "-q", "-m", f"c{i}"], cwd=src, env=env)

        def check(m, mode):
            repo = m.path("repo")
            run(["git", "clone", "-q", "--no-hardlinks", src, repo], env=env)
            run(["git", "fsck", "--full", "--strict"], cwd=repo, env=env)
            for i in range(3):
                with open(os.path.join(repo, "tree", f"new{i}"), "wb") as f:
                    f.write(os.urandom(10000 * (i + 1)))
                os.rename(os.path.join(repo, f"log{i}.txt"), os.path.join(repo, f"moved{i}.txt"))
                run(["git", "add", "-A"], cwd=repo, env=env)
                run(["git", "commit", "-q", "-m", f"on fuse {i}"], cwd=repo, env=env)
            run(["git", "gc", "-q", "--aggressive", "--prune=now"], cwd=repo, env=env)
            run(["git", "repack", "-q", "-a", "-d", "-f"], cwd=repo, env=env)
            run(["git", "fsck", "--full", "--strict"], cwd=repo, env=env)
            self.assertEqual(run(["git", "status", "--porcelain"], cwd=repo, env=env), "")
            head = run(["git", "rev-parse", "HEAD"], cwd=repo, env=env)
            # The backing directory holds the same repository, and a clone of it is intact.
            self.assert_same(repo, m.backing_path("repo"))
            back = self.local("back")
            run(["git", "clone", "-q", "--no-hardlinks", m.backing_path("repo"), back], env=env)
            run(["git", "fsck", "--full", "--strict"], cwd=back, env=env)
            self.assertEqual(run(["git", "rev-parse", "HEAD"], cwd=back, env=env), head)
            self.assert_same(os.path.join(back, "tree"), os.path.join(repo, "tree"),
                             mtimes=False)

        self.each_mode(check)

    # ---- tar and rsync ------------------------------------------------------------------

    def test_tar_round_trip(self):
        src = make_tree(self.local("src"), seed=2)

        def check(m, mode):
            os.mkdir(m.path("x"))
            tar_out = subprocess.Popen(["tar", "-C", src, "--format=posix", "--sparse", "-cf",
                                        "-", "."], stdout=subprocess.PIPE)
            run_in = subprocess.run(["tar", "-C", m.path("x"), "-xpf", "-"], stdin=tar_out.stdout,
                                    capture_output=True, text=True, timeout=600)
            tar_out.stdout.close()
            self.assertEqual((tar_out.wait(), run_in.returncode), (0, 0), run_in.stderr)
            self.assert_same(src, m.path("x"))
            self.assert_same(src, m.backing_path("x"))
            back = self.local("back")
            os.mkdir(back)
            archive = os.path.join(self.tmp, "x.tar")
            run(["tar", "-C", m.path("x"), "--format=posix", "--sparse", "-cf", archive, "."])
            run(["tar", "-C", back, "-xpf", archive])
            self.assert_same(src, back)
            # tar's own check: the archive matches what is on the mount
            run(["tar", "-C", m.path("x"), "--compare", "-f", archive])

        self.each_mode(check)

    @unittest.skipUnless(shutil.which("rsync"), "rsync not installed")
    def test_rsync_round_trip(self):
        src = make_tree(self.local("src"), seed=3)

        def check(m, mode):
            run(["rsync", "-aH", "--sparse", src + "/", m.path("x") + "/"])
            self.assert_same(src, m.path("x"))
            self.assert_same(src, m.backing_path("x"))
            # A second pass with checksums finds nothing to do.
            self.assertEqual(run(["rsync", "-aHc", "--itemize-changes", "--dry-run",
                                  src + "/", m.path("x") + "/"]), "")
            # Changes in place (rsync's delta transfer rewrites files through the mount).
            with open(os.path.join(src, "a", "b", "f1-1"), "ab") as f:
                f.write(b"more")
            run(["rsync", "-aH", "--inplace", src + "/", m.path("x") + "/"])
            back = self.local("back")
            run(["rsync", "-aH", "--sparse", m.path("x") + "/", back + "/"])
            self.assert_same(src, back)

        self.each_mode(check)

    # ---- sqlite3 ------------------------------------------------------------------------

    @unittest.skipUnless(shutil.which("sqlite3"), "sqlite3 not installed")
    def test_sqlite_wal_and_mmap(self):
        script = """
            PRAGMA journal_mode=WAL;
            PRAGMA mmap_size=268435456;
            CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v BLOB);
            CREATE INDEX tk ON t(k);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 20000)
              INSERT INTO t SELECT i, i * 7 % 1000, randomblob(100 + i % 300) FROM n;
            UPDATE t SET k = k + 1 WHERE id % 3 = 0;
            DELETE FROM t WHERE id % 10 = 0;
            PRAGMA wal_checkpoint(TRUNCATE);
            INSERT INTO t VALUES (100000, 1, x'00');
            SELECT count(*), sum(k), sum(length(v)) FROM t;
            PRAGMA integrity_check;
        """

        def check(m, mode):
            db = m.path("s.db")
            p = subprocess.run(["sqlite3", db], input=script, capture_output=True, text=True,
                               timeout=300)
            if mode in NO_SHARED_MMAP:
                # WAL's index is a shared map of s.db-shm: the kernel refuses it (ENODEV) on
                # FOPEN_DIRECT_IO files without FUSE_DIRECT_IO_ALLOW_MMAP, and sqlite says so.
                self.assertNotEqual(p.returncode, 0, p.stdout)
                self.assertIn("disk I/O error", p.stderr)
                # Without shared memory (exclusive locking) WAL works there too.
                p = subprocess.run(["sqlite3", db], input="PRAGMA locking_mode=EXCLUSIVE;\n" +
                                   script.replace("CREATE TABLE t", "DROP TABLE IF EXISTS t;"
                                                  " CREATE TABLE t"),
                                   capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout.split()[-2:], [SQLITE_EXPECTED, "ok"])
            # The backing copy, opened by sqlite3 itself, holds the same rows and is intact.
            for where in (db, m.backing_path("s.db")):
                exclusive = "PRAGMA locking_mode=EXCLUSIVE; " if (
                    where == db and mode in NO_SHARED_MMAP) else ""
                out = run(["sqlite3", where, exclusive + "SELECT count(*), sum(k), "
                           "sum(length(v)) FROM t; PRAGMA integrity_check;"])
                out = out.replace("exclusive", "")
                self.assertEqual(out.split(), [SQLITE_EXPECTED, "ok"], where)

        self.each_mode(check)


if __name__ == "__main__":
    unittest.main(verbosity=2)
