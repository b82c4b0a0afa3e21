"""A randomized file-operation exerciser with a model. Standard library only.

    exercise(root, seed, ops=2000, shared_mmap=True, backing=None)

runs `ops` random operations on files in `root` (a directory it owns, e.g. a FUSE mount) and
checks every result against an in-memory model of what a POSIX filesystem must do: every read's
bytes, every size, link count, symlink target, directory listing, and every errno (an operation
the model says must fail must fail with that errno; one it says must succeed must succeed).
Operations: open with flag combinations (O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NOFOLLOW,
O_SYNC, O_DSYNC, O_NOATIME), read/write/pread/pwrite (O_APPEND included), ftruncate and
truncate, fallocate (allocate, keep size, punch hole, zero range), rename and renameat2
(NOREPLACE, EXCHANGE), link, unlink, symlink, readlink, shared-mmap writes (with
shared_mmap=False the model expects ENODEV, as for FOPEN_DIRECT_IO without
FUSE_DIRECT_IO_ALLOW_MMAP), O_DIRECT reads and writes with aligned buffers, fsync/fdatasync.
Every 100 operations and at the end the whole tree is compared with the model, through `root`
and, if given, through `backing` (the directory the filesystem serves).

Same seed, same operations: a failure raises ExerciserError whose message starts with the seed
and the operation number, and lists the last operations, so it can be replayed.
"""

import collections
import ctypes
import errno
import mmap
import os
import random
import stat

__all__ = ["exercise", "ExerciserError"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_uint]
AT_FDCWD = -100
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x01, 0x02, 0x10
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
BLOCK = 4096
NAMES = [f"f{i}" for i in range(8)]
MAX_SIZE = 256 * 1024


class ExerciserError(AssertionError):
    pass


def _fallocate(fd, mode, off, length):
    if _libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _renameat2(a, b, flags):
    if _libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class _Inode:
    def __init__(self):
        self.data = bytearray()
        self.nlink = 1


class _Fd:
    def __init__(self, fd, inode, readable, writable, append):
        self.fd, self.inode = fd, inode
        self.readable, self.writable, self.append = readable, writable, append
        self.pos = 0


