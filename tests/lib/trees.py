"""Directory trees for round-trip tests: build one with every kind of entry, and compare two.
Standard library only.

    make_tree(root, seed=0)          # files of awkward sizes (0, 1, page-1, page, >1 MiB),
                                     # a sparse file, modes, fixed mtimes (with nanoseconds),
                                     # nested dirs, symlinks (relative, dangling), hard links,
                                     # a FIFO
    tree_diff(a, b, mtimes=True) -> [str]   # differences, empty when the trees are the same:
                                     # entry type, permission bits, size, content, symlink
                                     # target, hard-link groups, mtime of files and symlinks
"""

import os
import random
import stat

__all__ = ["make_tree", "tree_diff"]

_SIZES = (0, 1, 511, 4095, 4096, 4097, 65536 + 7, (1 << 20) + 3)


def make_tree(root, seed=0):
    rnd = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    mtime = 1_600_000_000_123_456_789
    for d in ("a", "a/b", "a/b/c", "empty", "with space", "ünïcødé"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    files = []
    for i, size in enumerate(_SIZES):
        p = os.path.join(root, ("a", "a/b", "a/b/c", "with space")[i % 4], f"f{i}-{size}")
        with open(p, "wb") as f:
            f.write(rnd.randbytes(size))
        files.append(p)
    sparse = os.path.join(root, "a", "sparse")
    with open(sparse, "wb") as f:
        f.truncate(8 << 20)
        f.seek(5 << 20)
        f.write(rnd.randbytes(10000))
    files.append(sparse)
    for p, mode in zip(files, (0o600, 0o644, 0o755, 0o444, 0o640, 0o700, 0o664, 0o604, 0o644)):
        os.chmod(p, mode)
    os.link(files[2], os.path.join(root, "a", "b", "hardlink"))
    os.link(files[2], os.path.join(root, "ünïcødé", "hardlink2"))
    os.symlink("b/c", os.path.join(root, "a", "to-c"))
    os.symlink(os.path.relpath(files[5], os.path.join(root, "a")), os.path.join(root, "a", "to-f"))
    os.symlink("does/not/exist", os.path.join(root, "dangling"))
    os.mkfifo(os.path.join(root, "a", "fifo"), 0o640)
    # Fixed times last (making entries changes the parents' mtimes), deepest first.
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            mtime += 1_000_001
            os.utime(os.path.join(dirpath, n), ns=(mtime, mtime), follow_symlinks=False)
    return root


def _walk(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = os.lstat(p)
    return out


def _content(path):
    with open(path, "rb") as f:
        return f.read()


def tree_diff(a, b, mtimes=True):
    ea, eb = _walk(a), _walk(b)
    diffs = [f"only in {a}: {n}" for n in sorted(set(ea) - set(eb))]
    diffs += [f"only in {b}: {n}" for n in sorted(set(eb) - set(ea))]
    links_a, links_b = {}, {}
    for n in sorted(set(ea) & set(eb)):
        sa, sb = ea[n], eb[n]
        if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
            diffs.append(f"{n}: type {stat.filemode(sa.st_mode)} vs {stat.filemode(sb.st_mode)}")
            continue
        if not stat.S_ISLNK(sa.st_mode) and stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
            diffs.append(f"{n}: mode {oct(sa.st_mode)} vs {oct(sb.st_mode)}")
        if stat.S_ISLNK(sa.st_mode):
            ta, tb = os.readlink(os.path.join(a, n)), os.readlink(os.path.join(b, n))
            if ta != tb:
                diffs.append(f"{n}: symlink to {ta!r} vs {tb!r}")
        if stat.S_ISREG(sa.st_mode):
            if sa.st_size != sb.st_size:
                diffs.append(f"{n}: size {sa.st_size} vs {sb.st_size}")
            elif _content(os.path.join(a, n)) != _content(os.path.join(b, n)):
                diffs.append(f"{n}: content differs")
            links_a.setdefault((sa.st_dev, sa.st_ino), set()).add(n)
            links_b.setdefault((sb.st_dev, sb.st_ino), set()).add(n)
        if mtimes and not stat.S_ISDIR(sa.st_mode) and sa.st_mtime_ns != sb.st_mtime_ns:
            diffs.append(f"{n}: mtime {sa.st_mtime_ns} vs {sb.st_mtime_ns}")
    groups_a = sorted(sorted(g) for g in links_a.values() if len(g) > 1)
    groups_b = sorted(sorted(g) for g in links_b.values() if len(g) > 1)
    if groups_a != groups_b:
        diffs.append(f"hard links {groups_a} vs {groups_b}")
    return diffs
