#include <gtest/gtest.h>

#include <random>

#include "fusescope/model/mounts.h"

using namespace fusescope;

namespace {
const char *kMountinfo =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "36 22 0:45 / /mnt/my\\040data rw,nosuid,nodev,relatime shared:40 - fuse.sshfs "
    "user@host:/srv\\040x "
    "rw,user_id=1000,group_id=1000\n"
    "37 22 0:46 / /mnt/plain rw,relatime - fuse /dev/fuse rw,user_id=0,group_id=0\n"
    "38 22 259:3 / /mnt/blk rw,relatime shared:41 master:2 - fuseblk /dev/nvme0n1p3 rw,user_id=0\n"
    "39 22 0:50 / /mnt/vfs rw,relatime - virtiofs myfs rw\n"
    "40 37 0:47 /sub /mnt/plain/nested rw,relatime - fuse.testfs testfs rw\n"
    "41 22 0:48 / /mnt/notfuse rw - fusectl fusectl rw\n"
    "this line is garbage\n"
    "42 22 0:x / /mnt/bad rw - fuse a rw\n"
    "43 22 0:49 / /mnt/nosep rw fuse a rw\n"
    "\n";
} // namespace

TEST(Mounts, ParsesFuseMountsWithEscapes) {
    auto m = Mounts::parse(kMountinfo);
    ASSERT_EQ(m.all().size(), 5u);
    EXPECT_EQ(m.bad_lines(), 3u);
    const Mount &ssh = m.all()[0];
    EXPECT_EQ(ssh.mount_id, 36);
    EXPECT_EQ(ssh.mount_point, "/mnt/my data");
    EXPECT_EQ(ssh.source, "user@host:/srv x");
    EXPECT_EQ(ssh.fstype, "fuse.sshfs");
    EXPECT_EQ(ssh.kdev, kernel_dev(0, 45));
    EXPECT_EQ(m.all()[2].fstype, "fuseblk");
    EXPECT_EQ(m.all()[2].kdev, (259u << 20) | 3u);
    EXPECT_EQ(m.all()[3].fstype, "virtiofs");
    EXPECT_EQ(m.all()[4].root, "/sub");
}

TEST(Mounts, FstypeAndUnescape) {
    EXPECT_TRUE(is_fuse_fstype("fuse"));
    EXPECT_TRUE(is_fuse_fstype("fuse.rclone"));
    EXPECT_TRUE(is_fuse_fstype("fuseblk"));
    EXPECT_TRUE(is_fuse_fstype("virtiofs"));
    EXPECT_FALSE(is_fuse_fstype("fusectl"));
    EXPECT_FALSE(is_fuse_fstype("ext4"));
    EXPECT_EQ(unescape_mount_field("a\\040b\\011c\\012d\\134e"), "a b\tc\nd\\e");
    EXPECT_EQ(unescape_mount_field("trailing\\04"), "trailing\\04");
    EXPECT_EQ(unescape_mount_field("\\"), "\\");
}

TEST(Mounts, FindByDevAndPath) {
    auto m = Mounts::parse(kMountinfo);
    ASSERT_NE(m.find_by_dev(kernel_dev(0, 46)), nullptr);
    EXPECT_EQ(m.find_by_dev(kernel_dev(0, 46))->mount_point, "/mnt/plain");
    EXPECT_EQ(m.find_by_dev(kernel_dev(0, 99)), nullptr);
    EXPECT_EQ(m.find_by_path("/mnt/plain/a/b")->mount_id, 37);
    EXPECT_EQ(m.find_by_path("/mnt/plain/nested/x")->mount_id, 40); // longest prefix
    EXPECT_EQ(m.find_by_path("/mnt/plain")->mount_id, 37);
    EXPECT_EQ(m.find_by_path("/mnt/plainer/x"), nullptr); // component boundary
    EXPECT_EQ(m.find_by_path("/mnt/my data/f")->mount_id, 36);
    EXPECT_EQ(m.find_by_path("/etc/passwd"), nullptr); // / is ext4, not kept
}

