// ABI records (include/fusescope/abi.h) to the model's C++ records.
#pragma once

#include "fusescope/abi.h"
#include "fusescope/model/types.h"

namespace fusescope {

inline InodeKey key_of(const struct fs_inode_key &k) { return InodeKey{k.dev, k.ino}; }

Event decode_event(const struct fs_event &e);
CensusRecord decode_census(const struct fs_census_rec &r);
KernelName decode_name(const struct fs_name &n);
InodeCounters decode_counters(const struct fs_inode_key &k, const struct fs_inode_stats &s);

} // namespace fusescope
