// `--web.config.file`: the exporter-toolkit web configuration that node_exporter and the
// other Prometheus exporters read (TLS and basic auth), with the same field names, defaults
// and checks. Private to src/views; parse_web_config is pure and unit-tested.
//
//   tls_server_config:
//     cert_file: server.crt          # relative paths: to the config file's directory
//     key_file: server.key
//     client_ca_file: ca.crt         # with a client_auth_type that asks for a certificate
//     client_auth_type: RequireAndVerifyClientCert
//     min_version: TLS12             # TLS10, TLS11, TLS12 (default), TLS13
//     max_version: TLS13
//   basic_auth_users:
//     prometheus: $2y$10$...         # bcrypt hashes (htpasswd -nBC 10 USER)
//   http_server_config:
//     http2: true                    # accepted and ignored: fusescope serves HTTP/1.1
//
// Anything else (cert/key inline, cipher_suites, curve_preferences, headers, ...) is an
// error that names the field, as exporter-toolkit's strict YAML reading makes unknown
// fields: a setting fusescope would silently not apply is worse than none.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace fusescope {

// Go's tls.ClientAuthType, under exporter-toolkit's names.
enum class ClientAuth {
    None,             // NoClientCert (default)
    Request,          // RequestClientCert: asked for, not required, not verified
    RequireAny,       // RequireAnyClientCert: required, not verified
    VerifyIfGiven,    // VerifyClientCertIfGiven
    RequireAndVerify, // RequireAndVerifyClientCert
};
bool asks_for_client_cert(ClientAuth a);
bool verifies_client_cert(ClientAuth a);

enum class TlsVersion { Tls10, Tls11, Tls12, Tls13 };

struct TlsServerConfig {
    std::string cert_file, key_file, client_ca_file; // resolved against the file's directory
    ClientAuth client_auth = ClientAuth::None;
    TlsVersion min_version = TlsVersion::Tls12;
    TlsVersion max_version = TlsVersion::Tls13;
};

struct WebConfig {
    std::optional<TlsServerConfig> tls;                  // none: plain HTTP
    std::map<std::string, std::string> basic_auth_users; // user -> bcrypt hash; empty: no auth
};

// @yaml: the file's text; @dir: its directory, for relative paths. On error nullopt and
// *error = "FIELD: what is wrong" (FIELD as dotted path, e.g. tls_server_config.min_version).
std::optional<WebConfig> parse_web_config(std::string_view yaml, const std::string &dir,
                                          std::string *error);

// Reads and parses @path; errors as above, or "cannot read PATH: ...".
std::optional<WebConfig> load_web_config(const std::string &path, std::string *error);

} // namespace fusescope
