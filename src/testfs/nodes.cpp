#include "nodes.h"

#include <fmt/core.h>
#include <unistd.h>

#include <stdexcept>

namespace testfs {

Node::~Node() { ::close(fd); }

std::string Node::proc_path() const { return fmt::format("/proc/self/fd/{}", fd); }

NodeTable::NodeTable(int root_fd) {
    struct stat st {};
    if (::fstat(root_fd, &st) != 0)
        throw std::runtime_error("cannot stat the backing directory");
    auto root = std::make_shared<Node>(FUSE_ROOT_ID, root_fd, st.st_dev, st.st_ino, ".");
    // The kernel never forgets the root; a count of 1 plus the check in forget() keeps it.
    by_id_.emplace(FUSE_ROOT_ID, Entry{root, 1});
    by_inode_.emplace(std::make_pair(st.st_dev, st.st_ino), FUSE_ROOT_ID);
}

NodePtr NodeTable::get(uint64_t nodeid) const {
    std::lock_guard lock(mu_);
    auto it = by_id_.find(nodeid);
    return it == by_id_.end() ? nullptr : it->second.node;
}

NodePtr NodeTable::add_lookup(int path_fd, const struct stat &st, const std::string &path) {
    std::lock_guard lock(mu_);
    auto key = std::make_pair(st.st_dev, st.st_ino);
    if (auto it = by_inode_.find(key); it != by_inode_.end()) {
        ::close(path_fd);
        Entry &e = by_id_.at(it->second);
        e.nlookup++;
        return e.node;
    }
    // Node ids are never reused, so generation 0 keeps nodeid:generation unique.
    uint64_t id = next_id_++;
    auto node = std::make_shared<Node>(id, path_fd, st.st_dev, st.st_ino, path);
    by_id_.emplace(id, Entry{node, 1});
    by_inode_.emplace(key, id);
    return node;
}

void NodeTable::forget(uint64_t nodeid, uint64_t n) {
    if (nodeid == FUSE_ROOT_ID)
        return;
    NodePtr doomed; // released outside the lock: closing an fd is a syscall
    {
        std::lock_guard lock(mu_);
        auto it = by_id_.find(nodeid);
        if (it == by_id_.end())
            return;
        Entry &e = it->second;
        e.nlookup = n >= e.nlookup ? 0 : e.nlookup - n;
        if (e.nlookup > 0)
            return;
        doomed = std::move(e.node);
        by_inode_.erase(std::make_pair(doomed->dev, doomed->ino));
        by_id_.erase(it);
    }
}

size_t NodeTable::size() const {
    std::lock_guard lock(mu_);
    return by_id_.size();
}

} // namespace testfs
