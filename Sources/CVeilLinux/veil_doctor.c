#define _GNU_SOURCE
#include "veil_doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

/* The numbers are the same on every architecture for system calls added since 5.1 (424 and up). */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

/* struct mount_attr (linux/mount.h), written out so older headers do not matter. */
struct veil_doctor_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

static int result(long rc) { return rc < 0 ? errno : 0; }

int veil_doctor_probe_mount_setattr(void) {
    struct veil_doctor_mount_attr attr;
    memset(&attr, 0, sizeof attr);
    return result(syscall(SYS_mount_setattr, -1, "", AT_EMPTY_PATH, &attr, sizeof attr));
}

int veil_doctor_probe_open_tree(void) {
    long rc = syscall(SYS_open_tree, -1, "", AT_EMPTY_PATH);
    if (rc >= 0) {
        close((int)rc);
        return 0;
    }
    return errno;
}

int veil_doctor_probe_pidfd_open(void) {
    long rc = syscall(SYS_pidfd_open, getpid(), 0);
    if (rc >= 0) {
        close((int)rc);
        return 0;
    }
    return errno;
}

int veil_doctor_probe_clone3(void) {
    /* A successful clone3 would fork: never pass it a usable struct. */
    return result(syscall(SYS_clone3, NULL, 0));
}

int veil_doctor_probe_openat2(void) {
    long rc = syscall(SYS_openat2, -1, "", NULL, 0);
    if (rc >= 0) {
        close((int)rc);
        return 0;
    }
    return errno;
}

int veil_doctor_probe_close_range(void) {
    return result(syscall(SYS_close_range, 1U, 0U, 0U));
}
