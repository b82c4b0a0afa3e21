#include "decode.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace fusescope {

// The C enums of abi.h and the C++ ones of model/types.h come from the same
// tables (abi_tables.h); these check that both sides number them alike.
static_assert(FS_HIST_SLOTS == kHistSlots);
static_assert(FS_REASON_COUNT == kWriteReasons);
static_assert(FS_LOCK_MODES == kLockModes);
static_assert(FS_WRITE_LOCK_MODES == kWriteLockModes);
#define FS_X(c, cpp, name) static_assert(FS_LOCK_##c == static_cast<int>(LockMode::cpp));
FS_LOCK_MODE_TABLE(FS_X)
#undef FS_X
#define FS_X(c, cpp, name, short_name, mode, doc)                                                  \
    static_assert(FS_REASON_##c == static_cast<int>(WriteReason::cpp));                            \
    static_assert(FS_LOCK_##mode == static_cast<int>(lock_mode_of(WriteReason::cpp)));
FS_WRITE_REASON_TABLE(FS_X)
#undef FS_X
#define FS_X(c, cpp, value, name) static_assert(FS_EV_##c == static_cast<int>(EventType::cpp));
FS_EVENT_TYPE_TABLE(FS_X)
#undef FS_X
#define FS_X(c, cpp, bit, doc) static_assert(FS_EVF_##c == evflag::cpp);
FS_EVENT_FLAG_TABLE(FS_X)
#undef FS_X
static_assert(static_cast<int>(FileIoMode::NotAvailable) == FS_IOM_NA);
static_assert(sizeof(struct fs_event) == 160, "fs_event layout changed: check BPF side");
static_assert(sizeof(struct fs_census_rec) == 144, "fs_census_rec layout changed");
static_assert(sizeof(struct fs_name) == 16 + FS_NAME_BUF, "fs_name layout changed");
static_assert(sizeof(struct fs_write_cache) == 128, "fs_write_cache: two lines per CPU");

namespace {
std::string comm_of(const char (&c)[FS_COMM_LEN]) {
    return std::string(c, strnlen(c, FS_COMM_LEN));
}
} // namespace

Event decode_event(const struct fs_event &e) {
    Event ev;
    ev.ts_ns = e.ts_ns;
    ev.type = static_cast<EventType>(e.type);
    ev.flags = e.flags;
    ev.pid = e.pid;
    ev.tid = e.tid;
    ev.comm = comm_of(e.comm);
    ev.key = key_of(e.key);
    ev.nodeid = e.nodeid;
    ev.file_id = e.file_id;
    ev.fh = e.fh;
    ev.iocachectr = e.iocachectr;
    ev.open_flags = e.open_flags;
    ev.ret = e.ret;
    ev.iomode = static_cast<FileIoMode>(e.iomode);
    ev.lock_mode = static_cast<LockMode>(e.lock_mode < FS_WRITE_LOCK_MODES ? int(e.lock_mode)
                                                                           : FS_LOCK_UNKNOWN);
    ev.reason = static_cast<WriteReason>(
        e.reason < FS_REASON_COUNT ? e.reason : static_cast<__u8>(FS_REASON_UNCLASSIFIED));
    ev.offset = e.offset;
    ev.bytes = e.bytes;
    ev.wait_ns = e.wait_ns;
    ev.dur_ns = e.dur_ns;
    ev.cgroup_id = e.cgroup_id;
    ev.exe = key_of(e.exe);
    ev.release_id = e.release_id;
    return ev;
}

CensusRecord decode_census(const struct fs_census_rec &r) {
    CensusRecord c;
    c.kind = r.kind == FS_CENSUS_VMA ? CensusKind::Vma : CensusKind::File;
    c.pid = r.pid;
    c.comm = comm_of(r.comm);
    c.key = key_of(r.key);
    c.nodeid = r.nodeid;
    c.file_id = r.file_id;
    c.fh = r.fh;
    c.inode_state = r.inode_state;
    c.vm_start = r.vm_start;
    c.vm_end = r.vm_end;
    c.iocachectr = r.iocachectr;
    c.open_flags = r.open_flags;
    c.fd = r.fd;
    c.shared_map = r.vm_flags_shared_write & 1;
    c.writable_map = r.vm_flags_shared_write & 2;
    c.iomode = static_cast<FileIoMode>(r.iomode);
    c.cache_io_mode = r.cache_io_mode;
    c.cgroup_id = r.cgroup_id;
    c.exe = key_of(r.exe);
    c.release_id = r.release_id;
    c.uring = r.uring;
    c.writable = r.writable;
    return c;
}

KernelName decode_name(const struct fs_name &n) {
    KernelName k;
    k.captured_ns = n.ts_ns;
    k.complete = (n.flags & FS_NAME_COMPLETE) != 0;
    const size_t len = std::min<size_t>(n.len, sizeof(n.buf));
    for (size_t i = 0; i < len;) {
        const size_t end = strnlen(n.buf + i, len - i);
        k.components.emplace_back(n.buf + i, end);
        i += end + 1;
    }
    if (k.components.size() < n.depth) // the last component did not fit
        k.complete = false;
    return k;
}

InodeCounters decode_counters(const struct fs_inode_key &k, const struct fs_inode_stats &s) {
    InodeCounters c;
    c.key = key_of(k);
    c.nodeid = s.nodeid;
    c.first_seen_ns = s.first_seen_ns;
    c.mode_seen_ns = s.mode_seen_ns;
    for (int i = 0; i < kWriteReasons; i++)
        c.writes[i] = s.writes[i];
    for (int m = 0; m < kWriteLockModes; m++) {
        c.write_bytes[m] = s.write_bytes[m];
        c.write_wait_ns[m] = s.write_wait_ns[m];
        c.write_service_ns[m] = s.write_service_ns[m];
    }
    c.writeback_requests = s.writeback_requests;
    c.writeback_bytes = s.writeback_bytes;
    for (int m = 0; m < kLockModes; m++) {
        c.contentions[m] = s.contentions[m];
        c.contention_ns[m] = s.contention_ns[m];
        for (int i = 0; i < kHistSlots; i++)
            c.contention_hist[m][i] = s.contention_hist[m][i];
    }
    c.drain_waits = s.drain_waits;
    c.drain_wait_ns = s.drain_wait_ns;
    c.iocachectr = s.iocachectr;
    c.cache_io_mode = s.cache_io_mode != 0;
    c.mode_changes = s.mode_changes;
    return c;
}

} // namespace fusescope
