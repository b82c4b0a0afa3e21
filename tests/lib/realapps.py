"""Real programs from Debian running on a directory, for tests. Standard library only.

MariaDB (Debian 12's mariadb-server 10.11: mariadb-install-db, mariadbd; mariadb-client:
mariadb, mariadb-admin, mariadb-slap). InnoDB runs as shipped: innodb_flush_method=O_DIRECT
(data files opened O_DIRECT), native AIO on (io_uring when the kernel lets it, libaio otherwise;
mariadbd says which in its error log, `db.aio()`), redo log written buffered.

    with MariaDB(datadir, user="root", extra=()) as db:
        # mariadb-install-db on datadir if it holds no database yet, then mariadbd on it.
        # Own socket in a private temp dir, no TCP at all (--skip-networking): nothing collides
        # with another server or test. user "root" runs it as root; any other name (e.g.
        # "mysql") is the dedicated user it switches to (datadir is chowned to it).
        # extra: more mariadbd options, e.g. ("--innodb-use-native-aio=0",).
        db.datadir, db.socket, db.pid      # pid of mariadbd
        db.sql("select 1")  -> str          # one client session (mariadb -N -B), its stdout
        db.rows("select ...") -> [tuple]    # tab-separated rows as tuples of str
        db.aio() -> "io_uring"|"libaio"|"simulated"|None   # what InnoDB said it uses
        db.error_log() -> str               # mariadbd's error log so far
        w = db.write_workload(clients=4, transactions=50, rows=20, seed=0)
            # `clients` concurrent client sessions, each its own transactions of inserts, then
            # updates and deletes of its own rows, into table fsw.t (created if missing):
            # deterministic final content; w.expected is {"count", "sum_k", "sum_len"}.
        db.verify(w)                        # AssertionError unless the table holds exactly
                                            # w.expected and CHECK TABLE says OK
        db.checksum() -> str                # CHECKSUM TABLE fsw.t
        db.slap(concurrency=4, queries=400) # mariadb-slap's own generated write load
        db.stop() -> int                    # clean shutdown (mariadb-admin shutdown), status
    Leaving the block stops the server if it still runs: mariadb-admin shutdown, then SIGTERM,
    then SIGKILL, and waits for it; the socket dir is removed. Nothing is left running, whatever
    the test did. MariaDBError is raised when install or start fails (with the error log).

    mariadb_available() -> bool             # the binaries are installed
"""

import os
import pwd
import random
import shutil
import signal
import subprocess
import tempfile
import time

__all__ = ["MariaDB", "MariaDBError", "Workload", "mariadb_available"]

_BINARIES = ("mariadb-install-db", "mariadbd", "mariadb", "mariadb-admin")
# Small enough that install and start take a second or two on a test machine.
_INNODB_OPTIONS = ("--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M")
_TABLE = "fsw.t"


class MariaDBError(RuntimeError):
    pass


def mariadb_available():
    return all(shutil.which(b) or os.path.exists(f"/usr/sbin/{b}") for b in _BINARIES)


def _binary(name):
    return shutil.which(name) or f"/usr/sbin/{name}"


class Workload:
    """What write_workload did: the SQL each client ran and the table content it leaves."""

    def __init__(self, clients, expected):
        self.clients = clients
        self.expected = expected


