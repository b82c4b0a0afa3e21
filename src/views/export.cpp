// `fusescope export`: a Prometheus exporter. prometheus-cpp's Exposer (civetweb)
// serves /metrics from ExportCollector, which summarizes the state model at
// scrape time; the session's data loop runs on this thread. `/` is a small HTML page
// linking to /metrics, served from civetweb's begin_request callback (the
// Exposer has no handler API of its own).
//
// Default listen address: 127.0.0.1:kDefaultPort, loopback only. The port:
// Prometheus keeps a wiki list of default exporter ports ("Default port
// allocations"), and its original exporter range 9100-9999 is fully allocated
// (every port there belongs to some exporter), so no port in it is free to take
// without colliding with a registered exporter. fusescope uses 10100, just
// above that range, and should be registered on the wiki before a release.
#include "export_collector.h"

#include "fusescope/core/exit_codes.h"
#include "fusescope/core/privileges.h"
#include "fusescope/views/views.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <fmt/format.h>
#include <prometheus/exposer.h>

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fusescope {

namespace {

constexpr uint16_t kDefaultPort = 10100;

struct ListenAddr {
    std::string host; // numeric, without brackets
    bool v6 = false;
    uint16_t port = 0;
    std::string civet() const {
        return v6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
    }
    std::string url() const { return fmt::format("http://{}", civet()); }
};

// ADDR:PORT with ADDR an IPv4 literal, [IPv6 literal] or "localhost"; PORT 1..65535.
// (Debian's civetweb is built without IPv6: run_export refuses [IPv6] then.)
std::optional<ListenAddr> parse_listen(const std::string &s, std::string *why) {
    if (s.empty())
        return ListenAddr{"127.0.0.1", false, kDefaultPort};
    ListenAddr a;
    std::string port;
    if (s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') {
            *why = "expected [IPV6]:PORT";
            return std::nullopt;
        }
        a.host = s.substr(1, close - 1);
        a.v6 = true;
        port = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string::npos) {
            *why = "expected ADDR:PORT";
            return std::nullopt;
        }
        a.host = s.substr(0, colon);
        port = s.substr(colon + 1);
        if (a.host == "localhost")
            a.host = "127.0.0.1";
        if (a.host.find(':') != std::string::npos) {
            *why = "write IPv6 addresses as [ADDR]:PORT";
            return std::nullopt;
        }
    }
    unsigned char buf[sizeof(in6_addr)];
    if (a.host.empty() || inet_pton(a.v6 ? AF_INET6 : AF_INET, a.host.c_str(), buf) != 1) {
        *why = fmt::format("'{}' is not a numeric IP{} address", a.host, a.v6 ? "v6" : "v4");
        return std::nullopt;
    }
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p == 0 ||
        p > 65535) {
        *why = fmt::format("'{}' is not a port number (1-65535)", port);
        return std::nullopt;
    }
    a.port = static_cast<uint16_t>(p);
    return a;
}

// Try the bind ourselves first: civetweb only says "null context" when it fails.
// 0 on success, else errno.
int try_bind(const ListenAddr &a) {
    int fd = socket(a.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); // as civetweb does
    int rc;
    if (a.v6) {
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(a.port);
        inet_pton(AF_INET6, a.host.c_str(), &sa.sin6_addr);
        rc = bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa);
    } else {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(a.port);
        inet_pton(AF_INET, a.host.c_str(), &sa.sin_addr);
        rc = bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa);
    }
    int err = rc == 0 ? 0 : errno;
    if (rc == 0 && listen(fd, 1) != 0)
        err = errno;
    close(fd);
    return err;
}

constexpr const char kIndexHtml[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>fusescope "
    "exporter</title></head>\n"
    "<body><h1>fusescope exporter</h1>\n"
    "<p>FUSE direct-IO write locking, IO modes and lock waits, per mount.</p>\n"
    "<p><a href=\"/metrics\">Metrics</a></p>\n</body></html>\n";

int begin_request(mg_connection *conn) {
    const mg_request_info *ri = mg_get_request_info(conn);
    if (!ri || !ri->local_uri || std::strcmp(ri->local_uri, "/") != 0)
        return 0; // civetweb / the Exposer handle it (/metrics, else 404)
    const long long len = static_cast<long long>(sizeof kIndexHtml - 1);
    mg_send_http_ok(conn, "text/html; charset=utf-8", len);
    if (std::strcmp(ri->request_method, "HEAD") != 0)
        mg_write(conn, kIndexHtml, sizeof kIndexHtml - 1);
    return 200;
}

} // namespace

