#include "uring.h"

#include "fuse_uring_abi.h"
#include "protocol.h"

#include <fmt/core.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace testfs {
namespace {

namespace abi = uring_abi;

constexpr const char *kEnableUringParam = "/sys/module/fuse/parameters/enable_uring";

// One ring entry: the header buffer the kernel writes fuse_in_header and the opcode's fixed
// argument into, and the payload buffer for the rest (names, write data; the reply body on
// commit). The payload sits kOpInRoom bytes into `buf`, so that the fixed argument can be copied
// right in front of it and the handlers see one contiguous argument without copying the data.
struct Entry {
    static constexpr size_t kOpInRoom = abi::kOpInOutSize;
    explicit Entry(size_t payload_size)
        : buf(kOpInRoom + payload_size), payload_len(payload_size) {}
    abi::ReqHeader header{};
    std::vector<char> buf;
    size_t payload_len;
    char *payload() { return buf.data() + kOpInRoom; }
};

// Puts the reply into the entry: fuse_out_header into the header buffer, the body into the
// payload buffer. The thread commits it after the handler returns.
class UringReplier final : public Replier {
  public:
    explicit UringReplier(Entry &e) : e_(e) {}
    bool replied = false;

    bool send(uint64_t unique, int error, std::span<const iovec> payload) override {
        size_t len = 0;
        if (error == 0) {
            for (const iovec &p : payload)
                len += p.iov_len;
            if (len > e_.payload_len) {
                fmt::print(stderr,
                           "fusescope-testfs: reply of {} bytes exceeds the ring payload "
                           "buffer ({}); answering EIO\n",
                           len, e_.payload_len);
                error = EIO;
                len = 0;
            }
        }
        if (error == 0) {
            char *dst = e_.payload();
            for (const iovec &p : payload) {
                std::memmove(dst, p.iov_base, p.iov_len);
                dst += p.iov_len;
            }
        }
        fuse_out_header out{};
        out.len = static_cast<uint32_t>(sizeof(out) + len);
        out.error = -error;
        out.unique = unique;
        std::memcpy(e_.header.in_out, &out, sizeof(out));
        e_.header.ring_ent_in_out.payload_sz = static_cast<uint32_t>(len);
        replied = true;
        return true; // the commit's own result tells whether the kernel took it
    }

  private:
    Entry &e_;
};

// Startup handshake between start_uring() and the ring threads.
struct Startup {
    std::mutex mu;
    std::condition_variable cv;
    unsigned reported = 0;
    std::string first_error;

