#define _GNU_SOURCE
#include "veil_confine.h"

#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int veil_warden_confine(int userns_fd, const char **step) {
    *step = "setgroups";
    if (setgroups(0, NULL) != 0) return -errno;
    *step = "setns(user)";
    if (setns(userns_fd, CLONE_NEWUSER) != 0) return -errno;
    *step = "setresgid";
    if (setresgid(0, 0, 0) != 0) return -errno;
    *step = "setresuid";
    if (setresuid(0, 0, 0) != 0) return -errno;
    *step = "capset";
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
    uint32_t kept = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_SYS_PTRACE) | (1u << CAP_KILL);
    data[0].effective = data[0].permitted = kept;
    if (syscall(SYS_capset, &header, data) != 0) return -errno;
    *step = "prctl(PR_SET_DUMPABLE)";
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return -errno;
    *step = "prctl(PR_SET_NO_NEW_PRIVS)";
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
    return 0;
}
