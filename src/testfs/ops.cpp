#include "ops.h"

#include "fuse_uring_abi.h"
#include "protocol.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <mutex>
#include <thread>

namespace testfs {
namespace {

// Cache timeouts the kernel gets for entries and attributes. Short, because tests also touch
// the backing directory directly; long enough that hot paths do not re-LOOKUP every call.
constexpr uint64_t kEntryTimeoutSec = 1;
constexpr uint64_t kAttrTimeoutSec = 1;

// FILESYSTEM_MAX_STACK_DEPTH: lets the backing dir itself live on a stacked fs (overlayfs).
constexpr uint32_t kPassthroughStackDepth = 2;

// Typed view of the fixed-size argument at the start of a request; nullptr if too short.
template <typename T> const T *arg_as(const Request &r) {
    return r.arglen >= sizeof(T) ? reinterpret_cast<const T *>(r.arg) : nullptr;
}

// A NUL-terminated name at offset `off` of the argument, or nullptr if malformed. Also refuses
// names that could step outside the backing directory.
const char *arg_name(const Request &r, size_t off, size_t *next = nullptr) {
    if (off >= r.arglen)
        return nullptr;
    const char *s = r.arg + off;
    const void *nul = std::memchr(s, '\0', r.arglen - off);
    if (!nul)
        return nullptr;
    size_t len = static_cast<size_t>(static_cast<const char *>(nul) - s);
    if (next)
        *next = off + len + 1;
    if (len == 0 || std::strchr(s, '/') || std::strcmp(s, ".") == 0 || std::strcmp(s, "..") == 0)
        return nullptr;
    return s;
}

void fill_attr(fuse_attr &a, const struct stat &st) {
    a.ino = st.st_ino;
    a.size = static_cast<uint64_t>(st.st_size);
    a.blocks = static_cast<uint64_t>(st.st_blocks);
    a.atime = static_cast<uint64_t>(st.st_atim.tv_sec);
    a.mtime = static_cast<uint64_t>(st.st_mtim.tv_sec);
    a.ctime = static_cast<uint64_t>(st.st_ctim.tv_sec);
    a.atimensec = static_cast<uint32_t>(st.st_atim.tv_nsec);
    a.mtimensec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
    a.ctimensec = static_cast<uint32_t>(st.st_ctim.tv_nsec);
    a.mode = st.st_mode;
    a.nlink = static_cast<uint32_t>(st.st_nlink);
    a.uid = st.st_uid;
    a.gid = st.st_gid;
    a.rdev = static_cast<uint32_t>(st.st_rdev);
    a.blksize = static_cast<uint32_t>(st.st_blksize);
}

int stat_node(int path_fd, struct stat &st) {
    return ::fstatat(path_fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

void reply_err(const Request &r, int err) { r.reply(err); }

// A file handle from GETATTR/SETATTR, trusted only if it is an fd on this very inode: the kernel
// sends handles for regular files only, but a directory's handle is a pointer, and a stale or
// foreign number must never make us touch some other file. Returns the fd or -1.
int fh_for_node(const Node &node, uint64_t fh) {
    if (fh > static_cast<uint64_t>(INT32_MAX))
        return -1;
    struct stat st {};
    const int fd = static_cast<int>(fh);
    if (::fstat(fd, &st) != 0 || st.st_dev != node.dev || st.st_ino != node.ino)
        return -1;
    return fd;
}

// Directory handle: a snapshot of the entries, refreshed when the kernel starts over at offset 0
// (opendir or rewinddir). Offsets handed to the kernel are snapshot indexes + 1.
struct DirHandle {
    DIR *dir = nullptr;
    std::mutex mu;
    struct Ent {
        std::string name;
        uint64_t ino;
        uint32_t type;
    };
    std::vector<Ent> ents;
    ~DirHandle() {
        if (dir)
            ::closedir(dir);
    }
    void refresh() {
        ents.clear();
        ::rewinddir(dir);
        while (dirent *d = ::readdir(dir))
            ents.push_back({d->d_name, d->d_ino, d->d_type});
    }
};

DirHandle *dir_from_fh(uint64_t fh) { return reinterpret_cast<DirHandle *>(fh); }

} // namespace

Filesystem::Filesystem(const Config &cfg, int root_fd)
    : cfg_(cfg), nodes_(root_fd), my_uid_(::geteuid()), my_gid_(::getegid()) {}

void Filesystem::handle(const Request &r, std::vector<char> &scratch) {
    const uint32_t op = r.h->opcode;
    counts_[r.via_ring ? 1 : 0][op < kOpcodeSlots ? op : 0].fetch_add(1, std::memory_order_relaxed);
    if (cfg_.debug)
        fmt::print(stderr, "testfs: {} unique={} nodeid={} len={} pid={}\n", opcode_name(op),
                   r.h->unique, r.h->nodeid, r.h->len, r.h->pid);
    switch (op) {
    case FUSE_INIT:
        return op_init(r);
    case FUSE_LOOKUP:
        return op_lookup(r);
    case FUSE_FORGET:
        return op_forget(r);
    case FUSE_BATCH_FORGET:
        return op_batch_forget(r);
    case FUSE_GETATTR:
        return op_getattr(r);
    case FUSE_SETATTR:
        return op_setattr(r);
    case FUSE_READLINK:
        return op_readlink(r);
    case FUSE_MKNOD:
        return op_mknod(r);
    case FUSE_MKDIR:
        return op_mkdir(r);
    case FUSE_SYMLINK:
        return op_symlink(r);
    case FUSE_LINK:
        return op_link(r);
    case FUSE_UNLINK:
        return op_unlink(r, false);
    case FUSE_RMDIR:
        return op_unlink(r, true);
    case FUSE_RENAME:
        return op_rename(r, false);
    case FUSE_RENAME2:
        return op_rename(r, true);
    case FUSE_OPEN:
        return op_open(r);
    case FUSE_CREATE:
        return op_create(r);
    case FUSE_READ:
        return op_read(r, scratch);
    case FUSE_WRITE:
        return op_write(r);
    case FUSE_RELEASE:
        return op_release(r);
    case FUSE_FLUSH:
        return reply_err(r, 0); // nothing buffered server-side
    case FUSE_FSYNC:
        return op_fsync(r);
    case FUSE_FSYNCDIR:
        return reply_err(r, 0);
    case FUSE_FALLOCATE:
        return op_fallocate(r);
    case FUSE_STATFS:
        return op_statfs(r);
    case FUSE_OPENDIR:
        return op_opendir(r);
    case FUSE_READDIR:
        return op_readdir(r, scratch);
    case FUSE_RELEASEDIR:
        return op_releasedir(r);
    case FUSE_INTERRUPT:
        return; // requests are short; let them finish (no reply is allowed)
    case FUSE_DESTROY:
        return reply_err(r, 0);
    default:
        // ACCESS, xattrs, locks, LSEEK, STATX, ...: ENOSYS makes the kernel remember not to ask
        // again and fall back to its generic implementation.
        return reply_err(r, ENOSYS);
    }
}

// ---- INIT -----------------------------------------------------------------------------------

void Filesystem::op_init(const Request &r) {
    fuse_init_in in{};
    std::memcpy(&in, r.arg, std::min(r.arglen, sizeof(in))); // old kernels send less
    auto fail = [&](const std::string &msg) {
        reply_err(r, EPROTO);
        if (on_init)
            on_init(false, msg);
    };
    if (in.major != FUSE_KERNEL_VERSION)
        return fail(fmt::format("kernel speaks FUSE protocol {}.{}, this server only 7.x", in.major,
                                in.minor));
    uint64_t kflags = in.flags;
    if (in.flags & FUSE_INIT_EXT)
        kflags |= static_cast<uint64_t>(in.flags2) << 32;

    uint64_t want =
        FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES | FUSE_PARALLEL_DIROPS | FUSE_INIT_EXT;
    if (cfg_.async_dio)
        want |= FUSE_ASYNC_DIO;
    if (cfg_.direct_io_allow_mmap) {
        if (!(kflags & kInitDirectIoAllowMmap) || !(kflags & FUSE_INIT_EXT))
            return fail("this kernel does not offer FUSE_DIRECT_IO_ALLOW_MMAP (needs Linux 6.6+); "
                        "run without --direct-io-allow-mmap");
        want |= kInitDirectIoAllowMmap;
    }
    if (cfg_.io_uring) {
        if (!(kflags & uring_abi::kInitOverIoUring) || !(kflags & FUSE_INIT_EXT))
            return fail("the kernel does not offer FUSE over io_uring (needs Linux 6.14+ with "
                        "CONFIG_FUSE_IO_URING and enable_uring=Y); run without --io-uring");
        want |= uring_abi::kInitOverIoUring;
    }
    if (cfg_.passthrough) {
        if (!(kflags & kInitPassthrough) || !(kflags & FUSE_INIT_EXT))
            return fail("this kernel does not offer FUSE_PASSTHROUGH (needs Linux 6.9+ with "
                        "CONFIG_FUSE_PASSTHROUGH); run without --passthrough");
        want |= kInitPassthrough;
    }
    const uint64_t flags = want & kflags;

    InitOut out{};
    out.major = FUSE_KERNEL_VERSION;
    out.minor = std::min(in.minor, kOurMinor);
    out.max_readahead = in.max_readahead;
    out.flags = static_cast<uint32_t>(flags);
    out.flags2 = static_cast<uint32_t>(flags >> 32);
    // Enough background slots that async DIO and readahead are not throttled by the server.
    out.max_background = 64;
    out.congestion_threshold = 48;
    out.max_write = cfg_.max_write;
    out.time_gran = 1;
    out.max_pages =
        static_cast<uint16_t>(std::min<uint32_t>((cfg_.max_write + 4095) / 4096, 65535));
    out.max_stack_depth = cfg_.passthrough ? kPassthroughStackDepth : 0;
    minor_ = out.minor;
    if (r.reply_struct(out)) {
        if (on_init)
            on_init(true, fmt::format("protocol 7.{} (kernel 7.{}), flags {:#x}", out.minor,
                                      in.minor, flags));
    } else if (on_init) {
        on_init(false, "the kernel refused the INIT reply");
    }
}

// ---- names and attributes -------------------------------------------------------------------

void Filesystem::chown_to_caller(int path_fd, const fuse_in_header *h) const {
    if (h->uid == my_uid_ && h->gid == my_gid_)
        return;
    // Best effort, as a local fs would: ignore failures (e.g. unprivileged server).
    (void)::fchownat(path_fd, "", h->uid, h->gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
}

int Filesystem::make_entry(const NodePtr &parent, const char *name, int path_fd,
                           fuse_entry_out &out) {
    struct stat st {};
    if (int e = stat_node(path_fd, st)) {
        ::close(path_fd);
        return e;
    }
    std::string path = parent->path == "." ? name : parent->path + "/" + name;
    NodePtr node = nodes_.add_lookup(path_fd, st, path);
    out = {};
    out.nodeid = node->nodeid;
    out.generation = 0;
    out.entry_valid = kEntryTimeoutSec;
    out.attr_valid = kAttrTimeoutSec;
    fill_attr(out.attr, st);
    return 0;
}

int Filesystem::lookup_entry(const NodePtr &parent, const char *name, fuse_entry_out &out) {
    int fd = ::openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno;
    return make_entry(parent, name, fd, out);
}

void Filesystem::op_lookup(const Request &r) {
    NodePtr parent = nodes_.get(r.h->nodeid);
    const char *name = arg_name(r, 0);
    if (!parent || !name)
        return reply_err(r, parent ? EINVAL : ESTALE);
    fuse_entry_out out{};
    if (int e = lookup_entry(parent, name, out))
        return reply_err(r, e);
    if (!r.reply_struct(out))
        nodes_.forget(out.nodeid, 1); // the kernel never saw the entry
}

void Filesystem::op_forget(const Request &r) {
    if (auto in = arg_as<fuse_forget_in>(r))
        nodes_.forget(r.h->nodeid, in->nlookup);
}

void Filesystem::op_batch_forget(const Request &r) {
    auto in = arg_as<fuse_batch_forget_in>(r);
    if (!in)
        return;
    const size_t room = (r.arglen - sizeof(*in)) / sizeof(fuse_forget_one);
    auto one = reinterpret_cast<const fuse_forget_one *>(r.arg + sizeof(*in));
    for (size_t i = 0; i < std::min<size_t>(in->count, room); ++i)
        nodes_.forget(one[i].nodeid, one[i].nlookup);
}

void Filesystem::op_getattr(const Request &r) {
    NodePtr node = nodes_.get(r.h->nodeid);
    if (!node)
        return reply_err(r, ESTALE);
    auto in = arg_as<fuse_getattr_in>(r);
    // Prefer the open file's fd: it also works after the file was unlinked.
    const int fh = (in && (in->getattr_flags & FUSE_GETATTR_FH)) ? fh_for_node(*node, in->fh) : -1;
    struct stat st {};
    const int rc = fh >= 0 ? (::fstat(fh, &st) == 0 ? 0 : errno) : stat_node(node->fd, st);
    if (rc != 0)
        return reply_err(r, rc);
    fuse_attr_out out{};
    out.attr_valid = kAttrTimeoutSec;
    fill_attr(out.attr, st);
    r.reply_struct(out);
}

void Filesystem::op_setattr(const Request &r) {
    NodePtr node = nodes_.get(r.h->nodeid);
    auto in = arg_as<fuse_setattr_in>(r);
    if (!node || !in)
        return reply_err(r, node ? EINVAL : ESTALE);
    const uint32_t v = in->valid;
    // With an open file (ftruncate, fchmod, futimens) the kernel passes its handle: use the real
    // fd, which also works for unlinked files. Otherwise go through /proc/self/fd/N.
    const int fh = (v & FATTR_FH) ? fh_for_node(*node, in->fh) : -1;
    const std::string proc = node->proc_path();
    if (v & FATTR_MODE) {
        int rc = fh >= 0 ? ::fchmod(fh, in->mode) : ::chmod(proc.c_str(), in->mode);
        if (rc != 0)
            return reply_err(r, errno);
    }
    if (v & (FATTR_UID | FATTR_GID)) {
        uid_t uid = (v & FATTR_UID) ? in->uid : static_cast<uid_t>(-1);
        gid_t gid = (v & FATTR_GID) ? in->gid : static_cast<gid_t>(-1);
        if (::fchownat(node->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
            return reply_err(r, errno);
    }
    if (v & FATTR_SIZE) {
        auto size = static_cast<off_t>(in->size);
        int rc = fh >= 0 ? ::ftruncate(fh, size) : ::truncate(proc.c_str(), size);
        if (rc != 0)
            return reply_err(r, errno);
    }
    if (v & (FATTR_ATIME | FATTR_MTIME)) {
        timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
        if (v & FATTR_ATIME_NOW)
            tv[0].tv_nsec = UTIME_NOW;
        else if (v & FATTR_ATIME)
            tv[0] = {static_cast<time_t>(in->atime), static_cast<long>(in->atimensec)};
        if (v & FATTR_MTIME_NOW)
            tv[1].tv_nsec = UTIME_NOW;
        else if (v & FATTR_MTIME)
            tv[1] = {static_cast<time_t>(in->mtime), static_cast<long>(in->mtimensec)};
        int rc = fh >= 0 ? ::futimens(fh, tv) : ::utimensat(AT_FDCWD, proc.c_str(), tv, 0);
        if (rc != 0)
            return reply_err(r, errno);
    }
    struct stat st {};
    int rc = fh >= 0 ? (::fstat(fh, &st) == 0 ? 0 : errno) : stat_node(node->fd, st);
    if (rc != 0)
        return reply_err(r, rc);
    fuse_attr_out out{};
    out.attr_valid = kAttrTimeoutSec;
    fill_attr(out.attr, st);
    r.reply_struct(out);
}

void Filesystem::op_readlink(const Request &r) {
    NodePtr node = nodes_.get(r.h->nodeid);
    if (!node)
        return reply_err(r, ESTALE);
    char buf[PATH_MAX];
    ssize_t n = ::readlinkat(node->fd, "", buf, sizeof(buf));
    if (n < 0)
        return reply_err(r, errno);
    iovec iov{buf, static_cast<size_t>(n)};
    r.reply(0, {&iov, 1});
}

// ---- directory entries ----------------------------------------------------------------------

void Filesystem::op_mknod(const Request &r) {
    NodePtr parent = nodes_.get(r.h->nodeid);
    auto in = arg_as<fuse_mknod_in>(r);
    const char *name = arg_name(r, sizeof(fuse_mknod_in));
    if (!parent || !in || !name)
        return reply_err(r, parent ? EINVAL : ESTALE);
    fuse_entry_out out{};
    if (::mknodat(parent->fd, name, in->mode, in->rdev) != 0)
        return reply_err(r, errno);
    if (int e = lookup_entry(parent, name, out))
        return reply_err(r, e);
    if (NodePtr n = nodes_.get(out.nodeid))
        chown_to_caller(n->fd, r.h);
    if (!r.reply_struct(out))
        nodes_.forget(out.nodeid, 1);
}

void Filesystem::op_mkdir(const Request &r) {
    NodePtr parent = nodes_.get(r.h->nodeid);
    auto in = arg_as<fuse_mkdir_in>(r);
    const char *name = arg_name(r, sizeof(fuse_mkdir_in));
    if (!parent || !in || !name)
        return reply_err(r, parent ? EINVAL : ESTALE);
    fuse_entry_out out{};
    if (::mkdirat(parent->fd, name, in->mode) != 0)
        return reply_err(r, errno);
    if (int e = lookup_entry(parent, name, out))
        return reply_err(r, e);
    if (NodePtr n = nodes_.get(out.nodeid))
        chown_to_caller(n->fd, r.h);
    if (!r.reply_struct(out))
        nodes_.forget(out.nodeid, 1);
}

void Filesystem::op_symlink(const Request &r) {
    NodePtr parent = nodes_.get(r.h->nodeid);
    size_t next = 0;
    const char *name = arg_name(r, 0, &next);
    if (!parent || !name || next >= r.arglen || !std::memchr(r.arg + next, '\0', r.arglen - next))
        return reply_err(r, parent ? EINVAL : ESTALE);
    const char *target = r.arg + next;
    fuse_entry_out out{};
    if (::symlinkat(target, parent->fd, name) != 0)
        return reply_err(r, errno);
    if (int e = lookup_entry(parent, name, out))
        return reply_err(r, e);
    if (NodePtr n = nodes_.get(out.nodeid))
        chown_to_caller(n->fd, r.h);
    if (!r.reply_struct(out))
        nodes_.forget(out.nodeid, 1);
}

void Filesystem::op_link(const Request &r) {
    NodePtr parent = nodes_.get(r.h->nodeid);
    auto in = arg_as<fuse_link_in>(r);
    const char *name = arg_name(r, sizeof(fuse_link_in));
    NodePtr old = in ? nodes_.get(in->oldnodeid) : nullptr;
    if (!parent || !in || !name || !old)
        return reply_err(r, parent && old ? EINVAL : ESTALE);
    // AT_EMPTY_PATH on an O_PATH fd links the very inode (needs CAP_DAC_READ_SEARCH: root).
    if (::linkat(old->fd, "", parent->fd, name, AT_EMPTY_PATH) != 0)
        return reply_err(r, errno);
    fuse_entry_out out{};
    if (int e = lookup_entry(parent, name, out))
        return reply_err(r, e);
    if (!r.reply_struct(out))
        nodes_.forget(out.nodeid, 1);
}

void Filesystem::op_unlink(const Request &r, bool dir) {
    NodePtr parent = nodes_.get(r.h->nodeid);
    const char *name = arg_name(r, 0);
    if (!parent || !name)
        return reply_err(r, parent ? EINVAL : ESTALE);
    // The node (if any) stays in the table until the kernel forgets it; its O_PATH fd keeps an
    // unlinked-but-open file reachable.
    int rc = ::unlinkat(parent->fd, name, dir ? AT_REMOVEDIR : 0);
    reply_err(r, rc == 0 ? 0 : errno);
}

void Filesystem::op_rename(const Request &r, bool v2) {
    NodePtr parent = nodes_.get(r.h->nodeid);
    uint64_t newdir = 0;
    uint32_t flags = 0;
    size_t off = 0;
    if (v2) {
        if (auto in = arg_as<fuse_rename2_in>(r)) {
            newdir = in->newdir;
            flags = in->flags;
            off = sizeof(*in);
        }
    } else if (auto in = arg_as<fuse_rename_in>(r)) {
        newdir = in->newdir;
        off = sizeof(*in);
    }
    size_t next = 0;
    const char *oldname = off ? arg_name(r, off, &next) : nullptr;
    const char *newname = oldname ? arg_name(r, next) : nullptr;
    NodePtr target = newdir ? nodes_.get(newdir) : nullptr;
    if (!parent || !target || !oldname || !newname)
        return reply_err(r, parent && target ? EINVAL : ESTALE);
    int rc = ::renameat2(parent->fd, oldname, target->fd, newname, flags);
    reply_err(r, rc == 0 ? 0 : errno);
}

// ---- files ----------------------------------------------------------------------------------

uint32_t Filesystem::fopen_flags(uint32_t oflags) const {
    const bool readonly = (oflags & O_ACCMODE) == O_RDONLY;
    uint32_t f = 0;
    // --cache-readonly-opens: a read-only open is a caching open even on a --direct-io mount.
    // That is what an indexer or backup tool does to an inode in real deployments.
    const bool cached_here = cfg_.cache_readonly_opens && readonly;
    if (cfg_.direct_io && !cached_here)
        f |= FOPEN_DIRECT_IO;
    // The kernel itself clears PARALLEL_DIRECT_WRITES on opens without DIRECT_IO; we still send
    // it as asked, except on the deliberately cached opens.
    if (cfg_.parallel_direct_writes && !cached_here)
        f |= FOPEN_PARALLEL_DIRECT_WRITES;
    if (cfg_.keep_cache)
        f |= FOPEN_KEEP_CACHE;
    return f;
}

int Filesystem::backing_open_flags(uint32_t oflags) {
    int f = static_cast<int>(oflags);
    // O_APPEND: the kernel computes the offset of every WRITE; a backing O_APPEND would make
    // pwrite ignore it. O_DIRECT: the kernel already bypassed its cache; on the backing file it
    // would only add alignment rules. O_CREAT/O_EXCL/O_NOCTTY: handled by the kernel/CREATE.
    // O_NOFOLLOW: the kernel already refused it on a symlink (it never sends OPEN for one); the
    // backing file is reopened through /proc/self/fd/N, itself a symlink, where O_NOFOLLOW
    // would fail every open with ELOOP.
    f &= ~(O_APPEND | O_DIRECT | O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW);
    // The kernel may READ through a write-only handle (page cache fills, mmap), so open the
    // backing file read-write whenever write access is asked for.
    if ((f & O_ACCMODE) == O_WRONLY)
        f = (f & ~O_ACCMODE) | O_RDWR;
    return f | O_CLOEXEC;
}

int Filesystem::passthrough_get(Node &node, int fuse_fd, int file_fd) {
    std::lock_guard lock(node.mu);
    if (node.backing_refs == 0) {
        BackingMap map{};
        map.fd = file_fd;
        int id = ::ioctl(fuse_fd, kIocBackingOpen, &map);
        if (id < 0) {
            int e = errno;
            fmt::print(stderr, "fusescope-testfs: FUSE_DEV_IOC_BACKING_OPEN on {} failed: {}\n",
                       node.path, std::strerror(e));
            return -e;
        }
        node.backing_id = id;
    }
    node.backing_refs++;
    return node.backing_id;
}

void Filesystem::passthrough_put(Node &node, int fuse_fd) {
    std::lock_guard lock(node.mu);
    if (node.backing_refs == 0 || --node.backing_refs > 0)
        return;
    // Safe now: the kernel sends RELEASE after dropping the file's use of the backing file.
    uint32_t id = static_cast<uint32_t>(node.backing_id);
    if (::ioctl(fuse_fd, kIocBackingClose, &id) != 0)
        fmt::print(stderr, "fusescope-testfs: FUSE_DEV_IOC_BACKING_CLOSE {} failed: {}\n", id,
                   std::strerror(errno));
    node.backing_id = -1;
}

void Filesystem::op_open(const Request &r) {
    NodePtr node = nodes_.get(r.h->nodeid);
    auto in = arg_as<fuse_open_in>(r);
    if (!node || !in)
        return reply_err(r, node ? EINVAL : ESTALE);
    int fd = ::open(node->proc_path().c_str(), backing_open_flags(in->flags));
    if (fd < 0)
        return reply_err(r, errno);
    OpenOut out{};
    out.fh = static_cast<uint64_t>(fd); // the handle is the backing fd itself
    out.open_flags = fopen_flags(in->flags);
    if (cfg_.passthrough) {
        int id = passthrough_get(*node, r.dev_fd, fd);
        if (id < 0) {
            ::close(fd);
            return reply_err(r, -id);
        }
        out.open_flags |= kFopenPassthrough;
        out.backing_id = id;
    }
    if (!r.reply_struct(out)) {
        if (cfg_.passthrough)
            passthrough_put(*node, r.dev_fd);
        ::close(fd);
    }
}

void Filesystem::op_create(const Request &r) {
    NodePtr parent = nodes_.get(r.h->nodeid);
    auto in = arg_as<fuse_create_in>(r);
    const char *name = arg_name(r, sizeof(fuse_create_in));
    if (!parent || !in || !name)
        return reply_err(r, parent ? EINVAL : ESTALE);
    // O_NOFOLLOW: the kernel looked the name up and found nothing; a symlink put there in the
    // meantime is not followed out of the backing directory.
    const int oflags = backing_open_flags(in->flags) | O_CREAT | O_NOFOLLOW | (in->flags & O_EXCL);
    int fd = ::openat(parent->fd, name, oflags, in->mode);
    if (fd < 0)
        return reply_err(r, errno);
    // Reopen the very inode we created as O_PATH (a lookup by name could race a rename).
    int path_fd = ::open(fmt::format("/proc/self/fd/{}", fd).c_str(), O_PATH | O_CLOEXEC);
    struct {
        fuse_entry_out entry;
        OpenOut open;
    } out{};
    int e = path_fd < 0 ? errno : make_entry(parent, name, path_fd, out.entry);
    if (e) {
        ::close(fd);
        return reply_err(r, e);
    }
    NodePtr node = nodes_.get(out.entry.nodeid);
    if (node)
        chown_to_caller(node->fd, r.h);
    out.open.fh = static_cast<uint64_t>(fd);
    out.open.open_flags = fopen_flags(in->flags);
    if (cfg_.passthrough && node) {
        int id = passthrough_get(*node, r.dev_fd, fd);
        if (id < 0) {
            ::close(fd);
            nodes_.forget(out.entry.nodeid, 1);
            return reply_err(r, -id);
        }
        out.open.open_flags |= kFopenPassthrough;
        out.open.backing_id = id;
    }
    iovec iov[2] = {{&out.entry, sizeof(out.entry)}, {&out.open, sizeof(out.open)}};
    if (!r.reply(0, iov)) {
        if (cfg_.passthrough && node)
            passthrough_put(*node, r.dev_fd);
        ::close(fd);
        nodes_.forget(out.entry.nodeid, 1);
    }
}

void Filesystem::op_read(const Request &r, std::vector<char> &scratch) {
    auto in = arg_as<fuse_read_in>(r);
    if (!in)
        return reply_err(r, EINVAL);
    if (scratch.size() < in->size)
        scratch.resize(in->size);
    size_t done = 0;
    while (done < in->size) {
        ssize_t n = ::pread(static_cast<int>(in->fh), scratch.data() + done, in->size - done,
                            static_cast<off_t>(in->offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return reply_err(r, errno);
        }
        if (n == 0)
            break; // EOF: a short read tells the kernel where the file ends
        done += static_cast<size_t>(n);
    }
    bytes_read_.fetch_add(done, std::memory_order_relaxed);
    iovec iov{scratch.data(), done};
    r.reply(0, {&iov, 1});
}

void Filesystem::op_write(const Request &r) {
    auto in = arg_as<fuse_write_in>(r);
    if (!in || r.arglen - sizeof(*in) < in->size)
        return reply_err(r, EINVAL);
    // --write-delay-us: a slow server makes lock contention between writers long and visible.
    if (cfg_.write_delay_us)
        std::this_thread::sleep_for(std::chrono::microseconds(cfg_.write_delay_us));
    const char *data = r.arg + sizeof(*in);
    size_t done = 0;
    while (done < in->size) {
        ssize_t n = ::pwrite(static_cast<int>(in->fh), data + done, in->size - done,
                             static_cast<off_t>(in->offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (done == 0)
                return reply_err(r, errno);
            break;
        }
        done += static_cast<size_t>(n);
    }
    bytes_written_.fetch_add(done, std::memory_order_relaxed);
    fuse_write_out out{};
    out.size = static_cast<uint32_t>(done);
    r.reply_struct(out);
}

void Filesystem::op_release(const Request &r) {
    auto in = arg_as<fuse_release_in>(r);
    if (!in)
        return reply_err(r, EINVAL);
    ::close(static_cast<int>(in->fh));
    if (cfg_.passthrough)
        if (NodePtr node = nodes_.get(r.h->nodeid))
            passthrough_put(*node, r.dev_fd);
    reply_err(r, 0);
}

void Filesystem::op_fsync(const Request &r) {
    auto in = arg_as<fuse_fsync_in>(r);
    if (!in)
        return reply_err(r, EINVAL);
    const int fd = static_cast<int>(in->fh);
    int rc = (in->fsync_flags & FUSE_FSYNC_FDATASYNC) ? ::fdatasync(fd) : ::fsync(fd);
    reply_err(r, rc == 0 ? 0 : errno);
}

void Filesystem::op_fallocate(const Request &r) {
    auto in = arg_as<fuse_fallocate_in>(r);
    if (!in)
        return reply_err(r, EINVAL);
    int rc = ::fallocate(static_cast<int>(in->fh), static_cast<int>(in->mode),
                         static_cast<off_t>(in->offset), static_cast<off_t>(in->length));
    reply_err(r, rc == 0 ? 0 : errno);
}

void Filesystem::op_statfs(const Request &r) {
    NodePtr node = nodes_.get(r.h->nodeid);
    if (!node)
        node = nodes_.get(FUSE_ROOT_ID);
    struct statvfs sv {};
    if (::fstatvfs(node->fd, &sv) != 0)
        return reply_err(r, errno);
    fuse_statfs_out out{};
    out.st.blocks = sv.f_blocks;
    out.st.bfree = sv.f_bfree;
    out.st.bavail = sv.f_bavail;
    out.st.files = sv.f_files;
    out.st.ffree = sv.f_ffree;
    out.st.bsize = static_cast<uint32_t>(sv.f_bsize);
    out.st.namelen = static_cast<uint32_t>(sv.f_namemax);
    out.st.frsize = static_cast<uint32_t>(sv.f_frsize);
    r.reply_struct(out);
}

// ---- directories ----------------------------------------------------------------------------

void Filesystem::op_opendir(const Request &r) {
    NodePtr node = nodes_.get(r.h->nodeid);
    if (!node)
        return reply_err(r, ESTALE);
    int fd = ::open(node->proc_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return reply_err(r, errno);
    auto dh = std::make_unique<DirHandle>();
    dh->dir = ::fdopendir(fd);
    if (!dh->dir) {
        int e = errno;
        ::close(fd);
        return reply_err(r, e);
    }
    OpenOut out{};
    out.fh = reinterpret_cast<uint64_t>(dh.get());
    if (r.reply_struct(out))
        dh.release(); // owned by the kernel's handle until RELEASEDIR
}

void Filesystem::op_readdir(const Request &r, std::vector<char> &scratch) {
    auto in = arg_as<fuse_read_in>(r);
    if (!in)
        return reply_err(r, EINVAL);
    DirHandle *dh = dir_from_fh(in->fh);
    std::lock_guard lock(dh->mu);
    if (in->offset == 0)
        dh->refresh();
    if (scratch.size() < in->size)
        scratch.resize(in->size);
    size_t used = 0;
    for (size_t i = in->offset; i < dh->ents.size(); ++i) {
        const auto &e = dh->ents[i];
        const size_t rec = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + e.name.size());
        if (used + rec > in->size)
            break;
        auto *d = reinterpret_cast<fuse_dirent *>(scratch.data() + used);
        std::memset(d, 0, rec);
        d->ino = e.ino;
        d->off = i + 1; // where the next READDIR continues
        d->namelen = static_cast<uint32_t>(e.name.size());
        d->type = e.type;
        std::memcpy(d->name, e.name.data(), e.name.size());
        used += rec;
    }
    iovec iov{scratch.data(), used};
    r.reply(0, {&iov, 1});
}

void Filesystem::op_releasedir(const Request &r) {
    auto in = arg_as<fuse_release_in>(r);
    if (!in)
        return reply_err(r, EINVAL);
    delete dir_from_fh(in->fh);
    reply_err(r, 0);
}

// ---- stats ----------------------------------------------------------------------------------

std::string Filesystem::stats_json() const {
    // {"OPCODE": count, ...} of one counter table, or of the sum of both.
    auto table = [this](int which) {
        std::string t = "{";
        for (uint32_t op = 1; op < kOpcodeSlots; ++op) {
            const uint64_t n = which >= 0 ? counts_[which][op].load()
                                          : counts_[0][op].load() + counts_[1][op].load();
            if (n)
                t += fmt::format("{}\"{}\": {}", t.size() > 1 ? ", " : "", opcode_name(op), n);
        }
        return t + "}";
    };
    return fmt::format("{{\"requests\": {}, \"transport\": {{\"dev_fuse\": {}, \"io_uring\": {}}}, "
                       "\"bytes_written\": {}, \"bytes_read\": {}, \"nodes\": {}}}\n",
                       table(-1), table(0), table(1), bytes_written_.load(), bytes_read_.load(),
                       nodes_.size());
}

} // namespace testfs
