#include "common.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>

namespace load {

void fill_block(char *buf, size_t size, uint64_t block, uint64_t seed) {
    const uint64_t rec[2] = {block, kMagic ^ seed}; // little-endian host (x86_64, arm64)
    size_t off = 0;
    while (off < size) {
        size_t n = std::min(size - off, sizeof(rec));
        std::memcpy(buf + off, rec, n);
        off += n;
    }
}

size_t check_block(const char *buf, size_t size, uint64_t block, uint64_t seed) {
    const uint64_t rec[2] = {block, kMagic ^ seed};
    const char *r = reinterpret_cast<const char *>(rec);
    size_t bad = 0;
    for (size_t i = 0; i < size; ++i)
        bad += buf[i] != r[i % sizeof(rec)];
    return bad;
}

double now_s() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void sleep_s(double s) {
    if (s <= 0)
        return;
    timespec ts{static_cast<time_t>(s),
                static_cast<long>((s - static_cast<double>(static_cast<time_t>(s))) * 1e9)};
    while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int gettid_() { return static_cast<int>(::syscall(SYS_gettid)); }

void fail(int code, const std::string &msg) {
    fmt::print(stderr, "fusescope-load: {}\n", msg);
    std::exit(code);
}

} // namespace load
