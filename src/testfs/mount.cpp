#include "mount.h"

#include "protocol.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>

namespace testfs {

int open_fuse_device(std::string &err) {
    int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        err = e == ENOENT ? "/dev/fuse does not exist: load the fuse module (modprobe fuse) or "
                            "create the node (mknod /dev/fuse c 10 229)"
                          : fmt::format("cannot open /dev/fuse: {}", std::strerror(e));
    }
    return fd;
}

bool kernel_has_passthrough_ioctl(int fuse_fd) {
    BackingMap map{};
    map.fd = -1;
    if (::ioctl(fuse_fd, kIocBackingOpen, &map) >= 0)
        return true; // cannot happen on an unmounted fd, but it certainly knows the ioctl
    return errno != ENOTTY && errno != EOPNOTSUPP && errno != EINVAL;
}

int mount_fuse(int fuse_fd, const std::string &mountpoint) {
    // rootmode=40000: the root is a directory; allow_other: tests run processes as other users.
    // default_permissions: the kernel checks mode bits and ownership as a local filesystem
    // does. The server opens everything as root, so without it any user could read and write
    // any file (a 0600 file of root's, a 0700 directory), a wrong answer no real filesystem gives.
    std::string opts = fmt::format(
        "fd={},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions", fuse_fd);
    if (::mount(kFsSource, mountpoint.c_str(), kFsType, MS_NOSUID | MS_NODEV, opts.c_str()) != 0)
        return errno;
    return 0;
}

namespace {
// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(const std::string &s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 4 <= s.size()) {
            const std::string oct = s.substr(i + 1, 3);
            if (oct.find_first_not_of("01234567") == std::string::npos) {
                out += static_cast<char>(std::stoi(oct, nullptr, 8));
                i += 3;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}
} // namespace

bool is_our_mount(const std::string &mountpoint) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
        std::istringstream ls(line);
        std::string id, parent, dev, root, mp, field;
        ls >> id >> parent >> dev >> root >> mp;
        while (ls >> field && field != "-") {
        }
        std::string fstype;
        ls >> fstype;
        if (fstype == kFsType && unescape(mp) == mountpoint)
            return true;
    }
    return false;
}

bool unmount_fuse(const std::string &mountpoint, std::string &err) {
    // Several of ours may be stacked on one mountpoint only if someone mounted twice; loop a
    // little so that we never leave ours behind.
    for (int attempt = 0; attempt < 4 && is_our_mount(mountpoint); ++attempt) {
        if (::umount2(mountpoint.c_str(), UMOUNT_NOFOLLOW) == 0)
            continue;
        int e = errno;
        if (e == EBUSY || e == ENOTCONN || e == EIO) {
            // Busy (open files, a process cwd inside) or a dead connection: detach it now; the
            // superblock dies when its last user lets go (and the connection is aborted once
            // our /dev/fuse fds are closed at exit).
            if (::umount2(mountpoint.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
                continue;
            e = errno;
        }
        err = fmt::format("cannot unmount {}: {}", mountpoint, std::strerror(e));
        return false;
    }
    if (is_our_mount(mountpoint)) {
        err = fmt::format("{} is still mounted", mountpoint);
        return false;
    }
    return true;
}

namespace {
char crash_mountpoint[4096];

void crash_handler(int sig) {
    // Only async-signal-safe calls: umount2 and re-raising with the default action.
    ::umount2(crash_mountpoint, MNT_DETACH | UMOUNT_NOFOLLOW);
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}
} // namespace

void unmount_on_crash(const std::string &mountpoint) {
    if (mountpoint.size() >= sizeof(crash_mountpoint))
        return;
    std::memcpy(crash_mountpoint, mountpoint.c_str(), mountpoint.size() + 1);
    struct sigaction sa {};
    sa.sa_handler = crash_handler;
    sa.sa_flags = static_cast<int>(SA_RESETHAND);
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGQUIT})
        ::sigaction(sig, &sa, nullptr);
}

} // namespace testfs