class _Exerciser:
    def __init__(self, root, seed, shared_mmap, backing):
        self.root, self.seed, self.shared_mmap, self.backing = root, seed, shared_mmap, backing
        self.rnd = random.Random(seed)
        self.files = {}     # name -> _Inode
        self.links = {}     # name -> symlink target (a name in the same directory)
        self.fds = []
        self.log = collections.deque(maxlen=25)
        self.n = 0

    # ---- helpers ------------------------------------------------------------------------

    def path(self, name):
        return os.path.join(self.root, name)

    def fail(self, what):
        raise ExerciserError(f"seed={self.seed} op #{self.n}: {what}\nlast operations:\n  " +
                             "\n  ".join(self.log))

    def expect(self, what, want_errno, fn):
        """Runs fn(); want_errno None means it must succeed. Returns fn's result or None."""
        self.log.append(what + (f" (expect {errno.errorcode[want_errno]})" if want_errno else ""))
        try:
            r = fn()
        except OSError as e:
            if e.errno != want_errno:
                self.fail(f"{what}: got {errno.errorcode.get(e.errno, e.errno)}, want "
                          f"{errno.errorcode[want_errno] if want_errno else 'success'}")
            return None
        if want_errno:
            self.fail(f"{what}: succeeded, want {errno.errorcode[want_errno]}")
        return r

    def resolve(self, name):
        """The name `name` designates after following symlinks, or None for a loop (ELOOP:
        Linux gives up after 40 links)."""
        for _ in range(41):
            if name not in self.links:
                return name
            name = self.links[name]
        return None

    def data(self, n):
        return self.rnd.randbytes(n)

    def offset(self, inode, extra=8192):
        return self.rnd.randrange(0, min(len(inode.data) + extra, MAX_SIZE))

    @staticmethod
    def write_at(inode, off, buf):
        if off > len(inode.data):
            inode.data.extend(bytes(off - len(inode.data)))
        inode.data[off:off + len(buf)] = buf

    def check_read(self, what, got, want):
        if bytes(got) != bytes(want):
            self.fail(f"{what}: read {len(got)} bytes that differ from the model's {len(want)}")

    # ---- operations ---------------------------------------------------------------------

    def op_open(self):
        name = self.rnd.choice(NAMES)
        acc = self.rnd.choice((os.O_RDONLY, os.O_WRONLY, os.O_RDWR))
        flags = acc
        for f, p in ((os.O_CREAT, 0.6), (os.O_EXCL, 0.15), (os.O_APPEND, 0.2),
                     (os.O_NOFOLLOW, 0.2), (os.O_SYNC, 0.05), (os.O_DSYNC, 0.05),
                     (os.O_NOATIME, 0.05)):
            if self.rnd.random() < p:
                flags |= f
        if acc != os.O_RDONLY and self.rnd.random() < 0.15:
            flags |= os.O_TRUNC
        target = self.resolve(name)
        is_link = name in self.links
        want = None
        if flags & os.O_CREAT and flags & os.O_EXCL and (is_link or name in self.files):
            want = errno.EEXIST
        elif is_link and flags & os.O_NOFOLLOW or target is None:
            want = errno.ELOOP
        elif target not in self.files and not flags & os.O_CREAT:
            want = errno.ENOENT
        fd = self.expect(f"open {name} {flags:#o}", want,
                         lambda: os.open(self.path(name), flags, 0o644))
        if fd is None:
            return
        inode = self.files.setdefault(target, _Inode())
        if flags & os.O_TRUNC:
            inode.data.clear()
        self.fds.append(_Fd(fd, inode, acc != os.O_WRONLY, acc != os.O_RDONLY,
                            bool(flags & os.O_APPEND)))

    def pick_fd(self, writable=None, readable=None):
        c = [f for f in self.fds if (writable is None or f.writable == writable) and
             (readable is None or f.readable == readable)]
        return self.rnd.choice(c) if c else None

    def op_close(self):
        if self.fds:
            f = self.fds.pop(self.rnd.randrange(len(self.fds)))
            self.expect(f"close fd {f.fd}", None, lambda: os.close(f.fd))

    def op_pwrite(self):
        f = self.pick_fd()
        if not f:
            return
        off, buf = self.offset(f.inode), self.data(self.rnd.randrange(1, 20000))
        r = self.expect(f"pwrite fd {f.fd} {len(buf)}@{off}", None if f.writable else errno.EBADF,
                        lambda: os.pwrite(f.fd, buf, off))
        if r is not None:
            if r != len(buf):
                self.fail(f"pwrite wrote {r} of {len(buf)}")
            # Linux: pwrite on an O_APPEND file appends, whatever the offset.
            self.write_at(f.inode, len(f.inode.data) if f.append else off, buf)

    def op_write(self):
        f = self.pick_fd()
        if not f:
            return
        buf = self.data(self.rnd.randrange(1, 9000))
        r = self.expect(f"write fd {f.fd} {len(buf)} at pos {f.pos}",
                        None if f.writable else errno.EBADF, lambda: os.write(f.fd, buf))
        if r is not None:
            if r != len(buf):
                self.fail(f"write wrote {r} of {len(buf)}")
            if f.append:
                f.pos = len(f.inode.data)
            self.write_at(f.inode, f.pos, buf)
            f.pos += len(buf)

    def op_pread(self):
        f = self.pick_fd()
        if not f:
            return
        off, n = self.offset(f.inode), self.rnd.randrange(1, 30000)
        r = self.expect(f"pread fd {f.fd} {n}@{off}", None if f.readable else errno.EBADF,
                        lambda: os.pread(f.fd, n, off))
        if r is not None:
            self.check_read(f"pread fd {f.fd} {n}@{off}", r, f.inode.data[off:off + n])

    def op_read(self):
        f = self.pick_fd()
        if not f:
            return
        n = self.rnd.randrange(1, 9000)
        r = self.expect(f"read fd {f.fd} {n} at pos {f.pos}", None if f.readable else errno.EBADF,
                        lambda: os.read(f.fd, n))
        if r is not None:
            self.check_read("read", r, f.inode.data[f.pos:f.pos + n])
            f.pos += len(r)

    def op_ftruncate(self):
        f = self.pick_fd()
        if not f:
            return
        size = self.rnd.randrange(0, MAX_SIZE)
        want = None if f.writable else errno.EINVAL  # ftruncate on a read-only fd: EINVAL
        if self.expect(f"ftruncate fd {f.fd} {size}", want,
                       lambda: os.ftruncate(f.fd, size)) is None and want is None:
            self.resize(f.inode, size)

    @staticmethod
    def resize(inode, size):
        if size < len(inode.data):
            del inode.data[size:]
        else:
            inode.data.extend(bytes(size - len(inode.data)))

    def op_truncate(self):
        name = self.rnd.choice(NAMES)
        size = self.rnd.randrange(0, MAX_SIZE)
        target = self.resolve(name)
        want = errno.ELOOP if target is None else None if target in self.files else errno.ENOENT
        self.expect(f"truncate {name} {size}", want, lambda: os.truncate(self.path(name), size))
        if want is None:
            self.resize(self.files[target], size)

    def op_fallocate(self):
        f = self.pick_fd()
        if not f:
            return
        mode = self.rnd.choice((0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE))
        off, length = self.offset(f.inode), self.rnd.randrange(1, 40000)
        what = f"fallocate fd {f.fd} mode {mode:#x} {length}@{off}"
        self.log.append(what)
        try:
            _fallocate(f.fd, mode, off, length)
        except OSError as e:
            if not f.writable and e.errno == errno.EBADF:
                return
            # A mode a filesystem does not implement is refused with EOPNOTSUPP, never a lie.
            if mode and e.errno == errno.EOPNOTSUPP:
                return
            self.fail(f"{what}: {errno.errorcode.get(e.errno, e.errno)}")
        if not f.writable:
            self.fail(f"{what}: succeeded on a read-only fd, want EBADF")
        d = f.inode.data
        end = off + length
        if mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            zero_end = min(end, len(d)) if mode & FALLOC_FL_KEEP_SIZE else end
            if zero_end > off:
                self.write_at(f.inode, off, bytes(zero_end - off))
        if not mode & FALLOC_FL_KEEP_SIZE and end > len(d):
            d.extend(bytes(end - len(d)))

    def op_rename(self):
        a, b = self.rnd.choice(NAMES), self.rnd.choice(NAMES)
        flags = self.rnd.choice((0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE))
        exists = lambda n: n in self.files or n in self.links  # noqa: E731
        want = None
        if not exists(a) or (flags == RENAME_EXCHANGE and not exists(b)):
            want = errno.ENOENT
        elif flags == RENAME_NOREPLACE and exists(b):
            want = errno.EEXIST
        self.expect(f"rename {a} {b} flags {flags}", want,
                    lambda: _renameat2(self.path(a), self.path(b), flags))
        if want or a == b:
            return
        ea = (self.files.pop(a, None), self.links.pop(a, None))
        eb = (self.files.pop(b, None), self.links.pop(b, None))
        if flags == RENAME_EXCHANGE:
            self.put(a, eb)
        elif eb[0] is not None and eb[0] is not ea[0]:
            eb[0].nlink -= 1
        elif eb[0] is ea[0] and ea[0] is not None:
            # rename of a hard link onto another link of the same inode does nothing
            self.put(b, eb)
            self.put(a, ea)
            return
        self.put(b, ea)

    def put(self, name, entry):
        if entry[0] is not None:
            self.files[name] = entry[0]
        if entry[1] is not None:
            self.links[name] = entry[1]

    def op_link(self):
        a, b = self.rnd.choice(NAMES), self.rnd.choice(NAMES)
        if a in self.links:
            return  # hard links of symlinks would need symlink identity in the model
        want = None
        if a not in self.files and a not in self.links:
            want = errno.ENOENT
        elif b in self.files or b in self.links:
            want = errno.EEXIST
        self.expect(f"link {a} {b}", want, lambda: os.link(self.path(a), self.path(b)))
        if want is None:
            self.files[b] = self.files[a]
            self.files[a].nlink += 1

    def op_unlink(self):
        a = self.rnd.choice(NAMES)
        want = None if a in self.files or a in self.links else errno.ENOENT
        self.expect(f"unlink {a}", want, lambda: os.unlink(self.path(a)))
        if want is None:
            if a in self.links:
                del self.links[a]
            else:
                self.files.pop(a).nlink -= 1

    def op_symlink(self):
        target, b = self.rnd.choice(NAMES), self.rnd.choice(NAMES)
        want = errno.EEXIST if b in self.files or b in self.links else None
        self.expect(f"symlink {target} {b}", want, lambda: os.symlink(target, self.path(b)))
        if want is None:
            self.links[b] = target

    def op_mmap_write(self):
        name = self.rnd.choice([n for n in self.files] or [None])
        if name is None or not self.files[name].data:
            return
        inode = self.files[name]
        fd = os.open(self.path(name), os.O_RDWR | os.O_NOFOLLOW)
        try:
            size = len(inode.data)
            self.log.append(f"mmap {name} shared {size}")
            try:
                mm = mmap.mmap(fd, size, mmap.MAP_SHARED)
            except OSError as e:
                if not self.shared_mmap and e.errno == errno.ENODEV:
                    return
                self.fail(f"mmap {name} MAP_SHARED: {errno.errorcode.get(e.errno, e.errno)}")
            if not self.shared_mmap:
                mm.close()
                self.fail(f"mmap {name} MAP_SHARED succeeded, want ENODEV")
            with mm:
                off = self.rnd.randrange(size)
                buf = self.data(min(self.rnd.randrange(1, 20000), size - off))
                self.log.append(f"mmap write {len(buf)}@{off}")
                mm[off:off + len(buf)] = buf
                inode.data[off:off + len(buf)] = buf
                self.check_read("read back through the map", mm[:], inode.data)
                mm.flush()  # msync(MS_SYNC): what a correct program does before it relies on it
        finally:
            os.close(fd)

    def op_direct(self):
        name = self.rnd.choice([n for n in self.files] or [None])
        if name is None:
            return
        inode = self.files[name]
        fd = os.open(self.path(name), os.O_RDWR | os.O_DIRECT | os.O_NOFOLLOW)
        buf = mmap.mmap(-1, 4 * BLOCK)  # page-aligned, as O_DIRECT wants
        try:
            off = self.rnd.randrange(0, MAX_SIZE // BLOCK) * BLOCK
            nblk = self.rnd.randrange(1, 5)
            if self.rnd.random() < 0.5:
                data = self.data(nblk * BLOCK)
                buf[:len(data)] = data
                what = f"O_DIRECT pwrite {name} {len(data)}@{off}"
                r = self.expect(what, None, lambda: os.pwritev(fd, [memoryview(buf)[:len(data)]],
                                                              off))
                if r != len(data):
                    self.fail(f"{what}: wrote {r}")
                self.write_at(inode, off, data)
            else:
                what = f"O_DIRECT pread {name} {nblk * BLOCK}@{off}"
                r = self.expect(what, None, lambda: os.preadv(fd, [memoryview(buf)[:nblk * BLOCK]],
                                                             off))
                self.check_read(what, buf[:r], inode.data[off:off + nblk * BLOCK])
        finally:
            buf.close()
            os.close(fd)

    def op_sync(self):
        f = self.pick_fd()
        if f:
            fn = self.rnd.choice((os.fsync, os.fdatasync))
            self.expect(f"{fn.__name__} fd {f.fd}", None, lambda: fn(f.fd))

    def op_stat(self):
        name = self.rnd.choice(NAMES)
        if name in self.links:
            got = self.expect(f"readlink {name}", None, lambda: os.readlink(self.path(name)))
            if got != self.links[name]:
                self.fail(f"readlink {name}: {got!r}, want {self.links[name]!r}")
            return
        want = None if name in self.files else errno.ENOENT
        st = self.expect(f"lstat {name}", want, lambda: os.lstat(self.path(name)))
        if st is not None:
            inode = self.files[name]
            if (st.st_size, st.st_nlink) != (len(inode.data), inode.nlink):
                self.fail(f"lstat {name}: size {st.st_size} nlink {st.st_nlink}, want "
                          f"{len(inode.data)} and {inode.nlink}")

    # ---- whole-tree check ---------------------------------------------------------------

    def check_tree(self, root, where):
        names = set(os.listdir(root))
        want = set(self.files) | set(self.links)
        if names != want:
            self.fail(f"{where}: entries {sorted(names)}, want {sorted(want)}")
        for name, target in self.links.items():
            if os.readlink(os.path.join(root, name)) != target:
                self.fail(f"{where}: symlink {name} does not point to {target}")
        for name, inode in self.files.items():
            p = os.path.join(root, name)
            st = os.lstat(p)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != inode.nlink:
                self.fail(f"{where}: {name} mode {oct(st.st_mode)} nlink {st.st_nlink}, want a "
                          f"file with {inode.nlink} links")
            with open(p, "rb") as f:
                self.check_read(f"{where}: whole {name}", f.read(), inode.data)

    def run(self, ops):
        table = [(self.op_open, 10), (self.op_close, 6), (self.op_pwrite, 12), (self.op_write, 6),
                 (self.op_pread, 12), (self.op_read, 5), (self.op_ftruncate, 3),
                 (self.op_truncate, 2), (self.op_fallocate, 4), (self.op_rename, 4),
                 (self.op_link, 3), (self.op_unlink, 3), (self.op_symlink, 2),
                 (self.op_mmap_write, 3), (self.op_direct, 5), (self.op_sync, 2),
                 (self.op_stat, 6)]
        fns, weights = zip(*table)
        try:
            for self.n in range(1, ops + 1):
                fn = self.rnd.choices(fns, weights)[0] if len(self.fds) < 16 else self.op_close
                fn()
                if self.n % 100 == 0:
                    self.check_all()
            self.check_all()
        finally:
            for f in self.fds:
                os.close(f.fd)

    def check_all(self):
        self.check_tree(self.root, "mount")
        if self.backing:
            self.check_tree(self.backing, "backing directory")


def exercise(root, seed, ops=2000, shared_mmap=True, backing=None):
    _Exerciser(root, seed, shared_mmap, backing).run(ops)
