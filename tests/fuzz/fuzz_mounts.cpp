// libFuzzer target: Mounts::parse / update / find_by_path on arbitrary mountinfo text.
#include "fusescope/model/mounts.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view text(reinterpret_cast<const char *>(data), size);
    auto m = fusescope::Mounts::parse(text);
    for (const auto &mt : m.all()) {
        if (mt.kdev != fusescope::kernel_dev(mt.major, mt.minor))
            std::abort();
        if (m.find_by_dev(mt.kdev) == nullptr)
            std::abort();
        if (!mt.mount_point.empty() && m.find_by_path(mt.mount_point) == nullptr)
            std::abort();
        (void)fusescope::is_fuse_fstype(mt.fstype);
    }
    // the second half as the next reload of the first
    fusescope::Mounts u = fusescope::Mounts::parse(text.substr(0, size / 2));
    auto diff = u.update(text.substr(size / 2));
    (void)diff.empty();
    (void)u.find_by_path(text.substr(0, size < 64 ? size : 64));
    (void)fusescope::unescape_mount_field(text);
    return 0;
}
