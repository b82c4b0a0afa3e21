// Builders for recorded input sequences of the state model tests.
#pragma once

#include <string>

#include "fusescope/model/types.h"

namespace fusescope::test {

inline constexpr uint32_t kDev = (0u << 20) | 45u; // 0:45
inline constexpr uint64_t kMs = 1'000'000;
inline constexpr uint64_t kSec = 1'000'000'000;

inline InodeKey key(uint64_t ino, uint32_t dev = kDev) { return InodeKey{dev, ino}; }

inline InodeCounters counters(InodeKey k, uint64_t first_seen, uint64_t mode_seen) {
    InodeCounters c;
    c.key = k;
    c.nodeid = k.ino + 1000;
    c.first_seen_ns = first_seen;
    c.mode_seen_ns = mode_seen;
    return c;
}

inline Event event(EventType t, InodeKey k, uint64_t ts, uint32_t flags, int32_t ctr,
                   uint32_t pid = 100, std::string comm = "proc", uint64_t file_id = 0,
                   uint64_t fh = 0) {
    Event e;
    e.type = t;
    e.key = k;
    e.ts_ns = ts;
    e.flags = flags;
    e.iocachectr = ctr;
    e.pid = pid;
    e.tid = pid;
    e.comm = std::move(comm);
    e.nodeid = k.ino + 1000;
    e.file_id = file_id;
    e.fh = fh;
    return e;
}

inline CensusRecord file_rec(InodeKey k, uint32_t pid, std::string comm, uint64_t file_id,
                             FileIoMode m, int32_t ctr, bool bit, uint32_t fd = 3) {
    CensusRecord r;
    r.kind = CensusKind::File;
    r.pid = pid;
    r.comm = std::move(comm);
    r.key = k;
    r.nodeid = k.ino + 1000;
    r.file_id = file_id;
    r.fh = file_id & 0xFFFF;
    r.iomode = m;
    r.iocachectr = ctr;
    r.cache_io_mode = bit;
    r.fd = fd;
    return r;
}

inline CensusRecord vma_rec(InodeKey k, uint32_t pid, std::string comm, uint64_t file_id,
                            int32_t ctr, bool bit) {
    CensusRecord r = file_rec(k, pid, std::move(comm), file_id, FileIoMode::Cached, ctr, bit);
    r.kind = CensusKind::Vma;
    r.shared_map = true;
    r.vm_start = 0x7f0000000000;
    r.vm_end = 0x7f0000100000;
    return r;
}

} // namespace fusescope::test
