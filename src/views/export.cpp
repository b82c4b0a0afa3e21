// `fusescope export`: a Prometheus exporter. libmicrohttpd (web_server.h) serves
// /metrics, built at scrape time by ExportCollector from the state model plus the process
// and HTTP families, in prometheus-cpp's text format; the session's data loop runs on
// this thread. Flags and the web configuration file follow exporter-toolkit
// (--web.listen-address, --web.config.file), as node_exporter's do.
//
// Order of start-up: everything that can be wrong with the command line or the web
// configuration is reported (exit 2) before a socket is bound (exit 3), and both before
// any BPF program is loaded. The HTTP server starts before the session attaches, from a
// thread without capabilities: /-/healthy answers at once, /-/ready and /metrics say 503
// until the probes are attached and the first census ran.
//
// Default listen address: 127.0.0.1:kDefaultExportPort, loopback only. The port:
// Prometheus keeps a wiki list of default exporter ports ("Default port
// allocations"), and its original exporter range 9100-9999 is fully allocated
// (every port there belongs to some exporter), so no port in it is free to take
// without colliding with a registered exporter. fusescope uses 10100, just
// above that range, and should be registered on the wiki before a release.
#include "export_collector.h"
#include "export_families.h"
#include "listen_address.h"
#include "web_config.h"
#include "web_server.h"
#include "web_tls.h"

#include "fusescope/core/build_info.h"
#include "fusescope/core/exit_codes.h"
#include "fusescope/views/views.h"

#include <fmt/format.h>
#include <microhttpd.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace fusescope {

namespace {

constexpr const char kIndexHtml[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>fusescope "
    "exporter</title></head>\n"
    "<body><h1>fusescope exporter</h1>\n"
    "<p>FUSE direct-IO write locking, IO modes and lock waits, per mount.</p>\n"
    "<ul><li><a href=\"/metrics\">Metrics</a></li>\n"
    "<li><a href=\"/-/healthy\">Healthy</a></li><li><a href=\"/-/ready\">Ready</a></li></ul>\n"
    "</body></html>\n";
constexpr const char kMetricsType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr unsigned kMaxConnections = 1024;
constexpr unsigned kReservedFds = 128; // BPF objects, maps, links, census, /proc reads

// Raises the soft open-file limit to the hard one (as Go does for node_exporter) and
// returns how many client connections fit under it.
unsigned connection_budget() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 256;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= kMaxConnections + kReservedFds)
        return kMaxConnections;
    return rl.rlim_cur > 2 * kReservedFds ? static_cast<unsigned>(rl.rlim_cur - kReservedFds) : 64;
}

// fusescope_http_* in a prometheus-cpp registry (thread-safe counters).
class HttpMetrics {
  public:
    HttpMetrics()
        : registry_(std::make_shared<prometheus::Registry>()),
          requests_(prometheus::BuildCounter()
                        .Name(std::string(family_def(Family::HttpRequests).name))
                        .Help(std::string(family_def(Family::HttpRequests).help))
                        .Register(*registry_)),
          connections_(prometheus::BuildGauge()
                           .Name(std::string(family_def(Family::HttpConnections).name))
                           .Help(std::string(family_def(Family::HttpConnections).help))
                           .Register(*registry_)
                           .Add({})) {}

    void count(std::string_view path, unsigned status) {
        const bool known =
            std::find(std::begin(kHttpPaths), std::end(kHttpPaths), path) != std::end(kHttpPaths);
        requests_
            .Add({{"handler", known ? std::string(path) : "other"},
                  {"code", std::to_string(status)}})
            .Increment();
    }
    std::vector<prometheus::MetricFamily> collect(size_t connections) {
        connections_.Set(static_cast<double>(connections));
        return registry_->Collect();
    }

  private:
    std::shared_ptr<prometheus::Registry> registry_;
    prometheus::Family<prometheus::Counter> &requests_;
    prometheus::Gauge &connections_;
};

// What the HTTP threads read; the session thread fills it once attached.
struct Served {
    std::atomic<const ExportCollector *> collector{nullptr}; // set: ready
    std::atomic<const WebServer *> server{nullptr};
    HttpMetrics http;
};

HttpResponse answer(const HttpRequest &req, Served &st) {
    const ExportCollector *c = st.collector.load(std::memory_order_acquire);
    if (req.path == "/")
        return {200, "text/html; charset=utf-8", kIndexHtml};
    if (req.path == "/-/healthy")
        return {200, "text/plain; charset=utf-8", "fusescope exporter is healthy\n"};
    if (req.path == "/-/ready") {
        if (!c)
            return {503, "text/plain; charset=utf-8", "fusescope is attaching its probes\n"};
        return {200, "text/plain; charset=utf-8", "fusescope exporter is ready\n"};
    }
    if (req.path == "/metrics") {
        if (!c)
            return {503, "text/plain; charset=utf-8", "fusescope is attaching its probes\n"};
        auto fams = c->Collect();
        for (auto &f : process_families())
            fams.push_back(std::move(f));
        const WebServer *srv = st.server.load(std::memory_order_acquire);
        for (auto &f : st.http.collect(srv ? srv->connections() : 0))
            fams.push_back(std::move(f));
        return {200, kMetricsType, prometheus::TextSerializer().Serialize(fams)};
    }
    return {404, "text/plain; charset=utf-8", "Not Found\n"};
}

