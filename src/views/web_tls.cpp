#include "web_tls.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace fusescope {

namespace {

bool read_file(const std::string &path, std::string *out, std::string *why) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        *why = path + ": " + std::strerror(errno);
        return false;
    }
    std::ostringstream s;
    s << f.rdbuf();
    *out = s.str();
    return true;
}

gnutls_datum_t datum(const std::string &s) {
    return {reinterpret_cast<unsigned char *>(const_cast<char *>(s.data())),
            static_cast<unsigned>(s.size())};
}

struct CredsDeleter {
    void operator()(gnutls_certificate_credentials_st *c) const {
        gnutls_certificate_free_credentials(c);
    }
};

} // namespace

std::string tls_priorities(TlsVersion min, TlsVersion max) {
    static constexpr const char *kVers[] = {"VERS-TLS1.0", "VERS-TLS1.1", "VERS-TLS1.2",
                                            "VERS-TLS1.3"};
    std::string p = "NORMAL:-VERS-ALL";
    for (int v = static_cast<int>(max); v >= static_cast<int>(min); --v)
        p += std::string(":+") + kVers[v];
    return p;
}

std::optional<TlsMaterial> load_tls_material(const TlsServerConfig &c, std::string *error) {
    const std::string f = "tls_server_config.";
    TlsMaterial m;
    m.client_auth = c.client_auth;
    m.priorities = tls_priorities(c.min_version, c.max_version);
    std::string why;
    if (!read_file(c.cert_file, &m.cert_pem, &why)) {
        *error = f + "cert_file: " + why;
        return std::nullopt;
    }
    if (!read_file(c.key_file, &m.key_pem, &why)) {
        *error = f + "key_file: " + why;
        return std::nullopt;
    }
    if (!c.client_ca_file.empty() && !read_file(c.client_ca_file, &m.ca_pem, &why)) {
        *error = f + "client_ca_file: " + why;
        return std::nullopt;
    }

    gnutls_x509_crt_t *crts = nullptr;
    unsigned ncrts = 0;
    gnutls_datum_t cert = datum(m.cert_pem), key = datum(m.key_pem);
    if (gnutls_x509_crt_list_import2(&crts, &ncrts, &cert, GNUTLS_X509_FMT_PEM, 0) < 0 ||
        ncrts == 0) {
        *error = f + "cert_file: " + c.cert_file + " holds no PEM certificate";
        return std::nullopt;
    }
    for (unsigned i = 0; i < ncrts; ++i)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    gnutls_x509_privkey_t pk = nullptr;
    gnutls_x509_privkey_init(&pk);
    const int kr = gnutls_x509_privkey_import2(pk, &key, GNUTLS_X509_FMT_PEM, nullptr, 0);
    gnutls_x509_privkey_deinit(pk);
    if (kr < 0) {
        *error = f + "key_file: " + c.key_file + " holds no unencrypted PEM private key (" +
                 gnutls_strerror(kr) + ")";
        return std::nullopt;
    }
    gnutls_certificate_credentials_t raw = nullptr;
    if (gnutls_certificate_allocate_credentials(&raw) < 0) {
        *error = "GnuTLS: cannot allocate credentials";
        return std::nullopt;
    }
    std::unique_ptr<gnutls_certificate_credentials_st, CredsDeleter> creds(raw);
    if (int r =
            gnutls_certificate_set_x509_key_mem2(raw, &cert, &key, GNUTLS_X509_FMT_PEM, nullptr, 0);
        r < 0) {
        *error = f + "key_file: " + c.key_file + " does not go with cert_file " + c.cert_file +
                 " (" + gnutls_strerror(r) + ")";
        return std::nullopt;
    }
    if (!m.ca_pem.empty()) {
        gnutls_datum_t ca = datum(m.ca_pem);
        if (gnutls_certificate_set_x509_trust_mem(raw, &ca, GNUTLS_X509_FMT_PEM) <= 0) {
            *error = f + "client_ca_file: " + c.client_ca_file + " holds no PEM certificate";
            return std::nullopt;
        }
    }
    return m;
}

} // namespace fusescope
