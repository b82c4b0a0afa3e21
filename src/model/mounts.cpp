// Pure mountinfo parsing and lookups (no I/O here; see mounts_io.cpp).
//
// Line format (proc(5)):
//   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//   id parent maj:min root mountpoint opts [optional fields...] - fstype source superopts
#include "fusescope/model/mounts.h"

#include <charconv>
#include <set>
#include <tuple>

namespace fusescope {

bool is_fuse_fstype(std::string_view t) {
    return t == "fuse" || t == "fuseblk" || t == "virtiofs" || t.starts_with("fuse.");
}

std::string unescape_mount_field(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    auto is_oct = [](char c) { return c >= '0' && c <= '7'; };
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && is_oct(s[i + 1]) && is_oct(s[i + 2]) &&
            is_oct(s[i + 3])) {
            int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
            if (v <= 0xFF) {
                out.push_back(static_cast<char>(v));
                i += 3;
                continue;
            }
        }
        out.push_back(s[i]);
    }
    return out;
}

namespace {

template <typename T> bool parse_num(std::string_view s, T &out) {
    if (s.empty())
        return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

std::vector<std::string_view> split_spaces(std::string_view line) {
    std::vector<std::string_view> f;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            ++i;
        size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r')
            ++j;
        if (j > i)
            f.push_back(line.substr(i, j - i));
        i = j;
    }
    return f;
}

// false: malformed line. true with !keep: fine but not FUSE.
bool parse_line(std::string_view line, Mount &m, bool &keep) {
    keep = false;
    auto f = split_spaces(line);
    if (f.size() < 6)
        return false;
    size_t sep = 6;
    while (sep < f.size() && f[sep] != "-")
        ++sep;
    if (sep + 2 >= f.size()) // need "-", fstype and source
        return false;
    if (!parse_num(f[0], m.mount_id) || !parse_num(f[1], m.parent_id))
        return false;
    auto colon = f[2].find(':');
    if (colon == std::string_view::npos || !parse_num(f[2].substr(0, colon), m.major) ||
        !parse_num(f[2].substr(colon + 1), m.minor))
        return false;
    if (m.major >= (1u << 12) || m.minor >= (1u << 20))
        return false; // not representable in the kernel dev_t encoding
    m.kdev = kernel_dev(m.major, m.minor);
    m.root = unescape_mount_field(f[3]);
    m.mount_point = unescape_mount_field(f[4]);
    m.fstype = unescape_mount_field(f[sep + 1]);
    m.source = unescape_mount_field(f[sep + 2]);
    keep = is_fuse_fstype(m.fstype);
    return true;
}

} // namespace

Mounts Mounts::parse(std::string_view text, bool fuse_only) {
    Mounts out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos)
            nl = text.size();
        std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos)
            continue; // blank lines are not errors
        Mount m;
        bool keep = false;
        if (!parse_line(line, m, keep))
            ++out.bad_lines_;
        else if (keep || !fuse_only)
            out.mounts_.push_back(std::move(m));
    }
    return out;
}

const Mount *Mounts::find_by_dev(uint32_t kdev) const {
    const Mount *found = nullptr;
    for (const auto &m : mounts_)
        if (m.kdev == kdev)
            found = &m; // the later one is on top
    return found;
}

const Mount *Mounts::find_by_path(std::string_view p) const {
    const Mount *best = nullptr;
    size_t best_len = 0;
    for (const auto &m : mounts_) {
        std::string_view mp = m.mount_point;
        while (mp.size() > 1 && mp.back() == '/')
            mp.remove_suffix(1);
        bool match = false;
        if (mp == "/")
            match = p.starts_with('/');
        else
            match = p.starts_with(mp) && (p.size() == mp.size() || p[mp.size()] == '/');
        // ">=": of two mounts on the same point, the later (top) one wins.
        if (match && (best == nullptr || mp.size() >= best_len)) {
            best = &m;
            best_len = mp.size();
        }
    }
    return best;
}

std::optional<std::string> Mounts::path_on_mount(uint32_t kdev, std::string_view rel) const {
    auto within = [](std::string_view root, std::string_view p) {
        if (root == "/")
            return p.starts_with('/');
        return p.starts_with(root) && (p.size() == root.size() || p[root.size()] == '/');
    };
    const Mount *best = nullptr;
    for (const auto &m : mounts_)
        if (m.kdev == kdev && within(m.root, rel) && (!best || m.root.size() >= best->root.size()))
            best = &m;
    if (!best)
        return std::nullopt;
    std::string_view rest = best->root == "/" ? rel : rel.substr(best->root.size());
    std::string mp = best->mount_point;
    if (mp == "/")
        return rest.empty() ? std::string("/") : std::string(rest);
    return mp + std::string(rest);
}

MountsDiff Mounts::update(std::string_view text) {
    Mounts next = parse(text);
    auto id = [](const Mount &m) { return std::tuple(m.mount_id, m.kdev, m.mount_point); };
    std::set<std::tuple<int, uint32_t, std::string>> before, after;
    for (const auto &m : mounts_)
        before.insert(id(m));
    for (const auto &m : next.mounts_)
        after.insert(id(m));
    MountsDiff d;
    for (const auto &m : next.mounts_)
        if (!before.contains(id(m)))
            d.added.push_back(m);
    for (const auto &m : mounts_)
        if (!after.contains(id(m)))
            d.removed.push_back(m);
    *this = std::move(next);
    return d;
}

} // namespace fusescope
