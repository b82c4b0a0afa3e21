#include "protocol.h"

#include <fmt/core.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>

namespace testfs {

std::string_view opcode_name(uint32_t opcode) {
    switch (opcode) {
    case FUSE_LOOKUP:
        return "LOOKUP";
    case FUSE_FORGET:
        return "FORGET";
    case FUSE_GETATTR:
        return "GETATTR";
    case FUSE_SETATTR:
        return "SETATTR";
    case FUSE_READLINK:
        return "READLINK";
    case FUSE_SYMLINK:
        return "SYMLINK";
    case FUSE_MKNOD:
        return "MKNOD";
    case FUSE_MKDIR:
        return "MKDIR";
    case FUSE_UNLINK:
        return "UNLINK";
    case FUSE_RMDIR:
        return "RMDIR";
    case FUSE_RENAME:
        return "RENAME";
    case FUSE_LINK:
        return "LINK";
    case FUSE_OPEN:
        return "OPEN";
    case FUSE_READ:
        return "READ";
    case FUSE_WRITE:
        return "WRITE";
    case FUSE_STATFS:
        return "STATFS";
    case FUSE_RELEASE:
        return "RELEASE";
    case FUSE_FSYNC:
        return "FSYNC";
    case FUSE_SETXATTR:
        return "SETXATTR";
    case FUSE_GETXATTR:
        return "GETXATTR";
    case FUSE_LISTXATTR:
        return "LISTXATTR";
    case FUSE_REMOVEXATTR:
        return "REMOVEXATTR";
    case FUSE_FLUSH:
        return "FLUSH";
    case FUSE_INIT:
        return "INIT";
    case FUSE_OPENDIR:
        return "OPENDIR";
    case FUSE_READDIR:
        return "READDIR";
    case FUSE_RELEASEDIR:
        return "RELEASEDIR";
    case FUSE_FSYNCDIR:
        return "FSYNCDIR";
    case FUSE_GETLK:
        return "GETLK";
    case FUSE_SETLK:
        return "SETLK";
    case FUSE_SETLKW:
        return "SETLKW";
    case FUSE_ACCESS:
        return "ACCESS";
    case FUSE_CREATE:
        return "CREATE";
    case FUSE_INTERRUPT:
        return "INTERRUPT";
    case FUSE_BMAP:
        return "BMAP";
    case FUSE_DESTROY:
        return "DESTROY";
    case FUSE_IOCTL:
        return "IOCTL";
    case FUSE_POLL:
        return "POLL";
    case FUSE_NOTIFY_REPLY:
        return "NOTIFY_REPLY";
    case FUSE_BATCH_FORGET:
        return "BATCH_FORGET";
    case FUSE_FALLOCATE:
        return "FALLOCATE";
    case FUSE_READDIRPLUS:
        return "READDIRPLUS";
    case FUSE_RENAME2:
        return "RENAME2";
    case FUSE_LSEEK:
        return "LSEEK";
    case FUSE_COPY_FILE_RANGE:
        return "COPY_FILE_RANGE";
    case FUSE_SETUPMAPPING:
        return "SETUPMAPPING";
    case FUSE_REMOVEMAPPING:
        return "REMOVEMAPPING";
    case FUSE_SYNCFS:
        return "SYNCFS";
    case FUSE_TMPFILE:
        return "TMPFILE";
    default:
        break;
    }
    // Unknown opcodes are rare; a thread_local buffer keeps the view valid for logging.
    thread_local std::string unknown;
    unknown = fmt::format("OP_{}", opcode);
    return unknown;
}

bool DevFuseReplier::send(uint64_t unique, int error, std::span<const iovec> payload) {
    // Header plus at most a few payload pieces; READ uses 1, CREATE 2.
    std::array<iovec, 8> iov{};
    fuse_out_header out{};
    size_t n = 1;
    size_t len = sizeof(out);
    if (error == 0) {
        for (const iovec &p : payload) {
            if (n == iov.size())
                break;
            iov[n++] = p;
            len += p.iov_len;
        }
    }
    out.len = static_cast<uint32_t>(len);
    out.error = -error;
    out.unique = unique;
    iov[0] = {&out, sizeof(out)};
    // The kernel consumes a reply in one write; a short write never happens on /dev/fuse.
    ssize_t w = ::writev(fd_, iov.data(), static_cast<int>(n));
    if (w < 0) {
        // ENOENT: the request was interrupted/aborted before we answered. Not our bug.
        if (errno != ENOENT)
            fmt::print(stderr, "fusescope-testfs: reply to request {} failed: {}\n", unique,
                       std::strerror(errno));
        return false;
    }
    return true;
}

} // namespace testfs
