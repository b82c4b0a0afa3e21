#include "web_config.h"

#include "basic_auth.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>
#include <utility>

namespace fusescope {

bool asks_for_client_cert(ClientAuth a) { return a != ClientAuth::None; }
bool verifies_client_cert(ClientAuth a) {
    return a == ClientAuth::VerifyIfGiven || a == ClientAuth::RequireAndVerify;
}

namespace {

constexpr std::pair<std::string_view, ClientAuth> kClientAuth[] = {
    {"NoClientCert", ClientAuth::None},
    {"RequestClientCert", ClientAuth::Request},
    {"RequireAnyClientCert", ClientAuth::RequireAny},
    {"RequireClientCert", ClientAuth::RequireAny}, // exporter-toolkit's old name for it
    {"VerifyClientCertIfGiven", ClientAuth::VerifyIfGiven},
    {"RequireAndVerifyClientCert", ClientAuth::RequireAndVerify},
};
constexpr std::pair<std::string_view, TlsVersion> kTlsVersions[] = {
    {"TLS10", TlsVersion::Tls10},
    {"TLS11", TlsVersion::Tls11},
    {"TLS12", TlsVersion::Tls12},
    {"TLS13", TlsVersion::Tls13},
};

template <typename T, size_t N>
std::string names_of(const std::pair<std::string_view, T> (&table)[N]) {
    std::string s;
    for (const auto &[name, v] : table)
        s += (s.empty() ? "" : ", ") + std::string(name);
    return s;
}

template <typename T, size_t N>
std::optional<T> lookup(const std::pair<std::string_view, T> (&table)[N], std::string_view name) {
    for (const auto &[n, v] : table)
        if (n == name)
            return v;
    return std::nullopt;
}

// Reading errors carry the field's dotted path; thrown inside, caught at the top.
struct FieldError {
    std::string text;
};
[[noreturn]] void fail(const std::string &field, const std::string &what) {
    throw FieldError{field + ": " + what};
}

std::string join(const std::string &parent, const std::string &key) {
    return parent.empty() ? key : parent + "." + key;
}

// The map at @field (null counts as empty), each key once and one of @known.
void check_map(const YAML::Node &n, const std::string &field,
               std::initializer_list<std::string_view> known) {
    if (n.IsNull())
        return;
    if (!n.IsMap())
        fail(field.empty() ? "(top level)" : field, "expected a map of settings");
    std::set<std::string> seen;
    for (const auto &kv : n) {
        if (!kv.first.IsScalar())
            fail(field.empty() ? "(top level)" : field, "keys must be plain names");
        const std::string key = kv.first.Scalar();
        if (!seen.insert(key).second)
            fail(join(field, key), "given twice");
        bool ok = false;
        for (std::string_view k : known)
            ok = ok || k == key;
        if (!ok) {
            std::string list;
            for (std::string_view k : known)
                list += (list.empty() ? "" : ", ") + std::string(k);
            fail(join(field, key), "not a setting fusescope reads (it reads " + list + ")");
        }
    }
}

// The string at n[key], "" when absent or null.
std::string scalar(const YAML::Node &n, const std::string &field, const char *key) {
    if (n.IsNull())
        return "";
    const YAML::Node v = n[key];
    if (!v.IsDefined() || v.IsNull())
        return "";
    if (!v.IsScalar())
        fail(join(field, key), "expected a string");
    return v.Scalar();
}

std::string resolve(const std::string &dir, const std::string &path) {
    if (path.empty() || path.front() == '/' || dir.empty())
        return path;
    return dir + "/" + path;
}

TlsServerConfig read_tls(const YAML::Node &n, const std::string &dir) {
    const std::string f = "tls_server_config";
    check_map(n, f,
              {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
               "max_version"});
    TlsServerConfig t;
    t.cert_file = resolve(dir, scalar(n, f, "cert_file"));
    t.key_file = resolve(dir, scalar(n, f, "key_file"));
    t.client_ca_file = resolve(dir, scalar(n, f, "client_ca_file"));
    if (t.cert_file.empty())
        fail(f + ".cert_file", "missing (the server's certificate, PEM)");
    if (t.key_file.empty())
        fail(f + ".key_file", "missing (the server's private key, PEM)");
    if (std::string a = scalar(n, f, "client_auth_type"); !a.empty()) {
        auto v = lookup(kClientAuth, a);
        if (!v)
            fail(f + ".client_auth_type", "'" + a + "' is not one of " + names_of(kClientAuth));
        t.client_auth = *v;
    }
    if (!t.client_ca_file.empty() && t.client_auth == ClientAuth::None)
        fail(f + ".client_ca_file",
             "given without a client_auth_type that asks for client certificates");
    if (t.client_ca_file.empty() && verifies_client_cert(t.client_auth))
        fail(f + ".client_ca_file", "needed to verify client certificates (client_auth_type)");
    for (auto [key, out] :
         {std::pair{"min_version", &t.min_version}, std::pair{"max_version", &t.max_version}}) {
        if (std::string v = scalar(n, f, key); !v.empty()) {
            auto ver = lookup(kTlsVersions, v);
            if (!ver)
                fail(join(f, key), "'" + v + "' is not one of " + names_of(kTlsVersions));
            *out = *ver;
        }
    }
    if (t.min_version > t.max_version)
        fail(f + ".min_version", "above max_version");
    return t;
}

std::map<std::string, std::string> read_users(const YAML::Node &n) {
    const std::string f = "basic_auth_users";
    std::map<std::string, std::string> users;
    if (n.IsNull())
        return users;
    if (!n.IsMap())
        fail(f, "expected a map of user: bcrypt hash");
    for (const auto &kv : n) {
        if (!kv.first.IsScalar() || kv.first.Scalar().empty())
            fail(f, "user names must be non-empty strings");
        const std::string user = kv.first.Scalar();
        if (user.find(':') != std::string::npos)
            fail(join(f, user), "a user name cannot contain ':' (HTTP basic auth splits there)");
        if (!kv.second.IsScalar() || !is_bcrypt_hash(kv.second.Scalar()))
            fail(join(f, user), "not a bcrypt hash ($2a$/$2b$/$2y$, cost 04-31; make one with "
                                "`htpasswd -nBC 10 USER`)");
        if (!users.emplace(user, kv.second.Scalar()).second)
            fail(join(f, user), "given twice");
    }
    return users;
}

} // namespace

std::optional<WebConfig> parse_web_config(std::string_view yaml, const std::string &dir,
                                          std::string *error) {
    try {
        const YAML::Node root = YAML::Load(std::string(yaml));
        if (!root.IsDefined() || root.IsNull())
            return WebConfig{}; // an empty file: plain HTTP, no auth (as exporter-toolkit)
        check_map(root, "", {"tls_server_config", "basic_auth_users", "http_server_config"});
        WebConfig c;
        if (root["tls_server_config"])
            c.tls = read_tls(root["tls_server_config"], dir);
        if (root["basic_auth_users"])
            c.basic_auth_users = read_users(root["basic_auth_users"]);
        if (const YAML::Node h = root["http_server_config"]) {
            check_map(h, "http_server_config", {"http2"});
            if (h["http2"] && !h["http2"].IsNull()) {
                bool b = false;
                if (!h["http2"].IsScalar() || !YAML::convert<bool>::decode(h["http2"], b))
                    fail("http_server_config.http2", "expected true or false");
            }
        }
        return c;
    } catch (const FieldError &e) {
        *error = e.text;
    } catch (const YAML::Exception &e) {
        *error = e.mark.is_null()
                     ? "not valid YAML: " + e.msg
                     : fmt::format("line {}: not valid YAML: {}", e.mark.line + 1, e.msg);
    }
    return std::nullopt;
}

std::optional<WebConfig> load_web_config(const std::string &path, std::string *error) {
    std::ifstream f(path);
    if (!f) {
        *error = std::string("cannot read it: ") + std::strerror(errno);
        return std::nullopt;
    }
    std::ostringstream text;
    text << f.rdbuf();
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    return parse_web_config(text.str(), dir.empty() ? "/" : dir, error);
}

} // namespace fusescope
