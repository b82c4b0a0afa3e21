// A small RAII owner for a bpftool-generated C skeleton (in the spirit of
// the kernel selftests' C++ skeleton wrapper): destroy() runs on every
// path out, which detaches every link and unloads every program. Nothing is
// pinned, so a SIGKILLed fusescope leaves nothing attached either: the
// kernel drops the links with the last file descriptor.
#pragma once

#include <bpf/libbpf.h>

#include <utility>

namespace fusescope {

template <typename Skel, void (*Destroy)(Skel *)> class SkeletonPtr {
  public:
    SkeletonPtr() = default;
    explicit SkeletonPtr(Skel *s) : s_(s) {}
    SkeletonPtr(const SkeletonPtr &) = delete;
    SkeletonPtr &operator=(const SkeletonPtr &) = delete;
    SkeletonPtr(SkeletonPtr &&o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    SkeletonPtr &operator=(SkeletonPtr &&o) noexcept {
        reset();
        s_ = std::exchange(o.s_, nullptr);
        return *this;
    }
    ~SkeletonPtr() { reset(); }
    void reset() {
        if (s_)
            Destroy(s_);
        s_ = nullptr;
    }
    Skel *get() const { return s_; }
    Skel *operator->() const { return s_; }
    explicit operator bool() const { return s_ != nullptr; }

  private:
    Skel *s_ = nullptr;
};

// A bpf_link owned for its scope.
class LinkPtr {
  public:
    explicit LinkPtr(bpf_link *l = nullptr) : l_(l) {}
    LinkPtr(const LinkPtr &) = delete;
    LinkPtr &operator=(const LinkPtr &) = delete;
    LinkPtr(LinkPtr &&o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
    ~LinkPtr() {
        if (l_)
            bpf_link__destroy(l_);
    }
    bpf_link *get() const { return l_; }

  private:
    bpf_link *l_ = nullptr;
};

} // namespace fusescope
