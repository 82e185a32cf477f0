#define _GNU_SOURCE
#include "veil_seccomp.h"

#include <errno.h>
#include <stddef.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SECCOMP_SET_MODE_FILTER
#define SECCOMP_SET_MODE_FILTER 1
#endif
#ifndef SECCOMP_GET_ACTION_AVAIL
#define SECCOMP_GET_ACTION_AVAIL 2
#endif

int veil_seccomp_install(const void *filter, unsigned short count, unsigned int flags) {
    struct sock_fprog prog;
    prog.len = count;
    prog.filter = (struct sock_filter *)filter;
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    return rc < 0 ? -errno : (int)rc;
}

int veil_seccomp_flags_supported(unsigned int flags) {
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL);
    if (rc < 0 && errno == EFAULT) return 0;
    return rc < 0 ? -errno : -EINVAL;
}

int veil_seccomp_action_available(uint32_t action) {
    long rc = syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action);
    return rc < 0 ? -errno : 0;
}

long veil_raw_syscall(long number, long a0, long a1, long a2, long a3, long a4, long a5) {
    long result = syscall(number, a0, a1, a2, a3, a4, a5);
    return result < 0 ? -errno : result;
}
