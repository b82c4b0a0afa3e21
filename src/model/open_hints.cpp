// OpenHints: FUSE_OPEN/FUSE_CREATE hints resolved by a census of the opener (open_hints.h).
#include "fusescope/model/open_hints.h"

#include "fusescope/abi.h"

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <unordered_map>
#include <unordered_set>

namespace fusescope {

namespace {

constexpr size_t kMaxHints = 4096; // a flood of opens: the oldest hints go first
constexpr size_t kTries = std::size(OpenHints::kRetryDelaysNs);

bool is_create(const Event &sent) { return (sent.flags & evflag::Create) != 0; }

// What the syscall exit of this open would have reported (iomode_tracepoint.bpf.c).
Event open_event(const Event &sent, const CensusRecord &file) {
    Event ev;
    ev.type = EventType::Open;
    ev.ts_ns = sent.ts_ns; // the FUSE_OPEN: the io mode changes when it is answered
    ev.pid = file.pid;
    ev.tid = sent.tid;
    ev.comm = sent.comm; // the opening thread, as the syscall exit names it
    ev.key = file.key;
    ev.nodeid = file.nodeid;
    ev.file_id = file.file_id;
    ev.fh = file.fh;
    ev.iocachectr = file.iocachectr;
    ev.open_flags = file.open_flags;
    ev.iomode = file.iomode;
    ev.release_id = file.release_id;
    ev.exe = file.exe;
    ev.cgroup_id = sent.cgroup_id ? sent.cgroup_id : file.cgroup_id;
    if (file.writable)
        ev.flags |= evflag::WriteOpen;
    if (file.iomode == FileIoMode::Uncached)
        ev.flags |= evflag::Passthrough;
    return ev;
}

} // namespace

// A census' records, indexed for the hints of some processes: each hint looks at its own
// file's records (a process with thousands of open files has thousands of hints). A file's
// first mapping is looked up in every process's records (a child may hold it).
struct OpenHints::CensusIndex {
    struct Process {
        std::vector<size_t> records; // in census order
        std::unordered_map<uint64_t, std::vector<size_t>> by_nodeid;
    };
    std::unordered_map<uint32_t, Process> processes; // the indexed pids only
    std::unordered_map<uint64_t, size_t> vma_of;     // by file_id: its first mapping

