// Writer scenarios with exact, reproducible request counts:
//   parallel        K threads x N in-EOF pwrites on a file preallocated with ftruncate
//   append          K threads x N O_APPEND writes on a file truncated to 0
//   extend          K threads x N pwrites past EOF on a file truncated to 0 (K defaults to 1)
//   db-and-indexer  like parallel (optionally for --duration seconds) plus a forked "indexer"
//                   process that maps the file MAP_SHARED partway through
// Preparation uses ftruncate only, so it sends SETATTR and never a WRITE: the number of WRITE
// requests a FUSE server sees is exactly total_writes (when size <= max_write).
#include "common.h"
#include "indexer.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <barrier>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace load {
namespace {

enum class Mode { Parallel, Append, Extend, Db };

struct ThreadResult {
    int tid = 0;
    uint64_t writes = 0; // successful, complete writes
    uint64_t bytes = 0;
    uint64_t errors = 0; // failed or short writes
    int first_errno = 0;
    double start = 0, end = 0;
    double lat_sum = 0, lat_max = 0;
    uint64_t blocks_written = 0; // distinct blocks this thread covered (for verification)
};

struct AlignedBuf {
    explicit AlignedBuf(size_t n) {
        // 4 KiB alignment keeps O_DIRECT happy on any backing filesystem.
        if (::posix_memalign(&p, 4096, std::max<size_t>(n, 1)) != 0)
            p = nullptr;
    }
    ~AlignedBuf() { std::free(p); }
    AlignedBuf(const AlignedBuf &) = delete;
    AlignedBuf &operator=(const AlignedBuf &) = delete;
    char *data() const { return static_cast<char *>(p); }
    void *p = nullptr;
};

// Where write i of thread t goes, and which pattern block it carries.
uint64_t block_of(Mode m, unsigned t, uint64_t i, unsigned K, unsigned N) {
    switch (m) {
    case Mode::Parallel:
    case Mode::Db:
        return static_cast<uint64_t>(t) * N + (i % N);
    case Mode::Append:
        return static_cast<uint64_t>(t) * N + i;
    case Mode::Extend:
        return i * K + t; // interleaved, each write at or past the current EOF
    }
    return 0;
}

// Reads the file back and counts bytes that differ from the expected pattern.
uint64_t verify(const Options &o, Mode m, unsigned K, const std::vector<ThreadResult> &res,
                std::string &problem) {
    int fd = ::open(o.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        problem = fmt::format("cannot reopen for verification: {}", std::strerror(errno));
        return 1;
    }
    AlignedBuf buf(o.size);
    uint64_t bad = 0;
    auto read_block = [&](uint64_t off) {
        ssize_t n = ::pread(fd, buf.data(), o.size, static_cast<off_t>(off));
        return n == static_cast<ssize_t>(o.size);
    };
    if (m == Mode::Append) {
        // Order is up to the kernel; every block must be one intact record, each exactly once.
        struct stat st {};
        ::fstat(fd, &st);
        uint64_t expect_blocks = 0;
        for (const auto &r : res)
            expect_blocks += r.writes;
        if (static_cast<uint64_t>(st.st_size) != expect_blocks * o.size) {
            problem = fmt::format("size {} != {} blocks", st.st_size, expect_blocks);
            bad++;
        }
        std::set<uint64_t> seen;
        for (uint64_t off = 0; off + o.size <= static_cast<uint64_t>(st.st_size); off += o.size) {
            if (!read_block(off)) {
                bad += o.size;
                continue;
            }
            uint64_t b = 0;
            std::memcpy(&b, buf.data(), std::min<size_t>(8, o.size));
            uint64_t diff = check_block(buf.data(), o.size, b, o.seed);
            if (diff || !seen.insert(b).second)
                bad += diff ? diff : o.size;
        }
    } else {
        for (unsigned t = 0; t < K; ++t) {
            const uint64_t n = res[t].blocks_written;
            for (uint64_t i = 0; i < n; ++i) {
                const uint64_t b = block_of(m, t, i, K, o.writes);
                if (!read_block(b * o.size)) {
                    bad += o.size;
                    continue;
                }
                bad += check_block(buf.data(), o.size, b, o.seed);
            }
        }
    }
    ::close(fd);
    if (bad && problem.empty())
        problem = fmt::format("{} bytes differ from the expected pattern", bad);
    return bad;
}

} // namespace