    void report(const std::string &err) {
        std::lock_guard lock(mu);
        ++reported;
        if (!err.empty() && first_error.empty())
            first_error = err;
        cv.notify_all();
    }
};

bool queue_cmd(io_uring &ring, int fuse_fd, uint32_t cmd_op, uint16_t qid, uint64_t commit_id,
               const iovec *iov) {
    io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (!sqe)
        return false;
    std::memset(sqe, 0, 2 * sizeof(*sqe)); // a 128-byte SQE (IORING_SETUP_SQE128)
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = fuse_fd;
    sqe->cmd_op = cmd_op;
    if (iov) {
        sqe->addr = reinterpret_cast<uint64_t>(iov);
        sqe->len = abi::kIovSegs;
    }
    abi::CmdReq req{};
    req.qid = qid;
    req.commit_id = commit_id;
    std::memcpy(sqe->cmd, &req, sizeof(req));
    return true;
}

void pin_to_cpu(unsigned cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    // Best effort: the kernel picks the queue by the sender's CPU, so a thread on that CPU
    // answers without a cross-CPU wakeup; outside our cpuset the thread simply runs elsewhere.
    (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

struct ThreadArgs {
    int fuse_fd;
    uint16_t qid;
    size_t payload_size;
    Filesystem *fs;
    Startup *startup;
    std::function<void(const std::string &)> on_fatal;
};

void ring_thread(ThreadArgs a) {
    pin_to_cpu(a.qid);
    io_uring ring{};
    if (int rc = io_uring_queue_init(4, &ring, IORING_SETUP_SQE128)) {
        a.startup->report(fmt::format("io_uring_queue_init: {}", std::strerror(-rc)));
        return;
    }
    auto e = std::make_unique<Entry>(a.payload_size);
    const iovec iov[abi::kIovSegs] = {{&e->header, sizeof(e->header)},
                                      {e->payload(), e->payload_len}};
    queue_cmd(ring, a.fuse_fd, abi::kCmdRegister, a.qid, 0, iov);
    if (int rc = io_uring_submit(&ring); rc != 1) {
        a.startup->report(fmt::format("submitting FUSE_IO_URING_CMD_REGISTER on queue {}: {}",
                                      a.qid, std::strerror(rc < 0 ? -rc : EIO)));
        return;
    }
    // The kernel handles a REGISTER inline: a refusal is already a completion now. A success
    // completes only when the first request arrives (res 0), and stays for the loop below.
    io_uring_cqe *cqe = nullptr;
    if (io_uring_peek_cqe(&ring, &cqe) == 0 && cqe->res < 0) {
        a.startup->report(fmt::format("FUSE_IO_URING_CMD_REGISTER on queue {}: {}", a.qid,
                                      std::strerror(-cqe->res)));
        return;
    }
    a.startup->report("");

    std::vector<char> scratch;
    for (;;) {
        int rc = io_uring_wait_cqe(&ring, &cqe);
        if (rc == -EINTR)
            continue;
        if (rc < 0) {
            a.on_fatal(
                fmt::format("waiting on the ring of queue {}: {}", a.qid, std::strerror(-rc)));
            return;
        }
        const int res = cqe->res;
        io_uring_cqe_seen(&ring, cqe);
        if (res < 0) {
            // ENOTCONN: unmounted or aborted, the kernel tore the entries down. ECANCELED and
            // ECONNABORTED: the same, seen from a dying connection. Anything else is ours.
            if (res != -ENOTCONN && res != -ECANCELED && res != -ECONNABORTED)
                a.on_fatal(
                    fmt::format("ring entry of queue {} failed: {}", a.qid, std::strerror(-res)));
            return;
        }
        fuse_in_header in{};
        std::memcpy(&in, e->header.in_out, sizeof(in));
        const uint64_t commit_id = e->header.ring_ent_in_out.commit_id;
        const size_t payload_sz = e->header.ring_ent_in_out.payload_sz;
        UringReplier replier(*e);
        // The fixed argument's size is what the header's length leaves beside the payload.
        if (in.len < sizeof(in) + payload_sz || payload_sz > e->payload_len ||
            in.len - sizeof(in) - payload_sz > abi::kOpInOutSize) {
            replier.send(in.unique, EIO, {});
        } else {
            const size_t oplen = in.len - sizeof(in) - payload_sz;
            char *arg = e->payload() - oplen;
            std::memcpy(arg, e->header.op_in, oplen);
            const size_t arglen = oplen + payload_sz;
            const size_t ext = static_cast<size_t>(in.total_extlen) * 8;
            Request req{a.fuse_fd, &in, arg, arglen >= ext ? arglen - ext : 0, &replier, true};
            a.fs->handle(req, scratch);
            if (!replier.replied) // every request on a ring needs an answer to free its entry
                replier.send(in.unique, ENOSYS, {});
        }
        if (!queue_cmd(ring, a.fuse_fd, abi::kCmdCommitAndFetch, a.qid, commit_id, iov) ||
            io_uring_submit(&ring) != 1) {
            a.on_fatal(fmt::format("cannot submit a commit on queue {}", a.qid));
            return;
        }
    }
}

} // namespace

std::string uring_unavailable_reason() {
    std::ifstream in(kEnableUringParam);
    if (!in)
        return "this kernel has no FUSE over io_uring (needs Linux 6.14+ with "
               "CONFIG_FUSE_IO_URING); run without --io-uring";
    std::string v;
    in >> v;
    if (v != "Y" && v != "1")
        return fmt::format("FUSE over io_uring is switched off: echo Y > {} (as root), or run "
                           "without --io-uring",
                           kEnableUringParam);
    return "";
}

unsigned uring_queue_count() {
    // /sys/devices/system/cpu/possible: "0-63" or "0,2-3"; the kernel makes num_possible_cpus()
    // queues and indexes them by CPU number, so count the highest possible CPU + 1.
    std::ifstream in("/sys/devices/system/cpu/possible");
    std::string s;
    in >> s;
    unsigned highest = 0;
    size_t i = 0;
    while (i < s.size()) {
        size_t used = 0;
        const unsigned long n = std::stoul(s.substr(i), &used);
        highest = std::max(highest, static_cast<unsigned>(n));
        i += used;
        if (i < s.size())
            ++i; // ',' or '-'
    }
    return s.empty() ? std::max(1U, std::thread::hardware_concurrency()) : highest + 1;
}

std::string start_uring(const Config &cfg, int fuse_fd, Filesystem &fs,
                        std::function<void(const std::string &)> on_fatal) {
    const unsigned queues = uring_queue_count();
    const unsigned per_queue = std::max(1U, (cfg.threads + queues - 1) / queues);
    // The kernel refuses payload buffers smaller than max(FUSE_MIN_READ_BUFFER, max_write,
    // max_pages * PAGE_SIZE); our max_pages covers max_write rounded up to pages.
    const size_t page = 4096;
    const size_t payload =
        std::max<size_t>(FUSE_MIN_READ_BUFFER, (cfg.max_write + page - 1) / page * page);
    static Startup startup; // outlives the detached threads, like the readers' state
    for (unsigned q = 0; q < queues; ++q)
        for (unsigned t = 0; t < per_queue; ++t)
            std::thread(ring_thread, ThreadArgs{fuse_fd, static_cast<uint16_t>(q), payload, &fs,
                                                &startup, on_fatal})
                .detach();
    std::unique_lock lock(startup.mu);
    const unsigned want = queues * per_queue;
    if (!startup.cv.wait_for(lock, std::chrono::seconds(10),
                             [&] { return startup.reported == want; }))
        return fmt::format("only {} of {} ring entries registered within 10 s", startup.reported,
                           want);
    if (!startup.first_error.empty())
        return startup.first_error;
    if (cfg.debug)
        fmt::print(stderr, "testfs: io_uring: {} queues x {} entries registered\n", queues,
                   per_queue);
    return "";
}

} // namespace testfs
