#ifndef VEIL_SECCOMP_H
#define VEIL_SECCOMP_H

#include <stdint.h>

/* Installs a classic-BPF seccomp filter (`count` struct sock_filter entries at `filter`) on the
   calling thread with seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog). Raw system call only, so it
   may run between fork and exec. Returns the listener fd when flags include
   SECCOMP_FILTER_FLAG_NEW_LISTENER, 0 otherwise, or -errno. */
int veil_seccomp_install(const void *filter, unsigned short count, unsigned int flags);

/* Whether the kernel accepts these SECCOMP_FILTER_FLAG_* bits: 0 if so, else -errno (-EINVAL
   for an unknown flag). Probes with a NULL program, as libseccomp does: a known set of flags
   fails with EFAULT, so nothing is installed. */
int veil_seccomp_flags_supported(unsigned int flags);

/* seccomp(SECCOMP_GET_ACTION_AVAIL): 0 when the kernel knows `action` (SECCOMP_RET_*), else -errno. */
int veil_seccomp_action_available(uint32_t action);

/* System call `number` with six arguments (syscall(2) is variadic, which Swift cannot call):
   its result, or -errno. Async-signal-safe; for probing what a filter answers. */
long veil_raw_syscall(long number, long a0, long a1, long a2, long a3, long a4, long a5);

#endif
