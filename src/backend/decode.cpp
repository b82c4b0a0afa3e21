#include "decode.h"

#include <cstring>
#include <string>

namespace fusescope {

// The C++ enums mirror the ABI's numbering; these keep the two in step.
static_assert(FS_HIST_SLOTS == kHistSlots);
static_assert(FS_REASON_COUNT == kWriteReasons);
static_assert(FS_LOCK_MODES == kLockModes);
static_assert(static_cast<int>(WriteReason::Fallback) == FS_REASON_FALLBACK);
static_assert(static_cast<int>(EventType::ModeSeen) == FS_EV_MODE_SEEN);
static_assert(static_cast<int>(FileIoMode::NotAvailable) == FS_IOM_NA);
static_assert(sizeof(struct fs_event) == 128, "fs_event layout changed: check BPF side");
static_assert(sizeof(struct fs_census_rec) == 112, "fs_census_rec layout changed");
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
    ev.lock_mode = e.lock_mode ? LockMode::Exclusive : LockMode::Shared;
    ev.reason = static_cast<WriteReason>(
        e.reason < FS_REASON_COUNT ? e.reason : static_cast<__u8>(FS_REASON_FALLBACK));
    ev.offset = e.offset;
    ev.bytes = e.bytes;
    ev.wait_ns = e.wait_ns;
    ev.dur_ns = e.dur_ns;
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
    return c;
}

InodeCounters decode_counters(const struct fs_inode_key &k, const struct fs_inode_stats &s) {
    InodeCounters c;
    c.key = key_of(k);
    c.nodeid = s.nodeid;
    c.first_seen_ns = s.first_seen_ns;
    c.mode_seen_ns = s.mode_seen_ns;
    for (int i = 0; i < kWriteReasons; i++)
        c.writes[i] = s.writes[i];
    for (int m = 0; m < kLockModes; m++) {
        c.write_bytes[m] = s.write_bytes[m];
        c.write_wait_ns[m] = s.write_wait_ns[m];
        c.write_service_ns[m] = s.write_service_ns[m];
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
