// libFuzzer target: kallsyms_range on arbitrary /proc/kallsyms text. The first line of the
// input is the symbol looked up, the rest the kallsyms text.
#include "fusescope/backend/kernel_probe.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view in(reinterpret_cast<const char *>(data), size);
    size_t nl = in.find('\n');
    std::string_view name = nl == std::string_view::npos ? in : in.substr(0, nl);
    std::string_view text = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    uint64_t start = 0, end = 0;
    if (fusescope::kallsyms_range(text, name, &start, &end) && !(start < end))
        std::abort();
    // the real symbol names too, whatever the first line said
    (void)fusescope::kallsyms_range(text, "fuse_file_cached_io_open", &start, &end);
    return 0;
}
