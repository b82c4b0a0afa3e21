// The node table: FUSE nodeid <-> backing inode, with the kernel's lookup counts.
//
// Each node holds an O_PATH fd on its backing inode (the design of libfuse's passthrough_ll)
// rather than a path: renames of parent directories and unlinked-but-open files then need no
// bookkeeping, and an inode number cannot be reused while the kernel still knows the node.
// The relative path at lookup time is kept for logs only.
#pragma once

#include <linux/fuse.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace testfs {

struct Node {
    Node(uint64_t id, int path_fd, dev_t d, ino_t i, std::string p)
        : nodeid(id), fd(path_fd), dev(d), ino(i), path(std::move(p)) {}
    ~Node();
    Node(const Node &) = delete;
    Node &operator=(const Node &) = delete;

    const uint64_t nodeid;
    const int fd; // O_PATH on the backing inode; closed when the last user drops the node
    const dev_t dev;
    const ino_t ino;
    const std::string path; // relative to the backing dir when first looked up (logs only)

    // Passthrough: one backing id per inode, shared by all its passthrough opens (the kernel
    // refuses a second, different backing file on an inode with -EBUSY). Guarded by mu.
    std::mutex mu;
    int backing_id = -1;
    int backing_refs = 0;

    // "/proc/self/fd/N": reopening an O_PATH fd with real access modes goes through here.
    std::string proc_path() const;
};

using NodePtr = std::shared_ptr<Node>;

class NodeTable {
  public:
    // root_fd: O_PATH fd of the backing directory; it becomes FUSE_ROOT_ID.
    explicit NodeTable(int root_fd);

    // The node or nullptr. A shared_ptr keeps the O_PATH fd valid while a request uses it,
    // even if a FORGET for the node is handled concurrently.
    NodePtr get(uint64_t nodeid) const;

    // Registers a looked-up backing inode (takes ownership of path_fd) and counts one lookup.
    // If the inode is already known, path_fd is closed and the existing node returned.
    NodePtr add_lookup(int path_fd, const struct stat &st, const std::string &path);

    // FORGET: drops n lookups; the node goes away at zero. The root is never forgotten.
    void forget(uint64_t nodeid, uint64_t n);

    size_t size() const;

  private:
    struct Entry {
        NodePtr node;
        uint64_t nlookup = 0;
    };
    mutable std::mutex mu_;
    std::unordered_map<uint64_t, Entry> by_id_;
    std::map<std::pair<dev_t, ino_t>, uint64_t> by_inode_;
    uint64_t next_id_ = FUSE_ROOT_ID + 1;
};

} // namespace testfs
