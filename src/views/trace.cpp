// `fusescope trace`: one line per event, text or JSON lines. The only view
// that asks the BPF side for per-write events (SessionOptions::emit_writes).
#include "fusescope/core/exit_codes.h"
#include "fusescope/model/workload.h"
#include "fusescope/views/json_out.h"
#include "fusescope/views/text_escape.h"
#include "fusescope/views/views.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <unordered_map>

namespace fusescope {

namespace {

std::string_view how_of(const Event &e) { return e.type == EventType::Mmap ? "mmap" : "open"; }

// Who an event names, beyond pid and comm: the program and where it runs.
struct Who {
    std::string exe; // holders and writers only
    Workload where;
};

Who who_of(Session &s, const Event &e) {
    Who w;
    if (e.exe.ino != 0)
        w.exe = s.exe_path(e.exe, e.pid).value_or("");
    if (auto cg = s.cgroup_path(e.cgroup_id))
        w.where = workload_of_cgroup(*cg);
    return w;
}

void who_json(nlohmann::ordered_json &j, const std::string &exe, const Workload &where) {
    if (!exe.empty())
        j["exe"] = exe;
    if (where.known())
        j["cgroup"] = where.cgroup;
    if (!where.unit.empty())
        j["unit"] = where.unit;
    if (!where.container.empty()) {
        j["container"] = where.container;
        j["container_runtime"] = where.runtime;
    }
}

// " [unit mariadb.service]": where the task runs, unless it is the root cgroup.
std::string who_text(const Workload &where) {
    if (!where.known() || where.cgroup == "/")
        return "";
    return " [" + safe_name(where.label()) + "]";
}

nlohmann::ordered_json event_json(const Event &e, const std::string &path, const Who &who) {
    nlohmann::ordered_json j;
    j["ts_ns"] = e.ts_ns;
    j["event"] = to_string(e.type);
    j["pid"] = e.pid;
    j["tid"] = e.tid;
    j["comm"] = e.comm;
    j["dev"] = dev_string(e.key.dev);
    j["ino"] = e.key.ino;
    j["nodeid"] = e.nodeid;
    if (!path.empty())
        j["path"] = path;
    j["cgroup_id"] = e.cgroup_id;
    who_json(j, who.exe, who.where);
    switch (e.type) {
    case EventType::Write:
        j["lock"] = to_string(e.lock_mode);
        j["reason"] = to_string(e.reason);
        j["offset"] = e.offset;
        j["bytes"] = e.bytes;
        j["wait_ns"] = e.wait_ns;
        j["rest_ns"] = e.dur_ns;
        j["async"] = (e.flags & evflag::Async) != 0;
        // sent by another task than its writer: pid/comm are the writer's where it could be
        // named (0/"" where not), tid the writer's thread in the server's pid namespace
        j["other_context"] = (e.flags & evflag::OtherContext) != 0;
        j["io_worker"] = (e.flags & evflag::IoWorker) != 0; // comm: the process's
        break;
    case EventType::Open:
    case EventType::Mmap:
        j["iomode"] = to_string(e.iomode);
        j["open_flags"] = e.open_flags;
        j["ret"] = e.ret;
        if (e.type == EventType::Mmap) {
            j["shared"] = (e.flags & evflag::SharedMap) != 0;
            j["writable"] = (e.flags & evflag::WritableMap) != 0;
        }
        if (e.flags & evflag::Holder) {
            j["mode"] = "cached";
            j["holder"] = {{"pid", e.pid}, {"comm", e.comm}, {"how", how_of(e)}};
        }
        j["entered_cache"] = (e.flags & evflag::EnteredCache) != 0;
        if (e.type == EventType::Open)
            j["write_open"] = (e.flags & evflag::WriteOpen) != 0;
        break;
    case EventType::Release:
        j["fh"] = e.fh;
        j["was_holder"] = (e.flags & evflag::WasHolder) != 0;
        j["left_cache"] = (e.flags & evflag::LeftCache) != 0;
        if (e.flags & evflag::LeftCache)
            j["mode"] = "none";
        j["iocachectr"] = e.iocachectr;
        break;
    case EventType::DrainWait:
        j["wait_ns"] = e.wait_ns;
        j["via"] = (e.flags & evflag::SharedMap) ? "mmap" : "open";
        break;
    case EventType::ModeSeen:
        j["mode"] = (e.flags & evflag::EnteredCache) ? "cached" : "none";
        j["iocachectr"] = e.iocachectr;
        break;
    case EventType::OpenSent: // ino is 0: the open's own event follows the opener's census
        j["create"] = (e.flags & evflag::Create) != 0; // nodeid: the parent directory's
        break;
    }
    return j;
}

std::string event_line(const Event &e, const std::string &where, const std::string &head);

// One text line: names escaped (text_escape.h), where the task runs at the end.
std::string event_text(const Event &e, const std::string &path, const Who &who) {
    std::string where =
        path.empty() ? fmt::format("{} ino {}", dev_string(e.key.dev), e.key.ino) : safe_name(path);
    std::string head =
        fmt::format("{:>14.6f} {:<10} {:>7} {:<16} ", static_cast<double>(e.ts_ns) / 1e9,
                    to_string(e.type), e.pid, safe_name(e.comm));
    return event_line(e, where, head) + who_text(who.where);
}

std::string event_line(const Event &e, const std::string &where, const std::string &head) {
    switch (e.type) {
    case EventType::Write:
        return head +
               fmt::format(
                   "{} {}{} off={} bytes={} wait={}us", where, to_string(e.lock_mode),
                   e.reason == WriteReason::Shared ? "" : fmt::format(" ({})", to_string(e.reason)),
                   e.offset, e.bytes, e.wait_ns / 1000);
    case EventType::Open:
        return head + fmt::format("{} iomode={}{}{}", where, to_string(e.iomode),
                                  (e.flags & evflag::Holder) ? " -> holds cache mode" : "",
                                  e.ret ? fmt::format(" ret={}", e.ret) : "");
    case EventType::Mmap:
        return head + fmt::format("{} {}{} iomode={}{}", where,
                                  (e.flags & evflag::SharedMap) ? "shared" : "private",
                                  (e.flags & evflag::WritableMap) ? ",writable" : "",
                                  to_string(e.iomode),
                                  (e.flags & evflag::Holder) ? " -> holds cache mode" : "");
    case EventType::Release:
        return head + fmt::format("{} fh={}{}", where, e.fh,
                                  (e.flags & evflag::LeftCache) ? " -> inode left cache mode" : "");
    case EventType::DrainWait:
        return head + fmt::format("{} waited {}us for parallel writers to drain ({})", where,
                                  e.wait_ns / 1000,
                                  (e.flags & evflag::SharedMap) ? "mmap" : "open");
    case EventType::OpenSent:
        return head +
               fmt::format("{} nodeid {}: {} sent", dev_string(e.key.dev), e.nodeid,
                           (e.flags & evflag::Create) ? "FUSE_CREATE in directory" : "FUSE_OPEN");
    case EventType::ModeSeen:
        return head + fmt::format("{} cache io mode {} (iocachectr={})", where,
                                  (e.flags & evflag::EnteredCache) ? "on" : "off", e.iocachectr);
    }
    return head;
}

} // namespace

int run_trace(const SessionOptions &so_in, const TraceOptions &to) {
    SessionOptions so = so_in;
    so.emit_writes = true;
    so.emit_all_opens = true;
    int code = exit_code::kFailure;
    auto s = Session::open_for_view(so, "trace", &code);
    if (!s)
        return code;
    std::unordered_map<InodeKey, std::string, InodeKeyHash> paths;
    auto refresh_paths = [&] { // every refresh: no copy of the whole model
        s->model().snapshot_each(
            [&](InodeView &&iv) {
                if (!iv.path.empty())
                    paths[iv.key] = std::move(iv.path);
            },
            ViewDetail::Brief);
    };
    refresh_paths();
    // Where trace starts matters: the census tells who already holds cache mode.
    for (const auto &iv : s->model().snapshot().inodes) {
        for (const auto &h : iv.holders) {
            if (to.json) {
                nlohmann::ordered_json j;
                j["ts_ns"] = h.since_ns;
                j["event"] = "census";
                j["pid"] = h.pid;
                j["comm"] = h.comm;
                j["dev"] = dev_string(iv.key.dev);
                j["ino"] = iv.key.ino;
                j["nodeid"] = iv.nodeid;
                if (!iv.path.empty())
                    j["path"] = iv.path;
                j["cgroup_id"] = h.cgroup_id;
                who_json(j, h.exe_path, h.where);
                j["mode"] = to_string(iv.mode.kind);
                j["holder"] = {{"pid", h.pid}, {"comm", h.comm}, {"how", to_string(h.how)}};
                fmt::print("{}\n", json_text(j));
            } else {
                fmt::print(
                    "{:>14} {:<10} {:>7} {:<16} {} {} (already held when fusescope started){}\n",
                    "-", "census", h.pid, safe_name(h.comm),
                    iv.path.empty() ? fmt::format("{} ino {}", dev_string(iv.key.dev), iv.key.ino)
                                    : safe_name(iv.path),
                    to_string(iv.mode), who_text(h.where));
            }
        }
    }
    fmt::print(stderr, "fusescope trace: watching ({} backend)\n", to_string(s->plan().backend));
    std::fflush(stderr);
    s->watching();
    if (!to.json)
        fmt::print("{:>14} {:<10} {:>7} {:<16} {}\n", "TIME(s)", "EVENT", "PID", "COMM", "DETAIL");
    std::fflush(stdout);
    const uint64_t deadline =
        to.duration_s > 0 ? monotonic_ns() + static_cast<uint64_t>(to.duration_s * 1e9) : 0;
    s->run([&] { return !deadline || monotonic_ns() < deadline; },
           [&](const Event &e) {
               auto it = paths.find(e.key);
               if (it == paths.end()) // before the model has it: the kernel's name at its open
                   if (auto kp = s->kernel_path(e.key))
                       it = paths.emplace(e.key, std::move(*kp)).first;
               const std::string &p = it == paths.end() ? std::string() : it->second;
               const Who who = who_of(*s, e);
               if (to.json)
                   fmt::print("{}\n", json_text(event_json(e, p, who)));
               else
                   fmt::print("{}\n", event_text(e, p, who));
               std::fflush(stdout);
           },
           refresh_paths);
    auto snap = s->model().snapshot();
    const Health &h = snap.health;
    if (h.events_lost)
        fmt::print(stderr, "fusescope trace: {} events lost (ring buffer full)\n", h.events_lost);
    if (h.writes_unresolved || h.task_map_full || h.inode_map_full || h.req_map_full ||
        h.prog_misses)
        fmt::print(
            stderr,
            "fusescope trace: health: writes_unresolved={} task_map_full={} inode_map_full={} "
            "req_map_full={} prog_misses={}\n",
            h.writes_unresolved, h.task_map_full, h.inode_map_full, h.req_map_full, h.prog_misses);
    return exit_code::kOk;
}

} // namespace fusescope
