// FUSE kernel protocol pieces that fusescope-testfs needs on top of <linux/fuse.h>.
//
// Debian 12's linux-libc-dev ships protocol 7.38, which predates FUSE_DIRECT_IO_ALLOW_MMAP (7.39)
// and passthrough (7.40). The kernels we test on speak newer minors, so the few constants and
// struct layouts we need from 7.39/7.40 are spelled out here (values from the kernel's uapi
// header; the layouts are pinned with static_asserts).
#pragma once

#include <linux/fuse.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace testfs {

// The newest protocol minor this server implements. We answer INIT with
// min(kernel minor, kOurMinor); nothing we use changes message layouts between 7.31 and 7.40.
inline constexpr uint32_t kOurMinor = 40;

// 7.39: mmap of FOPEN_DIRECT_IO files allowed (was FUSE_DIRECT_IO_RELAX in 6.6).
inline constexpr uint64_t kInitDirectIoAllowMmap = 1ULL << 36;
// 7.40: passthrough of reads/writes/mmap to a backing file registered with the kernel.
inline constexpr uint64_t kInitPassthrough = 1ULL << 37;
// 7.40: open_out.open_flags bit asking the kernel to use open_out.backing_id.
inline constexpr uint32_t kFopenPassthrough = 1U << 7;

// The 7.40 fuse_init_out: identical to 7.38's but unused[0] became max_stack_depth.
struct InitOut {
    uint32_t major;
    uint32_t minor;
    uint32_t max_readahead;
    uint32_t flags;
    uint16_t max_background;
    uint16_t congestion_threshold;
    uint32_t max_write;
    uint32_t time_gran;
    uint16_t max_pages;
    uint16_t map_alignment;
    uint32_t flags2;
    uint32_t max_stack_depth;
    uint32_t unused[6];
};
static_assert(sizeof(InitOut) == sizeof(fuse_init_out));
static_assert(offsetof(InitOut, max_stack_depth) == offsetof(fuse_init_out, unused));

// The 7.40 fuse_open_out: padding became backing_id.
struct OpenOut {
    uint64_t fh;
    uint32_t open_flags;
    int32_t backing_id;
};
static_assert(sizeof(OpenOut) == sizeof(fuse_open_out));

// FUSE_DEV_IOC_BACKING_OPEN / _CLOSE (7.40): register a backing file for passthrough.
struct BackingMap {
    int32_t fd;
    uint32_t flags;
    uint64_t padding;
};
static_assert(sizeof(BackingMap) == 16);
inline constexpr unsigned long kIocBackingOpen = _IOW(FUSE_DEV_IOC_MAGIC, 1, BackingMap);
inline constexpr unsigned long kIocBackingClose = _IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t);

// Human-readable opcode name for logs ("WRITE", "OP_123" for unknown ones).
std::string_view opcode_name(uint32_t opcode);

// Where the one reply to a request goes: back to the /dev/fuse fd it was read from, or into the
// io_uring ring entry it arrived in (uring.cpp). Handlers only see this interface.
class Replier {
  public:
    virtual ~Replier() = default;
    // error is a positive errno or 0 (then payload is the reply body). Returns false if the
    // kernel will never see the reply (e.g. the request was interrupted or aborted meanwhile).
    virtual bool send(uint64_t unique, int error, std::span<const iovec> payload) = 0;
};

// The classic transport: one writev() on the /dev/fuse fd the request was read from. ENOENT
// (request interrupted or aborted meanwhile) is expected and not logged.
class DevFuseReplier final : public Replier {
  public:
    explicit DevFuseReplier(int fd) : fd_(fd) {}
    bool send(uint64_t unique, int error, std::span<const iovec> payload) override;

  private:
    int fd_;
};

} // namespace testfs
