// Settings of one fusescope-testfs instance, filled from the command line by main.cpp.
#pragma once

#include <cstdint>
#include <string>

namespace testfs {

// Exit statuses, documented in --help. Tests rely on them being distinct.
enum ExitCode : int {
    kExitOk = 0,
    kExitRuntime = 1,     // the server ran but something failed (e.g. connection aborted)
    kExitUsage = 2,       // bad command line
    kExitEnvironment = 3, // not root, no /dev/fuse, kernel lacks a requested feature
    kExitMount = 4,       // mount(2) failed
};

struct Config {
    std::string backing_dir; // absolute, canonical
    std::string mountpoint;  // absolute, canonical

    // Per-open FOPEN_* flags.
    bool direct_io = false;              // FOPEN_DIRECT_IO
    bool parallel_direct_writes = false; // FOPEN_PARALLEL_DIRECT_WRITES
    bool keep_cache = false;             // FOPEN_KEEP_CACHE
    bool cache_readonly_opens = false;   // O_RDONLY opens drop FOPEN_DIRECT_IO (cached open)
    bool passthrough = false;            // FOPEN_PASSTHROUGH + backing id

    // INIT flags.
    bool direct_io_allow_mmap = false; // FUSE_DIRECT_IO_ALLOW_MMAP
    bool async_dio = true;             // FUSE_ASYNC_DIO, on by default as in libfuse3

    // Transport: FUSE over io_uring (Linux 6.14+) instead of read/write on /dev/fuse.
    bool io_uring = false;

    uint32_t max_write = 1U << 20;
    unsigned threads = 8;
    unsigned write_delay_us = 0; // server-side sleep per WRITE
    bool debug = false;          // one stderr line per request
    std::string stats_path;      // if set, per-opcode counts are written there as JSON at exit
};

} // namespace testfs
