#include "fusescope/core/privileges.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace fusescope {

namespace {

constexpr int kKeep[] = {CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH};

bool kept(int cap) {
    for (int k : kKeep)
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

} // namespace

bool drop_privileges(std::string *why) {
    const int last = last_cap();
    // the bounding set first: dropping from it needs CAP_SETPCAP, which goes next
    for (int c = 0; c <= last; ++c)
        if (!kept(c) && ::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) {
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
    uint32_t keep[_LINUX_CAPABILITY_U32S_3]{};
    for (int k : kKeep)
        keep[k / 32] |= 1u << (k % 32);
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; ++i) {
        data[i].permitted &= keep[i];
        data[i].effective &= keep[i];
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

} // namespace fusescope
