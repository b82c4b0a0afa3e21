#include "process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fusescope {

namespace {

std::string slurp(const char *path) {
    std::ifstream f(path);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

bool number(std::string_view s, double *out) {
    unsigned long long v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size())
        return false;
    *out = static_cast<double>(v);
    return true;
}

} // namespace

bool parse_proc_stat(std::string_view stat, double ticks_per_s, double page_bytes,
                     double boot_time_s, ProcessStats *out) {
    // "pid (comm) state ppid ...": comm may hold spaces and ')', so fields start after
    // the last ')'; field 3 (state) is the first after it (proc(5) numbers from 1).
    const auto paren = stat.rfind(')');
    if (paren == std::string_view::npos || ticks_per_s <= 0)
        return false;
    std::vector<std::string_view> f;
    std::string_view rest = stat.substr(paren + 1);
    while (!rest.empty()) {
        const auto start = rest.find_first_not_of(" \n");
        if (start == std::string_view::npos)
            break;
        rest.remove_prefix(start);
        const auto end = rest.find_first_of(" \n");
        f.push_back(rest.substr(0, end));
        rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    }
    auto field = [&](int n, double *v) { // proc(5)'s field number
        const size_t i = static_cast<size_t>(n - 3);
        return i < f.size() && number(f[i], v);
    };
    double utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
    if (!field(14, &utime) || !field(15, &stime) || !field(22, &start) || !field(23, &vsize) ||
        !field(24, &rss))
        return false;
    out->cpu_seconds = (utime + stime) / ticks_per_s;
    out->start_time_seconds = boot_time_s + start / ticks_per_s;
    out->virtual_bytes = vsize;
    out->resident_bytes = rss * page_bytes;
    return true;
}

std::optional<double> parse_boot_time(std::string_view proc_stat) {
    size_t pos = 0;
    while (pos < proc_stat.size()) {
        auto nl = proc_stat.find('\n', pos);
        std::string_view line = proc_stat.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
        if (line.substr(0, 6) == "btime ") {
            double v = 0;
            if (number(line.substr(6), &v))
                return v;
            return std::nullopt;
        }
        if (nl == std::string_view::npos)
            break;
        pos = nl + 1;
    }
    return std::nullopt;
}

ProcessStats read_process_stats() {
    ProcessStats p;
    static const double boot = parse_boot_time(slurp("/proc/stat")).value_or(0);
    parse_proc_stat(slurp("/proc/self/stat"), static_cast<double>(sysconf(_SC_CLK_TCK)),
                    static_cast<double>(sysconf(_SC_PAGESIZE)), boot, &p);
    if (DIR *d = opendir("/proc/self/fd")) {
        double n = 0;
        while (const dirent *e = readdir(d))
            if (e->d_name[0] != '.')
                ++n;
        closedir(d);
        p.open_fds = n - 1; // not the descriptor that lists them
    }
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        p.max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : static_cast<double>(rl.rlim_cur);
    return p;
}

} // namespace fusescope
