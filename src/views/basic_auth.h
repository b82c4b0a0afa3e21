// HTTP basic auth against bcrypt hashes, as exporter-toolkit does it: libxcrypt's crypt_r
// checks $2a$, $2b$ and $2y$ hashes; an unknown user costs the same bcrypt run as a known
// one (no telling users apart by time); a successful check is remembered (bcrypt at cost 10
// takes ~50-100 ms, and Prometheus sends the same credentials every scrape).
// Private to src/views; unit-tested.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace fusescope {

// $2a$, $2b$ or $2y$, a two-digit cost 04..31, '$', 53 characters of bcrypt's base64.
bool is_bcrypt_hash(std::string_view h);

// crypt_r(password, hash) == hash, compared in constant time.
bool bcrypt_matches(const std::string &password, const std::string &hash);

class BasicAuth {
  public:
    explicit BasicAuth(std::map<std::string, std::string> users);
    bool enabled() const { return !users_.empty(); }
    // True if @user exists and @password matches its hash. Thread-safe.
    bool check(const std::string &user, const std::string &password);

  private:
    using Digest = std::array<uint8_t, 32>; // SHA-256 of (user, hash, password)
    static constexpr size_t kRemembered = 64;
    std::map<std::string, std::string> users_;
    std::mutex mu_;
    std::vector<Digest> ok_; // successful checks, oldest first, at most kRemembered
};

} // namespace fusescope
