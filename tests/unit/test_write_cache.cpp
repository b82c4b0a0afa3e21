// The per-CPU write cache's share of a counter read (src/backend/write_cache.h),
// against the kernel side as the tracepoint backend runs it: bpf/write_core.h
// compiled for the host (write_core_host.h), with simulated CPUs that each run
// their writes one FS_CORE_STEP() at a time (a hit counts in the CPU's slot; a
// miss counts in the map and takes the slot over, moving the old inode's counts
// one counter at a time inside an odd seq), interleaved with every step the
// reader takes.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

#include "write_core_host.h"

#include "../../src/backend/dirty_keys.h"
#include "../../src/backend/entry_sums.h"
#include "../../src/backend/write_cache.h"

using namespace fusescope;
using host_core::KeyLess;

namespace {

constexpr uint32_t kDev = 42;

fs_inode_key key_of(uint64_t ino) { return fs_inode_key{ino, kDev, 0}; }

struct Totals {
    uint64_t writes = 0; // over every reason
    uint64_t bytes = 0;
    uint64_t waits = 0; // lock waits: counted in the entry, never in a slot
    bool operator==(const Totals &o) const {
        return writes == o.writes && bytes == o.bytes && waits == o.waits;
    }
};
Totals totals_of(const fs_inode_stats &st) {
    Totals t;
    t.waits = st.contentions[FS_LOCK_EXCLUSIVE];
    for (uint64_t w : st.writes)
        t.writes += w;
    for (uint64_t b : st.write_bytes)
        t.bytes += b;
    return t;
}

// The kernel side: the core's map and epoch, one write-cache slot per CPU, and the
// simulated CPUs that run fs_count_dio_request() + fs_wcache_take() as the tracepoint
// backend's write path does.
class SimKernel {
  public:
    explicit SimKernel(size_t cpus) : slots(cpus), cpus_(cpus) { host_core::g_kernel = &k_; }
    ~SimKernel() {
        drain();
        host_core::g_kernel = nullptr;
    }

    std::map<fs_inode_key, fs_inode_stats, KeyLess> &map = k_.map;
    std::vector<fs_write_cache> slots;
    std::map<fs_inode_key, Totals, KeyLess> truth; // every write ever issued

    // Queue one write on @cpu; its effect on `truth` is immediate (it happened).
    // @may_hit false: a lock wait finished somewhere first (the epoch moves), which
    // sends every CPU's next write to the map.
    void write(size_t cpu, uint64_t ino, int reason, uint64_t bytes, bool may_hit) {
        const fs_inode_key k = key_of(ino);
        truth[k].writes++;
        truth[k].bytes += bytes;
        fs_write_cache *c = &slots[cpu];
        cpus_.queue(cpu, [this, c, k, reason, bytes, may_hit] {
            if (!may_hit)
                k_.waits_epoch++;
            __u64 epoch = 0;
            fs_inode_stats *st = fs_count_dio_request(c, &k, k.ino, static_cast<__u8>(reason), true,
                                                      bytes, 0, 0, &epoch);
            if (st)
                fs_wcache_take(c, &k, st, epoch, 0, 0);
        });
    }

    // Queue one lock wait on @cpu, counted as fs_contention_end does: the entry
    // (which posts its key) first, the count a step later.
    void wait(size_t cpu, uint64_t ino) {
        const fs_inode_key k = key_of(ino);
        truth[k].waits++;
        cpus_.queue(cpu, [k] {
            fs_inode_stats *st = fs_core_stats_get(&k, k.ino);
            FS_CORE_STEP();
            st->contentions[FS_LOCK_EXCLUSIVE] += 1;
        });
    }

    bool step(size_t cpu) { return cpus_.step(cpu); }
    std::vector<uint64_t> jobs_in_progress() {
        std::vector<uint64_t> jobs(cpus_.size());
        for (size_t c = 0; c < jobs.size(); ++c)
            jobs[c] = cpus_.job_in_progress(c);
        return jobs;
    }
    void finish_jobs(const std::vector<uint64_t> &jobs) {
        for (size_t c = 0; c < jobs.size(); ++c)
            cpus_.finish_job(c, jobs[c]);
    }
    host_core::Kernel &kernel() { return k_; }
    bool busy() { return cpus_.busy(); }
    void drain() {
        while (cpus_.busy())
            for (size_t c = 0; c < cpus_.size(); ++c)
                cpus_.step(c);
    }

  private:
    host_core::Kernel k_;
    host_core::HostCpus cpus_;
};

// The reader, as BpfBackend::read_counters drives DirtyKeys and WriteCacheMerge,
// with kernel steps run between each of its own. @by_keys false: every read
// walks the whole map (as when the keys cannot tell).
class SimReader {
  public:
    SimReader(SimKernel &k, std::mt19937 &rng, bool by_keys = false)
        : k_(k), rng_(rng), by_keys_(by_keys) {}

