#include "fusescope/core/privileges.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <span>

namespace fusescope {

namespace {

constexpr int kCensus[] = {CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH};

bool kept(std::span<const int> keep, int cap) {
    for (int k : keep)
        if (k == cap)
            return true;
    return false;
}

int last_cap() {
    // the kernel's last capability; PR_CAPBSET_READ fails (EINVAL) past it
    int c = 0;
    while (c < 64 && ::prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0)
        ++c;
    return c;
}

// Every capability but @keep, from every set of the calling thread; then no_new_privs.
bool drop_all_but(std::span<const int> keep, std::string *why) {
    const int last = last_cap();
    // the bounding set first: dropping from it needs CAP_SETPCAP, which goes next
    for (int c = 0; c <= last; ++c)
        if (!kept(keep, c) && ::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) {
            *why = std::string("PR_CAPBSET_DROP: ") + std::strerror(errno);
            return false;
        }
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0,
            0); // EINVAL before 4.3: nothing to clear

    __user_cap_header_struct hdr{};
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    hdr.pid = 0;
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
    if (::syscall(SYS_capget, &hdr, data) != 0) {
        *why = std::string("capget: ") + std::strerror(errno);
        return false;
    }
    uint32_t mask[_LINUX_CAPABILITY_U32S_3]{};
    for (int k : keep)
        mask[k / 32] |= 1u << (k % 32);
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; ++i) {
        data[i].permitted &= mask[i];
        data[i].effective &= mask[i];
        data[i].inheritable = 0;
    }
    if (::syscall(SYS_capset, &hdr, data) != 0) {
        *why = std::string("capset: ") + std::strerror(errno);
        return false;
    }
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        *why = std::string("PR_SET_NO_NEW_PRIVS: ") + std::strerror(errno);
        return false;
    }
    return true;
}

} // namespace

bool drop_privileges(std::string *why) { return drop_all_but(kCensus, why); }

bool drop_all_privileges(std::string *why) { return drop_all_but({}, why); }

} // namespace fusescope
