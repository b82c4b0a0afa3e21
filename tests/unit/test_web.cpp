// The exporter's HTTP side without root: --web.listen-address parsing, the exporter-toolkit
// web configuration (every field and every error names its field), bcrypt checks against
// known vectors, /proc/self/stat parsing, and the libmicrohttpd server over loopback
// (routes, 401 with WWW-Authenticate, 405, idle connections that do not block a request).
#include <gtest/gtest.h>

#include "basic_auth.h"
#include "listen_address.h"
#include "process_stats.h"
#include "web_config.h"
#include "web_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

using namespace fusescope;

namespace {

// The classic bcrypt test vector (OpenBSD / John the Ripper): "U*U" at cost 5.
constexpr const char kUU2a[] = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
constexpr const char kUU2b[] = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
constexpr const char kUU2y[] = "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

std::optional<WebConfig> parse(const std::string &yaml, std::string *err) {
    return parse_web_config(yaml, "/etc/fusescope", err);
}

std::string parse_error(const std::string &yaml) {
    std::string err;
    auto c = parse(yaml, &err);
    EXPECT_FALSE(c.has_value()) << yaml;
    return err;
}

} // namespace

TEST(ListenAddress, ExporterToolkitForms) {
    std::string why;
    auto d = parse_listen_address("", &why);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->text(), "127.0.0.1:10100");
    auto v6 = parse_listen_address("[::1]:9", &why);
    ASSERT_TRUE(v6);
    EXPECT_TRUE(v6->v6);
    EXPECT_EQ(v6->text(), "[::1]:9");
    auto any = parse_listen_address(":9100", &why);
    ASSERT_TRUE(any);
    EXPECT_EQ(any->host, "");
    EXPECT_EQ(any->url_host(), "localhost:9100");
    auto lh = parse_listen_address("localhost:80", &why);
    ASSERT_TRUE(lh);
    EXPECT_EQ(lh->host, "127.0.0.1");
    for (const char *bad : {"nonsense", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "1.2.3:9",
                            "[::1]9", "[::1:9", "::1:9", "host.example:9", "[]:9", "1.2.3.4:80:80",
                            "127.0.0.1:65536", "127.0.0.1:-1", "300.1.1.1:9"}) {
        EXPECT_FALSE(parse_listen_address(bad, &why)) << bad;
        EXPECT_FALSE(why.empty()) << bad;
    }
}

TEST(WebConfig, EmptyFileIsPlainHttpWithoutAuth) {
    std::string err;
    for (const char *text : {"", "# nothing\n", "---\n"}) {
        auto c = parse(text, &err);
        ASSERT_TRUE(c) << err;
        EXPECT_FALSE(c->tls);
        EXPECT_TRUE(c->basic_auth_users.empty());
    }
}

TEST(WebConfig, EveryFieldAsNodeExporterReadsIt) {
    std::string err;
    auto c = parse("tls_server_config:\n"
                   "  cert_file: server.crt\n"
                   "  key_file: /abs/server.key\n"
                   "  client_ca_file: ca.crt\n"
                   "  client_auth_type: RequireAndVerifyClientCert\n"
                   "  min_version: TLS13\n"
                   "  max_version: TLS13\n"
                   "basic_auth_users:\n"
                   "  prometheus: " +
                       std::string(kUU2y) +
                       "\n"
                       "http_server_config:\n"
                       "  http2: true\n",
                   &err);
    ASSERT_TRUE(c) << err;
    ASSERT_TRUE(c->tls);
    EXPECT_EQ(c->tls->cert_file, "/etc/fusescope/server.crt"); // relative to the file
    EXPECT_EQ(c->tls->key_file, "/abs/server.key");
    EXPECT_EQ(c->tls->client_ca_file, "/etc/fusescope/ca.crt");
    EXPECT_EQ(c->tls->client_auth, ClientAuth::RequireAndVerify);
    EXPECT_EQ(c->tls->min_version, TlsVersion::Tls13);
    EXPECT_EQ(c->basic_auth_users.at("prometheus"), kUU2y);

    auto d = parse("tls_server_config:\n  cert_file: a\n  key_file: b\n", &err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(d->tls->client_auth, ClientAuth::None);
    EXPECT_EQ(d->tls->min_version, TlsVersion::Tls12); // exporter-toolkit's default
    EXPECT_EQ(d->tls->max_version, TlsVersion::Tls13);
    auto old = parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: "
                     "RequireClientCert\n",
                     &err);
    ASSERT_TRUE(old) << err;
    EXPECT_EQ(old->tls->client_auth, ClientAuth::RequireAny);
}

