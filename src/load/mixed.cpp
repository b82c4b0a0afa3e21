// mixed: direct (O_DIRECT), buffered and mmap IO on one file at once, in the spirit of xfstests
// generic/095. It exercises every io-mode transition of a FUSE inode (cached opens and shared
// mappings against uncached direct writes). Success means: no hang, no crash, and afterwards
// every page is either never written (zeros) or the exact pattern of its block.
//
// The file size is fixed for the whole run (no truncation), so mapped pages never go past EOF.
// Every writer writes whole, aligned blocks with the same content for the same block, so there
// is exactly one right answer per page whatever the interleaving.
#include "common.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace load {
namespace {

constexpr size_t kPage = 4096;

struct Counter {
    std::atomic<uint64_t> ops{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<int> first_errno{0};
    std::atomic<uint64_t> eio{0};
    void error(int e) {
        errors++;
        if (e == EIO)
            eio++;
        int zero = 0;
        first_errno.compare_exchange_strong(zero, e);
    }
};

// xorshift64*: cheap, deterministic per thread.
struct Rng {
    uint64_t s;
    uint64_t next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 0x2545F4914F6CDD1DULL;
    }
};

} // namespace

int run_mixed(const Options &o, Json &out) {
    // Blocks are whole pages so O_DIRECT and mmap agree on alignment.
    const size_t S = std::max(kPage, (o.size + kPage - 1) / kPage * kPage);
    const size_t fsize = std::max(S, o.file_size / S * S);
    const uint64_t nblocks = fsize / S;
    const double duration = o.duration > 0 ? o.duration : 3.0;
    {
        int fd = ::open(o.file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(fsize)) != 0)
            fail(kExitEnvironment,
                 fmt::format("cannot create {}: {}", o.file, std::strerror(errno)));
        ::close(fd);
    }

    std::map<std::string, Counter> c;
    for (const char *k : {"dio_write", "dio_read", "buffered_write", "buffered_read", "mmap_write",
                          "mmap_read", "cached_open", "fsync"})
        c[k];
    std::atomic<bool> stop{false};
    std::atomic<bool> mmap_refused{false};
    std::mutex mmap_err_mu;
    std::string mmap_error;
    const uint64_t seed = o.seed;

    auto rw_loop = [&](unsigned id, bool direct, bool write) {
        Counter &cnt =
            c.at(std::string(direct ? "dio_" : "buffered_") + (write ? "write" : "read"));
        int fd = ::open(o.file.c_str(), O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
        void *p = nullptr;
        if (fd < 0 || ::posix_memalign(&p, kPage, S) != 0) {
            cnt.error(fd < 0 ? errno : ENOMEM);
            if (fd >= 0)
                ::close(fd);
            return;
        }
        char *buf = static_cast<char *>(p);
        Rng rng{0x9e3779b97f4a7c15ULL * (id + 1)};
        uint64_t n = 0;
        while (!stop) {
            const uint64_t b = rng.next() % nblocks;
            ssize_t r;
            if (write) {
                fill_block(buf, S, b, seed);
                r = ::pwrite(fd, buf, S, static_cast<off_t>(b * S));
            } else {
                r = ::pread(fd, buf, S, static_cast<off_t>(b * S));
            }
            if (r == static_cast<ssize_t>(S))
                cnt.ops++;
            else
                cnt.error(r < 0 ? errno : EIO);
            // Buffered writers also flush now and then, which takes i_rwsem and waits on
            // writeback: one more party in the lock dance.
            if (write && !direct && (++n % 64) == 0) {
                if (::fdatasync(fd) == 0)
                    c.at("fsync").ops++;
                else
                    c.at("fsync").error(errno);
            }
        }
        std::free(p);
        ::close(fd);
    };

    auto mmap_loop = [&](unsigned id, bool write) {
        Counter &cnt = c.at(write ? "mmap_write" : "mmap_read");
        int fd = ::open(o.file.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            cnt.error(errno);
            return;
        }
        void *m = ::mmap(nullptr, fsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            // ENODEV: a direct-io mount without --direct-io-allow-mmap. Reported, not fatal.
            int e = errno;
            mmap_refused = true;
            std::lock_guard lock(mmap_err_mu);
            mmap_error = std::strerror(e);
            ::close(fd);
            return;
        }
        char *base = static_cast<char *>(m);
        std::vector<char> tmp(S);
        Rng rng{0xd1b54a32d192ed03ULL * (id + 7)};
        uint64_t n = 0;
        while (!stop) {
            const uint64_t b = rng.next() % nblocks;
            if (write) {
                fill_block(tmp.data(), S, b, seed);
                std::memcpy(base + b * S, tmp.data(), S);
                if ((++n % 32) == 0)
                    ::msync(base + b * S, S, MS_ASYNC);
            } else {
                std::memcpy(tmp.data(), base + b * S, S);
            }
            cnt.ops++;
        }
        ::msync(base, fsize, MS_SYNC);
        ::munmap(m, fsize);
        ::close(fd);
    };

    // Opens and closes O_RDONLY in a loop: each open is a cached open (unless the server makes
    // it direct-io), so the inode keeps flipping between cached and uncached io mode.
    auto opener_loop = [&]() {
        Counter &cnt = c.at("cached_open");
        char b[512];
        while (!stop) {
            int fd = ::open(o.file.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                cnt.error(errno);
                sleep_s(0.001);
                continue;
            }
            (void)!::pread(fd, b, sizeof(b), 0);
            ::close(fd);
            cnt.ops++;
            sleep_s(0.002);
        }
    };

    const unsigned K = std::max(1U, o.threads_given ? o.threads : 2U);
    std::vector<std::thread> th;
    unsigned id = 0;
    for (unsigned i = 0; i < K; ++i)
        th.emplace_back(rw_loop, id++, true, true); // K O_DIRECT writers
    th.emplace_back(rw_loop, id++, true, false);
    th.emplace_back(rw_loop, id++, false, true);
    th.emplace_back(rw_loop, id++, false, false);
    th.emplace_back(mmap_loop, id++, true);
    th.emplace_back(mmap_loop, id++, false);
    th.emplace_back(opener_loop);
    const double t0 = now_s();
    sleep_s(duration);
    stop = true;
    for (auto &t : th)
        t.join();
    const double dur = now_s() - t0;

    // Final check, page by page, through a fresh buffered open after an fsync.
    uint64_t bad_pages = 0, written_pages = 0;
    {
        int fd = ::open(o.file.c_str(), O_RDWR | O_CLOEXEC);
        std::vector<char> buf(S), zero(kPage, 0);
        if (fd >= 0) {
            ::fsync(fd);
            for (uint64_t b = 0; b < nblocks; ++b) {
                if (::pread(fd, buf.data(), S, static_cast<off_t>(b * S)) !=
                    static_cast<ssize_t>(S)) {
                    bad_pages += S / kPage;
                    continue;
                }
                std::vector<char> want(S);
                fill_block(want.data(), S, b, seed);
                for (size_t off = 0; off < S; off += kPage) {
                    const char *pg = buf.data() + off;
                    if (std::memcmp(pg, zero.data(), kPage) == 0)
                        continue;
                    written_pages++;
                    if (std::memcmp(pg, want.data() + off, kPage) != 0)
                        bad_pages++;
                }
            }
            ::close(fd);
        } else {
            bad_pages = 1;
        }
    }

    // EIO from O_DIRECT or fsync is what a local backing filesystem answers when direct IO and
    // mmap/buffered IO collide on the same pages ("Page cache invalidation failure on direct
    // I/O" in dmesg; xfstests generic/095 filters it too). With --passthrough the backing fs
    // sees those collisions directly. Counted, not fatal; any other error is.
    uint64_t errors = 0, collision_eio = 0;
    for (auto &[k, v] : c) {
        errors += v.errors.load();
        if (k == "dio_write" || k == "dio_read" || k == "fsync")
            collision_eio += v.eio.load();
    }
    const uint64_t unexpected = errors - collision_eio;
    out.kv("scenario", "mixed").kv("file", o.file).kv("pid", ::getpid());
    out.kv("file_size", fsize).kv("block_size", S).kv("dio_writer_threads", K);
    out.kv("duration_s", dur).key("ops").begin_object();
    for (auto &[k, v] : c)
        out.kv(k, v.ops.load());
    out.end_object().key("errors_by_kind").begin_object();
    for (auto &[k, v] : c)
        out.kv(k, v.errors.load());
    out.end_object().key("first_errno_by_kind").begin_object();
    for (auto &[k, v] : c)
        out.kv(k, v.first_errno.load());
    out.end_object();
    out.kv("mmap_refused", mmap_refused.load()).kv("mmap_error", mmap_error);
    out.kv("errors", errors).kv("collision_eio", collision_eio).kv("unexpected_errors", unexpected);
    out.kv("pages_written", written_pages).kv("verify_errors", bad_pages);
    return (unexpected || bad_pages) ? kExitIoErrors : kExitOk;
}

} // namespace load
