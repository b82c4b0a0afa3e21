// The one Backend implementation, instantiated for each skeleton. The two
// BPF objects share maps, configuration and census programs (bpf/common.bpf.h,
// census.bpf.c, contention.bpf.c) and the write accounting core
// (bpf/write_core.h); they differ in the hooks, which the HookPlan selects by
// program name.
#include "fusescope/backend/backend.h"

#include "decode.h"
#include "dirty_keys.h"
#include "entry_sums.h"
#include "skeleton.h"
#include "write_cache.h"

#include "fusescope_tracepoint.skel.h"
#include "fusescope_trampoline.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sys/mman.h>
#include <unistd.h>

namespace fusescope {
namespace {

bool g_verbose = false;
std::string g_last_libbpf_error;

int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    if (g_verbose)
        vfprintf(stderr, fmt, copy); // verifier logs are long: no truncation here
    va_end(copy);
    if (level == LIBBPF_WARN) {
        char buf[512];
        vsnprintf(buf, sizeof(buf), fmt, ap);
        g_last_libbpf_error = buf;
    }
    return 0;
}

// kernel.bpf_stats_enabled (it shows only the sysctl's own setting, not descriptors).
bool bpf_stats_sysctl_on() {
    std::ifstream f("/proc/sys/kernel/bpf_stats_enabled");
    int v = 0;
    return f >> v && v == 1;
}

std::string errno_text(int err) {
    err = err < 0 ? -err : err;
    return std::string(strerrorname_np(err) ? strerrorname_np(err) : "?") + " (" + strerror(err) +
           ")";
}

template <typename Skel> struct SkelTraits;
template <> struct SkelTraits<fusescope_trampoline> {
    static constexpr BackendKind kind = BackendKind::Trampoline;
    static fusescope_trampoline *open() { return fusescope_trampoline__open(); }
    static int load(fusescope_trampoline *s) { return fusescope_trampoline__load(s); }
    static void destroy(fusescope_trampoline *s) { fusescope_trampoline__destroy(s); }
};
template <> struct SkelTraits<fusescope_tracepoint> {
    static constexpr BackendKind kind = BackendKind::Tracepoint;
    static fusescope_tracepoint *open() { return fusescope_tracepoint__open(); }
    static int load(fusescope_tracepoint *s) { return fusescope_tracepoint__load(s); }
    static void destroy(fusescope_tracepoint *s) { fusescope_tracepoint__destroy(s); }
};

template <typename Skel> class BpfBackend final : public Backend {
    using T = SkelTraits<Skel>;

  public:
    bool start(const HookPlan &plan, const BackendOptions &o, std::string *error) {
        if (o.bpf_stats && (stats_fd_ = bpf_enable_stats(BPF_STATS_RUN_TIME)) < 0) {
            *error = "--bpf-stats: the kernel refused to account BPF run time "
                     "(BPF_ENABLE_STATS, needs CAP_SYS_ADMIN and Linux 5.8): " +
                     errno_text(errno);
            return false;
        }
        skel_ = SkeletonPtr<Skel, T::destroy>(T::open());
        if (!skel_) {
            *error = "cannot open the BPF object: " + errno_text(errno);
            return false;
        }
        auto *ro = skel_->rodata;
        ro->cfg_filter_tgid = o.filter_tgid;
        ro->cfg_filter_dev = o.filter_dev;
        ro->cfg_emit_writes = o.emit_writes;
        ro->cfg_emit_all_opens = o.emit_all_opens;
        ro->cfg_time_drains = T::kind == BackendKind::Tracepoint && plan.has(Role::DrainWait);
        // no syscall exit sees opens: the opener's FUSE_OPEN names whom to take a census of
        ro->cfg_open_hints = T::kind == BackendKind::Tracepoint && plan.has(Role::Open) &&
                             !plan.loads("fs_sys_exit_openat");
        if (plan.cache_io_mode_bit >= 0)
            ro->cfg_cache_io_mode_bit = static_cast<__u8>(plan.cache_io_mode_bit);
        ro->cfg_time_requests = plan.loads("fs_request_end");
        ncpus_ = libbpf_num_possible_cpus();
        if constexpr (T::kind == BackendKind::Tracepoint) {
            static_assert(FS_REQ_SLOTS == kRequestSlotsDefault, "the BPF object's default");
            // untimed, the slots are never looked at: one keeps the map small
            const uint32_t n = ro->cfg_time_requests ? o.request_slots : 1;
            if (!request_slots_valid(n) ||
                bpf_map__set_max_entries(skel_->maps.req_slots, n) != 0) {
                *error = "cannot size the request slots to " + std::to_string(n) +
                         ": a power of two from 1 to " + std::to_string(kRequestSlotsMax) +
                         " is needed";
                return false;
            }
            ro->cfg_req_slot_mask = n - 1;
            req_slots_ = ro->cfg_time_requests ? n : 0;
            // on only with a slot per CPU that read_counters() reads (else counts would hide there)
            const bool on =
                o.write_cache && !ro->cfg_time_requests && ncpus_ > 0 &&
                // PREEMPT_RT runs tracepoint programs preemptible: two tasks could
                // change one CPU's slot at once
                plan.loads("fs_request_send") && !plan.preempt_rt &&
                bpf_map__set_max_entries(skel_->maps.write_cache, static_cast<__u32>(ncpus_)) == 0;
            ro->cfg_write_cache = on;
            wcache_slots_ = on ? static_cast<size_t>(ncpus_) : 0;
        }

        bpf_object *obj = skel_->obj;
        bpf_program *prog;
        bpf_object__for_each_program(prog, obj) {
            bpf_program__set_autoload(prog, plan.loads(bpf_program__name(prog)));
        }
        for (const ProgramChoice &c : plan.programs) {
            prog = bpf_object__find_program_by_name(obj, c.program.c_str());
            if (!prog) {
                *error = "internal: BPF program " + c.program + " missing from the object";
                return false;
            }
            if (!c.target.empty()) {
                int err = bpf_program__set_attach_target(prog, 0, c.target.c_str());
                if (err) {
                    *error =
                        "cannot target " + c.program + " at " + c.target + ": " + errno_text(err);
                    return false;
                }
            }
        }
        int err = T::load(skel_.get());
        if (err) {
            *error = "loading the " + std::string(to_string(T::kind)) +
                     " BPF programs failed: " + errno_text(err) +
                     (g_last_libbpf_error.empty() ? "" : "; libbpf: " + g_last_libbpf_error) +
                     " (run `fusescope -v doctor` for the verifier log)";
            while (!error->empty() && error->back() == '\n')
                error->pop_back();
            return false;
        }
        for (const ProgramChoice &c : plan.programs) {
            prog = bpf_object__find_program_by_name(obj, c.program.c_str());
            if (bpf_program__type(prog) == BPF_PROG_TYPE_TRACING &&
                bpf_program__expected_attach_type(prog) == BPF_TRACE_ITER)
                continue; // census iterators are attached per run
            bpf_link *link = bpf_program__attach(prog);
            if (!link) {
                *error = "attaching " + c.program + " failed: " + errno_text(errno);
                return false;
            }
            links_.emplace_back(link);
            attached_.push_back({c.program, c.target});
            prog_fds_.push_back(bpf_program__fd(prog));
        }
        ring_ =
            ring_buffer__new(bpf_map__fd(skel_->maps.events), &BpfBackend::on_ring, this, nullptr);
        if (!ring_) {
            *error = "cannot open the event ring buffer: " + errno_text(errno);
            return false;
        }
        dirty_ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.dirty_keys),
                                       &BpfBackend::on_dirty_key, this, nullptr);
        if (!dirty_ring_) {
            *error = "cannot open the changed-keys ring buffer: " + errno_text(errno);
            return false;
        }
        census_files_ = skel_->progs.fs_census_files;
        census_vmas_ = skel_->progs.fs_census_vmas;
        if constexpr (T::kind == BackendKind::Tracepoint) {
            if (wcache_slots_ && !map_write_cache(skel_->maps.write_cache, error))
                return false;
        }
        return true;
    }

    ~BpfBackend() override {
        if (wcache_)
            munmap(const_cast<fs_write_cache *>(wcache_), wcache_bytes_);
        if (ring_)
            ring_buffer__free(ring_);
        if (dirty_ring_)
            ring_buffer__free(dirty_ring_);
        links_.clear(); // before the skeleton: links first, then programs
        if (stats_fd_ >= 0)
            close(stats_fd_);
    }

    BackendKind kind() const override { return T::kind; }
    const std::vector<AttachedProgram> &attached() const override { return attached_; }
    size_t write_cache_slots() const override { return wcache_ ? wcache_slots_ : 0; }
    size_t request_slots() const override { return req_slots_; }

    int poll(int timeout_ms, const std::function<void(const Event &)> &on_event) override {
        cb_ = &on_event;
        int n = ring_buffer__poll(ring_, timeout_ms);
        cb_ = nullptr;
        if (n == -EINTR)
            return 0;
        return n;
    }

    // Only entries that changed since the last read are looked at: the BPF side
    // posts their keys (DirtyKeys), and EntrySums remembers a checksum of each
    // value. A walk of the whole map (one batched copy and a hash per entry) is
    // left for when the keys cannot tell (dirty_keys.h).
    const CountersDelta &read_counters(uint64_t now) override {
        CountersDelta &out = counters_;
        // From here on a change posts its key for the next read (fs_stats_mark).
        __atomic_fetch_add(&skel_->data->fs_read_gen, 1, __ATOMIC_SEQ_CST);
        if (ring_buffer__consume(dirty_ring_) < 0)
            lost_locally_++; // cannot tell what was posted: walk
        const uint64_t lost =
            __atomic_load_n(&skel_->bss->fs_dirty_lost, __ATOMIC_RELAXED) + lost_locally_;
        uint64_t slots_sum = 0;
        for (size_t i = 0; wcache_ && i < wcache_slots_; ++i) // a slot hit posts no key
            slots_sum += value_checksum<sizeof(fs_write_cache)>(&wcache_[i]);
        out.changed.clear();
        out.gone.clear();
        if (dirty_.quiet(now, lost) && slots_sum == last_slots_sum_)
            return out;
        last_slots_sum_ = slots_sum;
        // Reused between reads: fresh buffers of this size come from mmap, and their
        // page faults were most of the exporter's time while files were being created.
        // A buffer far larger than the last reads needed (start-up) is given back.
        if (out.changed.capacity() > 4 * std::max<size_t>(out.changed.size(), 256))
            std::vector<InodeCounters>().swap(out.changed);
        const int fd = bpf_map__fd(skel_->maps.inode_stats);
        auto report = [&](const fs_inode_key &k, const fs_inode_stats &st) {
            if (sums_.changed(key_of(k), value_checksum<sizeof(st)>(&st)))
                out.changed.push_back(decode_counters(k, st));
        };
        auto read_slot = [this](size_t i) { return copy_wcache_slot(&wcache_[i]); };
        if (wcache_) {
            wcache_merge_.begin(wcache_slots_, read_slot);
            wcache_merge_.held_keys(held_keys_);
        }
        const bool walk =
            dirty_.plan(now, lost, sums_.size(), bpf_map__max_entries(skel_->maps.inode_stats),
                        held_keys_, dirty_list_);
        auto visit = [&](const fs_inode_key &k, const fs_inode_stats &st) {
            if (!wcache_ || !wcache_merge_.hold(k, st))
                report(k, st);
        };
        if (walk) {
            sums_.begin();
            if (!batch_ok_ || !read_batched(fd, visit))
                read_one_by_one(fd, visit);
        } else {
            for (const fs_inode_key &k : dirty_list_)
                if (bpf_map_lookup_elem(fd, &k, &one_) == 0) // else evicted: the next walk says
                    visit(k, one_);
        }
        if (wcache_) {
            auto lookup = [fd](const fs_inode_key &k, fs_inode_stats &st) {
                return bpf_map_lookup_elem(fd, &k, &st) == 0;
            };
            auto keep = [this](const fs_inode_key &k) {
                sums_.keep(key_of(k));
                dirty_.again(k); // left unsettled: the next read must look again
            };
            wcache_merge_.finish(wcache_slots_, read_slot, lookup, report, keep);
        }
        if (walk)
            sums_.end(out.gone);
        return out;
    }

    Health read_health() override {
        Health h;
        int fd = bpf_map__fd(skel_->maps.counters);
        auto sum = [&](__u32 idx) { return sum_percpu(fd, idx); };
#define FS_X(c, field, doc) h.field = sum(FS_CNT_##c);
        FS_COUNTER_TABLE(FS_X)
#undef FS_X
        h.events_received = events_received_;
        auto account = [&h](const std::string &name, int prog_fd) {
            struct bpf_prog_info info {};
            __u32 len = sizeof(info);
            if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0)
                return;
            h.prog_misses += info.recursion_misses;
            h.programs.push_back({name, info.run_time_ns, info.run_cnt});
        };
        for (size_t i = 0; i < prog_fds_.size(); ++i)
            account(attached_[i].program, prog_fds_[i]);
        for (bpf_program *p : {census_files_, census_vmas_})
            account(bpf_program__name(p), bpf_program__fd(p));
        h.bpf_stats_enabled = stats_fd_ >= 0 || bpf_stats_sysctl_on();
        h.census_runs = census_runs_;
        return h;
    }

    std::vector<CensusRecord> census(std::string *error, uint32_t pid) override {
        std::vector<CensusRecord> out;
        union bpf_iter_link_info linfo = {};
        linfo.task.pid = pid; // 0: every task; else that process's threads (Linux 6.1+)
        LIBBPF_OPTS(bpf_iter_attach_opts, iter_opts, .link_info = &linfo,
                    .link_info_len = sizeof(linfo));
        for (bpf_program *p : {census_files_, census_vmas_}) {
            LinkPtr link(bpf_program__attach_iter(p, pid ? &iter_opts : nullptr));
            if (!link.get()) {
                *error = std::string("census iterator ") + bpf_program__name(p) +
                         " failed: " + errno_text(errno);
                return out;
            }
            int fd = bpf_iter_create(bpf_link__fd(link.get()));
            if (fd < 0) {
                *error = "census iterator create failed: " + errno_text(errno);
                return out;
            }
            std::string buf;
            char chunk[8192];
            ssize_t n;
            while ((n = ::read(fd, chunk, sizeof(chunk))) > 0)
                buf.append(chunk, static_cast<size_t>(n));
            ::close(fd);
            for (size_t off = 0; off + sizeof(fs_census_rec) <= buf.size();
                 off += sizeof(fs_census_rec)) {
                fs_census_rec r;
                std::memcpy(&r, buf.data() + off, sizeof(r));
                out.push_back(decode_census(r));
            }
        }
        census_runs_++; // of the machine, or of one process (an open hint's)
        return out;
    }

    std::optional<KernelName> file_name(const InodeKey &key) override {
        return lookup_name(skel_->maps.file_names, key);
    }
    std::optional<KernelName> exe_name(const InodeKey &exe) override {
        return lookup_name(skel_->maps.exe_names, exe);
    }

  private:
    // The sum over CPUs of a per-CPU array's u64 at @idx.
    uint64_t sum_percpu(int fd, __u32 idx) {
        percpu_vals_.resize(static_cast<size_t>(ncpus_ > 0 ? ncpus_ : 1));
        uint64_t s = 0;
        if (bpf_map_lookup_elem(fd, &idx, percpu_vals_.data()) == 0)
            for (__u64 v : percpu_vals_)
                s += v;
        return s;
    }

    // The write cache array, mapped read-only: its slots are read without a syscall.
    bool map_write_cache(bpf_map *map, std::string *error) {
        const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        wcache_bytes_ = (wcache_slots_ * sizeof(fs_write_cache) + page - 1) / page * page;
        void *p = mmap(nullptr, wcache_bytes_, PROT_READ, MAP_SHARED, bpf_map__fd(map), 0);
        if (p == MAP_FAILED) {
            *error = "cannot map the write cache array: " + errno_text(errno);
            return false;
        }
        wcache_ = static_cast<const fs_write_cache *>(p);
        return true;
    }

    // BPF_MAP_LOOKUP_BATCH (LRU hash: kernel 5.6+); false if the kernel refuses
    // it, which the caller answers with the per-entry walk.
    template <typename Visit> bool read_batched(int fd, Visit &visit) {
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        __u32 in = 0, out = 0;
        bool first = true;
        for (;;) {
            __u32 count = static_cast<__u32>(batch_keys_.size());
            if (count == 0) {
                batch_keys_.resize(512);
                batch_vals_.resize(512);
                continue;
            }
            int err = bpf_map_lookup_batch(fd, first ? nullptr : &in, &out, batch_keys_.data(),
                                           batch_vals_.data(), &count, &opts);
            if (err < 0)
                err = -errno;
            count = std::min<__u32>(count, static_cast<__u32>(batch_keys_.size()));
            constexpr __u32 kAhead = 8; // the checksum lookups' cache misses overlap
            for (__u32 i = 0; i < count; ++i) {
                if (i + kAhead < count)
                    sums_.prefetch(key_of(batch_keys_[i + kAhead]));
                visit(batch_keys_[i], batch_vals_[i]);
            }
            if (err == -ENOENT)
                return true; // the end of the map
            if (err == -ENOSPC && count == 0 && batch_keys_.size() < (1u << 16)) {
                // a hash bucket holds more entries than fit: retry it with room
                batch_keys_.resize(batch_keys_.size() * 2);
                batch_vals_.resize(batch_vals_.size() * 2);
                continue;
            }
            if (err < 0) {
                constexpr int kENOTSUPP = 524; // kernel-internal, what old kernels return
                if (err == -EINVAL || err == -EOPNOTSUPP || err == -kENOTSUPP)
                    batch_ok_ = false; // not supported here: stop trying
                return false;
            }
            in = out;
            first = false;
        }
    }

    template <typename Visit> void read_one_by_one(int fd, Visit &visit) {
        struct fs_inode_key key {
        }, next{};
        struct fs_inode_stats st {};
        bool first = true;
        while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
            first = false;
            if (bpf_map_lookup_elem(fd, &next, &st) == 0)
                visit(next, st);
            key = next;
        }
    }

    static int on_ring(void *ctx, void *data, size_t size) {
        auto *self = static_cast<BpfBackend *>(ctx);
        if (size < sizeof(fs_event) || !self->cb_)
            return 0;
        fs_event e;
        std::memcpy(&e, data, sizeof(e));
        self->events_received_++;
        (*self->cb_)(decode_event(e));
        return 0;
    }

    static int on_dirty_key(void *ctx, void *data, size_t size) {
        fs_inode_key k;
        if (size < sizeof(k))
            return 0;
        std::memcpy(&k, data, sizeof(k));
        static_cast<BpfBackend *>(ctx)->dirty_.posted(k);
        return 0;
    }

    SkeletonPtr<Skel, T::destroy> skel_;
    std::vector<LinkPtr> links_;
    std::vector<AttachedProgram> attached_;
    std::vector<int> prog_fds_; // owned by the skeleton
    int stats_fd_ = -1;         // BPF_ENABLE_STATS descriptor (BackendOptions::bpf_stats)
    ring_buffer *ring_ = nullptr;
    bpf_program *census_files_ = nullptr;
    bpf_program *census_vmas_ = nullptr;
    const std::function<void(const Event &)> *cb_ = nullptr;
    uint64_t events_received_ = 0;
    uint64_t census_runs_ = 0;
    int ncpus_ = 1;
    // Counter reads: checksum of each entry's value at the last read, and the
    // reused batch buffers (512 entries, ~250 KB).
    EntrySums sums_;
    CountersDelta counters_; // what read_counters() returns, valid until the next call
    bool batch_ok_ = true;
    static std::optional<KernelName> lookup_name(bpf_map *map, const InodeKey &key) {
        const fs_inode_key k{key.ino, key.dev, 0};
        fs_name n{};
        if (bpf_map_lookup_elem(bpf_map__fd(map), &k, &n) != 0)
            return std::nullopt;
        return decode_name(n);
    }

    // Which entries the next read looks at: the keys drained from dirty_ring_, and
    // when to walk the whole map instead.
    DirtyKeys dirty_;
    ring_buffer *dirty_ring_ = nullptr;
    uint64_t lost_locally_ = 0; // drains that failed
    std::vector<fs_inode_key> dirty_list_, held_keys_;
    fs_inode_stats one_{};
    uint64_t last_slots_sum_ = 0;
    std::vector<__u64> percpu_vals_;
    // Per-CPU write cache (tracepoint backend): mapped slots, one per possible CPU.
    const fs_write_cache *wcache_ = nullptr;
    size_t wcache_slots_ = 0;
    size_t req_slots_ = 0; // request slots while FUSE writes are timed, else 0
    size_t wcache_bytes_ = 0;
    WriteCacheMerge wcache_merge_;
    std::vector<fs_inode_key> batch_keys_;
    std::vector<fs_inode_stats> batch_vals_;
};

template <typename Skel>
std::unique_ptr<Backend> make(const HookPlan &plan, const BackendOptions &opts,
                              std::string *error) {
    auto b = std::make_unique<BpfBackend<Skel>>();
    if (!b->start(plan, opts, error))
        return nullptr;
    return b;
}

} // namespace

std::unique_ptr<Backend> Backend::create(const HookPlan &plan, const BackendOptions &opts,
                                         std::string *error) {
    g_verbose = opts.verbose;
    g_last_libbpf_error.clear();
    libbpf_set_print(libbpf_print);
    if (plan.backend == BackendKind::Trampoline)
        return make<fusescope_trampoline>(plan, opts, error);
    return make<fusescope_tracepoint>(plan, opts, error);
}

} // namespace fusescope