def _workload_sql(clients, transactions, rows, seed):
    """Per client, SQL text; and the final table content as a dict id -> (k, v)."""
    rnd = random.Random(seed)
    table = {}
    scripts = []
    for c in range(clients):
        out = []
        ids = []
        for tx in range(transactions):
            values = []
            for i in range(rows):
                rid = c * 1_000_000 + tx * rows + i
                k = rnd.randrange(1000)
                v = chr(65 + rnd.randrange(26)) * rnd.randrange(1, 200)
                table[rid] = (k, v)
                ids.append(rid)
                values.append(f"({rid},{k},'{v}')")
            out.append(f"begin; insert into {_TABLE} values {','.join(values)}; commit;")
        # Then rewrite a third of its rows and delete a tenth, in transactions of its own.
        for rid in rnd.sample(ids, len(ids) // 3):
            k = rnd.randrange(1000)
            table[rid] = (k, table[rid][1])
            out.append(f"begin; update {_TABLE} set k={k} where id={rid}; commit;")
        for rid in rnd.sample(ids, len(ids) // 10):
            del table[rid]
            out.append(f"delete from {_TABLE} where id={rid};")
        scripts.append("\n".join(out) + "\n")
    return scripts, table


class MariaDB:
    def __init__(self, datadir, user="root", extra=(), start_timeout=60):
        if not mariadb_available():
            raise MariaDBError("MariaDB is not installed (Debian: mariadb-server mariadb-client;"
                               " scripts/setup-deps.sh installs them)")
        self.datadir = os.path.abspath(datadir)
        self.user = user
        self.extra = tuple(extra)
        self.proc = None
        self.pid = None
        self._rundir = tempfile.mkdtemp(prefix="fusescope-mariadb-")
        self.socket = os.path.join(self._rundir, "mysqld.sock")
        self._log = os.path.join(self._rundir, "error.log")
        try:
            self._prepare_dirs()
            if not os.path.isdir(os.path.join(self.datadir, "mysql")):
                self._install()
            self._start(start_timeout)
        except BaseException:
            self._cleanup()
            raise

    # ---- setup ---------------------------------------------------------------------------

    def _prepare_dirs(self):
        os.makedirs(self.datadir, exist_ok=True)
        if self.user != "root":
            pw = pwd.getpwnam(self.user)
            for d in (self._rundir, self.datadir):
                os.chown(d, pw.pw_uid, pw.pw_gid)
            for root, dirs, files in os.walk(self.datadir):
                for n in dirs + files:
                    os.lchown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)

    def _common_options(self):
        return ["--no-defaults", f"--datadir={self.datadir}", f"--user={self.user}",
                *_INNODB_OPTIONS]

    def _install(self):
        p = subprocess.run([_binary("mariadb-install-db"), *self._common_options(),
                            "--auth-root-authentication-method=normal", "--skip-test-db",
                            *self.extra],
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise MariaDBError(f"mariadb-install-db on {self.datadir} exited {p.returncode}:\n"
                               f"{p.stdout[-4000:]}{p.stderr[-4000:]}")

    def _start(self, timeout):
        self.proc = subprocess.Popen(
            [_binary("mariadbd"), *self._common_options(), f"--socket={self.socket}",
             f"--pid-file={os.path.join(self._rundir, 'mysqld.pid')}", "--skip-networking",
             f"--log-error={self._log}", "--innodb-flush-method=O_DIRECT", *self.extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise MariaDBError(f"mariadbd exited {self.proc.returncode} on start:\n"
                                   f"{self.error_log()[-4000:]}")
            if os.path.exists(self.socket) and self._ping():
                return
            time.sleep(0.1)
        raise MariaDBError(f"mariadbd not ready after {timeout}s:\n{self.error_log()[-4000:]}")

    def _ping(self):
        return subprocess.run([_binary("mariadb-admin"), f"--socket={self.socket}", "-uroot",
                               "ping"], capture_output=True, timeout=30).returncode == 0

    # ---- use -----------------------------------------------------------------------------

    def sql(self, statements, timeout=300):
        p = subprocess.run([_binary("mariadb"), f"--socket={self.socket}", "-uroot", "-N", "-B"],
                           input=statements, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"mariadb client exited {p.returncode}: {p.stderr.strip()}\n"
                                 f"server log tail:\n{self.error_log()[-2000:]}")
        return p.stdout

    def rows(self, query):
        return [tuple(line.split("\t")) for line in self.sql(query).splitlines()]

    def error_log(self):
        try:
            with open(self._log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def aio(self):
        log = self.error_log()
        for needle, name in (("Using io_uring", "io_uring"), ("Using Linux native AIO", "libaio"),
                             ("simulated", "simulated")):
            if needle in log:
                return name
        return None

    def write_workload(self, clients=4, transactions=50, rows=20, seed=0):
        self.sql("create database if not exists fsw; create table if not exists "
                 f"{_TABLE} (id int primary key, k int not null, v varchar(255) not null, "
                 "key(k)) engine=innodb;")
        scripts, table = _workload_sql(clients, transactions, rows, seed)
        procs = []
        for script in scripts:  # each client reads its script from a file: all start at once
            with tempfile.TemporaryFile("w+") as f:
                f.write(script)
                f.seek(0)
                procs.append(subprocess.Popen(
                    [_binary("mariadb"), f"--socket={self.socket}", "-uroot"], stdin=f,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        errors = []
        for p in procs:
            _, err = p.communicate(timeout=600)
            if p.returncode != 0:
                errors.append(err.strip())
        if errors:
            raise AssertionError(f"workload clients failed: {errors}\n"
                                 f"server log tail:\n{self.error_log()[-2000:]}")
        expected = {"count": len(table), "sum_k": sum(k for k, _ in table.values()),
                    "sum_len": sum(len(v) for _, v in table.values())}
        return Workload(clients, expected)

    def verify(self, workload):
        (count, sum_k, sum_len), = self.rows(
            f"select count(*), coalesce(sum(k),0), coalesce(sum(length(v)),0) from {_TABLE}")
        got = {"count": int(count), "sum_k": int(sum_k), "sum_len": int(sum_len)}
        if got != workload.expected:
            raise AssertionError(f"{_TABLE} holds {got}, the workload left {workload.expected}")
        check = self.rows(f"check table {_TABLE} extended")
        if not check or check[-1][-1] != "OK":
            raise AssertionError(f"CHECK TABLE {_TABLE}: {check}")

    def checksum(self):
        return self.rows(f"checksum table {_TABLE} extended")[0][1]

    def slap(self, concurrency=4, queries=400):
        p = subprocess.run([_binary("mariadb-slap"), f"--socket={self.socket}", "-uroot",
                            f"--concurrency={concurrency}", f"--number-of-queries={queries}",
                            "--auto-generate-sql", "--auto-generate-sql-load-type=write",
                            "--auto-generate-sql-add-autoincrement", "--engine=innodb",
                            "--create-schema=fsw_slap"],
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise AssertionError(f"mariadb-slap exited {p.returncode}: {p.stderr.strip()}\n"
                                 f"server log tail:\n{self.error_log()[-2000:]}")
        return p.stdout

    # ---- stop ----------------------------------------------------------------------------

    def stop(self, timeout=120):
        """Clean shutdown; returns mariadbd's exit status (0 when clean)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        subprocess.run([_binary("mariadb-admin"), f"--socket={self.socket}", "-uroot",
                        "shutdown"], capture_output=True, timeout=timeout)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self._kill()

    def _kill(self):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                continue
        if self.proc.poll() is None:
            self.proc.wait()
        return self.proc.returncode

    def _cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop(timeout=60)
            finally:
                if self.proc.poll() is None:
                    self._kill()
        shutil.rmtree(self._rundir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._cleanup()
        return False
