#ifndef VEIL_SENTINEL_H
#define VEIL_SENTINEL_H

#include <sys/types.h>

/* The warden's dead man's switch, linked into the veil-warden executable only.
   A constructor that runs before Swift's runtime starts forks the sentinel: a child that keeps
   nothing of the warden's but the read end of a pipe (it unmaps everything but its own code,
   stack and TLS block and runs on raw system calls: about 100 KiB resident), collects the
   guarded pids from it, and when the pipe reaches EOF (the warden is gone, however it died, even
   by SIGKILL) SIGKILLs every guarded process and exits. Guarded processes are each sandbox
   container's init, whose death takes its pid namespace with it.
   `veil_sentinel_arm` reports whether that fork worked and installs the warden's fatal-signal
   handlers, which kill the guarded processes at once. `veil_sentinel_guard` may be called from
   any thread; there is no limit on how many (see veil_guard_table.h). Both return 0 or -errno. */
int veil_sentinel_arm(void);
int veil_sentinel_guard(pid_t pid);
/* The sentinel's pid (so the warden can take it along into its cgroup), or -1. */

#endif
