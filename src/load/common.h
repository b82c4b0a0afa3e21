// Shared pieces of fusescope-load: options, the data pattern, clocks, and the scenario entry
// points (one file per family of scenarios).
#pragma once

#include "json.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace load {

enum ExitCode : int {
    kExitOk = 0,
    kExitIoErrors = 1, // the run finished but some IO failed or verification found bad data
    kExitUsage = 2,
    kExitEnvironment = 3, // the file could not be opened/prepared at all
};

struct Options {
    std::string scenario;
    std::string file;
    unsigned threads = 4;
    bool threads_given = false;
    unsigned writes = 200;
    size_t size = 64 * 1024;
    bool size_given = false;
    uint64_t seed = 0;
    bool sync_start = false;
    bool verify = false;
    bool o_direct = false; // writers open with O_DIRECT
    double duration = 0;   // seconds; 0 = count-based (db-and-indexer) / 3 s (mixed)
    double hold = 5;       // mmap-holder
    bool hold_until_signal = false;
    bool touch_write = false;
    std::string comm = "mmap-holder";
    int status_fd = -1;
    unsigned opens = 20; // cached-reader
    double open_hold_ms = 10;
    double indexer_delay = 0.5;
    double indexer_hold = 1.0;
    std::string indexer_comm = "indexer";
    size_t file_size = 8 << 20; // mixed
};

// ---- data pattern -------------------------------------------------------------------------
// Block b (the --size bytes at offset b*size, or any chunk tagged b) holds the 16-byte record
// {u64 LE b, u64 LE kMagic ^ seed} repeated and cut to the block size. Tests recompute it in a
// few lines of Python: (struct.pack("<QQ", b, MAGIC ^ seed) * (size // 16 + 1))[:size].
inline constexpr uint64_t kMagic = 0x706f637365737566ULL; // "fusescop"
void fill_block(char *buf, size_t size, uint64_t block, uint64_t seed);
// Number of bytes in buf that differ from block `block`'s pattern.
size_t check_block(const char *buf, size_t size, uint64_t block, uint64_t seed);

// ---- clocks and helpers -------------------------------------------------------------------
double now_s(); // CLOCK_MONOTONIC seconds; system-wide, so comparable across processes
void sleep_s(double s);
int gettid_();
// One line on stderr, then exit(code).
[[noreturn]] void fail(int code, const std::string &msg);

// ---- scenarios (each prints nothing; it fills `out` and returns an exit code) -------------
int run_writers(const Options &o, Json &out); // parallel, append, extend, db-and-indexer
int run_mmap_holder(const Options &o, Json &out);
int run_cached_reader(const Options &o, Json &out);
int run_mixed(const Options &o, Json &out);

} // namespace load
