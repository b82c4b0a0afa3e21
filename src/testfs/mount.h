// Opening /dev/fuse, mount(2) and unmounting, without fusermount (we run as root).
#pragma once

#include <string>

namespace testfs {

inline constexpr const char *kFsType = "fuse.fusescope-testfs";
inline constexpr const char *kFsSource = "fusescope-testfs";

// Opens /dev/fuse (O_RDWR|O_CLOEXEC). Returns the fd, or -1 with a one-line reason in err.
int open_fuse_device(std::string &err);

// Asks the kernel whether it knows the passthrough ioctls, before mounting. An unmounted
// /dev/fuse fd answers FUSE_DEV_IOC_BACKING_OPEN with EPERM when the ioctl exists, ENOTTY when
// the kernel predates it, and EOPNOTSUPP without CONFIG_FUSE_PASSTHROUGH.
bool kernel_has_passthrough_ioctl(int fuse_fd);

// mount(2) of a fuse.fusescope-testfs on mountpoint, served through fuse_fd.
// Returns 0 or an errno.
int mount_fuse(int fuse_fd, const std::string &mountpoint);

// True if /proc/self/mountinfo lists a fuse.fusescope-testfs mount on mountpoint.
bool is_our_mount(const std::string &mountpoint);

// Unmounts our mount on mountpoint if it is there: a plain umount first (flushes and destroys
// the superblock at once), MNT_DETACH if it is busy. Returns false if it is still listed.
bool unmount_fuse(const std::string &mountpoint, std::string &err);

// If the server itself crashes (SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGQUIT), detach the
// mount before dying so that no dead ENOTCONN mount is left behind. Call after mounting.
void unmount_on_crash(const std::string &mountpoint);

} // namespace testfs