TEST(WebConfig, ErrorsNameTheField) {
    const std::string tls = "tls_server_config:\n  cert_file: a\n  key_file: b\n";
    EXPECT_EQ(parse_error("tls_server_config:\n  key_file: b\n")
                  .rfind("tls_server_config.cert_file: missing", 0),
              0u);
    EXPECT_EQ(parse_error("tls_server_config:\n  cert_file: a\n")
                  .rfind("tls_server_config.key_file: missing", 0),
              0u);
    EXPECT_EQ(
        parse_error(tls + "  min_version: TLS14\n").rfind("tls_server_config.min_version:", 0), 0u);
    EXPECT_EQ(parse_error(tls + "  min_version: TLS13\n  max_version: TLS12\n")
                  .rfind("tls_server_config.min_version: above max_version", 0),
              0u);
    EXPECT_EQ(parse_error(tls + "  client_auth_type: Sometimes\n")
                  .rfind("tls_server_config.client_auth_type: 'Sometimes' is not one of", 0),
              0u);
    EXPECT_EQ(
        parse_error(tls + "  client_ca_file: ca\n").rfind("tls_server_config.client_ca_file:", 0),
        0u);
    EXPECT_EQ(parse_error(tls + "  client_auth_type: VerifyClientCertIfGiven\n")
                  .rfind("tls_server_config.client_ca_file: needed", 0),
              0u);
    EXPECT_EQ(parse_error(tls + "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n")
                  .rfind("tls_server_config.cipher_suites: not a setting fusescope reads", 0),
              0u);
    EXPECT_EQ(parse_error(tls + "  cert_file: again\n")
                  .rfind("tls_server_config.cert_file: given twice", 0),
              0u);
    EXPECT_EQ(parse_error("tls_server_config:\n  cert_file: [a]\n  key_file: b\n")
                  .rfind("tls_server_config.cert_file: expected a string", 0),
              0u);
    EXPECT_EQ(parse_error("basic_auth_users:\n  alice: secret\n")
                  .rfind("basic_auth_users.alice: not a bcrypt hash", 0),
              0u);
    EXPECT_EQ(
        parse_error("basic_auth_users: [alice]\n").rfind("basic_auth_users: expected a map", 0),
        0u);
    EXPECT_EQ(parse_error("http_server_config:\n  headers: {X-Frame-Options: deny}\n")
                  .rfind("http_server_config.headers: not a setting", 0),
              0u);
    EXPECT_EQ(parse_error("http_server_config:\n  http2: maybe\n")
                  .rfind("http_server_config.http2: expected true or false", 0),
              0u);
    EXPECT_EQ(parse_error("tls_config:\n  cert_file: a\n").rfind("tls_config: not a setting", 0),
              0u);
    EXPECT_EQ(parse_error("just a string\n").rfind("(top level): expected a map", 0), 0u);
    EXPECT_EQ(parse_error("tls_server_config: {cert_file: a\n").rfind("line ", 0), 0u);
    // every error is one line
    EXPECT_EQ(parse_error("tls_server_config: {cert_file: a\n").find('\n'), std::string::npos);
}

