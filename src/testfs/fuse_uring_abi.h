// FUSE over io_uring: the kernel ABI (protocol 7.42, Linux 6.14+, CONFIG_FUSE_IO_URING).
//
// DEFINED HERE, NOT INCLUDED: Debian 12's linux-libc-dev (6.1, protocol 7.38) predates
// FUSE-over-io_uring, so <linux/fuse.h> has none of this. The names, values and layouts below
// are the kernel's own (include/uapi/linux/fuse.h of 6.14+); the static_asserts pin the layouts
// the kernel reads and writes. Remove this header once the distribution's uapi has them.
#pragma once

#include <linux/fuse.h>

#include <cstddef>
#include <cstdint>

namespace testfs::uring_abi {

// INIT flag (in flags2, i.e. bit 41 of the 64-bit flags): the server will serve requests through
// io_uring. The kernel offers it only while /sys/module/fuse/parameters/enable_uring is Y.
inline constexpr uint64_t kInitOverIoUring = 1ULL << 41;

// Sizes of the two fixed areas at the start of every entry's header buffer.
inline constexpr size_t kInOutHeaderSize = 128; // FUSE_URING_IN_OUT_HEADER_SZ
inline constexpr size_t kOpInOutSize = 128;     // FUSE_URING_OP_IN_OUT_SZ

// struct fuse_uring_ent_in_out
struct EntInOut {
    uint64_t flags;
    uint64_t commit_id;  // the request's unique; echoed in CmdReq::commit_id on commit
    uint32_t payload_sz; // bytes valid in the payload buffer, in either direction
    uint32_t padding;
    uint64_t reserved;
};
static_assert(sizeof(EntInOut) == 32);

// struct fuse_uring_req_header: iov[0] of a REGISTER, one per ring entry.
struct ReqHeader {
    char in_out[kInOutHeaderSize]; // fuse_in_header on fetch, fuse_out_header on commit
    char op_in[kOpInOutSize];      // the opcode's fixed argument (the request's in_args[0])
    EntInOut ring_ent_in_out;
};
static_assert(sizeof(ReqHeader) == 288);
static_assert(offsetof(ReqHeader, ring_ent_in_out) == 256);

// enum fuse_uring_cmd: io_uring_sqe.cmd_op of an IORING_OP_URING_CMD on /dev/fuse.
inline constexpr uint32_t kCmdRegister = 1;       // FUSE_IO_URING_CMD_REGISTER
inline constexpr uint32_t kCmdCommitAndFetch = 2; // FUSE_IO_URING_CMD_COMMIT_AND_FETCH

// struct fuse_uring_cmd_req: in the 80-byte command area of a 128-byte SQE.
struct CmdReq {
    uint64_t flags;
    uint64_t commit_id;
    uint16_t qid; // the queue: the kernel has one per possible CPU and queues a request on
                  // the queue of the CPU its sender runs on
    uint8_t padding[6];
};
static_assert(sizeof(CmdReq) == 24);

// The iovec count a REGISTER must carry: header buffer, payload buffer.
inline constexpr unsigned kIovSegs = 2;

} // namespace testfs::uring_abi
