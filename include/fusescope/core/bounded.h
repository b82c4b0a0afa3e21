// Lookups of user paths never wait on the filesystem being diagnosed.
//
// stat(2), realpath(3) or a walk of a FUSE mount send requests to its server and the
// kernel waits for the answer as long as it takes: a server that stopped answering
// (SIGSTOPped, deadlocked) leaves the caller in D state, deaf to SIGTERM. So these
// lookups run in a child process, given a time limit and abandoned when it passes
// (SIGKILLed; a child that already waits uninterruptibly ends when the server answers or
// its connection is aborted). The child holds no descriptor of fusescope's but its pipe
// (no BPF link, no listening socket), and dies with fusescope (PR_SET_PDEATHSIG).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace fusescope {

inline constexpr double kLookupTimeoutS = 3.0; // a server that answers nothing in 3 s is stuck

struct BoundedResult {
    bool timed_out = false;
    bool failed = false; // the child could not be started or died
    std::string out;     // what @fn returned, when it returned
    double waited_s = 0;
};

// Runs @fn in a child process and returns its result, or timed_out after @timeout_s;
// then @on_timeout runs first, while the child's request still waits in the kernel.
BoundedResult run_bounded(const std::function<std::string()> &fn, double timeout_s,
                          const std::function<void()> &on_timeout = {});

struct StatResult {
    bool timed_out = false;
    int err = 0; // errno of stat(2); 0: ok
    uint64_t dev = 0, ino = 0;
    uint32_t mode = 0;
    double waited_s = 0;
};
StatResult stat_bounded(const std::string &path, const std::function<void()> &on_timeout = {},
                        double timeout_s = kLookupTimeoutS);

// statfs(2) of a mount point: always a request to a FUSE server (FUSE_STATFS), so it tells
// whether the server answers at all. True: it answered (or the call failed otherwise).
bool statfs_answers(const std::string &mount_point, const std::function<void()> &on_timeout,
                    double *waited_s, double timeout_s = kLookupTimeoutS);

// realpath(3) of @path; nullopt on error, *timed_out when the time ran out.
std::optional<std::string> realpath_bounded(const std::string &path, bool *timed_out,
                                            double timeout_s = kLookupTimeoutS);

// Requests the kernel waits on for the FUSE connection of mount @kdev (fusectl's
// /sys/fs/fuse/connections/N/waiting, N the mount's s_dev); with @may_mount, fusectl is
// mounted there for the read if it is not, and unmounted again. nullopt: unknown.
std::optional<uint64_t> fuse_connection_waiting(uint32_t kdev, bool may_mount);

// @path made absolute and "." and ".." resolved as text, without asking any filesystem
// (for a path on a server that does not answer; symlinks are not followed).
std::string lexical_absolute(const std::string &path);

} // namespace fusescope
