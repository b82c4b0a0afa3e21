// The session loop without a kernel: a fake Backend hands it scripted events and counters,
// and the model must end with exactly what the backend delivered (Session's contract with
// every view). No root, no BPF.
#include "fusescope/core/session.h"

#include <gtest/gtest.h>

#include <deque>

namespace fusescope {
namespace {

constexpr InodeKey kInode{53, 7};

class FakeBackend : public Backend {
  public:
    std::deque<std::vector<Event>> polls; // each poll() hands out the next batch
    std::deque<CountersDelta> reads;      // each read_counters() the next delta (then none)
    int poll_calls = 0, read_calls = 0, census_calls = 0;

    BackendKind kind() const override { return BackendKind::Tracepoint; }
    const std::vector<AttachedProgram> &attached() const override { return attached_; }
    size_t write_cache_slots() const override { return 0; }
    size_t request_slots() const override { return 0; }
    int poll(int, const std::function<void(const Event &)> &on_event) override {
        ++poll_calls;
        if (polls.empty())
            return 0;
        auto batch = std::move(polls.front());
        polls.pop_front();
        for (const auto &e : batch)
            on_event(e);
        return static_cast<int>(batch.size());
    }
    const CountersDelta &read_counters(uint64_t) override {
        ++read_calls;
        current_ = {};
        if (!reads.empty()) {
            current_ = std::move(reads.front());
            reads.pop_front();
        }
        return current_;
    }
    Health read_health() override { return {}; }
    std::vector<CensusRecord> census(std::string *, uint32_t) override {
        ++census_calls;
        return {};
    }
    std::optional<KernelName> file_name(const InodeKey &) override { return std::nullopt; }
    std::optional<KernelName> exe_name(const InodeKey &) override { return std::nullopt; }

  private:
    std::vector<AttachedProgram> attached_;
    CountersDelta current_;
};

InodeCounters shared_writes(uint64_t n) {
    InodeCounters c;
    c.key = kInode;
    c.writes[static_cast<size_t>(WriteReason::Shared)] = n;
    return c;
}

Event open_event(uint64_t ts) {
    Event e;
    e.ts_ns = ts;
    e.type = EventType::Open;
    e.pid = 4711;
    e.comm = "indexer";
    e.key = kInode;
    return e;
}

struct Harness {
    FakeBackend *fake = nullptr;
    std::unique_ptr<Session> session;
    explicit Harness(double interval_s = 0.0) {
        auto backend = std::make_unique<FakeBackend>();
        fake = backend.get();
        SessionParts parts;
        parts.backend = std::move(backend);
        parts.plan.backend = BackendKind::Tracepoint;
        SessionOptions opts;
        opts.interval_s = interval_s;
        opts.census_interval_s = 0; // no periodic census
        session = std::make_unique<Session>(opts, std::move(parts));
    }
};

// keep_going for @n loop turns
std::function<bool()> turns(int n) {
    return [n]() mutable { return n-- > 0; };
}

TEST(SessionLoop, EveryEventReachesTheModelAndTheViewOnce) {
    Harness h;
    h.fake->polls = {{open_event(1), open_event(2)}, {}, {open_event(3)}};
    int seen = 0;
    h.session->run(turns(5), [&](const Event &e) {
        EXPECT_EQ(e.key, kInode);
        ++seen;
    });
    EXPECT_EQ(seen, 3);
    // 5 turns, then the drain of what is left in the ring buffer
    EXPECT_EQ(h.fake->poll_calls, 6);
}

TEST(SessionLoop, TheFinalRefreshDeliversTheLastCounters) {
    Harness h(3600.0); // no refresh during the loop: only the one at the end
    h.fake->reads = {CountersDelta{{shared_writes(42)}, {}}};
    int ticks = 0;
    h.session->run(turns(3), {}, [&] { ++ticks; });
    EXPECT_EQ(ticks, 0);
    EXPECT_EQ(h.fake->read_calls, 1);
    auto snap = h.session->model().snapshot();
    const InodeView *iv = snap.find(kInode);
    ASSERT_NE(iv, nullptr);
    EXPECT_EQ(iv->total.writes[static_cast<size_t>(WriteReason::Shared)], 42u);
}

TEST(SessionLoop, EachRefreshIsATickAndCountsAddUp) {
    Harness h(0.0); // a refresh on every turn
    h.fake->reads = {CountersDelta{{shared_writes(10)}, {}},
                     CountersDelta{{shared_writes(25)}, {}}};
    int ticks = 0;
    h.session->run(turns(4), {}, [&] { ++ticks; });
    EXPECT_EQ(ticks, 4);
    EXPECT_EQ(h.fake->read_calls, 5); // 4 ticks and the final refresh
    auto snap = h.session->model().snapshot();
    const InodeView *iv = snap.find(kInode);
    ASSERT_NE(iv, nullptr);
    EXPECT_EQ(iv->total.writes[static_cast<size_t>(WriteReason::Shared)], 25u);
}

TEST(SessionLoop, StopEndsTheLoopButNotTheFinalDrain) {
    Harness h;
    h.fake->polls = {{open_event(1)}};
    h.session->stop();
    int seen = 0;
    h.session->run([] { return true; }, [&](const Event &) { ++seen; });
    EXPECT_EQ(h.fake->poll_calls, 1); // only the drain
    EXPECT_EQ(seen, 1);
    EXPECT_EQ(h.fake->read_calls, 1);
}

} // namespace
} // namespace fusescope
