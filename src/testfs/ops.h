// Request handlers: one FUSE request in, one reply out, executed on the reader thread that read
// the request (replies must go to the same /dev/fuse fd, see server.cpp).
#pragma once

#include "config.h"
#include "nodes.h"
#include "protocol.h"

#include <linux/fuse.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace testfs {

// One decoded request. arg/arglen is the opcode-specific part after the header, contiguous
// whatever the transport delivered it in.
struct Request {
    int dev_fd; // a /dev/fuse fd of this connection (for the passthrough ioctls)
    const fuse_in_header *h;
    const char *arg;
    size_t arglen;
    Replier *out;          // takes the one reply
    bool via_ring = false; // came through an io_uring ring entry, not read(2) on /dev/fuse

    bool reply(int error, std::span<const iovec> payload = {}) const {
        return out->send(h->unique, error, payload);
    }
    template <typename T> bool reply_struct(const T &value) const {
        iovec iov{const_cast<T *>(&value), sizeof(T)};
        return reply(0, std::span<const iovec>(&iov, 1));
    }
};

class Filesystem {
  public:
    // root_fd: O_PATH fd of the backing directory (ownership passes to the node table).
    Filesystem(const Config &cfg, int root_fd);

    // Called once after the INIT reply was written (ok) or refused (!ok, message says why).
    // By then the kernel has processed the reply, so the mount is usable when ok.
    std::function<void(bool ok, const std::string &message)> on_init;

    // Handles one request. scratch is per-thread memory reused for READ/READDIR replies.
    void handle(const Request &req, std::vector<char> &scratch);

    // Per-opcode request counts as a JSON object (for --stats): in all, and per transport.
    std::string stats_json() const;

  private:
    void op_init(const Request &r);
    void op_lookup(const Request &r);
    void op_forget(const Request &r);
    void op_batch_forget(const Request &r);
    void op_getattr(const Request &r);
    void op_setattr(const Request &r);
    void op_readlink(const Request &r);
    void op_mknod(const Request &r);
    void op_mkdir(const Request &r);
    void op_symlink(const Request &r);
    void op_link(const Request &r);
    void op_unlink(const Request &r, bool dir);
    void op_rename(const Request &r, bool v2);
    void op_open(const Request &r);
    void op_create(const Request &r);
    void op_read(const Request &r, std::vector<char> &scratch);
    void op_write(const Request &r);
    void op_release(const Request &r);
    void op_fsync(const Request &r);
    void op_fallocate(const Request &r);
    void op_statfs(const Request &r);
    void op_opendir(const Request &r);
    void op_readdir(const Request &r, std::vector<char> &scratch);
    void op_releasedir(const Request &r);

    // Shared tails of LOOKUP/MKNOD/MKDIR/SYMLINK/LINK/CREATE: registers the new entry `name`
    // in `parent` (path_fd already open on it, owned) and fills `out`. Returns 0 or an errno.
    int make_entry(const NodePtr &parent, const char *name, int path_fd, fuse_entry_out &out);
    int lookup_entry(const NodePtr &parent, const char *name, fuse_entry_out &out);
    // New files belong to the caller, as on a local filesystem.
    void chown_to_caller(int path_fd, const fuse_in_header *h) const;

    // FOPEN_* flags for an open with these O_* flags, and the backing fd's own open flags.
    uint32_t fopen_flags(uint32_t oflags) const;
    static int backing_open_flags(uint32_t oflags);
    // Passthrough: take/drop the inode's shared backing id. Returns the id or -errno.
    int passthrough_get(Node &node, int fuse_fd, int file_fd);
    void passthrough_put(Node &node, int fuse_fd);

    Config cfg_;
    NodeTable nodes_;
    uid_t my_uid_;
    gid_t my_gid_;
    std::atomic<uint32_t> minor_{0};
    // Requests per opcode, [0] read from /dev/fuse, [1] taken from an io_uring ring entry.
    static constexpr uint32_t kOpcodeSlots = 64;
    std::array<std::array<std::atomic<uint64_t>, kOpcodeSlots>, 2> counts_{};
    std::atomic<uint64_t> bytes_written_{0};
    std::atomic<uint64_t> bytes_read_{0};
};

} // namespace testfs
