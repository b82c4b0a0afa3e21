// Bench only (bench/bench.py "syscalls"): the time of one cheap syscall, to see what tracing
// costs every syscall of the machine. While any syscalls:* tracepoint is attached, the kernel
// sends every syscall of every task through its slow path, whoever the program is for.
//   fusescope-bench-syscalls [N]  prints "ns_per_syscall X" for N getppid() calls.
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

int main(int argc, char **argv) {
    const long n = argc > 1 ? std::atol(argv[1]) : 2'000'000;
    if (n <= 0) {
        std::fprintf(stderr, "usage: fusescope-bench-syscalls [CALLS > 0]\n");
        return 2;
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i)
        syscall(SYS_getppid); // not cached by libc, no work in the kernel
    const auto t1 = std::chrono::steady_clock::now();
    const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
    std::printf("ns_per_syscall %.2f\n", ns / static_cast<double>(n));
    return 0;
}
