// Dropping what a running session no longer needs (issue 9). After Session::open the BPF
// programs are loaded and attached and the maps and ring buffer are open: reading them goes
// through descriptors fusescope owns and needs no capability. What still needs privileges:
//   CAP_BPF, CAP_PERFMON   the census: each run attaches iter/task_file and iter/task_vma
//                          (BPF_LINK_CREATE, BPF_ITER_CREATE) on the loaded programs
//   CAP_SYS_PTRACE         the census resolves paths with readlink(/proc/PID/fd/N) of other
//                          users' processes (ptrace read access)
//   CAP_DAC_READ_SEARCH    /proc/PID/* of other users and the path walk of `diagnose`
// Everything else (CAP_SYS_ADMIN, CAP_NET_*, CAP_SYS_MODULE, CAP_SETUID, CAP_DAC_OVERRIDE,
// ...) is dropped from the effective, permitted, inheritable, ambient and bounding sets,
// and no_new_privs is set. The uid stays 0.
#pragma once

#include <string>

namespace fusescope {

// Drops every capability but the four above, in the calling thread (call it before other
// threads start: they inherit the reduced sets). true on success; on failure *why says
// what failed and nothing is guaranteed dropped (fusescope keeps running: the drop is
// defence in depth, not a requirement).
bool drop_privileges(std::string *why);

// Drops every capability (same sets, same no_new_privs), in the calling thread: for
// threads that need none, such as the exporter's HTTP server (started from a thread that
// called this, so its threads hold nothing even while the session still attaches).
bool drop_all_privileges(std::string *why);

} // namespace fusescope
