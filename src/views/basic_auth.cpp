#include "basic_auth.h"

#include <crypt.h>
#include <gnutls/crypto.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace fusescope {

namespace {

// bcrypt of "fusescope" at cost 10: what an unknown user's password is checked against.
constexpr const char kDummyHash[] = "$2b$10$v4xXX/CpiluKaq1X6yEp6uGEh.cnlt48NjzCm52q49Kak6DbZ3RY.";

bool bcrypt_b64(char c) {
    return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9');
}

} // namespace

bool is_bcrypt_hash(std::string_view h) {
    if (h.size() != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$')
        return false;
    if (h[2] != 'a' && h[2] != 'b' && h[2] != 'y')
        return false;
    if (h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9')
        return false;
    const int cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost < 4 || cost > 31)
        return false;
    return std::all_of(h.begin() + 7, h.end(), bcrypt_b64);
}

bool bcrypt_matches(const std::string &password, const std::string &hash) {
    auto data = std::make_unique<crypt_data>(); // ~32 KB: not on the server thread's stack
    const char *out = crypt_r(password.c_str(), hash.c_str(), data.get());
    if (!out || out[0] == '*' || std::strlen(out) != hash.size()) // "*0"/"*1": failure token
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < hash.size(); ++i)
        diff |= static_cast<unsigned char>(out[i] ^ hash[i]);
    return diff == 0;
}

BasicAuth::BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}

bool BasicAuth::check(const std::string &user, const std::string &password) {
    auto it = users_.find(user);
    const std::string &hash = it != users_.end() ? it->second : std::string(kDummyHash);
    std::string key = user;
    key.push_back('\0');
    key += hash;
    key.push_back('\0');
    key += password;
    Digest d{};
    gnutls_hash_fast(GNUTLS_DIG_SHA256, key.data(), key.size(), d.data());
    std::fill(key.begin(), key.end(), '\0');
    {
        std::lock_guard lk(mu_);
        if (it != users_.end() && std::find(ok_.begin(), ok_.end(), d) != ok_.end())
            return true;
    }
    // outside the lock: other requests' cached checks need not wait for this bcrypt run
    const bool ok = bcrypt_matches(password, hash) && it != users_.end();
    if (ok) {
        std::lock_guard lk(mu_);
        if (std::find(ok_.begin(), ok_.end(), d) == ok_.end()) {
            if (ok_.size() == kRemembered)
                ok_.erase(ok_.begin());
            ok_.push_back(d);
        }
    }
    return ok;
}

} // namespace fusescope
