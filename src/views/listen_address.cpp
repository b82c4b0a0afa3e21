#include "listen_address.h"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

namespace fusescope {

std::string ListenAddress::text() const {
    if (host.empty())
        return fmt::format(":{}", port);
    return v6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

std::string ListenAddress::url_host() const {
    return host.empty() ? fmt::format("localhost:{}", port) : text();
}

std::optional<ListenAddress> parse_listen_address(const std::string &s, std::string *why) {
    if (s.empty())
        return ListenAddress{"127.0.0.1", false, kDefaultExportPort};
    ListenAddress a;
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
        if (a.host.empty()) {
            *why = "'[]' is not an IPv6 address (every address: ':PORT')";
            return std::nullopt;
        }
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
    if (!a.host.empty() && inet_pton(a.v6 ? AF_INET6 : AF_INET, a.host.c_str(), buf) != 1) {
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

namespace {

int bind_listen(int family, const ListenAddress &a, int *err) {
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    int one = 1, zero = 0;
    // a restarted exporter must not wait for its old connections' TIME_WAIT
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc;
    if (family == AF_INET6) {
        // [::1] is IPv6 only; ":PORT" on [::] takes IPv4 too, whatever the sysctl says
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, a.host.empty() ? &zero : &one, sizeof one);
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(a.port);
        sa.sin6_addr = in6addr_any;
        if (!a.host.empty())
            inet_pton(AF_INET6, a.host.c_str(), &sa.sin6_addr);
        rc = bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa);
    } else {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(a.port);
        sa.sin_addr.s_addr = htonl(INADDR_ANY);
        if (!a.host.empty())
            inet_pton(AF_INET, a.host.c_str(), &sa.sin_addr);
        rc = bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa);
    }
    if (rc != 0 || listen(fd, SOMAXCONN) != 0) {
        *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

} // namespace

int open_listen_socket(const ListenAddress &a, int *err) {
    if (!a.host.empty())
        return bind_listen(a.v6 ? AF_INET6 : AF_INET, a, err);
    int fd = bind_listen(AF_INET6, a, err);
    if (fd < 0 && *err == EAFNOSUPPORT)
        fd = bind_listen(AF_INET, a, err);
    return fd;
}

} // namespace fusescope
