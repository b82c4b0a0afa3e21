// bpf/write_core.h compiled for the host: the very source both BPF objects
// run, with what its includer must provide (see the top of write_core.h)
// backed by plain memory, and FS_CORE_STEP() a point where a test may switch
// to another simulated CPU or to the counter reader (HostCpus).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "fusescope/abi.h"

// Small, so that the tests reach the periodic flush; the protocol does not depend on it.
#undef FS_WCACHE_FLUSH_WRITES
#define FS_WCACHE_FLUSH_WRITES 5

namespace host_core {

struct KeyLess {
    bool operator()(const fs_inode_key &a, const fs_inode_key &b) const {
        return a.dev != b.dev ? a.dev < b.dev : a.ino < b.ino;
    }
};

// The kernel state the core reads and writes besides its arguments.
struct Kernel {
    std::map<fs_inode_key, fs_inode_stats, KeyLess> map; // node addresses stay put
    uint64_t waits_epoch = 0;
    uint64_t clock_ns = 1;
    std::vector<fs_inode_key> flips; // fs_core_mode_flipped calls
    // fs_stats_mark (bpf/common.bpf.h): the reader's generation, and the keys posted
    uint64_t read_gen = 1;
    std::vector<fs_inode_key> posted;
};
inline Kernel *g_kernel = nullptr;

// Simulated CPUs, one thread each, of which exactly one (or the caller) runs at
// a time: step(cpu) lets that CPU run until its next FS_CORE_STEP() or the end
// of its job. Deterministic, for a given sequence of steps.
class HostCpus {
  public:
    explicit HostCpus(size_t n) : cpus_(n) {
        for (size_t i = 0; i < n; ++i)
            cpus_[i].th = std::thread([this, i] { loop(cpus_[i]); });
    }
    ~HostCpus() {
        for (Cpu &c : cpus_) {
            std::unique_lock lk(mu_);
            c.quit = true;
            c.cv.notify_all();
        }
        for (Cpu &c : cpus_)
            c.th.join();
    }
    size_t size() const { return cpus_.size(); }

    // Queue @job on @cpu (it runs over later step() calls).
    void queue(size_t cpu, std::function<void()> job) {
        std::unique_lock lk(mu_);
        cpus_[cpu].jobs.push_back(std::move(job));
    }
    // Run @cpu to its next step; false if it had nothing to do.
    bool step(size_t cpu) {
        Cpu &c = cpus_[cpu];
        std::unique_lock lk(mu_);
        if (!c.busy && c.jobs.empty())
            return false;
        c.running = true;
        c.cv.notify_all();
        c.cv.wait(lk, [&] { return !c.running; });
        return true;
    }
    // The number of @cpu's job in progress (counted from 1), or 0 if it has none.
    uint64_t job_in_progress(size_t cpu) {
        std::unique_lock lk(mu_);
        return cpus_[cpu].busy ? cpus_[cpu].started : 0;
    }
    // Runs @cpu's job number @job to its end, if it is still in progress.
    void finish_job(size_t cpu, uint64_t job) {
        while (job && job_in_progress(cpu) == job)
            step(cpu);
    }
    bool busy() {
        std::unique_lock lk(mu_);
        for (const Cpu &c : cpus_)
            if (c.busy || !c.jobs.empty())
                return true;
        return false;
    }
    // Called by FS_CORE_STEP() on a CPU thread: give control back and wait.
    static void yield_here() {
        if (!tls_cpu_)
            return; // not on a simulated CPU (a test calling the core directly)
        HostCpus *self = tls_cpus_;
        Cpu &c = *tls_cpu_;
        std::unique_lock lk(self->mu_);
        c.running = false;
        c.cv.notify_all();
        c.cv.wait(lk, [&] { return c.running || c.quit; });
    }

  private:
    struct Cpu {
        std::condition_variable cv;
        std::deque<std::function<void()>> jobs;
        bool running = false, busy = false, quit = false;
        uint64_t started = 0; // jobs begun
        std::thread th;
    };
    void loop(Cpu &c) {
        tls_cpu_ = &c;
        tls_cpus_ = this;
        std::unique_lock lk(mu_);
        for (;;) {
            c.cv.wait(lk, [&] { return c.running || c.quit; });
            if (c.quit)
                return;
            if (c.jobs.empty()) {
                c.running = false;
                c.cv.notify_all();
                continue;
            }
            auto job = std::move(c.jobs.front());
            c.jobs.pop_front();
            c.busy = true;
            ++c.started;
            lk.unlock();
            job();
            lk.lock();
            c.busy = false;
            c.running = false;
            c.cv.notify_all();
        }
    }
    std::mutex mu_;
    std::deque<Cpu> cpus_;
    static inline thread_local Cpu *tls_cpu_ = nullptr;
    static inline thread_local HostCpus *tls_cpus_ = nullptr;
};

} // namespace host_core

// ---- what write_core.h asks of its includer ---------------------------------

#define FS_CORE_STEP() host_core::HostCpus::yield_here()

static inline struct fs_inode_stats *fs_core_stats_get(const struct fs_inode_key *key,
                                                       __u64 nodeid) {
    host_core::Kernel &k = *host_core::g_kernel;
    auto [it, fresh] = k.map.try_emplace(*key);
    if (fresh)
        it->second.nodeid = nodeid;
    if (it->second.dirty_gen != k.read_gen) { // fs_stats_mark: before the caller's change
        k.posted.push_back(*key);
        it->second.dirty_gen = k.read_gen;
    }
    return &it->second;
}
static inline __u64 fs_core_now_ns(void) { return host_core::g_kernel->clock_ns++; }
static inline __u64 fs_core_waits_epoch(void) { return host_core::g_kernel->waits_epoch; }
static inline void fs_core_mode_flipped(const struct fs_inode_key *key, __u64, __s32, __u32) {
    host_core::g_kernel->flips.push_back(*key);
}

#include "../../bpf/write_core.h"