int run_export(const SessionOptions &so_in, const ExportOptions &e) {
    std::string why;
    auto addr = parse_listen(e.listen, &why);
    if (!addr) {
        fmt::print(stderr, "fusescope export: bad --listen '{}': {}\n", e.listen, why);
        return exit_code::kUsage;
    }
    if (addr->v6 && !mg_check_feature(8)) { // 8: IPv6 (civetweb.h)
        fmt::print(stderr,
                   "fusescope export: cannot listen on {}: this civetweb has no IPv6 support\n",
                   addr->civet());
        return exit_code::kEnvironment;
    }
    if (int err = try_bind(*addr)) {
        fmt::print(stderr, "fusescope export: cannot listen on {}: {}\n", addr->civet(),
                   err == EADDRINUSE ? "address already in use" : std::strerror(err));
        return exit_code::kEnvironment;
    }

    // Large transient buffers (a read's changed entries, a scrape's families) straight
    // from mmap and back on free: glibc's default raises this threshold to the largest
    // block freed so far, after which such buffers stay in the heap.
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);

    SessionOptions so = so_in;
    so.interval_s = e.interval_s;
    std::string err;
    int code = exit_code::kFailure;
    auto s = Session::open(so, &err, &code);
    if (!s) {
        fmt::print(stderr, "fusescope export: {}\n", err);
        return code;
    }
    // Attached: from here on only the census needs privileges (see privileges.h). Before
    // the Exposer starts its threads, so they inherit the reduced sets.
    if (std::string cap_err; !drop_privileges(&cap_err))
        fmt::print(stderr, "fusescope export: warning: could not drop capabilities: {}\n", cap_err);

    ExporterSelfInfo self;
    self.backend = std::string(to_string(s->plan().backend));
    for (const auto &r : s->plan().roles)
        self.roles.emplace_back(std::string(to_string(r.role)), r.available);
    self.programs_attached = s->backend().attached().size();
    Session *sp = s.get();
    auto collector =
        std::make_shared<ExportCollector>([sp](size_t top_k) { return sp->model().summary(top_k); },
                                          std::move(self), e.per_inode_top);

    static CivetCallbacks callbacks;
    callbacks.begin_request = begin_request;
    std::unique_ptr<prometheus::Exposer> exposer;
    try {
        // civetweb gives each connection a worker thread until its request is complete:
        // without a request timeout, a few idle connections lock scrapes out for good.
        exposer = std::make_unique<prometheus::Exposer>(
            std::vector<std::string>{"listening_ports", addr->civet(), "num_threads", "4",
                                     "request_timeout_ms", "2000"},
            &callbacks);
        exposer->RegisterCollectable(collector);
    } catch (const std::exception &ex) {
        fmt::print(stderr, "fusescope export: cannot listen on {}: {}\n", addr->civet(), ex.what());
        return exit_code::kEnvironment;
    }
    fmt::print(stderr, "fusescope export: serving {}/metrics ({} backend)\n", addr->url(),
               to_string(s->plan().backend));
    std::fflush(stderr);

    try {
        // The model keeps the per-device sums and scrapes read them; per tick only give
        // back what the heap holds free (every 10th: malloc_trim walks the free lists).
        // Without it a long-running exporter keeps the high-water mark of its transient
        // buffers (measured: 24.8 MB -> 17.8 MB after 40k files created and written).
        unsigned ticks = 0;
        s->run([] { return true; }, {},
               [&] {
                   if (++ticks % 10 == 0)
                       malloc_trim(0);
               });
    } catch (const std::exception &ex) {
        fmt::print(stderr, "fusescope export: {}\n", ex.what());
        return exit_code::kFailure;
    }
    exposer.reset(); // stop serving before the session (and its model) go away
    return exit_code::kOk;
}

} // namespace fusescope