    std::map<fs_inode_key, Totals, KeyLess> reported; // the last value reported per inode

    void read() {
        // By keys: a program in flight when one read began has ended when the next
        // begins (what the keys' three reads rely on); it may still run during the
        // first. A walk of every entry needs no such thing.
        if (by_keys_)
            k_.finish_jobs(in_flight_at_start_);
        host_core::Kernel &kern = k_.kernel();
        ++kern.read_gen;
        in_flight_at_start_ = k_.jobs_in_progress();
        interleave();
        for (const fs_inode_key &key : kern.posted)
            dirty_.posted(key);
        kern.posted.clear();
        const size_t n = k_.slots.size();
        uint64_t slots_sum = 0;
        for (const fs_write_cache &c : k_.slots)
            slots_sum += value_checksum<sizeof(c)>(&c);
        now_ns_ += 1'000'000'000;
        if (by_keys_ && dirty_.quiet(now_ns_, 0) && slots_sum == last_slots_sum_) {
            ++quiet_reads;
            return;
        }
        last_slots_sum_ = slots_sum;
        auto read_slot = [&](size_t i) {
            interleave();
            const fs_write_cache &c = k_.slots[i];
            WcacheSlot s;
            if (c.seq & 1) {
                if (rng_() % 2)
                    return s;               // gave up spinning: not valid
                while (k_.slots[i].seq & 1) // spun until the move ended
                    if (!k_.step(i)) {
                        ADD_FAILURE() << "slot " << i << " left odd with nothing running";
                        break;
                    }
            }
            s.seq = c.seq;
            s.valid = true;
            s.key = c.key;
            std::copy(std::begin(c.writes), std::end(c.writes), s.writes);
            std::copy(std::begin(c.write_bytes), std::end(c.write_bytes), s.write_bytes);
            return s;
        };
        merge_.begin(n, read_slot);
        std::vector<fs_inode_key> held, keys;
        merge_.held_keys(held);
        const bool walk =
            !by_keys_ || dirty_.plan(now_ns_, 0, k_.map.size(), k_.map.size(), held, keys);
        if (walk) {
            keys.clear();
            for (const auto &[key, st] : k_.map)
                keys.push_back(key);
            ++walks;
        } else {
            ++keyed_reads;
        }
        for (const fs_inode_key &key : keys) {
            interleave();
            auto it = k_.map.find(key);
            if (it == k_.map.end())
                continue;
            const fs_inode_stats st = it->second;
            if (!merge_.hold(key, st))
                report(key, st);
        }
        auto lookup = [&](const fs_inode_key &key, fs_inode_stats &st) {
            interleave();
            auto it = k_.map.find(key);
            if (it == k_.map.end())
                return false;
            st = it->second;
            return true;
        };
        auto on_report = [&](const fs_inode_key &key, const fs_inode_stats &st) {
            report(key, st);
        };
        merge_.finish(n, read_slot, lookup, on_report, [&](const fs_inode_key &key) {
            dirty_.again(key);
            ++kept;
        });
    }

    size_t walks = 0, keyed_reads = 0, quiet_reads = 0;
    size_t kept = 0;
    size_t reports = 0;

  private:
    void report(const fs_inode_key &key, const fs_inode_stats &st) {
        const Totals t = totals_of(st);
        const Totals &truth = k_.truth[key];
        ASSERT_LE(t.writes, truth.writes) << "counted twice: ino " << key.ino;
        ASSERT_LE(t.bytes, truth.bytes) << "counted twice: ino " << key.ino;
        ASSERT_LE(t.waits, truth.waits) << "counted twice: ino " << key.ino;
        Totals &last = reported[key];
        ASSERT_GE(t.writes, last.writes) << "reported less than before: ino " << key.ino;
        ASSERT_GE(t.bytes, last.bytes) << "reported less than before: ino " << key.ino;
        ASSERT_GE(t.waits, last.waits) << "reported less than before: ino " << key.ino;
        last = t;
        ++reports;
    }

    void interleave() {
        const size_t steps = rng_() % 4;
        for (size_t s = 0; s < steps; ++s)
            k_.step(rng_() % k_.slots.size());
    }

    SimKernel &k_;
    std::mt19937 &rng_;
    bool by_keys_;
    WriteCacheMerge merge_;
    DirtyKeys dirty_;
    uint64_t now_ns_ = 0, last_slots_sum_ = 0;
    std::vector<uint64_t> in_flight_at_start_; // per CPU: its job in progress at the last read
};

} // namespace

