// The exporter's HTTP(S) server: libmicrohttpd with one internal epoll thread per listen
// address, so idle or half-open clients cost a socket and a small buffer each, never a
// thread (civetweb, which it replaced, held a worker per connection until its request
// completed). Per connection: an idle timeout and a request memory bound; per server: a
// connection limit. TLS with GnuTLS (client certificates checked in the handshake, as
// Go's tls.Config does for exporter-toolkit) and HTTP basic auth against bcrypt hashes.
// Private to src/views.
#pragma once

#include "basic_auth.h"
#include "web_tls.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct MHD_Daemon;

namespace fusescope {

struct HttpRequest {
    std::string_view method; // GET or HEAD (others get 405 before the handler)
    std::string_view path;   // without the query string
};

struct HttpResponse {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

struct WebServerOptions {
    std::vector<int> listen_fds;       // bound and listening; the server owns them
    std::optional<TlsMaterial> tls;    // none: plain HTTP
    std::shared_ptr<BasicAuth> auth;   // null or disabled: no authentication
    unsigned max_connections = 1024;   // more are closed as they are accepted
    unsigned idle_timeout_s = 10;      // a connection silent this long is closed
    size_t request_memory = 16 * 1024; // per connection: request line and headers
    // Start the server's threads without any capability (they only answer HTTP), whatever
    // the calling thread holds; a failure to drop is a warning, not an error.
    bool unprivileged_threads = true;
    bool verbose = false; // libmicrohttpd's messages on stderr
};

class WebServer {
  public:
    using Handler = std::function<HttpResponse(const HttpRequest &)>;
    // Called after every answered request, authentication failures included.
    using Observer = std::function<void(std::string_view path, unsigned status)>;

    // nullptr + *error (one line) if a daemon does not start; *warning if the threads kept
    // privileges. @handler runs on the server's threads.
    static std::unique_ptr<WebServer> start(WebServerOptions opts, Handler handler,
                                            Observer observer, std::string *error,
                                            std::string *warning);
    ~WebServer(); // stops every daemon (and closes their connections)
    WebServer(const WebServer &) = delete;
    WebServer &operator=(const WebServer &) = delete;

    size_t connections() const; // open client connections, all addresses

    struct Impl;

  private:
    explicit WebServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace fusescope