TEST(Mounts, UpdateReportsAddedAndRemoved) {
    Mounts m;
    auto d0 = m.update(kMountinfo);
    EXPECT_EQ(d0.added.size(), 5u);
    EXPECT_TRUE(d0.removed.empty());
    std::string next = kMountinfo;
    next += "50 22 0:60 / /mnt/new rw - fuse.new new rw\n";
    next.erase(next.find("37 22"), next.find("38 22") - next.find("37 22"));
    auto d1 = m.update(next);
    ASSERT_EQ(d1.added.size(), 1u);
    EXPECT_EQ(d1.added[0].mount_point, "/mnt/new");
    ASSERT_EQ(d1.removed.size(), 1u);
    EXPECT_EQ(d1.removed[0].mount_point, "/mnt/plain");
    EXPECT_TRUE(m.update(next).empty());
}

TEST(Mounts, ReloadFromProc) {
    Mounts m;
    auto d = m.reload();
    ASSERT_TRUE(d.has_value()); // /proc/self/mountinfo exists on Linux
    EXPECT_EQ(m.reload()->added.size(), 0u);
    EXPECT_FALSE(m.reload("/nonexistent/mountinfo").has_value());
}

// The kernel's names are relative to the filesystem's root: they show on the mount
// whose root holds them (bind mounts of a subdirectory included).
TEST(Mounts, PathOnMount) {
    const std::string text = "40 1 0:52 / /mnt/db rw - fuse.testfs src rw\n"
                             "41 1 0:52 /sub /srv/bind rw - fuse.testfs src rw\n"
                             "42 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                             "43 1 8:1 /home /home rw - ext4 /dev/sda1 rw\n";
    Mounts fuse = Mounts::parse(text);
    const uint32_t db = kernel_dev(0, 52);
    EXPECT_EQ(fuse.path_on_mount(db, "/data/f"), "/mnt/db/data/f");
    EXPECT_EQ(fuse.path_on_mount(db, "/sub/f"), "/srv/bind/f"); // the deeper root
    EXPECT_EQ(fuse.path_on_mount(db, "/.../x/f"), "/mnt/db/.../x/f");
    EXPECT_FALSE(fuse.path_on_mount(kernel_dev(8, 1), "/usr/bin/rg")); // not FUSE
    Mounts all = Mounts::parse(text, false);
    EXPECT_EQ(all.all().size(), 4u);
    EXPECT_EQ(all.path_on_mount(kernel_dev(8, 1), "/usr/bin/rg"), "/usr/bin/rg");
    EXPECT_EQ(all.path_on_mount(kernel_dev(8, 1), "/home/u/bin/x"), "/home/u/bin/x");
    EXPECT_FALSE(all.path_on_mount(kernel_dev(9, 9), "/x"));
}

TEST(Mounts, NeverCrashesOnRandomInput) {
    std::mt19937 rng(42);
    const std::string alphabet = " \t\n:-\\0123456789/abcfusevirtio.";
    size_t bad = 0;
    for (int round = 0; round < 2000; ++round) {
        std::string s;
        const int len = static_cast<int>(rng() % 300);
        for (int i = 0; i < len; ++i)
            s.push_back(round % 2 ? static_cast<char>(rng() & 0xFF)
                                  : alphabet[rng() % alphabet.size()]);
        auto m = Mounts::parse(s);
        bad += m.bad_lines();
        for (const auto &mt : m.all())
            EXPECT_TRUE(is_fuse_fstype(mt.fstype));
    }
    EXPECT_GT(bad, 0u);
    // Mutations of real lines.
    std::string base = kMountinfo;
    for (size_t cut = 0; cut < base.size(); cut += 7)
        (void)Mounts::parse(std::string_view(base).substr(0, cut));
}
