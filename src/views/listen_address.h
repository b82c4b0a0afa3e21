// `--web.listen-address` values (exporter-toolkit's form) and the sockets they open.
// Private to src/views (the exporter); parse_listen_address is pure and unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace fusescope {

inline constexpr uint16_t kDefaultExportPort = 10100; // why this port: export.cpp

struct ListenAddress {
    std::string host; // numeric, without brackets; "" = every address (":PORT")
    bool v6 = false;
    uint16_t port = 0;
    // "127.0.0.1:10100", "[::1]:10100", ":10100"
    std::string text() const;
    // what a client on this machine connects to: "[::1]:10100"; ":PORT" -> "localhost:PORT"
    std::string url_host() const;
};

// ADDR:PORT with ADDR an IPv4 literal, [IPv6 literal], "localhost" (127.0.0.1) or empty
// (":PORT", every address, as node_exporter's ":9100"); PORT 1..65535. "" is the
// default, 127.0.0.1:kDefaultExportPort. nullopt + *why on anything else.
std::optional<ListenAddress> parse_listen_address(const std::string &s, std::string *why);

// A bound, listening, non-blocking socket for @a; -1 with *err = errno on failure.
// ":PORT" binds [::] for IPv4 and IPv6 both (IPV6_V6ONLY off), or 0.0.0.0 where the
// kernel has no IPv6.
int open_listen_socket(const ListenAddress &a, int *err);

} // namespace fusescope