int run_writers(const Options &o, Json &out) {
    const Mode m = o.scenario == "parallel" ? Mode::Parallel
                   : o.scenario == "append" ? Mode::Append
                   : o.scenario == "extend" ? Mode::Extend
                                            : Mode::Db;
    const unsigned K = (m == Mode::Extend && !o.threads_given) ? 1 : o.threads;
    const unsigned N = o.writes;
    const uint64_t S = o.size;

    // Preparation: ftruncate only (SETATTR), never a WRITE.
    const uint64_t target = (m == Mode::Parallel || m == Mode::Db) ? K * N * S : 0;
    {
        int fd = ::open(o.file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            fail(kExitEnvironment, fmt::format("cannot open {}: {}", o.file, std::strerror(errno)));
        if (::ftruncate(fd, static_cast<off_t>(target)) != 0)
            fail(kExitEnvironment,
                 fmt::format("cannot ftruncate {}: {}", o.file, std::strerror(errno)));
        ::close(fd);
    }

    pid_t indexer = -1;
    int go_fd = -1, report_fd = -1;
    if (m == Mode::Db)
        indexer = spawn_indexer(o, go_fd, report_fd); // before any thread exists

    std::vector<ThreadResult> res(K);
    std::barrier start_line(static_cast<std::ptrdiff_t>(K));
    const double t_begin = now_s();
    const double deadline = o.duration > 0 ? t_begin + o.duration : 0;
    auto worker = [&](unsigned t) {
        ThreadResult &r = res[t];
        r.tid = gettid_();
        if (m == Mode::Db) {
            std::string name = fmt::format("db-writer-{}", t);
            pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
        }
        int flags = O_WRONLY | O_CLOEXEC;
        if (m == Mode::Append)
            flags |= O_APPEND;
        if (o.o_direct)
            flags |= O_DIRECT;
        int fd = ::open(o.file.c_str(), flags);
        AlignedBuf buf(S);
        if (o.sync_start)
            start_line.arrive_and_wait();
        r.start = now_s();
        if (fd < 0 || !buf.data()) {
            r.errors = 1;
            r.first_errno = fd < 0 ? errno : ENOMEM;
            r.end = now_s();
            return;
        }
        for (uint64_t i = 0;; ++i) {
            if (deadline > 0 ? now_s() >= deadline : i >= N)
                break;
            const uint64_t b = block_of(m, t, i, K, N);
            fill_block(buf.data(), S, b, o.seed);
            const double t0 = now_s();
            ssize_t n = m == Mode::Append ? ::write(fd, buf.data(), S)
                                          : ::pwrite(fd, buf.data(), S, static_cast<off_t>(b * S));
            const double lat = now_s() - t0;
            r.lat_sum += lat;
            r.lat_max = std::max(r.lat_max, lat);
            if (n == static_cast<ssize_t>(S)) {
                r.writes++;
                r.bytes += S;
                if (i < N)
                    r.blocks_written = i + 1;
            } else {
                r.errors++;
                if (!r.first_errno)
                    r.first_errno = n < 0 ? errno : EIO;
            }
        }
        r.end = now_s();
        ::close(fd);
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < K; ++t)
        threads.emplace_back(worker, t);
    if (go_fd >= 0) {
        (void)!::write(go_fd, "g", 1); // the indexer's delay counts from here
        ::close(go_fd);
    }
    for (auto &th : threads)
        th.join();
    const double t_end = now_s();

    IndexerReport ix{};
    if (indexer > 0)
        ix = wait_indexer(indexer, report_fd);

    uint64_t total = 0, bytes = 0, errors = 0;
    out.kv("scenario", o.scenario).kv("file", o.file).kv("pid", ::getpid());
    out.kv("threads", K).kv("size", S).kv("o_direct", o.o_direct).kv("sync_start", o.sync_start);
    if (deadline > 0)
        out.kv("duration_requested_s", o.duration);
    else
        out.kv("writes_per_thread", N);
    out.kv("prealloc", "ftruncate").kv("prealloc_size", target).kv("prealloc_writes", 0);
    out.key("per_thread").begin_array();
    for (unsigned t = 0; t < K; ++t) {
        const ThreadResult &r = res[t];
        total += r.writes;
        bytes += r.bytes;
        errors += r.errors;
        const uint64_t attempts = r.writes + r.errors;
        out.begin_object().kv("thread", t).kv("tid", r.tid).kv("writes", r.writes);
        out.kv("bytes", r.bytes).kv("errors", r.errors).kv("first_errno", r.first_errno);
        out.kv("seconds", r.end - r.start);
        out.kv("mean_latency_us", attempts ? r.lat_sum / static_cast<double>(attempts) * 1e6 : 0.0);
        out.kv("max_latency_us", r.lat_max * 1e6).end_object();
    }
    out.end_array();
    const double dur = t_end - t_begin;
    out.kv("total_writes", total).kv("total_bytes", bytes).kv("errors", errors);
    out.kv("duration_s", dur).kv("writes_per_s", dur > 0 ? static_cast<double>(total) / dur : 0.0);
    int code = errors ? kExitIoErrors : kExitOk;
    if (indexer > 0) {
        out.key("indexer").begin_object().kv("pid", indexer).kv("comm", o.indexer_comm);
        out.kv("delay_s", o.indexer_delay).kv("hold_s", o.indexer_hold);
        out.kv("mapped_at_s", ix.mapped_at > 0 ? ix.mapped_at - t_begin : 0.0);
        out.kv("unmapped_at_s", ix.unmapped_at > 0 ? ix.unmapped_at - t_begin : 0.0);
        out.kv("length", ix.length).kv("pages_touched", ix.pages);
        out.kv("error", ix.err ? std::strerror(ix.err) : "").kv("exit_status", ix.exit_status);
        out.end_object();
        if (ix.err || ix.exit_status)
            code = kExitIoErrors;
    }
    if (o.verify) {
        std::string problem;
        uint64_t bad = verify(o, m, K, res, problem);
        out.kv("verify_errors", bad);
        if (bad) {
            out.kv("verify_problem", problem);
            code = kExitIoErrors;
        }
    }
    return code;
}

} // namespace load