TEST(Bcrypt, KnownVectorsInEveryPrefix) {
    for (const char *h : {kUU2a, kUU2b, kUU2y}) {
        EXPECT_TRUE(is_bcrypt_hash(h)) << h;
        EXPECT_TRUE(bcrypt_matches("U*U", h)) << h;
        EXPECT_FALSE(bcrypt_matches("U*V", h)) << h;
        EXPECT_FALSE(bcrypt_matches("", h)) << h;
    }
    EXPECT_FALSE(is_bcrypt_hash("$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
    EXPECT_FALSE(is_bcrypt_hash("$2b$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
    EXPECT_FALSE(is_bcrypt_hash("$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe"));
    EXPECT_FALSE(is_bcrypt_hash("$1$salt$hash"));
    EXPECT_FALSE(bcrypt_matches("U*U", "$1$abc$notbcrypt"));
}

TEST(BasicAuth, KnownUsersOnlyAndRemembersSuccesses) {
    BasicAuth a(std::map<std::string, std::string>{{"alice", kUU2y}});
    EXPECT_TRUE(a.enabled());
    EXPECT_TRUE(a.check("alice", "U*U"));
    EXPECT_TRUE(a.check("alice", "U*U")); // from the remembered digest
    EXPECT_FALSE(a.check("alice", "wrong"));
    EXPECT_FALSE(a.check("bob", "U*U"));
    EXPECT_FALSE(a.check("", ""));
    EXPECT_FALSE(BasicAuth(std::map<std::string, std::string>{}).enabled());
}

TEST(ProcessStats, ParsesProcSelfStat) {
    // comm with a space and a ')': fields start after the last ')'
    const std::string stat = "4242 (my (odd) comm) S 1 4242 4242 0 -1 4194560 500 0 0 0 "
                             "150 50 0 0 20 0 3 0 1000 123456789 2048 18446744073709551615";
    ProcessStats p;
    ASSERT_TRUE(parse_proc_stat(stat, 100, 4096, 1'600'000'000, &p));
    EXPECT_DOUBLE_EQ(p.cpu_seconds, 2.0);
    EXPECT_DOUBLE_EQ(p.start_time_seconds, 1'600'000'010.0);
    EXPECT_DOUBLE_EQ(p.virtual_bytes, 123456789);
    EXPECT_DOUBLE_EQ(p.resident_bytes, 2048.0 * 4096);
    EXPECT_FALSE(parse_proc_stat("garbage", 100, 4096, 0, &p));
    EXPECT_FALSE(parse_proc_stat("1 (x) S 1 2", 100, 4096, 0, &p));
    EXPECT_EQ(parse_boot_time("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"), 1700000000.0);
    EXPECT_FALSE(parse_boot_time("cpu 1 2 3\n"));
}

namespace {

int loopback_listener(uint16_t *port) {
    std::string why;
    auto a = parse_listen_address("127.0.0.1:1", &why);
    a->port = 0; // any free port
    int err = 0;
    int fd = open_listen_socket(*a, &err);
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    getsockname(fd, reinterpret_cast<sockaddr *>(&sa), &len);
    *port = ntohs(sa.sin_port);
    return fd;
}

int connect_to(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

// One HTTP/1.0 request; the whole answer (the server closes after it).
std::string request(uint16_t port, const std::string &text) {
    int fd = connect_to(port);
    if (fd < 0)
        return "";
    ssize_t sent = send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    std::string got;
    char buf[4096];
    ssize_t n;
    while (sent > 0 && (n = recv(fd, buf, sizeof buf, 0)) > 0)
        got.append(buf, static_cast<size_t>(n));
    close(fd);
    return got;
}

std::string get(uint16_t port, const std::string &path, const std::string &headers = "") {
    return request(port, "GET " + path + " HTTP/1.0\r\n" + headers + "\r\n");
}

struct TestServer {
    uint16_t port = 0;
    std::atomic<bool> ready{false};
    std::atomic<int> observed{0};
    std::unique_ptr<WebServer> server;

    explicit TestServer(std::shared_ptr<BasicAuth> auth = nullptr) {
        WebServerOptions o;
        o.listen_fds = {loopback_listener(&port)};
        o.auth = std::move(auth);
        o.unprivileged_threads = false; // unit tests run unprivileged already
        std::string err, warn;
        server = WebServer::start(
            std::move(o),
            [this](const HttpRequest &r) {
                if (r.path == "/-/ready")
                    return ready ? HttpResponse{200, "text/plain", "ready\n"}
                                 : HttpResponse{503, "text/plain", "not yet\n"};
                if (r.path == "/boom")
                    throw std::runtime_error("boom");
                return HttpResponse{200, "text/plain",
                                    std::string(r.method) + " " + std::string(r.path) + "\n"};
            },
            [this](std::string_view, unsigned) { ++observed; }, &err, &warn);
        EXPECT_TRUE(server) << err;
    }
};

// "503 Service Unavailable" of "HTTP/1.1 503 Service Unavailable\r\n..."
std::string status_line(const std::string &reply) {
    const std::string line = reply.substr(0, reply.find("\r\n"));
    return line.substr(line.find(' ') + 1);
}

} // namespace

TEST(WebServer, RoutesReadinessAndMethods) {
    TestServer t;
    EXPECT_EQ(status_line(get(t.port, "/-/ready")), "503 Service Unavailable");
    t.ready = true;
    EXPECT_EQ(status_line(get(t.port, "/-/ready")), "200 OK");
    const std::string r = get(t.port, "/metrics?x=1");
    EXPECT_NE(r.find("GET /metrics\n"), std::string::npos) << r; // query string not in path
    const std::string post =
        request(t.port, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
    EXPECT_EQ(status_line(post), "405 Method Not Allowed");
    EXPECT_NE(post.find("Allow: GET, HEAD"), std::string::npos) << post;
    const std::string head = request(t.port, "HEAD /x HTTP/1.0\r\n\r\n");
    EXPECT_EQ(status_line(head), "200 OK");
    EXPECT_EQ(head.find("HEAD /x"), std::string::npos); // no body for HEAD
    EXPECT_EQ(status_line(get(t.port, "/boom")), "500 Internal Server Error");
    EXPECT_EQ(t.observed, 6);
}

TEST(WebServer, BasicAuth) {
    TestServer t(std::make_shared<BasicAuth>(std::map<std::string, std::string>{{"alice", kUU2b}}));
    const std::string none = get(t.port, "/x");
    EXPECT_EQ(status_line(none), "401 Unauthorized");
    EXPECT_NE(none.find("WWW-Authenticate: Basic realm=\"fusescope\""), std::string::npos) << none;
    // base64("alice:U*U") = YWxpY2U6VSpV, base64("alice:bad") = YWxpY2U6YmFk
    EXPECT_EQ(status_line(get(t.port, "/x", "Authorization: Basic YWxpY2U6VSpV\r\n")), "200 OK");
    EXPECT_EQ(status_line(get(t.port, "/x", "Authorization: Basic YWxpY2U6YmFk\r\n")),
              "401 Unauthorized");
    EXPECT_EQ(status_line(get(t.port, "/x", "Authorization: Basic !!!!\r\n")), "401 Unauthorized");
    EXPECT_EQ(status_line(get(t.port, "/x", "Authorization: Bearer abc\r\n")), "401 Unauthorized");
}

TEST(WebServer, IdleHalfOpenConnectionsDoNotBlockARequest) {
    TestServer t;
    std::vector<int> idle;
    for (int i = 0; i < 200; ++i) {
        int fd = connect_to(t.port);
        ASSERT_GE(fd, 0);
        send(fd, "GET /metrics HTTP/1.1\r\n", 23, MSG_NOSIGNAL); // never finished
        idle.push_back(fd);
    }
    EXPECT_EQ(status_line(get(t.port, "/x")), "200 OK");
    // the server holds them all (and the one just answered may still be closing)
    EXPECT_GE(t.server->connections(), 200u);
    for (int fd : idle)
        close(fd);
}
