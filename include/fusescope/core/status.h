// The status stream (`fusescope --status-fd N`, like gpg's --status-fd): one JSON object per
// line on descriptor N, for scripts and the integration tests, so that they read data instead
// of the human text on stderr (which stays as it is). kKinds and kFields are the one table of
// its line kinds and their fields: docs/architecture.md and fusescope(1)'s STATUS STREAM
// section describe them, the encoders below write them (tests/unit/test_status.cpp checks
// every line against the table).
#pragma once

#include "fusescope/abi_tables.h"
#include "fusescope/model/types.h"

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace fusescope::status {

enum class Kind { Watching, Health, Exit };

struct KindInfo {
    Kind kind;
    std::string_view name; // the value of "status"
    std::string_view when; // when fusescope writes the line
};
inline constexpr KindInfo kKinds[] = {
    {Kind::Watching, "watching",
     "once the probes are attached and the census was taken, by every view that watches "
     "(trace, top, export, diagnose)"},
    {Kind::Health, "health",
     "fusescope's own counters: whenever the human output reports them (top: when its "
     "DROPPED count changes) and once more when the view's session ends"},
    {Kind::Exit, "exit", "the last line, with the exit status"},
};

struct Field {
    Kind kind;
    std::string_view name;
    std::string_view doc;
};
// Every line has "status" (the kind's name) first; then its kind's fields, in this order.
// clang-format off
inline constexpr Field kFields[] = {
    {Kind::Watching, "view", "trace, top, export or diagnose"},
    {Kind::Watching, "backend", "tracepoint or trampoline"},
    {Kind::Watching, "pid", "fusescope's process id"},
    {Kind::Health, "view", "trace, top, export or diagnose"},
#define FS_X(c, field, doc) {Kind::Health, #field, doc},
    FS_COUNTER_TABLE(FS_X)
#undef FS_X
#define FS_X(field, doc) {Kind::Health, #field, doc},
    FS_FRONTEND_COUNTER_TABLE(FS_X)
#undef FS_X
    {Kind::Exit, "code", "fusescope's exit status (see EXIT STATUS)"},
};
// clang-format on

std::string_view name(Kind k);

// The lines, with their newline.
std::string watching_line(std::string_view view, std::string_view backend, int64_t pid);
std::string health_line(std::string_view view, const Health &h);
std::string exit_line(int code);

// The process's stream: closed unless --status-fd opened it.
class Stream {
  public:
    // Writes the lines to descriptor @fd from now on (and marks it close-on-exec). "" or,
    // when @fd is not an open descriptor fusescope can write, why not (one line).
    std::string open(int fd);
    bool is_open() const { return fd_ >= 0; }
    // One write(2) per line; a descriptor that fails a write is given up (no more lines).
    void write(std::string_view line);

  private:
    std::mutex mu_;
    int fd_ = -1;
};
Stream &stream();

// Shorthands for the process's stream (nothing happens while it is closed).
void watching(std::string_view view, std::string_view backend);
void health(std::string_view view, const Health &h);
void exit(int code);

} // namespace fusescope::status