std::string urls(const std::vector<ListenAddress> &addrs, bool tls) {
    std::string s;
    for (const auto &a : addrs)
        s += fmt::format("{}{}://{}/metrics", s.empty() ? "" : ", ", tls ? "https" : "http",
                         a.url_host());
    return s;
}

} // namespace

int run_export(const SessionOptions &so_in, const ExportOptions &e) {
    if (e.metrics_reference) {
        fmt::print("{}", metrics_reference_markdown());
        return exit_code::kOk;
    }
    std::vector<ListenAddress> addrs;
    for (const std::string &l : e.listen.empty() ? std::vector<std::string>{""} : e.listen) {
        std::string why;
        auto a = parse_listen_address(l, &why);
        if (!a) {
            fmt::print(stderr, "fusescope export: bad --web.listen-address '{}': {}\n", l, why);
            return exit_code::kUsage;
        }
        addrs.push_back(*a);
    }

    WebServerOptions wo;
    wo.verbose = so_in.verbose;
    if (!e.web_config_file.empty()) {
        std::string why;
        auto wc = load_web_config(e.web_config_file, &why);
        std::optional<TlsMaterial> tls;
        if (wc && wc->tls && !(tls = load_tls_material(*wc->tls, &why)))
            wc.reset();
        if (!wc) {
            fmt::print(stderr, "fusescope export: --web.config.file {}: {}\n", e.web_config_file,
                       why);
            return exit_code::kUsage;
        }
        if (tls && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            fmt::print(stderr,
                       "fusescope export: --web.config.file {}: this libmicrohttpd has no "
                       "TLS support (install Debian's libmicrohttpd12)\n",
                       e.web_config_file);
            return exit_code::kEnvironment;
        }
        wo.tls = std::move(tls);
        wo.auth = std::make_shared<BasicAuth>(std::move(wc->basic_auth_users));
    }

    wo.max_connections = connection_budget();
    for (const auto &a : addrs) {
        int err = 0;
        int fd = open_listen_socket(a, &err);
        if (fd < 0) {
            for (int open_fd : wo.listen_fds)
                close(open_fd);
            fmt::print(stderr, "fusescope export: cannot listen on {}: {}\n", a.text(),
                       err == EADDRINUSE ? "address already in use" : std::strerror(err));
            return exit_code::kEnvironment;
        }
        wo.listen_fds.push_back(fd);
    }
    const bool tls = wo.tls.has_value();
    const bool auth = wo.auth && wo.auth->enabled();

    // A client that goes away mid-answer must not kill the exporter.
    std::signal(SIGPIPE, SIG_IGN);
    // Large transient buffers (a read's changed entries, a scrape's families) straight
    // from mmap and back on free: glibc's default raises this threshold to the largest
    // block freed so far, after which such buffers stay in the heap.
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);

    Served served;
    std::string err, warning;
    auto server = WebServer::start(
        std::move(wo), [&served](const HttpRequest &r) { return answer(r, served); },
        [&served](std::string_view path, unsigned status) { served.http.count(path, status); },
        &err, &warning);
    if (!server) {
        fmt::print(stderr, "fusescope export: {}\n", err);
        return exit_code::kFailure;
    }
    served.server.store(server.get(), std::memory_order_release);
    if (!warning.empty())
        fmt::print(stderr, "fusescope export: warning: {}\n", warning);

    SessionOptions so = so_in;
    so.interval_s = e.interval_s;
    so.bpf_stats = e.bpf_stats;
    int code = exit_code::kFailure;
    auto s = Session::open_for_view(so, "export", &code);
    if (!s)
        return code;

    ExporterSelfInfo self;
    self.version = std::string(build_version());
    self.revision = std::string(build_revision());
    self.backend = std::string(to_string(s->plan().backend));
    self.kernel = s->facts().release;
    for (const auto &r : s->plan().roles)
        self.roles.emplace_back(std::string(to_string(r.role)), r.available);
    self.programs_attached = s->backend().attached().size();
    Session *sp = s.get();
    ExportCollector collector([sp](size_t top_k) { return sp->model().summary(top_k); },
                              std::move(self), e.per_inode_top);
    // Session::open attached the probes and ran the census: ready.
    served.collector.store(&collector, std::memory_order_release);
    fmt::print(stderr, "fusescope export: serving {} ({} backend{}{})\n", urls(addrs, tls),
               to_string(s->plan().backend), tls ? ", TLS" : "", auth ? ", basic auth" : "");
    std::fflush(stderr);
    s->watching();

    int rc = exit_code::kOk;
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
        rc = exit_code::kFailure;
    }
    served.collector.store(nullptr, std::memory_order_release); // not ready while stopping
    server.reset(); // stop serving before the collector and the session go away
    return rc;
}

} // namespace fusescope