    // @wanted(pid): whether that process's records are indexed
    template <typename Wanted>
    CensusIndex(const std::vector<CensusRecord> &records, Wanted wanted) {
        for (size_t i = 0; i < records.size(); ++i) {
            const CensusRecord &r = records[i];
            if (r.kind == CensusKind::Vma)
                vma_of.try_emplace(r.file_id, i);
            if (!wanted(r.pid))
                continue;
            Process &p = processes[r.pid];
            p.records.push_back(i);
            p.by_nodeid[r.nodeid].push_back(i);
        }
    }
};

void OpenHints::on_sent(const Event &sent) {
    if (hints_.size() >= kMaxHints) {
        hints_.pop_front();
        ++dropped_;
    }
    hints_.push_back(Hint{sent, sent.ts_ns + kRetryDelaysNs[0], 0});
}

bool OpenHints::may_be_about(const Hint &h, const CensusRecord &r) const {
    return r.pid == h.sent.pid && r.key.dev == h.sent.key.dev &&
           (is_create(h.sent) || r.nodeid == h.sent.nodeid);
}

const OpenHints::Known *OpenHints::known(const CensusRecord &r) const {
    auto it = known_files_.find(r.file_id);
    if (it == known_files_.end() || it->second.pid != r.pid ||
        it->second.release_id != r.release_id)
        return nullptr;
    return &it->second;
}

bool OpenHints::may_be_its_open(const Hint &h, const CensusRecord &r) const {
    if (!may_be_about(h, r))
        return false;
    const Known *k = known(r);
    // unknown, or first found by a census after this FUSE_OPEN and no hint's yet
    return !k || (!k->claimed && k->first_seen_ns > h.sent.ts_ns);
}

void OpenHints::on_full_census(const std::vector<CensusRecord> &records, uint64_t now_ns) {
    KnownFiles now;
    for (const auto &r : records) {
        if (now.contains(r.file_id))
            continue; // a file and its mappings
        if (const Known *k = known(r)) {
            now[r.file_id] = *k;
            continue;
        }
        const bool pending = std::any_of(hints_.begin(), hints_.end(),
                                         [&](const Hint &h) { return may_be_about(h, r); });
        if (!pending)
            now[r.file_id] = Known{r.pid, r.release_id, now_ns, false};
    }
    known_files_ = std::move(now); // closed files drop out
}

uint64_t OpenHints::due_ns(const Hint &h) const {
    auto it = last_census_ns_.find(h.sent.pid);
    return it == last_census_ns_.end() ? h.due_ns : std::max(h.due_ns, it->second + kCensusGapNs);
}

uint64_t OpenHints::next_due_ns() const {
    uint64_t next = UINT64_MAX;
    for (const auto &h : hints_)
        next = std::min(next, due_ns(h));
    return next;
}

std::vector<uint32_t> OpenHints::due(uint64_t now_ns) const {
    std::vector<uint32_t> pids;
    for (const auto &h : hints_)
        if (due_ns(h) <= now_ns && std::find(pids.begin(), pids.end(), h.sent.pid) == pids.end())
            pids.push_back(h.sent.pid);
    return pids;
}

std::vector<Event> OpenHints::resolve_from_full_census(const std::vector<CensusRecord> &records,
                                                       uint64_t now_ns) {
    std::vector<uint32_t> pids; // in hint order
    for (const auto &h : hints_)
        if (std::find(pids.begin(), pids.end(), h.sent.pid) == pids.end())
            pids.push_back(h.sent.pid);
    // indexed once for all of them: O(records), not O(pids x records)
    const std::unordered_set<uint32_t> wanted(pids.begin(), pids.end());
    const CensusIndex index(records, [&](uint32_t pid) { return wanted.contains(pid); });
    std::vector<Event> out;
    for (uint32_t pid : pids) {
        auto evs = resolve(pid, records, index, now_ns, /*scheduled=*/false);
        out.insert(out.end(), evs.begin(), evs.end());
    }
    return out;
}

std::vector<Event> OpenHints::resolve(uint32_t pid, const std::vector<CensusRecord> &records,
                                      uint64_t now_ns, bool scheduled) {
    if (scheduled) {
        std::erase_if(last_census_ns_,
                      [&](const auto &e) { return e.second + kCensusGapNs <= now_ns; });
        last_census_ns_[pid] = now_ns;
    }
    return resolve(pid, records, CensusIndex(records, [&](uint32_t p) { return p == pid; }), now_ns,
                   scheduled);
}

std::vector<Event> OpenHints::resolve(uint32_t pid, const std::vector<CensusRecord> &records,
                                      const CensusIndex &index, uint64_t now_ns, bool scheduled) {
    static const std::vector<size_t> kNone;
    static const CensusIndex::Process kNoRecords;
    const auto proc = index.processes.find(pid);
    const CensusIndex::Process &mine = proc == index.processes.end() ? kNoRecords : proc->second;
    const auto &vma_of = index.vma_of;
    std::vector<Event> out;
    // FUSE_OPEN hints name their file; a FUSE_CREATE's takes what is left of the process's
    // new files on that mount, so the named ones go first.
    for (bool creates : {false, true}) {
        for (auto it = hints_.begin(); it != hints_.end();) {
            Hint &h = *it;
            if (h.sent.pid != pid || (scheduled && h.due_ns > now_ns) ||
                is_create(h.sent) != creates) {
                ++it;
                continue;
            }
            // the open file, else a shared mapping of it (vmtouch closes its fd once mapped)
            const auto &candidates = creates ? mine.records : [&]() -> const std::vector<size_t> & {
                auto c = mine.by_nodeid.find(h.sent.nodeid);
                return c == mine.by_nodeid.end() ? kNone : c->second;
            }();
            const CensusRecord *file = nullptr;
            for (bool any_kind : {false, true}) {
                for (size_t i : candidates) {
                    const CensusRecord &r = records[i];
                    if ((any_kind || r.kind == CensusKind::File) && may_be_its_open(h, r)) {
                        file = &r;
                        break;
                    }
                }
                if (file)
                    break;
            }
            const bool cached = file && file->iomode == FileIoMode::Cached;
            // A read-only direct-IO open changes nothing (the syscall exit does not report it
            // either) unless it is mapped shared later: ask again until the last try.
            const bool plain =
                file && !cached && !file->writable && file->iomode != FileIoMode::Uncached;
            if (!file || plain) {
                h.seen = h.seen || plain;
                if (!scheduled) { // not its census: it keeps its tries
                    ++it;
                    continue;
                }
                if (++h.tries < kTries) {
                    h.due_ns = h.sent.ts_ns + kRetryDelaysNs[h.tries];
                    ++it;
                } else {
                    if (!h.seen)
                        ++dropped_;
                    it = hints_.erase(it);
                }
                continue;
            }
            known_files_[file->file_id] = Known{file->pid, file->release_id, now_ns, true};
            Event open = open_event(h.sent, *file);
            // A direct-IO open is cached only through a shared mapping (fuse_file_mmap):
            // the mapping holds it, since some time between the open and this census.
            const bool by_mmap = cached && (file->open_flags & FS_FOPEN_DIRECT_IO);
            const uint32_t entered = file->iocachectr == 1 ? evflag::EnteredCache : 0;
            if (cached && !by_mmap)
                open.flags |= evflag::Holder | entered;
            out.push_back(open);
            auto vma = vma_of.find(file->file_id);
            if (by_mmap || vma != vma_of.end()) {
                Event map = open;
                map.type = EventType::Mmap;
                map.ts_ns = now_ns; // no later than this census
                map.flags = evflag::SharedMap | (by_mmap ? evflag::Holder | entered : 0);
                if (vma != vma_of.end()) {
                    const CensusRecord &m = records[vma->second];
                    map.offset = m.vm_start; // where and how long, as the trampoline reports it
                    map.bytes = m.vm_end - m.vm_start;
                    if (m.writable_map)
                        map.flags |= evflag::WritableMap;
                }
                out.push_back(map);
            }
            ++resolved_;
            it = hints_.erase(it);
        }
    }
    return out;
}

} // namespace fusescope
