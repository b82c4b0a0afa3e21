#include "fusescope/core/status.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

namespace fusescope::status {

std::string_view name(Kind k) {
    for (const auto &i : kKinds)
        if (i.kind == k)
            return i.name;
    return "";
}

namespace {

nlohmann::ordered_json head(Kind k) {
    nlohmann::ordered_json j;
    j["status"] = name(k);
    return j;
}

std::string text(const nlohmann::ordered_json &j) {
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

} // namespace

std::string watching_line(std::string_view view, std::string_view backend, int64_t pid) {
    auto j = head(Kind::Watching);
    j["view"] = view;
    j["backend"] = backend;
    j["pid"] = pid;
    return text(j);
}

std::string health_line(std::string_view view, const Health &h) {
    auto j = head(Kind::Health);
    j["view"] = view;
#define FS_X(c, field, doc) j[#field] = h.field;
    FS_COUNTER_TABLE(FS_X)
#undef FS_X
#define FS_X(field, doc) j[#field] = h.field;
    FS_FRONTEND_COUNTER_TABLE(FS_X)
#undef FS_X
    return text(j);
}

std::string exit_line(int code) {
    auto j = head(Kind::Exit);
    j["code"] = code;
    return text(j);
}

std::string Stream::open(int fd) {
    const int fl = fd < 0 ? -1 : ::fcntl(fd, F_GETFL);
    if (fl < 0)
        return "--status-fd " + std::to_string(fd) + ": not an open file descriptor";
    if ((fl & O_ACCMODE) == O_RDONLY)
        return "--status-fd " + std::to_string(fd) + ": open for reading only";
    if (fd > STDERR_FILENO) // not inherited by the demo's children
        ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
    std::lock_guard lk(mu_);
    fd_ = fd;
    return "";
}

void Stream::write(std::string_view line) {
    std::lock_guard lk(mu_);
    if (fd_ < 0)
        return;
    // A reader that went away must not kill fusescope with SIGPIPE: blocked for the write,
    // and taken back if this write raised it.
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    while (!line.empty()) {
        const ssize_t n = ::write(fd_, line.data(), line.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0 && errno == EPIPE && !was_pending) {
                const struct timespec zero {};
                sigtimedwait(&pipe_set, nullptr, &zero);
            }
            fd_ = -1; // gone (a closed pipe, a full disk): the views go on without it
            break;
        }
        line.remove_prefix(static_cast<size_t>(n));
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Stream &stream() {
    static Stream s;
    return s;
}

void watching(std::string_view view, std::string_view backend) {
    if (stream().is_open())
        stream().write(watching_line(view, backend, ::getpid()));
}

void health(std::string_view view, const Health &h) {
    if (stream().is_open())
        stream().write(health_line(view, h));
}

void exit(int code) {
    if (stream().is_open())
        stream().write(exit_line(code));
}

} // namespace fusescope::status
