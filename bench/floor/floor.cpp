// Bench only: loads and attaches floor.bpf.c, says "ready", and detaches when
// stdin closes (bench.py holds the other end) or on SIGINT/SIGTERM.
#include "fusescope_floor.skel.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

int main() {
    struct sigaction sa {};
    sa.sa_handler = [](int) {}; // interrupt read() below, then clean up
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    fusescope_floor *skel = fusescope_floor__open_and_load();
    if (!skel) {
        std::fprintf(stderr, "fusescope-bench-floor: load failed: %s\n", std::strerror(errno));
        return 3;
    }
    if (fusescope_floor__attach(skel) != 0) {
        std::fprintf(stderr, "fusescope-bench-floor: attach failed: %s\n", std::strerror(errno));
        fusescope_floor__destroy(skel);
        return 3;
    }
    std::printf("ready\n");
    std::fflush(stdout);
    char c;
    while (read(STDIN_FILENO, &c, 1) > 0) {
    }
    fusescope_floor__destroy(skel);
    return 0;
}
