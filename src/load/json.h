// A tiny streaming JSON writer: enough for the one summary object fusescope-load prints.
#pragma once

#include <fmt/core.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace load {

class Json {
  public:
    Json &begin_object() { return open('{'); }
    Json &end_object() { return close('}'); }
    Json &begin_array() { return open('['); }
    Json &end_array() { return close(']'); }

    // Inside an object: the next value's key.
    Json &key(std::string_view k) {
        comma();
        quote(k);
        s_ += ": ";
        after_key_ = true;
        return *this;
    }
    Json &value(std::string_view v) {
        comma();
        quote(v);
        return *this;
    }
    Json &value(const char *v) { return value(std::string_view(v)); }
    Json &value(bool v) {
        comma();
        s_ += v ? "true" : "false";
        return *this;
    }
    Json &value(double v) {
        comma();
        s_ += std::isfinite(v) ? fmt::format("{:.6f}", v) : "null";
        return *this;
    }
    template <typename I>
    requires std::is_integral_v<I> Json &value(I v) {
        comma();
        s_ += fmt::format("{}", v);
        return *this;
    }
    template <typename V> Json &kv(std::string_view k, V v) { return key(k).value(v); }

    const std::string &str() const { return s_; }

  private:
    Json &open(char c) {
        comma();
        s_ += c;
        first_.push_back(true);
        return *this;
    }
    Json &close(char c) {
        first_.pop_back();
        s_ += c;
        return *this;
    }
    void comma() {
        if (after_key_) {
            after_key_ = false;
            return;
        }
        if (!first_.empty()) {
            if (!first_.back())
                s_ += ", ";
            first_.back() = false;
        }
    }
    void quote(std::string_view v) {
        s_ += '"';
        for (char c : v) {
            if (c == '"' || c == '\\')
                s_ += fmt::format("\\{}", c);
            else if (static_cast<unsigned char>(c) < 0x20)
                s_ += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
            else
                s_ += c;
        }
        s_ += '"';
    }

    std::string s_;
    std::vector<bool> first_;
    bool after_key_ = false;
};

} // namespace load
