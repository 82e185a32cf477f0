#define _GNU_SOURCE
#include "veil_idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#define VEIL_OPEN_TREE_CLONE 1
#define VEIL_AT_RECURSIVE 0x8000
#define VEIL_MOUNT_ATTR_IDMAP 0x00100000
#define VEIL_MS_SLAVE (1 << 19)
#define VEIL_MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define VEIL_FSCONFIG_SET_STRING 1
#define VEIL_FSCONFIG_CMD_CREATE 6
#define VEIL_FSMOUNT_CLOEXEC 1

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

struct veil_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };

int veil_idmapped_tree(const char *path, int userns_fd, int recursive) {
    int flags = VEIL_OPEN_TREE_CLONE | O_CLOEXEC | (recursive ? VEIL_AT_RECURSIVE : 0);
    int at = AT_EMPTY_PATH | (recursive ? VEIL_AT_RECURSIVE : 0);
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path, flags);
    if (fd < 0) return -errno;
    /* A clone of a shared mount joins the host's peer group: whatever the container's side
       mounted under it would appear on the host. As a slave it still receives the host's mounts
       (runc's rslave default) and sends nothing back. A separate call: the kernel refuses a
       propagation change together with an id mapping. */
    struct veil_mount_attr slave = { 0, 0, VEIL_MS_SLAVE, 0 };
    struct veil_mount_attr idmap = { VEIL_MOUNT_ATTR_IDMAP, 0, 0, (uint64_t)userns_fd };
    if (syscall(SYS_mount_setattr, fd, "", at, &slave, sizeof slave) < 0 ||
        (userns_fd >= 0 && syscall(SYS_mount_setattr, fd, "", at, &idmap, sizeof idmap) < 0)) {
        int code = errno;
        close(fd);
        return -code;
    }
    return fd;
}

int veil_mount_setattr_path(const char *path, int recursive, uint64_t attr_set, uint64_t attr_clr) {
    struct veil_mount_attr attr = { attr_set, attr_clr, 0, 0 };
    return syscall(SYS_mount_setattr, AT_FDCWD, path, recursive ? VEIL_AT_RECURSIVE : 0, &attr, sizeof attr) < 0 ? -errno : 0;
}

struct open_job {
    int namespace_fd;
    const char *const *paths;
    int count;
    int *fds;
    int error;
};

static void *open_in_namespace(void *argument) {
    struct open_job *job = argument;
    /* Only this thread moves: it stops sharing the process's root and cwd, then joins. */
    if (unshare(CLONE_FS) < 0 || setns(job->namespace_fd, CLONE_NEWNS) < 0) {
        job->error = errno;
        return NULL;
    }
    for (int i = 0; i < job->count; i++) {
        int fd = open(job->paths[i], O_PATH | O_CLOEXEC);
        job->fds[i] = fd < 0 ? -errno : fd;
    }
    return NULL;
}

int veil_open_in_mount_namespace(int namespace_fd, const char *const *paths, int count, int *fds) {
    struct open_job job = { namespace_fd, paths, count, fds, 0 };
    pthread_t thread;
    int created = pthread_create(&thread, NULL, open_in_namespace, &job);
    if (created != 0) return -created;
    pthread_join(thread, NULL);
    return job.error ? -job.error : 0;
}

int veil_attach_mount(int fd, const char *target) {
    if (syscall(SYS_move_mount, fd, "", AT_FDCWD, target, VEIL_MOVE_MOUNT_F_EMPTY_PATH) < 0) return -errno;
    return 0;
}

int veil_attach_mount_at(int fd, int target_fd) {
    if (syscall(SYS_move_mount, fd, "", target_fd, "", VEIL_MOVE_MOUNT_F_EMPTY_PATH | 0x40 /* MOVE_MOUNT_T_EMPTY_PATH */) < 0) return -errno;
    return 0;
}

static int set_string(int fs, const char *key, const char *value) {
    return syscall(SYS_fsconfig, fs, VEIL_FSCONFIG_SET_STRING, key, value, 0) < 0 ? -errno : 0;
}

int veil_overlay_mount(const char *lowerdir, const char *upperdir, const char *workdir, const char *extra_options) {
    int fs = (int)syscall(SYS_fsopen, "overlay", 1 /* FSOPEN_CLOEXEC */);
    if (fs < 0) return -errno;
    int rc = set_string(fs, "lowerdir", lowerdir);
    if (rc == 0 && upperdir && *upperdir) rc = set_string(fs, "upperdir", upperdir);
    if (rc == 0 && workdir && *workdir) rc = set_string(fs, "workdir", workdir);
    if (rc == 0 && extra_options && *extra_options) {
        /* comma-separated key[=value] options, e.g. "index=off" */
        char buffer[512];
        strncpy(buffer, extra_options, sizeof buffer - 1);
        buffer[sizeof buffer - 1] = 0;
        char *save = NULL;
        for (char *option = strtok_r(buffer, ",", &save); option && rc == 0; option = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(option, '=');
            if (eq) { *eq = 0; rc = set_string(fs, option, eq + 1); }
            else rc = syscall(SYS_fsconfig, fs, 0 /* FSCONFIG_SET_FLAG */, option, NULL, 0) < 0 ? -errno : 0;
        }
    }
    if (rc == 0 && syscall(SYS_fsconfig, fs, VEIL_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) rc = -errno;
    if (rc < 0) { close(fs); return rc; }
    int mnt = (int)syscall(SYS_fsmount, fs, VEIL_FSMOUNT_CLOEXEC, 0);
    int code = errno;
    close(fs);
    return mnt < 0 ? -code : mnt;
}

int veil_is_overlay(const char *path) {
    struct statfs fs;
    if (statfs(path, &fs) != 0) return -errno;
    return fs.f_type == 0x794c7630 /* OVERLAYFS_SUPER_MAGIC */;
}