TEST(WriteCacheMerge, CountsStillInTheSlotsAreAddedToTheirEntries) {
    std::mt19937 rng(1);
    SimKernel k(2);
    // CPU 0: 3 writes to inode 7 (the first takes the slot, two stay in it);
    // CPU 1: one to inode 7 (takes its slot) and one to inode 8 (moves 7's).
    k.write(0, 7, FS_REASON_SHARED, 4096, true);
    k.write(0, 7, FS_REASON_SHARED, 4096, true);
    k.write(0, 7, FS_REASON_APPEND, 100, true);
    k.write(1, 7, FS_REASON_SHARED, 4096, true);
    k.write(1, 8, FS_REASON_SHARED, 10, true);
    k.drain();
    EXPECT_EQ(totals_of(k.map[key_of(7)]).writes, 2u); // the other two are in slot 0
    SimReader r(k, rng);
    r.read();
    EXPECT_EQ(r.reported[key_of(7)], (Totals{4, 3 * 4096 + 100}));
    EXPECT_EQ(r.reported[key_of(8)], (Totals{1, 10}));
    EXPECT_EQ(r.kept, 0u);
}

TEST(WriteCacheMerge, ASlotMovingDuringTheReadIsNeitherCountedTwiceNorLost) {
    // Property over many random interleavings: every report is at most what
    // was written and at least what was reported before; once the writers are
    // done, one more read reports exactly what was written.
    size_t kept = 0, reports = 0;
    for (uint32_t seed = 1; seed <= 300; ++seed) {
        std::mt19937 rng(seed);
        const size_t cpus = 1 + seed % 4;
        SimKernel k(cpus);
        SimReader r(k, rng);
        for (int round = 0; round < 30 && !::testing::Test::HasFatalFailure(); ++round) {
            const int writes = static_cast<int>(rng() % 12);
            for (int w = 0; w < writes; ++w)
                k.write(rng() % cpus, 1 + rng() % 3, static_cast<int>(rng() % FS_DIO_REASONS),
                        1 + rng() % 8192, rng() % 8 != 0);
            r.read();
        }
        k.drain();
        r.read();
        ASSERT_FALSE(::testing::Test::HasFatalFailure()) << "seed " << seed;
        for (const auto &[key, t] : k.truth)
            ASSERT_EQ(r.reported[key], t) << "seed " << seed << " ino " << key.ino;
        kept += r.kept;
        reports += r.reports;
    }
    // The interleavings did reach the re-read path and its give-up path.
    EXPECT_GT(reports, 1000u);
    EXPECT_GT(kept, 0u);
}

TEST(WriteCacheMerge, ReadingOnlyThePostedKeysMissesNothing) {
    // As above, but reads look up only the keys the writes and waits posted (and
    // what the slots hold), the whole map being walked only at the first read,
    // every 30 s and when the keys are many: most inodes are idle, as on a
    // machine with many files and few written.
    size_t kept = 0, keyed = 0, quiet = 0, walks = 0;
    for (uint32_t seed = 1; seed <= 200; ++seed) {
        std::mt19937 rng(seed);
        const size_t cpus = 1 + seed % 4;
        constexpr uint64_t kInodes = 40;
        SimKernel k(cpus);
        SimReader r(k, rng, true);
        for (uint64_t ino = 1; ino <= kInodes; ++ino)
            k.write(ino % cpus, ino, FS_REASON_SHARED, 1, true);
        for (int round = 0; round < 40 && !::testing::Test::HasFatalFailure(); ++round) {
            const int writes = round % 8 >= 5 ? 0 : static_cast<int>(rng() % 6); // 3 idle reads
            const uint64_t hot = 1 + rng() % kInodes;
            for (int w = 0; w < writes; ++w) {
                if (rng() % 3 == 0) { // on a few inodes no write takes to a slot
                    k.wait(rng() % cpus, kInodes + 1 + rng() % 2);
                    continue;
                }
                k.write(rng() % cpus, rng() % 3 ? hot : 1 + rng() % kInodes,
                        static_cast<int>(rng() % FS_DIO_REASONS), 1 + rng() % 8192, rng() % 8 != 0);
            }
            r.read();
            if (round % 3 != 2)
                continue;
            // Now and then the writers pause: the next read reports what they wrote.
            k.drain();
            r.read();
            ASSERT_FALSE(::testing::Test::HasFatalFailure()) << "seed " << seed;
            for (const auto &[key, t] : k.truth)
                ASSERT_EQ(r.reported[key], t)
                    << "seed " << seed << " round " << round << " ino " << key.ino;
        }
        kept += r.kept;
        keyed += r.keyed_reads;
        quiet += r.quiet_reads;
        walks += r.walks;
    }
    // The reads did go by keys, did skip when nothing was posted, and did leave
    // unsettled entries to the next read.
    EXPECT_GT(keyed, 200u * 20);
    EXPECT_GT(quiet, 200u);
    EXPECT_GT(kept, 0u);
    EXPECT_LT(walks, keyed / 3) << "keyed " << keyed << " quiet " << quiet << " kept " << kept;
}
