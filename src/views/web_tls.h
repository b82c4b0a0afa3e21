// The TLS half of `--web.config.file`: the PEM files tls_server_config names, read and
// checked with GnuTLS (the library libmicrohttpd serves them with) before fusescope
// attaches anything, so a bad file is one line naming the field, not a failed start.
#pragma once

#include "web_config.h"

#include <optional>
#include <string>

namespace fusescope {

struct TlsMaterial {
    std::string cert_pem, key_pem, ca_pem; // ca_pem: "" without client_ca_file
    std::string priorities;                // GnuTLS priority string for the version range
    ClientAuth client_auth = ClientAuth::None;
};

// nullopt + *error = "tls_server_config.FIELD: what is wrong" when a file cannot be read,
// holds no certificate or key, or the key does not belong to the certificate.
std::optional<TlsMaterial> load_tls_material(const TlsServerConfig &c, std::string *error);

// "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" for TLS12..TLS13.
std::string tls_priorities(TlsVersion min, TlsVersion max);

} // namespace fusescope
